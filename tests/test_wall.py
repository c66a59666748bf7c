"""What the wall shows, against hand-computed cases, and the shared snapshot cache."""
from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask

from data import cache, db, store, wall
from data.wall import screens
from data.models import Department, Issue, Location, Material, SlaRule

from conftest import unavailable

# 2026-11-20 10:00 in Shanghai; "today" there began at 2026-11-19 16:00 UTC.
AS_OF = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)


def minutes_before(n: float) -> datetime:
    return AS_OF - timedelta(minutes=n)


@pytest.fixture
def plant(engine):
    with db.session_scope(engine) as s:
        s.add_all([Department(code="PRD", name_zh="生产部", name_en="Production"),
                   Department(code="QA", name_zh="质量部", name_en="Quality"),
                   Department(code="WH", name_zh="仓储部", name_en="Warehouse")])
        s.flush()
        s.add_all([
            SlaRule(issue_type="quality_anomaly", name_zh="质量异常", name_en="Quality anomaly",
                    owner_department_code="QA", notify_department_codes="PRD", ack_minutes=10,
                    resolve_minutes=120),
            SlaRule(issue_type="material_shortage", name_zh="缺料", name_en="Material shortage",
                    owner_department_code="WH", notify_department_codes="PRD", ack_minutes=15,
                    resolve_minutes=60),
            Location(code="L1-S1", name="一线工位1", kind="line_side", line="L1", max_dwell_minutes=240),
            Location(code="IQC", name="来料检验区", kind="iqc", max_dwell_minutes=480),
            Location(code="SUP", name="供应商", kind="supplier"),
            Material(code="M-1", name="轴承", unit="pcs", category="parts"),
        ])
    return engine


def raise_(s, issue_id, issue_type, raised_min_ago, **kw):
    store.raise_issue(s, issue_id=issue_id, issue_type=issue_type, title=f"标题 {issue_id}",
                      severity=kw.pop("severity", "P2"), at=minutes_before(raised_min_ago),
                      location_code="L1-S1", **kw)


def test_overview_tiles_board_and_scoreboard(plant):
    with db.session_scope(plant) as s:
        # today: acknowledged after 4 and 20 minutes (one met, one breached), one still open
        raise_(s, "Q1", "quality_anomaly", 100)
        raise_(s, "Q2", "quality_anomaly", 90)
        raise_(s, "W1", "material_shortage", 30)
        # yesterday (Shanghai): QY at 08:00, acknowledged after 8 minutes, resolved this
        # morning (so still open at this time yesterday); Q0 at 14:00, after this time of day
        raise_(s, "Q0", "quality_anomaly", 60 * 20)
        raise_(s, "QY", "quality_anomaly", 60 * 26)
    with db.session_scope(plant) as s:
        store.acknowledge(s, "Q1", minutes_before(96))
        store.resolve(s, "Q1", minutes_before(50))
        store.acknowledge(s, "Q2", minutes_before(70))
        store.reassign(s, "Q2", minutes_before(65), "PRD")
        store.reassign(s, "Q2", minutes_before(60), "QA")
        store.acknowledge(s, "Q0", minutes_before(60 * 20 - 6))
        store.resolve(s, "Q0", minutes_before(60 * 19))
        store.acknowledge(s, "QY", minutes_before(60 * 26 - 8))
        store.resolve(s, "QY", minutes_before(60 * 3))
    with plant.connect() as conn:
        snap = wall.overview_snapshot(conn, AS_OF)

    tiles = snap["tiles"]
    assert tiles["open"] == {"value": 2, "yesterday": 1}          # Q2, W1 now; QY a day ago
    # W1 waited 30 min > 15 unacknowledged; Q2 acknowledged, 90 < 120: only W1 overdue.
    assert tiles["overdue"]["value"] == 1
    assert tiles["median_response_min"]["value"] == pytest.approx(12.0)  # median(4, 20)
    # "yesterday" is yesterday up to this time of day (10:00), as known then: QY only.
    assert tiles["median_response_min"]["yesterday"] == pytest.approx(8.0)
    assert tiles["response_sla_compliance"]["value"] == pytest.approx(1 / 3)  # Q1 met; Q2, W1 breached
    assert tiles["resolution_rate"]["value"] == pytest.approx(1 / 3)
    assert tiles["resolution_rate"]["yesterday"] == pytest.approx(0.0)   # QY resolved later

    board = {row["id"]: row for row in snap["board"]}
    assert set(board) == {"Q2", "W1"}
    assert board["W1"]["acknowledged_ms"] is None
    assert board["W1"]["ack_due_ms"] == int((minutes_before(30) + timedelta(minutes=15)).timestamp() * 1000)
    assert board["Q2"]["owner_department_code"] == "QA"

    scores = {row["department_code"]: row for row in snap["scoreboard"]}
    assert scores["QA"]["ping_pong"] == 1                 # Q2 went QA -> PRD -> QA
    assert scores["QA"]["open"] == 1 and scores["WH"]["overdue"] == 1
    assert snap["shortages"][0]["id"] == "W1"
    assert snap["no_data"] is False


def test_department_scope_limits_tiles_not_scoreboard(plant):
    with db.session_scope(plant) as s:
        raise_(s, "Q1", "quality_anomaly", 20)
        raise_(s, "W1", "material_shortage", 20)
    with plant.connect() as conn:
        snap = wall.overview_snapshot(conn, AS_OF, department="WH")
    assert snap["tiles"]["open"]["value"] == 1
    assert [r["id"] for r in snap["board"]] == ["W1"]
    assert {r["department_code"] for r in snap["scoreboard"]} == {"PRD", "QA", "WH"}


def test_empty_plant_is_no_data_not_all_clear(plant):
    with plant.connect() as conn:
        snap = wall.overview_snapshot(conn, AS_OF)
    assert snap["no_data"] is True
    assert snap["tiles"]["open"]["value"] == 0
    assert snap["tiles"]["median_response_min"]["value"] is None


def test_stagnant_lot_shows_on_material_snapshot(plant):
    with db.session_scope(plant) as s:
        store.record_movements(s, [
            {"id": "MV1", "at": minutes_before(600), "material_code": "M-1", "lot": "LOT-A",
             "qty": 50.0, "from_location_code": "SUP", "to_location_code": "IQC"},
            {"id": "MV2", "at": minutes_before(100), "material_code": "M-1", "lot": "LOT-B",
             "qty": 20.0, "from_location_code": "SUP", "to_location_code": "IQC"},
        ])
    with plant.connect() as conn:
        snap = wall.material_snapshot(conn, AS_OF)
    assert [s["lot"] for s in snap["stagnant"]] == ["LOT-A"]        # 600 > 480; 100 is not
    assert snap["stagnant"][0]["dwell_min"] == pytest.approx(600)
    iqc = next(s for s in snap["stages"] if s["kind"] == "iqc")
    assert iqc == {"kind": "iqc", "lots": 2, "stagnant": 1}


def test_snapshot_instant_is_shared_within_an_interval():
    first = screens.snapshot_instant(datetime(2026, 11, 20, 2, 0, 3, tzinfo=timezone.utc), 10)
    second = screens.snapshot_instant(datetime(2026, 11, 20, 2, 0, 9, 999, tzinfo=timezone.utc), 10)
    third = screens.snapshot_instant(datetime(2026, 11, 20, 2, 0, 10, tzinfo=timezone.utc), 10)
    assert first == second == datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
    assert third == first + timedelta(seconds=10)


def _bound_cache(monkeypatch, tmp_path, redis_url: str | None):
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CACHE_KEY_PREFIX", f"floorlink-test-{uuid.uuid4().hex[:8]}:")
    if redis_url:
        monkeypatch.setenv("REDIS_URL", redis_url)
    else:
        monkeypatch.delenv("REDIS_URL", raising=False)
    server = Flask("cache-test")
    cache.init_app(server)
    return server


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_expired_entry_is_recomputed_once_under_a_crowd(backend, monkeypatch, tmp_path):
    redis_url = None
    if backend == "redis":
        import redis
        redis_url = "redis://127.0.0.1:6379/0"
        try:
            redis.Redis.from_url(redis_url).ping()
        except redis.RedisError as exc:
            unavailable(f"Redis not reachable at {redis_url}: {exc}")
    server = _bound_cache(monkeypatch, tmp_path, redis_url)
    calls = []

    def slow_compute():
        calls.append(1)
        time.sleep(0.3)
        return {"value": 42}

    results = []
    with server.app_context():
        threads = [threading.Thread(target=lambda: results.append(
            cache.cached("stampede", slow_compute, timeout_s=30))) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [{"value": 42}] * 12
        assert len(calls) == 1
        # Clearing the cache (a new interval in the shell's tests, an operator's reset)
        # clears it all: the single-flight locks live beside the cache, not in it.
        assert cache.cache.clear() is True
        assert cache.cache.get("stampede") is None


def test_a_deploy_never_serves_what_the_code_before_it_cached(monkeypatch, tmp_path):
    """A replayed view is kept for minutes: after a deploy (another BUILD_ID) the same key
    asks the new code, not the entry the old code left."""
    server = _bound_cache(monkeypatch, tmp_path, None)
    with server.app_context():
        monkeypatch.setattr(cache, "BUILD_ID", "before")
        assert cache.cached(cache.cache_key("view", "overview"), lambda: {"drawn_by": "before"},
                            timeout_s=600) == {"drawn_by": "before"}
        monkeypatch.setattr(cache, "BUILD_ID", "after")
        assert cache.cached(cache.cache_key("view", "overview"), lambda: {"drawn_by": "after"},
                            timeout_s=600) == {"drawn_by": "after"}


def test_shift_attainment_prorates_a_running_shift_only():
    import pandas as pd

    start = pd.Timestamp("2026-11-20T00:00:00Z")
    plan = pd.DataFrame({
        "line": ["L1", "L1"],
        "shift_start": [start - pd.Timedelta(hours=12), start],
        "shift_end": [start, start + pd.Timedelta(hours=12)],
        "planned_qty": [1000.0, 1200.0],
        "actual_qty": [900.0, 300.0],
    })
    as_of = (start + pd.Timedelta(hours=3)).to_pydatetime()    # a quarter of the shift: 300 due
    assert wall.shift_attainment(plan, as_of, as_of) == pytest.approx(1.0)
    earlier = (start - pd.Timedelta(hours=6)).to_pydatetime()  # the ended shift: 900 / 1000
    assert wall.shift_attainment(plan, earlier, as_of) == pytest.approx(0.9)
    no_plan = (start + pd.Timedelta(days=2)).to_pydatetime()
    assert wall.shift_attainment(plan, no_plan, no_plan) is None


def test_an_issue_closed_without_resolution_leaves_the_wall_a_day_after_closing(plant):
    """Finished at closed_at (contract section 2): like a resolved issue, an older one closed
    more than a day ago is no longer read; one closed within the day still counts for
    yesterday's open figures."""
    from data import queries
    from data.wall.follower import WallState

    with db.session_scope(plant) as s:
        for issue_id, closed_min_ago in (("C-OLD", 3 * 1440), ("C-NEW", 60)):
            raise_(s, issue_id, "quality_anomaly", 40 * 1440)
    with plant.begin() as conn:
        for issue_id, closed_min_ago in (("C-OLD", 3 * 1440), ("C-NEW", 60)):
            conn.execute(Issue.__table__.update().where(Issue.id == issue_id).values(
                status="closed", closed_at=minutes_before(closed_min_ago)))
    with plant.connect() as conn:
        read = queries.issues_in_play(conn, AS_OF - wall.ISSUE_HORIZON, AS_OF - timedelta(days=1))
    assert set(read["id"]) == {"C-NEW"}
    state = WallState()
    with plant.connect() as conn:
        state.frames(conn, AS_OF)
        state.frames(conn, AS_OF + timedelta(minutes=20))
        followed = set(state.frames(conn, AS_OF + timedelta(days=1, minutes=30)).issues.id)
    assert "C-OLD" not in followed and "C-NEW" not in followed
