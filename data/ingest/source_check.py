"""What a source database holds that the wall and the KPIs cannot use, found before they are
pointed at it: an existing ERP/MES database read through views, or FloorLink's own database
written by other programs (docs/existing-databases.md).

Every table of the contract (docs/contract.md, section 1), and what the wall reads beyond
it (the stamps it follows changes by, the lot balances, the bulk version, the schema
revision), is checked for missing tables and columns, wrong types, impossible times,
unknown codes and implausible values. Each table is read with one aggregate statement
(a COUNT with a FILTER per problem), each reference and repeated key with one more, and
only the problems found are sampled, a few rows each: a source of millions of rows is
scanned a handful of times and never loaded. The connection is read-only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache, partial
from pathlib import Path
from typing import Callable, Iterable

from sqlalchemy import (
    Date, DateTime, Float, Integer, Numeric, String, and_, case, cast, column, create_engine, event,
    func, inspect, literal, not_, or_, select, table,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType

from data import db, queries
from data.models import EVENT_KINDS, ISSUE_STATUSES, LOCATION_KINDS, SEVERITIES, UtcDateTime
from data.words import both

# Larger than any one movement or shift of a real plant, and small enough that sums over a
# million rows stay below 2**53, where float64 still counts whole units.
MAX_QUANTITY = 1e9
# FloorLink reads whole numbers (an event's id, a version) as 32-bit integers.
INTEGER_RANGE = (-2**31, 2**31 - 1)
# Rows shown per problem; every problem is counted in full.
EXAMPLES = 3

# What a column holds. Codes are text compared with codes (keys, references, lists of
# values); limits are minutes of a time limit; a quantity is moved (> 0), a count planned
# or made (>= 0).
TIME, LIMIT, QUANTITY, COUNT, NUMBER, INTEGER, CODE, TEXT = (
    "time", "limit", "quantity", "count", "number", "integer", "code", "text")
_NUMBER_KINDS = (LIMIT, QUANTITY, COUNT, NUMBER)
# SQLite writes instants as this text; FloorLink compares them as text, so no other form will do.
_SQLITE_TIME_LENGTH = 19
_PG_TIME_TEXT = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$"
_PG_NUMBER_TEXT = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = TEXT
    required: bool = True
    refers_to: str | None = None
    """The table whose key the value must be."""
    choices: tuple[str, ...] = ()
    stamp: bool = False
    """The writer's clock, by which the wall follows changes (not in the contract)."""


@dataclass(frozen=True)
class _Check:
    """The rows at fault in `column`: those where `condition` holds."""
    column: str
    problem: str
    condition: ColumnElement
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Example:
    key: str
    column: str
    value: str


@dataclass(frozen=True)
class Finding:
    """One problem of one table: a whole table or column (count None), or rows."""
    table: str
    column: str | None
    problem: str
    """A key of data.words.TEXT without its `source_` prefix."""
    params: dict
    count: int | None
    examples: tuple[Example, ...] = ()

    @property
    def reason(self) -> str:
        return both(f"source_{self.problem}").format(**self.params)


@dataclass(frozen=True)
class Report:
    source: str
    tables: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def clean(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict:
        return {
            "source": self.source, "clean": self.clean, "problems": len(self.findings),
            "tables": {name: [
                {"column": f.column, "problem": f.problem, "reason": f.reason, "count": f.count,
                 "examples": [{"key": e.key, "column": e.column, "value": e.value, "reason": f.reason}
                              for e in f.examples]}
                for f in self.findings if f.table == name] for name in self.tables},
        }


class SourceUnreadable(RuntimeError):
    """The source cannot be opened or read at all."""


class _Reader:
    """One table of the source as the checks see it: which columns it has, and each column
    as a value that can be compared (None where its type does not allow it)."""

    def __init__(self, name: str, columns: tuple[Column, ...], present: dict, sqlite: bool):
        self.name = name
        self.spec = {c.name: c for c in columns}
        self.types = present
        self.sqlite = sqlite
        self.table = table(name, *[column(c) for c in present])

    def has(self, name: str) -> bool:
        return name in self.types

    def raw(self, name: str):
        return self.table.c[name] if self.has(name) else None

    def time(self, name: str):
        """The instant as a value that orders correctly (days on SQLite; NULL for text
        that is no time, which `not_a_time` reports)."""
        c = self.raw(name)
        if c is None:
            return None
        if self.sqlite:
            return case((func.typeof(c) == "text", func.julianday(c)))
        declared = self.types[name]
        if isinstance(declared, DateTime):
            return func.timezone("UTC", c) if declared.timezone else c
        if isinstance(declared, Date):
            return cast(c, DateTime)
        return None

    def number(self, name: str):
        c = self.raw(name)
        if c is None:
            return None
        if self.sqlite:
            return case((func.typeof(c).in_(("integer", "real")), c))
        return c if isinstance(self.types[name], (Numeric, Float, Integer)) else None

    def code(self, name: str):
        c = self.raw(name)
        if c is None:
            return None
        if self.sqlite:
            return case((func.typeof(c) == "text", c))
        return c if isinstance(self.types[name], String) else None

    def instant(self, value: datetime):
        """A bound in the form `time` compares with."""
        if self.sqlite:
            return func.julianday(value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"))
        return literal(value, UtcDateTime)


def _usable(*values) -> bool:
    return all(v is not None for v in values)


def _sla_rules(r: _Reader) -> Iterable[_Check]:
    ack, resolve = r.number("ack_minutes"), r.number("resolve_minutes")
    if _usable(ack, resolve):
        yield _Check("resolve_minutes", "resolve_before_ack", resolve < ack)


def _issues(r: _Reader) -> Iterable[_Check]:
    raised = r.time("raised_at")
    for name in ("acknowledged_at", "resolved_at", "closed_at"):
        at = r.time(name)
        if _usable(raised, at):
            yield _Check(name, "before_raised", at < raised)
    status = r.code("status")
    for finished, name in (("resolved", "resolved_at"), ("closed", "closed_at")):
        if _usable(status, r.raw(name)):
            yield _Check(name, "status_without_time", and_(status == finished, r.raw(name).is_(None)),
                         {"status": finished})


def _movements(r: _Reader) -> Iterable[_Check]:
    origin, destination = r.code("from_location_code"), r.code("to_location_code")
    if _usable(origin, destination):
        yield _Check("to_location_code", "same_place", origin == destination)


def _production_plan(r: _Reader) -> Iterable[_Check]:
    start, end = r.time("shift_start"), r.time("shift_end")
    if _usable(start, end):
        yield _Check("shift_end", "shift_end_not_after_start", end <= start)


def _schema_revision(r: _Reader) -> Iterable[_Check]:
    version = r.code("version_num")
    if version is not None:
        head = schema_head()
        yield _Check("version_num", "schema_revision", version != head, {"head": head})


@dataclass(frozen=True)
class Table:
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    rules: Callable[[_Reader], Iterable[_Check]] = lambda reader: ()


TABLES: dict[str, Table] = {
    "departments": Table(("code",), (Column("code", CODE), Column("name_zh"), Column("name_en"))),
    "people": Table(("id",), (
        Column("id", CODE), Column("name"), Column("department_code", CODE, refers_to="departments"),
        Column("im_handle", required=False))),
    "sla_rules": Table(("issue_type",), (
        Column("issue_type", CODE), Column("name_zh"), Column("name_en"),
        Column("owner_department_code", CODE, refers_to="departments"),
        Column("notify_department_codes", required=False),
        Column("ack_minutes", LIMIT), Column("resolve_minutes", LIMIT)), _sla_rules),
    "locations": Table(("code",), (
        Column("code", CODE), Column("name"), Column("kind", CODE, choices=LOCATION_KINDS),
        Column("line", CODE, required=False), Column("max_dwell_minutes", LIMIT, required=False))),
    "materials": Table(("code",), (
        Column("code", CODE), Column("name"), Column("unit"), Column("category"))),
    "issues": Table(("id",), (
        Column("id", CODE), Column("issue_type", CODE, refers_to="sla_rules"), Column("title"),
        Column("severity", CODE, choices=SEVERITIES),
        Column("location_code", CODE, required=False, refers_to="locations"),
        Column("raised_by", required=False), Column("raised_at", TIME),
        Column("owner_department_code", CODE, refers_to="departments"),
        Column("acknowledged_at", TIME, required=False), Column("resolved_at", TIME, required=False),
        Column("closed_at", TIME, required=False), Column("status", CODE, choices=ISSUE_STATUSES),
        Column("cause", required=False), Column("updated_at", TIME, required=False, stamp=True)),
        _issues),
    "issue_events": Table(("id",), (
        Column("issue_id", CODE, refers_to="issues"), Column("at", TIME),
        Column("kind", CODE, choices=EVENT_KINDS),
        Column("department_code", CODE, refers_to="departments"),
        Column("actor", required=False), Column("note", required=False),
        Column("id", INTEGER), Column("recorded_at", TIME, required=False, stamp=True))),
    "movements": Table(("id",), (
        Column("id", CODE), Column("at", TIME), Column("material_code", CODE, refers_to="materials"),
        Column("lot", CODE), Column("qty", QUANTITY),
        Column("from_location_code", CODE, refers_to="locations"),
        Column("to_location_code", CODE, refers_to="locations"),
        Column("order_ref", required=False),
        Column("recorded_at", TIME, required=False, stamp=True)), _movements),
    "production_plan": Table(("line", "shift_start"), (
        Column("line", CODE), Column("shift_start", TIME), Column("shift_end", TIME),
        Column("planned_qty", COUNT), Column("actual_qty", COUNT, required=False),
        Column("updated_at", TIME, required=False, stamp=True)), _production_plan),
    # What the wall reads beyond the contract: each lot's balance per location (its running
    # balances, data.store), the bulk writers' version (a change: reload in full), and the
    # schema revision `serve` insists on.
    "lot_stock": Table(("lot", "material_code", "location_code"), (
        Column("lot", CODE), Column("material_code", CODE), Column("location_code", CODE),
        Column("qty", NUMBER), Column("last_in_at", TIME, required=False))),
    "data_versions": Table(("name",), (Column("name", CODE), Column("version", INTEGER))),
    "alembic_version": Table(("version_num",), (Column("version_num", CODE),), _schema_revision),
}

# Rows checked against their row in another table: (table, column, other table, its column,
# problem, condition over the row's value and the other's).
JOINED = (
    ("issue_events", "at", "issues", "raised_at", "before_issue_raised", lambda at, raised: at < raised),
)


@lru_cache(maxsize=1)
def schema_head() -> str:
    """The schema revision this code needs (the newest migration)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(db.MIGRATIONS_DIR)).get_current_head()


def read_only_engine(url: str) -> Engine:
    """An engine that cannot write to the source, and does not create a SQLite file that
    is not there."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:" or not Path(path).is_file():
            raise SourceUnreadable(f"no SQLite database file at {path or '(none)'}")
        engine = create_engine(url)

        @event.listens_for(engine, "connect")
        def _read_only(dbapi_conn, _record):
            dbapi_conn.execute("PRAGMA query_only = ON")
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, execution_options={"postgresql_readonly": True})
    raise SourceUnreadable(f"{parsed.get_backend_name()}: the source check reads SQLite and "
                           "PostgreSQL databases")


def check_url(url: str) -> Report:
    """Check the database at `url` (any SQLite or PostgreSQL SQLAlchemy URL)."""
    shown = make_url(url).render_as_string(hide_password=True)
    engine = read_only_engine(url)
    try:
        with engine.connect() as conn:
            return check(conn, shown)
    except SQLAlchemyError as exc:
        raise SourceUnreadable(f"cannot read {shown}: {_first_line(exc)}") from exc
    finally:
        engine.dispose()


def check(conn: Connection, source: str) -> Report:
    """Every problem of the source on `conn`, table by table."""
    sqlite = conn.dialect.name == "sqlite"
    inspector = inspect(conn)
    names = set(inspector.get_table_names()) | set(inspector.get_view_names())
    findings: list[Finding] = []
    readers: dict[str, _Reader] = {}
    for name, spec in TABLES.items():
        if name not in names:
            findings.append(Finding(name, None, "missing_table", {}, None))
            continue
        declared = {c["name"]: c["type"] for c in inspector.get_columns(name)}
        present = {c.name: declared[c.name] for c in spec.columns if c.name in declared}
        for c in spec.columns:
            if c.name not in declared:
                findings.append(Finding(name, c.name, "missing_stamp" if c.stamp else "missing_column",
                                        {}, None))
            elif not sqlite:
                findings += _declared_type(name, c, declared[c.name])
        readers[name] = _Reader(name, spec.columns, present, sqlite)
    for name, reader in readers.items():
        enforced = _key_enforced(inspector, name, TABLES[name].key)
        findings += _readable(conn, name, partial(_table, conn, reader, readers, enforced))
    for joined in JOINED:
        findings += _readable(conn, joined[0], partial(_joined, conn, readers, *joined))
    order = {name: i for i, name in enumerate(TABLES)}
    findings.sort(key=lambda f: order[f.table])
    return Report(source, tuple(TABLES), tuple(findings))


def _readable(conn: Connection, name: str, read: Callable[[], list[Finding]]) -> list[Finding]:
    """The findings of `read`, or that the table cannot be read: a view that fails on some
    row (a date it cannot convert) fails every screen that reads it."""
    try:
        return read()
    except DBAPIError as exc:
        conn.rollback()
        return [Finding(name, None, "unreadable", {"error": _first_line(exc)}, None)]


def _table(conn: Connection, r: _Reader, readers: dict[str, _Reader], key_enforced: bool) -> list[Finding]:
    return [*_rows(conn, r, list(_row_checks(r))), *_references(conn, r, readers),
            *([] if key_enforced else _repeated_keys(conn, r))]


def _first_line(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def _declared_type(table_name: str, spec: Column, declared) -> list[Finding]:
    """A column whose declared type FloorLink cannot compare with its own values (PostgreSQL
    compares a text with a time as an error, a timestamp with a zone in the session's zone)."""
    if spec.kind == TIME:
        fits, wanted = isinstance(declared, DateTime) and not declared.timezone, "time"
    elif spec.kind in _NUMBER_KINDS:
        fits, wanted = isinstance(declared, (Numeric, Float, Integer)), "number"
    elif spec.kind == INTEGER:
        fits, wanted = isinstance(declared, Integer), "integer"
    elif spec.kind == CODE:
        fits, wanted = isinstance(declared, String), "text"
    else:
        return []
    if fits or isinstance(declared, NullType):
        return []
    found = "timestamp with time zone" if isinstance(declared, DateTime) else str(declared).lower()
    return [Finding(table_name, spec.name, f"wrong_type_{wanted}", {"found": found}, None)]


def _row_checks(r: _Reader) -> Iterable[_Check]:
    """The checks of each row on its own: its columns one by one, then the table's rules."""
    bounds = queries.plausible()
    for c in r.spec.values():
        raw = r.raw(c.name)
        if raw is None:
            continue
        if c.required:
            yield _Check(c.name, "empty", raw.is_(None))
        if c.stamp:
            yield _Check(c.name, "no_stamp", raw.is_(None))
        yield from _type_checks(r, c, raw)
        if c.kind == TIME and r.time(c.name) is not None:
            at = r.time(c.name)
            yield _Check(c.name, "before_plausible", at < r.instant(bounds.earliest),
                         {"bound": bounds.settings[0]})
            yield _Check(c.name, "after_plausible", at >= r.instant(bounds.until),
                         {"bound": bounds.settings[1]})
        number = r.number(c.name) if c.kind in (*_NUMBER_KINDS, INTEGER) else None
        if number is not None:
            if c.kind in (LIMIT, QUANTITY):
                yield _Check(c.name, "not_positive", number <= 0)
            if c.kind == COUNT:
                yield _Check(c.name, "negative", number < 0)
            if c.kind == LIMIT:
                yield _Check(c.name, "limit_too_long", number > bounds.max_limit_minutes,
                             {"bound": bounds.settings[2]})
            if c.kind in (QUANTITY, COUNT):
                yield _Check(c.name, "too_large", number > MAX_QUANTITY, {"bound": f"{MAX_QUANTITY:g}"})
            if c.kind == INTEGER:
                low, high = INTEGER_RANGE
                yield _Check(c.name, "integer_range", or_(number < low, number > high), {"bound": high})
        if c.choices and r.code(c.name) is not None:
            yield _Check(c.name, "not_one_of", r.code(c.name).not_in(c.choices),
                         {"choices": " ".join(c.choices)})
    yield from TABLES[r.name].rules(r)


def _type_checks(r: _Reader, c: Column, raw) -> Iterable[_Check]:
    """Values that are not of their column's kind: on SQLite any value may be, on PostgreSQL
    a value of a text column that should hold times or numbers."""
    if r.sqlite:
        kind = func.typeof(raw)
        if c.kind == TIME:
            well_formed = func.substr(raw, 1, _SQLITE_TIME_LENGTH) == func.datetime(raw)
            yield _Check(c.name, "not_a_time", and_(raw.is_not(None), or_(
                kind != "text", func.coalesce(well_formed, 0) == 0)))
        elif c.kind in _NUMBER_KINDS:
            yield _Check(c.name, "not_a_number", and_(raw.is_not(None), kind.not_in(("integer", "real"))))
        elif c.kind == INTEGER:
            yield _Check(c.name, "not_an_integer", and_(raw.is_not(None), kind != "integer"))
        elif c.kind == CODE:
            yield _Check(c.name, "not_text", and_(raw.is_not(None), kind != "text"))
    elif isinstance(r.types[c.name], String):
        if c.kind == TIME:
            yield _Check(c.name, "not_a_time", not_(raw.regexp_match(_PG_TIME_TEXT)))
        elif c.kind in _NUMBER_KINDS:
            yield _Check(c.name, "not_a_number", not_(raw.regexp_match(_PG_NUMBER_TEXT)))


def _key(r: _Reader) -> list:
    return [r.table.c[k] for k in TABLES[r.name].key if r.has(k)]


def _examples(conn: Connection, r: _Reader, source, column_name: str, condition) -> tuple[Example, ...]:
    """The first rows at fault, by key."""
    keys = _key(r)
    stmt = (select(*keys, r.table.c[column_name]).select_from(source).where(condition)
            .order_by(*keys).limit(EXAMPLES))
    return tuple(Example(" / ".join(_shown(v) for v in row[:-1]) or "-", column_name, _shown(row[-1]))
                 for row in conn.execute(stmt))


def _rows(conn: Connection, r: _Reader, checks: list[_Check]) -> list[Finding]:
    """All the row checks of a table in one pass; the rows of the problems found sampled."""
    if not checks:
        return []
    counts = conn.execute(select(*[func.count().filter(c.condition) for c in checks])
                          .select_from(r.table)).one()
    return [Finding(r.name, c.column, c.problem, c.params, count,
                    _examples(conn, r, r.table, c.column, c.condition))
            for c, count in zip(checks, counts) if count]


def _references(conn: Connection, r: _Reader, readers: dict[str, _Reader]) -> list[Finding]:
    """Codes that name no row of the table they refer to (one anti-join per reference)."""
    findings = []
    for c in r.spec.values():
        other = readers.get(c.refers_to)
        if other is None or r.code(c.name) is None:
            continue
        (key_name,) = TABLES[c.refers_to].key
        if other.code(key_name) is None:
            continue
        mine, theirs = r.raw(c.name), other.raw(key_name)
        joined = r.table.outerjoin(other.table, theirs == mine)
        condition = and_(mine.is_not(None), theirs.is_(None))
        count = conn.execute(select(func.count()).select_from(joined).where(condition)).scalar()
        if count:
            findings.append(Finding(r.name, c.name, "unknown_code", {"table": c.refers_to}, count,
                                    _examples(conn, r, joined, c.name, condition)))
    return findings


def _key_enforced(inspector, name: str, key: tuple[str, ...]) -> bool:
    """Whether the database itself keeps the key unique (a table's primary key or unique
    constraint; a view has none)."""
    wanted = set(key)
    if set(inspector.get_pk_constraint(name).get("constrained_columns") or ()) == wanted:
        return True
    unique = [u["column_names"] for u in inspector.get_unique_constraints(name)]
    unique += [i["column_names"] for i in inspector.get_indexes(name) if i.get("unique")]
    return any(set(columns) == wanted for columns in unique)


def _repeated_keys(conn: Connection, r: _Reader) -> list[Finding]:
    keys = _key(r)
    if len(keys) != len(TABLES[r.name].key):
        return []
    groups = (select(*keys, func.count().label("times")).where(*[k.is_not(None) for k in keys])
              .group_by(*keys).having(func.count() > 1).subquery())
    count = conn.execute(select(func.count()).select_from(groups)).scalar()
    if not count:
        return []
    rows = conn.execute(select(groups).order_by(*list(groups.c)[:-1]).limit(EXAMPLES))
    column_name = " / ".join(TABLES[r.name].key)
    examples = tuple(Example(" / ".join(_shown(v) for v in row[:-1]), column_name, _shown(row[-1]))
                     for row in rows)
    return [Finding(r.name, column_name, "repeated_key", {}, count, examples)]


def _joined(conn: Connection, readers: dict[str, _Reader], name: str, column_name: str,
            other_name: str, other_column: str, problem: str, condition) -> list[Finding]:
    r, other = readers.get(name), readers.get(other_name)
    if r is None or other is None:
        return []
    (key_name,) = TABLES[other_name].key
    refers = next(c.name for c in r.spec.values() if c.refers_to == other_name)
    mine, theirs = r.time(column_name), other.time(other_column)
    if not _usable(mine, theirs, r.code(refers), other.code(key_name)):
        return []
    joined = r.table.join(other.table, other.raw(key_name) == r.raw(refers))
    at_fault = condition(mine, theirs)
    count = conn.execute(select(func.count()).select_from(joined).where(at_fault)).scalar()
    if not count:
        return []
    return [Finding(name, column_name, problem, {}, count,
                    _examples(conn, r, joined, column_name, at_fault))]


def _shown(value) -> str:
    """A value as the source holds it: instants in ISO 8601, whole numbers without '.0'."""
    if value is None:
        return "NULL"
    if isinstance(value, (datetime, date)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value)


def format_text(report: Report) -> str:
    """The findings for a terminal: per table, each problem with its count and first rows."""
    lines = [f"{both('source_title')}: {report.source}"]
    for name in report.tables:
        found = [f for f in report.findings if f.table == name]
        if not found:
            lines.append(f"{name}: {both('source_table_ok')}")
            continue
        lines.append(f"{name}:")
        for f in found:
            where = f"{f.column}: " if f.column else ""
            count = f" ({both('source_rows')}: {f.count:,})" if f.count is not None else ""
            lines.append(f"  {where}{f.reason}{count}")
            lines += [f"      {e.key}: {e.column} = {e.value}" for e in f.examples]
    if report.clean:
        lines.append(both("source_clean"))
    else:
        lines.append(f"{both('source_found')}: {len(report.findings)}")
    return "\n".join(lines)
