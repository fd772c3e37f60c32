//! A request body (or MLLP frame) into its messages: segment terminators CR, LF or CRLF, a UTF-8
//! byte order mark, blank lines and trailing spaces, batch envelopes (FHS/BHS/BTS/FTS), and the
//! character set each message declares in MSH-18.

/// One message found in a body: its segment lines, decoded to text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Segment lines, MSH first, terminators and trailing spaces removed.
    pub lines: Vec<String>,
}

impl Found {
    /// The message as canonical text: UTF-8, segments ended by CR.
    pub fn canonical(&self) -> String {
        let mut text = String::with_capacity(self.lines.iter().map(|l| l.len() + 1).sum());
        for line in &self.lines {
            text.push_str(line);
            text.push('\r');
        }
        text
    }
}

/// A message (or stray segments) that cannot be used, with the reason and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    /// What is wrong, never quoting contents.
    pub reason: String,
    /// Segment or field (`MSH-18`).
    pub field: String,
}

/// How the bytes of a body's messages are text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// In the character set each message names in MSH-18 (a sender's body).
    AsDeclared,
    /// UTF-8 whatever MSH-18 says: canonical records, which `split` already decoded (their
    /// MSH-18 still names the set the sender used).
    Utf8,
}

/// How a line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Break {
    /// CR alone (the standard's segment terminator).
    Cr,
    /// LF alone.
    Lf,
    /// CR LF.
    CrLf,
    /// The end of the body.
    End,
}

/// The lines of `body` with how each ended and where it starts.
fn lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8], Break)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= body.len() {
            return None;
        }
        let start = at;
        let Some(length) = body[start..].iter().position(|&b| b == b'\r' || b == b'\n') else {
            at = body.len();
            return Some((start, &body[start..], Break::End));
        };
        let end = start + length;
        let ended = match (body[end], body.get(end + 1)) {
            (b'\r', Some(b'\n')) => Break::CrLf,
            (b'\r', _) => Break::Cr,
            _ => Break::Lf,
        };
        at = end + if ended == Break::CrLf { 2 } else { 1 };
        Some((start, &body[start..end], ended))
    })
}

/// Whether `line` starts a segment: a three-character id (a capital letter, then capitals or
/// digits; lower case is let through) and then the field separator `separator`, or nothing.
fn is_segment(line: &[u8], separator: u8) -> bool {
    line.len() >= 3
        && line[0].is_ascii_alphabetic()
        && line[1..3].iter().all(u8::is_ascii_alphanumeric)
        && line.get(3).is_none_or(|&b| b == separator)
}

/// The message being gathered: where each line starts and ends in the body, how its MSH line
/// ended, and the first line that is no segment.
struct Gathering {
    lines: Vec<(usize, usize)>,
    separator: u8,
    terminator: Break,
    not_a_segment: Option<usize>,
}

/// What a body holds, in order: each message or the reason it cannot be read.
///
/// A line break of another kind than the one ending the message's MSH segment, followed by text
/// that starts no segment, is part of a field (a note's LF inside a message whose segments end
/// with CR); any other line that starts no segment refuses its message, since it would be lost.
pub fn messages(body: &[u8], text: Text) -> Vec<Result<Found, Unusable>> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut out = Vec::new();
    let mut current: Option<Gathering> = None;
    let mut previous_break = Break::End;
    let mut stray = 0usize;
    let mut envelopes = Envelopes::default();
    let finish = |gathering: Gathering, out: &mut Vec<Result<Found, Unusable>>| {
        let lines: Vec<&[u8]> = gathering.lines.iter().map(|&(start, end)| trim_end(&body[start..end])).collect();
        out.push(match gathering.not_a_segment {
            Some(line) => Err(Unusable {
                reason: format!(
                    "line {} of the message is not a segment (a segment starts with its three-character id, such \
                     as OBX, and the field separator): a line break inside a field must be sent escaped, as \\.br\\",
                    line + 1
                ),
                field: "MSH".into(),
            }),
            None => decode(&lines, text),
        });
    };
    for (start, line, ended) in lines(body) {
        let this_break = std::mem::replace(&mut previous_break, ended);
        let trimmed = trim_end(line);
        // Blank, or only control characters (a DOS end-of-file mark, NUL padding).
        if trimmed.iter().all(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            continue;
        }
        let name = trimmed.get(..3).unwrap_or(trimmed);
        if matches!(name, b"FHS" | b"BHS" | b"BTS" | b"FTS") {
            // An envelope segment ends the message before it.
            if let Some(gathering) = current.take() {
                finish(gathering, &mut out);
            }
            envelopes.segment(name, trimmed, stray, &mut out);
            continue;
        }
        if name == b"MSH" {
            if let Some(gathering) = current.take() {
                finish(gathering, &mut out);
            }
            let separator = trimmed.get(3).copied().unwrap_or(b'|');
            current = Some(Gathering {
                lines: vec![(start, start + line.len())],
                separator,
                terminator: ended,
                not_a_segment: None,
            });
        } else if let Some(gathering) = current.as_mut() {
            // (With a separator that cannot be one, the MSH's own error refuses the message.)
            if is_segment(trimmed, gathering.separator) || !gathering.separator.is_ascii_punctuation() {
                gathering.lines.push((start, start + line.len()));
            } else if this_break != gathering.terminator && matches!(this_break, Break::Cr | Break::Lf) {
                // The line goes on: what came before the break and what follows are one field.
                let last = gathering.lines.last_mut().expect("a message has its MSH line");
                last.1 = start + line.len();
            } else {
                gathering.not_a_segment.get_or_insert(gathering.lines.len());
                gathering.lines.push((start, start + line.len()));
            }
        } else {
            stray += 1;
        }
    }
    if let Some(gathering) = current.take() {
        finish(gathering, &mut out);
    }
    envelopes.end(&mut out);
    if stray > 0 {
        let reason = if out.is_empty() {
            format!("no MSH segment: the body holds {stray} segment(s) but no HL7 v2 message")
        } else {
            format!("{stray} segment(s) before the first MSH belong to no message")
        };
        out.insert(0, Err(Unusable { reason, field: "MSH".into() }));
    }
    if out.is_empty() {
        out.push(Err(Unusable {
            reason: "the body holds no HL7 v2 message (no MSH segment)".into(),
            field: "MSH".into(),
        }));
    }
    out
}

/// The batch and file envelopes open in a body, checked against their trailers: a batch whose
/// BTS-1 counts other messages than it holds, or that has no BTS (a file cut short: its last
/// message may have lost segments too), refuses every message it holds; the same for a file
/// (FHS) by its FTS-1 count of batches.
#[derive(Debug, Default)]
struct Envelopes {
    /// Where the open batch's messages start in the output, and the count of segments outside
    /// any message when it opened, when one is open.
    batch: Option<(usize, usize)>,
    /// Where the open file's messages start, and how many batches it has ended.
    file: Option<(usize, usize)>,
}

impl Envelopes {
    /// `stray`: segments outside any message so far (refused on their own).
    fn segment(&mut self, name: &[u8], line: &[u8], stray: usize, out: &mut Vec<Result<Found, Unusable>>) {
        match name {
            b"FHS" => {
                self.end(out);
                self.file = Some((out.len(), 0));
            }
            b"BHS" => {
                self.end_batch(out);
                self.batch = Some((out.len(), stray));
            }
            b"BTS" => {
                let (first, stray_before) = self.batch.take().unwrap_or((out.len(), stray));
                let held = out.len() - first;
                // Segments of a message without its MSH are refused for that already.
                let refused_already = held == 0 && stray > stray_before;
                if let Some(said) = count(line).filter(|&said| said != held && !refused_already) {
                    let reason = format!(
                        "the batch trailer BTS-1 counts {said} message(s), the batch holds {held}: the body may be cut \
                         short or spliced; none of the batch was stored, send it whole"
                    );
                    refuse_from(first, out, &reason, "BTS-1");
                }
                if let Some((_, batches)) = self.file.as_mut() {
                    *batches += 1;
                }
            }
            _ => {
                self.end_batch(out);
                let (first, batches) = self.file.take().unwrap_or((out.len(), 0));
                if let Some(said) = count(line).filter(|&said| said != batches) {
                    let reason = format!(
                        "the file trailer FTS-1 counts {said} batch(es), the file holds {batches}: the body may be cut \
                         short or spliced; none of the file was stored, send it whole"
                    );
                    refuse_from(first, out, &reason, "FTS-1");
                }
            }
        }
    }

    /// The body ended: an envelope still open lost its trailer.
    fn end(&mut self, out: &mut Vec<Result<Found, Unusable>>) {
        self.end_batch(out);
        if let Some((first, _)) = self.file.take() {
            let reason = "the file (FHS) has no trailer (FTS): the body may be cut short; none of the file was stored, \
                          send it whole";
            refuse_from(first, out, reason, "FTS");
        }
    }

    fn end_batch(&mut self, out: &mut Vec<Result<Found, Unusable>>) {
        if let Some((first, _)) = self.batch.take() {
            let reason = "the batch (BHS) has no trailer (BTS): the body may be cut short; none of the batch was \
                          stored, send it whole";
            refuse_from(first, out, reason, "BTS");
        }
    }
}

/// The count in field 1 of a trailer segment (`BTS|5`), when it gives one.
fn count(line: &[u8]) -> Option<usize> {
    let separator = *line.get(3)?;
    let field = line.split(|&b| b == separator).nth(1)?;
    std::str::from_utf8(field).ok()?.trim().parse().ok()
}

/// Refuses every message of `out` from `first` on (or, when there is none, adds the refusal as
/// a record of its own, so the body is not taken without a word).
fn refuse_from(first: usize, out: &mut Vec<Result<Found, Unusable>>, reason: &str, field: &str) {
    let refusal = Unusable { reason: reason.into(), field: field.into() };
    if first == out.len() {
        out.push(Err(refusal));
        return;
    }
    for message in &mut out[first..] {
        *message = Err(refusal.clone());
    }
}

fn trim_end(line: &[u8]) -> &[u8] {
    let end = line.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(0, |at| at + 1);
    &line[..end]
}

/// Decodes a message's lines in the character set its MSH-18 names (or as UTF-8).
fn decode(lines: &[&[u8]], text: Text) -> Result<Found, Unusable> {
    let charset = match text {
        Text::AsDeclared => charset(lines[0]),
        Text::Utf8 => None,
    };
    let latin1 = match charset.as_deref() {
        None | Some("ASCII") | Some("UNICODE UTF-8") | Some("UTF-8") | Some("UNICODE") => false,
        Some("8859/1") => true,
        Some(_) => {
            return Err(Unusable {
                reason:
                    "MSH-18 names a character set this plugin does not read (it reads ASCII, UNICODE UTF-8 and 8859/1)"
                        .into(),
                field: "MSH-18".into(),
            });
        }
    };
    // A NUL is no text: a value holding one would be cut short by many readers of the tables.
    if let Some(line) = lines.iter().find(|line| line.contains(&0)) {
        let segment = String::from_utf8_lossy(line.get(..3).unwrap_or(line)).into_owned();
        return Err(Unusable {
            reason: format!("segment {segment} holds a NUL byte (0x00), which HL7 v2 text may not hold"),
            field: segment,
        });
    }
    let mut decoded = Vec::with_capacity(lines.len());
    for line in lines {
        if latin1 {
            decoded.push(line.iter().map(|&b| char::from(b)).map(|c| if c == '\r' { '\n' } else { c }).collect());
            continue;
        }
        match std::str::from_utf8(line) {
            // A line break inside a field (a continued line) is kept as LF: the canonical text
            // ends segments with CR.
            Ok(text) if text.contains('\r') => decoded.push(text.replace("\r\n", "\n").replace('\r', "\n")),
            Ok(text) => decoded.push(text.to_string()),
            Err(_) => {
                return Err(Unusable {
                    reason: "the message is not valid UTF-8; send UTF-8, or declare 8859/1 in MSH-18 for Latin-1"
                        .into(),
                    field: "MSH-18".into(),
                });
            }
        }
    }
    Ok(Found { lines: decoded })
}

/// MSH-18 of an MSH line, uppercased, if present (read before the text is decoded: the
/// delimiters and the charset names are ASCII).
fn charset(msh: &[u8]) -> Option<String> {
    let separator = *msh.get(3)?;
    let field = msh.split(|&b| b == separator).nth(17)?;
    let first = field.split(|&b| b == b'~' || b == b'^').next().unwrap_or(field);
    let text = String::from_utf8_lossy(first).trim().to_ascii_uppercase();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(body: &[u8]) -> Vec<Vec<String>> {
        messages(body, Text::AsDeclared).into_iter().map(|m| m.unwrap().lines).collect()
    }

    #[test]
    fn terminators_bom_blank_lines_and_trailing_spaces() {
        let expected = vec![vec!["MSH|^~\\&|A".to_string(), "PID|1".to_string()]];
        assert_eq!(lines(b"MSH|^~\\&|A\rPID|1\r"), expected);
        assert_eq!(lines(b"MSH|^~\\&|A\nPID|1"), expected);
        assert_eq!(lines(b"\xEF\xBB\xBFMSH|^~\\&|A \r\n\r\nPID|1\r\n "), expected);
    }

    #[test]
    fn batches_and_back_to_back_messages() {
        let body = b"FHS|^~\\&\rBHS|^~\\&\rMSH|^~\\&|A\rPID|1\rMSH|^~\\&|B\rBTS|2\rFTS|1\r";
        let found = lines(body);
        assert_eq!(found.len(), 2);
        assert_eq!(found[1], vec!["MSH|^~\\&|B".to_string()]);
    }

    #[test]
    fn segments_without_a_message_are_refused() {
        let refused = messages(b"BHS|^~\\&\rPID|1\rPV1|1\rBTS|1\r", Text::AsDeclared);
        assert_eq!(refused.len(), 1);
        let error = refused[0].clone().unwrap_err();
        assert_eq!(error.field, "MSH");
        assert_eq!(error.reason, "no MSH segment: the body holds 2 segment(s) but no HL7 v2 message");
        assert_eq!(messages(b"\r\n", Text::AsDeclared).len(), 1);
    }

    #[test]
    fn charsets_from_msh_18() {
        let latin1 = messages(b"MSH|^~\\&||||||||||||||||8859/1\rPID|1||||M\xFCller\r", Text::AsDeclared);
        assert_eq!(latin1[0].clone().unwrap().lines[1], "PID|1||||Müller");
        // The canonical record split made of it is UTF-8, its MSH-18 unchanged: not decoded twice.
        let canonical = latin1[0].clone().unwrap().canonical();
        assert_eq!(messages(canonical.as_bytes(), Text::Utf8)[0].clone().unwrap().lines[1], "PID|1||||Müller");
        let invalid = messages(b"MSH|^~\\&|A\rPID|1||||M\xFCller\r", Text::AsDeclared);
        assert_eq!(invalid[0].clone().unwrap_err().field, "MSH-18");
        let other = messages(b"MSH|^~\\&||||||||||||||||ISO IR87\r", Text::AsDeclared);
        assert_eq!(other[0].clone().unwrap_err().field, "MSH-18");
    }
}
