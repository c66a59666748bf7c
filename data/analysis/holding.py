"""Holding intervals: one row each time a department takes an issue (a hop), from its events.

Every chart of the bottleneck explorer that speaks of who held an issue, for how long and to
whom it went next reads these rows. The rules (docs/analysis.md):

- The holder after an event is the department the event names; an event that names none
  leaves the holder as it was. Before the first event that names a department, the issue is
  held by that first named department (an event log often names the holder only from its
  first update); an issue whose events name none is held by its owner.
- A hop starts with the issue's first event, whenever the holder changes, and when a
  finished issue is reopened (the department takes it again, even if it is the same one).
- A hop is let go at the first event that leaves the issue finished (resolved; closed,
  which for a cancelled issue closed while still worked on is its cancellation), else at the
  next hop's first event: `escalated` if that event is an escalation, `reassigned` otherwise.
  An escalation that keeps the department does not let go.
- A hop that starts while the issue is finished (another department closes it after it was
  resolved) is let go at once, by the state the issue is in.
- A hop is a return when its department held the issue in an earlier hop and the hop before
  it was another department's: the per-hop ping-pong. An issue has a return exactly when
  kpis.ping_pong_issue_ids counts it.

Events after as_of are ignored. Vectorised over all issues at once (numpy over the events
sorted by issue, time and event id): it runs on millions of events.
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from data import kpis

REASSIGNED, ESCALATED, RESOLVED, CLOSED, CANCELLED = (
    "reassigned", "escalated", "resolved", "closed", "cancelled")
LET_GO_KINDS = (REASSIGNED, ESCALATED, RESOLVED, CLOSED, CANCELLED)
HANDED_ON = (REASSIGNED, ESCALATED)
INTERVAL_COLUMNS = ("issue_id", "hop", "department_code", "taken_at", "let_go_at", "let_go_by",
                    "returned", "held_min", "held_work_min")

NS_PER_MINUTE = 60_000_000_000
NAT = np.iinfo(np.int64).min
# The state an event leaves an issue in; the names are how a hop let go in that state.
_ACTIVE, _RESOLVED, _CLOSED, _CANCELLED = 0, 1, 2, 3
_STATE_NAMES = np.array([None, RESOLVED, CLOSED, CANCELLED], dtype=object)


def nanoseconds(values) -> np.ndarray:
    """Instants (any aware or UTC-naive form pandas reads) as int64 ns since the epoch, NaT
    as NAT."""
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns").asi8


def utc(ns: np.ndarray) -> pd.Series:
    """int64 ns since the epoch (NAT: none) as datetime64[ns, UTC]."""
    return pd.Series(np.asarray(ns, dtype="int64").view("datetime64[ns]")).dt.tz_localize("UTC")


def _in_order(group: np.ndarray, at: np.ndarray, event_ids: np.ndarray) -> bool:
    """Whether events are sorted by issue, time and event id already."""
    step = np.diff(group)
    later = np.diff(at)
    return bool(np.all((step > 0) | ((step == 0) & ((later > 0) | (
        (later == 0) & (np.diff(event_ids) > 0))))))


def _merged_shifts(shifts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The shifts as disjoint sorted [start, end) intervals: overlapping or touching shifts
    (two lines on the same hours, a shift that starts as the last one ends) become one."""
    start, end = nanoseconds(shifts["shift_start"]), nanoseconds(shifts["shift_end"])
    real = (start != NAT) & (end != NAT) & (end > start)
    start, end = start[real], end[real]
    order = np.argsort(start, kind="stable")
    start, end = start[order], end[order]
    if not len(start):
        return start, end
    reach = np.maximum.accumulate(end)
    opens = np.ones(len(start), dtype=bool)
    opens[1:] = start[1:] > reach[:-1]
    block = np.cumsum(opens) - 1
    block_end = np.full(int(block[-1]) + 1, NAT, dtype=np.int64)
    np.maximum.at(block_end, block, end)
    return start[opens], block_end


def _worked_until(t: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                  before: np.ndarray) -> np.ndarray:
    """Nanoseconds of the merged intervals before each instant t."""
    k = np.searchsorted(starts, t, side="right") - 1
    inside = k >= 0
    kk = np.where(inside, k, 0)
    partial = np.clip(t - starts[kk], 0, ends[kk] - starts[kk])
    return np.where(inside, before[kk] + partial, 0)


def _working_ns(starts_ns: np.ndarray, ends_ns: np.ndarray,
                merged: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    shift_starts, shift_ends = merged
    if not len(shift_starts):
        return np.zeros(len(starts_ns), dtype=np.int64)
    before = np.concatenate(([0], np.cumsum(shift_ends - shift_starts)[:-1]))
    return (_worked_until(ends_ns, shift_starts, shift_ends, before)
            - _worked_until(starts_ns, shift_starts, shift_ends, before))


def working_minutes(starts, ends, shifts: pd.DataFrame) -> np.ndarray:
    """Minutes of each [start, end) inside the shifts (shift_start, shift_end), overlapping
    shifts counted once; NaN where start or end is missing. Time outside every shift (a
    weekend, a day without a plan) counts nothing."""
    starts_ns, ends_ns = nanoseconds(starts), nanoseconds(ends)
    missing = (starts_ns == NAT) | (ends_ns == NAT)
    worked = _working_ns(np.where(missing, 0, starts_ns), np.where(missing, 0, ends_ns),
                         _merged_shifts(shifts))
    return np.where(missing, np.nan, worked / NS_PER_MINUTE)


def _last_marked(marked: np.ndarray, group_first: np.ndarray) -> np.ndarray:
    """For each row, the last row at or before it in its group that is marked, else -1."""
    last = np.maximum.accumulate(np.where(marked, np.arange(len(marked)), -1))
    return np.where(last >= group_first, last, -1)


def _first_of_runs(keys: np.ndarray) -> np.ndarray:
    """Where a run of equal values begins in a sorted array."""
    begins = np.ones(len(keys), dtype=bool)
    begins[1:] = keys[1:] != keys[:-1]
    return begins


def _kind_masks(kinds: np.ndarray, *names: str) -> list[np.ndarray]:
    codes, uniques = pd.factorize(kinds, use_na_sentinel=True)
    where = {name: i for i, name in enumerate(uniques)}
    return [codes == where.get(name, -2) for name in names]


def holding_intervals(issues: pd.DataFrame, events: pd.DataFrame, as_of: datetime,
                      shifts: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per issue of `issues` and hop (columns INTERVAL_COLUMNS): an issue's hops
    together and in order, the issues in the order their events come, then those without
    events. `held_work_min` counts the minutes inside the shifts of the issue's
    line (from `shifts`, the production plan's rows); an issue without a line, or whose line
    the plan does not have, counts the shifts of any line; NaN without `shifts`. An issue
    raised by as_of without any event by then is held by its owner from raised_at until it
    was resolved or closed."""
    at = kpis.instant(as_of)
    as_of_ns = at.as_unit("ns").value
    ids = pd.Index(issues["id"].to_numpy(dtype=object))
    if not ids.is_unique:
        raise ValueError(f"issues: id {ids[ids.duplicated()][0]!r} appears more than once")
    cancelled_issue = (issues["status"] == "cancelled").to_numpy(dtype=bool)

    event_at = nanoseconds(events["at"])
    known = (event_at != NAT) & (event_at <= as_of_ns)
    event_ids = (events["event_id"].to_numpy(dtype="int64") if "event_id" in events
                 else np.arange(len(events), dtype="int64"))
    # Issues numbered as their events come, so that events already grouped by issue (as the
    # loaders give them) need no sorting.
    group, issue_ids = pd.factorize(events["issue_id"].to_numpy(dtype=object)[known])
    position = ids.get_indexer(np.asarray(issue_ids, dtype=object))
    ours = position[group] >= 0 if len(group) else np.zeros(0, dtype=bool)
    group, event_at, event_ids = group[ours], event_at[known][ours], event_ids[known][ours]
    kinds = events["kind"].to_numpy(dtype=object)[known][ours]
    department_codes, departments = pd.factorize(np.concatenate((
        events["department_code"].to_numpy(dtype=object)[known][ours],
        issues["owner_department_code"].to_numpy(dtype=object))), use_na_sentinel=True)
    event_department = department_codes[:len(group)]
    owner = department_codes[len(group):]
    if not _in_order(group, event_at, event_ids):
        order = np.lexsort((event_ids, event_at, group))
        group, event_at, kinds, event_department = (
            group[order], event_at[order], kinds[order], event_department[order])
    issue = position[group]
    hops = _hops_from_events(issue, event_at, kinds, event_department, owner, cancelled_issue)
    silent = _hops_without_events(issues, issue, owner, cancelled_issue, as_of_ns)
    hop_issue, hop, department, taken, let_go, let_go_state, handed_by = (
        np.concatenate(parts) for parts in zip(hops, silent))

    let_go_by = _STATE_NAMES[let_go_state]
    let_go_by[handed_by == 1] = REASSIGNED
    let_go_by[handed_by == 2] = ESCALATED
    held_until = np.where(let_go == NAT, as_of_ns, let_go)
    # Code -1 (no department known) reads the None at the end.
    names = np.append(np.asarray(departments, dtype=object), None)
    lines = (issues["line"].to_numpy(dtype=object) if "line" in issues
             else np.full(len(issues), None, dtype=object))
    return pd.DataFrame({
        "issue_id": pd.Series(ids.to_numpy(dtype=object)[hop_issue], dtype=object),
        "hop": hop.astype("int64"),
        "department_code": pd.Series(names[department], dtype=object),
        "taken_at": utc(taken),
        "let_go_at": utc(let_go),
        "let_go_by": pd.Series(let_go_by, dtype=object),
        "returned": _returns(hop_issue, hop, department),
        "held_min": (held_until - taken) / NS_PER_MINUTE,
        "held_work_min": _held_work_minutes(taken, held_until, lines[hop_issue], shifts),
    })


def _hops_from_events(issue, event_at, kinds, event_department, owner, cancelled_issue):
    """The hops of the issues that have events, from their events sorted by issue and time."""
    n = len(issue)
    rows = np.arange(n)
    first = _first_of_runs(issue)
    group_first = np.maximum.accumulate(np.where(first, rows, 0))
    raised, reopened, resolved, closed, escalated = _kind_masks(
        kinds, "raised", "reopened", "resolved", "closed", "escalated")

    named = event_department >= 0
    last_named = _last_marked(named, group_first)
    first_named = np.full(n, -1)
    named_rows = np.flatnonzero(named)
    opening = _first_of_runs(group_first[named_rows])
    first_named[group_first[named_rows][opening]] = named_rows[opening]
    first_named = first_named[group_first]
    holder = np.where(last_named >= 0, event_department[last_named],
                      np.where(first_named >= 0, event_department[first_named], owner[issue]))

    setter = raised | reopened | resolved | closed
    finishing = resolved | closed
    last_setter = _last_marked(setter, group_first)
    finished_after = (last_setter >= 0) & finishing[last_setter]
    finished_before = np.zeros(n, dtype=bool)
    finished_before[1:] = finished_after[:-1]
    finished_before[first] = False
    label = np.full(n, _ACTIVE, dtype=np.int8)
    label[resolved] = _RESOLVED
    label[closed] = _CLOSED
    # A cancelled issue is closed once, by its cancellation (data/lifecycle.py).
    label[closed & cancelled_issue[issue]] = _CANCELLED
    state_after = np.where(last_setter >= 0, label[last_setter], _ACTIVE)

    changed = np.zeros(n, dtype=bool)
    changed[1:] = holder[1:] != holder[:-1]
    hop_start = first | changed | (reopened & finished_before)
    starts = np.flatnonzero(hop_start)
    hop_of_row = np.cumsum(hop_start) - 1
    count = len(starts)
    hop_issue = issue[starts]
    issue_begins = first[starts]
    hop = np.arange(count) - np.maximum.accumulate(np.where(issue_begins, np.arange(count), 0)) + 1

    let_go = np.full(count, NAT, dtype=np.int64)
    let_go_state = np.full(count, _ACTIVE, dtype=np.int8)
    finished_rows = np.flatnonzero(state_after != _ACTIVE)
    earliest = finished_rows[_first_of_runs(hop_of_row[finished_rows])]
    let_go[hop_of_row[earliest]] = event_at[earliest]
    let_go_state[hop_of_row[earliest]] = state_after[earliest]

    has_next = np.zeros(count, dtype=bool)
    has_next[:-1] = ~issue_begins[1:]
    handed = np.flatnonzero(has_next & (let_go_state == _ACTIVE))
    next_start = starts[handed + 1]
    let_go[handed] = event_at[next_start]
    handed_by = np.zeros(count, dtype=np.int8)
    handed_by[handed] = np.where(escalated[next_start], 2, 1)
    return (hop_issue, hop, holder[starts], event_at[starts], let_go, let_go_state, handed_by)


def _hops_without_events(issues, event_issue, owner, cancelled_issue, as_of_ns):
    """Hop 1, held by the owner, of each issue raised by as_of with no event by then."""
    raised = nanoseconds(issues["raised_at"])
    silent = np.ones(len(issues), dtype=bool)
    silent[event_issue] = False
    silent &= (raised != NAT) & (raised <= as_of_ns)
    rows = np.flatnonzero(silent)
    resolved = nanoseconds(issues["resolved_at"])[rows]
    closed = nanoseconds(issues["closed_at"])[rows]
    resolved = np.where((resolved != NAT) & (resolved <= as_of_ns), resolved, NAT)
    closed = np.where((closed != NAT) & (closed <= as_of_ns), closed, NAT)
    by_resolution = (resolved != NAT) & ((closed == NAT) | (resolved <= closed))
    by_closing = ~by_resolution & (closed != NAT)
    state = np.full(len(rows), _ACTIVE, dtype=np.int8)
    state[by_resolution] = _RESOLVED
    state[by_closing] = np.where(cancelled_issue[rows][by_closing], _CANCELLED, _CLOSED)
    let_go = np.where(by_resolution, resolved, np.where(by_closing, closed, NAT))
    return (rows, np.ones(len(rows), dtype=np.int64), owner[rows], raised[rows], let_go, state,
            np.zeros(len(rows), dtype=np.int8))


def _returns(hop_issue: np.ndarray, hop: np.ndarray, department: np.ndarray) -> np.ndarray:
    """Hops whose department held the issue in an earlier hop, taken from another department."""
    width = int(department.max()) + 2 if len(department) else 1
    held_before = pd.Series(hop_issue.astype(np.int64) * width + department + 1).duplicated()
    from_another = np.zeros(len(hop), dtype=bool)
    from_another[1:] = (hop[1:] > 1) & (department[1:] != department[:-1])
    return held_before.to_numpy() & from_another


def _held_work_minutes(taken: np.ndarray, until: np.ndarray, lines: np.ndarray,
                       shifts: pd.DataFrame | None) -> np.ndarray:
    """Minutes of each hop inside its line's shifts, or any line's (see holding_intervals)."""
    worked = np.full(len(taken), np.nan)
    if shifts is None:
        return worked
    plan_lines = shifts["line"].to_numpy(dtype=object)
    hop_lines = pd.Series(lines, dtype=object)
    own = np.zeros(len(taken), dtype=bool)
    for line in pd.unique(plan_lines[pd.notna(plan_lines)]):
        mine = (hop_lines == line).to_numpy()
        worked[mine] = _working_ns(taken[mine], until[mine],
                                   _merged_shifts(shifts[plan_lines == line])) / NS_PER_MINUTE
        own |= mine
    worked[~own] = _working_ns(taken[~own], until[~own], _merged_shifts(shifts)) / NS_PER_MINUTE
    return worked
