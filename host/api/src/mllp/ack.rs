//! HL7 v2 acknowledgements in original mode: an `ACK` whose MSH is built from the inbound
//! message's (sender and receiver swapped, its delimiters, processing id and version), an MSA
//! naming the inbound control id (MSH-10), and for an error an ERR naming the field.

/// The acknowledgement code (MSA-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Application accept: the message is durable.
    Accept,
    /// Application error: the plugin refused the message's content (sending it again unchanged
    /// will not help).
    Error,
    /// Application reject: the message failed the checks before the application (unreadable,
    /// type or version not taken), the source is not granted, or it could not be stored now
    /// (nothing was stored; sending it again later is safe).
    Reject,
}

impl Code {
    fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "AA",
            Self::Error => "AE",
            Self::Reject => "AR",
        }
    }
}

/// The parts of an inbound MSH an acknowledgement needs, as sent (not decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    field: char,
    encoding: String,
    fields: Vec<String>,
}

impl Header {
    /// Reads the first MSH of `message` (after a byte order mark, blank lines, or a batch's
    /// FHS/BHS header), if it has one before any other segment.
    pub fn read(message: &[u8]) -> Option<Self> {
        let text = message.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(message);
        let line = text
            .split(|&b| b == b'\r' || b == b'\n')
            .map(|line| line.trim_ascii())
            .find(|line| !line.is_empty() && !line.starts_with(b"FHS") && !line.starts_with(b"BHS"))?;
        let line = String::from_utf8_lossy(line).into_owned();
        let rest = line.strip_prefix("MSH")?;
        let field = rest.chars().next().filter(|c| c.is_ascii_punctuation())?;
        let mut parts = rest[1..].split(field);
        let encoding = parts.next().unwrap_or("").to_string();
        // fields[n] is MSH-n for n >= 3.
        let mut fields = vec![String::new(), field.to_string(), encoding.clone()];
        fields.extend(parts.map(str::to_string));
        Some(Self { field, encoding, fields })
    }

    fn get(&self, n: usize) -> &str {
        self.fields.get(n).map_or("", String::as_str)
    }

    fn component(&self, n: usize, c: usize) -> &str {
        let separator = self.encoding.chars().next().unwrap_or('^');
        self.get(n).split(separator).nth(c - 1).unwrap_or("")
    }

    /// MSH-10, the control id the acknowledgement names.
    pub fn control_id(&self) -> &str {
        self.component(10, 1)
    }

    /// MSH-12.1, the version.
    fn version(&self) -> &str {
        self.component(12, 1)
    }
}

/// Why a message was not accepted: the reason, and the field at fault as the plugin names it
/// (`PID-7`, `OBX[3]-5`, `MSH`) when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong (never quotes the message).
    pub reason: String,
    /// Where.
    pub field: Option<String>,
    /// HL7 table 0357 error code.
    pub code: ErrorCode,
}

/// The HL7 table 0357 codes sluice uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 101: a required field is missing.
    RequiredFieldMissing,
    /// 102: a value is not of its data type.
    DataTypeError,
    /// 200: message type not taken.
    UnsupportedMessageType,
    /// 203: HL7 version not read.
    UnsupportedVersion,
    /// 205: the message's id was used before for another message.
    DuplicateKey,
    /// 207: anything else (not granted, not stored now, unreadable).
    ApplicationInternalError,
}

impl ErrorCode {
    fn parts(self) -> (&'static str, &'static str) {
        match self {
            Self::RequiredFieldMissing => ("101", "Required field missing"),
            Self::DataTypeError => ("102", "Data type error"),
            Self::UnsupportedMessageType => ("200", "Unsupported message type"),
            Self::UnsupportedVersion => ("203", "Unsupported version id"),
            Self::DuplicateKey => ("205", "Duplicate key identifier"),
            Self::ApplicationInternalError => ("207", "Application internal error"),
        }
    }

    /// The code for a plugin's rejection of `field` for `reason`.
    pub fn for_rejection(field: Option<&str>, reason: &str) -> Self {
        match field {
            None if reason == crate::record_ids::ID_REUSED => Self::DuplicateKey,
            Some("MSH-12") => Self::UnsupportedVersion,
            Some("MSH-9") => Self::UnsupportedMessageType,
            _ if reason.contains("is empty") || reason.contains("needs") || reason.contains("has no") => {
                Self::RequiredFieldMissing
            }
            Some(_) => Self::DataTypeError,
            None => Self::ApplicationInternalError,
        }
    }
}

/// The acknowledgement of a message whose header is `header` (a default header when the message
/// has none), with control id `ack_id`, sent at `now` (`YYYYMMDDHHMMSS+0000`).
pub fn build(header: Option<&Header>, code: Code, problem: Option<&Problem>, ack_id: &str, now: &str) -> Vec<u8> {
    let default =
        Header { field: '|', encoding: "^~\\&".into(), fields: vec![String::new(), "|".into(), "^~\\&".into()] };
    let header = header.unwrap_or(&default);
    let f = header.field;
    let component = header.encoding.chars().next().unwrap_or('^');
    let escape = |text: &str| escape(text, header);
    let trigger = header.component(9, 2);
    let version = if header.version().is_empty() { "2.5" } else { header.get(12) };
    let processing = if header.get(11).is_empty() { "P" } else { header.get(11) };
    let mut out = format!(
        "MSH{f}{enc}{f}{recv_app}{f}{recv_fac}{f}{send_app}{f}{send_fac}{f}{now}{f}{f}ACK{c}{trigger}{c}ACK{f}{ack_id}{f}{processing}{f}{version}\r",
        enc = header.encoding,
        recv_app = header.get(5),
        recv_fac = header.get(6),
        send_app = header.get(3),
        send_fac = header.get(4),
        c = component,
    );
    out.push_str(&format!("MSA{f}{}{f}{}", code.as_str(), header.control_id()));
    if let Some(problem) = problem {
        out.push_str(&format!("{f}{}", escape(&problem.reason)));
    }
    out.push('\r');
    if let Some(problem) = problem {
        let (number, name) = problem.code.parts();
        let modern = version_at_least(if header.version().is_empty() { "2.5" } else { header.version() }, 5);
        if modern {
            let location = location(problem.field.as_deref(), component);
            // ERR-2 location, ERR-3 code, ERR-4 severity, ERR-8 user message.
            out.push_str(&format!(
                "ERR{f}{f}{location}{f}{number}{c}{name}{c}HL70357{f}E{f}{f}{f}{f}{}\r",
                escape(&problem.reason),
                c = component
            ));
        } else {
            // ERR-1 (to 2.4): segment^sequence^field^code&text&HL70357, the code always the
            // fourth component.
            let sub = header.encoding.chars().nth(3).unwrap_or('&');
            let [segment, sequence, field] = location_parts(problem.field.as_deref());
            out.push_str(&format!(
                "ERR{f}{segment}{c}{sequence}{c}{field}{c}{number}{sub}{name}{sub}HL70357\r",
                c = component
            ));
        }
    }
    out.into_bytes()
}

/// `PID-7` → `PID^1^7`, `OBX[3]-5` → `OBX^3^5`, `MSH` → `MSH^1`.
fn location(field: Option<&str>, component: char) -> String {
    let Some(field) = field else { return String::new() };
    let [segment, sequence, number] = location_parts(Some(field));
    match number {
        "" => format!("{segment}{component}{sequence}"),
        number => format!("{segment}{component}{sequence}{component}{number}"),
    }
}

/// `PID-7` → segment `PID`, sequence `1`, field `7`; `OBX[3]` → `OBX`, `3`, none; no field →
/// all empty.
fn location_parts(field: Option<&str>) -> [&str; 3] {
    let Some(field) = field else { return [""; 3] };
    let (segment, number) = field.split_once('-').unwrap_or((field, ""));
    let (name, sequence) = match segment.split_once('[') {
        Some((name, rest)) => (name, rest.trim_end_matches(']')),
        None => (segment, "1"),
    };
    [name, sequence, number]
}

fn version_at_least(version: &str, minor: u32) -> bool {
    let mut parts = version.split('.');
    parts.next() == Some("2") && parts.next().and_then(|m| m.parse::<u32>().ok()).is_some_and(|m| m >= minor)
}

/// `text` with the message's delimiters escaped, on one line.
fn escape(text: &str, header: &Header) -> String {
    let mut chars = header.encoding.chars();
    let (component, repetition, escape, subcomponent) = (
        chars.next().unwrap_or('^'),
        chars.next().unwrap_or('~'),
        chars.next().unwrap_or('\\'),
        chars.next().unwrap_or('&'),
    );
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            _ if c == escape => out.push_str(&format!("{escape}E{escape}")),
            _ if c == header.field => out.push_str(&format!("{escape}F{escape}")),
            _ if c == component => out.push_str(&format!("{escape}S{escape}")),
            _ if c == subcomponent => out.push_str(&format!("{escape}T{escape}")),
            _ if c == repetition => out.push_str(&format!("{escape}R{escape}")),
            '\r' | '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INBOUND: &[u8] =
        b"MSH|^~\\&|LAB|NORTH|SLUICE|DW|20240101120000+0100||ORU^R01^ORU_R01|M-17|P|2.5.1\rPID|1||P1\r";

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn an_accept_swaps_sender_and_receiver_and_names_the_control_id() {
        let header = Header::read(INBOUND).unwrap();
        assert_eq!(
            text(build(Some(&header), Code::Accept, None, "A1", "20240101110001+0000")),
            "MSH|^~\\&|SLUICE|DW|LAB|NORTH|20240101110001+0000||ACK^R01^ACK|A1|P|2.5.1\rMSA|AA|M-17\r"
        );
    }

    #[test]
    fn an_error_names_the_field_in_err() {
        let header = Header::read(INBOUND).unwrap();
        let problem = Problem {
            reason: "OBX[3]-5 is not a number (OBX-2 is NM)".into(),
            field: Some("OBX[3]-5".into()),
            code: ErrorCode::for_rejection(Some("OBX[3]-5"), "is not a number"),
        };
        assert_eq!(
            text(build(Some(&header), Code::Error, Some(&problem), "A2", "20240101110001+0000")),
            "MSH|^~\\&|SLUICE|DW|LAB|NORTH|20240101110001+0000||ACK^R01^ACK|A2|P|2.5.1\r\
             MSA|AE|M-17|OBX[3]-5 is not a number (OBX-2 is NM)\r\
             ERR||OBX^3^5|102^Data type error^HL70357|E||||OBX[3]-5 is not a number (OBX-2 is NM)\r"
        );
    }

    #[test]
    fn older_versions_get_err_1_and_delimiters_are_escaped() {
        let inbound = b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|X9|T|2.3\r";
        let header = Header::read(inbound).unwrap();
        let problem = Problem {
            reason: "PID-3 (patient identifier list) has no identifier".into(),
            field: Some("PID-3".into()),
            code: ErrorCode::for_rejection(Some("PID-3"), "has no identifier"),
        };
        assert_eq!(
            text(build(Some(&header), Code::Error, Some(&problem), "A3", "2024")),
            "MSH|^~\\&|C|D|A|B|2024||ACK^A01^ACK|A3|T|2.3\r\
             MSA|AE|X9|PID-3 (patient identifier list) has no identifier\r\
             ERR|PID^1^3^101&Required field missing&HL70357\r"
        );
        let pipes = Problem { reason: "a|b^c".into(), field: None, code: ErrorCode::ApplicationInternalError };
        let ack = text(build(None, Code::Reject, Some(&pipes), "A4", "2024"));
        assert!(ack.contains("MSA|AR||a\\F\\b\\S\\c\r"), "{ack}");
        // Without an inbound header the ACK says 2.5, and its ERR has 2.5's layout.
        assert!(ack.contains("|ACK^^ACK|A4|P|2.5\r"), "{ack}");
        assert!(ack.ends_with("ERR|||207^Application internal error^HL70357|E||||a\\F\\b\\S\\c\r"), "{ack}");
        // Before 2.5, a problem with no field still has its code in ERR-1's fourth component.
        let ack = text(build(Some(&header), Code::Reject, Some(&pipes), "A5", "2024"));
        assert!(ack.ends_with("ERR|^^^207&Application internal error&HL70357\r"), "{ack}");
        let segment_only = Problem { field: Some("MSH".into()), ..problem };
        let ack = text(build(Some(&header), Code::Error, Some(&segment_only), "A6", "2024"));
        assert!(ack.ends_with("ERR|MSH^1^^101&Required field missing&HL70357\r"), "{ack}");
    }
}
