//! The payloads a plugin receives: one buffer plus end offsets.

/// A borrowed batch of payloads sharing one content type.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    content_type: &'a str,
    data: &'a [u8],
    ends: &'a [u32],
}

impl<'a> Batch<'a> {
    /// A batch over the contract's parts. Offsets past the buffer yield empty payloads.
    pub fn new(content_type: &'a str, data: &'a [u8], ends: &'a [u32]) -> Self {
        Self { content_type, data, ends }
    }

    /// The MIME type of every payload.
    pub fn content_type(&self) -> &'a str {
        self.content_type
    }

    /// Number of payloads.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no payload.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The payloads with their index.
    pub fn payloads(&self) -> impl Iterator<Item = (u32, &'a [u8])> + 'a {
        let data = self.data;
        let mut start = 0usize;
        self.ends.iter().enumerate().map(move |(i, &end)| {
            let end = (end as usize).min(data.len());
            let payload = data.get(start..end).unwrap_or_default();
            start = end;
            (i as u32, payload)
        })
    }
}

/// Owned payloads packed into one buffer, for tests and benchmarks that call a plugin natively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedBatch {
    /// MIME type.
    pub content_type: String,
    /// All bytes.
    pub data: Vec<u8>,
    /// End offsets.
    pub ends: Vec<u32>,
}

impl OwnedBatch {
    /// An empty batch of `content_type`.
    pub fn new(content_type: &str) -> Self {
        Self { content_type: content_type.into(), ..Self::default() }
    }

    /// Appends one payload.
    pub fn push(&mut self, payload: &[u8]) -> &mut Self {
        self.data.extend_from_slice(payload);
        self.ends.push(self.data.len() as u32);
        self
    }

    /// A batch of one payload.
    pub fn single(content_type: &str, payload: &[u8]) -> Self {
        let mut batch = Self::new(content_type);
        batch.push(payload);
        batch
    }

    /// Borrowed view.
    pub fn as_batch(&self) -> Batch<'_> {
        Batch::new(&self.content_type, &self.data, &self.ends)
    }
}
