"""The issue life cycle: which events an issue may take in which status, and the state its
events leave it in.

One rulebook for everyone who writes or reads an issue's history: data/store.py checks each
live change against it, the demo plant derives its issues' columns from their events with
it, and an import of a ticket system's event log can do the same. Pure: no database, no
clock; instants are whatever the caller gives.

Statuses and event kinds are the contract's (issues.status, issue_events.kind):

| event          | allowed while the issue is       | status after                     |
|----------------|----------------------------------|----------------------------------|
| `raised`       | not raised yet (its first event) | open                             |
| `acknowledged` | open                             | acknowledged                     |
| `reassigned`   | open, acknowledged               | unchanged; another holds it      |
| `escalated`    | open, acknowledged               | unchanged                        |
| `commented`    | any status                       | unchanged                        |
| `resolved`     | open, acknowledged               | resolved                         |
| `reopened`     | resolved, closed                 | acknowledged (open if never was) |
| `closed`       | resolved                         | closed                           |

The contract has no event that cancels an issue: a cancelled issue's `closed` event is its
cancellation, allowed while the issue is open or acknowledged, and leaves it cancelled.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping

from data.models import EVENT_KINDS, ISSUE_STATUSES


class LifecycleError(ValueError):
    """A change that the issue's current state does not allow."""


# Being worked on: the issue may be handed on, escalated, resolved or cancelled.
ACTIVE = ("open", "acknowledged")

# The statuses in which each event may happen; `raised` only starts a life.
ALLOWED_IN: dict[str, tuple[str, ...]] = {
    "raised": (),
    "acknowledged": ("open",),
    "reassigned": ACTIVE,
    "escalated": ACTIVE,
    "commented": ISSUE_STATUSES,
    "resolved": ACTIVE,
    "reopened": ("resolved", "closed"),
    "closed": ("resolved",),
}
CANCELLABLE_IN = ACTIVE

# The event kinds are past participles already, all but one.
_DONE = {"commented": "commented on"}


def allowed(status: str | None, kind: str, *, cancelling: bool = False) -> bool:
    """Whether `kind` may happen to an issue in `status` (None: not raised yet)."""
    if kind not in EVENT_KINDS:
        return False
    if status is None:
        return kind == "raised"
    return status in (CANCELLABLE_IN if cancelling and kind == "closed" else ALLOWED_IN[kind])


def check(issue_id: str, status: str | None, kind: str, *, cancelling: bool = False) -> None:
    """Raise LifecycleError, saying why, unless `kind` may happen to the issue now."""
    if allowed(status, kind, cancelling=cancelling):
        return
    if kind not in EVENT_KINDS:
        raise LifecycleError(f"issue {issue_id}: unknown event kind {kind!r}")
    done = _DONE.get(kind, kind)
    if status is None:
        raise LifecycleError(f"issue {issue_id} has not been raised; it cannot be {done} first")
    if kind == "raised":
        raise LifecycleError(f"issue {issue_id} is {status}; it was raised already")
    if cancelling and kind == "closed":
        statuses, done = CANCELLABLE_IN, "cancelled"
    else:
        statuses = ALLOWED_IN[kind]
    article = "an" if statuses[0][0] in "aeiou" else "a"
    raise LifecycleError(f"issue {issue_id} is {status}; only {article} "
                         f"{' or '.join(statuses)} issue can be {done}")


def next_status(issue_id: str, status: str | None, kind: str, *, acknowledged: bool = False,
                cancelling: bool = False) -> str:
    """The status after `kind` happens to an issue in `status`; LifecycleError if it may not.

    `acknowledged`: whether the issue has been acknowledged (a reopened issue goes back to
    being worked on by whoever acknowledged it). `cancelling`: a `closed` event that cancels.
    """
    check(issue_id, status, kind, cancelling=cancelling)
    if kind == "raised":
        return "open"
    if kind == "reopened":
        return "acknowledged" if acknowledged else "open"
    if kind == "closed":
        return "cancelled" if cancelling else "closed"
    if kind in ("acknowledged", "resolved"):
        return kind
    return status


def check_not_before(issue_id: str, kind: str, at: datetime, earlier_kind: str,
                     earlier_at: datetime) -> None:
    """An event may not happen before the issue was raised, nor before an event it follows."""
    if at < earlier_at:
        earlier = ("it was raised" if earlier_kind == "raised"
                   else f"its {earlier_kind} event at {earlier_at.isoformat()}")
        raise LifecycleError(f"issue {issue_id}: {kind} at {at.isoformat()} is before {earlier}")


@dataclass(frozen=True)
class IssueState:
    """The columns of an issue (contract table `issues`) that its events decide."""
    status: str
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    owner_department_code: str | None
    cause: str | None


def state_from_events(events: Iterable[Mapping], cancelled: bool = False,
                      recorded: bool = False) -> IssueState:
    """The state an issue's events leave it in, each event checked against the life cycle.

    `events`: mappings with `kind`, `at`, and optionally `department_code` (who holds the
    issue after the event), `note` and `issue_id` (named in errors), in the order they
    happened; the first is `raised`. `cancelled`: the issue was cancelled, so its `closed`
    event cancels it; until that event it is worked on like any other.

    The owner is the department named by the last event that names one. The first
    acknowledgement counts (a reopened issue keeps it); a resolution's note is the cause, and
    a reopening clears the resolution and the closing but keeps the cause found so far.
    Raises LifecycleError for an event its status does not allow or one out of time order.

    `recorded`: a history recorded elsewhere (an imported event log), which may close an
    issue that was never resolved (a ticket closed without a resolution). Live writers cannot
    (`check` refuses it); here it ends closed with no resolved_at, finished at closed_at.
    """
    status = acknowledged_at = resolved_at = closed_at = owner = cause = None
    previous: tuple[str, datetime] | None = None
    for event in events:
        issue_id, kind, at = event.get("issue_id", "?"), event["kind"], event["at"]
        if previous is not None:
            check_not_before(issue_id, kind, at, *previous)
        if recorded and kind == "closed" and status in ACTIVE and not cancelled:
            status = "closed"
        else:
            status = next_status(issue_id, status, kind, acknowledged=acknowledged_at is not None,
                                 cancelling=cancelled and kind == "closed")
        if kind == "acknowledged":
            acknowledged_at = at
        elif kind == "resolved":
            resolved_at, cause = at, event.get("note")
        elif kind == "reopened":
            resolved_at = closed_at = None
        elif kind == "closed":
            closed_at = at
        owner = event.get("department_code") or owner
        previous = (kind, at)
    if status is None:
        raise LifecycleError("an issue's events start with raised; there are none")
    return IssueState(status, acknowledged_at, resolved_at, closed_at, owner, cause)
