"""Mapping files: a plant's own columns, codes, date formats and encoding, read without editing
the file (the reference of every key: docs/mappings/README.md).

A mapping turns each row of the user's file into a row of canonical column names and raw
values (text, numbers, date/time values), which data.ingest.fields then checks like any
canonical file's row. A mistake in the mapping itself is a MappingError naming its key.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping as MappingType

import yaml
from openpyxl.utils.datetime import from_excel

from data.ingest import fields
from data.ingest.fields import FORMATS, Problem, show
from data.ingest.reading import ReadOptions

EVENT_LOG = "event_log"
# What a state (or activity) of an event log may mean; see docs/mappings/README.md.
STATE_MEANINGS = ("open", "acknowledged", "escalated", "commented", "resolved", "reopened",
                  "closed", "ignore")


class MappingError(ValueError):
    """A mapping that cannot be used; names the file and the key."""

    def __init__(self, file: str, key: str, reason: str):
        self.file, self.key, self.reason = file, key, reason
        super().__init__(f"mapping {file}, key {key}: {reason}")


# ---- date formats -----------------------------------------------------------------------

# Date parts in lower case, time parts in upper case: `d/m/yyyy HH:MM`.
_TOKENS = [("yyyy", r"(?P<year>\d{4})"), ("yy", r"(?P<yy>\d{2})"),
           ("mm", r"(?P<month>\d{1,2})"), ("m", r"(?P<month>\d{1,2})"),
           ("dd", r"(?P<day>\d{1,2})"), ("d", r"(?P<day>\d{1,2})"),
           ("HH", r"(?P<hour>\d{1,2})"), ("H", r"(?P<hour>\d{1,2})"),
           ("MM", r"(?P<minute>\d{2})"), ("SS", r"(?P<second>\d{2})"),
           ("fff", r"(?P<fraction>\d{1,6})"), ("Z", r"(?P<offset>Z|[+-]\d{2}:?\d{2})")]
_KEYWORDS = ("iso", "excel")


@dataclass(frozen=True)
class DateFormat:
    text: str
    pattern: re.Pattern | None

    def parse(self, value: str) -> datetime | None:
        if self.text == "iso":
            return fields.instant_text(value)
        found = self.pattern.fullmatch(value)
        if not found:
            return None
        parts = found.groupdict()
        year = int(parts["year"]) if parts.get("year") else 2000 + int(parts["yy"])
        fraction = (parts.get("fraction") or "").ljust(6, "0")
        try:
            result = datetime(year, int(parts["month"]), int(parts["day"]),
                              int(parts.get("hour") or 0), int(parts.get("minute") or 0),
                              int(parts.get("second") or 0), int(fraction or 0))
        except ValueError:
            return None
        offset = parts.get("offset")
        if offset:
            if offset == "Z":
                return result.replace(tzinfo=timezone.utc)
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            return result.replace(tzinfo=timezone(sign * delta))
        return result


def date_format(text: object, file: str, key: str) -> DateFormat:
    if not isinstance(text, str) or not text.strip():
        raise MappingError(file, key, "a date format is text such as 'd/m/yyyy HH:MM', 'iso' or 'excel'")
    if text in _KEYWORDS:
        return DateFormat(text, None)
    regex, position, seen = "", 0, set()
    while position < len(text):
        for token, group in _TOKENS:
            if text.startswith(token, position):
                name = group[4:group.index(">")]
                if name in seen:
                    raise MappingError(file, key, f"{token!r} appears twice in {text!r}")
                seen.add(name)
                regex += group
                position += len(token)
                break
        else:
            regex += re.escape(text[position])
            position += 1
    if not {"month", "day"} <= seen or not seen & {"year", "yy"}:
        raise MappingError(file, key, f"{text!r} needs a year (yyyy or yy), a month (m or mm) "
                                      "and a day (d or dd); time parts are upper case (HH:MM:SS)")
    return DateFormat(text, re.compile(regex))


# ---- column rules -----------------------------------------------------------------------

_MISSING = object()
_MEMO_SIZE = 200_000
_RULE_KEYS = ("column", "value", "template", "values", "rewrite", "default", "date_formats")


@dataclass
class ColumnRule:
    """How one canonical column's raw value comes from a row of the user's file."""
    key: str
    column: str | None = None
    value: object = None
    template: str | None = None
    values: dict[str, object] = field(default_factory=dict)
    rewrite: tuple[re.Pattern, str] | None = None
    default: object = None
    date_formats: tuple[DateFormat, ...] | None = None
    seen: dict = field(default_factory=dict, repr=False)
    """Each code this rule produced, with the text it came from (for `creates.*.each`)."""
    memo: dict = field(default_factory=dict, repr=False)
    """What each text already met became: a log repeats its codes and times."""
    dates: dict = field(default_factory=dict, repr=False)

    def sources(self) -> list[str]:
        if self.column is not None:
            return [self.column]
        if self.template is not None:
            return list(_names_in(self.template))
        return []

    def raw(self, record: MappingType[str, object], empty: frozenset) -> object:
        """The raw value before date parsing: text, a number or a date/time cell, or None."""
        if self.column is not None:
            value = record.get(self.column)
            if value is None or value in empty:
                return self.default
            if self.rewrite is None and not self.values:
                return value
        elif self.template is not None:
            parts = {name: _blank(record.get(name), empty) for name in self.sources()}
            value = self.template.format_map({k: "" if v is None else v for k, v in parts.items()})
            value = value.strip() or None
            if value is None:
                return self.default
        else:
            return self.value
        coded = self.memo.get(value, _MISSING)
        if coded is _MISSING:
            coded = value
            if self.rewrite is not None and isinstance(value, str):
                coded = self.rewrite[0].sub(self.rewrite[1], value)
            if self.values:
                coded = self.values.get(str(coded) if not isinstance(coded, str) else coded, coded)
            if len(self.memo) < _MEMO_SIZE:
                self.memo[value] = coded
                if isinstance(coded, str) and coded != value:
                    self.seen.setdefault(coded, value)
        return coded

    def instant(self, raw: object, default_formats: tuple[DateFormat, ...]) -> object:
        """A date/time value from the user's format, or the raw value for the field check
        to refuse in its words."""
        if raw is None or isinstance(raw, datetime):
            return raw
        parsed = self.dates.get(raw, _MISSING) if isinstance(raw, str) else _MISSING
        if parsed is _MISSING:
            parsed = self._instant(raw, default_formats)
            if isinstance(raw, str):
                if len(self.dates) >= _MEMO_SIZE:
                    self.dates.clear()
                self.dates[raw] = parsed
        if isinstance(parsed, fields.CellError):
            raise fields.CellError(str(parsed))
        return parsed

    def _instant(self, raw: object, default_formats: tuple[DateFormat, ...]) -> object:
        try:
            return self._parsed(raw, default_formats)
        except fields.CellError as exc:
            return exc

    def _parsed(self, raw: object, default_formats: tuple[DateFormat, ...]) -> object:
        formats = self.date_formats if self.date_formats is not None else default_formats
        for fmt in formats:
            if fmt.text == "excel":
                number = _number(raw)
                if number is not None:
                    try:
                        return from_excel(number)
                    except (ValueError, OverflowError):
                        raise fields.CellError(f"not an Excel date: {show(raw)}") from None
            elif isinstance(raw, str):
                parsed = fmt.parse(raw)
                if parsed is not None:
                    return parsed
        if formats and any(f.text != "iso" for f in formats):
            raise fields.CellError(f"not a date/time in the format "
                                   f"{' or '.join(repr(f.text) for f in formats)}: {show(raw)}")
        return raw


@lru_cache(maxsize=None)
def _names_in(template: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\{([^{}]+)\}", template))


@lru_cache(maxsize=None)
def _instant_columns(table: str) -> frozenset[str]:
    return frozenset(f.name for f in FORMATS[table].fields if f.parse is fields.instant)


def _number(raw: object) -> float | None:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            return None
    return None


def _blank(value: object, empty: frozenset) -> object:
    if value is None or (isinstance(value, str) and value in empty):
        return None
    return value


def _rule(spec: object, file: str, key: str) -> ColumnRule:
    if isinstance(spec, str):
        return ColumnRule(key, column=spec)
    if not isinstance(spec, dict):
        raise MappingError(file, key, "a column name, or a block with column, value or template")
    unknown = [k for k in spec if k not in _RULE_KEYS]
    if unknown:
        raise MappingError(file, f"{key}.{unknown[0]}", f"unknown key; the keys are {', '.join(_RULE_KEYS)}")
    sources = [k for k in ("column", "value", "template") if k in spec]
    if len(sources) != 1:
        raise MappingError(file, key, "give exactly one of column (a column of the file), value "
                                      "(the same value in every row) or template ('{A} / {B}')")
    rule = ColumnRule(key, column=_text(spec.get("column"), file, f"{key}.column"),
                      value=spec.get("value"),
                      template=_text(spec.get("template"), file, f"{key}.template"),
                      default=spec.get("default"))
    if rule.template is not None and not rule.sources():
        raise MappingError(file, f"{key}.template", "names no column; write columns in braces: '{A} / {B}'")
    values = spec.get("values", {})
    if not isinstance(values, dict):
        raise MappingError(file, f"{key}.values", "a block of 'as in the file: as stored' pairs")
    rule.values = {str(k): v for k, v in values.items()}
    if "rewrite" in spec:
        rewrite = spec["rewrite"]
        if not (isinstance(rewrite, list) and len(rewrite) == 2 and all(isinstance(p, str) for p in rewrite)):
            raise MappingError(file, f"{key}.rewrite", "a pair [pattern, replacement], e.g. "
                                                       "['^Group (\\d+)$', 'G\\1']")
        try:
            rule.rewrite = (re.compile(rewrite[0]), rewrite[1])
        except re.error as exc:
            raise MappingError(file, f"{key}.rewrite", f"not a regular expression: {exc}") from None
    if "date_formats" in spec:
        rule.date_formats = _formats(spec["date_formats"], file, f"{key}.date_formats")
    return rule


def _text(value: object, file: str, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise MappingError(file, key, "must be text")
    return value


def _formats(spec: object, file: str, key: str) -> tuple[DateFormat, ...]:
    items = [spec] if isinstance(spec, str) else spec
    if not isinstance(items, list) or not items:
        raise MappingError(file, key, "a format or a list of formats, e.g. ['d/m/yyyy HH:MM', iso]")
    return tuple(date_format(item, file, f"{key}[{n}]") for n, item in enumerate(items))


# ---- the mapping ------------------------------------------------------------------------

_TOP_KEYS = ("table", "file", "empty", "time_zone", "date_formats", "columns", "event_log", "creates")
_FILE_KEYS = ("encoding", "delimiter", "sheet")
_LOG_KEYS = ("case", "at", "order", "opened_at", "state", "states", "department",
             "no_department", "actor", "cause")
# Issue columns that an event log decides itself: the mapping cannot set them.
LOG_DECIDES = ("id", "raised_at", "owner_department_code", "acknowledged_at", "resolved_at",
               "closed_at", "status", "cause")


@dataclass
class Creates:
    """Rows a mapping adds to a reference table: fixed `rows`, and `each` code the imported
    rows name that the database does not have yet (its columns as templates of {code}, {value})."""
    table: str
    rows: list[dict]
    each: dict[str, object] | None


@dataclass
class EventLog:
    case: ColumnRule
    at: ColumnRule
    state: ColumnRule
    states: dict[str, str]
    order: ColumnRule | None = None
    opened_at: ColumnRule | None = None
    department: ColumnRule | None = None
    no_department: str | None = None
    actor: ColumnRule | None = None
    cause: ColumnRule | None = None


@dataclass
class Mapping:
    file: str
    table: str
    read: ReadOptions
    empty: frozenset
    time_zone: str | None
    date_formats: tuple[DateFormat, ...]
    columns: dict[str, ColumnRule]
    event_log: EventLog | None
    creates: list[Creates]

    def zone(self):
        return None if self.time_zone is None else fields.zone_named(self.time_zone, "time_zone")

    def rules(self) -> list[ColumnRule]:
        """Every rule of the mapping: the columns', and the event log's."""
        rules = list(self.columns.values())
        if self.event_log is not None:
            rules += [r for r in vars(self.event_log).values() if isinstance(r, ColumnRule)]
        return rules

    def sources(self) -> frozenset[str]:
        """The file's columns the mapping reads."""
        return frozenset(name for rule in self.rules() for name in rule.sources())

    def missing_columns(self, columns: Iterable[str]) -> list[tuple[str, str]]:
        """(key, column) of every column the mapping reads that the file lacks."""
        have = set(columns)
        return [(r.key, name) for r in self.rules() for name in r.sources() if name not in have]

    def source_of(self, name: str) -> str:
        """The user's column for a canonical column, as messages name it."""
        rule = self.columns.get(name)
        if rule is not None and rule.column is not None:
            return f"{rule.column} ({name})"
        return name

    def translate(self, record: MappingType[str, object],
                  rules: dict[str, ColumnRule] | None = None) -> tuple[dict, list[Problem]]:
        """A row of canonical names and raw values; date/time columns parsed in the user's
        formats. Problems name the canonical column (`source_of` names it for the user)."""
        out: dict[str, object] = {}
        problems: list[Problem] = []
        instants = self.instants()
        for name, rule in (rules or self.columns).items():
            raw = rule.raw(record, self.empty)
            if name in instants:
                try:
                    raw = rule.instant(raw, self.date_formats)
                except fields.CellError as exc:
                    problems.append(Problem(name, raw, str(exc)))
                    raw = None
            out[name] = raw
        return out, problems

    def instants(self) -> frozenset[str]:
        """The canonical columns that hold instants."""
        return _instant_columns(self.table if self.table != EVENT_LOG else "issues")

    def instant(self, rule: ColumnRule, record: MappingType[str, object]) -> object:
        return rule.instant(rule.raw(record, self.empty), self.date_formats)




def load(path: Path, table: str) -> Mapping:
    """The mapping in the YAML file `path`, checked for importing `table`."""
    path = Path(path)
    file = path.name
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError(file, "-", f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise MappingError(file, "-", "not UTF-8 text") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        raise MappingError(file, "-", f"not readable as YAML{line}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(spec, dict):
        raise MappingError(file, "-", "a mapping file is a YAML block of keys (table, file, columns, ...)")
    for key in spec:
        if key not in _TOP_KEYS:
            raise MappingError(file, str(key), f"unknown key; the keys are {', '.join(_TOP_KEYS)}")
    if spec.get("table", table) != table:
        raise MappingError(file, "table", f"this mapping is for {spec['table']!r}, not {table!r}")
    read = _read_options(spec.get("file") or {}, file)
    empty = spec.get("empty", [])
    if isinstance(empty, str):
        empty = [empty]
    if not isinstance(empty, list):
        raise MappingError(file, "empty", "a list of cell texts that mean empty, e.g. ['?', 'N/A']")
    time_zone = _text(spec.get("time_zone"), file, "time_zone")
    if time_zone is not None:
        try:
            fields.zone_named(time_zone, "time_zone")
        except fields.SettingError as exc:
            raise MappingError(file, "time_zone", str(exc).removeprefix("time_zone ")) from None
    formats = (_formats(spec["date_formats"], file, "date_formats") if "date_formats" in spec
               else (date_format("iso", file, "date_formats"),))
    columns_spec = spec.get("columns") or {}
    if not isinstance(columns_spec, dict):
        raise MappingError(file, "columns", "a block of 'canonical column: rule' pairs")
    target = "issues" if table == EVENT_LOG else table
    known = [f.name for f in FORMATS[target].fields]
    columns = {}
    for name, rule_spec in columns_spec.items():
        key = f"columns.{name}"
        if name not in known:
            raise MappingError(file, key, f"{target} has no column {name!r}; its columns are {', '.join(known)}")
        if table == EVENT_LOG and name in LOG_DECIDES:
            raise MappingError(file, key, "an event log decides this column itself (docs/mappings/README.md)")
        columns[name] = _rule(rule_spec, file, key)
    log = None
    if table == EVENT_LOG:
        if "event_log" not in spec:
            raise MappingError(file, "event_log", "an event-log mapping needs this block "
                                                  "(case, at, state, states, ...)")
        log = _event_log(spec["event_log"], file)
    elif "event_log" in spec:
        raise MappingError(file, "event_log", f"only for `import event_log`, not for {table}")
    creates = _creates(spec.get("creates") or {}, file)
    return Mapping(file, table, read, frozenset(str(e) for e in empty), time_zone, formats,
                   columns, log, creates)


def _read_options(spec: object, file: str) -> ReadOptions:
    if not isinstance(spec, dict):
        raise MappingError(file, "file", "a block with encoding, delimiter, sheet")
    for key in spec:
        if key not in _FILE_KEYS:
            raise MappingError(file, f"file.{key}", f"unknown key; the keys are {', '.join(_FILE_KEYS)}")
    encoding = _text(spec.get("encoding"), file, "file.encoding")
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise MappingError(file, "file.encoding", f"unknown encoding {encoding!r} "
                                                      "(e.g. utf-8, gb18030, gbk, big5)") from None
        if codecs.lookup(encoding).name == "utf-8":
            encoding = "utf-8-sig"
    delimiter = spec.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise MappingError(file, "file.delimiter", "one character, e.g. ';' or '\\t'")
    return ReadOptions(encoding, delimiter, _text(spec.get("sheet"), file, "file.sheet"))


def _event_log(spec: object, file: str) -> EventLog:
    if not isinstance(spec, dict):
        raise MappingError(file, "event_log", "a block with case, at, state, states, ...")
    for key in spec:
        if key not in _LOG_KEYS:
            raise MappingError(file, f"event_log.{key}", f"unknown key; the keys are {', '.join(_LOG_KEYS)}")
    for key in ("case", "at", "state", "states"):
        if key not in spec:
            raise MappingError(file, f"event_log.{key}", "required")
    states = spec["states"]
    if not isinstance(states, dict) or not states:
        raise MappingError(file, "event_log.states", "a block of 'state as in the file: meaning' pairs")
    for state, meaning in states.items():
        if meaning not in STATE_MEANINGS:
            raise MappingError(file, f"event_log.states.{state}",
                               f"{meaning!r} is not one of {', '.join(STATE_MEANINGS)}")
    rules = {key: _rule(spec[key], file, f"event_log.{key}")
             for key in ("case", "at", "order", "opened_at", "state", "department", "actor", "cause")
             if key in spec}
    return EventLog(states={str(k): v for k, v in states.items()},
                    no_department=_text(spec.get("no_department"), file, "event_log.no_department"),
                    **rules)


_CREATABLE = ("departments", "locations", "materials", "sla_rules", "people")


def _creates(spec: object, file: str) -> list[Creates]:
    if not isinstance(spec, dict):
        raise MappingError(file, "creates", f"a block of tables ({', '.join(_CREATABLE)})")
    out = []
    for table in _CREATABLE:
        block = spec.get(table)
        if block is None:
            continue
        key = f"creates.{table}"
        if not isinstance(block, dict) or not set(block) <= {"rows", "each"}:
            raise MappingError(file, key, "a block with rows (a list of rows) and/or each "
                                          "(columns for every new code)")
        rows = block.get("rows") or []
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise MappingError(file, f"{key}.rows", "a list of rows, each a block of column: value")
        names = [f.name for f in FORMATS[table].fields]
        for n, row in enumerate(rows):
            for column in row:
                if column not in names:
                    raise MappingError(file, f"{key}.rows[{n}].{column}",
                                       f"{table} has no such column; its columns are {', '.join(names)}")
        each = block.get("each")
        if each is not None:
            if not isinstance(each, dict):
                raise MappingError(file, f"{key}.each", "a block of column: template ('{code}', '{value}')")
            for column in each:
                if column not in names:
                    raise MappingError(file, f"{key}.each.{column}",
                                       f"{table} has no such column; its columns are {', '.join(names)}")
        out.append(Creates(table, rows, each))
    for table in spec:
        if table not in _CREATABLE:
            raise MappingError(file, f"creates.{table}", f"a mapping creates rows of {', '.join(_CREATABLE)}")
    return out
