"""The issue life cycle: every event in every status, allowed or refused, and the state an
issue's events leave it in, against hand-written expectations."""
from datetime import datetime, timedelta, timezone

import pytest

from data import lifecycle
from data.lifecycle import IssueState, LifecycleError

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)  # 10:00 at the site

KINDS = ("raised", "acknowledged", "reassigned", "escalated", "commented", "resolved",
         "reopened", "closed")
# Status before -> the status after each event of KINDS, in that order; None: refused.
# A reopened issue that had been acknowledged is worked on again (acknowledged).
AFTER = {
    None: ("open", None, None, None, None, None, None, None),
    "open": (None, "acknowledged", "open", "open", "open", "resolved", None, None),
    "acknowledged": (None, None, "acknowledged", "acknowledged", "acknowledged", "resolved",
                     None, None),
    "resolved": (None, None, None, None, "resolved", None, "acknowledged", "closed"),
    "closed": (None, None, None, None, "closed", None, "acknowledged", None),
    "cancelled": (None, None, None, None, "cancelled", None, None, None),
}
CASES = [(status, kind, after) for status, row in AFTER.items() for kind, after in zip(KINDS, row)]


@pytest.mark.parametrize("status,kind,after", CASES)
def test_every_event_in_every_status(status, kind, after):
    assert lifecycle.allowed(status, kind) is (after is not None)
    if after is None:
        with pytest.raises(LifecycleError, match="Q-1"):
            lifecycle.next_status("Q-1", status, kind, acknowledged=True)
    else:
        assert lifecycle.next_status("Q-1", status, kind, acknowledged=True) == after


@pytest.mark.parametrize("status,after", [(None, None), ("open", "cancelled"),
                                          ("acknowledged", "cancelled"), ("resolved", None),
                                          ("closed", None), ("cancelled", None)])
def test_a_cancellation_is_a_closed_event_on_an_issue_being_worked_on(status, after):
    assert lifecycle.allowed(status, "closed", cancelling=True) is (after is not None)
    if after is None:
        with pytest.raises(LifecycleError):
            lifecycle.next_status("Q-1", status, "closed", cancelling=True)
    else:
        assert lifecycle.next_status("Q-1", status, "closed", cancelling=True) == after


@pytest.mark.parametrize("status,kind,message", [
    ("acknowledged", "acknowledged", "issue Q-1 is acknowledged; only an open issue can be acknowledged"),
    ("resolved", "reassigned", "issue Q-1 is resolved; only an open or acknowledged issue can be reassigned"),
    ("closed", "escalated", "issue Q-1 is closed; only an open or acknowledged issue can be escalated"),
    ("cancelled", "resolved", "issue Q-1 is cancelled; only an open or acknowledged issue can be resolved"),
    ("open", "reopened", "issue Q-1 is open; only a resolved or closed issue can be reopened"),
    ("acknowledged", "closed", "issue Q-1 is acknowledged; only a resolved issue can be closed"),
    ("open", "raised", "issue Q-1 is open; it was raised already"),
    (None, "commented", "issue Q-1 has not been raised; it cannot be commented on first"),
    ("open", "deleted", "issue Q-1: unknown event kind 'deleted'"),
])
def test_a_refusal_says_what_the_issue_is_and_what_it_would_need(status, kind, message):
    with pytest.raises(LifecycleError) as refused:
        lifecycle.check("Q-1", status, kind)
    assert str(refused.value) == message


def test_a_reopened_issue_nobody_acknowledged_is_open_again():
    assert lifecycle.next_status("Q-1", "resolved", "reopened", acknowledged=False) == "open"
    assert lifecycle.next_status("Q-1", "closed", "reopened", acknowledged=False) == "open"


def event(minute: float, kind: str, department: str | None = "QA", note: str | None = None) -> dict:
    return {"issue_id": "Q-1", "at": T0 + timedelta(minutes=minute), "kind": kind,
            "department_code": department, "note": note}


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def test_a_whole_life_with_a_reassign_chain_back_to_its_owner():
    state = lifecycle.state_from_events([
        event(0, "raised"), event(3, "reassigned", "PRD", "判定为作业问题"),
        event(7, "reassigned", "QA", "非作业原因"), event(9, "acknowledged"),
        event(10, "escalated", None, "超过响应时限"), event(20, "commented", "QA", "已到现场"),
        event(50, "resolved", "QA", "刀具磨损"), event(90, "closed"),
    ])
    assert state == IssueState("closed", at(9), at(50), at(90), "QA", "刀具磨损")


def test_the_owner_is_the_last_department_that_held_the_issue():
    events = [event(0, "raised"), event(2, "reassigned", "PRD"), event(4, "reassigned", "ENG")]
    assert lifecycle.state_from_events(events) == IssueState("open", None, None, None, "ENG", None)
    # An event that names no department leaves the issue where it was.
    events.append(event(5, "escalated", None))
    assert lifecycle.state_from_events(events).owner_department_code == "ENG"


def test_reopen_clears_the_resolution_keeps_the_first_acknowledgement_and_the_cause():
    events = [event(0, "raised"), event(5, "acknowledged"), event(30, "resolved", note="治具松动"),
              event(60, "reopened", note="问题复发")]
    assert lifecycle.state_from_events(events) == IssueState(
        "acknowledged", at(5), None, None, "QA", "治具松动")
    events += [event(120, "resolved", note="工艺参数漂移"), event(150, "closed")]
    assert lifecycle.state_from_events(events) == IssueState(
        "closed", at(5), at(120), at(150), "QA", "工艺参数漂移")


def test_reopen_of_a_closed_issue_clears_the_closing_too():
    events = [event(0, "raised"), event(5, "acknowledged"), event(30, "resolved"),
              event(40, "closed"), event(300, "reopened")]
    assert lifecycle.state_from_events(events) == IssueState(
        "acknowledged", at(5), None, None, "QA", None)


def test_an_issue_resolved_without_acknowledgement_and_reopened_can_be_acknowledged():
    events = [event(0, "raised"), event(30, "resolved"), event(60, "reopened")]
    assert lifecycle.state_from_events(events).status == "open"
    events.append(event(61, "acknowledged"))
    assert lifecycle.state_from_events(events) == IssueState(
        "acknowledged", at(61), None, None, "QA", None)


def test_close_without_resolve_is_refused_unless_the_issue_was_cancelled():
    events = [event(0, "raised"), event(2, "acknowledged"), event(5, "closed", note="重复上报，取消")]
    with pytest.raises(LifecycleError, match="only a resolved issue can be closed"):
        lifecycle.state_from_events(events)
    assert lifecycle.state_from_events(events, cancelled=True) == IssueState(
        "cancelled", at(2), None, at(5), "QA", None)


def test_a_cancelled_issue_is_open_until_its_closing_and_finished_after():
    assert lifecycle.state_from_events([event(0, "raised")], cancelled=True).status == "open"
    events = [event(0, "raised"), event(5, "closed"), event(6, "commented", note="重复")]
    assert lifecycle.state_from_events(events, cancelled=True) == IssueState(
        "cancelled", None, None, at(5), "QA", None)
    with pytest.raises(LifecycleError, match="only a resolved or closed issue can be reopened"):
        lifecycle.state_from_events(events + [event(7, "reopened")], cancelled=True)
    resolved_first = [event(0, "raised"), event(3, "resolved"), event(5, "closed")]
    with pytest.raises(LifecycleError, match="only an open or acknowledged issue can be cancelled"):
        lifecycle.state_from_events(resolved_first, cancelled=True)


def test_a_second_acknowledgement_is_refused():
    with pytest.raises(LifecycleError, match="only an open issue can be acknowledged"):
        lifecycle.state_from_events([event(0, "raised"), event(5, "acknowledged"),
                                     event(8, "acknowledged")])


def test_events_must_start_with_raised_and_keep_their_time_order():
    with pytest.raises(LifecycleError, match="has not been raised"):
        lifecycle.state_from_events([event(0, "acknowledged")])
    with pytest.raises(LifecycleError, match="there are none"):
        lifecycle.state_from_events([])
    with pytest.raises(LifecycleError, match="is before its acknowledged event"):
        lifecycle.state_from_events([event(0, "raised"), event(10, "acknowledged"),
                                     event(9, "resolved")])
    with pytest.raises(LifecycleError, match="is before it was raised"):
        lifecycle.state_from_events([event(0, "raised"), event(-1, "acknowledged")])
    # Two events at the same instant keep the order given (resolving acknowledges first).
    same = lifecycle.state_from_events([event(0, "raised"), event(4, "acknowledged"),
                                        event(4, "resolved")])
    assert (same.acknowledged_at, same.resolved_at) == (at(4), at(4))
