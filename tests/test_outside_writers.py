"""A program other than FloorLink writing the canonical tables with plain SQL, without
FloorLink's stamps, is seen by a following wall exactly as a full read and `kpis` see it
(migration 0006, docs/outside-writers.md)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from bench.outside_writer import WriterProcess
from data import db, demo, kpis, queries, store, timezones, wall
from data.models import Issue, LotStock, Movement
from data.wall.follower import IssueFollower, WallState

END = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)   # 10:00 in Shanghai
RAISED = END + timedelta(minutes=1)
ACKNOWLEDGED = END + timedelta(minutes=4)

INSERT_ISSUE = ("INSERT INTO issues (id, issue_type, title, severity, raised_at, "
                "owner_department_code, status) VALUES ('OUT-1', 'quality_anomaly', "
                "'<b>毛刺</b>', 'P1', '{raised}', 'QA', 'open')")
ACKNOWLEDGE = ("UPDATE issues SET acknowledged_at = '{acknowledged}', status = 'acknowledged' "
               "WHERE id = 'OUT-1'")


def stored(instant: datetime) -> str:
    """An instant as an outside program writes it: UTC, naive, UtcDateTime's text."""
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


STATEMENTS = [INSERT_ISSUE.format(raised=stored(RAISED)),
              ACKNOWLEDGE.format(acknowledged=stored(ACKNOWLEDGED))]


@pytest.fixture
def plant(engine):
    demo.build_demo_plant(engine, days=3, seed=11, end=END)
    return engine


@pytest.fixture
def loads(monkeypatch):
    """The full loads of every WallState: a followed change must not need one."""
    done = []
    full_load = WallState._load
    monkeypatch.setattr(WallState, "_load", lambda self, *a: done.append(1) or full_load(self, *a))
    return done


def followed(engine, state: WallState, as_of: datetime) -> dict:
    """The overview from the followed frames, after checking it against a full read."""
    with engine.connect() as conn:
        frames = state.frames(conn, as_of)
        overview = wall.overview_from_frames(frames, as_of)
        material = wall.material_from_frames(frames, conn, as_of)
    with engine.connect() as conn:
        assert overview == wall.overview_snapshot(conn, as_of)
        assert material == wall.material_snapshot(conn, as_of)
    return overview


def open_issue_ids(engine, as_of: datetime) -> set:
    """The open issues as the KPI rules see them (`python app.py kpis`)."""
    with engine.connect() as conn:
        issues = queries.open_issues(conn, as_of)
    return set(issues.loc[kpis.open_mask(issues, as_of), "id"])


def run_elsewhere(db_url: str, statements: list[str]) -> None:
    """The statements, committed by another process through the plain database driver."""
    if db_url.startswith("sqlite"):
        connect = f"import sqlite3; conn = sqlite3.connect({db_url.split(':///', 1)[1]!r})"
    else:
        connect = f"import psycopg; conn = psycopg.connect({db_url.replace('+psycopg', '')!r})"
    script = textwrap.dedent(f"""
        {connect}
        for statement in {statements!r}:
            conn.execute(statement)
        conn.commit()
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def board_row(overview: dict) -> dict | None:
    return next((row for row in overview["board"] if row["id"] == "OUT-1"), None)


def assert_raised_then_acknowledged(engine, state: WallState, write) -> None:
    before = followed(engine, state, END)
    assert board_row(before) is None
    write(STATEMENTS[:1])
    raised = followed(engine, state, END + timedelta(minutes=2))
    row = board_row(raised)
    assert row is not None and row["title"] == "<b>毛刺</b>"
    assert row["acknowledged_ms"] is None
    assert "OUT-1" in open_issue_ids(engine, END + timedelta(minutes=2))
    write(STATEMENTS[1:])
    acknowledged = followed(engine, state, END + timedelta(minutes=5))
    assert board_row(acknowledged)["acknowledged_ms"] == int(ACKNOWLEDGED.timestamp() * 1000)


def test_an_issue_inserted_and_acknowledged_from_another_connection_is_followed(plant, loads):
    state = WallState()

    def write(statements):
        with plant.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))

    assert_raised_then_acknowledged(plant, state, write)
    assert loads == [1]


def test_an_issue_inserted_and_acknowledged_by_another_process_is_followed(plant, db_url, loads):
    state = WallState()
    assert_raised_then_acknowledged(plant, state, lambda statements: run_elsewhere(db_url, statements))
    assert loads == [1]


def test_outside_rows_get_the_database_clock_and_ours_keep_their_own(plant, monkeypatch):
    before = datetime.now(timezone.utc)
    with plant.begin() as conn:
        conn.execute(text(STATEMENTS[0]))
    with db.session_scope(plant) as s:
        outside = s.get(Issue, "OUT-1").updated_at
    assert before - timedelta(seconds=1) <= outside <= datetime.now(timezone.utc)
    ours = iter([datetime(2026, 11, 20, 2, 3, 4, 567891, tzinfo=timezone.utc),
                 datetime(2026, 11, 20, 2, 5, 6, 789123, tzinfo=timezone.utc)])
    monkeypatch.setattr(timezones, "utc_now", lambda: next(ours))
    with db.session_scope(plant) as s:
        store.raise_issue(s, issue_id="OURS-1", issue_type="quality_anomaly", title="毛刺",
                          severity="P2", at=RAISED)
    with db.session_scope(plant) as s:
        store.acknowledge(s, "OURS-1", ACKNOWLEDGED)
    with db.session_scope(plant) as s:
        assert s.get(Issue, "OURS-1").updated_at == datetime(2026, 11, 20, 2, 5, 6, 789123,
                                                             tzinfo=timezone.utc)


def test_a_movement_inserted_from_outside_moves_its_lot(plant, loads):
    state = WallState()
    followed(plant, state, END)
    with plant.connect() as conn:
        lot = conn.execute(
            select(Movement.lot, Movement.material_code, Movement.to_location_code)
            .where(Movement.to_location_code == "IQC-01")
            .order_by(Movement.at.desc(), Movement.id).limit(1)).one()
        before = {(r.location_code, r.qty) for r in conn.execute(
            select(LotStock).where(LotStock.lot == lot.lot))}
    moved_at = END + timedelta(minutes=2)
    for move, at in (("OUT-M1", END + timedelta(minutes=1)), ("OUT-M2", moved_at)):
        with plant.begin() as conn:
            conn.execute(text(
                "INSERT INTO movements (id, at, material_code, lot, qty, from_location_code, "
                "to_location_code) VALUES (:id, :at, :material, :lot, 1.0, 'IQC-01', 'WH-RM')"),
                {"id": move, "at": stored(at), "material": lot.material_code, "lot": lot.lot})
    followed(plant, state, END + timedelta(minutes=3))
    with plant.connect() as conn:
        lots = state.frames(conn, END + timedelta(minutes=3)).lots
    arrived = lots[(lots["lot"] == lot.lot) & (lots["location_code"] == "WH-RM")]
    assert arrived["qty"].tolist() == [2.0]
    assert arrived["last_in_at"].tolist() == [moved_at]
    assert loads == [1]
    with plant.connect() as conn:
        kept = {(r.location_code, r.qty) for r in conn.execute(
            select(LotStock).where(LotStock.lot == lot.lot))}
    iqc = dict(before)["IQC-01"]
    assert iqc > 2.0
    assert kept == {("IQC-01", iqc - 2.0), ("WH-RM", 2.0)} \
        | {(loc, qty) for loc, qty in before if loc != "IQC-01"}
    # What the trigger kept is what the write path would have recomputed.
    with plant.begin() as conn:
        store.rebuild_lot_stock(conn)
        rebuilt = {(r.location_code, r.qty) for r in conn.execute(
            select(LotStock).where(LotStock.lot == lot.lot))}
    assert rebuilt == kept


def test_a_renamed_department_reloads_the_wall(plant, loads):
    state = WallState()
    followed(plant, state, END)
    with plant.begin() as conn:
        conn.execute(text("UPDATE departments SET name_en = 'Quality Assurance' WHERE code = 'QA'"))
    overview = followed(plant, state, END + timedelta(minutes=1))
    assert overview["names"]["departments"]["QA"]["name_en"] == "Quality Assurance"
    assert loads == [1, 1]


def open_demo_issue(engine) -> str:
    """An issue of the demo plant still open, not acknowledged, raised before END."""
    with engine.connect() as conn:
        return conn.execute(select(Issue.id).where(
            Issue.status == "open", Issue.raised_at < END).order_by(Issue.id).limit(1)).scalar_one()


def acknowledge(issue_id: str) -> str:
    return (f"UPDATE issues SET acknowledged_at = '{stored(ACKNOWLEDGED)}', "
            f"status = 'acknowledged' WHERE id = '{issue_id}'")


@pytest.mark.parametrize("change", ["inserted", "acknowledged after being read", "older acknowledged"])
def test_an_issue_written_without_an_event_that_commits_after_a_read_passed_its_stamp(
        plant, loads, change):
    """Another program stamps an issue in one transaction and commits only after the wall's
    read passed the stamp: the next read sees it, with no full reload."""
    state = WallState()
    followed(plant, state, END)
    if change == "inserted":
        issue_id, statement = "OUT-1", STATEMENTS[0]
    elif change == "acknowledged after being read":
        with plant.begin() as conn:
            conn.execute(text(STATEMENTS[0]))
        assert board_row(followed(plant, state, END + timedelta(minutes=2))) is not None
        issue_id, statement = "OUT-1", STATEMENTS[1]
    else:
        issue_id = open_demo_issue(plant)
        statement = acknowledge(issue_id)
    writer = plant.connect()
    try:
        transaction = writer.begin()
        writer.execute(text(statement))
        stamp = writer.execute(select(Issue.updated_at).where(Issue.id == issue_id)).scalar_one()
        # The read passes the stamp while the change is not committed: the wall cannot see it.
        before = followed(plant, state, END + timedelta(minutes=3))
        assert stamp < state._watermark
        assert issue_id not in {row["id"] for row in before["board"] if row["acknowledged_ms"]}
        transaction.commit()
    finally:
        writer.close()
    after = followed(plant, state, END + timedelta(minutes=5))
    row = next(row for row in after["board"] if row["id"] == issue_id)
    expected_ack = None if change == "inserted" else int(ACKNOWLEDGED.timestamp() * 1000)
    assert row["acknowledged_ms"] == expected_ack
    assert loads == [1]


def test_a_refresh_takes_again_only_the_issues_whose_stamp_it_has_not_read(plant, monkeypatch):
    """Rows that commit at once cost no look into the overlap: the count and the sum of the
    issues' stamps there (FloorLink's to the microsecond, the database's to the millisecond)
    equal what was read, so no stamp is read one by one and no issue taken twice."""
    state = WallState()
    followed(plant, state, END)
    taken, looked = [], []
    follow = IssueFollower.follow
    monkeypatch.setattr(IssueFollower, "follow", lambda self, issues, *a: taken.append(
        set(issues["id"])) or follow(self, issues, *a))
    stamps = queries.issue_stamps
    monkeypatch.setattr(queries, "issue_stamps", lambda *a: looked.append(1) or stamps(*a))
    # Every issue of the demo plant was stamped moments ago, inside the overlap: the full
    # load remembered their stamps, so a refresh with nothing written takes none again.
    followed(plant, state, END + timedelta(minutes=1))
    assert taken == [set()]
    for minute, statement in ((2, STATEMENTS[0]), (3, STATEMENTS[1])):
        with plant.begin() as conn:
            conn.execute(text(statement))
        followed(plant, state, END + timedelta(minutes=minute))
        assert taken[-1] == {"OUT-1"}
    followed(plant, state, END + timedelta(minutes=4))
    assert taken[-1] == set()
    assert looked == []
    # A read takes the rows committed by the time it runs, some stamped after the watermark
    # it took first: the next read, from that watermark, reads OUT-1 again but takes it no more.
    state._watermark -= timedelta(seconds=10)
    followed(plant, state, END + timedelta(minutes=5))
    assert taken[-1] == set()


def test_the_wall_equals_a_full_read_and_the_kpis_after_a_mix_of_writers(plant, db_url, loads):
    """Another program's batches (issues with their raised events, acknowledgements and
    resolutions by UPDATE without an event, comments, lots moving, all in its own process
    with plain SQL) between
    FloorLink's own writes: every followed refresh is a full read's, and counts the open
    issues the KPI rules count."""
    state = WallState()
    followed(plant, state, END)
    writer = WriterProcess(db_url, rows=200, transactions=4)
    try:
        for minute in range(1, 4):
            at = END + timedelta(minutes=minute)
            writer.start_batch(at)
            done = writer.batch_done()
            assert done["rows"] == 200 and done["movements"] > 0
            with db.session_scope(plant) as s:
                store.raise_issue(s, issue_id=f"OURS-{minute}", issue_type="quality_anomaly",
                                  title="毛刺", severity="P2", at=at - timedelta(seconds=30))
            overview = followed(plant, state, at + timedelta(seconds=30))
            assert overview["tiles"]["open"]["value"] == len(open_issue_ids(plant, at + timedelta(seconds=30)))
    finally:
        writer.stop()
    assert done["acknowledgements"] > 0 and done["resolutions"] > 0 and done["comments"] > 0
    assert loads == [1]


def test_an_event_another_program_adds_to_an_older_issue_alone_is_followed(plant, loads):
    """A hand-off and its return written as events only (the owner is the same after them,
    so the program leaves the issue's row alone) to an issue raised before the events the
    wall keeps: the wall reads the issue's history again and marks it ping-pong."""
    later = END + timedelta(days=9)
    state = WallState()
    followed(plant, state, later)
    row = next(r for r in followed(plant, state, later + timedelta(minutes=20))["board"]
               if not r["ping_pong"])
    assert row["raised_ms"] < (later - timedelta(days=8)).timestamp() * 1000
    with plant.connect() as conn:
        owner, other = conn.execute(select(Issue.owner_department_code).where(Issue.id == row["id"])) \
            .scalar_one(), "ENG"
    with plant.begin() as conn:
        for minutes, department in ((21, other), (22, owner)):
            conn.execute(text(
                "INSERT INTO issue_events (issue_id, at, kind, department_code, actor) "
                "VALUES (:issue, :at, 'reassigned', :department, 'mes')"),
                {"issue": row["id"], "at": stored(later + timedelta(minutes=minutes)),
                 "department": department})
    after = followed(plant, state, later + timedelta(minutes=30))
    assert next(r for r in after["board"] if r["id"] == row["id"])["ping_pong"]
    assert loads == [1]
