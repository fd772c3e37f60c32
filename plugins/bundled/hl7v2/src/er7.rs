//! HL7 v2 "ER7" (pipe-and-hat) encoding: one message's segments, fields, repetitions,
//! components and subcomponents, with the encoding characters read from MSH-1/MSH-2 and escape
//! sequences decoded.

/// The five delimiters a message declares in MSH-1 and MSH-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    /// Between fields (MSH-1), usually `|`.
    pub field: char,
    /// Between components, usually `^`.
    pub component: char,
    /// Between repetitions, usually `~`.
    pub repetition: char,
    /// Starts and ends escape sequences, usually `\`; none when MSH-2 leaves it out.
    pub escape: Option<char>,
    /// Between subcomponents, usually `&`.
    pub subcomponent: char,
}

impl Delimiters {
    /// Reads the delimiters from the text of an MSH segment (`MSH|^~\&|...`). Returns them and
    /// the byte length of `MSH` + MSH-1 + MSH-2 (where MSH-3 starts, after its separator), or why
    /// the header cannot be read, naming the field.
    pub fn from_msh(segment: &str) -> Result<(Self, usize), (String, &'static str)> {
        let rest = segment.strip_prefix("MSH").ok_or(("the message does not start with MSH".to_string(), "MSH"))?;
        let mut chars = rest.chars();
        let field = chars.next().ok_or(("MSH-1 (the field separator) is missing".to_string(), "MSH-1"))?;
        if !usable(field) {
            return Err((
                format!("MSH-1 field separator {field:?} cannot be used (it must be printable ASCII punctuation)"),
                "MSH-1",
            ));
        }
        let encoding_text: String = chars.by_ref().take_while(|&c| c != field).collect();
        // A doubled escape character (`^~\\&`, an artifact of source code that escaped the
        // backslash) is read as the single one it was meant to be.
        let mut encoding: Vec<char> = encoding_text.chars().collect();
        if encoding.len() == 5 && encoding[2] == '\\' && encoding[3] == '\\' {
            encoding.remove(3);
        }
        let [component, repetition, escape, subcomponent] = match encoding.as_slice() {
            [c, r, e, s] | [c, r, e, s, _] => [*c, *r, *e, *s],
            [c, r, e] => [*c, *r, *e, '&'],
            _ => {
                return Err((
                    format!(
                        "MSH-2 encoding characters must be 4 (component, repetition, escape, subcomponent), found {}",
                        encoding.len()
                    ),
                    "MSH-2",
                ));
            }
        };
        let all = [field, component, repetition, escape, subcomponent];
        if all.iter().any(|&c| !usable(c)) || (1..all.len()).any(|i| all[..i].contains(&all[i])) {
            return Err((
                "MSH-2 encoding characters must be distinct printable ASCII punctuation".to_string(),
                "MSH-2",
            ));
        }
        let header = 3 + field.len_utf8() + encoding_text.len();
        Ok((Self { field, component, repetition, escape: Some(escape), subcomponent }, header))
    }
}

/// Whether `c` may serve as a delimiter: printable ASCII that is not a letter, digit or space.
fn usable(c: char) -> bool {
    c.is_ascii_graphic() && !c.is_ascii_alphanumeric()
}

/// One segment: its name and its fields, numbered as the standard numbers them.
#[derive(Debug, Clone)]
pub struct Segment<'a> {
    /// The three-character segment id (`PID`).
    pub name: &'a str,
    /// Raw field texts; index `n` is field `n` (index 0 is the name). For MSH, 1 is the field
    /// separator and 2 the encoding characters.
    fields: Vec<&'a str>,
}

impl<'a> Segment<'a> {
    /// Raw text of field `n` (escapes not decoded), empty when absent.
    pub fn raw(&self, n: usize) -> &'a str {
        self.fields.get(n).copied().unwrap_or("")
    }
}

/// A parsed message: its delimiters and segments in order.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// The delimiters from MSH-1/MSH-2.
    pub delimiters: Delimiters,
    /// Segments in order, MSH first.
    pub segments: Vec<Segment<'a>>,
}

impl<'a> Message<'a> {
    /// Parses one message: `segments` are its lines (terminators removed), MSH first.
    pub fn parse(lines: &[&'a str]) -> Result<Self, (String, &'static str)> {
        let msh = lines.first().copied().unwrap_or("");
        let (delimiters, header) = Delimiters::from_msh(msh)?;
        let mut segments = Vec::with_capacity(lines.len());
        for (index, line) in lines.iter().enumerate() {
            if index == 0 {
                let encoding = &msh[3 + delimiters.field.len_utf8()..header];
                let mut fields = vec!["MSH", &msh[3..3 + delimiters.field.len_utf8()], encoding];
                if let Some(rest) = msh.get(header..).and_then(|r| r.strip_prefix(delimiters.field)) {
                    fields.extend(rest.split(delimiters.field));
                }
                segments.push(Segment { name: "MSH", fields });
                continue;
            }
            let fields: Vec<&str> = line.split(delimiters.field).collect();
            segments.push(Segment { name: fields[0], fields });
        }
        Ok(Self { delimiters, segments })
    }

    /// The first segment named `name`.
    pub fn first(&self, name: &str) -> Option<&Segment<'a>> {
        self.segments.iter().find(|s| s.name == name)
    }

    /// A reader of field values in `segment`, decoding with this message's delimiters.
    pub fn read<'m>(&'m self, segment: &'m Segment<'a>) -> Fields<'m, 'a> {
        Fields { delimiters: self.delimiters, segment }
    }
}

/// Reads decoded values out of one segment.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'m, 'a> {
    delimiters: Delimiters,
    segment: &'m Segment<'a>,
}

impl<'m, 'a> Fields<'m, 'a> {
    /// The repetitions of field `n`, raw.
    pub fn repetitions(&self, n: usize) -> impl Iterator<Item = &'a str> + 'm {
        let raw = self.segment.raw(n);
        let separator = self.delimiters.repetition;
        // MSH-2 holds the repetition character itself.
        let whole = self.segment.name == "MSH" && n <= 2;
        raw.split(move |c| !whole && c == separator).filter(move |_| !raw.is_empty())
    }

    /// Component `c` (1-based) of `repetition`, subcomponent `s` (1-based), decoded and trimmed;
    /// None when empty, blank or the explicit null `""`.
    pub fn part(&self, repetition: &str, c: usize, s: usize) -> Option<String> {
        let component = repetition.split(self.delimiters.component).nth(c - 1)?;
        let sub = component.split(self.delimiters.subcomponent).nth(s - 1)?;
        self.text(sub)
    }

    /// Component `c` of the first repetition of field `n` (its first subcomponent).
    pub fn get(&self, n: usize, c: usize) -> Option<String> {
        self.repetitions(n).next().and_then(|r| self.part(r, c, 1))
    }

    /// Subcomponent `s` of component `c` of the first repetition of field `n`.
    pub fn sub(&self, n: usize, c: usize, s: usize) -> Option<String> {
        self.repetitions(n).next().and_then(|r| self.part(r, c, s))
    }

    /// The whole first repetition of field `n` as text: components kept with their separator as
    /// sent (trailing empty ones dropped), each decoded.
    pub fn whole(&self, n: usize) -> Option<String> {
        self.joined(self.repetitions(n).next()?)
    }

    /// The first repetition of field `n` with each component's first subcomponent, joined by the
    /// component separator (trailing empty components dropped): `4East^136^B^Main`.
    pub fn components(&self, n: usize) -> Option<String> {
        let repetition = self.repetitions(n).next()?;
        let parts: Vec<String> = repetition
            .split(self.delimiters.component)
            .map(|c| c.split(self.delimiters.subcomponent).next().and_then(|s| self.text(s)).unwrap_or_default())
            .collect();
        let used = parts.iter().rposition(|p| !p.is_empty())? + 1;
        Some(parts[..used].join(&self.delimiters.component.to_string()))
    }

    /// One repetition as text: components kept with their separator as sent (trailing empty
    /// ones dropped), each decoded.
    pub fn joined(&self, repetition: &str) -> Option<String> {
        let parts: Vec<String> =
            repetition.split(self.delimiters.component).map(|c| self.text(c).unwrap_or_default()).collect();
        let used = parts.iter().rposition(|p| !p.is_empty())? + 1;
        Some(parts[..used].join(&self.delimiters.component.to_string()))
    }

    /// Decodes one leaf value: escapes, trimming, blank and `""` as None.
    pub fn text(&self, raw: &str) -> Option<String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed == "\"\"" {
            return None;
        }
        let decoded = decode(trimmed, &self.delimiters);
        let decoded = decoded.trim();
        (!decoded.is_empty()).then(|| decoded.to_string())
    }
}

/// Decodes escape sequences: `\F\ \S\ \T\ \R\ \E\` to the delimiters, `\Xhh…\` to the bytes it
/// names (as UTF-8, else Latin-1), `\.br\` to a line break and `\.sp\` (`\.spN\`: N) to line
/// breaks; highlighting (`\H\ \N\`), the other formatting commands (`\.in\ \.ti\ \.sk\ \.ce\
/// \.fi\ \.nf\`), character-set switches (`\C…\ \M…\`) and local escapes (`\Z…\`) are dropped.
/// A sequence that is not closed, or not one of these, is kept as written.
pub fn decode(text: &str, d: &Delimiters) -> String {
    let Some(escape) = d.escape else {
        return text.to_string();
    };
    if !text.contains(escape) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(escape) {
        out.push_str(&rest[..start]);
        let after = &rest[start + escape.len_utf8()..];
        let Some(end) = after.find(escape) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let sequence = &after[..end];
        match expand(sequence, d) {
            Some(expanded) => {
                out.push_str(&expanded);
                rest = &after[end + escape.len_utf8()..];
            }
            None => {
                out.push(escape);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn expand(sequence: &str, d: &Delimiters) -> Option<String> {
    let escape = d.escape?;
    Some(match sequence {
        "F" => d.field.to_string(),
        "S" => d.component.to_string(),
        "T" => d.subcomponent.to_string(),
        "R" => d.repetition.to_string(),
        "E" => escape.to_string(),
        ".br" => "\n".to_string(),
        // Skip N lines (one when N is absent).
        _ if sequence.strip_prefix(".sp").is_some_and(|n| n.trim().is_empty() || n.trim().parse::<u8>().is_ok()) => {
            "\n".repeat(sequence[3..].trim().parse::<usize>().unwrap_or(1).max(1))
        }
        "H" | "N" => String::new(),
        _ if sequence.starts_with(['X', 'x']) && sequence.len() > 1 => {
            let hex = &sequence[1..];
            if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let bytes: Vec<u8> =
                (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)).collect();
            match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(error) => error.into_bytes().into_iter().map(char::from).collect(),
            }
        }
        _ if sequence.starts_with(['C', 'M', 'Z', '.']) && sequence.len() > 1 => String::new(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standard() -> Delimiters {
        Delimiters { field: '|', component: '^', repetition: '~', escape: Some('\\'), subcomponent: '&' }
    }

    #[test]
    fn delimiters_come_from_msh_1_and_2() {
        assert_eq!(Delimiters::from_msh("MSH|^~\\&|APP").unwrap(), (standard(), 8));
        let (doubled, header) = Delimiters::from_msh("MSH|^~\\\\&|APP").unwrap();
        assert_eq!((doubled, header), (standard(), 9));
        let (custom, _) = Delimiters::from_msh("MSH#$*!@#APP").unwrap();
        assert_eq!(
            custom,
            Delimiters { field: '#', component: '$', repetition: '*', escape: Some('!'), subcomponent: '@' }
        );
        assert_eq!(Delimiters::from_msh("MSHA^~\\&").unwrap_err().1, "MSH-1");
        assert_eq!(Delimiters::from_msh("MSH|^~|").unwrap_err().1, "MSH-2");
        assert_eq!(Delimiters::from_msh("MSH|^^\\&|").unwrap_err().1, "MSH-2");
    }

    #[test]
    fn escapes_are_decoded_and_unknown_ones_kept() {
        let d = standard();
        assert_eq!(decode("A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\", &d), "A|B^C&D~E\\");
        assert_eq!(decode("line\\.br\\next \\H\\bold\\N\\", &d), "line\nnext bold");
        assert_eq!(decode("a\\.sp\\b\\.sp2\\c\\.in+4\\d", &d), "a\nb\n\ncd");
        assert_eq!(decode("\\X0D\\\\X0A\\", &d), "\r\n");
        assert_eq!(decode("caf\\XC3A9\\", &d), "café");
        assert_eq!(decode("open \\Q and", &d), "open \\Q and");
        assert_eq!(decode("trailing\\", &d), "trailing\\");
    }

    #[test]
    fn fields_components_and_repetitions_are_read_as_numbered() {
        let lines = [
            "MSH|^~\\&|APP^X|FAC|||20210101||ADT^A01^ADT_A01|1|P|2.5",
            "PID|1||A1^^^HOSP&1.2&ISO~B2||DOE^JANE^Q^^\\T\\||\"\"",
        ];
        let message = Message::parse(&lines).unwrap();
        let msh = message.read(&message.segments[0]);
        assert_eq!(message.segments[0].raw(1), "|");
        assert_eq!(message.segments[0].raw(2), "^~\\&");
        assert_eq!(msh.get(3, 1).as_deref(), Some("APP"));
        assert_eq!(msh.get(9, 2).as_deref(), Some("A01"));
        assert_eq!(msh.get(12, 1).as_deref(), Some("2.5"));
        let pid = message.read(message.first("PID").unwrap());
        assert_eq!(pid.repetitions(3).count(), 2);
        assert_eq!(pid.sub(3, 4, 1).as_deref(), Some("HOSP"));
        assert_eq!(pid.sub(3, 4, 2).as_deref(), Some("1.2"));
        assert_eq!(pid.get(5, 5).as_deref(), Some("&"));
        assert_eq!(pid.whole(5).as_deref(), Some("DOE^JANE^Q^^&"));
        assert_eq!(pid.get(7, 1), None, "explicit null");
        assert_eq!(pid.get(40, 1), None, "absent field");
    }
}
