"""The wall's rules against hand-computed cases: the collaboration star, "vs yesterday" at the
same time of day, the shortage rule, whom to call and ping-pong on the board, lists with
their totals, one failing part of a snapshot, scopes checked before anything is computed,
and an empty database."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from flask import Flask

from data import cache, db, store, wall
from data.models import Person
from data.wall import material, overview, screens
from data.wall.follower import WallState

from test_wall import AS_OF, minutes_before, plant, raise_  # noqa: F401 - plant is a fixture


def row(code: str, raised: int, median: float | None, sla: float | None) -> dict:
    return {"department_code": code, "raised": raised, "median_response_min": median,
            "response_sla_compliance": sla}


# ---- the collaboration star ------------------------------------------------------------

def test_star_needs_the_minimum_of_issues_and_an_sla_that_is_not_red():
    star, reason = overview._star([
        row("PRD", 4, 2.0, 1.0),       # fastest, but one issue short of the minimum
        row("WH", 9, 3.0, 0.74),       # red: below 0.75
        row("QA", 5, 10.0, 0.75),      # exactly the minimum; amber, not red
        row("ENG", 7, 12.0, 1.0),
    ])
    assert star == "QA"
    assert reason == {"department_code": "QA", "raised": 5, "median_response_min": 10.0,
                      "response_sla_compliance": 0.75, "tied_with": [], "min_issues": 5}


def test_star_ties_go_to_higher_sla_then_more_issues_then_the_code():
    assert overview._star([row("QA", 6, 8.0, 0.9), row("WH", 6, 8.0, 0.95)])[0] == "WH"
    assert overview._star([row("QA", 6, 8.0, 0.9), row("WH", 7, 8.0, 0.9)])[0] == "WH"
    star, reason = overview._star([row("WH", 6, 8.0, 0.9), row("ENG", 6, 8.0, 0.9),
                                   row("QA", 6, 9.0, 1.0)])
    assert star == "ENG" and reason["tied_with"] == ["WH"]


def test_no_star_when_no_department_qualifies(monkeypatch):
    assert overview._star([row("QA", 5, None, None), row("WH", 4, 1.0, 1.0),
                           row("PRD", 8, 5.0, 0.5)]) == (None, None)
    monkeypatch.setenv("STAR_MIN_ISSUES", "6")
    assert overview._star([row("QA", 5, 10.0, 1.0)]) == (None, None)


def test_the_snapshot_says_who_earned_the_star_and_why(plant):
    with db.session_scope(plant) as s:
        for n in range(5):
            raise_(s, f"Q{n}", "quality_anomaly", 100 + n)
            raise_(s, f"W{n}", "material_shortage", 100 + n)
    with db.session_scope(plant) as s:
        for n, minutes in enumerate((2, 3, 4, 5, 6)):            # QA: median 4, all met
            store.acknowledge(s, f"Q{n}", minutes_before(100 + n - minutes))
        for n, minutes in enumerate((1, 1, 1, 30, 30)):          # WH: median 1, 3 of 5 met
            store.acknowledge(s, f"W{n}", minutes_before(100 + n - minutes))
    with plant.connect() as conn:
        snap = wall.overview_snapshot(conn, AS_OF)
    assert snap["star"] == "QA"
    assert snap["star_reason"] == {"department_code": "QA", "raised": 5,
                                   "median_response_min": pytest.approx(4.0),
                                   "response_sla_compliance": 1.0, "tied_with": [],
                                   "min_issues": 5}
    assert {r["department_code"] for r in snap["scoreboard"]} == {"PRD", "QA", "WH"}


# ---- vs yesterday, at the same time of day ---------------------------------------------

def test_yesterday_is_up_to_the_same_time_of_day_as_known_then(plant):
    day = 24 * 60
    with db.session_scope(plant) as s:
        raise_(s, "Y1", "quality_anomaly", day + 60)     # yesterday 09:00
        raise_(s, "Y2", "quality_anomaly", day + 10)     # yesterday 09:50
        raise_(s, "Y3", "quality_anomaly", day - 60)     # yesterday 11:00: after this time of day
    with db.session_scope(plant) as s:
        store.acknowledge(s, "Y1", minutes_before(day + 55))         # 5 min: met
        store.resolve(s, "Y1", minutes_before(day + 30))
        store.acknowledge(s, "Y2", minutes_before(day - 20))         # after 10:00 yesterday
        store.acknowledge(s, "Y3", minutes_before(day - 90))         # 30 min: breached
    with plant.connect() as conn:
        tiles = wall.overview_snapshot(conn, AS_OF)["tiles"]
    assert tiles["median_response_min"]["yesterday"] == pytest.approx(5.0)
    assert tiles["response_sla_compliance"]["yesterday"] == 1.0    # Y2 still pending then
    assert tiles["resolution_rate"]["yesterday"] == 0.5            # Y1 of Y1, Y2
    assert tiles["open"]["yesterday"] == 1                          # Y2 at 10:00 yesterday
    assert tiles["median_response_min"]["value"] is None           # nothing raised today


# ---- shortages -------------------------------------------------------------------------

def test_shortages_follow_the_issue_types_setting(plant, monkeypatch):
    with db.session_scope(plant) as s:
        raise_(s, "W1", "material_shortage", 30)
        raise_(s, "Q1", "quality_anomaly", 20)
    with plant.connect() as conn:
        assert [r["id"] for r in wall.overview_snapshot(conn, AS_OF)["shortages"]] == ["W1"]
        assert [r["id"] for r in wall.material_snapshot(conn, AS_OF)["shortages"]] == ["W1"]
    monkeypatch.setenv("SHORTAGE_ISSUE_TYPES", " quality_anomaly, material_shortage ")
    with plant.connect() as conn:
        snap = wall.overview_snapshot(conn, AS_OF)
        page = wall.material_snapshot(conn, AS_OF)
    assert [r["id"] for r in snap["shortages"]] == ["W1", "Q1"]
    assert [r["id"] for r in page["shortages"]] == ["W1", "Q1"]
    assert page["tiles"]["shortages"] == 2
    assert snap["shortage_types"] == page["shortage_types"] == ["quality_anomaly", "material_shortage"]


# ---- the board: whom to call, ping-pong ------------------------------------------------

def test_board_rows_say_whom_to_call_and_mark_ping_pong(plant):
    with db.session_scope(plant) as s:
        s.add(Person(id="QA-07", name="周敏", department_code="QA"))
        raise_(s, "Q1", "quality_anomaly", 50)
        raise_(s, "Q2", "quality_anomaly", 40)
        raise_(s, "Q3", "quality_anomaly", 30)
    with db.session_scope(plant) as s:
        store.acknowledge(s, "Q1", minutes_before(45), actor="QA-07")        # a known person
        store.acknowledge(s, "Q2", minutes_before(35), actor="夜班 老王")      # free text
        store.reassign(s, "Q3", minutes_before(25), "PRD")
        store.reassign(s, "Q3", minutes_before(20), "QA")                    # QA -> PRD -> QA
    state = WallState()
    with plant.connect() as conn:
        followed = state.frames(conn, AS_OF)
    with db.session_scope(plant) as s:
        store.acknowledge(s, "Q3", minutes_before(5), actor="QA-07")        # after the load
    with plant.connect() as conn:
        board = {r["id"]: r for r in overview.overview_from_frames(
            state.frames(conn, AS_OF + timedelta(seconds=10)), AS_OF)["board"]}
        full = {r["id"]: r for r in wall.overview_snapshot(conn, AS_OF + timedelta(seconds=10))["board"]}
    assert followed is not None and board == full
    assert {i: (r["contact"], r["ping_pong"]) for i, r in board.items()} == {
        "Q1": ("周敏", False), "Q2": ("夜班 老王", False), "Q3": ("周敏", True)}
    with plant.connect() as conn:
        before_ack = {r["id"]: r["contact"] for r in wall.overview_snapshot(conn, minutes_before(10))["board"]}
    assert before_ack == {"Q1": "周敏", "Q2": "夜班 老王", "Q3": None}   # Q3 not acknowledged yet then


def test_an_issue_open_longer_than_the_event_horizon_keeps_its_ping_pong_mark(plant):
    """OLD was passed back 10 days ago and is still open; AGED was passed back 7 days ago and
    grows older than the events' horizon while the wall follows; BACK was passed back, then
    resolved long ago, and is reopened while the wall follows; LATE, 10 days old and open,
    is passed back while the wall follows."""
    day = 24 * 60
    with db.session_scope(plant) as s:
        for issue_id, days in (("OLD", 10), ("AGED", 7), ("BACK", 12), ("LATE", 10)):
            raise_(s, issue_id, "quality_anomaly", days * day)
    with db.session_scope(plant) as s:
        for issue_id, days in (("OLD", 10), ("AGED", 7), ("BACK", 12)):
            store.reassign(s, issue_id, minutes_before(days * day - 1), "PRD")
            store.reassign(s, issue_id, minutes_before(days * day - 2), "QA")
        store.resolve(s, "BACK", minutes_before(11 * day))
        store.reassign(s, "LATE", minutes_before(10 * day - 1), "PRD")
    state = WallState()

    def marks(as_of):
        with plant.connect() as conn:
            followed = overview.overview_from_frames(state.frames(conn, as_of), as_of)["board"]
            full = wall.overview_snapshot(conn, as_of)["board"]
        assert followed == full
        return {r["id"]: r["ping_pong"] for r in full}

    assert marks(AS_OF) == {"OLD": True, "AGED": True, "LATE": False}
    with db.session_scope(plant) as s:
        store.comment(s, "LATE", minutes_before(2), note="等备件")
    assert marks(AS_OF + timedelta(seconds=10)) == {"OLD": True, "AGED": True, "LATE": False}
    with db.session_scope(plant) as s:
        store.reassign(s, "LATE", minutes_before(1), "QA")
    assert marks(AS_OF + timedelta(seconds=20)) == {"OLD": True, "AGED": True, "LATE": True}
    with db.session_scope(plant) as s:
        store.reopen(s, "BACK", minutes_before(1))
    assert marks(AS_OF + timedelta(days=2)) == {"OLD": True, "AGED": True, "LATE": True, "BACK": True}
    with db.session_scope(plant) as s:
        store.comment(s, "AGED", minutes_before(0), note="仍在处理")
    assert marks(AS_OF + timedelta(days=2, seconds=10)) == \
        {"OLD": True, "AGED": True, "LATE": True, "BACK": True}


# ---- lists carry their totals ----------------------------------------------------------

def test_lists_are_capped_at_50_rows_with_their_totals(plant):
    with db.session_scope(plant) as s:
        for n in range(55):
            raise_(s, f"W{n:02d}", "material_shortage", 60 - n / 10)
        store.record_movements(s, [
            {"id": f"MV{n}", "at": minutes_before(600 + n), "material_code": "M-1",
             "lot": f"LOT-{n:02d}", "qty": 1.0, "from_location_code": "SUP", "to_location_code": "IQC"}
            for n in range(52)])
    with plant.connect() as conn:
        snap = wall.overview_snapshot(conn, AS_OF)
        page = wall.material_snapshot(conn, AS_OF)
    for shot in (snap, page):
        assert (len(shot["shortages"]), shot["shortages_total"]) == (50, 55)
        assert (len(shot["stagnant"]), shot["stagnant_total"]) == (50, 52)
        assert shot["shortages"][0]["id"] == "W00" and shot["stagnant"][0]["lot"] == "LOT-51"
    assert page["tiles"]["shortages"] == 55 and page["tiles"]["stagnant_lots"] == 52


# ---- one part fails, the others are computed -------------------------------------------

def _fail(*args, **kwargs):
    raise RuntimeError("this part is broken")


def test_a_failing_part_is_reported_and_the_others_computed(plant, monkeypatch, caplog):
    with db.session_scope(plant) as s:
        raise_(s, "W1", "material_shortage", 30)
    monkeypatch.setattr(overview, "_board", _fail)
    with plant.connect() as conn:
        snap = wall.overview_snapshot(conn, AS_OF)
    assert snap["failed_panels"] == ["board"] and snap["board"] is None
    assert snap["tiles"]["open"]["value"] == 1 and [r["id"] for r in snap["shortages"]] == ["W1"]
    assert "the board part failed" in caplog.text and "this part is broken" in caplog.text

    monkeypatch.setattr(overview, "_scoreboard", _fail)
    with plant.connect() as conn:
        snap = wall.overview_snapshot(conn, AS_OF)
    assert snap["failed_panels"] == ["board", "scoreboard", "star"]
    assert snap["scoreboard"] is snap["star"] is snap["star_reason"] is None
    assert "the star part needs the scoreboard part, which failed" in caplog.text
    assert snap["trend"] is not None and snap["tiles"] is not None


def test_a_failing_material_part_is_reported_and_the_others_computed(plant, monkeypatch):
    with db.session_scope(plant) as s:
        raise_(s, "W1", "material_shortage", 30)
    monkeypatch.setattr(material, "_turnover", _fail)
    with plant.connect() as conn:
        page = wall.material_snapshot(conn, AS_OF)
    assert page["failed_panels"] == ["turnover"]
    assert page["tiles"] == {"stagnant_lots": 0, "shortages": 1, "lots_at_iqc": 0, "turnover_week": None}
    monkeypatch.setattr(material, "_stagnant", _fail)
    with plant.connect() as conn:
        page = wall.material_snapshot(conn, AS_OF)
    assert page["failed_panels"] == ["stagnant", "stages", "turnover", "tiles"]
    assert page["stagnant"] is page["stagnant_total"] is page["stages"] is page["tiles"] is None
    assert page["shortages_total"] == 1


# ---- scopes ----------------------------------------------------------------------------

@pytest.fixture
def screen_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CACHE_KEY_PREFIX", f"floorlink-test-{uuid.uuid4().hex[:8]}:")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(screens, "_states", {})
    server = Flask("scope-test")
    cache.init_app(server)
    with server.app_context():
        yield


def test_scope_problem_names_what_is_wrong_and_what_was_meant(plant, db_url, screen_cache):
    assert screens.scope_problem(db_url, "QA", "L1") is None
    assert screens.scope_problem(db_url) is None
    assert screens.scope_problem(db_url, "XX") == {
        "kind": "department", "value": "XX", "suggestion": None, "known": ["PRD", "QA", "WH"]}
    assert screens.scope_problem(db_url, "qa")["suggestion"] == "QA"
    assert screens.scope_problem(db_url, "QAA")["suggestion"] == "QA"
    assert screens.scope_problem(db_url, None, "ZZ") == {
        "kind": "line", "value": "ZZ", "suggestion": None, "known": ["L1"]}
    assert screens.scope_problem(db_url, None, "l1")["suggestion"] == "L1"


def test_a_made_up_scope_computes_nothing(plant, db_url, screen_cache, monkeypatch):
    computed = []
    monkeypatch.setattr(overview, "overview_from_frames", lambda *a, **k: computed.append(k) or {})
    monkeypatch.setattr(material, "material_from_frames", lambda *a, **k: computed.append(k) or {})
    for ask in (lambda: screens.overview_for_screen(db_url, department="XX"),
                lambda: screens.overview_for_screen(db_url, line="ZZ"),
                lambda: screens.material_for_screen(db_url, line="qa")):
        with pytest.raises(screens.UnknownScope):
            ask()
    assert computed == [] and screens._states == {}
    screens.overview_for_screen(db_url, department="QA")
    assert computed == [{"department": "QA", "line": None}]


# ---- an empty database -----------------------------------------------------------------

def test_an_empty_database_says_so_until_something_is_written(plant):
    state = WallState()
    with plant.connect() as conn:
        snap = overview.overview_from_frames(state.frames(conn, AS_OF), AS_OF)
        assert snap["empty_database"] is True and snap["no_data"] is True
        assert wall.material_snapshot(conn, AS_OF)["empty_database"] is True
    with db.session_scope(plant) as s:
        store.record_movements(s, [
            {"id": "MV-OLD", "at": minutes_before(60 * 24 * 90), "material_code": "M-1",
             "lot": "LOT-OLD", "qty": 1.0, "from_location_code": "SUP", "to_location_code": "IQC"}])
    with plant.connect() as conn:
        assert wall.overview_snapshot(conn, AS_OF)["empty_database"] is False   # a movement
    with db.session_scope(plant) as s:
        raise_(s, "OLD", "quality_anomaly", 60 * 24 * 90)     # long before any window
    with db.session_scope(plant) as s:
        store.resolve(s, "OLD", minutes_before(60 * 24 * 89))
    later = AS_OF + timedelta(seconds=10)
    with plant.connect() as conn:
        followed = overview.overview_from_frames(state.frames(conn, later), later)
        full = wall.overview_snapshot(conn, later)
    assert followed["empty_database"] is full["empty_database"] is False
    assert full["no_data"] is True           # not empty, but nothing in this window
