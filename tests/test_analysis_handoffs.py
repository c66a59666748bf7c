"""Hand-offs (data/analysis/handoffs.py): the flow by hop, the matrix and the ping-pong pairs
against hand-computed cases, and against an independent reading of the raw events written
here in plain loops, on the demo plant's history and on random plants."""
from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from data import timezones
from data.analysis.handoffs import (FLOW_COLUMNS, MATRIX_COLUMNS, PAIR_COLUMNS, flow_issue_ids,
                                    handoff_flow, handoff_matrix, handoffs, node,
                                    ping_pong_pairs)
from data.analysis.holding import holding_intervals
from data.demo import reference
from data.demo.issue_history import IssueHistory
from data.demo.timeline import Timeline
from data.models import Location
from tests.test_analysis_holding import at, event_frame, issue_frame, plant, random_plant


def small_plant():
    return plant(
        {"id": "A", "events": [(0, "raised", "PRD"), (10, "reassigned", "QA"),
                               (40, "reassigned", "PRD"), (70, "resolved", "PRD")]},
        {"id": "B", "events": [(0, "raised", "WH"), (5, "reassigned", "PUR"),
                               (20, "reassigned", "WH"), (30, "reassigned", "PUR"),
                               (50, "resolved", "PUR")]},
        {"id": "C", "events": [(0, "raised", "QA"), (25, "resolved", "QA")]},
        {"id": "D", "events": [(0, "raised", "MNT"), (10, "escalated", "ENG")]})


@pytest.fixture
def intervals():
    issues, events = small_plant()
    return holding_intervals(issues, events, at(100))


def test_the_flow_by_hop(intervals):
    flow = handoff_flow(intervals)
    assert tuple(flow.columns) == FLOW_COLUMNS
    links = {(r.source, r.target): (r.count, r.returns) for r in flow.itertuples()}
    assert links == {
        ("PRD·1", "QA·2"): (1, 0), ("QA·2", "PRD·3"): (1, 1), ("PRD·3", "resolved"): (1, 0),
        ("WH·1", "PUR·2"): (1, 0), ("PUR·2", "WH·3"): (1, 1), ("WH·3", "PUR·4"): (1, 1),
        ("PUR·4", "resolved"): (1, 0), ("QA·1", "resolved"): (1, 0),
        ("MNT·1", "ENG·2"): (1, 0), ("ENG·2", "open"): (1, 0)}
    assert flow_issue_ids(intervals, "PUR·2", "WH·3") == ["B"]
    assert flow_issue_ids(intervals, "ENG·2", "open") == ["D"]
    assert flow_issue_ids(intervals, "PRD·3", "resolved") == ["A"]
    assert flow_issue_ids(intervals, "PRD·1", "QA·3") == []
    assert flow_issue_ids(intervals, "XYZ·1", "open") == []
    assert flow_issue_ids(intervals, "resolved", "open") == []
    assert node("QA", 2) == "QA·2" and node(None, 1) == "?·1"


def test_the_flow_adds_up_links_of_many_issues():
    issues, events = plant(*[{"id": f"I{n}", "events": [(0, "raised", "QA"),
                                                        (n + 1, "reassigned", "PRD")]}
                             for n in range(3)],
                           {"id": "J", "events": [(0, "raised", "QA"), (4, "resolved", "QA")]})
    flow = handoff_flow(holding_intervals(issues, events, at(10)))
    assert flow.to_dict("records") == [
        {"source": "PRD·2", "target": "open", "count": 3, "returns": 0},
        {"source": "QA·1", "target": "PRD·2", "count": 3, "returns": 0},
        {"source": "QA·1", "target": "resolved", "count": 1, "returns": 0}]


def test_the_matrix_counts_hand_offs_and_their_median_wait(intervals):
    matrix = handoff_matrix(intervals)
    assert tuple(matrix.columns) == MATRIX_COLUMNS
    cells = {(r.from_department, r.to_department): (r.count, r.returns, r.median_wait_min)
             for r in matrix.itertuples()}
    assert cells == {("PRD", "QA"): (1, 0, 10.0), ("QA", "PRD"): (1, 1, 30.0),
                     ("WH", "PUR"): (2, 1, 7.5), ("PUR", "WH"): (1, 1, 15.0),
                     ("MNT", "ENG"): (1, 0, 10.0)}
    assert matrix.iloc[0][["from_department", "to_department"]].tolist() == ["WH", "PUR"]
    assert matrix["median_wait_work_min"].isna().all()


def test_ping_pong_pairs_are_ranked_with_their_issues(intervals):
    pairs = ping_pong_pairs(intervals)
    assert tuple(pairs.columns) == PAIR_COLUMNS
    assert pairs.to_dict("records") == [
        {"department_a": "PUR", "department_b": "WH", "returns": 2, "issues": 1,
         "handoffs": 3, "issue_ids": ("B",)},
        {"department_a": "PRD", "department_b": "QA", "returns": 1, "issues": 1,
         "handoffs": 2, "issue_ids": ("A",)}]


def test_a_hop_without_a_known_department():
    issues, events = plant(
        {"id": "A", "owner": None, "events": [(0, "raised", None), (5, "commented", None)]},
        {"id": "B", "events": [(0, "raised", "QA"), (5, "reassigned", "PRD"),
                               (9, "reassigned", "QA")]})
    intervals = holding_intervals(issues, events, at(10))
    assert intervals["department_code"].tolist() == [None, "QA", "PRD", "QA"]
    flow = handoff_flow(intervals)
    assert ("?·1", "open") in set(zip(flow["source"], flow["target"]))
    pairs = ping_pong_pairs(intervals)
    assert pairs[["department_a", "department_b"]].values.tolist() == [["PRD", "QA"]]


def test_intervals_of_part_of_an_issue_are_refused(intervals):
    with pytest.raises(ValueError, match="hop 3 of issue 'A' does not follow its hop 2"):
        handoff_matrix(intervals.drop(index=1))
    with pytest.raises(ValueError, match="hop 2 of issue 'A' does not follow its hop 1"):
        handoff_flow(intervals.iloc[1:])


def test_nothing_to_show():
    issues, events = plant({"id": "A", "events": [(0, "raised", "QA")]})
    none = holding_intervals(issues.iloc[:0], events.iloc[:0], at(10))
    assert handoff_flow(none).empty and handoff_matrix(none).empty
    assert ping_pong_pairs(none).empty and handoffs(none).empty
    alone = holding_intervals(issues, events, at(10))
    assert handoff_flow(alone).to_dict("records") == [
        {"source": "QA·1", "target": "open", "count": 1, "returns": 0}]
    assert handoff_matrix(alone).empty and ping_pong_pairs(alone).empty


# ---- an independent reading of the raw events -----------------------------------------------

def read_handoffs(issues: pd.DataFrame, events: pd.DataFrame, as_of) -> tuple[dict, dict]:
    """From the raw events, one issue at a time: every hand-off (department -> department
    while the issue is being worked on) with its wait (minutes since the giver took it), and
    every return (a department taking back an issue after another held it) by pair."""
    as_of = pd.Timestamp(as_of)
    owners = dict(zip(issues["id"], issues["owner_department_code"]))
    by_issue = defaultdict(list)
    for row in events.itertuples():
        if row.issue_id in owners and row.at <= as_of:
            by_issue[row.issue_id].append((row.at, row.event_id, row.kind, row.department_code))
    waits, returns = defaultdict(list), defaultdict(set)
    returns_count = defaultdict(int)
    for issue_id, rows in by_issue.items():
        rows.sort(key=lambda r: (r[0], r[1]))
        named = [department for _, _, _, department in rows if department is not None]
        holder = named[0] if named else owners[issue_id]
        taken, finished, earlier = rows[0][0], False, []
        for when, _, kind, department in rows:
            now = department if department is not None else holder
            new_hop = now != holder or (kind == "reopened" and finished)
            if new_hop:
                if now != holder and not finished:
                    waits[(holder, now)].append((when - taken) / pd.Timedelta(minutes=1))
                if now in earlier + [holder] and now != holder:
                    pair = tuple(sorted((holder, now)))
                    returns[pair].add(issue_id)
                    returns_count[pair] += 1
                earlier.append(holder)
                holder, taken = now, when
            if kind in ("raised", "reopened"):
                finished = False
            elif kind in ("resolved", "closed"):
                finished = True
    return waits, {pair: (returns_count[pair], sorted(ids)) for pair, ids in returns.items()}


def assert_agrees(issues: pd.DataFrame, events: pd.DataFrame, as_of) -> int:
    waits, returns = read_handoffs(issues, events, as_of)
    intervals = holding_intervals(issues, events, as_of)
    matrix = handoff_matrix(intervals)
    got = {(r.from_department, r.to_department): (r.count, r.median_wait_min)
           for r in matrix.itertuples()}
    expected = {pair: (len(values), statistics.median(values)) for pair, values in waits.items()}
    assert got.keys() == expected.keys()
    for pair, (count, median) in expected.items():
        assert got[pair][0] == count, pair
        assert got[pair][1] == pytest.approx(median, abs=1e-9), pair
    pairs = ping_pong_pairs(intervals)
    assert {(r.department_a, r.department_b): (r.returns, list(r.issue_ids))
            for r in pairs.itertuples()} == returns
    return sum(len(values) for values in waits.values())


@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_the_raw_events_on_random_plants(seed):
    issues, events = random_plant(seed, count=80)
    for minutes in (15, 40, 300):
        assert_agrees(issues, events, at(minutes))
        intervals = holding_intervals(issues, events, at(minutes))
        flow = handoff_flow(intervals)
        assert flow["count"].sum() == len(intervals)
        for link in flow.itertuples():
            assert len(flow_issue_ids(intervals, link.source, link.target)) == link.count


def demo_history(days: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, datetime]:
    """The demo plant's issues and events over `days`, built in memory as the demo writes
    them (data/demo/issue_history.py), shaped as the loaders give them."""
    end = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
    timeline = Timeline(seed, end - timedelta(days=days), end, timezones.site_zone())
    issue_rows, event_rows = IssueHistory(timeline).issues()
    issues = issue_frame(issue_rows)
    lines = {row["code"]: row["line"] for row in reference.tables()[Location]}
    issues["line"] = issues["location_code"].map(lines).astype(object)
    issues["line"] = issues["line"].where(issues["line"].notna(), None)
    rules = reference.RULES
    issues["ack_minutes"] = [float(rules[t].ack_minutes) for t in issues["issue_type"]]
    issues["resolve_minutes"] = [float(rules[t].resolve_minutes) for t in issues["issue_type"]]
    events = event_frame([{k: row[k] for k in ("issue_id", "at", "kind", "department_code")}
                          for row in event_rows])
    return issues, events, end


def test_agrees_with_the_raw_events_on_the_demo_plant():
    issues, events, end = demo_history(days=21, seed=11)
    for as_of in (end - timedelta(days=10, hours=3), end):
        handed = assert_agrees(issues, events, as_of)
        assert handed > 100
    pairs = ping_pong_pairs(holding_intervals(issues, events, end))
    # The demo's story: warehouse and purchasing pass shortages back and forth the most.
    assert {pairs.iloc[0]["department_a"], pairs.iloc[0]["department_b"]} == {"PUR", "WH"}
    assert np.all(np.diff(pairs["returns"].to_numpy()) <= 0)
