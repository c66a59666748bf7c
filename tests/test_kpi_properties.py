"""Properties of the pure KPI functions on generated frames (no database)."""
from datetime import datetime, timedelta, timezone

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from data import kpis

BASE = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
DEPARTMENTS = ("PRD", "QA", "WH")
EVENT_KINDS = ("raised", "acknowledged", "reassigned", "commented", "resolved")

minutes = st.integers(min_value=-600, max_value=600)
delays = st.one_of(st.none(), st.integers(min_value=0, max_value=600))


def at(offset: int | None):
    return None if offset is None else BASE + timedelta(minutes=offset)


@st.composite
def issue_rows(draw):
    raised = draw(minutes)
    ack_delay = draw(delays)
    resolve_delay = draw(delays)
    close_delay = draw(delays)
    ack_minutes = draw(st.integers(min_value=1, max_value=240))
    return {
        "raised_at": at(raised),
        "acknowledged_at": at(None if ack_delay is None else raised + ack_delay),
        "resolved_at": at(None if resolve_delay is None else raised + resolve_delay),
        "closed_at": at(None if close_delay is None else raised + close_delay),
        "status": draw(st.sampled_from(["open", "acknowledged", "resolved", "closed", "cancelled"])),
        "owner_department_code": draw(st.sampled_from(DEPARTMENTS)),
        "ack_minutes": float(ack_minutes),
        "resolve_minutes": float(ack_minutes + draw(st.integers(min_value=0, max_value=480))),
    }


def issue_frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["raised_at", "acknowledged_at", "resolved_at", "closed_at",
                                        "status", "owner_department_code", "ack_minutes",
                                        "resolve_minutes"])
    for column in ("raised_at", "acknowledged_at", "resolved_at", "closed_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.assign(id=[f"I{n}" for n in range(len(frame))])


@st.composite
def scenarios(draw):
    """Issues, their events (ids unique, times often tied), and an as_of."""
    issues = issue_frame(draw(st.lists(issue_rows(), max_size=12)))
    events = []
    for issue_id in issues["id"]:
        for _ in range(draw(st.integers(min_value=0, max_value=6))):
            events.append({"issue_id": issue_id, "at": at(draw(st.integers(0, 5)) * 30),
                           "kind": draw(st.sampled_from(EVENT_KINDS)),
                           "department_code": draw(st.sampled_from(DEPARTMENTS))})
    frame = pd.DataFrame(events, columns=["issue_id", "at", "kind", "department_code"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["event_id"] = draw(st.permutations(range(len(frame)))) if len(frame) else []
    return issues, frame, at(draw(minutes))


def shuffled(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    return frame.sample(frac=1, random_state=seed).reset_index(drop=True)


def reference_ping_pong(events: pd.DataFrame, as_of) -> set[str]:
    """A plain loop over each issue's events, to check the vectorised version against."""
    result = set()
    known = sorted((row.issue_id, row.at, row.event_id, row.department_code)
                   for row in events.itertuples() if row.at <= as_of)
    for issue_id in {row[0] for row in known}:
        held = []
        for _, _, _, department in (row for row in known if row[0] == issue_id):
            if not held or held[-1] != department:
                held.append(department)
        if len(held) != len(set(held)):
            result.add(issue_id)
    return result


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_every_issue_has_exactly_one_outcome(scenario):
    issues, _, as_of = scenario
    for outcomes in (kpis.response_sla_outcomes(issues, as_of),
                     kpis.resolution_sla_outcomes(issues, as_of)):
        counts = outcomes.value_counts()
        assert counts.get("met", 0) + counts.get("breached", 0) + counts.get("pending", 0) \
            == len(issues)
        assert (outcomes[issues["raised_at"] > as_of] == "pending").all()


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_rates_are_shares_or_none(scenario):
    issues, events, as_of = scenario
    result = kpis.issue_kpis(issues, events, issues, as_of)
    for key in ("response_sla_compliance", "resolution_sla_compliance", "resolution_rate"):
        assert result[key] is None or 0 <= result[key] <= 1
    assert (result["response_sla_compliance"] is None) == \
        (result["response_sla_met"] + result["response_sla_breached"] == 0)
    assert (result["resolution_rate"] is None) == issues.empty
    assert 0 <= result["overdue"] <= result["open"] <= len(issues)
    for low, high in (("response_median_min", "response_p90_min"),
                      ("resolution_median_min", "resolution_p90_min")):
        assert (result[low] is None) == (result[high] is None)
        assert result[low] is None or result[low] <= result[high]


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.integers(min_value=0, max_value=2**16))
def test_results_do_not_depend_on_row_order(scenario, seed):
    issues, events, as_of = scenario
    expected = kpis.issue_kpis(issues, events, issues, as_of)
    assert kpis.issue_kpis(shuffled(issues, seed), shuffled(events, seed + 1),
                           shuffled(issues, seed + 2), as_of) == expected


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_ping_pong_and_handoffs_follow_the_event_log(scenario):
    issues, events, as_of = scenario
    assert kpis.ping_pong_issue_ids(events, as_of) == reference_ping_pong(events, as_of)
    known = events[(events["at"] <= as_of) & (events["kind"] == "reassigned")]
    counts = kpis.handoff_counts(issues, events, as_of)
    assert counts.sum() == len(known)
    assert (counts >= 0).all() and list(counts.index) == list(issues["id"])


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_an_issue_closed_by_as_of_is_finished(scenario):
    issues, _, as_of = scenario
    closed = (issues["closed_at"] <= as_of).to_numpy()
    resolved = (issues["resolved_at"] <= as_of).to_numpy()
    assert not (kpis.open_mask(issues, as_of).to_numpy() & closed).any()
    assert not (kpis.overdue_mask(issues, as_of).to_numpy() & closed).any()
    outcomes = kpis.resolution_sla_outcomes(issues, as_of).to_numpy()
    assert (outcomes[closed & ~resolved] == "pending").all()
    if len(issues):
        assert kpis.resolution_rate(issues, as_of) == (closed | resolved).mean()
