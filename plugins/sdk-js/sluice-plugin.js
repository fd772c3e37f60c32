// The sluice plugin SDK for JavaScript: write a schema and, if you like, a per-record check; the
// SDK does the rest of the plugin contract (wit/plugin.wit) the way the Rust SDK does for flat
// records. Built into a component with componentize-js (`jco componentize`).
//
//   import * as sp from "./sluice-plugin.js";
//   export const source = sp.exportPlugin({
//     name: "vitals", version: "0.1.0", doc: "Vital signs.",
//     table: "vitals", tableDoc: "One measurement.", key: "PatientID",
//     fields: [sp.field("PatientID", sp.STRING, { nullable: false }), sp.field("HeartRate", sp.INT32)],
//     check(row) { if (row.HeartRate > 300) throw new sp.Reject("HeartRate is above 300", "HeartRate"); },
//   });
//
// Bodies, NULL rules, typing, rejections (reason and field) and partition keys are those of the
// Rust SDK; the shared test vectors (plugins/sdk-vectors/) hold the three SDKs to them. Under a
// plain Node.js, `split` and `transform` run the plugin's logic without a host.

export const BOOLEAN = "boolean", INT32 = "int32", INT64 = "int64", FLOAT64 = "float64";
export const STRING = "string", DATE = "date", TIMESTAMP = "timestamp";
const COLUMN_TYPES = [BOOLEAN, INT32, INT64, FLOAT64, STRING, DATE, TIMESTAMP];

/** Content types the SDK reads. */
export const CONTENT_TYPES = ["application/json", "application/x-ndjson", "application/ndjson", "text/csv",
  "text/tab-separated-values", "text/plain"];
/** The content type of canonical records. */
export const CANONICAL_CONTENT_TYPE = "application/json";
const MAX_ENCODING_DEPTH = 2;
const NAME = /^[a-z][a-z0-9_]*$/;
const PLUGIN_NAME = /^[a-z][a-z0-9_-]{0,63}$/;
/** How keys and headers are matched to declared names, as errors word it. */
const NAMES_MATCHED = "matched ignoring case, spaces, `_`, `-` and `.`";

/** One field: the sender's name for it (matched ignoring case, spaces, `_`, `-` and `.`) and
 * the column it fills. */
export function field(source, type, { nullable = true, doc = "", column } = {}) {
  if (!COLUMN_TYPES.includes(type)) throw new Error(`unknown column type ${type} (one of ${COLUMN_TYPES.join(", ")})`);
  return { source, type, nullable, doc, column: column ?? source.toLowerCase() };
}

/** A configuration key with its doc and default (undefined: optional). */
export function setting(name, doc = "", defaultValue = undefined) {
  return { name, doc, default: defaultValue };
}

/** Thrown by a plugin's `check` to reject a typed row: the reason (never quoting values) and field. */
export class Reject extends Error {
  constructor(reason, field = undefined) {
    super(reason);
    this.reason = reason;
    this.field = field;
  }
}

const MISSING = Symbol("missing");
const NESTED = Symbol("nested");

// --- values ---------------------------------------------------------------------------------

const isUnknown = (text) => {
  const t = text.trim();
  return t === "" || t.toLowerCase() === "unknown";
};
const INTEGER = /^[+-]?[0-9]+$/;
const NUMERIC = /^[0-9.+\-eE]+$/;

function parseNumber(text) {
  if (!NUMERIC.test(text) || !/[0-9]/.test(text)) return null;
  if (!/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(text)) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}
const COMMA_NUMBER = "is not a number: it holds a comma (a decimal comma or a thousands separator); send digits "
  + "and a decimal point";
const COMMA_INTEGER = "is not an integer: it holds a comma (a thousands separator?); send the digits alone";
const HAS_COMMA = /^(?=.*,)(?=.*[0-9])[0-9,.+-]+$/;
const NOT_AN_INTEGER = "is not an integer";
const UNSAFE_INTEGER = "is a JSON number past 2^53, which JavaScript plugins cannot read exactly: send it as a JSON "
  + "string";
const OUT_OF_RANGE = "is out of the integer range";
const EXPONENT = "is written in exponent notation (as spreadsheets show long numbers, often rounded): send all its digits";
/** A number that holds an integer exactly (below 9e15, where doubles still count by one). */
function integral(value) {
  if (!Number.isInteger(value)) throw new Invalid(NOT_AN_INTEGER);
  if (Math.abs(value) >= 2 ** 63) throw new Invalid(OUT_OF_RANGE);
  if (Math.abs(value) >= 9.0e15) throw new Invalid(NOT_AN_INTEGER);
  return BigInt(value);
}
/** An integer written as text: digits, or an integral decimal (`12.0`); exponent notation
 * (`2.14E+09`, a spreadsheet's way of showing a long number it may have rounded) is refused.
 * The caller checks the range. */
function parseInteger(text) {
  if (INTEGER.test(text)) return BigInt(text);
  const number = parseNumber(text);
  if (number === null) throw new Invalid(NOT_AN_INTEGER);
  if (/[eE]/.test(text)) throw new Invalid(EXPONENT);
  return integral(number);
}
function parseBool(text) {
  const lowered = text.toLowerCase();
  if (["true", "t", "yes", "y", "1"].includes(lowered)) return true;
  if (["false", "f", "no", "n", "0"].includes(lowered)) return false;
  return null;
}

class Invalid extends Error {}

/** A raw value as a value of `type` (null for NULL); throws an Error saying what is wrong. */
export function convert(raw, type) {
  if (raw === MISSING || raw === null || raw === undefined) return null;
  if (raw === NESTED) throw new Invalid("must be a single value, not an object or array");
  let text = null;
  if (typeof raw === "string") {
    if (isUnknown(raw)) return null;
    text = raw.trim();
  }
  const isNumber = typeof raw === "number";
  if (type === STRING) {
    if (text === null) throw new Invalid("must be text");
    return text;
  }
  if (type === INT32 || type === INT64) {
    let value;
    // Past 2^53 a JavaScript number may already be another integer than the one sent.
    if (isNumber && Number.isInteger(raw) && !Number.isSafeInteger(raw) && Math.abs(raw) < 2 ** 63) {
      throw new Invalid(UNSAFE_INTEGER);
    }
    if (isNumber && Number.isInteger(raw)) value = BigInt(raw);
    else if (isNumber) value = integral(raw);
    else if (text !== null) {
      try {
        value = parseInteger(text);
      } catch (error) {
        throw HAS_COMMA.test(text) ? new Invalid(COMMA_INTEGER) : error;
      }
    }
    else throw new Invalid(NOT_AN_INTEGER);
    const bound = type === INT32 ? 2n ** 31n : 2n ** 63n;
    if (value < -bound || value >= bound) throw new Invalid(OUT_OF_RANGE);
    return type === INT32 ? Number(value) : value;
  }
  if (type === FLOAT64) {
    if (isNumber) return raw;
    const value = text === null ? null : parseNumber(text);
    if (value === null) throw new Invalid(text !== null && HAS_COMMA.test(text) ? COMMA_NUMBER : "is not a number");
    return value;
  }
  if (type === BOOLEAN) {
    if (typeof raw === "boolean") return raw;
    const value = text === null ? null : parseBool(text);
    if (value === null) throw new Invalid("is not true or false");
    return value;
  }
  if (text === null) throw new Invalid("must be a date as text");
  return type === TIMESTAMP ? parseTimestamp(text) : parseDate(text);
}

const BAD_DATE = "is not a date (expected YYYY-MM-DD or M/D/YYYY)";
const YEAR_ZERO = "has the year 0000, which is no date (send no value for an unknown date)";
const BAD_TIME = "has a time that is not HH:MM[:SS[.fff]] (optionally followed by Z or an offset ±HH:MM)";
const BAD_ZONE = "has a time zone that is not Z, UTC or an offset ±HH:MM, ±HHMM or ±HH";
const DAY_FIRST = "is not a possible date: dates with `/` are read month first (M/D/YYYY); send a day-first date as "
  + "YYYY-MM-DD";
const digits = (text) => (/^[0-9]{1,4}$/.test(text) ? Number(text) : null);
const twoDigits = (text) => (/^[0-9]{2}$/.test(text) ? Number(text) : null);
const daysInMonth = (y, m) => (m === 2 ? (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28)
  : [4, 6, 9, 11].includes(m) ? 30 : 31);
function daysFromCivil(year, month, day) {
  year = month <= 2 ? year - 1 : year;
  const era = Math.floor(year / 400);
  const yoe = year - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}
function calendarDate(text) {
  let year, month, day, rest;
  if (text.includes("-")) {
    [year, ...rest] = text.split("-");
    rest = rest.join("-");
    if (!rest.includes("-")) throw new Invalid(BAD_DATE);
    const at = rest.indexOf("-");
    [month, day] = [rest.slice(0, at), rest.slice(at + 1)];
  } else if (text.includes("/")) {
    const first = text.indexOf("/");
    month = text.slice(0, first);
    rest = text.slice(first + 1);
    if (!rest.includes("/")) throw new Invalid(BAD_DATE);
    const at = rest.indexOf("/");
    [day, year] = [rest.slice(0, at), rest.slice(at + 1)];
  } else {
    throw new Invalid(BAD_DATE);
  }
  if (year.length !== 4) throw new Invalid(BAD_DATE);
  const monthFirst = !text.includes("-");
  [year, month, day] = [digits(year), digits(month), digits(day)];
  if (year === null || month === null || day === null) throw new Invalid(BAD_DATE);
  if (monthFirst && month > 12 && day >= 1 && day <= 12) throw new Invalid(DAY_FIRST);
  if (year === 0) throw new Invalid(YEAR_ZERO);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) throw new Invalid("is not a possible date");
  return daysFromCivil(year, month, day);
}
function timeOfDay(text) {
  const dot = text.indexOf(".");
  const clock = dot < 0 ? text : text.slice(0, dot);
  const fraction = dot < 0 ? null : text.slice(dot + 1);
  if (!clock.includes(":")) throw new Invalid(BAD_TIME);
  const first = clock.indexOf(":");
  const rest = clock.slice(first + 1);
  const second = rest.indexOf(":");
  // `08:5` may be 08:05 or a cut-off 08:50: minutes and seconds take two digits.
  const hour = /^[0-9]{1,2}$/.test(clock.slice(0, first)) ? Number(clock.slice(0, first)) : null;
  const minute = twoDigits(second < 0 ? rest : rest.slice(0, second));
  const sec = second < 0 ? 0 : twoDigits(rest.slice(second + 1));
  if (hour === null || minute === null || sec === null) throw new Invalid(BAD_TIME);
  let micros = 0;
  if (fraction !== null) {
    if (!/^[0-9]{1,9}$/.test(fraction)) throw new Invalid(BAD_TIME);
    micros = Number((fraction + "000000").slice(0, 6));
  }
  if (hour > 23 || minute > 59 || sec > 59) throw new Invalid("has an impossible time of day");
  return ((hour * 60 + minute) * 60 + sec) * 1_000_000 + micros;
}
const firstSeparator = (text) => {
  const found = [text.indexOf(" "), text.indexOf("T")].filter((i) => i >= 0);
  return found.length ? Math.min(...found) : -1;
};
function splitZone(text) {
  const at = firstSeparator(text);
  if (at < 0) return [text, 0];
  const timeAt = at + 1;
  const time = text.slice(timeAt);
  if (time.endsWith("Z") || time.endsWith("z")) return [text.slice(0, -1).trimEnd(), 0];
  if (["utc", "gmt"].includes(time.slice(-3).toLowerCase())) return [text.slice(0, -3).trimEnd(), 0];
  const signAt = Math.max(time.lastIndexOf("+"), time.lastIndexOf("-"));
  if (signAt < 0) return [text, 0];
  const offset = time.slice(signAt + 1);
  let hours, minutes;
  if (offset.length === 2) [hours, minutes] = [offset, "00"];
  else if (offset.length === 4) [hours, minutes] = [offset.slice(0, 2), offset.slice(2)];
  else if (offset.length === 5 && offset[2] === ":") [hours, minutes] = [offset.slice(0, 2), offset.slice(3)];
  else throw new Invalid(BAD_ZONE);
  if (!/^[0-9]{2}$/.test(hours) || !/^[0-9]{2}$/.test(minutes)) throw new Invalid(BAD_ZONE);
  [hours, minutes] = [Number(hours), Number(minutes)];
  if (hours > 23 || minutes > 59) throw new Invalid("has an impossible time zone offset (beyond ±23:59)");
  const sign = time[signAt] === "-" ? -1 : 1;
  return [text.slice(0, timeAt + signAt).trimEnd(), sign * (hours * 3600 + minutes * 60)];
}

/** Microseconds since 1970-01-01 00:00:00 (a BigInt), as the Rust SDK reads timestamps. */
export function parseTimestamp(text) {
  let offset;
  [text, offset] = splitZone(text.trim());
  const at = firstSeparator(text);
  const datePart = at < 0 ? text : text.slice(0, at);
  const timePart = at < 0 ? null : text.slice(at + 1).trim();
  const days = calendarDate(datePart);
  // `2012-06-26T`: a time was meant and is missing, not midnight.
  const micros = timePart === null ? 0 : timeOfDay(timePart);
  return BigInt(days) * 86_400_000_000n + BigInt(micros) - BigInt(offset) * 1_000_000n;
}

/** Days since 1970-01-01 of `YYYY-MM-DD` or `M/D/YYYY` (a time part is ignored). */
export function parseDate(text) {
  return calendarDate(text.trim().split(/[ T]/)[0]);
}

// --- bodies ---------------------------------------------------------------------------------

class Malformed extends Error {}

function jsonValue(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Malformed(String(error.message).replace(/ in JSON at position \d+.*$/, ""));
  }
  checkJson(value);
  return value;
}
function checkJson(value) {
  if (typeof value === "number" && !Number.isFinite(value)) throw new Malformed("number out of range");
  if (typeof value === "string" && !value.isWellFormed()) throw new Malformed("lone leading surrogate in hex escape");
  if (Array.isArray(value)) value.forEach(checkJson);
  else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      checkJson(key);
      checkJson(item);
    }
  }
}
const kind = (v) => (v === null ? "null" : typeof v === "boolean" ? "a boolean" : typeof v === "number" ? "a number"
  : Array.isArray(v) ? "an array" : "a string");
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** The end of the JSON value starting at `start`, or null. */
function valueEnd(text, start) {
  let depth = 0, i = start;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (c === '"') {
      i += 1;
      while (i < n && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      if (i >= n) return null;
      if (depth === 0) return i + 1;
    } else if (c === "[" || c === "{") depth += 1;
    else if (c === "]" || c === "}") {
      depth -= 1;
      if (depth === 0) return i + 1;
      if (depth < 0) return null;
    } else if (depth === 0 && " \t\r\n,".includes(c)) return i;
    i += 1;
  }
  return depth === 0 ? n : null;
}
/** The keys of the JSON object `text` (well formed: already parsed) in order, repeats included. */
function objectKeys(text) {
  const keys = [];
  const n = text.length;
  let i = text.indexOf("{") + 1;
  for (;;) {
    while (i < n && " \t\r\n,".includes(text[i])) i += 1;
    if (i >= n || text[i] !== '"') return keys;
    const keyEnd = valueEnd(text, i);
    keys.push(JSON.parse(text.slice(i, keyEnd)));
    i = text.indexOf(":", keyEnd) + 1;
    while (" \t\r\n".includes(text[i])) i += 1;
    if ('"{['.includes(text[i])) i = valueEnd(text, i);
    else while (i < n && !",} \t\r\n".includes(text[i])) i += 1;
  }
}
function arrayElements(text) {
  const inner = text.slice(1, text.lastIndexOf("]"));
  const elements = [];
  let i = 0;
  while (i < inner.length) {
    while (i < inner.length && " \t\r\n,".includes(inner[i])) i += 1;
    if (i >= inner.length) break;
    const end = valueEnd(inner, i);
    elements.push(inner.slice(i, end));
    i = end;
  }
  return elements;
}
function jsonSequence(text) {
  const values = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && " \t\r\n".includes(text[i])) i += 1;
    if (i >= text.length) break;
    if (!'{["'.includes(text[i])) return null;
    const end = valueEnd(text, i);
    if (end === null) return null;
    values.push(text.slice(i, end));
    i = end;
  }
  return values;
}

/**
 * Whether a text/plain body is JSON rather than a table: it starts with `{`, `[` or a JSON
 * string, unless that first quoted value is followed by a delimiter (`"PatientID","Gender"`).
 */
function plainTextIsJson(text) {
  const body = text.replace(/^\uFEFF/, "");
  const start = body.search(/[^ \t\r\n\f]/);
  if (start < 0) return false;
  if (body[start] === "{" || body[start] === "[") return true;
  if (body[start] !== '"') return false;
  let at = start + 1;
  while (at < body.length && body[at] !== '"') at += body[at] === "\\" ? 2 : 1;
  if (at >= body.length) return true;
  const after = body.slice(at + 1).replace(/^ +/, "")[0];
  return ![",", "\t", ";", "|"].includes(after);
}

/**
 * CSV/TSV rows as the Rust SDK's reader (the csv crate) splits them. Each row's `quoteFault` is
 * the index of its first cell with text after its closing quote (`"Black" or African`), if any.
 */
function delimitedRows(text, delimiter) {
  const rows = [];
  let row = [], cell = "", quoted = false, atStart = true, closed = false;
  const n = text.length;
  for (let i = 0; i < n; i += 1) {
    const c = text[i];
    if (closed && c !== delimiter && c !== "\r" && c !== "\n" && row.quoteFault === undefined) {
      row.quoteFault = row.length;
    }
    closed = false;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i += 1;
        } else {
          quoted = false;
          closed = true;
        }
      } else cell += c;
    } else if (c === '"' && atStart) {
      quoted = true;
      atStart = false;
    } else if (c === delimiter) {
      row.push(cell);
      cell = "";
      atStart = true;
    } else if (c === "\r" || c === "\n") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      if (row.length || cell || !atStart) {
        row.push(cell);
        rows.push(row);
      }
      row = [];
      cell = "";
      atStart = true;
    } else {
      cell += c;
      atStart = false;
    }
  }
  if (row.length || cell || !atStart) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

class Decoder {
  constructor(names, lowered) {
    this.names = names;
    this.lowered = lowered;
    this.records = [];
  }
  emit(outcome) {
    if (Array.isArray(outcome) && outcome.length && outcome.every((slot) => slot === MISSING)) {
      // An object around the records, or one with other names: say so.
      const listed = this.names.slice(0, 4).join(", ") + (this.names.length > 4 ? ", …" : "");
      outcome = `the record holds none of this source's fields (${listed}); send records themselves, `
        + "not an object around them";
    }
    this.records.push(outcome);
  }
  fromObject(obj, text) {
    const slots = new Array(this.names.length).fill(MISSING);
    for (const [key, value] of Object.entries(obj)) {
      const slot = this.lowered.get(nameKey(key));
      if (slot !== undefined) slots[slot] = value !== null && typeof value === "object" ? NESTED : value;
    }
    // The keys as the record gives them: JSON.parse keeps only the last of a repeated key.
    const given = new Map();
    for (const key of objectKeys(text)) {
      const slot = this.lowered.get(nameKey(key));
      if (slot === undefined) continue;
      if (!given.has(slot)) given.set(slot, []);
      given.get(slot).push(key);
    }
    for (const slot of [...given.keys()].sort((a, b) => a - b)) {
      const keys = given.get(slot);
      if (keys.length < 2) continue;
      const spellings = [...new Set(keys)];
      if (spellings.length === 1) return `key \`${spellings[0]}\` is given ${keys.length} times: send it once`;
      return `keys ${spellings.map((k) => `\`${k}\``).join(", ")} all name field \`${this.names[slot]}\` `
        + `(keys are ${NAMES_MATCHED}): send it once`;
    }
    return slots;
  }
  /** One value that should be a record; `text` is its JSON. */
  recordValue(value, depth, text) {
    if (isObject(value)) this.emit(this.fromObject(value, text));
    else if (typeof value === "string" && depth < MAX_ENCODING_DEPTH) {
      let inner;
      try {
        inner = jsonValue(value);
      } catch (error) {
        this.emit(`malformed JSON inside a JSON string: ${error.message}`);
        return;
      }
      this.recordValue(inner, depth + 1, value);
    } else if (typeof value === "string") this.emit("JSON encoded in a JSON string more than twice");
    else this.emit(`expected a JSON object, found ${kind(value)}`);
  }
  document(text, depth) {
    const stripped = text.trim();
    let value;
    try {
      value = jsonValue(stripped);
    } catch (error) {
      const values = jsonSequence(stripped);
      if (values !== null && values.length > 1) {
        values.forEach((item) => this.record(item, depth));
        return;
      }
      if (depth === 0 && text.split("\n").filter((l) => l.trim()).length > 1) {
        this.lines(text);
        return;
      }
      this.emit(this.malformed(error, depth));
      return;
    }
    if (Array.isArray(value)) arrayElements(stripped).forEach((element) => this.record(element, depth));
    else if (typeof value === "string" && depth < MAX_ENCODING_DEPTH) this.document(value, depth + 1);
    else this.recordValue(value, depth, stripped);
  }
  record(text, depth) {
    let value;
    try {
      value = jsonValue(text);
    } catch (error) {
      this.emit(this.malformed(error, depth));
      return;
    }
    this.recordValue(value, depth, text);
  }
  malformed(error, depth) {
    return `${depth ? "malformed JSON inside a JSON string" : "malformed JSON"}: ${error.message}`;
  }
  lines(text) {
    for (let line of text.split("\n")) {
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line.trim()) this.record(line, 0);
    }
  }
  delimited(text, delimiter) {
    const newline = text.indexOf("\n");
    if (newline >= 0) {
      let first = text.slice(0, newline);
      if (first.endsWith("\r")) first = first.slice(0, -1);
      if (first.length === 5 && first.slice(0, 4).toLowerCase() === "sep=") {
        delimiter = first[4];
        text = text.slice(newline + 1);
      }
    }
    const rows = delimitedRows(text, delimiter);
    if (!rows.length) return;
    const [header, ...body] = rows;
    const columns = header.map((h) => this.lowered.get(nameKey(h)));
    const fault = this.headerFault(header, columns, delimiter);
    for (const row of body) {
      if (fault) this.emit(fault);
      else if (row.length !== header.length) {
        this.emit(`row has ${row.length} field${row.length === 1 ? "" : "s"}, the header has ${header.length}`);
      }
      else if (row.quoteFault !== undefined) {
        this.emit(`column ${row.quoteFault + 1} (${header[row.quoteFault]}) has text after its closing quote; `
          + 'quote the whole value and double the quotes in it ("""a"" b")');
      } else {
        const slots = new Array(this.names.length).fill(MISSING);
        row.forEach((cell, i) => {
          if (columns[i] !== undefined) slots[columns[i]] = cell;
        });
        this.emit(slots);
      }
    }
  }
  headerFault(header, columns, delimiter) {
    for (let slot = 0; slot < this.names.length; slot += 1) {
      const named = header.filter((_, i) => columns[i] === slot).map((t) => `\`${t}\``);
      if (named.length > 1) {
        return `the header names column \`${this.names[slot]}\` ${named.length} times (${named.join(", ")}; `
          + `column names are ${NAMES_MATCHED}): keep one`;
      }
    }
    if (!this.names.length || columns.some((c) => c !== undefined)) return null;
    let found = header.join(delimiter);
    if ([...found].length > 120) found = [...found].slice(0, 120).join("") + "…";
    let reason = `no column of the header names a field this source reads (expected ${this.names.join(", ")}; `
      + `found \`${found}\`)`;
    for (const [other, label] of [[";", "`;`"], ["\t", "tabs"], [",", "`,`"], ["|", "`|`"]]) {
      if (other !== delimiter && header.some((h) => h.includes(other))) {
        const advice = other === "\t" ? "send it as text/tab-separated-values"
          : other === "," && delimiter === "\t" ? "send it as text/csv"
            : other === "," ? "the body's `sep=` line names another delimiter: drop that line"
            : delimiter === "\t" ? `send it as text/csv starting with the line \`sep=${other}\``
              : `start the body with the line \`sep=${other}\` or use commas`;
        reason += `; the header looks separated by ${label}: ${advice}`;
        break;
      }
    }
    return reason;
  }
}

function detect(contentType, text) {
  switch (contentType) {
    case "application/json": return "json";
    case "application/x-ndjson": case "application/ndjson": return "ndjson";
    case "text/csv": return "csv";
    case "text/tab-separated-values": return "tsv";
    case "text/plain": {
      if (plainTextIsJson(text)) return "json";
      return text.split("\n", 1)[0].includes("\t") ? "tsv" : "csv";
    }
    default: return null;
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });
/** A sender's key or header as it is matched against the declared names: without case,
 * surrounding whitespace or the separators ` `, `_`, `-` and `.` (`Lab Value`, `lab_value` and
 * `LAB-VALUE` all name `LabValue`). */
const nameKey = (name) => name.trim().replace(/[ _.-]/g, "").toLowerCase();
/** Why declared names cannot all be told apart in what senders send (two with one `nameKey`,
 * other than by case alone), or null. */
export function indistinctNames(names) {
  const seen = new Map();
  for (const name of names) {
    const other = seen.get(nameKey(name));
    if (other !== undefined && other.trim().toLowerCase() !== name.trim().toLowerCase()) {
      return `fields \`${other}\` and \`${name}\` name one sender field (names are ${NAMES_MATCHED}): declare it once`;
    }
    if (other === undefined) seen.set(nameKey(name), name);
  }
  return null;
}
const lowerCased = (names) => new Map(names.map((name, slot) => [nameKey(name), slot]));

/** Every record of `payload` (bytes) as raw values in the order of `names`, or the reason it
 * cannot be read; null when the content type is not one the SDK reads. `lowered` (the names in
 * lower case to their slots) may be passed to save building it for each payload. */
export function decode(contentType, payload, names, lowered = lowerCased(names)) {
  let text;
  try {
    text = UTF8.decode(payload);
  } catch {
    return ["the payload is not UTF-8"];
  }
  if (text.startsWith("\ufeff")) text = text.slice(1);
  const format = detect(contentType, text);
  if (format === null) return null;
  const decoder = new Decoder(names, lowered);
  if (format === "json") decoder.document(text, 0);
  else if (format === "ndjson") decoder.lines(text);
  else decoder.delimited(text, format === "csv" ? "," : "\t");
  return decoder.records;
}

// --- the plugin's calls ---------------------------------------------------------------------

function rows(plugin, contentType, payloads) {
  const names = plugin.fields.map((f) => f.source);
  const lowered = lowerCased(names);
  const accepted = [], rejected = [];
  payloads.forEach((payload, input) => {
    const records = decode(contentType, payload, names, lowered);
    if (records === null) {
      rejected.push({ input, record: 0, reason: `content type \`${contentType}\` is not supported`, field: undefined });
      return;
    }
    records.forEach((raw, record) => {
      if (typeof raw === "string") {
        rejected.push({ input, record, reason: raw, field: undefined });
        return;
      }
      const typed = [];
      for (let i = 0; i < plugin.fields.length; i += 1) {
        const f = plugin.fields[i];
        let value;
        try {
          value = convert(raw[i], f.type);
        } catch (error) {
          if (!(error instanceof Invalid)) throw error;
          rejected.push({ input, record, reason: `${f.source} ${error.message}`, field: f.source });
          return;
        }
        if (value === null && !f.nullable) {
          rejected.push({ input, record, reason: `${f.source} is missing or Unknown`, field: f.source });
          return;
        }
        typed.push(value);
      }
      if (plugin.check) {
        try {
          plugin.check(Object.fromEntries(plugin.fields.map((f, i) => [f.source, typed[i]])));
        } catch (error) {
          if (!(error instanceof Reject)) throw error;
          rejected.push({ input, record, reason: error.reason, field: error.field });
          return;
        }
      }
      accepted.push({ input, record, raw, typed });
    });
  });
  return { accepted, rejected };
}

function canonical(plugin, raw) {
  const parts = [];
  plugin.fields.forEach((f, i) => {
    let value = raw[i];
    if (value === MISSING || value === NESTED) return;
    if (typeof value === "number" && !Number.isFinite(value)) value = null;
    parts.push(`${JSON.stringify(f.source)}:${JSON.stringify(value)}`);
  });
  return `{${parts.join(",")}}`;
}

/** Index of the plugin's key field (named as senders' fields are matched), or -1. */
function keySlotOf(plugin) {
  if (plugin.key == null) return -1;
  return plugin.fields.findIndex((f) => nameKey(f.source) === nameKey(String(plugin.key)));
}

/** The plugin's split: `{ records: [string], origins: [{input, record, key, id}], rejected }`. */
export function split(plugin, contentType, payloads) {
  const { accepted, rejected } = rows(plugin, contentType, payloads);
  const keySlot = keySlotOf(plugin);
  const records = [], origins = [];
  for (const { input, record, raw, typed } of accepted) {
    const key = keySlot >= 0 ? typed[keySlot] : null;
    records.push(canonical(plugin, raw));
    const keyed = typeof key === "string" || typeof key === "bigint" || (typeof key === "number" && Number.isInteger(key));
    origins.push({ input, record, key: keyed ? String(key) : undefined, id: undefined });
  }
  return { records, origins, rejected };
}

/** The plugin's transform: `{ inputs, rows: [[value per field]], rejected }` (null for NULL). */
export function transform(plugin, contentType, payloads) {
  const { accepted, rejected } = rows(plugin, contentType, payloads);
  return { inputs: accepted.map((r) => r.input), rows: accepted.map((r) => r.typed), rejected };
}

/** `plugin` with its settings applied as the host applies them: unknown keys refused, declared
 * defaults filled in, then `plugin.configure(settings)` (which may throw an Error). */
export function configured(plugin, settings = {}) {
  const declared = new Map((plugin.settings ?? []).map((s) => [s.name, s.default]));
  const given = { ...settings };
  for (const key of Object.keys(given)) {
    if (!declared.has(key)) {
      throw new Error(`unknown setting \`${key}\` (known settings: ${[...declared.keys()].sort().join(", ") || "none"})`);
    }
  }
  for (const [key, value] of declared) if (value !== undefined && !(key in given)) given[key] = value;
  const instance = Object.create(plugin);
  if (plugin.configure) plugin.configure.call(instance, given);
  return instance;
}

function columnValues(type, values) {
  const valid = values.every((v) => v !== null) ? [] : values.map((v) => v !== null);
  if (type === STRING) {
    const encoder = new TextEncoder();
    const chunks = values.map((v) => encoder.encode(v ?? ""));
    const offsets = new Uint32Array(chunks.length + 1);
    chunks.forEach((c, i) => { offsets[i + 1] = offsets[i] + c.length; });
    const data = new Uint8Array(offsets[chunks.length]);
    chunks.forEach((c, i) => data.set(c, offsets[i]));
    return { valid, values: { tag: "string", val: { offsets, data } } };
  }
  if (type === INT64 || type === TIMESTAMP) {
    return { valid, values: { tag: type, val: BigInt64Array.from(values, (v) => BigInt(v ?? 0)) } };
  }
  if (type === INT32 || type === DATE) return { valid, values: { tag: type, val: Int32Array.from(values, (v) => v ?? 0) } };
  if (type === FLOAT64) return { valid, values: { tag: type, val: Float64Array.from(values, (v) => v ?? 0) } };
  return { valid, values: { tag: type, val: values.map((v) => v ?? false) } };
}

function payloadsOf(batch) {
  const payloads = [];
  let start = 0;
  for (const end of batch.ends) {
    payloads.push(batch.data.subarray(start, end));
    start = end;
  }
  return payloads;
}

/** The plugin name for an npm package name: without its scope (`@hospital/vitals` is `vitals`). */
export function pluginName(packageName) {
  const name = String(packageName).replace(/^@[^/]*\//, "");
  if (!PLUGIN_NAME.test(name)) {
    throw new Error(`plugin name \`${name}\` must be 1 to 64 lowercase letters, digits, \`-\` or \`_\`, starting with a letter`);
  }
  return name;
}

/** What componentize-js exports as the plugin's `source` interface. */
export function exportPlugin(plugin) {
  for (const what of ["name", "version", "table"]) if (!plugin[what]) throw new Error(`the plugin must set \`${what}\``);
  const name = pluginName(plugin.name);
  for (const f of plugin.fields) {
    if (!NAME.test(f.column)) throw new Error(`column name \`${f.column}\` is not a lowercase identifier; pass column`);
  }
  const indistinct = indistinctNames(plugin.fields.map((f) => f.source));
  if (indistinct) throw new Error(indistinct);
  if (plugin.key != null && keySlotOf(plugin) < 0) {
    throw new Error(`the key of table \`${plugin.table}\`, ${plugin.key}, is not one of its fields`);
  }
  let current = configured(plugin);
  return {
    describe() {
      return {
        name, version: plugin.version, doc: plugin.doc ?? "", contentTypes: CONTENT_TYPES,
        settings: (plugin.settings ?? []).map((s) => ({ name: s.name, doc: s.doc, defaultValue: s.default })),
        tables: [{ name: plugin.table, doc: plugin.tableDoc ?? "",
          columns: plugin.fields.map((f) => ({ name: f.column, type: f.type, nullable: f.nullable, doc: f.doc })) }],
      };
    },
    configure(settings) {
      try {
        current = configured(plugin, Object.fromEntries(settings));
      } catch (error) {
        throw error.message ?? String(error);
      }
    },
    split(input) {
      const out = split(current, input.contentType, payloadsOf(input));
      const encoder = new TextEncoder();
      const chunks = out.records.map((r) => encoder.encode(r));
      const ends = new Uint32Array(chunks.length);
      let at = 0;
      chunks.forEach((c, i) => { at += c.length; ends[i] = at; });
      const data = new Uint8Array(at);
      chunks.forEach((c, i) => data.set(c, ends[i] - c.length));
      return { records: { contentType: CANONICAL_CONTENT_TYPE, data, ends }, origins: out.origins, rejected: out.rejected };
    },
    transform(input) {
      const out = transform(current, input.contentType, payloadsOf(input));
      const columns = plugin.fields.map((f, i) => columnValues(f.type, out.rows.map((row) => row[i])));
      const tables = out.inputs.length ? [{ table: plugin.table, inputs: Uint32Array.from(out.inputs), columns }] : [];
      return { tables, rejected: out.rejected };
    },
  };
}
