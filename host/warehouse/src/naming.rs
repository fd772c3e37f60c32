//! File names that carry the log positions they hold.

/// The identity of one data file: which log records of which source it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataFile {
    /// Source name.
    pub source: String,
    /// Log partition.
    pub partition: u32,
    /// First log offset of the commit.
    pub first: u64,
    /// Last log offset of the commit (inclusive).
    pub last: u64,
    /// Index of this file within its commit, from 1.
    pub index: u32,
    /// Number of files in the commit.
    pub count: u32,
    /// The writer's token (lower-case hex; empty in names written before tokens): two
    /// instances that wrote the same range of a partition (one of them fenced) never share a
    /// name, and a commit's identity is its range *and* its token.
    pub token: String,
}

const PREFIX: &str = "part-";
const SUFFIX: &str = ".parquet";
const HIDDEN_SUFFIX: &str = ".inprogress";

impl DataFile {
    /// The committed file name.
    pub fn file_name(&self) -> String {
        format!(
            "{PREFIX}{}-p{}-o{:020}-{:020}{}-f{}of{}{SUFFIX}",
            self.source,
            self.partition,
            self.first,
            self.last,
            self.token_part(),
            self.index,
            self.count
        )
    }

    fn token_part(&self) -> String {
        if self.token.is_empty() { String::new() } else { format!("-c{}", self.token) }
    }

    /// The identity of the commit this file belongs to, as the log stores it with the
    /// consumer position that decides the commit: `o<FIRST>-<LAST>[-c<TOKEN>]`.
    pub fn commit_id(&self) -> String {
        format!("o{}-{}{}", self.first, self.last, self.token_part())
    }

    /// The hidden name the file has until its commit.
    pub fn hidden_name(&self) -> String {
        format!(".{}{HIDDEN_SUFFIX}", self.file_name())
    }

    /// Parses a committed (`Some((file, false))`) or hidden (`Some((file, true))`) file name.
    pub fn parse(name: &str) -> Option<(Self, bool)> {
        let (name, hidden) = match name.strip_prefix('.').and_then(|n| n.strip_suffix(HIDDEN_SUFFIX)) {
            Some(inner) => (inner, true),
            None => (name, false),
        };
        let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
        let (rest, files) = rest.rsplit_once('-')?;
        let files = files.strip_prefix('f')?;
        let (rest, token) = match rest.rsplit_once('-') {
            Some((before, last)) => match last.strip_prefix('c') {
                Some(token) if is_token(token) => (before, token.to_string()),
                _ => (rest, String::new()),
            },
            None => (rest, String::new()),
        };
        let mut parts = rest.rsplitn(4, '-');
        let last = parts.next()?.parse().ok()?;
        let first = parts.next()?.strip_prefix('o')?.parse().ok()?;
        let partition = parts.next()?.strip_prefix('p')?.parse().ok()?;
        let source = parts.next()?.to_string();
        let (index, count) = files.split_once("of")?;
        let file =
            Self { source, partition, first, last, index: index.parse().ok()?, count: count.parse().ok()?, token };
        (!file.source.is_empty() && file.first <= file.last && file.index >= 1 && file.index <= file.count)
            .then_some((file, hidden))
    }

    /// The log partition `name` is debris of, when it is debris of an interrupted write of one
    /// of `source`'s files (a storage temporary such as `.part-….parquet.tmp.1` or
    /// `.part-….inprogress.tmp.1`).
    pub fn debris_of(name: &str, source: &str) -> Option<u32> {
        let stem = format!("{PREFIX}{source}-p");
        let rest = name.strip_prefix('.')?.trim_start_matches('.').strip_prefix(&stem)?;
        if Self::parse(name).is_some() {
            return None;
        }
        let digits = rest.split('-').next()?;
        digits.parse().ok()
    }
}

/// A writer's token: lower-case hex, 1 to 32 digits.
fn is_token(text: &str) -> bool {
    (1..=32).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_even_with_dashes_in_the_source() {
        let file = DataFile {
            source: "st-mary.lab_1".into(),
            partition: 3,
            first: 17,
            last: 4096,
            index: 2,
            count: 3,
            token: String::new(),
        };
        assert_eq!(file.file_name(), "part-st-mary.lab_1-p3-o00000000000000000017-00000000000000004096-f2of3.parquet");
        assert_eq!(file.commit_id(), "o17-4096");
        assert_eq!(DataFile::parse(&file.file_name()), Some((file.clone(), false)));
        assert_eq!(DataFile::parse(&file.hidden_name()), Some((file.clone(), true)));
        assert_eq!(DataFile::debris_of(&format!("{}.tmp.1", file.hidden_name()), "st-mary.lab_1"), Some(3));
        assert_eq!(DataFile::debris_of(&format!(".{}.tmp.1", file.file_name()), "st-mary.lab_1"), Some(3));
        assert_eq!(DataFile::debris_of(&file.hidden_name(), "st-mary.lab_1"), None);
        assert_eq!(DataFile::debris_of(&format!("{}.tmp.1", file.hidden_name()), "st"), None);

        let tokened = DataFile { token: "9f3a".into(), ..file };
        assert_eq!(
            tokened.file_name(),
            "part-st-mary.lab_1-p3-o00000000000000000017-00000000000000004096-c9f3a-f2of3.parquet"
        );
        assert_eq!(tokened.commit_id(), "o17-4096-c9f3a");
        assert_eq!(DataFile::parse(&tokened.file_name()), Some((tokened.clone(), false)));
        assert_eq!(DataFile::parse(&tokened.hidden_name()), Some((tokened.clone(), true)));
    }

    #[test]
    fn foreign_names_are_not_data_files() {
        for name in [
            "",
            "x.parquet",
            "part-a-p1-o2-1-f1of1.parquet",
            "part-a-p1-o1-2-f3of2.parquet",
            "part--p1-o1-2-f1of1.parquet",
            "part-a-p1-o1-2-cXY-f1of1.parquet",
        ] {
            assert_eq!(DataFile::parse(name), None, "{name}");
        }
    }
}
