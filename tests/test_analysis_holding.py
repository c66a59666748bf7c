"""Holding intervals (data/analysis/holding.py) against hand-computed hops, and working time
against shifts worked out by hand.

T0 is 2026-11-20 10:00 site time (02:00 UTC); events are written in minutes after T0.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from data import kpis, lifecycle
from data.analysis.holding import INTERVAL_COLUMNS, holding_intervals, working_minutes

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
NAT = pd.NaT


def at(minutes: float) -> pd.Timestamp:
    return pd.Timestamp(T0 + timedelta(minutes=minutes))


def plant(*issues: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Issue and event frames shaped as data.queries loads them, from specs: id, events
    [(minute, kind, department)], and optionally owner, line, cancelled, type, severity,
    location, ack_minutes, resolve_minutes. The issue's columns are what its events leave it
    in (data/lifecycle.py, a recorded history); an issue without events gives `raised` (a
    minute), `owner` and optionally `status`."""
    issue_rows, event_rows = [], []
    for spec in issues:
        steps = [{"issue_id": spec["id"], "at": at(m).to_pydatetime(), "kind": kind,
                  "department_code": department} for m, kind, department in spec["events"]]
        row = {"id": spec["id"], "issue_type": spec.get("type", "quality_anomaly"),
               "severity": spec.get("severity", "P2"), "location_code": spec.get("location"),
               "line": spec.get("line"), "ack_minutes": spec.get("ack_minutes", 10.0),
               "resolve_minutes": spec.get("resolve_minutes", 240.0)}
        if steps:
            state = lifecycle.state_from_events(steps, cancelled=spec.get("cancelled", False),
                                                recorded=True)
            row.update(owner_department_code=spec.get("owner", state.owner_department_code),
                       raised_at=steps[0]["at"], acknowledged_at=state.acknowledged_at,
                       resolved_at=state.resolved_at, closed_at=state.closed_at,
                       status=state.status, cause=state.cause)
        else:
            row.update(owner_department_code=spec.get("owner"),
                       raised_at=at(spec["raised"]).to_pydatetime(), acknowledged_at=None,
                       resolved_at=None, closed_at=None, status=spec.get("status", "open"),
                       cause=None)
        issue_rows.append(row)
        event_rows += steps
    return issue_frame(issue_rows), event_frame(event_rows)


def issue_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in ("raised_at", "acknowledged_at", "resolved_at", "closed_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[ns, UTC]")
    for column in ("id", "issue_type", "severity", "location_code", "line",
                   "owner_department_code", "status", "cause"):
        if column in frame:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def event_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["issue_id", "at", "kind", "department_code"])
    frame.insert(1, "event_id", np.arange(1, len(frame) + 1, dtype="int64"))
    frame["at"] = pd.to_datetime(frame["at"], utc=True).astype("datetime64[ns, UTC]")
    for column in ("issue_id", "kind", "department_code"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def hops(intervals: pd.DataFrame, issue_id: str) -> list[tuple]:
    """(hop, department, taken, let go, how, returned, held minutes) of one issue, minutes
    after T0 (None for an interval still held)."""
    rows = intervals[intervals["issue_id"] == issue_id]
    return [(r.hop, r.department_code, (r.taken_at - at(0)) / pd.Timedelta(minutes=1),
             None if pd.isna(r.let_go_at) else (r.let_go_at - at(0)) / pd.Timedelta(minutes=1),
             r.let_go_by, r.returned, r.held_min) for r in rows.itertuples()]


def test_columns_and_a_plain_ping_pong():
    issues, events = plant({"id": "A", "events": [
        (0, "raised", "PRD"), (10, "reassigned", "QA"), (25, "acknowledged", "QA"),
        (40, "reassigned", "PRD")]})
    intervals = holding_intervals(issues, events, at(100))
    assert tuple(intervals.columns) == INTERVAL_COLUMNS
    assert hops(intervals, "A") == [
        (1, "PRD", 0, 10, "reassigned", False, 10.0),
        (2, "QA", 10, 40, "reassigned", False, 30.0),
        (3, "PRD", 40, None, None, True, 60.0),
    ]
    assert intervals["hop"].dtype == "int64" and intervals["returned"].dtype == bool
    assert str(intervals["taken_at"].dtype) == "datetime64[ns, UTC]"


def test_back_and_forth_returns_at_every_hop_after_the_second():
    issues, events = plant({"id": "B", "events": [
        (0, "raised", "WH"), (5, "reassigned", "PUR"), (20, "reassigned", "WH"),
        (30, "reassigned", "PUR"), (50, "resolved", "PUR"), (60, "closed", "PUR")]})
    assert hops(holding_intervals(issues, events, at(100)), "B") == [
        (1, "WH", 0, 5, "reassigned", False, 5.0),
        (2, "PUR", 5, 20, "reassigned", False, 15.0),
        (3, "WH", 20, 30, "reassigned", True, 10.0),
        (4, "PUR", 30, 50, "resolved", True, 20.0),
    ]


def test_escalation_lets_go_only_when_the_department_changes():
    issues, events = plant(
        {"id": "KEEP", "events": [(0, "raised", "MNT"), (10, "escalated", "MNT"),
                                  (30, "resolved", "MNT")]},
        {"id": "MOVE", "events": [(0, "raised", "MNT"), (10, "escalated", "ENG"),
                                  (30, "resolved", "ENG")]})
    intervals = holding_intervals(issues, events, at(100))
    assert hops(intervals, "KEEP") == [(1, "MNT", 0, 30, "resolved", False, 30.0)]
    assert hops(intervals, "MOVE") == [(1, "MNT", 0, 10, "escalated", False, 10.0),
                                       (2, "ENG", 10, 30, "resolved", False, 20.0)]


def test_finishing_closing_and_cancelling():
    issues, events = plant(
        {"id": "CLOSED", "events": [(0, "raised", "QA"), (15, "closed", "QA")]},
        {"id": "CANCEL", "cancelled": True, "events": [(0, "raised", "QA"), (7, "closed", "QA")]},
        {"id": "RESOLVED_CLOSED", "events": [(0, "raised", "QA"), (20, "resolved", "QA"),
                                             (90, "closed", "QA")]})
    intervals = holding_intervals(issues, events, at(100))
    assert hops(intervals, "CLOSED") == [(1, "QA", 0, 15, "closed", False, 15.0)]
    assert hops(intervals, "CANCEL") == [(1, "QA", 0, 7, "cancelled", False, 7.0)]
    assert hops(intervals, "RESOLVED_CLOSED") == [(1, "QA", 0, 20, "resolved", False, 20.0)]


def test_a_reopened_issue_is_taken_again_without_being_a_return():
    issues, events = plant(
        {"id": "SAME", "events": [(0, "raised", "QA"), (20, "resolved", "QA"),
                                  (50, "reopened", "QA"), (70, "resolved", "QA")]},
        {"id": "OTHER", "events": [(0, "raised", "QA"), (10, "reassigned", "PRD"),
                                   (20, "resolved", "PRD"), (50, "reopened", "QA"),
                                   (65, "reassigned", "PRD")]})
    intervals = holding_intervals(issues, events, at(100))
    assert hops(intervals, "SAME") == [(1, "QA", 0, 20, "resolved", False, 20.0),
                                       (2, "QA", 50, 70, "resolved", False, 20.0)]
    assert hops(intervals, "OTHER") == [
        (1, "QA", 0, 10, "reassigned", False, 10.0),
        (2, "PRD", 10, 20, "resolved", False, 10.0),
        (3, "QA", 50, 65, "reassigned", True, 15.0),
        (4, "PRD", 65, None, None, True, 35.0),
    ]


def test_another_department_closing_a_resolved_issue_holds_it_for_no_time():
    issues, events = plant({"id": "C", "events": [
        (0, "raised", "PRD"), (30, "resolved", "PRD"), (45, "closed", "QA")]})
    assert hops(holding_intervals(issues, events, at(100)), "C") == [
        (1, "PRD", 0, 30, "resolved", False, 30.0), (2, "QA", 45, 45, "closed", False, 0.0)]


def test_still_held_at_as_of_and_events_after_it_ignored():
    issues, events = plant({"id": "D", "events": [
        (0, "raised", "WH"), (10, "reassigned", "PUR"), (40, "reassigned", "WH"),
        (60, "resolved", "WH")]})
    intervals = holding_intervals(issues, events, at(30))
    assert hops(intervals, "D") == [(1, "WH", 0, 10, "reassigned", False, 10.0),
                                    (2, "PUR", 10, None, None, False, 20.0)]
    # An event exactly at as_of has happened.
    assert hops(holding_intervals(issues, events, at(40)), "D")[-1] == (
        3, "WH", 40, None, None, True, 0.0)


def test_the_first_named_department_holds_from_the_raise_and_an_issue_without_events_its_owner():
    issues, events = plant(
        {"id": "E", "owner": "QA", "events": [(0, "raised", None), (5, "commented", None),
                                              (12, "reassigned", "PRD"),
                                              (30, "commented", None), (40, "reassigned", "QA")]},
        {"id": "F", "owner": "MNT", "events": [(0, "raised", None), (8, "resolved", None)]},
        {"id": "G", "owner": "WH", "raised": 5, "events": []},
        {"id": "LATE", "owner": "WH", "raised": 500, "events": []})
    intervals = holding_intervals(issues, events, at(100))
    # Not PRD -> QA -> PRD -> QA: before its first named department the holder is unknown.
    assert hops(intervals, "E") == [(1, "PRD", 0, 40, "reassigned", False, 40.0),
                                    (2, "QA", 40, None, None, False, 60.0)]
    assert hops(intervals, "F") == [(1, "MNT", 0, 8, "resolved", False, 8.0)]
    assert hops(intervals, "G") == [(1, "WH", 5, None, None, False, 95.0)]
    assert hops(intervals, "LATE") == []
    assert kpis.ping_pong_issue_ids(events, at(100)) == set()


def test_row_order_does_not_matter_and_events_of_other_issues_are_left_out():
    issues, events = plant(
        {"id": "A", "events": [(0, "raised", "PRD"), (10, "reassigned", "QA"),
                               (10, "reassigned", "PRD")]},
        {"id": "B", "events": [(0, "raised", "QA"), (5, "reassigned", "WH")]})
    stranger = event_frame([{"issue_id": "Z", "at": at(1), "kind": "raised",
                             "department_code": "QA"}]).assign(event_id=99)
    shuffled = pd.concat([events, stranger]).sample(frac=1, random_state=3)
    expected = holding_intervals(issues, events, at(100))
    got = holding_intervals(issues, shuffled, at(100))
    pd.testing.assert_frame_equal(got.sort_values(["issue_id", "hop"]).reset_index(drop=True),
                                  expected.sort_values(["issue_id", "hop"]).reset_index(drop=True))
    # Two events at the same instant go by event id: QA held A for no time.
    assert hops(expected, "A")[1] == (2, "QA", 10, 10, "reassigned", False, 0.0)


def test_bad_input_is_refused():
    issues, events = plant({"id": "A", "events": [(0, "raised", "PRD")]})
    with pytest.raises(ValueError, match="naive as_of"):
        holding_intervals(issues, events, datetime(2026, 11, 20, 12))
    with pytest.raises(ValueError, match="id 'A' appears more than once"):
        holding_intervals(pd.concat([issues, issues]), events, at(10))


def random_plant(seed: int, count: int = 60) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Issues with every kind of step, departments changing on any event, events without a
    department, reopenings, closings without a resolution, cancellations."""
    rng = random.Random(seed)
    specs = []
    for number in range(count):
        minute, status, department = rng.randint(0, 50), None, rng.choice("ABC")
        events = [(minute, "raised", rng.choice([department, None]))]
        cancelled = closed_before = False
        for _ in range(rng.randint(0, 9)):
            minute += rng.choice([0, 1, 3, 10])
            active = status in (None, "acknowledged")
            choices = (["reassigned", "escalated", "commented", "acknowledged", "resolved",
                        "closed"] if active else ["reopened", "commented", "closed"])
            kind = rng.choice(choices)
            if status == "closed" and kind == "closed":
                continue
            if kind == "acknowledged" and status == "acknowledged":
                continue
            department = rng.choice("ABCD") if rng.random() < 0.5 else department
            events.append((minute, kind, rng.choice([department, department, None])))
            if kind == "closed" and active:
                # Only an issue never closed before can be cancelled (data/lifecycle.py).
                cancelled = not closed_before and rng.random() < 0.5
                status = closed_before = "closed"
                if cancelled:
                    break
            elif kind in ("resolved", "closed"):
                closed_before = closed_before or kind == "closed"
                status = kind
            elif kind == "reopened":
                status = "acknowledged"
            elif kind == "acknowledged":
                status = "acknowledged"
        specs.append({"id": f"R{seed}-{number:03d}", "events": events, "cancelled": cancelled,
                      "owner": rng.choice(["A", "B", None])})
    return plant(*specs)


@pytest.mark.parametrize("seed", range(12))
def test_issues_with_a_return_are_exactly_the_contracts_ping_pong_issues(seed):
    issues, events = random_plant(seed)
    for minutes in (0, 20, 45, 80, 200):
        intervals = holding_intervals(issues, events, at(minutes))
        returned = set(intervals.loc[intervals["returned"], "issue_id"])
        assert returned == kpis.ping_pong_issue_ids(events, at(minutes))
        # Every hop starts where the one before was let go or later; one hop at most held.
        for _, rows in intervals.groupby("issue_id"):
            assert list(rows["hop"]) == list(range(1, len(rows) + 1))
            assert rows["let_go_at"].iloc[:-1].notna().all()
            assert (rows["taken_at"].iloc[1:].to_numpy()
                    >= rows["let_go_at"].iloc[:-1].to_numpy()).all()
            assert (rows["held_min"] >= 0).all()


# ---- working time ---------------------------------------------------------------------------

def shift(line: str | None, start: str, end: str) -> dict:
    return {"line": line, "shift_start": pd.Timestamp(start, tz="Asia/Shanghai"),
            "shift_end": pd.Timestamp(end, tz="Asia/Shanghai")}


def shifts(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    for column in ("shift_start", "shift_end"):
        frame[column] = frame[column].dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    return frame


def local(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="Asia/Shanghai").tz_convert("UTC")


def test_working_minutes_across_a_shift_boundary_and_a_day_without_shifts():
    plan = shifts(
        shift("L1", "2026-11-20 08:00", "2026-11-20 16:00"),
        shift("L1", "2026-11-20 16:00", "2026-11-21 00:00"),
        # No shift on the 21st; the 22nd from 08:00, L2 overlapping L1 by two hours.
        shift("L1", "2026-11-22 08:00", "2026-11-22 16:00"),
        shift("L2", "2026-11-22 14:00", "2026-11-22 18:00"),
        # On the 23rd a long shift holds two short ones of other lines.
        shift("L1", "2026-11-23 08:00", "2026-11-23 20:00"),
        shift("L2", "2026-11-23 09:00", "2026-11-23 10:00"),
        shift("L3", "2026-11-23 11:00", "2026-11-23 12:00"))
    starts = [local("2026-11-20 15:00"), local("2026-11-20 23:00"), local("2026-11-21 09:00"),
              local("2026-11-20 07:00"), local("2026-11-22 15:30"), local("2026-11-23 00:00")]
    ends = [local("2026-11-20 17:30"), local("2026-11-22 09:00"), local("2026-11-21 20:00"),
            local("2026-11-20 07:30"), local("2026-11-22 17:00"), local("2026-11-24 00:00")]
    worked = working_minutes(starts, ends, plan)
    # 15:00-17:30 crosses 16:00 and counts whole; 23:00 to the 22nd 09:00: one hour on the
    # 20th, nothing on the 21st, one hour on the 22nd; overlapping shifts count once.
    np.testing.assert_allclose(worked, [150.0, 120.0, 0.0, 0.0, 90.0, 720.0])


def test_working_minutes_of_nothing_and_of_a_missing_end():
    plan = shifts(shift("L1", "2026-11-20 08:00", "2026-11-20 16:00"))
    assert working_minutes([], [], plan).shape == (0,)
    worked = working_minutes([local("2026-11-20 09:00")], pd.Series([pd.NaT]), plan)
    assert np.isnan(worked[0])
    assert working_minutes([local("2026-11-20 09:00")], [local("2026-11-20 10:00")],
                           plan.iloc[:0]).tolist() == [0.0]


def test_held_work_minutes_follow_the_issues_line_and_any_line_without_one():
    plan = shifts(shift("L1", "2026-11-20 08:00", "2026-11-20 12:00"),
                  shift("L2", "2026-11-20 11:00", "2026-11-20 20:00"))
    # T0 is 10:00 site time; each issue is held from 10:00 to 13:00.
    issues, events = plant(
        {"id": "ON_L1", "line": "L1", "events": [(0, "raised", "PRD"), (180, "resolved", "PRD")]},
        {"id": "ON_L2", "line": "L2", "events": [(0, "raised", "PRD"), (180, "resolved", "PRD")]},
        {"id": "NO_LINE", "events": [(0, "raised", "WH"), (180, "resolved", "WH")]},
        {"id": "UNPLANNED", "line": "L9", "events": [(0, "raised", "WH"),
                                                     (180, "resolved", "WH")]})
    intervals = holding_intervals(issues, events, at(300), plan).set_index("issue_id")
    assert intervals.loc["ON_L1", "held_work_min"] == 120.0   # 10:00-12:00
    assert intervals.loc["ON_L2", "held_work_min"] == 120.0   # 11:00-13:00
    assert intervals.loc["NO_LINE", "held_work_min"] == 180.0  # any line: 10:00-13:00
    assert intervals.loc["UNPLANNED", "held_work_min"] == 180.0
    assert intervals["held_min"].tolist() == [180.0] * 4
    assert holding_intervals(issues, events, at(300))["held_work_min"].isna().all()


def test_an_interval_still_held_works_until_as_of():
    plan = shifts(shift("L1", "2026-11-20 08:00", "2026-11-20 20:00"))
    issues, events = plant({"id": "A", "line": "L1", "events": [(0, "raised", "PRD")]})
    intervals = holding_intervals(issues, events, local("2026-11-20 21:00"), plan)
    assert intervals["held_min"].tolist() == [660.0]
    assert intervals["held_work_min"].tolist() == [600.0]
