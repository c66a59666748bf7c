"""Windowed loaders: the database aggregates, pandas receives small frames.

Every loader takes a Connection and explicit instants, so a screen, a report and a test ask
the same question the same way. Instants in the returned frames are datetime64[ns, UTC] on
SQLite and PostgreSQL alike, and the columns are present even when no row matches.

A row with a value that cannot be real (a date outside PLAUSIBLE_FROM..PLAUSIBLE_UNTIL, an SLA
limit above MAX_LIMIT_MINUTES, a date that is not a date) is left out of the frame with a
logged reason, and handed to the caller's `left_out` list when it gives one: one typo in an
imported file must not stop every screen.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Iterable, NamedTuple, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import (
    Select, String, and_, case, exists, func, null, or_, select, type_coerce, union_all,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from data import settings, timezones
from data.models import (
    DataVersion, Department, Issue, IssueEvent, Location, LotStock, Movement, Person, ProductionPlan,
    SlaRule, UtcDateTime,
)

log = logging.getLogger(__name__)

# Locations whose contents are the plant's own stock. Suppliers and customers are outside the
# plant, and material moved into a consumption location has been used up.
STOCK_KINDS = ("receiving", "iqc", "warehouse", "line_side", "wip", "finished", "scrap")
# The stock that material turnover is measured against (contract section 2).
TURNOVER_STOCK_KINDS = ("warehouse", "line_side")
CONSUMPTION_KIND = "consumption"
# On-hand below this is float noise left by sums of moves, not material.
QTY_EPSILON = 1e-9

# Column kinds: "instant" (checked against the plausible range), "limit" (minutes, checked
# against MAX_LIMIT_MINUTES), "joined_instant" (an instant of another table's row, which is
# reported where that row is read: a row with an implausible one is left out unreported),
# "stamp" (when a writer wrote the row: microseconds since the epoch, never checked, as it
# is no figure; one that is not a time is UNREADABLE_STAMP), "float", "int", "str".
ISSUE_COLUMNS = {
    "id": "str", "issue_type": "str", "title": "str", "severity": "str", "location_code": "str",
    "line": "str", "owner_department_code": "str", "raised_by": "str", "raised_at": "instant",
    "acknowledged_at": "instant", "resolved_at": "instant", "closed_at": "instant",
    "status": "str", "ack_minutes": "limit", "resolve_minutes": "limit",
}
# The wall's issue rows also say whom to call: who acknowledged an issue still unresolved.
WALL_ISSUE_COLUMNS = {**ISSUE_COLUMNS, "acknowledged_by": "str"}
EVENT_COLUMNS = {"issue_id": "str", "event_id": "int", "at": "instant", "kind": "str",
                 "department_code": "str"}
STOCK_COLUMNS = {"location_code": "str", "location_kind": "str", "material_code": "str",
                 "qty": "float"}
LOT_COLUMNS = {"lot": "str", "material_code": "str", "location_code": "str",
               "location_kind": "str", "qty": "float", "last_in_at": "instant",
               "max_dwell_minutes": "float"}
PLAN_COLUMNS = {"line": "str", "shift_start": "instant", "shift_end": "instant",
                "planned_qty": "float", "actual_qty": "float"}


@dataclass(frozen=True)
class Bounds:
    """What the wall accepts: instants in [earliest, until), limits up to max_limit_minutes
    (each also as the setting reads, for the reasons a row is left out)."""
    earliest: datetime
    until: datetime
    max_limit_minutes: float
    earliest_us: int
    until_us: int
    settings: tuple[str, str, str]


def plausible() -> Bounds:
    """The bounds in force (settings PLAUSIBLE_FROM, PLAUSIBLE_UNTIL, MAX_LIMIT_MINUTES)."""
    return _bounds(settings.get("PLAUSIBLE_FROM"), settings.get("PLAUSIBLE_UNTIL"),
                   settings.get_float("MAX_LIMIT_MINUTES"), settings.get("SITE_TZ"))


@lru_cache(maxsize=8)
def _bounds(earliest: str, until: str, max_limit_minutes: float, site_tz: str) -> Bounds:
    zone = timezones.zone(site_tz)
    first, last = (pd.Timestamp(timezones.parse_instant(text, zone)) for text in (earliest, until))
    # What is accepted must fit the frames' nanoseconds (1677-09-22 to 2262-04-11).
    if not pd.Timestamp.min.tz_localize("UTC") < first < last < pd.Timestamp.max.tz_localize("UTC"):
        raise ValueError(f"PLAUSIBLE_FROM {earliest!r} must be before PLAUSIBLE_UNTIL {until!r}, "
                         "both between 1678 and 2262")
    return Bounds(first.to_pydatetime(), last.to_pydatetime(), max_limit_minutes,
                  int(first.as_unit("us").asm8.view("int64")), int(last.as_unit("us").asm8.view("int64")),
                  (earliest, until, _shown(max_limit_minutes)))


@dataclass(frozen=True)
class LeftOut:
    """A row left out of a frame, and why. `row` holds its values as read (instants as UTC
    Timestamps, None where there is none or it is not a time), so that a reader can tell in
    which window the row would have counted."""
    table: str
    key: str
    column: str
    value: str
    reason: str
    row: dict = field(compare=False, repr=False)


@dataclass(frozen=True)
class Source:
    """The table a frame's rows come from and the columns that name a row."""
    table: str
    key: tuple[str, ...]


ISSUES = Source("issues", ("id",))
EVENTS = Source("issue_events", ("event_id",))
MOVEMENTS = Source("movements", ("id",))
LOTS = Source("lot_stock", ("lot", "material_code", "location_code"))
PLAN = Source("production_plan", ("line", "shift_start"))

_INSTANT_KINDS = ("instant", "joined_instant")
# Kinds read as the driver gives them and converted a column at a time.
_DRIVER_KINDS = ("instant", "stamp")
_NAT = np.iinfo(np.int64).min
# A stamp that is not a time: the issue is read once, and then known by it.
UNREADABLE_STAMP = np.iinfo(np.int64).max


def _read_instants(values) -> tuple[pd.Series, np.ndarray]:
    """Instants as datetime64[us, UTC] (microseconds reach the years 1 to 9999, so no value
    a database holds overflows here), whether they came as naive UTC datetimes (PostgreSQL)
    or as SQLite text (text that is not a time becomes NaT)."""
    first = next((v for v in values if v is not None), None)
    if first is None:
        return pd.Series(pd.NaT, index=range(len(values)), dtype="datetime64[us, UTC]")
    if isinstance(first, datetime) and first.tzinfo is None:
        return pd.Series(pd.DatetimeIndex(values).as_unit("us").tz_localize("UTC"))
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601",
                          errors="coerce").dt.as_unit("us")


def utc_instants(values) -> pd.Series:
    """Instants as datetime64[ns, UTC], whether they came as naive UTC datetimes
    (PostgreSQL) or as SQLite text."""
    return _read_instants(values).astype("datetime64[ns, UTC]")


def _raw_instants(stmt, columns: dict[str, str]) -> Select:
    """`stmt` with its instant columns passed through as the driver gives them (text on
    SQLite, naive UTC datetimes on PostgreSQL): `utc_instants` converts a whole column at
    once, where the model's type converts value by value, tens of times slower."""
    if isinstance(stmt, Select):
        return stmt.with_only_columns(
            *[type_coerce(c, String).label(c.key) if columns.get(c.key) in _DRIVER_KINDS else c
              for c in stmt.selected_columns], maintain_column_froms=True)
    rows = stmt.subquery("rows")
    return select(*[type_coerce(rows.c[name], String) if columns.get(name) in _DRIVER_KINDS
                    else rows.c[name] for name in rows.c.keys()])


def _column(values, kind: str):
    """One column of driver values in its type, converted as a whole (instants in
    microseconds until the implausible ones are left out)."""
    if kind in _INSTANT_KINDS:
        return _read_instants(values).array
    if kind == "stamp":
        micros = _read_instants(values).array.asi8
        return np.where(micros == _NAT, UNREADABLE_STAMP, micros)
    if kind in ("float", "limit"):
        return np.array(values, dtype="float64")
    if kind == "int":
        return np.array(values, dtype="int64")
    # Text stays object: pandas would otherwise infer its string type, value by value.
    if not len(values):
        return pd.array([], dtype="str")
    text = np.empty(len(values), dtype=object)
    text[:] = values
    return text


def _frame(conn: Connection, stmt, columns: dict[str, str], order_by: Sequence[str] = (), *,
           source: Source | None = None, left_out: list[LeftOut] | None = None) -> pd.DataFrame:
    """The rows as typed columns, sorted here rather than by the database: PostgreSQL's
    collation and SQLite's byte order disagree, and both must give the same frame. Rows with
    an implausible value are left out (logged, and added to `left_out` when it is given)."""
    result = conn.execute(_raw_instants(stmt, columns))
    names = list(result.keys())
    rows = result.fetchall()
    values = dict(zip(names, zip(*rows) if rows else [()] * len(names)))
    typed = {name: _column(values[name], kind) for name, kind in columns.items()}
    faults = _implausible(values, typed, columns)
    if faults:
        typed = _without(typed, faults, values, columns, source, left_out)
    frame = pd.DataFrame({name: typed[name].as_unit("ns") if kind in _INSTANT_KINDS else typed[name]
                          for name, kind in columns.items()})
    if order_by and len(frame) > 1:
        frame = frame.sort_values(list(order_by), ignore_index=True)
    return frame


def _implausible(values: dict, typed: dict, columns: dict[str, str]) -> dict[int, tuple[str, str]]:
    """Per row that cannot be taken, the first column at fault and why: numpy over whole
    columns, Python only over the rows at fault."""
    bounds = plausible()
    faults: dict[int, tuple[str, str]] = {}
    for name, kind in columns.items():
        if kind in _INSTANT_KINDS:
            micros = typed[name].asi8
            unread = micros == _NAT
            given = ~pd.isna(np.asarray(values[name], dtype=object)) if unread.any() else unread
            checks = (
                (unread & given, f"{name} is not a time"),
                (~unread & (micros < bounds.earliest_us),
                 f"{name} before PLAUSIBLE_FROM ({bounds.settings[0]})"),
                (micros >= bounds.until_us, f"{name} not before PLAUSIBLE_UNTIL ({bounds.settings[1]})"))
        elif kind == "limit":
            checks = ((typed[name] > bounds.max_limit_minutes,
                       f"{name} of its SLA rule above MAX_LIMIT_MINUTES ({bounds.settings[2]})"),)
        else:
            continue
        for fault, reason in checks:
            for row in np.flatnonzero(fault).tolist():
                faults.setdefault(row, (name, reason))
    return faults


def _without(typed: dict, faults: dict[int, tuple[str, str]], values: dict,
             columns: dict[str, str], source: Source | None,
             left_out: list[LeftOut] | None) -> dict:
    """`typed` without the rows at fault; each logged (once per reason) and, unless only a
    joined row's instant is at fault, added to `left_out`."""
    rows = sorted(faults)
    table = source.table if source else "rows"
    by_reason: dict[str, list[LeftOut]] = {}
    for row in rows:
        name, reason = faults[row]
        as_read = {column: _as_read(typed[column][row]) for column in columns}
        key = " / ".join(_shown(as_read[k]) for k in source.key) if source else str(row)
        value = as_read[name] if as_read[name] is not None else values[name][row]
        left = LeftOut(table, key, name, _shown(value), reason, as_read)
        by_reason.setdefault(reason, []).append(left)
        if left_out is not None and columns[name] != "joined_instant":
            left_out.append(left)
    for reason, lefts in by_reason.items():
        log.warning("left out %d row(s) of %s: %s (the first: %s, %s = %s)", len(lefts), table,
                    reason, lefts[0].key, lefts[0].column, lefts[0].value)
    keep = np.ones(len(next(iter(typed.values()))), dtype=bool)
    keep[rows] = False
    return {name: column[keep] for name, column in typed.items()}


def _as_read(value):
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _shown(value) -> str:
    """A value as a data error shows it: instants in ISO 8601, whole numbers without '.0'."""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _issues(*, acknowledged_by: bool = False) -> Select:
    """The issue rows with their SLA limits (ISSUE_COLUMNS); with `acknowledged_by`, also
    whom to call (WALL_ISSUE_COLUMNS)."""
    stmt = (
        select(Issue.id, Issue.issue_type, Issue.title, Issue.severity, Issue.location_code,
               Location.line, Issue.owner_department_code, Issue.raised_by, Issue.raised_at,
               Issue.acknowledged_at, Issue.resolved_at, Issue.closed_at, Issue.status,
               SlaRule.ack_minutes, SlaRule.resolve_minutes)
        .join(SlaRule, SlaRule.issue_type == Issue.issue_type)
        .outerjoin(Location, Location.code == Issue.location_code)
    )
    return stmt.add_columns(_acknowledger()) if acknowledged_by else stmt


def _acknowledger():
    """Who acknowledged an issue that is still unresolved: the person's name, else the actor
    as written; the latest acknowledgement if there were several. Looked up for the unresolved
    issues only (one probe of the events' issue index each), which are the ones a board shows."""
    ack = IssueEvent.__table__.alias("ack")
    person = (select(func.coalesce(Person.name, ack.c.actor))
              .select_from(ack.outerjoin(Person, Person.id == ack.c.actor))
              .where(ack.c.issue_id == Issue.id, ack.c.kind == "acknowledged")
              .order_by(ack.c.at.desc(), ack.c.id.desc()).limit(1)
              .correlate(Issue).scalar_subquery())
    return case((and_(Issue.resolved_at.is_(None), Issue.acknowledged_at.is_not(None)), person)) \
        .label("acknowledged_by")


def _scoped(stmt: Select, department: str | None, line: str | None) -> Select:
    if department is not None:
        stmt = stmt.where(Issue.owner_department_code == department)
    if line is not None:
        stmt = stmt.where(Location.line == line)
    return stmt


def _in_population(stmt: Select, since: datetime, until: datetime) -> Select:
    return stmt.where(Issue.raised_at >= since, Issue.raised_at < until,
                      Issue.status != "cancelled")


def issue_population(conn: Connection, since: datetime, until: datetime, *,
                     department: str | None = None, line: str | None = None) -> pd.DataFrame:
    """The window's issues (since <= raised_at < until, not cancelled) with their SLA limits."""
    stmt = _scoped(_in_population(_issues(), since, until), department, line)
    return _frame(conn, stmt, ISSUE_COLUMNS, ["raised_at", "id"], source=ISSUES)


def open_issues(conn: Connection, as_of: datetime, *, department: str | None = None,
                line: str | None = None) -> pd.DataFrame:
    """Issues open at as_of whatever their window: raised by then, not resolved by then.

    Asked on every wall refresh, so it is two disjoint halves that each use an index
    (unresolved issues; issues resolved after as_of); one OR would read every issue ever
    raised before as_of.
    """
    def half(not_resolved_then):
        return _scoped(_issues().where(Issue.raised_at <= as_of, Issue.status != "cancelled",
                                       not_resolved_then), department, line)

    both = union_all(half(Issue.resolved_at.is_(None)), half(Issue.resolved_at > as_of))
    return _frame(conn, both, ISSUE_COLUMNS, ["raised_at", "id"], source=ISSUES)


def holder_events(conn: Connection, since: datetime, until: datetime, as_of: datetime, *,
                  department: str | None = None, line: str | None = None) -> pd.DataFrame:
    """The events (at or before as_of) of the window's issues: who held each issue, and when."""
    stmt = (
        select(IssueEvent.issue_id, IssueEvent.id.label("event_id"), IssueEvent.at,
               IssueEvent.kind, IssueEvent.department_code)
        .join(Issue, Issue.id == IssueEvent.issue_id)
        .outerjoin(Location, Location.code == Issue.location_code)
        .where(IssueEvent.at <= as_of)
    )
    stmt = _scoped(_in_population(stmt, since, until), department, line)
    return _frame(conn, stmt, EVENT_COLUMNS, ["issue_id", "at", "event_id"], source=EVENTS)


def departments(conn: Connection) -> pd.DataFrame:
    """Every department of the plant, so scoreboards list departments without issues too."""
    stmt = select(Department.code, Department.name_zh, Department.name_en)
    return _frame(conn, stmt, {"code": "str", "name_zh": "str", "name_en": "str"}, ["code"])


def _flows(as_of: datetime | None = None, lots=None):
    """Each move as two signed rows: +qty into its destination, with the instant it arrived,
    and -qty out of its origin. With `as_of`, moves after it and moves dated before
    PLAUSIBLE_FROM count zero; `lots` (a list or a subquery of lot codes) limits the moves to
    those lots.

    The instant is tested inside the sums rather than in a WHERE: a range on `at` that
    covers most of the history sends SQLite through the `at` index row by row, several
    times slower than the plain scan that an on-hand needs anyway.
    """
    earliest = plausible().earliest

    def counted(value, otherwise):
        if as_of is None:
            return value
        return case((and_(Movement.at >= earliest, Movement.at <= as_of), value), else_=otherwise)

    def side(location_code, qty, in_at):
        stmt = select(Movement.lot, Movement.material_code,
                      location_code.label("location_code"), counted(qty, 0).label("qty"),
                      Movement.at, in_at.label("in_at"))
        return stmt if lots is None else stmt.where(Movement.lot.in_(lots))

    return union_all(
        side(Movement.to_location_code, Movement.qty,
             type_coerce(counted(Movement.at, null()), UtcDateTime)),
        side(Movement.from_location_code, -Movement.qty, type_coerce(null(), UtcDateTime)),
    ).subquery("flows")


def _located(stmt: Select, flows, kinds: Iterable[str] | None, line: str | None) -> Select:
    stmt = stmt.join(Location, Location.code == flows.c.location_code)
    if kinds is not None:
        stmt = stmt.where(Location.kind.in_(tuple(kinds)))
    if line is not None:
        stmt = stmt.where(Location.line == line)
    return stmt


def moved_balances(as_of: datetime | None = None, lots=None,
                   kinds: Iterable[str] | None = STOCK_KINDS) -> Select:
    """Balance per lot, material and location (of `kinds`; None: every location) summed
    over the movements (those at or before `as_of`, of `lots`), non-zero only, with the last
    time the lot moved in. At the stock locations this is what lot_stock keeps."""
    flows = _flows(as_of, lots)
    qty = func.sum(flows.c.qty)
    stmt = _located(select(flows.c.lot, flows.c.material_code, flows.c.location_code,
                           qty.label("qty"),
                           type_coerce(func.max(flows.c.in_at), UtcDateTime).label("last_in_at"))
                    .select_from(flows), flows, kinds, None)
    return (stmt.group_by(flows.c.lot, flows.c.material_code, flows.c.location_code)
            .having(func.abs(qty) > QTY_EPSILON))


def _balances(as_of: datetime, kinds: Iterable[str] | None):
    """Balances per lot, material and location at as_of. At the stock locations: the kept
    running balance of every lot that has not moved since as_of, summed afresh from its
    moves for a lot that has (moves booked ahead, or an as_of in the past) or that has a
    move dated before PLAUSIBLE_FROM (which counts zero). Any other kind of location
    (suppliers, customers, consumption) is summed over the whole history."""
    if kinds is None or not set(kinds) <= set(STOCK_KINDS):
        return moved_balances(as_of, kinds=kinds).subquery("balances")
    recount = or_(Movement.at > as_of, Movement.at < plausible().earliest)
    moved_since = select(Movement.lot).where(recount)
    kept = (select(LotStock.lot, LotStock.material_code, LotStock.location_code, LotStock.qty,
                   LotStock.last_in_at)
            .where(~exists().where(Movement.lot == LotStock.lot, recount)))
    return union_all(kept, moved_balances(as_of, moved_since)).subquery("balances")


def stock_on_hand(conn: Connection, as_of: datetime, *, line: str | None = None,
                  kinds: Iterable[str] | None = STOCK_KINDS) -> pd.DataFrame:
    """On-hand per location and material at as_of (moved in minus moved out), non-zero only.

    `kinds` limits the locations (default: the plant's stock; None: every location).
    """
    balances = _balances(as_of, kinds)
    qty = func.sum(balances.c.qty)
    stmt = _located(
        select(balances.c.location_code, Location.kind.label("location_kind"),
               balances.c.material_code, qty.label("qty")).select_from(balances),
        balances, kinds, line)
    stmt = (stmt.group_by(balances.c.location_code, Location.kind, balances.c.material_code)
            .having(func.abs(qty) > QTY_EPSILON))
    return _frame(conn, stmt, STOCK_COLUMNS, ["location_code", "material_code"])


def lot_positions(conn: Connection, as_of: datetime, *, line: str | None = None,
                  kinds: Iterable[str] | None = STOCK_KINDS,
                  left_out: list[LeftOut] | None = None) -> pd.DataFrame:
    """Where each lot sits at as_of: positive on-hand per lot and location, with the last
    time the lot moved in there (the start of its dwell) and the location's dwell limit."""
    balances = _balances(as_of, kinds)
    stmt = _located(
        select(balances.c.lot, balances.c.material_code, balances.c.location_code,
               Location.kind.label("location_kind"), balances.c.qty, balances.c.last_in_at,
               Location.max_dwell_minutes).select_from(balances),
        balances, kinds, line).where(balances.c.qty > QTY_EPSILON)
    return _frame(conn, stmt, LOT_COLUMNS, ["location_code", "lot", "material_code"],
                  source=LOTS, left_out=left_out)


def consumed(conn: Connection, since: datetime, until: datetime, *,
             line: str | None = None) -> pd.DataFrame:
    """Quantity per material moved into consumption locations in [since, until)."""
    stmt = (
        select(Movement.material_code, func.sum(Movement.qty).label("qty"))
        .join(Location, Location.code == Movement.to_location_code)
        .where(Location.kind == CONSUMPTION_KIND, Movement.at >= since, Movement.at < until)
        .group_by(Movement.material_code)
    )
    if line is not None:
        stmt = stmt.where(Location.line == line)
    return _frame(conn, stmt, {"material_code": "str", "qty": "float"}, ["material_code"])


def stock_at_day_ends(conn: Connection, since: datetime, day_ends: Sequence[datetime], *,
                      line: str | None = None,
                      kinds: Iterable[str] = TURNOVER_STOCK_KINDS) -> pd.DataFrame:
    """Total on-hand of the `kinds` locations at each end of day (ascending, after since).

    One pass: the balance brought forward to `since`, then each day's net change, binned
    in the database (moves after the last day end fall in no bin, moves dated before
    PLAUSIBLE_FROM in none either); a day ending at E holds the moves before E.
    """
    if not day_ends:
        return pd.DataFrame({"at": utc_instants([]), "qty": pd.Series([], dtype="float64")})
    flows = _flows()
    day = case((flows.c.at < since, 0),
               *[(flows.c.at < end, number) for number, end in enumerate(day_ends, start=1)])
    binned = _located(
        select(day.label("day"), flows.c.qty).select_from(flows)
        .where(flows.c.at >= plausible().earliest), flows, kinds, line).subquery()
    stmt = (select(binned.c.day, func.sum(binned.c.qty).label("qty"))
            .where(binned.c.day.is_not(None)).group_by(binned.c.day))
    change = _frame(conn, stmt, {"day": "int", "qty": "float"}).set_index("day")["qty"]
    levels = change.reindex(range(len(day_ends) + 1), fill_value=0.0).cumsum()
    return pd.DataFrame({"at": utc_instants(list(day_ends)),
                         "qty": levels.iloc[1:].to_numpy(dtype="float64")})


def stock_changes_after_day_ends(conn: Connection, day_ends: Sequence[datetime], as_of: datetime, *,
                                 line: str | None = None,
                                 kinds: Iterable[str] = TURNOVER_STOCK_KINDS) -> pd.Series:
    """Net quantity moved into the `kinds` locations from each day end up to as_of
    (inclusive), one value per day end. With the on-hand at as_of this gives the on-hand at
    every day end from the period's moves alone, however long the history."""
    if not day_ends:
        return pd.Series([], dtype="float64")
    flows = _flows()
    day = case(*[(flows.c.at < end, number) for number, end in enumerate(day_ends[1:], start=1)],
               else_=len(day_ends))
    binned = _located(select(day.label("day"), flows.c.qty).select_from(flows)
                      .where(flows.c.at >= day_ends[0], flows.c.at <= as_of), flows, kinds, line).subquery()
    stmt = select(binned.c.day, func.sum(binned.c.qty).label("qty")).group_by(binned.c.day)
    change = _frame(conn, stmt, {"day": "int", "qty": "float"}).set_index("day")["qty"]
    per_day = change.reindex(range(1, len(day_ends) + 1), fill_value=0.0)
    return per_day[::-1].cumsum()[::-1].reset_index(drop=True)


def production_plan(conn: Connection, since: datetime, until: datetime, *,
                    line: str | None = None, left_out: list[LeftOut] | None = None) -> pd.DataFrame:
    """The shifts starting in [since, until), with planned and reported quantities."""
    stmt = (
        select(ProductionPlan.line, ProductionPlan.shift_start, ProductionPlan.shift_end,
               ProductionPlan.planned_qty, ProductionPlan.actual_qty)
        .where(ProductionPlan.shift_start >= since, ProductionPlan.shift_start < until)
    )
    if line is not None:
        stmt = stmt.where(ProductionPlan.line == line)
    return _frame(conn, stmt, PLAN_COLUMNS, ["shift_start", "line"], source=PLAN, left_out=left_out)


# ---- what incremental readers (data/wall/follower.py) load once and then follow ----------------

MOVEMENT_COLUMNS = {"id": "str", "at": "instant", "material_code": "str", "lot": "str",
                    "qty": "float", "from_location_code": "str", "to_location_code": "str",
                    "recorded_at": "instant"}
LOCATION_COLUMNS = {"code": "str", "name": "str", "kind": "str", "line": "str",
                    "max_dwell_minutes": "float"}


def issues_in_play(conn: Connection, raised_since: datetime, resolved_since: datetime, *,
                   left_out: list[LeftOut] | None = None) -> pd.DataFrame:
    """Every issue a screen may count (WALL_ISSUE_COLUMNS): raised since `raised_since`
    whatever their status, and older ones still open or finished (resolved, or closed without
    a resolution) since `resolved_since` (an older cancelled issue counts nowhere). Three disjoint parts, each on an index; `in_play`
    says the same of one row."""
    recent = _issues(acknowledged_by=True).where(Issue.raised_at >= raised_since)
    older = _issues(acknowledged_by=True).where(Issue.raised_at < raised_since)
    unresolved = older.where(Issue.resolved_at.is_(None), Issue.status != "cancelled",
                             or_(Issue.closed_at.is_(None), Issue.closed_at >= resolved_since))
    stmt = union_all(recent, unresolved, older.where(Issue.resolved_at >= resolved_since))
    return _frame(conn, stmt, WALL_ISSUE_COLUMNS, ["raised_at", "id"], source=ISSUES,
                  left_out=left_out)


def in_play(issue: dict, raised_since: datetime, resolved_since: datetime) -> bool:
    """Whether `issues_in_play` takes an issue (its values as read: LeftOut.row). An instant
    that could not be read counts as one the database compares as later than any."""
    raised, resolved = issue["raised_at"], issue["resolved_at"]
    if raised is None or raised >= raised_since:
        return True
    if resolved is None:
        closed = issue["closed_at"]
        return issue["status"] != "cancelled" and (closed is None or closed >= resolved_since)
    return resolved >= resolved_since


def plant_is_empty(conn: Connection) -> bool:
    """No issue and no movement at all: a plant nobody has filled yet (one probe each)."""
    issues, movements = conn.execute(select(exists(select(Issue.id)), exists(select(Movement.id)))).one()
    return not (issues or movements)


# What was written after a watermark: the rows written since the last read in full; how
# many rows the overlap before it holds (a count, so the minutes a watermark re-reads cost
# little); and, only when that count differs from the rows already read, the overlap's keys
# and by key the rare row that committed late into it. Followed rows come in no order.
WRITTEN_KEYS_PER_READ = 5_000
FOLLOWED_EVENT_COLUMNS = {**EVENT_COLUMNS, "issue_raised_at": "joined_instant",
                          "recorded_at": "instant"}
FOLLOWED_ISSUE_COLUMNS = {**WALL_ISSUE_COLUMNS, "updated_at": "stamp"}


def data_version(conn: Connection) -> int:
    """The sum of every data version counter: the bulk writers' and the one the database
    raises when another program changes a table that is not followed (migration 0006).
    A new sum means a full reload."""
    return int(conn.execute(select(func.coalesce(func.sum(DataVersion.version), 0))).scalar())


class _StampMicros(FunctionElement):
    """A stamp column in microseconds since the epoch, as `_read_instants` reads it (exactly,
    for the text FloorLink and the database's triggers write on SQLite)."""
    inherit_cache = True
    name = "stamp_micros"


@compiles(_StampMicros, "postgresql")
def _stamp_micros_postgresql(element, compiler, **kw) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"CAST(EXTRACT(EPOCH FROM {column}) * 1000000 AS BIGINT)"


@compiles(_StampMicros, "sqlite")
def _stamp_micros_sqlite(element, compiler, **kw) -> str:
    column = compiler.process(element.clauses, **kw)
    return (f"(CAST(strftime('%s', {column}) AS INTEGER) * 1000000 "
            f"+ CAST(substr({column}, 21, 6) AS INTEGER))")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_micros(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(microseconds=1)


class Written(NamedTuple):
    """What the writers' clock says was written around a watermark (`written_counts`)."""
    events: int
    movements: int
    plan: int
    issues: int
    # The issues' stamps summed, each as microseconds after `since`: a count cannot tell an
    # issue changed again from one read before, its stamp can.
    issue_stamps: int


def written_counts(conn: Connection, since: datetime, until: datetime) -> Written:
    """How many events, movements and issues were stamped in (since, until] (and the sum of
    those issues' stamps), and how many plan rows were written after `since`, by the
    writers' clock: one round trip."""
    def count(model, stamp, *bounded) -> Select:
        return select(func.count()).select_from(model).where(stamp > since, *bounded).scalar_subquery()

    stamp_sum = select(func.coalesce(func.sum(_StampMicros(Issue.updated_at) - epoch_micros(since)), 0)) \
        .where(Issue.updated_at > since, Issue.updated_at <= until).scalar_subquery()
    row = conn.execute(select(
        count(IssueEvent, IssueEvent.recorded_at, IssueEvent.recorded_at <= until),
        count(Movement, Movement.recorded_at, Movement.recorded_at <= until),
        count(ProductionPlan, ProductionPlan.updated_at),
        count(Issue, Issue.updated_at, Issue.updated_at <= until), stamp_sum)).one()
    return Written(*(int(value) for value in row))


def event_keys_recorded_since(conn: Connection, since: datetime) -> pd.DataFrame:
    stmt = select(IssueEvent.id.label("key"), IssueEvent.recorded_at).where(IssueEvent.recorded_at > since)
    return _frame(conn, stmt, {"key": "int", "recorded_at": "instant"})


def movement_keys_recorded_since(conn: Connection, since: datetime) -> pd.DataFrame:
    stmt = select(Movement.id.label("key"), Movement.recorded_at).where(Movement.recorded_at > since)
    return _frame(conn, stmt, {"key": "str", "recorded_at": "instant"})


def issues_written_since(conn: Connection, since: datetime, *,
                         left_out: list[LeftOut] | None = None) -> pd.DataFrame:
    """Issues written (raised or changed) after `since`, by the writers' clock, with that
    stamp (FOLLOWED_ISSUE_COLUMNS)."""
    return _frame(conn, _issues(acknowledged_by=True).add_columns(Issue.updated_at)
                  .where(Issue.updated_at > since), FOLLOWED_ISSUE_COLUMNS, source=ISSUES,
                  left_out=left_out)


def issue_stamps(conn: Connection, since: datetime, until: datetime | None = None) -> pd.DataFrame:
    """The id and stamp of every issue written after `since` (and by `until`), by the
    writers' clock."""
    stmt = select(Issue.id.label("key"), Issue.updated_at.label("stamp")).where(Issue.updated_at > since)
    if until is not None:
        stmt = stmt.where(Issue.updated_at <= until)
    return _frame(conn, stmt, {"key": "str", "stamp": "stamp"})


def _by_keys(conn: Connection, stmt: Select, key, keys, columns: dict[str, str],
             source: Source, left_out: list[LeftOut] | None) -> pd.DataFrame:
    keys = sorted(keys)
    parts = [_frame(conn, stmt.where(key.in_(keys[i:i + WRITTEN_KEYS_PER_READ])), columns,
                    source=source, left_out=left_out)
             for i in range(0, len(keys), WRITTEN_KEYS_PER_READ)]
    if not parts:
        return _frame(conn, stmt.where(key.in_([])), columns)
    return pd.concat(parts, ignore_index=True)


def issues_by_id(conn: Connection, ids, *, left_out: list[LeftOut] | None = None) -> pd.DataFrame:
    return _by_keys(conn, _issues(acknowledged_by=True).add_columns(Issue.updated_at), Issue.id,
                    ids, FOLLOWED_ISSUE_COLUMNS, ISSUES, left_out)


def _followed_events() -> Select:
    return (select(IssueEvent.issue_id, IssueEvent.id.label("event_id"), IssueEvent.at,
                   IssueEvent.kind, IssueEvent.department_code,
                   Issue.raised_at.label("issue_raised_at"), IssueEvent.recorded_at)
            .join(Issue, Issue.id == IssueEvent.issue_id))


def events_of_issues_in_play(conn: Connection, raised_since: datetime, as_of: datetime, *,
                             left_out: list[LeftOut] | None = None) -> pd.DataFrame:
    """The events of the issues raised since `raised_since`, and of the older ones still
    unresolved at as_of (not cancelled): what tells when an issue went back to a department
    it had left. Three disjoint parts, each on an index."""
    recent = _followed_events().where(Issue.raised_at >= raised_since)
    older = _followed_events().where(Issue.raised_at < raised_since, Issue.status != "cancelled")
    stmt = union_all(recent, older.where(Issue.resolved_at.is_(None)),
                     older.where(Issue.resolved_at > as_of))
    return _frame(conn, stmt, FOLLOWED_EVENT_COLUMNS, ["issue_id", "at", "event_id"],
                  source=EVENTS, left_out=left_out)


def events_of_issues(conn: Connection, issue_ids, *,
                     left_out: list[LeftOut] | None = None) -> pd.DataFrame:
    """Every event of the issues `issue_ids`."""
    return _by_keys(conn, _followed_events(), IssueEvent.issue_id, issue_ids,
                    FOLLOWED_EVENT_COLUMNS, EVENTS, left_out)


def events_recorded_since(conn: Connection, since: datetime, *,
                          left_out: list[LeftOut] | None = None) -> pd.DataFrame:
    """Events recorded after `since`, with when their issue was raised."""
    stmt = _followed_events().where(IssueEvent.recorded_at > since)
    return _frame(conn, stmt, FOLLOWED_EVENT_COLUMNS, source=EVENTS, left_out=left_out)


def events_by_id(conn: Connection, ids, *, left_out: list[LeftOut] | None = None) -> pd.DataFrame:
    return _by_keys(conn, _followed_events(), IssueEvent.id, ids, FOLLOWED_EVENT_COLUMNS,
                    EVENTS, left_out)


def _movements() -> Select:
    return select(Movement.id, Movement.at, Movement.material_code, Movement.lot, Movement.qty,
                  Movement.from_location_code, Movement.to_location_code, Movement.recorded_at)


def movements_written_since(conn: Connection, since: datetime, *,
                            left_out: list[LeftOut] | None = None) -> pd.DataFrame:
    return _frame(conn, _movements().where(Movement.recorded_at > since), MOVEMENT_COLUMNS,
                  source=MOVEMENTS, left_out=left_out)


def movements_by_id(conn: Connection, ids, *, left_out: list[LeftOut] | None = None) -> pd.DataFrame:
    return _by_keys(conn, _movements(), Movement.id, ids, MOVEMENT_COLUMNS, MOVEMENTS, left_out)


def movements_after(conn: Connection, as_of: datetime, *,
                    left_out: list[LeftOut] | None = None) -> pd.DataFrame:
    """Movements booked for a time still to come (they count once it has come)."""
    return _frame(conn, _movements().where(Movement.at > as_of), MOVEMENT_COLUMNS, ["at", "id"],
                  source=MOVEMENTS, left_out=left_out)


def implausible_movements(conn: Connection) -> list[LeftOut]:
    """The movements dated outside the plausible range, which no figure counts (two range
    probes of the movements' time index)."""
    bounds = plausible()
    left_out: list[LeftOut] = []
    _frame(conn, _movements().where(or_(Movement.at < bounds.earliest, Movement.at >= bounds.until)),
           MOVEMENT_COLUMNS, source=MOVEMENTS, left_out=left_out)
    return left_out


def locations(conn: Connection) -> pd.DataFrame:
    stmt = select(Location.code, Location.name, Location.kind, Location.line,
                  Location.max_dwell_minutes)
    return _frame(conn, stmt, LOCATION_COLUMNS, ["code"])


# One issue's page (dashboards/issue.py): its row with the names a reader needs, and every
# event as written.
TIMELINE_ISSUE_COLUMNS = {**ISSUE_COLUMNS, "type_name_zh": "str", "type_name_en": "str",
                          "location_name": "str", "owner_name_zh": "str", "owner_name_en": "str",
                          "raised_by_name": "str", "cause": "str"}
TIMELINE_EVENT_COLUMNS = {**EVENT_COLUMNS, "department_name_zh": "str",
                          "department_name_en": "str", "actor": "str", "actor_name": "str",
                          "note": "str", "source": "str"}


@dataclass(frozen=True)
class IssueTimeline:
    """An issue (`issue`: one row, TIMELINE_ISSUE_COLUMNS) and all its events in the order
    they happened (`events`: TIMELINE_EVENT_COLUMNS, ties in event id order)."""
    issue: pd.DataFrame
    events: pd.DataFrame

    @property
    def row(self) -> dict:
        return self.issue.iloc[0].to_dict()


def issue_timeline(conn: Connection, issue_id: str, *,
                   left_out: list[LeftOut] | None = None) -> IssueTimeline | None:
    """The issue `issue_id` and its events; None when there is no such issue, or when its row
    cannot be used (then in `left_out` with the reason, as an event that cannot be)."""
    owner = Department.__table__.alias("owner")
    stmt = (_issues().add_columns(SlaRule.name_zh.label("type_name_zh"),
                                  SlaRule.name_en.label("type_name_en"),
                                  Location.name.label("location_name"),
                                  owner.c.name_zh.label("owner_name_zh"),
                                  owner.c.name_en.label("owner_name_en"),
                                  func.coalesce(Person.name, Issue.raised_by).label("raised_by_name"),
                                  Issue.cause)
            .outerjoin(owner, owner.c.code == Issue.owner_department_code)
            .outerjoin(Person, Person.id == Issue.raised_by)
            .where(Issue.id == issue_id))
    issue = _frame(conn, stmt, TIMELINE_ISSUE_COLUMNS, source=ISSUES, left_out=left_out)
    if issue.empty:
        return None
    events = (select(IssueEvent.issue_id, IssueEvent.id.label("event_id"), IssueEvent.at,
                     IssueEvent.kind, IssueEvent.department_code,
                     Department.name_zh.label("department_name_zh"),
                     Department.name_en.label("department_name_en"), IssueEvent.actor,
                     func.coalesce(Person.name, IssueEvent.actor).label("actor_name"),
                     IssueEvent.note, IssueEvent.source)
              .outerjoin(Department, Department.code == IssueEvent.department_code)
              .outerjoin(Person, Person.id == IssueEvent.actor)
              .where(IssueEvent.issue_id == issue_id))
    return IssueTimeline(issue, _frame(conn, events, TIMELINE_EVENT_COLUMNS, ["at", "event_id"],
                                       source=EVENTS, left_out=left_out))


def newest_record(conn: Connection, as_of: datetime) -> datetime | None:
    """When the plant's newest record at as_of happened: the latest issue raised, issue event
    or movement dated from PLAUSIBLE_FROM up to as_of; None when there is none. Three
    probes of the time indexes in one round trip, so a screen can ask every interval."""
    earliest = plausible().earliest

    def latest(column) -> Select:
        return select(func.max(column)).where(column >= earliest, column <= as_of).scalar_subquery()

    found = conn.execute(select(latest(Issue.raised_at), latest(IssueEvent.at), latest(Movement.at))).one()
    return max((value for value in found if value is not None), default=None)
