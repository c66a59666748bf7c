"""Event logs: the derivation rules on small cases, and the real UCI log end to end, its figures
held to an independent computation from the raw CSV (csv module and statistics only)."""
from __future__ import annotations

import csv
import gzip
import statistics
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from data.ingest import event_log, importer
from data.ingest.event_log import LogRow, Summary
from data.models import Department, Issue, IssueEvent, SlaRule

PROJECT_ROOT = Path(__file__).resolve().parent.parent
UCI = PROJECT_ROOT.parent / "shared" / "data" / "real" / "uci_incident_event_log.csv.gz"
UCI_MAPPING = PROJECT_ROOT / "docs" / "mappings" / "uci-incident-event-log.yaml"
UTC = timezone.utc
T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def rows(*updates) -> list[LogRow]:
    """(order, minutes, meaning, department) per update."""
    return [LogRow(n + 2, order, at(minutes), meaning, department)
            for n, (order, minutes, meaning, department) in enumerate(updates)]


def kinds(events) -> list[tuple]:
    return [(e["kind"], e["department_code"]) for e in events]


def test_a_case_becomes_raised_acknowledged_handed_off_resolved_closed():
    summary = Summary()
    events, state = event_log.derive("C1", rows(
        (0, 0, "open", "A"), (1, 5, "acknowledged", "A"), (2, 9, "acknowledged", "B"),
        (3, 30, "resolved", "B"), (4, 60, "closed", "B")), None, summary)
    assert kinds(events) == [("raised", "A"), ("acknowledged", "A"), ("reassigned", "B"),
                             ("resolved", "B"), ("closed", "B")]
    assert (state.status, state.acknowledged_at, state.resolved_at, state.closed_at,
            state.owner_department_code) == ("closed", at(5), at(30), at(60), "B")
    assert summary["handoffs"] == 1


def test_the_order_column_decides_ties_and_times_never_go_back():
    """Two hand-offs in one minute stay two, in the log's order; a later update stamped
    earlier is lifted to the one before; an update before the opening is at the opening."""
    summary = Summary()
    events, state = event_log.derive("C1", rows(
        (3, 10, "acknowledged", "A"), (1, -5, "open", "A"), (4, 10, "acknowledged", "B"),
        (5, 10, "acknowledged", "A"), (6, 8, "resolved", "A")), None, summary)
    assert kinds(events) == [("raised", "A"), ("acknowledged", "A"), ("reassigned", "B"),
                             ("reassigned", "A"), ("resolved", "A")]
    instants = [e["at"] for e in events]
    assert instants == sorted(instants) and len(set(instants)) == len(instants)
    assert instants[0] == at(-5)  # opened with its first update: no opened_at given
    assert state.resolved_at == at(10) + 3 * timedelta(microseconds=1)
    assert (summary["handoffs_same_instant"], summary["stamped_before_previous"]) == (1, 1)


def test_closed_without_resolution_and_cases_without_department():
    summary = Summary()
    events, state = event_log.derive("C1", rows((0, 0, "open", None), (1, 20, "closed", None)),
                                     "NONE", summary)
    assert kinds(events) == [("raised", "NONE"), ("acknowledged", "NONE"), ("closed", "NONE")]
    assert (state.status, state.resolved_at, state.closed_at) == ("closed", None, at(20) + timedelta(microseconds=1))
    assert (summary["closed_without_resolution"], summary["without_department"]) == (1, 1)
    with pytest.raises(ValueError, match="names a department"):
        event_log.derive("C2", rows((0, 0, "open", None)), None, Summary())


def test_reopening_and_changes_after_resolution():
    summary = Summary()
    events, state = event_log.derive("C1", rows(
        (0, 0, "open", "A"), (1, 10, "resolved", "A"), (2, 20, "resolved", "B"),
        (3, 30, "acknowledged", "A"), (4, 40, "resolved", "A"), (5, 50, "ignore", "A")), None, summary)
    assert kinds(events) == [("raised", "A"), ("acknowledged", "A"), ("resolved", "A"),
                             ("reopened", "A"), ("resolved", "A")]
    assert (state.status, state.acknowledged_at, state.resolved_at) == ("resolved", at(10), at(40))
    assert (summary["reopened"], summary["department_after_finish"], summary["ignored_states"]) == (1, 1, 1)


# ---- the real log, end to end --------------------------------------------------------

def uci_expected() -> dict:
    """The figures the mapping's rules give, computed from the raw CSV without FloorLink:
    per incident, updates in sys_mod_count order (then time); acknowledged at the first
    update whose state is not New (nor -100), resolved at the last move into Resolved,
    no update before the opening; a hand-off per change of the last group named while the
    incident is not resolved or closed."""
    def when(text: str) -> datetime:
        return datetime.strptime(text, "%d/%m/%Y %H:%M")

    cases: dict[str, list[dict]] = {}
    with gzip.open(UCI, "rt", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle)):
            row["line"] = line
            cases.setdefault(row["number"], []).append(row)
    groups, handoffs, responses, resolutions = set(), 0, [], []
    for updates in cases.values():
        updates.sort(key=lambda r: (int(r["sys_mod_count"]), when(r["sys_updated_at"]), r["line"]))
        opened = when(updates[0]["opened_at"])
        holder, finished, acknowledged, resolved = None, False, None, None
        for row in updates:
            stamp = max(when(row["sys_updated_at"]), opened)
            group, state = row["assignment_group"], row["incident_state"]
            if group != "?":
                groups.add(group)
                if holder is not None and group != holder and not finished:
                    handoffs += 1
                if holder is None or not finished:
                    holder = group
            if state in ("New", "-100"):
                finished = finished and state == "-100"
                continue
            acknowledged = acknowledged or stamp
            if state == "Resolved" and not finished:
                resolved = stamp
            finished = state in ("Resolved", "Closed") or (finished and state == "-100")
            if not finished:
                resolved = None if state != "Resolved" else resolved
        responses.append((acknowledged - opened).total_seconds() / 60)
        if resolved is not None:
            resolutions.append((resolved - opened).total_seconds() / 60)
    return {"incidents": len(cases), "groups": len(groups), "handoffs": handoffs,
            "response_median": statistics.median(responses),
            "resolution_median": statistics.median(resolutions)}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def uci_engine(request, tmp_path_factory):
    """The UCI log imported once per database kind with its shipped mapping."""
    from data import db
    from data.models import Base
    from sqlalchemy import text

    if not UCI.exists():
        pytest.skip(f"the UCI log is not at {UCI}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('uci') / 'uci.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    result = importer.import_file(engine, "event_log", UCI, UCI_MAPPING)
    yield engine, result
    if request.param == "postgresql":
        with engine.begin() as conn:
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="module")
def expected():
    return uci_expected()


def test_uci_counts_match_the_raw_log(uci_engine, expected):
    engine, result = uci_engine
    with engine.connect() as conn:
        issues = conn.scalar(select(func.count()).select_from(Issue))
        groups = conn.scalar(select(func.count()).select_from(Department).where(Department.code != "UNASSIGNED"))
        handoffs = conn.scalar(select(func.count()).select_from(IssueEvent).where(IssueEvent.kind == "reassigned"))
        rules = conn.scalar(select(func.count()).select_from(SlaRule))
    assert (issues, groups, handoffs, rules) == (expected["incidents"], expected["groups"],
                                                 expected["handoffs"], 4)
    assert (expected["incidents"], expected["groups"]) == (24918, 78)
    assert result.rows == 24918 and result.summary["handoffs"] == expected["handoffs"]
    assert result.summary["without_department"] == 373


def test_uci_median_times_match_the_raw_log(uci_engine, expected):
    """The `kpis` report over the whole log (as the command prints it, rounded to 0.1 min)."""
    from data.reports import kpi_report

    engine, _ = uci_engine
    as_of = datetime(2017, 3, 1, tzinfo=UTC)
    overall = kpi_report.kpi_report(engine, since=datetime(2016, 1, 1, tzinfo=UTC), until=as_of,
                                    as_of=as_of)["overall"]
    assert overall["response_median_min"] == pytest.approx(expected["response_median"], abs=0.05)
    assert overall["resolution_median_min"] == pytest.approx(expected["resolution_median"], abs=0.05)
    assert (overall["raised"], overall["open"]) == (expected["incidents"], 0)
