//! Batches of payloads handed to a plugin, packed the way the contract carries them.

use crate::bindings::types;

/// A batch of payloads sharing one content type: one buffer plus end offsets.
#[derive(Debug, Clone)]
pub struct Batch(pub(crate) types::Batch);

impl Batch {
    /// A batch of one payload.
    pub fn single(content_type: &str, body: &[u8]) -> Self {
        let mut builder = BatchBuilder::new(content_type);
        builder.push(body);
        builder.finish()
    }

    /// The content type of every payload.
    pub fn content_type(&self) -> &str {
        &self.0.content_type
    }

    /// Number of payloads.
    pub fn len(&self) -> usize {
        self.0.ends.len()
    }

    /// Whether the batch holds no payload.
    pub fn is_empty(&self) -> bool {
        self.0.ends.is_empty()
    }

    /// Payload `index`, if it exists.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let end = *self.0.ends.get(index)? as usize;
        let start = if index == 0 { 0 } else { self.0.ends[index - 1] as usize };
        self.0.data.get(start..end)
    }

    /// Iterates over the payloads in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Total payload bytes.
    pub fn data_len(&self) -> usize {
        self.0.data.len()
    }

    /// Checks the offsets: non-decreasing and ending at the buffer's length.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut previous = 0u32;
        for (i, &end) in self.0.ends.iter().enumerate() {
            if end < previous {
                return Err(format!("payload {i} ends before it starts"));
            }
            previous = end;
        }
        if previous as usize != self.0.data.len() {
            return Err("the last payload does not end at the end of the buffer".into());
        }
        Ok(())
    }

    /// Splits the batch back into its parts: content type, buffer, end offsets.
    pub fn into_parts(self) -> (String, Vec<u8>, Vec<u32>) {
        (self.0.content_type, self.0.data, self.0.ends)
    }

    #[cfg(test)]
    pub(crate) fn from_parts(content_type: String, data: Vec<u8>, ends: Vec<u32>) -> Self {
        Self(types::Batch { content_type, data, ends })
    }
}

/// Builds a [`Batch`] payload by payload.
#[derive(Debug)]
pub struct BatchBuilder {
    batch: types::Batch,
}

impl BatchBuilder {
    /// An empty batch of the given content type. Parameters such as `; charset=utf-8` are
    /// dropped and the type is lowercased, as the contract requires.
    pub fn new(content_type: &str) -> Self {
        Self {
            batch: types::Batch {
                content_type: sluice_contract::essence(content_type),
                data: Vec::new(),
                ends: Vec::new(),
            },
        }
    }

    /// An empty batch with room for `payloads` payloads of `bytes` bytes in all.
    pub fn with_capacity(content_type: &str, payloads: usize, bytes: usize) -> Self {
        let mut builder = Self::new(content_type);
        builder.batch.data.reserve_exact(bytes);
        builder.batch.ends.reserve_exact(payloads);
        builder
    }

    /// Appends payloads `range` of a buffer packed the same way (payload `i` is
    /// `data[ends[i-1]..ends[i]]`): their bytes in one copy.
    ///
    /// # Panics
    /// When `range` is out of `ends`, or `ends` does not describe `data`, or the batch would
    /// exceed 4 GiB.
    pub fn push_packed(&mut self, data: &[u8], ends: &[u32], range: std::ops::Range<usize>) -> &mut Self {
        let start = if range.start == 0 { 0 } else { ends[range.start - 1] as usize };
        let end = if range.is_empty() { start } else { ends[range.end - 1] as usize };
        let base = self.batch.data.len();
        self.batch.data.extend_from_slice(&data[start..end]);
        for &payload_end in &ends[range] {
            let end = base + (payload_end as usize - start);
            self.batch.ends.push(u32::try_from(end).expect("a batch is limited to 4 GiB"));
        }
        self
    }

    /// Appends one payload.
    ///
    /// # Panics
    /// When the batch would exceed 4 GiB, which the contract's 32-bit offsets cannot address.
    pub fn push(&mut self, payload: &[u8]) -> &mut Self {
        self.batch.data.extend_from_slice(payload);
        let end = u32::try_from(self.batch.data.len()).expect("a batch is limited to 4 GiB");
        self.batch.ends.push(end);
        self
    }

    /// Number of payloads so far.
    pub fn len(&self) -> usize {
        self.batch.ends.len()
    }

    /// Whether no payload was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.batch.ends.is_empty()
    }

    /// The finished batch.
    pub fn finish(self) -> Batch {
        Batch(self.batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_through_a_batch() {
        let mut builder = BatchBuilder::new("Text/CSV; charset=utf-8");
        builder.push(b"a").push(b"").push(b"bcd");
        let batch = builder.finish();
        assert_eq!(batch.content_type(), "text/csv");
        assert_eq!(batch.iter().collect::<Vec<_>>(), vec![&b"a"[..], b"", b"bcd"]);
        assert!(batch.check().is_ok());
    }

    #[test]
    fn packed_payloads_are_appended_as_the_same_payloads() {
        // Payloads "a", "", "bcd", "ef" packed in one buffer.
        let (data, ends) = (b"abcdef", [1u32, 1, 4, 6]);
        for range in [0..4, 1..3, 2..4, 3..3, 0..0] {
            let mut packed = BatchBuilder::with_capacity("text/csv", 8, 16);
            packed.push(b"x").push_packed(data, &ends, range.clone()).push(b"y");
            let mut one_by_one = BatchBuilder::new("text/csv");
            one_by_one.push(b"x");
            for i in range.clone() {
                let start = if i == 0 { 0 } else { ends[i - 1] as usize };
                one_by_one.push(&data[start..ends[i] as usize]);
            }
            one_by_one.push(b"y");
            let (packed, one_by_one) = (packed.finish(), one_by_one.finish());
            assert!(packed.check().is_ok());
            assert_eq!(packed.iter().collect::<Vec<_>>(), one_by_one.iter().collect::<Vec<_>>(), "{range:?}");
        }
    }

    #[test]
    fn offsets_past_the_buffer_are_refused() {
        let batch = Batch::from_parts("text/csv".into(), b"ab".to_vec(), vec![1, 3]);
        assert_eq!(batch.check().unwrap_err(), "the last payload does not end at the end of the buffer");
        let batch = Batch::from_parts("text/csv".into(), b"ab".to_vec(), vec![2, 1]);
        assert_eq!(batch.check().unwrap_err(), "payload 1 ends before it starts");
    }
}
