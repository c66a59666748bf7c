"""One implausible row never takes the wall down: it is left out of every frame, counted as a
data error, and every other figure stays what it is without it, on the full load, when
followed, and in the `kpis` report."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import delete, insert, select

from data import cache, db, demo, queries, store, timezones, wall
from data.models import Issue, IssueEvent, Movement, SlaRule
from data.reports.kpi_report import kpi_report
from data.wall import screens

from test_wall_state import live_changes

ROOT = Path(__file__).resolve().parent.parent
END = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)   # 10:00 in Shanghai
LATER = END + timedelta(minutes=10)
SCOPES = [{}, {"department": "QA"}, {"line": "L2"}]
BAD_ISSUES = ("BAD-3026", "BAD-1000", "BAD-LIMIT", "BAD-LIMIT-OLD", "BAD-LIMIT-CANCELLED")
BAD_EVENTS = (9_000_001, 9_000_002)
BAD_MOVES = ("BAD-M-1000", "BAD-M-3026")


def _issue(issue_id: str, raised_at: datetime, issue_type: str = "quality_anomaly", **changed) -> dict:
    return {"id": issue_id, "issue_type": issue_type, "title": "录入错误", "severity": "P2",
            "location_code": "L2-ST1", "raised_at": raised_at, "owner_department_code": "QA",
            "status": "open", "resolved_at": None, "updated_at": timezones.utc_now(), **changed}


def _move(move_id: str, at: datetime) -> dict:
    return {"id": move_id, "at": at, "material_code": "M-1001", "lot": move_id, "qty": 100_000.0,
            "from_location_code": "SUP-HL", "to_location_code": "WH-RM",
            "recorded_at": timezones.utc_now()}


def poison_before_load(engine) -> None:
    """Rows as a careless import would write them: an issue dated 3026, an SLA rule of
    999999999 minutes with an issue of its type, an event dated 3026 of an issue of the
    week and a plausible event of the issue dated 3026 (these past data/store.py), and a
    movement dated in the year 1000 (through it, so the kept lot balances hold it)."""
    with engine.begin() as conn:
        conn.execute(insert(SlaRule).values(
            issue_type="typo_limit", name_zh="错误时限", name_en="Typo limit",
            owner_department_code="QA", notify_department_codes="", ack_minutes=999999999,
            resolve_minutes=999999999))
        conn.execute(insert(Issue), [_issue("BAD-3026", datetime(3026, 1, 1, tzinfo=timezone.utc)),
                                     _issue("BAD-LIMIT", END - timedelta(hours=2), "typo_limit")])
        week_issue = conn.execute(select(Issue.id, Issue.owner_department_code)
                                  .where(Issue.raised_at >= END - timedelta(days=2))
                                  .order_by(Issue.id).limit(1)).one()
        conn.execute(insert(IssueEvent), [
            {"id": 9_000_001, "issue_id": week_issue.id, "at": datetime(3026, 1, 1, tzinfo=timezone.utc),
             "kind": "commented", "department_code": "PRD", "recorded_at": timezones.utc_now()},
            {"id": 9_000_002, "issue_id": "BAD-3026", "at": END - timedelta(hours=1),
             "kind": "commented", "department_code": "QA", "recorded_at": timezones.utc_now()}])
    with db.session_scope(engine) as s:
        store.record_movements(s, [_move("BAD-M-1000", datetime(1000, 1, 1, tzinfo=timezone.utc))])


def poison_while_following(engine) -> None:
    """Rows the follower reads as written: an issue raised in the year 1000, a movement
    dated 3026, and two issues of the 999999999-minute rule that no window counts (one
    resolved long ago, one cancelled), so no error either."""
    long_ago = END - timedelta(days=60)
    with engine.begin() as conn:
        conn.execute(insert(Issue), [
            _issue("BAD-1000", datetime(1000, 1, 1, tzinfo=timezone.utc)),
            _issue("BAD-LIMIT-OLD", long_ago, "typo_limit", status="resolved",
                   resolved_at=long_ago + timedelta(days=1)),
            _issue("BAD-LIMIT-CANCELLED", long_ago, "typo_limit", status="cancelled")])
        conn.execute(insert(Movement).values(_move("BAD-M-3026", datetime(3026, 1, 1, tzinfo=timezone.utc))))


def remove_poison(engine) -> None:
    """The poisoned rows deleted (the SLA rule stays: its name is no figure)."""
    with engine.begin() as conn:
        conn.execute(delete(IssueEvent).where(IssueEvent.id.in_(BAD_EVENTS)))
        conn.execute(delete(Issue).where(Issue.id.in_(BAD_ISSUES)))
        conn.execute(delete(Movement).where(Movement.id.in_(BAD_MOVES)))
        store.refresh_lot_stock(conn, BAD_MOVES)


@pytest.fixture
def plant(engine):
    demo.build_demo_plant(engine, days=14, seed=3, end=END)
    return engine


@pytest.fixture
def small_plant(engine):
    demo.build_demo_plant(engine, days=3, seed=3, end=END)
    return engine


@pytest.fixture
def wall_server(monkeypatch, tmp_path):
    """The shared cache in files of its own, a fresh set of followers, and the snapshot
    instant under the test's control."""
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CACHE_KEY_PREFIX", f"floorlink-test-{uuid.uuid4().hex[:8]}:")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(screens, "_states", {})
    clock = {"as_of": END}
    monkeypatch.setattr(screens, "snapshot_instant", lambda now, refresh_s: clock["as_of"])
    server = Flask("bounds-test")
    cache.init_app(server)
    with server.app_context():
        yield clock


def screen_snapshots(url: str) -> list[dict]:
    return ([screens.overview_for_screen(url, **scope) for scope in SCOPES]
            + [screens.material_for_screen(url, line=line) for line in (None, "L2")])


def full_snapshots(engine, as_of: datetime) -> list[dict]:
    with engine.connect() as conn:
        return ([wall.overview_snapshot(conn, as_of, **scope) for scope in SCOPES]
                + [wall.material_snapshot(conn, as_of, line=line) for line in (None, "L2")])


def without_errors(snapshot: dict) -> dict:
    return {k: v for k, v in snapshot.items() if k != "data_errors"}


def test_implausible_rows_are_left_out_counted_and_change_nothing_else(plant, db_url, wall_server):
    poison_before_load(plant)
    loaded = screen_snapshots(db_url)                        # the first, full load
    assert loaded == full_snapshots(plant, END)
    errors = loaded[0]["data_errors"]
    assert errors["count"] == 4
    assert [(e["table"], e["key"], e["column"]) for e in errors["examples"]] == [
        ("issue_events", "9000001", "at"), ("issues", "BAD-3026", "raised_at"),
        ("issues", "BAD-LIMIT", "ack_minutes"), ("movements", "BAD-M-1000", "at")]
    assert errors["examples"][1]["value"] == "3026-01-01T00:00:00+00:00"
    assert errors["examples"][1]["reason"] == "raised_at not before PLAUSIBLE_UNTIL (2100-01-01)"
    assert errors["examples"][2]["value"] == "999999999"
    assert all(s["data_errors"] == errors for s in loaded)      # site-wide, on every scope

    live_changes(plant, END + timedelta(minutes=1))
    poison_while_following(plant)
    wall_server["as_of"] = LATER
    followed = screen_snapshots(db_url)                      # followed, not reloaded
    assert followed == full_snapshots(plant, LATER)
    assert followed[0]["data_errors"]["count"] == 6
    assert followed[0]["failed_panels"] == [] and followed[3]["failed_panels"] == []
    assert any(row["id"] == "LIVE-1" for row in followed[0]["board"])

    remove_poison(plant)
    clean = full_snapshots(plant, LATER)
    assert [without_errors(s) for s in followed] == [without_errors(s) for s in clean]
    assert clean[0]["data_errors"] == {"count": 0, "examples": []}


def test_a_row_corrected_is_taken_back_and_a_row_spoilt_is_left_out(plant, db_url, wall_server):
    poison_before_load(plant)
    loaded = screen_snapshots(db_url)
    spoilt = loaded[0]["board"][0]["id"]
    with plant.begin() as conn:
        conn.execute(Issue.__table__.update().where(Issue.id == "BAD-3026").values(
            raised_at=END - timedelta(minutes=30), updated_at=timezones.utc_now()))
        conn.execute(Issue.__table__.update().where(Issue.id == spoilt).values(
            acknowledged_at=datetime(3026, 1, 1, tzinfo=timezone.utc), updated_at=timezones.utc_now()))
    wall_server["as_of"] = LATER
    followed = screen_snapshots(db_url)
    assert followed == full_snapshots(plant, LATER)
    assert followed[0]["data_errors"]["count"] == 4
    assert {"BAD-3026"} == {row["id"] for row in followed[0]["board"]} - {row["id"] for row in loaded[0]["board"]}
    assert spoilt not in {row["id"] for row in followed[0]["board"]}


def test_the_kpis_command_and_report_leave_them_out_likewise(plant, db_url):
    poison_before_load(plant)
    poison_while_following(plant)
    done = subprocess.run(
        [sys.executable, "app.py", "kpis", "--until", "2026-11-20T10:00", "--as-of", "2026-11-20T10:00",
         "--json"], cwd=ROOT, env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "left out" in done.stderr
    window = {"since": END - timedelta(days=7), "until": END, "as_of": END}
    poisoned = kpi_report(plant, **window)
    assert json.loads(done.stdout) == json.loads(json.dumps(poisoned))
    remove_poison(plant)
    assert poisoned == kpi_report(plant, **window)


def test_loaders_log_and_hand_back_what_they_leave_out(small_plant, caplog):
    plant = small_plant
    poison_before_load(plant)
    left_out: list[queries.LeftOut] = []
    with plant.connect() as conn:
        frame = queries.issues_in_play(conn, END - timedelta(days=31), END - timedelta(days=1),
                                       left_out=left_out)
    assert not set(frame["id"]) & set(BAD_ISSUES)
    assert sorted(left.key for left in left_out) == ["BAD-3026", "BAD-LIMIT"]
    assert "ack_minutes of its SLA rule above MAX_LIMIT_MINUTES (525600)" in caplog.text


def test_the_bounds_are_from_inclusive_until_exclusive(small_plant, monkeypatch):
    monkeypatch.setenv("PLAUSIBLE_FROM", "2026-11-19 10:00")
    monkeypatch.setenv("PLAUSIBLE_UNTIL", "2026-11-20 09:00")
    with small_plant.begin() as conn:
        conn.execute(insert(Issue), [
            _issue("EDGE-FROM", datetime(2026, 11, 19, 2, 0, tzinfo=timezone.utc)),
            _issue("EDGE-UNTIL", datetime(2026, 11, 20, 1, 0, tzinfo=timezone.utc))])
    left_out: list[queries.LeftOut] = []
    with small_plant.connect() as conn:
        frame = queries.issues_in_play(conn, END - timedelta(days=31), END - timedelta(days=1),
                                       left_out=left_out)
    assert "EDGE-FROM" in set(frame["id"]) and "EDGE-UNTIL" not in set(frame["id"])
    edges = {left.key: left.reason for left in left_out if left.key.startswith("EDGE")}
    assert edges == {"EDGE-UNTIL": "raised_at not before PLAUSIBLE_UNTIL (2026-11-20 09:00)"}


def test_bounds_are_settings(small_plant, monkeypatch):
    plant = small_plant
    poison_before_load(plant)
    monkeypatch.setenv("PLAUSIBLE_UNTIL", "3100-01-01")
    with pytest.raises(ValueError, match="PLAUSIBLE_UNTIL"):
        queries.plausible()
    monkeypatch.setenv("PLAUSIBLE_UNTIL", "2100-01-01")
    monkeypatch.setenv("MAX_LIMIT_MINUTES", "1000000000")
    left_out: list[queries.LeftOut] = []
    with plant.connect() as conn:
        queries.issues_in_play(conn, END - timedelta(days=31), END - timedelta(days=1),
                               left_out=left_out)
    assert [left.key for left in left_out] == ["BAD-3026"]

