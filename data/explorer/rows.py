"""The explorer's rows: the issues raised in a window under the explorer's filters, the issues
open at as_of under the same filters, the events of both up to as_of, and the production
plan's shifts their holding time is counted in. Frames are shaped as data/kpis.py and
data/analysis expect them (data.queries' columns and types, plus `cause`).

Each filter is a list of values (none: every value), sent as bound parameters of one IN;
NO_VALUE in a list keeps the issues without a value (no line, no cause). Rows with a value
that cannot be real are left out as on every screen (data.queries) and counted in `left_out`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping, Sequence

import pandas as pd
from sqlalchemy import Select, func, or_, select, union_all
from sqlalchemy.engine import Connection

from data import queries
from data.explorer.state import NO_VALUE
from data.models import SEVERITIES, Department, Issue, IssueEvent, Location, ProductionPlan, SlaRule

ISSUE_COLUMNS = {**queries.ISSUE_COLUMNS, "cause": "str"}
# The column each filter keeps values of: the owning department, as the contract's
# "by department" groups.
FILTER_COLUMNS = {"department": Issue.owner_department_code, "line": Location.line,
                  "location": Issue.location_code, "issue_type": Issue.issue_type,
                  "severity": Issue.severity, "cause": Issue.cause}


@dataclass
class Rows:
    """`issues`: raised in [since, until), not cancelled. `open_now`: raised by as_of, not
    resolved or closed by as_of, not cancelled, whatever their window. `events`: those of
    both, at or before as_of. `shifts`: the plan's shifts that overlap the time from the
    earliest of these issues being raised to as_of."""
    issues: pd.DataFrame
    open_now: pd.DataFrame
    events: pd.DataFrame
    shifts: pd.DataFrame
    left_out: list[queries.LeftOut] = field(default_factory=list)
    # Every issue of the rows once (`issues`, then the other `open_now`), when the reader has
    # them at hand.
    known: pd.DataFrame | None = None
    # The history's cut the rows were taken from (data.explorer.history.Cut), when they were.
    cut: object | None = None


def _filtered(stmt: Select, filters: Mapping[str, Sequence[str]]) -> Select:
    for name, values in filters.items():
        if name not in FILTER_COLUMNS:
            raise ValueError(f"unknown filter {name!r}; the filters are {', '.join(FILTER_COLUMNS)}")
        if not values:
            continue
        column = FILTER_COLUMNS[name]
        named = sorted({str(v) for v in values if v != NO_VALUE})
        kept = [column.in_(named)] if named else []
        if NO_VALUE in values:
            kept.append(column.is_(None))
        stmt = stmt.where(or_(*kept))
    return stmt


def _issues() -> Select:
    return queries._issues().add_columns(Issue.cause)


def _events() -> Select:
    return (select(IssueEvent.issue_id, IssueEvent.id.label("event_id"), IssueEvent.at,
                   IssueEvent.kind, IssueEvent.department_code)
            .join(Issue, Issue.id == IssueEvent.issue_id)
            .outerjoin(Location, Location.code == Issue.location_code))


def _open_halves(stmt: Select, as_of: datetime) -> list[Select]:
    """`stmt` kept to issues open at as_of, as two disjoint halves that each use an index
    (unresolved issues; issues resolved after as_of), as data.queries.open_issues does."""
    common = stmt.where(Issue.status != "cancelled",
                        or_(Issue.closed_at.is_(None), Issue.closed_at > as_of))
    return [common.where(Issue.resolved_at.is_(None)), common.where(Issue.resolved_at > as_of)]


def load(conn: Connection, since: datetime, until: datetime, as_of: datetime,
         filters: Mapping[str, Sequence[str]] | None = None) -> Rows:
    """The rows of the window [since, until) as known at as_of, under `filters` (a filter
    name of FILTER_COLUMNS to the values it keeps)."""
    if not since < until:
        raise ValueError(f"the window's since ({since.isoformat()}) must be before its until "
                         f"({until.isoformat()})")
    filters = dict(filters or {})
    left_out: list[queries.LeftOut] = []

    def in_window(stmt: Select) -> Select:
        return _filtered(stmt.where(Issue.raised_at >= since, Issue.raised_at < until,
                                    Issue.status != "cancelled"), filters)

    def open_outside(stmt: Select) -> list[Select]:
        """Open at as_of and raised outside the window: before it, or after it up to as_of."""
        outside = or_(Issue.raised_at < since, Issue.raised_at >= until)
        return _open_halves(_filtered(stmt.where(Issue.raised_at <= as_of, outside), filters),
                            as_of)

    issues = queries._frame(conn, in_window(_issues()), ISSUE_COLUMNS, ["raised_at", "id"],
                            source=queries.ISSUES, left_out=left_out)
    open_candidates = union_all(
        *_open_halves(_filtered(_issues().where(Issue.raised_at >= since, Issue.raised_at < until),
                                filters), as_of),
        *open_outside(_issues()))
    open_now = queries._frame(conn, open_candidates, ISSUE_COLUMNS, ["raised_at", "id"],
                              source=queries.ISSUES, left_out=left_out)
    events_until = _events().where(IssueEvent.at <= as_of)
    events = queries._frame(
        conn, union_all(in_window(events_until), *open_outside(events_until)),
        queries.EVENT_COLUMNS, ["issue_id", "at", "event_id"], source=queries.EVENTS,
        left_out=left_out)
    known = set(issues["id"]) | set(open_now["id"])
    events = events[events["issue_id"].isin(known)].reset_index(drop=True)
    raised = pd.concat([issues["raised_at"], open_now["raised_at"]])
    earliest = raised.min().to_pydatetime() if len(raised) else since
    return Rows(issues, open_now, events, shifts(conn, min(earliest, since), as_of), left_out)


def shifts(conn: Connection, start: datetime, end: datetime) -> pd.DataFrame:
    """The plan's shifts (every line) that overlap [start, end]."""
    stmt = (select(ProductionPlan.line, ProductionPlan.shift_start, ProductionPlan.shift_end,
                   ProductionPlan.planned_qty, ProductionPlan.actual_qty)
            .where(ProductionPlan.shift_start <= end, ProductionPlan.shift_end > start))
    return queries._frame(conn, stmt, queries.PLAN_COLUMNS, ["shift_start", "line"],
                          source=queries.PLAN)


def shift_at(conn: Connection, as_of: datetime,
             lines: Sequence[str] = ()) -> tuple[datetime, datetime] | None:
    """The plan's shift under way at as_of (of `lines` when given), else the last one that
    started before it: its start and end. None when the plan has none."""
    stmt = (select(ProductionPlan.shift_start, ProductionPlan.shift_end)
            .where(ProductionPlan.shift_start <= as_of)
            .order_by(ProductionPlan.shift_start.desc(), ProductionPlan.shift_end.desc()).limit(1))
    named = [line for line in lines if line != NO_VALUE]
    if named:
        stmt = stmt.where(ProductionPlan.line.in_(named))
    row = conn.execute(stmt).first()
    return (row.shift_start, row.shift_end) if row else None


def reference(conn: Connection) -> dict:
    """The plant's names and codes the explorer's filters and labels use: departments and
    issue types with their names in both languages, locations with their line, the lines,
    the severities."""
    departments = conn.execute(select(Department.code, Department.name_zh, Department.name_en)
                               .order_by(Department.code)).all()
    types = conn.execute(select(SlaRule.issue_type, SlaRule.name_zh, SlaRule.name_en,
                                SlaRule.ack_minutes, SlaRule.resolve_minutes)
                         .order_by(SlaRule.issue_type)).all()
    places = conn.execute(select(Location.code, Location.name, Location.line)
                          .order_by(Location.code)).all()
    lines = conn.execute(select(Location.line).where(Location.line.is_not(None)).distinct()).scalars()
    return {
        "departments": {r.code: {"name_zh": r.name_zh, "name_en": r.name_en} for r in departments},
        "issue_types": {r.issue_type: {"name_zh": r.name_zh, "name_en": r.name_en,
                                       "ack_minutes": r.ack_minutes,
                                       "resolve_minutes": r.resolve_minutes} for r in types},
        "locations": {r.code: {"name": r.name, "line": r.line} for r in places},
        "lines": sorted(lines),
        "severities": list(SEVERITIES),
    }


def causes(conn: Connection, since: datetime, until: datetime, limit: int = 200) -> list[str]:
    """The causes recorded on the issues raised in [since, until), most frequent first, ties
    in code point order (as on every database, whatever its collation)."""
    count = func.count()
    stmt = (select(Issue.cause, count.label("n"))
            .where(Issue.raised_at >= since, Issue.raised_at < until, Issue.cause.is_not(None))
            .group_by(Issue.cause).order_by(count.desc(), Issue.cause).limit(limit))
    found = conn.execute(stmt).all()
    return [row.cause for row in sorted(found, key=lambda row: (-row.n, row.cause))]
