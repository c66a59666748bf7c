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
    """The UCI log imported once per database kind with its shipped mapping, into a database
    of its own (the tests of this module that run meanwhile have theirs)."""
    from contextlib import ExitStack

    from data import db
    from tests.conftest import throwaway_postgres

    if not UCI.exists():
        pytest.skip(f"the UCI log is not at {UCI}")
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('uci') / 'uci.sqlite'}"
        else:
            url = stack.enter_context(throwaway_postgres("floorlink_uci"))
        engine = db.get_engine(url)
        db.upgrade_schema(engine)
        result = importer.import_file(engine, "event_log", UCI, UCI_MAPPING)
        yield engine, result


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


# ---- a small log of the plant's own shape: blocks, batches, problems, rejects ----------

LOG_MAPPING = r"""
table: event_log
empty: ["?"]
date_formats: ["d/m/yyyy HH:MM"]
event_log:
  case: ticket
  order: step
  at: when
  state: state
  states: {New: open, Working: acknowledged, Done: resolved, Closed: closed}
  department: {column: team, rewrite: ['^Team (\w+)$', '\1']}
  no_department: NONE
  actor: who
columns:
  issue_type: {value: incident}
  severity: {column: prio, values: {high: P1, low: P4}}
  title: {template: "{ticket} ({prio})"}
creates:
  departments:
    rows: [{code: NONE, name_zh: 未分派, name_en: Unassigned}]
    each: {name_zh: "组 {code}", name_en: "{value}"}
  sla_rules:
    rows: [{issue_type: incident, name_zh: 事件, name_en: Incident, owner_department_code: NONE,
            ack_minutes: 30, resolve_minutes: 240}]
"""
LOG_HEADER = ["ticket", "step", "when", "state", "team", "who", "prio"]
LOG_ROWS = [  # row 2 onwards; the site's zone is UTC+8, so 08:00 is 00:00 UTC
    ["T1", "0", "1/3/2026 08:00", "New", "Team A", "ann", "high"],
    ["T1", "1", "1/3/2026 08:05", "Working", "Team A", "bob", "high"],
    ["T1", "2", "1/3/2026 08:05", "Working", "Team B", "bob", "high"],
    ["T1", "3", "1/3/2026 09:00", "Done", "Team B", "cy", "high"],
    ["T2", "1", "1/3/2026 10:10", "Working", "?", "dan", "low"],
    ["T2", "2", "1/3/2026 11:00", "Closed", "?", "dan", "high"],
    ["T2", "0", "1/3/2026 10:00", "New", "?", "dan", "low"],
    ["T3", "0", "2/3/2026 08:00", "New", "Team C", "eve", "low"],
    ["T3", "1", "2/3/2026 08:30", "Done", "Team C", "eve", "low"],
    ["T3", "2", "2/3/2026 09:00", "Working", "Team C", "eve", "low"],
]
TICK = timedelta(microseconds=1)


def utc(day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


# Worked out by hand from LOG_ROWS and the rules of docs/import.md ("Event logs").
LOG_EVENTS = [
    ("T1", utc(1, 0, 0), "raised", "A", "ann"),
    ("T1", utc(1, 0, 5), "acknowledged", "A", "bob"),
    ("T1", utc(1, 0, 5) + TICK, "reassigned", "B", "bob"),  # same minute: a microsecond later
    ("T1", utc(1, 1, 0), "resolved", "B", "cy"),
    ("T2", utc(1, 2, 0), "raised", "NONE", "dan"),  # the order column puts the last row first
    ("T2", utc(1, 2, 10), "acknowledged", "NONE", "dan"),
    ("T2", utc(1, 3, 0), "closed", "NONE", "dan"),  # closed without a resolution
    ("T3", utc(2, 0, 0), "raised", "C", "eve"),
    ("T3", utc(2, 0, 30), "acknowledged", "C", "eve"),
    ("T3", utc(2, 0, 30) + TICK, "resolved", "C", "eve"),
    ("T3", utc(2, 1, 0), "reopened", "C", "eve"),
]
LOG_ISSUES = [  # id, title, severity, owner, status, acknowledged, resolved, closed
    ("T1", "T1 (high)", "P1", "B", "resolved", utc(1, 0, 5), utc(1, 1, 0), None),
    # The issue's own columns come from its last update by the order column, not by the file.
    ("T2", "T2 (high)", "P1", "NONE", "closed", utc(1, 2, 10), None, utc(1, 3, 0)),
    ("T3", "T3 (low)", "P4", "C", "acknowledged", utc(2, 0, 30), None, None),
]


def write_log(tmp_path: Path, rows: list[list], name: str = "log.csv") -> tuple[Path, Path]:
    path = tmp_path / name
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([LOG_HEADER, *rows])
    mapping = tmp_path / "log.yaml"
    mapping.write_text(LOG_MAPPING, encoding="utf-8")
    return path, mapping


def log_contents(engine) -> tuple[list, list]:
    with engine.connect() as conn:
        issues = conn.execute(select(
            Issue.id, Issue.title, Issue.severity, Issue.owner_department_code, Issue.status,
            Issue.acknowledged_at, Issue.resolved_at, Issue.closed_at).order_by(Issue.id)).all()
        events = conn.execute(select(
            IssueEvent.issue_id, IssueEvent.at, IssueEvent.kind, IssueEvent.department_code,
            IssueEvent.actor).order_by(IssueEvent.issue_id, IssueEvent.at)).all()
    return [tuple(r) for r in issues], [tuple(r) for r in events]


def test_a_log_read_in_blocks_and_batches_of_any_size_gives_the_same_rows(engine, tmp_path, monkeypatch):
    """Blocks of two rows split cases T1 and T2 across blocks, batches of three split their
    events across writes: the rows are those worked out by hand, and importing again with the
    usual sizes changes none and adds none."""
    from data.ingest import reading

    path, mapping = write_log(tmp_path, LOG_ROWS)
    monkeypatch.setattr(reading, "BLOCK_ROWS", 2)
    monkeypatch.setattr(importer, "_BATCH_ROWS", 3)
    result = importer.import_file(engine, "event_log", path, mapping)
    assert log_contents(engine) == (LOG_ISSUES, LOG_EVENTS)
    assert (result.rows, result.created) == (3, {"departments": 4, "sla_rules": 1})
    assert {k: v for k, v in result.summary.items()} == {
        "cases": 3, "events": 11, "handoffs": 1, "same_instant": 2, "without_department": 1,
        "closed_without_resolution": 1, "reopened": 1}
    with engine.connect() as conn:
        assert conn.execute(select(Department.code, Department.name_zh, Department.name_en)
                            .order_by(Department.code)).all() == [
            ("A", "组 A", "Team A"), ("B", "组 B", "Team B"), ("C", "组 C", "Team C"),
            ("NONE", "未分派", "Unassigned")]

    monkeypatch.undo()
    again = importer.import_file(engine, "event_log", path, mapping)
    assert log_contents(engine) == (LOG_ISSUES, LOG_EVENTS)
    assert (again.rows, again.summary["events"], again.created) == (3, 11, {"departments": 1, "sla_rules": 1})


BAD_LOG_ROWS = [
    ["T1", "0", "1/3/2026 08:00", "New", "Team A", "ann", "high"],
    ["T1", "1", "31/2/2026 08:05", "Working", "Team A", "bob", "high"],
    ["", "2", "1/3/2026 08:06", "Working", "Team A", "bob", "high"],
    ["T2", "0", "1/3/2026 10:00", "Lost", "?", "dan", "low"],
    ["T2", "x", "1/3/2026 10:10", "Working", "?", "d" * 101, "low"],
    ["T3", "0", "2/3/2026 08:00", "New", "Team C", "eve", "low"],
]
BAD_LOG_PROBLEMS = [
    (3, "when", "not a date/time in the format 'd/m/yyyy HH:MM': '31/2/2026 08:05'"),
    (4, "ticket", "a value is required"),
    (5, "state", "'Lost' is not in the mapping's event_log.states; map it (to ignore, if it means nothing)"),
    (6, "step", "not a number: 'x'"),
    (6, "who", "longer than 100 characters (101)"),
]


@pytest.mark.parametrize("block_rows", [2, 4096])
def test_every_problem_of_a_log_is_listed_in_file_order_and_nothing_is_written(
        engine, tmp_path, monkeypatch, block_rows):
    from data.ingest import reading

    monkeypatch.setattr(reading, "BLOCK_ROWS", block_rows)
    path, mapping = write_log(tmp_path, BAD_LOG_ROWS)
    with pytest.raises(importer.ImportRejected) as caught:
        importer.import_file(engine, "event_log", path, mapping)
    assert str(caught.value).splitlines() == [
        f"log.csv row {row}, column {column}: {reason}" for row, column, reason in BAD_LOG_PROBLEMS
    ] + ["5 problems in all"]
    with engine.connect() as conn:
        assert [conn.scalar(select(func.count()).select_from(model))
                for model in (Issue, IssueEvent, Department, SlaRule)] == [0, 0, 0, 0]


@pytest.mark.parametrize("block_rows", [2, 4096])
def test_skip_invalid_imports_the_good_rows_of_a_log_and_writes_the_bad_ones(
        engine, tmp_path, monkeypatch, block_rows):
    """T1 keeps its good first row (raised, still open), T2 has none left, T3 is whole; the
    rejects file holds each bad row as read, with its problems, ready to be corrected."""
    from data.ingest import reading

    monkeypatch.setattr(reading, "BLOCK_ROWS", block_rows)
    path, mapping = write_log(tmp_path, BAD_LOG_ROWS)
    rejects = tmp_path / "log.rejects.csv"
    result = importer.import_file(engine, "event_log", path, mapping, skip_invalid=True, rejects=rejects)
    assert (result.rows, result.skipped, result.rejects_file) == (2, 4, str(rejects))
    issues, events = log_contents(engine)
    assert [(i[0], i[4]) for i in issues] == [("T1", "open"), ("T3", "open")]
    assert [(e[0], e[2]) for e in events] == [("T1", "raised"), ("T3", "raised")]
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["row", "problems", *LOG_HEADER],
            ["3", f"when: {BAD_LOG_PROBLEMS[0][2]}", *BAD_LOG_ROWS[1]],
            ["4", f"ticket: {BAD_LOG_PROBLEMS[1][2]}", *BAD_LOG_ROWS[2]],
            ["5", f"state: {BAD_LOG_PROBLEMS[2][2]}", *BAD_LOG_ROWS[3]],
            ["6", f"step: {BAD_LOG_PROBLEMS[3][2]}; who: {BAD_LOG_PROBLEMS[4][2]}", *BAD_LOG_ROWS[4]],
        ]


@pytest.mark.parametrize("skip_invalid", [False, True])
def test_a_case_whose_rows_are_apart_is_refused_where_it_comes_back(engine, tmp_path, monkeypatch, skip_invalid):
    """The log is read case by case: a case met again after another is refused at once, even
    in a later block, and nothing is written."""
    from data.ingest import reading

    monkeypatch.setattr(reading, "BLOCK_ROWS", 2)
    rows = [LOG_ROWS[0], LOG_ROWS[1], LOG_ROWS[7], LOG_ROWS[8], LOG_ROWS[2]]
    path, mapping = write_log(tmp_path, rows)
    with pytest.raises(importer.ImportRejected) as caught:
        importer.import_file(engine, "event_log", path, mapping, skip_invalid=skip_invalid,
                             rejects=tmp_path / "r.csv")
    assert str(caught.value) == (
        "log.csv row 6, column ticket: the rows of case 'T1' are not together: it appeared "
        "earlier in the file; sort the log by case (any order within a case) and import it again")
    assert log_contents(engine) == ([], [])


@pytest.mark.parametrize("failing_batch", ["first", "last"])
def test_a_write_that_fails_fails_the_import_and_leaves_nothing(engine, tmp_path, monkeypatch, failing_batch):
    """On PostgreSQL the batches are written on a thread of their own: its failure, in a batch
    that others follow or in the last, is the import's, the transaction is rolled back, and
    the thread has stopped."""
    import threading

    from data import store

    written = store.upsert_many

    def failing(conn, model, columns, rows, **kwargs):
        if model is IssueEvent and (rows if failing_batch == "first" else kwargs["statistics"]):
            raise RuntimeError("the disk is full")
        written(conn, model, columns, rows, **kwargs)

    monkeypatch.setattr(store, "upsert_many", failing)
    monkeypatch.setattr(importer, "_BATCH_ROWS", 3)
    path, mapping = write_log(tmp_path, LOG_ROWS)
    with pytest.raises(RuntimeError, match="the disk is full"):
        importer.import_file(engine, "event_log", path, mapping)
    assert log_contents(engine) == ([], [])
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Department)) == 0
    assert not [t for t in threading.enumerate() if t.name == "import-writer"]


def test_progress_shows_on_a_terminal_and_stays_quiet_in_scripts(engine, tmp_path, monkeypatch):
    import io

    from data.ingest import reading
    from data.ingest.progress import Progress

    monkeypatch.setattr(reading, "BLOCK_ROWS", 4)
    path, mapping = write_log(tmp_path, LOG_ROWS)
    terminal = io.StringIO()
    importer.import_file(engine, "event_log", path, mapping,
                         progress=Progress(terminal, enabled=True, after_s=0, every_s=0))
    shown = terminal.getvalue().split("\r")
    assert [line.split(" rows read")[0] for line in shown[1:]] == ["4", "8", "10"]
    assert shown[-1].endswith("\n")
    script = io.StringIO()
    importer.import_file(engine, "event_log", path, mapping, progress=Progress(script))
    assert script.getvalue() == ""


def test_a_created_row_is_named_by_the_first_text_that_made_its_code(engine, tmp_path):
    """Teams written two ways become one department each, named as the file first wrote it."""
    mapping_text = LOG_MAPPING.replace(r"'^Team (\w+)$'", r"'^(?i:team) (\w+)$'")
    teams = "ABCDEFGH"
    rows = [[f"T{n}", "0", "1/3/2026 08:00", "New", f"Team {team}", "ann", "low"] for n, team in enumerate(teams)]
    rows += [[f"U{n}", "0", "1/3/2026 08:00", "New", f"TEAM {team}", "ann", "low"] for n, team in enumerate(teams)]
    path, mapping = write_log(tmp_path, rows)
    mapping.write_text(mapping_text, encoding="utf-8")
    importer.import_file(engine, "event_log", path, mapping)
    with engine.connect() as conn:
        assert conn.execute(select(Department.code, Department.name_en).where(Department.code != "NONE")
                            .order_by(Department.code)).all() == [(team, f"Team {team}") for team in teams]


def test_updates_ahead_of_the_clock_are_imported_and_counted(engine, tmp_path):
    rows = [["T1", "0", "1/3/2016 08:00", "New", "Team A", "ann", "low"],
            ["T1", "1", "1/3/2099 08:00", "Working", "Team A", "bob", "low"],
            ["T2", "0", "1/3/2016 08:00", "New", "Team A", "ann", "low"]]
    path, mapping = write_log(tmp_path, rows)
    result = importer.import_file(engine, "event_log", path, mapping)
    assert (result.rows, result.summary["events"], result.future) == (2, 3, 1)


def test_the_reader_s_checks_hold_for_an_event_log(engine, tmp_path):
    """Cells too long or holding a NUL are refused by the reader (an event log's texts are
    not checked again), and a row whose mapped cells are empty but another is not is no
    blank row."""
    rows = [["T1", "0", "1/3/2026 08:00", "New" + "x" * 140_000, "Team A", "ann", "low"],
            ["T1", "1", "1/3/2026 08:05", "Working", "Team A", "b\x00b", "low"],
            ["", "", "", "", "", "", "", "just a remark"]]
    path, mapping = write_log(tmp_path, rows)
    text = path.read_text(encoding="utf-8").replace("prio\n", "prio,remark\n", 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(importer.ImportRejected) as caught:
        importer.import_file(engine, "event_log", path, mapping)
    assert str(caught.value).splitlines() == [
        "log.csv row 2, column state: longer than 131,072 characters (140,003)",
        "log.csv row 2, column state: a value is required",
        "log.csv row 3, column who: contains a NUL character",
        "log.csv row 4, column ticket: a value is required",
        "log.csv row 4, column when: a value is required",
        "log.csv row 4, column state: a value is required",
        "6 problems in all"]
