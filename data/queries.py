"""Windowed loaders: the database aggregates, pandas receives small frames.

Every loader takes a Connection and explicit instants, so a screen, a report and a test ask
the same question the same way. Instants in the returned frames are datetime64[ns, UTC] on
SQLite and PostgreSQL alike, and the columns are present even when no row matches.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Select, String, case, exists, func, null, select, type_coerce, union_all
from sqlalchemy.engine import Connection

from data.models import (
    Department, Issue, IssueEvent, Location, LotStock, Movement, ProductionPlan, SlaRule,
    UtcDateTime,
)

# Locations whose contents are the plant's own stock. Suppliers and customers are outside the
# plant, and material moved into a consumption location has been used up.
STOCK_KINDS = ("receiving", "iqc", "warehouse", "line_side", "wip", "finished", "scrap")
# The stock that material turnover is measured against (contract section 2).
TURNOVER_STOCK_KINDS = ("warehouse", "line_side")
CONSUMPTION_KIND = "consumption"
# On-hand below this is float noise left by sums of moves, not material.
QTY_EPSILON = 1e-9

ISSUE_COLUMNS = {
    "id": "str", "issue_type": "str", "title": "str", "severity": "str", "location_code": "str",
    "line": "str", "owner_department_code": "str", "raised_by": "str", "raised_at": "instant",
    "acknowledged_at": "instant", "resolved_at": "instant", "closed_at": "instant",
    "status": "str", "ack_minutes": "float", "resolve_minutes": "float",
}
EVENT_COLUMNS = {"issue_id": "str", "event_id": "int", "at": "instant", "kind": "str",
                 "department_code": "str"}
STOCK_COLUMNS = {"location_code": "str", "location_kind": "str", "material_code": "str",
                 "qty": "float"}
LOT_COLUMNS = {"lot": "str", "material_code": "str", "location_code": "str",
               "location_kind": "str", "qty": "float", "last_in_at": "instant",
               "max_dwell_minutes": "float"}
PLAN_COLUMNS = {"line": "str", "shift_start": "instant", "shift_end": "instant",
                "planned_qty": "float", "actual_qty": "float"}


def utc_instants(values) -> pd.Series:
    """Instants as datetime64[ns, UTC], whether they came as naive UTC datetimes
    (PostgreSQL) or as SQLite text."""
    first = next((v for v in values if v is not None), None)
    if first is None:
        return pd.Series(pd.NaT, index=range(len(values)), dtype="datetime64[ns, UTC]")
    if isinstance(first, datetime) and first.tzinfo is None:
        return pd.Series(pd.DatetimeIndex(values).as_unit("ns").tz_localize("UTC"))
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601") \
        .astype("datetime64[ns, UTC]")


def _raw_instants(stmt, columns: dict[str, str]) -> Select:
    """`stmt` with its instant columns passed through as the driver gives them (text on
    SQLite, naive UTC datetimes on PostgreSQL): `utc_instants` converts a whole column at
    once, where the model's type converts value by value, tens of times slower."""
    if isinstance(stmt, Select):
        return stmt.with_only_columns(
            *[type_coerce(c, String).label(c.key) if columns.get(c.key) == "instant" else c
              for c in stmt.selected_columns], maintain_column_froms=True)
    rows = stmt.subquery("rows")
    return select(*[type_coerce(rows.c[name], String) if columns.get(name) == "instant"
                    else rows.c[name] for name in rows.c.keys()])


def _column(values, kind: str):
    """One column of driver values in its type, converted as a whole."""
    if kind == "instant":
        return utc_instants(values).array
    if kind == "float":
        return np.array(values, dtype="float64")
    if kind == "int":
        return np.array(values, dtype="int64")
    # Text stays object: pandas would otherwise infer its string type, value by value.
    if not len(values):
        return pd.array([], dtype="str")
    text = np.empty(len(values), dtype=object)
    text[:] = values
    return text


def _frame(conn: Connection, stmt, columns: dict[str, str],
           order_by: Sequence[str] = ()) -> pd.DataFrame:
    """The rows as typed columns, sorted here rather than by the database: PostgreSQL's
    collation and SQLite's byte order disagree, and both must give the same frame."""
    result = conn.execute(_raw_instants(stmt, columns))
    names = list(result.keys())
    rows = result.fetchall()
    values = dict(zip(names, zip(*rows) if rows else [()] * len(names)))
    frame = pd.DataFrame({name: _column(values[name], kind) for name, kind in columns.items()})
    if order_by and len(frame) > 1:
        frame = frame.sort_values(list(order_by), ignore_index=True)
    return frame


def _issues() -> Select:
    return (
        select(Issue.id, Issue.issue_type, Issue.title, Issue.severity, Issue.location_code,
               Location.line, Issue.owner_department_code, Issue.raised_by, Issue.raised_at,
               Issue.acknowledged_at, Issue.resolved_at, Issue.closed_at, Issue.status,
               SlaRule.ack_minutes, SlaRule.resolve_minutes)
        .join(SlaRule, SlaRule.issue_type == Issue.issue_type)
        .outerjoin(Location, Location.code == Issue.location_code)
    )


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
    return _frame(conn, stmt, ISSUE_COLUMNS, ["raised_at", "id"])


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
    return _frame(conn, both, ISSUE_COLUMNS, ["raised_at", "id"])


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
    return _frame(conn, stmt, EVENT_COLUMNS, ["issue_id", "at", "event_id"])


def departments(conn: Connection) -> pd.DataFrame:
    """Every department of the plant, so scoreboards list departments without issues too."""
    stmt = select(Department.code, Department.name_zh, Department.name_en)
    return _frame(conn, stmt, {"code": "str", "name_zh": "str", "name_en": "str"}, ["code"])


def _flows(as_of: datetime | None = None, lots=None):
    """Each move as two signed rows: +qty into its destination, with the instant it arrived,
    and -qty out of its origin. Moves after `as_of` count zero; `lots` (a list or a
    subquery of lot codes) limits the moves to those lots.

    The instant is tested inside the sums rather than in a WHERE: a range on `at` that
    covers most of the history sends SQLite through the `at` index row by row, several
    times slower than the plain scan that an on-hand needs anyway.
    """
    def counted(value, otherwise):
        return value if as_of is None else case((Movement.at <= as_of, value), else_=otherwise)

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
    moves for a lot that has (moves booked ahead, or an as_of in the past). Any other kind
    of location (suppliers, customers, consumption) is summed over the whole history."""
    if kinds is None or not set(kinds) <= set(STOCK_KINDS):
        return moved_balances(as_of, kinds=kinds).subquery("balances")
    moved_since = select(Movement.lot).where(Movement.at > as_of)
    kept = (select(LotStock.lot, LotStock.material_code, LotStock.location_code, LotStock.qty,
                   LotStock.last_in_at)
            .where(~exists().where(Movement.lot == LotStock.lot, Movement.at > as_of)))
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
                  kinds: Iterable[str] | None = STOCK_KINDS) -> pd.DataFrame:
    """Where each lot sits at as_of: positive on-hand per lot and location, with the last
    time the lot moved in there (the start of its dwell) and the location's dwell limit."""
    balances = _balances(as_of, kinds)
    stmt = _located(
        select(balances.c.lot, balances.c.material_code, balances.c.location_code,
               Location.kind.label("location_kind"), balances.c.qty, balances.c.last_in_at,
               Location.max_dwell_minutes).select_from(balances),
        balances, kinds, line).where(balances.c.qty > QTY_EPSILON)
    return _frame(conn, stmt, LOT_COLUMNS, ["location_code", "lot", "material_code"])


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
    in the database (moves after the last day end fall in no bin); a day ending at E holds
    the moves before E.
    """
    if not day_ends:
        return pd.DataFrame({"at": utc_instants([]), "qty": pd.Series([], dtype="float64")})
    flows = _flows()
    day = case((flows.c.at < since, 0),
               *[(flows.c.at < end, number) for number, end in enumerate(day_ends, start=1)])
    binned = _located(
        select(day.label("day"), flows.c.qty).select_from(flows), flows, kinds, line).subquery()
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
                    line: str | None = None) -> pd.DataFrame:
    """The shifts starting in [since, until), with planned and reported quantities."""
    stmt = (
        select(ProductionPlan.line, ProductionPlan.shift_start, ProductionPlan.shift_end,
               ProductionPlan.planned_qty, ProductionPlan.actual_qty)
        .where(ProductionPlan.shift_start >= since, ProductionPlan.shift_start < until)
    )
    if line is not None:
        stmt = stmt.where(ProductionPlan.line == line)
    return _frame(conn, stmt, PLAN_COLUMNS, ["shift_start", "line"])


# ---- what incremental readers (data/wall/follower.py) load once and then follow ----------------

MOVEMENT_COLUMNS = {"id": "str", "at": "instant", "material_code": "str", "lot": "str",
                    "qty": "float", "from_location_code": "str", "to_location_code": "str",
                    "recorded_at": "instant"}
LOCATION_COLUMNS = {"code": "str", "name": "str", "kind": "str", "line": "str",
                    "max_dwell_minutes": "float"}


def issues_in_play(conn: Connection, raised_since: datetime, resolved_since: datetime) -> pd.DataFrame:
    """Every issue a screen may count: raised since `raised_since` whatever their status,
    and older ones still open or resolved since `resolved_since` (an older cancelled issue
    counts nowhere). Three disjoint parts, each on an index."""
    recent = _issues().where(Issue.raised_at >= raised_since)
    older = _issues().where(Issue.raised_at < raised_since)
    stmt = union_all(recent, older.where(Issue.resolved_at.is_(None), Issue.status != "cancelled"),
                     older.where(Issue.resolved_at >= resolved_since))
    return _frame(conn, stmt, ISSUE_COLUMNS, ["raised_at", "id"])


# What was written after a watermark: the rows written since the last read in full; how
# many rows the overlap before it holds (a count, so the minutes a watermark re-reads cost
# little); and, only when that count differs from the rows already read, the overlap's keys
# and by key the rare row that committed late into it. Followed rows come in no order.
WRITTEN_KEYS_PER_READ = 5_000
FOLLOWED_EVENT_COLUMNS = {**EVENT_COLUMNS, "issue_raised_at": "instant", "recorded_at": "instant"}


def written_counts(conn: Connection, since: datetime, until: datetime) -> tuple[int, int, int]:
    """How many events and movements were recorded in (since, until], and how many plan rows
    were written after `since`, by the writers' clock: one round trip."""
    def count(model, stamp, *bounded) -> Select:
        return select(func.count()).select_from(model).where(stamp > since, *bounded).scalar_subquery()

    events, movements, plan = conn.execute(select(
        count(IssueEvent, IssueEvent.recorded_at, IssueEvent.recorded_at <= until),
        count(Movement, Movement.recorded_at, Movement.recorded_at <= until),
        count(ProductionPlan, ProductionPlan.updated_at))).one()
    return int(events), int(movements), int(plan)


def event_keys_recorded_since(conn: Connection, since: datetime) -> pd.DataFrame:
    stmt = select(IssueEvent.id.label("key"), IssueEvent.recorded_at).where(IssueEvent.recorded_at > since)
    return _frame(conn, stmt, {"key": "int", "recorded_at": "instant"})


def movement_keys_recorded_since(conn: Connection, since: datetime) -> pd.DataFrame:
    stmt = select(Movement.id.label("key"), Movement.recorded_at).where(Movement.recorded_at > since)
    return _frame(conn, stmt, {"key": "str", "recorded_at": "instant"})


def issues_written_since(conn: Connection, since: datetime) -> pd.DataFrame:
    """Issues written (raised or changed) after `since`, by the writers' clock."""
    return _frame(conn, _issues().where(Issue.updated_at > since), ISSUE_COLUMNS)


def _by_keys(conn: Connection, stmt: Select, key, keys, columns: dict[str, str]) -> pd.DataFrame:
    keys = sorted(keys)
    parts = [_frame(conn, stmt.where(key.in_(keys[i:i + WRITTEN_KEYS_PER_READ])), columns)
             for i in range(0, len(keys), WRITTEN_KEYS_PER_READ)]
    if not parts:
        return _frame(conn, stmt.where(key.in_([])), columns)
    return pd.concat(parts, ignore_index=True)


def issues_by_id(conn: Connection, ids) -> pd.DataFrame:
    return _by_keys(conn, _issues(), Issue.id, ids, ISSUE_COLUMNS)


def _followed_events() -> Select:
    return (select(IssueEvent.issue_id, IssueEvent.id.label("event_id"), IssueEvent.at,
                   IssueEvent.kind, IssueEvent.department_code,
                   Issue.raised_at.label("issue_raised_at"), IssueEvent.recorded_at)
            .join(Issue, Issue.id == IssueEvent.issue_id))


def events_of_issues_raised_since(conn: Connection, raised_since: datetime) -> pd.DataFrame:
    return _frame(conn, _followed_events().where(Issue.raised_at >= raised_since),
                  FOLLOWED_EVENT_COLUMNS, ["issue_id", "at", "event_id"])


def events_recorded_since(conn: Connection, since: datetime) -> pd.DataFrame:
    """Events recorded after `since`, with when their issue was raised."""
    stmt = _followed_events().where(IssueEvent.recorded_at > since)
    return _frame(conn, stmt, FOLLOWED_EVENT_COLUMNS)


def events_by_id(conn: Connection, ids) -> pd.DataFrame:
    return _by_keys(conn, _followed_events(), IssueEvent.id, ids, FOLLOWED_EVENT_COLUMNS)


def _movements() -> Select:
    return select(Movement.id, Movement.at, Movement.material_code, Movement.lot, Movement.qty,
                  Movement.from_location_code, Movement.to_location_code, Movement.recorded_at)


def movements_written_since(conn: Connection, since: datetime) -> pd.DataFrame:
    return _frame(conn, _movements().where(Movement.recorded_at > since), MOVEMENT_COLUMNS)


def movements_by_id(conn: Connection, ids) -> pd.DataFrame:
    return _by_keys(conn, _movements(), Movement.id, ids, MOVEMENT_COLUMNS)


def movements_after(conn: Connection, as_of: datetime) -> pd.DataFrame:
    """Movements booked for a time still to come (they count once it has come)."""
    return _frame(conn, _movements().where(Movement.at > as_of), MOVEMENT_COLUMNS, ["at", "id"])


def locations(conn: Connection) -> pd.DataFrame:
    stmt = select(Location.code, Location.name, Location.kind, Location.line,
                  Location.max_dwell_minutes)
    return _frame(conn, stmt, LOCATION_COLUMNS, ["code"])
