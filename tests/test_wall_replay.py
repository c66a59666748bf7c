"""The wall at a past instant and on a plant without new data, without a browser: the newest
record of a plant, when it is quiet, a replayed overview and material page held to data/kpis.py
on a demo plant, the replay's cache and the data version, and what the panels show of a
quiet plant or a scope without data (nothing green)."""
from __future__ import annotations

import importlib
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask
from sqlalchemy import insert

from data import cache, db, demo, kpis, queries, store, timezones, wall
from data.models import Department, Issue, IssueEvent, Location, Material, Movement, SlaRule
from data.wall import frames, screens

import app as floorlink

SITE = timezones.zone("Asia/Shanghai")
END = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)             # 10:00 at the site
AT = datetime(2026, 11, 17, 10, 0, tzinfo=SITE).astimezone(timezone.utc)   # a Tuesday morning
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def site(monkeypatch):
    monkeypatch.setenv("SITE_TZ", "Asia/Shanghai")
    monkeypatch.setenv("PLAUSIBLE_FROM", "2000-01-01")
    monkeypatch.setenv("QUIET_AFTER_H", "24")


# ---- the newest record and when a plant is quiet -----------------------------------------

T1 = datetime(2026, 11, 19, 2, 0, tzinfo=timezone.utc)


def reference_rows(conn) -> None:
    conn.execute(insert(Department).values(code="QA", name_zh="质量部", name_en="Quality"))
    conn.execute(insert(SlaRule).values(issue_type="quality_anomaly", name_zh="质量异常",
                                        name_en="Quality anomaly", owner_department_code="QA",
                                        notify_department_codes="", ack_minutes=10, resolve_minutes=60))
    conn.execute(insert(Location), [
        {"code": "WH", "name": "仓库", "kind": "warehouse", "line": None, "max_dwell_minutes": None},
        {"code": "LS", "name": "线边库", "kind": "line_side", "line": "L1", "max_dwell_minutes": 240}])
    conn.execute(insert(Material).values(code="M-1", name="螺钉", unit="pcs", category="parts"))


def issue(issue_id: str, raised_at: datetime) -> dict:
    return {"id": issue_id, "issue_type": "quality_anomaly", "title": "t", "severity": "P2",
            "location_code": None, "raised_at": raised_at, "owner_department_code": "QA",
            "status": "open", "updated_at": T1}


def test_the_newest_record_is_the_latest_issue_event_or_movement_up_to_as_of(engine):
    """An issue raised at T1, an event three hours later, a movement five hours later; an
    issue dated 3026 and an event dated 1990 are no record of the plant's."""
    with engine.begin() as conn:
        reference_rows(conn)
        conn.execute(insert(Issue), [issue("I-1", T1), issue("I-3026", datetime(3026, 1, 1, tzinfo=timezone.utc))])
        conn.execute(insert(IssueEvent), [
            {"issue_id": "I-1", "at": T1 + timedelta(hours=3), "kind": "acknowledged", "department_code": "QA"},
            {"issue_id": "I-1", "at": datetime(1990, 1, 1, tzinfo=timezone.utc), "kind": "commented",
             "department_code": "QA"}])
        conn.execute(insert(Movement).values(id="MV-1", at=T1 + timedelta(hours=5), material_code="M-1",
                                             lot="L-1", qty=5.0, from_location_code="WH",
                                             to_location_code="LS"))
    with engine.connect() as conn:
        newest = [queries.newest_record(conn, as_of) for as_of in (
            T1 + timedelta(hours=6), T1 + timedelta(hours=5), T1 + timedelta(hours=5) - timedelta(seconds=1),
            T1 + timedelta(hours=3), T1, T1 - timedelta(seconds=1))]
    assert newest == [T1 + timedelta(hours=5), T1 + timedelta(hours=5), T1 + timedelta(hours=3),
                      T1 + timedelta(hours=3), T1, None]


def test_an_empty_plant_has_no_newest_record_and_no_material_data(engine):
    with engine.connect() as conn:
        assert queries.newest_record(conn, END) is None
        assert wall.overview_snapshot(conn, END)["no_material_data"] is True


def test_a_plant_is_quiet_once_its_newest_record_is_older_than_quiet_after_h(monkeypatch):
    newest = T1
    assert frames.freshness(newest, T1 + DAY) == {
        "newest_record_ms": int(T1.timestamp() * 1000), "quiet": False}
    assert frames.freshness(newest, T1 + DAY + timedelta(seconds=1))["quiet"] is True
    assert frames.freshness(None, T1 + 400 * DAY) == {"newest_record_ms": None, "quiet": False}
    monkeypatch.setenv("QUIET_AFTER_H", "2")
    assert frames.freshness(newest, T1 + timedelta(hours=2))["quiet"] is False
    assert frames.freshness(newest, T1 + timedelta(hours=2, seconds=1))["quiet"] is True


# ---- a replayed instant against the reference rules ----------------------------------------

@pytest.fixture
def wall_server(monkeypatch, tmp_path):
    """The shared cache in files of its own, fresh followers, and the live clock under the
    test's control (the interval's instant, at END)."""
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CACHE_KEY_PREFIX", f"floorlink-test-{uuid.uuid4().hex[:8]}:")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(screens, "_states", {})
    monkeypatch.setattr(screens, "_replayed", OrderedDict())
    clock = {"now": END}
    monkeypatch.setattr(screens, "snapshot_instant", lambda now, refresh_s: clock["now"])
    server = Flask("replay-test")
    cache.init_app(server)
    with server.app_context():
        yield clock


@pytest.fixture
def plant(engine):
    demo.build_demo_plant(engine, days=14, seed=3, end=END)
    return engine


def close(wall_figure, reference) -> bool:
    if wall_figure is None or reference is None:
        return wall_figure is None and reference is None
    return wall_figure == pytest.approx(reference, rel=1e-12, abs=1e-9)


def issue_figures(conn, since: datetime, as_of: datetime) -> dict:
    """data.kpis' overall figures of the issues raised in [since, as_of), at as_of."""
    population = queries.issue_population(conn, since, as_of)
    return kpis.issue_kpis(population, queries.holder_events(conn, since, as_of, as_of),
                           queries.open_issues(conn, as_of), as_of)


def test_a_replayed_overview_equals_the_reference_rules_at_that_instant(plant, db_url, wall_server):
    live = screens.overview_for_screen(db_url)          # the live wall follows the plant at END
    snap = screens.overview_for_screen(db_url, at=AT)
    assert snap["as_of"] == AT.isoformat() and snap["failed_panels"] == []
    today = datetime(2026, 11, 17, tzinfo=SITE)
    with plant.connect() as conn:
        now = issue_figures(conn, today, AT)
        before = issue_figures(conn, today - DAY, AT - DAY)
        open_now = queries.open_issues(conn, AT)
        week = queries.issue_population(conn, AT - 7 * DAY, AT)
        by_department = kpis.issue_kpis_by_department(
            week, queries.holder_events(conn, AT - 7 * DAY, AT, AT), open_now, AT,
            queries.departments(conn)["code"])
        stagnant = kpis.stagnant_lots(queries.lot_positions(conn, AT), AT)
        page = screens.material_for_screen(db_url, at=AT)
        full = wall.overview_snapshot(conn, AT)

    tiles = snap["tiles"]
    assert now["open"] > 0 and now["overdue"] > 0 and now["raised"] > 0       # a busy morning
    assert (tiles["open"]["value"], tiles["overdue"]["value"]) == (now["open"], now["overdue"])
    assert (tiles["open"]["yesterday"], tiles["overdue"]["yesterday"]) == (before["open"], before["overdue"])
    for tile, figure in (("median_response_min", "response_median_min"),
                         ("response_sla_compliance", "response_sla_compliance"),
                         ("resolution_rate", "resolution_rate")):
        assert close(tiles[tile]["value"], now[figure]), tile
        assert close(tiles[tile]["yesterday"], before[figure]), tile

    open_ids = set(open_now.loc[kpis.open_mask(open_now, AT), "id"])
    assert {row["id"] for row in snap["board"]} == open_ids and len(snap["board"]) == len(open_ids)
    scores = {row["department_code"]: row for row in snap["scoreboard"]}
    assert set(scores) == set(by_department)
    for code, figures in by_department.items():
        row = scores[code]
        assert (row["raised"], row["open"], row["overdue"], row["ping_pong"]) == (
            figures["raised"], figures["open"], figures["overdue"], figures["ping_pong_issues"]), code
        assert close(row["median_response_min"], figures["response_median_min"]), code
        assert close(row["response_sla_compliance"], figures["response_sla_compliance"]), code
    assert snap["stagnant_total"] == page["tiles"]["stagnant_lots"] == len(stagnant)
    assert [(r["lot"], r["material_code"]) for r in page["stagnant"]] == \
        list(zip(stagnant["lot"], stagnant["material_code"]))[:len(page["stagnant"])]
    # The replay is the full read at that instant; the live wall is still at END.
    assert snap == full
    assert live["as_of"] == END.isoformat()
    assert screens.freshness_for_screen(db_url, at=AT)["quiet"] is False


def test_the_pages_of_one_instant_read_its_frames_once(plant, db_url, wall_server, monkeypatch):
    reads = []
    load_frames = frames.load_frames
    monkeypatch.setattr(frames, "load_frames", lambda conn, as_of: reads.append(as_of) or load_frames(conn, as_of))
    screens.overview_for_screen(db_url, at=AT)
    screens.overview_for_screen(db_url, department="QA", at=AT)
    screens.material_for_screen(db_url, at=AT)
    assert reads == [AT]
    # The last two instants are kept: AT is still there after another, not after two more.
    earlier, earliest = AT - timedelta(hours=1), AT - timedelta(hours=2)
    screens.material_for_screen(db_url, at=earlier)
    screens.overview_for_screen(db_url, line="L2", at=AT)
    screens.material_for_screen(db_url, at=earliest)
    screens.overview_for_screen(db_url, line="L2", at=earlier)
    assert reads == [AT, earlier, earliest, earlier]


def test_a_replay_is_kept_until_a_bulk_write_changes_the_data_version(plant, db_url, wall_server):
    """The past changes by a bulk write (an import), which changes the data version and so
    the key, seen from the next interval on; a row written one by one in the past is seen
    when the entry expires (REPLAY_KEEP_S), not at every interval."""
    first = screens.overview_for_screen(db_url, at=AT)["tiles"]["open"]["value"]
    with db.session_scope(plant) as session:
        store.raise_issue(session, issue_id="LATE-1", issue_type="quality_anomaly", title="补录",
                          severity="P2", at=AT - timedelta(hours=1), owner_department_code="QA")
    wall_server["now"] = END + timedelta(seconds=10)
    assert screens.overview_for_screen(db_url, at=AT)["tiles"]["open"]["value"] == first
    with plant.begin() as conn:
        store.bump_bulk_version(conn)
    assert screens.overview_for_screen(db_url, at=AT)["tiles"]["open"]["value"] == first
    wall_server["now"] = END + timedelta(seconds=20)
    assert screens.overview_for_screen(db_url, at=AT)["tiles"]["open"]["value"] == first + 1


def test_a_plant_whose_newest_record_is_three_days_old_is_quiet(engine, db_url, wall_server):
    demo.build_demo_plant(engine, days=5, seed=3, end=END - 3 * DAY)
    with engine.connect() as conn:
        newest = queries.newest_record(conn, END)
    assert END - 4 * DAY < newest <= END - 3 * DAY
    assert screens.freshness_for_screen(db_url) == {
        "newest_record_ms": int(newest.timestamp() * 1000), "quiet": True}
    assert screens.overview_for_screen(db_url)["no_material_data"] is False
    # Replayed at its newest record, the same plant is not quiet.
    assert screens.freshness_for_screen(db_url, at=newest)["quiet"] is False


# ---- what the panels show of a quiet plant -------------------------------------------------

@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The pages register themselves with an app, so one is made before they are read."""
    floorlink.create_app(f"sqlite:///{tmp_path_factory.mktemp('replay') / 'none.sqlite'}")
    return {name: importlib.import_module(f"dashboards.{name}") for name in ("_ui", "overview", "material")}


@pytest.fixture
def thresholds(monkeypatch):
    for name, value in {"THRESHOLD_OPEN": "20,40", "THRESHOLD_OVERDUE": "1,5",
                        "THRESHOLD_MEDIAN_RESPONSE_MIN": "15,30", "THRESHOLD_RESPONSE_SLA": "0.9,0.75",
                        "THRESHOLD_RESOLUTION_RATE": "0.8,0.6", "THRESHOLD_PLAN_ATTAINMENT": "0.95,0.85",
                        "THRESHOLD_STAGNANT_LOTS": "1,10", "THRESHOLD_SHORTAGES": "1,3"}.items():
        monkeypatch.setenv(name, value)


def overview_snapshot(**state) -> dict:
    """An overview where every figure would be green: nothing open, everything on time."""
    figures = {"open": 0, "overdue": 0, "median_response_min": 5.0, "response_sla_compliance": 1.0,
               "resolution_rate": 1.0, "plan_attainment": 1.0}
    return {"tiles": {k: {"value": v, "yesterday": v} for k, v in figures.items()},
            "scoreboard": [{"department_code": "QA", "name_zh": "质量部", "name_en": "Quality",
                            "raised": 9, "open": 0, "overdue": 0, "median_response_min": 5.0,
                            "response_sla_compliance": 1.0, "ping_pong": 0}],
            "board": [], "shortages": [], "stagnant": [], "shortages_total": 0, "stagnant_total": 0,
            "names": {"departments": {}, "issue_types": {}, "locations": {}}, "quiet": False,
            "no_data": False, "no_material_data": False, **state}


def tile_levels(tiles) -> list[str]:
    return [tile.children.className for tile in tiles]


def test_a_quiet_plant_shows_its_counts_and_nothing_green(pages, thresholds):
    overview, _ui = pages["overview"], pages["_ui"]
    live = overview_snapshot()
    assert tile_levels(overview._tiles(live, "zh")) == ["tile ok"] * 6
    quiet = overview_snapshot(quiet=True)
    tiles = overview._tiles(quiet, "zh")
    assert tile_levels(tiles) == ["tile"] * 6
    assert [tile.children.children[1].children for tile in tiles[:2]] == ["0", "0"]    # 0 is 0
    # Red stays red: a quiet plant with issues overdue since is still late.
    late = overview_snapshot(quiet=True)
    late["tiles"]["overdue"]["value"] = 7
    assert tile_levels(overview._tiles(late, "zh"))[1] == "tile bad"

    def cells(snapshot):
        return [span.className for span in overview._scoreboard(snapshot, "zh")["rows"][0].children[2:5]]

    assert cells(live) == ["num ok"] * 3 and cells(quiet) == ["num"] * 3
    assert _ui.board_data(live, "zh")["state"] == "ok" and _ui.board_data(quiet, "zh")["state"] == "quiet"
    assert _ui.board_data(overview_snapshot(quiet=True, no_data=True), "zh")["state"] == "empty"


@pytest.mark.parametrize("state, text, colour", [
    ({}, "物料流转正常", "calm"),
    ({"quiet": True}, "没有物料预警", "empty"),
    ({"no_material_data": True}, "暂无数据", "empty"),
])
def test_material_alerts_claim_nothing_without_evidence(pages, state, text, colour):
    alerts = pages["overview"]._material(overview_snapshot(**state), "zh")["empty"]
    assert (alerts.children, alerts.className) == (text, colour)


@pytest.mark.parametrize("state, levels, empty", [
    ({}, ["tile ok", "tile ok", "tile", "tile"], "calm"),
    ({"quiet": True}, ["tile", "tile", "tile", "tile"], "empty"),
    ({"no_data": True}, ["tile", "tile", "tile", "tile"], "empty"),
])
def test_the_material_page_is_green_only_with_evidence(pages, thresholds, state, levels, empty):
    material = pages["material"]
    snapshot = {"tiles": {"stagnant_lots": 0, "shortages": 0, "lots_at_iqc": 0, "turnover_week": 1.5},
                "stagnant": [], "shortages": [], "stagnant_total": 0, "shortages_total": 0, **state}
    assert tile_levels(material._tiles(snapshot, "en")) == levels
    assert material._stagnant(snapshot, "en")["empty"].className == empty
    assert material._shortages(snapshot, "en")["empty"].className == empty
