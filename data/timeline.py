"""One issue's history for its page (/issue/<id>): read from the database, and summed up by
the KPI rules of data/kpis.py, so the page says of one issue exactly what the wall and the
reports count for it. Who held it hop by hop comes from data/analysis/holding.py, which the
page hands in (the core imports no sub-package)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy.exc import DBAPIError

from data import db, kpis, queries

# The production plan read around an issue, for its working minutes: shifts that started up
# to a day before it was raised reach into its first hours.
PLAN_LEAD = timedelta(days=1)


class DatabaseUnavailable(RuntimeError):
    """The database did not answer (its driver's words are the message)."""


@dataclass(frozen=True)
class IssueRead:
    """What the page needs from the database: the issue and its events (None when there is no
    such issue), the shifts over its life, and the rows left out as unusable."""
    timeline: queries.IssueTimeline | None
    shifts: pd.DataFrame | None
    left_out: list[queries.LeftOut] = field(default_factory=list)


def read_issue(database_url: str, issue_id: str, as_of: datetime) -> IssueRead:
    """The issue `issue_id` with its events, and the shifts from before it was raised to
    as_of (or to its last event, if later). DatabaseUnavailable when the database fails."""
    left_out: list[queries.LeftOut] = []
    try:
        with db.get_engine(database_url).connect() as conn:
            timeline = queries.issue_timeline(conn, issue_id, left_out=left_out)
            if timeline is None:
                return IssueRead(None, None, left_out)
            raised = timeline.row["raised_at"].to_pydatetime()
            last = timeline.events["at"].max() if len(timeline.events) else pd.NaT
            until = max(as_of, last.to_pydatetime()) if not pd.isna(last) else as_of
            shifts = queries.production_plan(conn, raised - PLAN_LEAD, until + timedelta(seconds=1))
    except DBAPIError as exc:
        raise DatabaseUnavailable(str(exc.orig)) from exc
    return IssueRead(timeline, shifts, left_out)


def status_at(issue: dict, as_of: datetime) -> str:
    """The issue's status at as_of, by the KPI rules' reading of its stamps: anything
    stamped after as_of has not happened yet. `not_raised` before it was raised."""
    at = kpis.instant(as_of)

    def by(column: str) -> bool:
        return not pd.isna(issue[column]) and issue[column] <= at

    if issue["raised_at"] > at:
        return "not_raised"
    if issue["status"] == "cancelled" and (by("closed_at") or pd.isna(issue["closed_at"])):
        return "cancelled"
    if by("closed_at"):
        return "closed"
    if by("resolved_at"):
        return "resolved"
    return "acknowledged" if by("acknowledged_at") else "open"


def issue_summary(timeline: queries.IssueTimeline, hops: pd.DataFrame, as_of: datetime) -> dict:
    """The issue's figures at as_of, each by the rule data/kpis.py counts it with: status,
    response and resolution minutes and their SLA outcomes, overdue, minutes waited, hand-offs,
    returns (hops that went back to a department it had left), ping-pong, and who holds it."""
    issue = timeline.issue
    events = timeline.events
    row = timeline.row
    at = kpis.instant(as_of)

    def number(value) -> float | None:
        return None if pd.isna(value) else float(value)

    held = hops[hops["let_go_at"].isna()]
    return {
        "status": status_at(row, as_of),
        "overdue": bool(kpis.overdue_mask(issue, as_of).iloc[0]),
        "response_min": number(kpis.response_minutes(issue, as_of).iloc[0]),
        "response_outcome": kpis.response_sla_outcomes(issue, as_of).iloc[0],
        "resolution_min": number(kpis.resolution_minutes(issue, as_of).iloc[0]),
        "resolution_outcome": kpis.resolution_sla_outcomes(issue, as_of).iloc[0],
        "waited_min": max(0.0, (at - row["raised_at"]) / kpis.MINUTE),
        "ack_minutes": number(row["ack_minutes"]),
        "resolve_minutes": number(row["resolve_minutes"]),
        "handoffs": int(kpis.handoff_counts(issue, events, as_of).iloc[0]),
        "returns": int(hops["returned"].sum()),
        "ping_pong": row["id"] in kpis.ping_pong_issue_ids(events, as_of),
        "holder": held["department_code"].iloc[-1] if len(held) else None,
        "later_events": int((events["at"] > at).sum()),
    }
