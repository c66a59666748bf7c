"""An issue and its events from the rows of one case of an event log (one row per update).

Pure: no file, no database. The rows of a case arrive with their meaning already read by the
mapping (data/ingest/mapping.py: which state means what, which department holds the case);
`derive` puts them in the log's order, turns changes into contract events and derives the
issue's columns with data.lifecycle.state_from_events. What real logs hold that the life
cycle does not allow is resolved by the rules below and counted in `Summary`, never a
reason to refuse the log (docs/import.md, "Event logs"):

- order: the log's order column, then the time, then the file's order; an event is never
  before the one before it (a later update stamped earlier is lifted to it) and two events of
  a case never share an instant (the later gets the next microsecond), so the order of the
  log is the order of the events, and two hand-offs in one minute stay two hand-offs;
- an update stamped before the case was opened happens when the case was opened;
- acknowledged: the first update whose state means anything but `open` (or `ignore`);
- a change of department between consecutive updates that name one is a hand-off
  (`reassigned`), while the case is being worked on; after its resolution it changes nothing;
- a case whose rows name no department is held by the mapping's `no_department`;
- closed without ever being resolved: the issue ends closed, finished at closed_at, with no
  resolved_at (state_from_events with `recorded=True`);
- a state back to work after a resolution or closing is a reopening.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import NamedTuple

from data import lifecycle
from data.lifecycle import ACTIVE, IssueState

_TICK = timedelta(microseconds=1)
_FINISHED = ("resolved", "closed")


class LogRow(NamedTuple):
    """One update of a case, as the mapping read it. `at` is an aware UTC instant; `meaning`
    one of mapping.STATE_MEANINGS; `department` None when the row names none."""
    number: int
    order: float | None
    at: datetime
    meaning: str
    department: str | None
    actor: str | None = None
    cause: str | None = None
    opened_at: datetime | None = None


# What the summary counts, in the words the import prints (docs/import.md lists them).
SUMMARY_WORDS = {
    "cases": "cases (issues)",
    "events": "events",
    "handoffs": "hand-offs (a change of department)",
    "reopened": "reopenings",
    "stamped_before_opened": "updates stamped before their case was opened (taken as at the opening)",
    "acknowledged_before_opened": "acknowledgements stamped before their case was opened (taken as at the opening)",
    "stamped_before_previous": "updates stamped before the update the order column puts before them (taken as at that update)",
    "same_instant": "events at the same instant as the one before in their case (kept in the log's order, a microsecond apart)",
    "handoffs_same_instant": "hand-offs of one case in the same minute as its previous hand-off (each kept)",
    "order_ties": "updates with the same order value as another of their case (then ordered by time, then file order)",
    "without_department": "cases that name no department (held by the mapping's no_department)",
    "closed_without_resolution": "cases closed without a resolution (finished at closed_at, no resolution time)",
    "department_after_finish": "changes of department after a resolution or closing (no hand-off)",
    "ignored_states": "updates whose state means nothing (mapped to ignore)",
    "after_closing": "updates after closing that change nothing",
}


class Summary(Counter):
    """What the log held and how each oddity was treated, as counts (SUMMARY_WORDS)."""


def log_order(row: LogRow) -> tuple:
    """Where an update stands in its case: the order column, then the time, then the file."""
    return (row.order if row.order is not None else 0, row.at, row.number)


def derive(case: str, rows: list[LogRow], no_department: str | None,
           summary: Summary) -> tuple[list[dict], IssueState]:
    """The case's events (contract rows of issue_events without issue_id) and its state.

    Raises ValueError when the case names no department and no `no_department` is given.
    """
    ordered = sorted(rows, key=log_order)
    if len({r.order for r in ordered}) < len(ordered) and ordered[0].order is not None:
        summary["order_ties"] += len(ordered) - len({r.order for r in ordered})
    first_department = next((r.department for r in ordered if r.department), None)
    if first_department is None:
        if no_department is None:
            raise ValueError("no update of the case names a department, and the mapping has "
                             "no event_log.no_department to hold such cases")
        first_department = no_department
        summary["without_department"] += 1
    opened = next((r.opened_at for r in ordered if r.opened_at is not None), None) or ordered[0].at
    events: list[dict] = []
    state = _Walk(case, events, summary)
    state.emit("raised", opened, first_department, ordered[0].actor, None)
    previous = opened
    for row in ordered:
        at = row.at
        if at < opened:
            summary["stamped_before_opened"] += 1
            if row.meaning not in ("open", "ignore") and not state.acknowledged:
                summary["acknowledged_before_opened"] += 1
            at = opened
        if at < previous:
            summary["stamped_before_previous"] += 1
            at = previous
        previous = at
        state.update(row, at)
    summary["cases"] += 1
    summary["events"] += len(events)
    return events, lifecycle.state_from_events(events, recorded=True)


# The life cycle's answers met so far, (status, event, acknowledged) -> status after: a log
# asks the same few questions for every case. A refusal is not kept, so it is raised each time.
_TRANSITIONS: dict[tuple, str] = {}


def _next_status(case: str, status: str | None, kind: str, acknowledged: bool) -> str:
    after = _TRANSITIONS.get((status, kind, acknowledged))
    if after is None:
        after = _TRANSITIONS[status, kind, acknowledged] = lifecycle.next_status(
            case, status, kind, acknowledged=acknowledged)
    return after


class _Walk:
    """The case's status as its updates are read, emitting the events the changes make."""

    def __init__(self, case: str, events: list[dict], summary: Summary):
        self.case, self.events, self.summary = case, events, summary
        self.status: str | None = None
        self.acknowledged = False
        self.holder: str | None = None
        self.last_at = datetime.min
        self.last_handoff_minute = None

    def emit(self, kind: str, at: datetime, department: str, actor: str | None,
             note: str | None) -> None:
        if self.events:
            if at <= self.last_at:
                if at == self.last_at:
                    self.summary["same_instant"] += 1
                at = self.last_at + _TICK
        else:
            self.last_at = at
        self.status = _next_status(self.case, self.status, kind, self.acknowledged) \
            if not (kind == "closed" and self.status in ACTIVE) else "closed"
        self.acknowledged = self.acknowledged or kind == "acknowledged"
        self.holder = department
        self.last_at = at
        self.events.append({"at": at, "kind": kind, "department_code": department,
                            "actor": actor, "note": note})

    def update(self, row: LogRow, at: datetime) -> None:
        actor = row.actor
        if row.department and row.department != self.holder:
            if self.status in ACTIVE:
                minute = at.replace(second=0, microsecond=0)
                if minute == self.last_handoff_minute:
                    self.summary["handoffs_same_instant"] += 1
                self.last_handoff_minute = minute
                self.emit("reassigned", at, row.department, actor, None)
                self.summary["handoffs"] += 1
            else:
                self.summary["department_after_finish"] += 1
        meaning = row.meaning
        if meaning == "ignore":
            self.summary["ignored_states"] += 1
            return
        if meaning == "open":
            if self.status in _FINISHED:
                self._reopen(at, actor)
            return
        if self.status in _FINISHED and meaning in ("acknowledged", "escalated", "commented", "reopened"):
            if meaning == "commented":
                self.emit("commented", at, self.holder, actor, None)
            else:
                self._reopen(at, actor)
                if meaning == "escalated":
                    self.emit("escalated", at, self.holder, actor, None)
            return
        if self.status == "closed":
            if meaning != "closed":
                self.summary["after_closing"] += 1
            return
        if not self.acknowledged and self.status == "open" and meaning != "reopened":
            self.emit("acknowledged", at, self.holder, actor, None)
        if meaning in ("escalated", "commented"):
            self.emit(meaning, at, self.holder, actor, None)
        elif meaning == "resolved" and self.status in ACTIVE:
            self.emit("resolved", at, self.holder, actor, row.cause)
        elif meaning == "closed":
            if self.status in ACTIVE:
                self.summary["closed_without_resolution"] += 1
            self.emit("closed", at, self.holder, actor, None)

    def _reopen(self, at: datetime, actor: str | None) -> None:
        self.emit("reopened", at, self.holder, actor, None)
        self.summary["reopened"] += 1
