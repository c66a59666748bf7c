"""When each step of an issue's ladder falls due, and which are owed at `as_of`.

Pure: the issue's clock, its ladder, the silences and an explicit `as_of` in, the owed steps
out, so a timeline can be computed by hand and checked (tests/test_notify_ladder.py).

A step's nominal time:
- `raised`: raised_at + after_minutes;
- `ack_limit`: raised_at + ack_minutes + after_minutes;
- `resolve_share`: raised_at + share x resolve_minutes + after_minutes;
- `after_level`: the step before's nominal time + after_minutes;
- a repeat k (1..repeats): the step's time + k x repeat_minutes, its key "L3#2" for the second
  sending of level 3.
A silence that matches the issue and covers that time moves it to the silence's end (and again,
while another covers it). A step is owed at `as_of` when its time has come and its condition
still holds at `as_of`: the issue is still open, and, for a step at `ack_limit`, still not
acknowledged. An answer that came late ends the step: nobody is told of a limit that has
already been answered.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Sequence

from data.notify.policy import Step


@dataclass(frozen=True)
class IssueClock:
    """What the ladder needs of an issue, as known at `as_of`."""
    id: str
    issue_type: str
    severity: str
    raised_at: datetime
    ack_minutes: float
    resolve_minutes: float
    holder: str
    acknowledged_at: datetime | None = None
    # Resolved, closed or cancelled: the issue no longer climbs.
    finished_at: datetime | None = None
    line: str | None = None
    location_code: str | None = None


@dataclass(frozen=True)
class Silence:
    starts_at: datetime
    ends_at: datetime
    department_code: str | None = None
    line: str | None = None
    location_code: str | None = None
    issue_type: str | None = None

    def matches(self, issue: IssueClock) -> bool:
        return all(want is None or want == have for want, have in (
            (self.department_code, issue.holder), (self.line, issue.line),
            (self.location_code, issue.location_code), (self.issue_type, issue.issue_type)))


@dataclass(frozen=True)
class Owed:
    key: str
    level: int
    step: Step
    due_at: datetime


def nominal_times(issue: IssueClock, steps: Sequence[Step]) -> list[tuple[str, Step, datetime]]:
    """Every sending of every step at its nominal time, in the ladder's order."""
    times, before = [], None
    for step in steps:
        if step.when == "raised":
            base = issue.raised_at
        elif step.when == "ack_limit":
            base = issue.raised_at + timedelta(minutes=issue.ack_minutes)
        elif step.when == "resolve_share":
            base = issue.raised_at + timedelta(minutes=step.share * issue.resolve_minutes)
        else:
            base = before
        at = base + timedelta(minutes=step.after_minutes)
        before = at
        times.append((f"L{step.level}", step, at))
        for k in range(1, step.repeats + 1):
            times.append((f"L{step.level}#{k + 1}", step, at + timedelta(minutes=k * step.repeat_minutes)))
    return times


def after_silences(at: datetime, issue: IssueClock, silences: Iterable[Silence]) -> datetime:
    """`at`, moved to the end of every matching silence that covers it."""
    matching = sorted((s for s in silences if s.matches(issue)), key=lambda s: s.starts_at)
    moved = True
    while moved:
        moved = False
        for silence in matching:
            if silence.starts_at <= at < silence.ends_at:
                at, moved = silence.ends_at, True
    return at


def owed_steps(issue: IssueClock, steps: Sequence[Step], silences: Iterable[Silence],
               as_of: datetime) -> list[Owed]:
    """The sendings owed at `as_of` (taken or not: the caller knows which it took), by time."""
    if issue.finished_at is not None and issue.finished_at <= as_of:
        return []
    acknowledged = issue.acknowledged_at is not None and issue.acknowledged_at <= as_of
    silences = list(silences)
    owed = []
    for key, step, at in nominal_times(issue, steps):
        if step.when == "ack_limit" and acknowledged:
            continue
        due = after_silences(at, issue, silences)
        if due <= as_of:
            owed.append(Owed(key, step.level, step, due))
    return sorted(owed, key=lambda o: (o.due_at, o.level, o.key))


def next_due(issue: IssueClock, steps: Sequence[Step], silences: Iterable[Silence],
             taken: set[str], as_of: datetime) -> datetime | None:
    """When the next step not yet taken falls due (None: none will while things stand)."""
    if issue.finished_at is not None and issue.finished_at <= as_of:
        return None
    acknowledged = issue.acknowledged_at is not None and issue.acknowledged_at <= as_of
    silences = list(silences)
    times = [after_silences(at, issue, silences) for key, step, at in nominal_times(issue, steps)
             if key not in taken and not (step.when == "ack_limit" and acknowledged)]
    return min(times, default=None)


def returned_to_earlier_holder(departments: Sequence[str]) -> bool:
    """Whether the last event of a holding sequence (the department holding the issue after
    each event, in time order) moved the issue back to a department it had left:
    PRD -> QA -> PRD, the ping-pong the wall marks."""
    return (len(departments) >= 2 and departments[-1] != departments[-2]
            and departments[-1] in departments[:-1])
