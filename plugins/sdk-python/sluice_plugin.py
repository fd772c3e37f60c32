"""The sluice plugin SDK for Python: write a schema and, if you like, a per-record check; the SDK
does the rest of the plugin contract (wit/plugin.wit) the way the Rust SDK does for flat records.

An author declares a subclass of :class:`RecordPlugin` and exports it::

    import sluice_plugin as sp

    class Vitals(sp.RecordPlugin):
        name, version = "vitals", "0.1.0"          # the build script takes them from pyproject.toml
        doc = "Vital signs from the ward monitors."
        table, table_doc = "vitals", "One measurement."
        key = "PatientID"                           # partition key: one patient's records in order
        fields = [
            sp.Field("PatientID", sp.STRING, nullable=False, doc="Patient identifier."),
            sp.Field("HeartRate", sp.INT32, doc="Beats per minute."),
        ]

    Source = sp.export(Vitals)                      # what componentize-py looks for

Bodies: JSON (one object, an array of objects, several objects one after another, a string
holding a JSON document), NDJSON, CSV and TSV with a header row (Excel's ``sep=;`` first line
understood), ``text/plain`` sniffed. Field names match keys and headers ignoring case and the
separators space, ``_``, ``-`` and ``.``.
Values: empty, blank or ``Unknown`` is NULL; a NULL in a non-nullable field rejects the record
(``<Field> is missing or Unknown``); a value of the wrong type rejects it with the reason and the
field. Records are split into canonical JSON objects (the declared fields as sent) and
transformed into typed columns. The rules and reasons are those of the Rust SDK; shared test
vectors (``plugins/sdk-vectors/``) hold all three SDKs to them.

Nothing here imports the component bindings until :func:`export` is called, so a plugin's logic
runs and is tested under a plain CPython.
"""

import json
import math
import re

__all__ = [
    "BOOLEAN", "INT32", "INT64", "FLOAT64", "STRING", "DATE", "TIMESTAMP",
    "Field", "Setting", "Reject", "RecordPlugin", "Table", "TablesPlugin", "Rejection", "Origin", "Output",
    "split", "transform", "convert", "parse_timestamp", "parse_date", "project", "configured", "manifest",
    "export",
]

# Column types, as in the contract's `column-type`.
BOOLEAN, INT32, INT64, FLOAT64, STRING, DATE, TIMESTAMP = (
    "boolean", "int32", "int64", "float64", "string", "date", "timestamp")
COLUMN_TYPES = (BOOLEAN, INT32, INT64, FLOAT64, STRING, DATE, TIMESTAMP)

#: Content types the SDK reads.
CONTENT_TYPES = ["application/json", "application/x-ndjson", "application/ndjson", "text/csv",
                 "text/tab-separated-values", "text/plain"]
#: The content type of canonical records.
CANONICAL_CONTENT_TYPE = "application/json"
#: How deep a JSON string may hold another JSON document.
MAX_ENCODING_DEPTH = 2

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_NAMES_MATCHED = "matched ignoring case, spaces, `_`, `-` and `.`"  # how keys and headers meet declared names


class Field:
    """One field of a flat record: the sender's name for it (matched ignoring case and the
    separators space, ``_``, ``-`` and ``.``) and the column it fills (named ``column``, by
    default the sender's name in lowercase)."""

    def __init__(self, source, type, nullable=True, doc="", column=None):
        if type not in COLUMN_TYPES:
            raise ValueError(f"unknown column type {type!r} (one of {', '.join(COLUMN_TYPES)})")
        self.source = source
        self.type = type
        self.nullable = nullable
        self.doc = doc
        self.column = column or source.lower()


class Setting:
    """A configuration key: its name, what it does, and its default (``None``: optional)."""

    def __init__(self, name, doc="", default=None):
        self.name, self.doc, self.default = name, doc, default


class Reject(Exception):
    """Raised by :meth:`RecordPlugin.check` to reject a typed row: the reason (never quoting the
    record's values) and the field at fault, if one is."""

    def __init__(self, reason, field=None):
        super().__init__(reason)
        self.reason, self.field = reason, field


class Rejection:
    """Why one record was not accepted: its payload, its index in the payload, reason, field."""

    __slots__ = ("input", "record", "reason", "field")

    def __init__(self, input, record, reason, field=None):
        self.input, self.record, self.reason, self.field = input, record, reason, field

    def __repr__(self):
        return f"Rejection({self.input}, {self.record}, {self.reason!r}, {self.field!r})"


class Origin:
    """Where one canonical record came from, its partition key, and the record's own identity
    from its sender (HL7 v2 MSH-10) when it has one: the host stores a record whose id the source
    already stored only once."""

    __slots__ = ("input", "record", "key", "id")

    def __init__(self, input, record, key=None, id=None):
        self.input, self.record, self.key, self.id = input, record, key, id


class RecordPlugin:
    """A plugin that writes one table, one row per flat record. Subclass it and set the class
    attributes; override :meth:`configure` for settings and :meth:`check` for filters."""

    name = None
    version = None
    doc = ""
    table = None
    table_doc = ""
    #: The source name of the field used as partition key, if any.
    key = None
    fields = []
    settings = []

    def configure(self, settings):
        """Applies the settings (a dict with every declared default filled in by the host);
        raise ``ValueError`` with a message for the operator to refuse a bad value."""

    def check(self, row):
        """A last look at each typed row (a dict keyed by source field name); raise
        :class:`Reject` to reject it."""


# --- values ------------------------------------------------------------------------------------

_MISSING = object()   # a field the record does not have
_NESTED = object()    # an object or an array where a single value belongs


def _is_unknown(text):
    text = text.strip()
    return text == "" or text.lower() == "unknown"


_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_NUMERIC_CHARS = re.compile(r"^[0-9.+\-eE]+$")


def _parse_number(text):
    if not _NUMERIC_CHARS.match(text):
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


_COMMA_NUMBER = ("is not a number: it holds a comma (a decimal comma or a thousands separator); "
                 "send digits and a decimal point")
_COMMA_INTEGER = "is not an integer: it holds a comma (a thousands separator?); send the digits alone"
_HAS_COMMA = re.compile(r"^(?=.*,)(?=.*[0-9])[0-9,.+\-]+$")
_NOT_AN_INTEGER = "is not an integer"
_OUT_OF_RANGE = "is out of the integer range"
_EXPONENT = ("is written in exponent notation (as spreadsheets show long numbers, often rounded): "
             "send all its digits")


def _integral(value):
    """A float that holds an integer exactly (below 9e15, where doubles still count by one)."""
    if not math.isfinite(value) or value != int(value):
        raise ValueError(_NOT_AN_INTEGER)
    if abs(value) >= 2.0**63:
        raise ValueError(_OUT_OF_RANGE)
    if abs(value) >= 9.0e15:
        raise ValueError(_NOT_AN_INTEGER)
    return int(value)


def _parse_integer(text):
    """An integer written as text: digits, or an integral decimal (``12.0``); exponent notation
    (``2.14E+09``, a spreadsheet's way of showing a long number it may have rounded) is refused.
    The caller checks the range."""
    if _INTEGER.match(text):
        if len(text) > 4000:
            raise ValueError(_OUT_OF_RANGE)  # and past int()'s limit of 4300 digits
        return int(text)
    number = _parse_number(text)
    if number is None:
        raise ValueError(_NOT_AN_INTEGER)
    if "e" in text or "E" in text:
        raise ValueError(_EXPONENT)
    return _integral(number)


def _parse_bool(text):
    lowered = text.lower()
    if lowered in ("true", "t", "yes", "y", "1"):
        return True
    if lowered in ("false", "f", "no", "n", "0"):
        return False
    return None


def convert(raw, column_type):
    """A raw value (what a JSON body or a CSV cell held) as a value of ``column_type``: ``None``
    for absent or unknown values. Raises ``ValueError`` saying what is wrong, without quoting."""
    if raw is _MISSING or raw is None:
        return None
    if raw is _NESTED:
        raise ValueError("must be a single value, not an object or array")
    text = None
    if isinstance(raw, str):
        if _is_unknown(raw):
            return None
        text = raw.strip()
    is_bool = isinstance(raw, bool)
    is_int = isinstance(raw, int) and not is_bool
    is_float = isinstance(raw, float)
    if column_type == STRING:
        if text is None:
            raise ValueError("must be text")
        return text
    if column_type in (INT32, INT64):
        if is_int:
            value = raw
        elif is_float:
            value = _integral(raw)
        elif text is not None:
            try:
                value = _parse_integer(text)
            except ValueError:
                if _HAS_COMMA.match(text):
                    raise ValueError(_COMMA_INTEGER) from None
                raise
        else:
            raise ValueError(_NOT_AN_INTEGER)
        bound = 2**31 if column_type == INT32 else 2**63
        if not -bound <= value < bound:
            raise ValueError(_OUT_OF_RANGE)
        return value
    if column_type == FLOAT64:
        if is_int:
            return float(raw)
        if is_float:
            return raw
        value = _parse_number(text) if text is not None else None
        if value is None:
            raise ValueError(_COMMA_NUMBER if text is not None and _HAS_COMMA.match(text) else "is not a number")
        return value
    if column_type == BOOLEAN:
        if is_bool:
            return raw
        value = _parse_bool(text) if text is not None else None
        if value is None:
            raise ValueError("is not true or false")
        return value
    if text is None:
        raise ValueError("must be a date as text")
    return parse_timestamp(text) if column_type == TIMESTAMP else parse_date(text)


_BAD_DATE = "is not a date (expected YYYY-MM-DD or M/D/YYYY)"
_BAD_TIME = "has a time that is not HH:MM[:SS[.fff]] (optionally followed by Z or an offset ±HH:MM)"
_BAD_ZONE = "has a time zone that is not Z, UTC or an offset ±HH:MM, ±HHMM or ±HH"
_DAY_FIRST = ("is not a possible date: dates with `/` are read month first (M/D/YYYY); send a day-first "
              "date as YYYY-MM-DD")


def _two_digits(text):
    return _digits(text) if len(text) == 2 else None


def _digits(text):
    if not text or len(text) > 4 or not all("0" <= c <= "9" for c in text):
        return None
    return int(text)


def _days_in_month(year, month):
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year, month, day):
    year = year - 1 if month <= 2 else year
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _calendar_date(text):
    if "-" in text:
        year, _, rest = text.partition("-")
        if "-" not in rest:
            raise ValueError(_BAD_DATE)
        month, _, day = rest.partition("-")
    elif "/" in text:
        month, _, rest = text.partition("/")
        if "/" not in rest:
            raise ValueError(_BAD_DATE)
        day, _, year = rest.partition("/")
    else:
        raise ValueError(_BAD_DATE)
    if len(year) != 4:
        raise ValueError(_BAD_DATE)
    month_first = "/" in text and "-" not in text
    year, month, day = _digits(year), _digits(month), _digits(day)
    if year is None or month is None or day is None:
        raise ValueError(_BAD_DATE)
    if month_first and month > 12 and 1 <= day <= 12:
        raise ValueError(_DAY_FIRST)
    if year == 0:
        raise ValueError("has the year 0000, which is no date (send no value for an unknown date)")
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        raise ValueError("is not a possible date")
    return _days_from_civil(year, month, day)


def _time_of_day(text):
    clock, dot, fraction = text.partition(".")
    if ":" not in clock:
        raise ValueError(_BAD_TIME)
    hour, _, rest = clock.partition(":")
    minute, colon, second = rest.partition(":")
    # `08:5` may be 08:05 or a cut-off 08:50: minutes and seconds take two digits.
    hour = _digits(hour) if len(hour) <= 2 else None
    minute = _two_digits(minute)
    second = _two_digits(second) if colon else 0
    if hour is None or minute is None or second is None:
        raise ValueError(_BAD_TIME)
    micros = 0
    if dot:
        if not fraction or len(fraction) > 9 or not all("0" <= c <= "9" for c in fraction):
            raise ValueError(_BAD_TIME)
        micros = int((fraction + "000000")[:6])
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError("has an impossible time of day")
    return ((hour * 60 + minute) * 60 + second) * 1_000_000 + micros


def _split_zone(text):
    at = min((i for i in (text.find(" "), text.find("T")) if i >= 0), default=-1)
    if at < 0:
        return text, 0
    time_at = at + 1
    time = text[time_at:]
    if time.endswith(("Z", "z")):
        return text[:-1].rstrip(), 0
    if time[-3:].lower() in ("utc", "gmt"):
        return text[:-3].rstrip(), 0
    sign_at = max(time.rfind("+"), time.rfind("-"))
    if sign_at < 0:
        return text, 0
    offset = time[sign_at + 1:]
    if len(offset) == 2:
        hours, minutes = offset, "00"
    elif len(offset) == 4:
        hours, minutes = offset[:2], offset[2:]
    elif len(offset) == 5 and offset[2] == ":":
        hours, minutes = offset[:2], offset[3:]
    else:
        raise ValueError(_BAD_ZONE)
    if len(hours) != 2 or len(minutes) != 2:
        raise ValueError(_BAD_ZONE)
    hours, minutes = _digits(hours), _digits(minutes)
    if hours is None or minutes is None:
        raise ValueError(_BAD_ZONE)
    if hours > 23 or minutes > 59:
        raise ValueError("has an impossible time zone offset (beyond ±23:59)")
    seconds = hours * 3600 + minutes * 60
    sign = -1 if time[sign_at] == "-" else 1
    return text[:time_at + sign_at].rstrip(), sign * seconds


def parse_timestamp(text):
    """Microseconds since 1970-01-01 00:00:00 of ``YYYY-MM-DD[ T]HH:MM[:SS[.f…]]``,
    ``YYYY-MM-DD`` or ``M/D/YYYY[ H:MM[:SS]]``, each time optionally followed by ``Z``, ``UTC``,
    ``GMT`` or an offset: a value with a zone is stored as its instant's UTC wall clock, one
    without as written."""
    text, offset = _split_zone(text.strip())
    at = min((i for i in (text.find(" "), text.find("T")) if i >= 0), default=-1)
    date_part, time_part = (text, None) if at < 0 else (text[:at], text[at + 1:].strip())
    days = _calendar_date(date_part)
    # `2012-06-26T`: a time was meant and is missing, not midnight.
    micros = 0 if time_part is None else _time_of_day(time_part)
    return days * 86_400_000_000 + micros - offset * 1_000_000


def parse_date(text):
    """Days since 1970-01-01 of ``YYYY-MM-DD`` or ``M/D/YYYY`` (a time part is ignored)."""
    text = text.strip()
    date_part = re.split(r"[ T]", text, maxsplit=1)[0]
    return _calendar_date(date_part)


# --- bodies ------------------------------------------------------------------------------------


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


class _Object(dict):
    """A JSON object that also keeps its keys as given, in order, when one of them is repeated
    (a dict keeps only the last): a record that gives a field twice is refused."""

    __slots__ = ("keys_given",)

    def __init__(self, pairs):
        super().__init__(pairs)
        self.keys_given = [key for key, _ in pairs] if len(self) < len(pairs) else None


def _json_value(text):
    """Parses one JSON value the way the Rust SDK's reader accepts it: no NaN or Infinity, no
    number beyond a double, no lone surrogate."""
    value = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_Object)
    _check_json(value)
    return value


def _check_json(value):
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("number out of range")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("lone leading surrogate in hex escape") from None
    elif isinstance(value, list):
        for item in value:
            _check_json(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json(key)
            _check_json(item)


_NAME_SEPARATORS = str.maketrans("", "", " _-.")


def _name_key(name):
    """A sender's key or header as it is matched against the declared names: without case,
    surrounding whitespace or the separators `` ``, ``_``, ``-`` and ``.`` (``Lab Value``,
    ``lab_value`` and ``LAB-VALUE`` all name ``LabValue``)."""
    return name.strip().translate(_NAME_SEPARATORS).lower()


class _Decoder:
    """Reads every record of a body and hands each on: ``(index, values)`` where ``values`` maps
    field slot to raw value, or ``(index, reason)`` for a record that cannot be read."""

    def __init__(self, names):
        self.names = names
        self.lowered = {_name_key(name): slot for slot, name in enumerate(names)}
        self.records = []

    def emit(self, outcome):
        if isinstance(outcome, list) and outcome and all(slot is _MISSING for slot in outcome):
            # An object around the records, or one with other names: say so.
            listed = ", ".join(self.names[:4]) + (", …" if len(self.names) > 4 else "")
            outcome = (f"the record holds none of this source's fields ({listed}); send records themselves, "
                       "not an object around them")
        self.records.append(outcome)

    def record_from_object(self, obj):
        slots = [_MISSING] * len(self.names)
        for key, value in obj.items():
            slot = self.lowered.get(_name_key(key))
            if slot is not None:
                slots[slot] = _NESTED if isinstance(value, (dict, list)) else value
        # The keys as the record gave them: a dict keeps one of a key repeated exactly.
        given = {}
        for key in getattr(obj, "keys_given", None) or obj:
            slot = self.lowered.get(_name_key(key))
            if slot is not None:
                given.setdefault(slot, []).append(key)
        for slot in sorted(given):
            keys = given[slot]
            if len(keys) > 1:
                spellings = list(dict.fromkeys(keys))
                if len(spellings) == 1:
                    return f"key `{spellings[0]}` is given {len(keys)} times: send it once"
                spelled = ", ".join(f"`{k}`" for k in spellings)
                return f"keys {spelled} all name field `{self.names[slot]}` (keys are {_NAMES_MATCHED}): send it once"
        return slots

    def record_value(self, value, depth):
        if isinstance(value, dict):
            self.emit(self.record_from_object(value))
        elif isinstance(value, str) and depth < MAX_ENCODING_DEPTH:
            try:
                inner = _json_value(value)
            except ValueError as error:
                self.emit(f"malformed JSON inside a JSON string: {_json_reason(error)}")
                return
            self.record_value(inner, depth + 1)
        elif isinstance(value, str):
            self.emit("JSON encoded in a JSON string more than twice")
        else:
            self.emit(f"expected a JSON object, found {_kind(value)}")

    def json_document(self, text, depth):
        stripped = text.strip()
        try:
            value = _json_value(stripped)
        except ValueError:
            values = _json_sequence(stripped)
            if values is not None and len(values) > 1:
                for item in values:
                    self.json_record(item, depth)
                return
            if depth == 0 and len([l for l in text.split("\n") if l.strip()]) > 1:
                self.json_lines(text)
                return
            self.emit(self.malformed(stripped, depth))
            return
        if isinstance(value, list):
            elements = _array_elements(stripped)
            for element in elements:
                self.json_record(element, depth)
        elif isinstance(value, str) and depth < MAX_ENCODING_DEPTH:
            self.json_document(value, depth + 1)
        else:
            self.record_value(value, depth)

    def json_record(self, text, depth):
        try:
            value = _json_value(text)
        except ValueError as error:
            self.emit(self.malformed_reason(error, depth))
            return
        self.record_value(value, depth)

    def malformed(self, text, depth):
        try:
            _json_value(text)
        except ValueError as error:
            return self.malformed_reason(error, depth)
        return self.malformed_reason(ValueError("trailing characters"), depth)

    @staticmethod
    def malformed_reason(error, depth):
        what = "malformed JSON inside a JSON string" if depth else "malformed JSON"
        return f"{what}: {_json_reason(error)}"

    def json_lines(self, text):
        for line in text.split("\n"):
            line = line[:-1] if line.endswith("\r") else line
            if line.strip():
                self.json_record(line, 0)

    def delimited(self, text, delimiter):
        lines = text.split("\n", 1)
        first = lines[0][:-1] if lines[0].endswith("\r") else lines[0]
        if len(lines) > 1 and len(first) == 5 and first[:4].lower() == "sep=":
            delimiter, text = first[4], lines[1]
        rows, quote_faults = _delimited_rows(text, delimiter)
        if not rows:
            return
        header, rows = rows[0], rows[1:]
        columns = [self.lowered.get(_name_key(h)) for h in header]
        fault = self.header_fault(header, columns, delimiter)
        for row, quote_fault in zip(rows, quote_faults[1:]):
            if fault:
                self.emit(fault)
            elif len(row) != len(header):
                self.emit(f"row has {len(row)} field{'' if len(row) == 1 else 's'}, the header has {len(header)}")
            elif quote_fault is not None:
                self.emit(f"column {quote_fault + 1} ({header[quote_fault]}) has text after its closing quote; "
                          'quote the whole value and double the quotes in it ("""a"" b")')
            else:
                slots = [_MISSING] * len(self.names)
                for cell, column in zip(row, columns):
                    if column is not None:
                        slots[column] = cell
                self.emit(slots)

    def header_fault(self, header, columns, delimiter):
        for slot, name in enumerate(self.names):
            named = [f"`{text}`" for text, column in zip(header, columns) if column == slot]
            if len(named) > 1:
                return (f"the header names column `{name}` {len(named)} times ({', '.join(named)}; column names are "
                        f"{_NAMES_MATCHED}): keep one")
        if not self.names or any(column is not None for column in columns):
            return None
        found = delimiter.join(header)
        if len(found) > 120:
            found = found[:120] + "…"
        reason = (f"no column of the header names a field this source reads (expected {', '.join(self.names)}; "
                  f"found `{found}`)")
        for other, label in ((";", "`;`"), ("\t", "tabs"), (",", "`,`"), ("|", "`|`")):
            if other != delimiter and any(other in h for h in header):
                if other == "\t":
                    advice = "send it as text/tab-separated-values"
                elif other == "," and delimiter == "\t":
                    advice = "send it as text/csv"
                elif other == ",":
                    advice = "the body's `sep=` line names another delimiter: drop that line"
                elif delimiter == "\t":
                    advice = f"send it as text/csv starting with the line `sep={other}`"
                else:
                    advice = f"start the body with the line `sep={other}` or use commas"
                reason += f"; the header looks separated by {label}: {advice}"
                break
        return reason


def _delimited_rows(text, delimiter):
    """The rows of CSV/TSV ``text`` as lists of cells, as the Rust SDK's reader (the csv crate)
    splits them: double quotes around a cell allow delimiters, line breaks and doubled quotes
    inside it; ``\n``, ``\r\n`` or ``\r`` ends a row; empty lines are skipped. (CPython's csv
    module is not in the interpreter componentize-py builds.) Also, per row, the index of its
    first cell with text after its closing quote (``"Black" or African``), or None."""
    rows, row, cell, i, n = [], [], [], 0, len(text)
    faults, fault = [], None
    quoted = False
    closed = False
    at_cell_start = True
    while i < n:
        c = text[i]
        if closed and c != delimiter and c not in "\r\n" and fault is None:
            fault = len(row)
        closed = False
        if quoted:
            if c == '"':
                if i + 1 < n and text[i + 1] == '"':
                    cell.append('"')
                    i += 1
                else:
                    quoted = False
                    closed = True
            else:
                cell.append(c)
        elif c == '"' and at_cell_start:
            quoted = True
            at_cell_start = False
        elif c == delimiter:
            row.append("".join(cell))
            cell, at_cell_start = [], True
        elif c in "\r\n":
            if c == "\r" and i + 1 < n and text[i + 1] == "\n":
                i += 1
            if row or cell or not at_cell_start:
                row.append("".join(cell))
                rows.append(row)
                faults.append(fault)
            row, cell, at_cell_start, fault = [], [], True, None
        else:
            cell.append(c)
            at_cell_start = False
        i += 1
    if row or cell or not at_cell_start:
        row.append("".join(cell))
        rows.append(row)
        faults.append(fault)
    return rows, faults


def _kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "a string"


def _json_reason(error):
    message = str(error)
    return re.sub(r": line \d+ column \d+ \(char \d+\)$", "", message)


def _scan_value_end(text, start):
    """The end of the JSON value starting at ``start`` (brackets and strings counted), or None."""
    depth, i, n = 0, start, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                return None
            if depth == 0:
                return i + 1
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
            if depth < 0:
                return None
        elif depth == 0 and c in " \t\r\n,":
            return i
        i += 1
    return n if depth == 0 else None


def _array_elements(text):
    """The texts of the elements of the JSON array ``text``."""
    inner = text[1:text.rindex("]")]
    elements, i = [], 0
    while i < len(inner):
        while i < len(inner) and inner[i] in " \t\r\n,":
            i += 1
        if i >= len(inner):
            break
        end = _scan_value_end(inner, i)
        elements.append(inner[i:end])
        i = end
    return elements


def _json_sequence(text):
    """The values of several JSON documents one after another, or None if ``text`` is not so."""
    values, i = [], 0
    while i < len(text):
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        if i >= len(text):
            break
        if text[i] not in '{["':
            return None
        end = _scan_value_end(text, i)
        if end is None:
            return None
        values.append(text[i:end])
        i = end
    return values


def _plain_text_is_json(text):
    """Whether a text/plain body is JSON rather than a table: it starts with ``{``, ``[`` or a
    JSON string, unless that first quoted value is followed by a delimiter (``"PatientID","Gender"``)."""
    body = text[1:] if text.startswith("\ufeff") else text
    stripped = body.lstrip(" \t\r\n\f")
    if not stripped:
        return False
    if stripped[0] in "{[":
        return True
    if stripped[0] != '"':
        return False
    at, n = 1, len(stripped)
    while at < n and stripped[at] != '"':
        at += 2 if stripped[at] == "\\" else 1
    if at >= n:
        return True
    after = stripped[at + 1:].lstrip(" ")[:1]
    return after not in (",", "\t", ";", "|")


def _detect(content_type, text):
    if content_type == "application/json":
        return "json"
    if content_type in ("application/x-ndjson", "application/ndjson"):
        return "ndjson"
    if content_type == "text/csv":
        return "csv"
    if content_type == "text/tab-separated-values":
        return "tsv"
    if content_type == "text/plain":
        if _plain_text_is_json(text):
            return "json"
        return "tsv" if "\t" in text.split("\n", 1)[0] else "csv"
    return None


def decode(content_type, payload, names):
    """Every record of ``payload`` (bytes) as a list of raw values in the order of ``names``, or
    as the reason it cannot be read; ``None`` when the content type is not one the SDK reads."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        return [f"the payload is not UTF-8 (at byte {error.start})"]
    if text.startswith("\ufeff"):
        text = text[1:]
    fmt = _detect(content_type, text)
    if fmt is None:
        return None
    decoder = _Decoder(names)
    if fmt == "json":
        decoder.json_document(text, 0)
    elif fmt == "ndjson":
        decoder.json_lines(text)
    else:
        decoder.delimited(text, "," if fmt == "csv" else "\t")
    return decoder.records


# --- the plugin's calls ------------------------------------------------------------------------


class Table:
    """One table of a :class:`TablesPlugin`: its name, its fields, its partition key (a field's
    source name), and its ``marker``: the field whose presence in a record (a key of a JSON
    object, a column of a CSV header) says the record belongs to this table."""

    def __init__(self, name, fields, doc="", key=None, marker=None):
        self.name, self.fields, self.doc, self.key, self.marker = name, fields, doc, key, marker


class TablesPlugin:
    """A plugin that writes several tables, one row per flat record, each record going to the
    first table whose marker field it has (MIMIC-III's PATIENTS, ADMISSIONS and LABEVENTS files
    to three tables, say). Set the class attributes; override :meth:`configure` for settings and
    :meth:`check` for rules of your own."""

    name = None
    version = None
    doc = ""
    tables = []
    settings = []

    def configure(self, settings):
        """As :meth:`RecordPlugin.configure`."""

    def check(self, table, row):
        """A last look at each typed row of table ``table`` (a dict keyed by source field name);
        raise :class:`Reject` to reject it."""


def _tables_of(plugin):
    """The tables of a plugin (class or instance) of either kind."""
    if isinstance(plugin, TablesPlugin) or (isinstance(plugin, type) and issubclass(plugin, TablesPlugin)):
        return plugin.tables
    return [Table(plugin.table, plugin.fields, plugin.table_doc, key=plugin.key)]


def _field_names(tables):
    """Every table's source field names, each once (tables may share fields), in order."""
    names, seen = [], set()
    for table in tables:
        for field in table.fields:
            if _name_key(field.source) not in seen:
                seen.add(_name_key(field.source))
                names.append(field.source)
    return names


def _rows(plugin, content_type, payloads):
    """Each valid record of each payload as ``(input, record, table, raw, typed)`` (``raw`` and
    ``typed`` in the order of the table's fields), plus rejections."""
    tables = _tables_of(plugin)
    names = _field_names(tables)
    slot_of = {_name_key(name): slot for slot, name in enumerate(names)}
    layouts = [(table, [slot_of[_name_key(f.source)] for f in table.fields],
                None if table.marker is None else slot_of[_name_key(table.marker)]) for table in tables]
    several = isinstance(plugin, TablesPlugin)
    rows, rejected = [], []
    for input_index, payload in enumerate(payloads):
        records = decode(content_type, payload, names)
        if records is None:
            rejected.append(Rejection(input_index, 0, f"content type `{content_type}` is not supported"))
            continue
        for record_index, slots in enumerate(records):
            if isinstance(slots, str):
                rejected.append(Rejection(input_index, record_index, slots))
                continue
            layout = next((l for l in layouts if l[2] is None or slots[l[2]] is not _MISSING), None)
            if layout is None:
                markers = ", ".join(f"{t.marker} for {t.name}" for t in tables)
                rejected.append(Rejection(input_index, record_index,
                                          f"the record has none of the fields that say its table ({markers})"))
                continue
            table, table_slots, _ = layout
            raw = [slots[slot] for slot in table_slots]
            typed, refused = [], None
            for field, value in zip(table.fields, raw):
                try:
                    converted = convert(value, field.type)
                except ValueError as error:
                    refused = Rejection(input_index, record_index, f"{field.source} {error}", field.source)
                    break
                if converted is None and not field.nullable:
                    refused = Rejection(input_index, record_index, f"{field.source} is missing or Unknown",
                                        field.source)
                    break
                typed.append(converted)
            if refused is None:
                row = {f.source: v for f, v in zip(table.fields, typed)}
                try:
                    plugin.check(table.name, row) if several else plugin.check(row)
                except Reject as reject:
                    refused = Rejection(input_index, record_index, reject.reason, reject.field)
            if refused is not None:
                rejected.append(refused)
            else:
                rows.append((input_index, record_index, table, raw, typed))
    return rows, rejected


def _canonical(table, raw):
    parts = []
    for field, value in zip(table.fields, raw):
        if value is _MISSING or value is _NESTED:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        parts.append(json.dumps(field.source, ensure_ascii=False) + ":" +
                     json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def _key_slot(table):
    """Index of the table's key field (named as senders' fields are matched), or None."""
    if table.key is None:
        return None
    return next((i for i, f in enumerate(table.fields) if _name_key(f.source) == _name_key(table.key)), None)


def split(plugin, content_type, payloads):
    """The plugin's ``split``: ``(canonical records, origins, rejections)``. A record's
    partition key is its table's key field, when that is a string or an integer."""
    rows, rejected = _rows(plugin, content_type, payloads)
    records, origins = [], []
    key_slots = {table.name: _key_slot(table) for table in _tables_of(plugin)}
    for input_index, record_index, table, raw, typed in rows:
        slot = key_slots[table.name]
        key = None if slot is None else typed[slot]
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            key = None
        records.append(_canonical(table, raw))
        origins.append(Origin(input_index, record_index, None if key is None else str(key)))
    return records, origins, rejected


class Output:
    """What ``transform`` made of a batch: per table the payload index of each row and one list
    of values per field (None for NULL), and the rejections."""

    def __init__(self, tables, rejected):
        self.tables, self.rejected = tables, rejected

    def rows(self, table=None):
        """The rows of ``table`` (the only one when None) as lists of values, in field order."""
        if table is None:
            (table,) = self.tables
        inputs, columns = self.tables.get(table, ([], []))
        return [list(row) for row in zip(*columns)] if inputs else []

    def inputs(self, table=None):
        """The payload index of each row of ``table`` (the only one when None)."""
        if table is None:
            (table,) = self.tables
        return self.tables.get(table, ([], []))[0]


def transform(plugin, content_type, payloads):
    """The plugin's ``transform``: an :class:`Output`."""
    rows, rejected = _rows(plugin, content_type, payloads)
    tables = {}
    for table in _tables_of(plugin):
        mine = [row for row in rows if row[2].name == table.name]
        columns = [[typed[i] for _, _, _, _, typed in mine] for i in range(len(table.fields))]
        tables[table.name] = ([row[0] for row in mine], columns)
    return Output(tables, rejected)


def configured(plugin_class, settings=None):
    """An instance of ``plugin_class`` configured as the host configures it: unknown keys refused,
    declared defaults filled in, then :meth:`RecordPlugin.configure`. Raises ``ValueError``."""
    given = dict(settings or {})
    declared = {s.name: s.default for s in plugin_class.settings}
    for key in given:
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise ValueError(f"unknown setting `{key}` (known settings: {known})")
    for key, default in declared.items():
        if default is not None:
            given.setdefault(key, default)
    plugin = plugin_class()
    plugin.configure(given)
    return plugin


def manifest(plugin_class):
    """The plugin's manifest as plain data (what ``describe`` returns); ``ValueError`` when the
    class breaks a rule the host would refuse it for."""
    for what in ("name", "version"):
        if not getattr(plugin_class, what):
            raise ValueError(f"the plugin class must set `{what}`")
    tables = _tables_of(plugin_class)
    if not tables or not all(t.name for t in tables):
        raise ValueError("the plugin class must name its table" + ("s" if issubclass(plugin_class, TablesPlugin) else ""))
    spellings = {}
    for field in (f for t in tables for f in t.fields):
        spellings.setdefault(_name_key(field.source), {}).setdefault(field.source.strip().lower(), field.source)
    for given in spellings.values():
        if len(given) > 1:
            first, second = list(given.values())[:2]
            raise ValueError(f"fields `{first}` and `{second}` name one sender field (names are {_NAMES_MATCHED}): "
                             "declare it once")
    for table in tables:
        sources = {f.source.lower() for f in table.fields}
        for field in table.fields:
            if not _NAME.match(field.column):
                raise ValueError(f"column name `{field.column}` is not a lowercase identifier; pass column=")
        if table.key is not None and _key_slot(table) is None:
            raise ValueError(f"the key of table `{table.name}`, {table.key}, is not one of its fields")
        if issubclass(plugin_class, TablesPlugin):
            if table.marker is None or table.marker.lower() not in sources:
                raise ValueError(f"table `{table.name}` needs a marker: one of its fields")
            others = [t.name for t in tables if t is not table and table.marker.lower() in
                      {f.source.lower() for f in t.fields}]
            if others:
                raise ValueError(f"the marker of table `{table.name}`, {table.marker}, is also a field of "
                                 f"{', '.join(others)}: a marker must say one table")
    return {
        "name": plugin_class.name, "version": plugin_class.version, "doc": plugin_class.doc,
        "content_types": list(CONTENT_TYPES),
        "settings": [(s.name, s.doc, s.default) for s in plugin_class.settings],
        "tables": [(t.name, t.doc, [(f.column, f.type, f.nullable, f.doc) for f in t.fields]) for t in tables],
    }


def project(folder=None):
    """``(name, version)`` from the ``[project]`` table of the ``pyproject.toml`` in ``folder``
    (default: the calling module's folder), so they are kept in one place. Called when the app
    module is imported, which for a component happens while componentize-py builds it: the values
    are in the built plugin, which reads no file when it runs."""
    import os
    import sys
    import tomllib
    if folder is None:
        folder = os.path.dirname(os.path.abspath(sys._getframe(1).f_globals["__file__"]))
    with open(os.path.join(folder, "pyproject.toml"), "rb") as file:
        table = tomllib.load(file)["project"]
    return table["name"], table["version"]


def _payloads(batch):
    data, start, payloads = bytes(batch.data), 0, []
    for end in batch.ends:
        payloads.append(data[start:end])
        start = end
    return payloads


def export(plugin_class):
    """The class componentize-py instantiates for the ``source`` export: binds ``plugin_class``
    to the contract's types. Assign it to ``Source`` in the app module. Under a plain CPython
    (the plugin's own tests), where there are no component bindings, it returns None."""
    try:
        from wit_world import exports
        from wit_world.imports import types as t
    except ImportError:
        return None

    column_types = {BOOLEAN: t.ColumnType.BOOLEAN, INT32: t.ColumnType.INT32, INT64: t.ColumnType.INT64,
                    FLOAT64: t.ColumnType.FLOAT64, STRING: t.ColumnType.STRING, DATE: t.ColumnType.DATE,
                    TIMESTAMP: t.ColumnType.TIMESTAMP}
    described = manifest(plugin_class)

    def column_data(column_type, values):
        valid = [v is not None for v in values]
        if all(valid):
            valid = []
        if column_type == STRING:
            data, offsets = bytearray(), [0]
            for value in values:
                if value is not None:
                    data += value.encode("utf-8")
                offsets.append(len(data))
            payload = t.ColumnValues_String(t.StringValues(offsets=offsets, data=bytes(data)))
        else:
            zero = {BOOLEAN: False, FLOAT64: 0.0}.get(column_type, 0)
            filled = [zero if v is None else v for v in values]
            payload = {BOOLEAN: t.ColumnValues_Boolean, INT32: t.ColumnValues_Int32, INT64: t.ColumnValues_Int64,
                       FLOAT64: t.ColumnValues_Float64, DATE: t.ColumnValues_Date,
                       TIMESTAMP: t.ColumnValues_Timestamp}[column_type](filled)
        return t.ColumnData(valid=valid, values=payload)

    def rejections(rejected):
        return [t.Rejection(input=r.input, record=r.record, reason=r.reason, field=r.field) for r in rejected]

    class Source(exports.Source):
        plugin = None

        def describe(self):
            return t.Manifest(
                name=described["name"], version=described["version"], doc=described["doc"],
                content_types=described["content_types"],
                settings=[t.Setting(name=n, doc=d, default_value=v) for n, d, v in described["settings"]],
                tables=[t.TableSchema(name=name, doc=doc, columns=[
                    t.Column(name=c, type=column_types[ty], nullable=nullable, doc=cdoc)
                    for c, ty, nullable, cdoc in columns]) for name, doc, columns in described["tables"]])

        def configure(self, settings):
            from componentize_py_types import Err
            try:
                Source.plugin = configured(plugin_class, settings)
            except ValueError as error:
                raise Err(str(error)) from None

        def split(self, input):
            records, origins, rejected = split(Source.plugin, input.content_type, _payloads(input))
            data, ends = bytearray(), []
            for record in records:
                data += record
                ends.append(len(data))
            return t.SplitRecords(
                records=t.Batch(content_type=CANONICAL_CONTENT_TYPE, data=bytes(data), ends=ends),
                origins=[t.Origin(input=o.input, record=o.record, key=o.key, id=o.id) for o in origins],
                rejected=rejections(rejected))

        def transform(self, input):
            out = transform(Source.plugin, input.content_type, _payloads(input))
            tables = []
            for table in _tables_of(plugin_class):
                inputs, columns = out.tables[table.name]
                if inputs:
                    tables.append(t.TableRows(table=table.name, inputs=inputs, columns=[
                        column_data(field.type, values) for field, values in zip(table.fields, columns)]))
            return t.Transformed(tables=tables, rejected=rejections(out.rejected))

    return Source
