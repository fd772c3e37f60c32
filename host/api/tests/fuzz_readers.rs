//! Fuzzes the API's body checks and the SDK's readers (JSON, NDJSON, CSV, TSV; fast and
//! general) with mutations of the corpus in `tests/fuzz-corpus/`, against one oracle: for every
//! body the API lets through, the readers give each record the API counts exactly one outcome,
//! in order (`accepted + rejected = records sent`), and the fast reader reads exactly what the
//! general one reads.
//!
//! `SLUICE_FUZZ_INPUTS` sets the number of inputs (default 20,000, a few seconds; tests/README.md
//! gives the long run and its figures), `SLUICE_FUZZ_SEED` the seed. A failing input is written to
//! `target/fuzz-failures/` and should be added to the corpus once fixed.

use std::path::{Path, PathBuf};

use sluice_api::check_body;
use sluice_plugin_sdk::records::{self, FieldNames, Format};

const FIELDS: &[&str] = &["PatientID", "PatientGender", "LabValue"];

/// Pieces real senders and hostile ones produce, inserted whole.
const TOKENS: &[&[u8]] = &[
    b"1e400",
    b"-1e400",
    b"\"\\ud83d\"",
    b"\\ud83d",
    b"\\udc00",
    b"\\u0000",
    b"\\\"",
    b"\"",
    b",",
    b";",
    b"\t",
    b"\n",
    b"\r\n",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b"null",
    b"\"PatientID\":",
    b"\"patientid\":\"x\",",
    b"PatientID",
    b"patientid",
    b"sep=;\n",
    b"\xEF\xBB\xBF",
    b"\xff",
    b"\xc3\xa9",
    b"{\"PatientID\":\"p\"}",
    b"\"{\\\"PatientID\\\":1}\"",
    b"1.7976931348623157e309",
    b"123456789012345678901234567890",
];

/// A xorshift generator: the same seed gives the same inputs.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("the corpus directory")
        .map(|entry| entry.expect("a corpus entry").path())
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a corpus file");
            (path, bytes)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus is in {}", dir.display());
    files
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => "application/json",
        Some("ndjson") => "application/x-ndjson",
        Some("csv") => "text/csv",
        Some("tsv") => "text/tab-separated-values",
        _ => "text/plain",
    }
}

fn mutate(body: &mut Vec<u8>, random: &mut Random) {
    for _ in 0..1 + random.below(4) {
        let at = random.below(body.len() + 1);
        match random.below(5) {
            0 if at < body.len() => body[at] = random.below(256) as u8,
            1 if at < body.len() => {
                body.remove(at);
            }
            2 if at < body.len() => {
                // Repeat a slice: records and columns come twice.
                let end = (at + 1 + random.below(40)).min(body.len());
                let piece = body[at..end].to_vec();
                body.splice(at..at, piece);
            }
            _ => {
                let token = TOKENS[random.below(TOKENS.len())];
                body.splice(at..at, token.iter().copied());
            }
        }
    }
}

/// Each record's index and outcome, as one line each.
fn outcomes(format: Format, body: &[u8], fast: bool) -> Vec<(u32, String)> {
    let names = FieldNames::new(FIELDS.iter().copied());
    let mut out = Vec::new();
    let mut on_record = |index: u32, record: Result<&mut [records::Raw<'_>], records::RecordError>| {
        out.push((
            index,
            match record {
                Ok(slots) => format!("{slots:?}"),
                Err(error) => format!("!{}", error.reason),
            },
        ));
    };
    if fast {
        records::decode(format, body, &names, &mut on_record);
    } else {
        records::decode_without_fast_reader(format, body, &names, &mut on_record);
    }
    out
}

/// Checks one body: `None` when it holds, else what went wrong.
fn check(essence: &str, body: &[u8]) -> Option<String> {
    let Ok(Some(sent)) = check_body(body, essence, 32) else {
        // Refused by the API (400) or not a standard shape: no record to account for.
        return None;
    };
    let format = records::detect(essence, body)?;
    let fast = outcomes(format, body, true);
    let general = outcomes(format, body, false);
    if fast != general {
        return Some(format!("the fast reader read {fast:?}, the general one {general:?}"));
    }
    // One outcome per record, in order. A reader may find more records than the API counts only
    // in JSON the API cannot check: text/plain bodies, and JSON inside a JSON string (a
    // malformed array there is one record to the API, its elements to the reader).
    let indices: Vec<u32> = general.iter().map(|(index, _)| *index).collect();
    let first = body.iter().find(|b| !b.is_ascii_whitespace() && **b != 0xEF && **b != 0xBB && **b != 0xBF);
    let unchecked_json = essence == "text/plain" || (essence == "application/json" && first == Some(&b'"'));
    let found = if unchecked_json { indices.len().max(sent) } else { sent };
    let expected: Vec<u32> = (0..found as u32).collect();
    (indices != expected).then(|| format!("the API counts {sent} records, the reader gave outcomes for {indices:?}"))
}

#[test]
fn every_record_the_api_counts_gets_one_outcome() {
    let inputs: usize = std::env::var("SLUICE_FUZZ_INPUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let seed: u64 = std::env::var("SLUICE_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5EED_F00D);
    let corpus = corpus();
    // The corpus itself first: every file must hold as it is.
    for (path, body) in &corpus {
        let essence = content_type(path);
        assert_eq!(check(essence, body), None, "{}", path.display());
    }
    let mut random = Random(seed | 1);
    let mut checked = 0;
    for _ in 0..inputs {
        let (path, base) = &corpus[random.below(corpus.len())];
        let mut body = base.clone();
        mutate(&mut body, &mut random);
        let essence = if random.below(8) == 0 { "text/plain" } else { content_type(path) };
        if let Some(fault) = check(essence, &body) {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures");
            std::fs::create_dir_all(&dir).expect("the failures directory");
            let file = dir.join(format!("failure-{checked}.{}", path.extension().unwrap().to_string_lossy()));
            std::fs::write(&file, &body).expect("the failing input");
            panic!("{essence} body {:?} (saved as {}): {fault}", String::from_utf8_lossy(&body), file.display());
        }
        checked += 1;
    }
    eprintln!("fuzzed {checked} inputs (seed {seed})");
}
