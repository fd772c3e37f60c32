//! How the spool stores a [`Run`] in one row: the payloads as one blob, the end offsets as
//! little-endian `u32`s, and the keys as a `u32` length plus one (zero: no key) followed by the
//! key's bytes, or NULL when no record of the run has a key. The provenance and the content type
//! are columns of their own, once per run.

use crate::record::{BadRun, Run};

/// Why a stored row does not make a run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadRow {
    /// The end offsets' blob is not one `u32` per record.
    #[error("{0} bytes of end offsets for {1} records")]
    Ends(usize, usize),
    /// The keys' blob does not hold one key per record.
    #[error("keys do not match the records")]
    Keys,
    /// The parts do not fit together.
    #[error(transparent)]
    Run(#[from] BadRun),
}

/// The end offsets' blob.
pub(crate) fn ends_blob(ends: &[u32]) -> Vec<u8> {
    ends.iter().flat_map(|end| end.to_le_bytes()).collect()
}

/// The keys' blob; `None` when no record has a key.
pub(crate) fn keys_blob(keys: &[Option<String>]) -> Option<Vec<u8>> {
    if keys.iter().all(Option::is_none) {
        return None;
    }
    let mut blob = Vec::with_capacity(keys.iter().map(|k| 4 + k.as_ref().map_or(0, String::len)).sum());
    for key in keys {
        push_key(&mut blob, key.as_deref());
    }
    Some(blob)
}

/// A row's blobs, packed straight from a run.
pub(crate) struct Blobs<'a> {
    pub count: usize,
    pub payloads: &'a [u8],
    pub ends: Vec<u8>,
    pub keys: Option<Vec<u8>>,
}

impl<'a> Blobs<'a> {
    /// The blobs of the whole run (its payloads are not copied).
    pub fn of(run: &'a Run) -> Self {
        Self { count: run.len(), payloads: &run.payloads, ends: ends_blob(&run.ends), keys: keys_blob(&run.keys) }
    }
}

/// The records `indexes` of `run`, in that order, as a run of their own: the payloads copied,
/// the keys moved out of `run`.
pub(crate) fn take_part(run: &mut Run, indexes: &[usize]) -> Run {
    let mut part = Run::new(run.content_type.clone());
    part.payloads.reserve_exact(indexes.iter().map(|&i| run.payload(i).len()).sum());
    part.ends.reserve_exact(indexes.len());
    part.keys.reserve_exact(indexes.len());
    for &index in indexes {
        let key = run.keys[index].take();
        part.push(key, run.payload(index));
    }
    part
}

fn push_key(blob: &mut Vec<u8>, key: Option<&str>) {
    match key {
        Some(key) => {
            blob.extend_from_slice(&(key.len() as u32 + 1).to_le_bytes());
            blob.extend_from_slice(key.as_bytes());
        }
        None => blob.extend_from_slice(&0u32.to_le_bytes()),
    }
}

/// The run a row holds.
pub(crate) fn from_row(
    content_type: String,
    count: usize,
    keys: Option<Vec<u8>>,
    payloads: Vec<u8>,
    ends: Vec<u8>,
) -> Result<Run, BadRow> {
    if ends.len() != 4 * count {
        return Err(BadRow::Ends(ends.len(), count));
    }
    let ends = ends.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
    let keys = match keys {
        Some(blob) => split_keys(&blob, count)?,
        None => vec![None; count],
    };
    Ok(Run::from_parts(content_type, payloads, ends, keys)?)
}

/// The `count` keys of a keys' blob.
fn split_keys(mut blob: &[u8], count: usize) -> Result<Vec<Option<String>>, BadRow> {
    let mut keys = Vec::with_capacity(count);
    for _ in 0..count {
        let (length, rest) = blob.split_first_chunk::<4>().ok_or(BadRow::Keys)?;
        let length = u32::from_le_bytes(*length) as usize;
        if length == 0 {
            keys.push(None);
            blob = rest;
            continue;
        }
        let (key, rest) = rest.split_at_checked(length - 1).ok_or(BadRow::Keys)?;
        keys.push(Some(String::from_utf8(key.to_vec()).map_err(|_| BadRow::Keys)?));
        blob = rest;
    }
    if blob.is_empty() { Ok(keys) } else { Err(BadRow::Keys) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_comes_back_from_its_row() {
        let mut run = Run::new("text/csv");
        for (key, payload) in [(None, "a"), (Some("k1"), ""), (Some(""), "ccc"), (None, "dd")] {
            run.push(key.map(str::to_string), payload.as_bytes());
        }
        let back = from_row(
            run.content_type.clone(),
            run.len(),
            keys_blob(&run.keys),
            run.payloads.clone(),
            ends_blob(&run.ends),
        )
        .unwrap();
        assert_eq!(back, run);
        assert_eq!(back.payload(2), b"ccc");
        assert_eq!(back.key(1), Some("k1"));

        let original = run.clone();
        let part = take_part(&mut run, &[1, 3]);
        let blobs = Blobs::of(&part);
        let back =
            from_row(run.content_type.clone(), blobs.count, blobs.keys, blobs.payloads.to_vec(), blobs.ends).unwrap();
        assert_eq!(back, part);
        assert_eq!((back.record(0), back.record(1)), (original.record(1), original.record(3)));
        assert!(Blobs::of(&take_part(&mut run, &[0, 3])).keys.is_none(), "no key among them");
    }

    #[test]
    fn runs_without_keys_store_none_and_damaged_rows_are_reported() {
        let run = Run::single(None, "text/csv", b"x");
        assert!(keys_blob(&run.keys).is_none());
        let row = |keys: Option<Vec<u8>>, ends: Vec<u8>| from_row("text/csv".into(), 1, keys, b"x".to_vec(), ends);
        assert!(matches!(row(None, vec![1, 0, 0]), Err(BadRow::Ends(3, 1))));
        assert!(matches!(row(None, 9u32.to_le_bytes().to_vec()), Err(BadRow::Run(BadRun::Ends))));
        assert!(matches!(row(Some(vec![5, 0, 0, 0, b'a']), 1u32.to_le_bytes().to_vec()), Err(BadRow::Keys)));
        assert_eq!(row(None, 1u32.to_le_bytes().to_vec()).unwrap(), run);
    }
}
