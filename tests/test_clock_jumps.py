"""The server's clock stepped forward and back by minutes (an NTP step), on an injected clock:
the one the server reads (data/timezones.utc_now), the one writers stamp rows with, and the
one the file cache's expiry reads, all stepped together as the machine's clock would be, and
its offset from the monotonic clock (timezones.clock_offset), which only a step moves. What
the wall serves across the step, what the cache keeps, and how sign-in and lock-out judge by
the clock (docs/operations.md, Clock jumps)."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone

import cachelib.file
import pytest
from flask import Flask

from data import cache, db, demo, models, store, timezones, wall
from data.auth import users
from data.wall import screens
from tools.databases import unavailable

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)    # 10:00 in Shanghai
REFRESH_S = 10
PASSWORD = "correct horse battery"


class Clock:
    """The machine's clock, as every part of the server reads it, and its offset from the
    monotonic clock."""

    def __init__(self, now: datetime):
        self.now = now
        self.offset = 1_000_000.0

    def __call__(self) -> datetime:
        return self.now

    def refresh_at(self, now: datetime) -> None:
        """Time passes to `now`, a second past a boundary, as screens ask."""
        assert now >= self.now
        self.now = now

    def step(self, to: datetime) -> None:
        """NTP steps the clock to `to`: only a step moves its offset from the monotonic clock."""
        self.offset += (to - self.now).total_seconds()
        self.now = to


def _machine_datetime(machine: Clock) -> type:
    """`datetime` whose now() is the machine's clock."""
    class MachineDatetime(datetime):
        @classmethod
        def now(cls, tz=None) -> datetime:
            return machine.now.astimezone(tz) if tz else machine.now.replace(tzinfo=None)
    return MachineDatetime


@pytest.fixture
def clock(monkeypatch) -> Clock:
    machine = Clock(T0)
    monkeypatch.setattr(timezones, "utc_now", machine)
    monkeypatch.setattr(timezones, "clock_offset", lambda: machine.offset)
    monkeypatch.setattr(cachelib.file, "time", lambda: machine.now.timestamp())
    # The writers' stamp (data.models._written_now) reads datetime.now: a name looked up at each
    # call, unlike the column defaults, which SQLAlchemy keeps compiled for later tests.
    monkeypatch.setattr(models, "datetime", _machine_datetime(machine))
    return machine


@pytest.fixture
def plant(tmp_path, monkeypatch, clock):
    """A demo plant in SQLite up to an hour before T0, and a file cache for its screens."""
    monkeypatch.setenv("REFRESH_S", str(REFRESH_S))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'plant.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=3, seed=5, end=T0 - timedelta(hours=1))
    server = Flask("clock-jumps")
    cache.init_app(server)
    with server.app_context():
        yield url, engine
    db.dispose_all()


def refresh(url: str) -> dict:
    return screens.overview_for_screen(url)


def board_ids(snapshot: dict) -> list[str]:
    return [row["id"] for row in snapshot["board"]]


def raise_issue(engine, issue_id: str, at: datetime, issue_type: str = "quality_anomaly") -> None:
    with db.session_scope(engine) as session:
        store.raise_issue(session, issue_id=issue_id, issue_type=issue_type, title=issue_id,
                          severity="P1", at=at)


def acknowledge(engine, issue_id: str, at: datetime) -> None:
    with db.session_scope(engine) as session:
        store.acknowledge(session, issue_id, at)


def no_negative_durations(snapshot: dict) -> None:
    """Nothing on the wall happened after its instant: no wait, dwell or age below zero."""
    as_of_ms = snapshot["as_of_ms"]
    for row in snapshot["board"]:
        assert row["raised_ms"] <= as_of_ms
        assert row["acknowledged_ms"] is None or row["acknowledged_ms"] <= as_of_ms
    assert all(s["waiting_min"] >= 0 for s in snapshot["shortages"])
    assert all(s["dwell_min"] >= 0 for s in snapshot["stagnant"])


def test_the_snapshot_instant_follows_the_clock_back_and_forth():
    steps = [T0 + timedelta(seconds=3), T0 + timedelta(minutes=5, seconds=3),
             T0 + timedelta(seconds=13), T0 - timedelta(minutes=7, seconds=-1)]
    assert [screens.snapshot_instant(now, REFRESH_S) for now in steps] == [
        T0, T0 + timedelta(minutes=5), T0 + timedelta(seconds=10), T0 - timedelta(minutes=7)]


def test_after_a_step_back_the_wall_shows_its_instant_and_nothing_that_came_later(plant, clock):
    url, engine = plant
    fast = T0 + timedelta(minutes=10)          # the clock ran ten minutes fast
    raise_issue(engine, "BEFORE-1", T0 - timedelta(minutes=2))
    clock.refresh_at(fast + timedelta(seconds=1))
    raise_issue(engine, "AHEAD-1", clock.now)
    raise_issue(engine, "AHEAD-SHORT", clock.now, issue_type="material_shortage")
    acknowledge(engine, "BEFORE-1", clock.now)
    clock.refresh_at(fast + timedelta(seconds=11))
    ahead = refresh(url)
    assert ahead["as_of"] == (fast + timedelta(seconds=10)).isoformat()
    assert {"BEFORE-1", "AHEAD-1", "AHEAD-SHORT"} <= set(board_ids(ahead))

    clock.step(T0 + timedelta(seconds=1))          # NTP steps it back ten minutes
    back = refresh(url)
    # The snapshot of the instant the clock now shows, not the latest one computed.
    assert back["as_of"] == T0.isoformat()
    assert "AHEAD-1" not in board_ids(back) and "AHEAD-SHORT" not in board_ids(back)
    assert "AHEAD-SHORT" not in [s["id"] for s in back["shortages"]]
    before = next(row for row in back["board"] if row["id"] == "BEFORE-1")
    assert before["acknowledged_ms"] is None     # acknowledged after this instant
    no_negative_durations(back)
    with engine.connect() as conn:
        full = wall.overview_snapshot(conn, T0)
    for part in ("tiles", "board", "scoreboard", "star", "trend", "shortages"):
        assert back[part] == full[part], part


def test_after_a_step_forward_the_wall_judges_by_the_new_clock_and_misses_nothing(plant, clock):
    url, engine = plant
    clock.refresh_at(T0 + timedelta(seconds=1))
    raise_issue(engine, "LATE-1", T0 - timedelta(minutes=5))      # 10 minutes to acknowledge
    first = refresh(url)
    late_1 = next(row for row in first["board"] if row["id"] == "LATE-1")
    assert late_1["ack_due_ms"] > first["as_of_ms"]               # not overdue yet
    raise_issue(engine, "JUST-BEFORE", clock.now)
    clock.step(T0 + timedelta(minutes=20, seconds=1))            # NTP steps it forward
    raise_issue(engine, "JUST-AFTER", clock.now)
    stepped = refresh(url)
    assert stepped["as_of"] == (T0 + timedelta(minutes=20)).isoformat()
    late_1 = next(row for row in stepped["board"] if row["id"] == "LATE-1")
    assert late_1["ack_due_ms"] < stepped["as_of_ms"]            # overdue by the new clock
    assert stepped["tiles"]["overdue"]["value"] > first["tiles"]["overdue"]["value"]
    clock.refresh_at(T0 + timedelta(minutes=20, seconds=11))
    after = refresh(url)
    assert {"LATE-1", "JUST-BEFORE", "JUST-AFTER"} <= set(board_ids(after))
    no_negative_durations(after)
    with engine.connect() as conn:
        full = wall.overview_snapshot(conn, T0 + timedelta(minutes=20, seconds=10))
    for part in ("tiles", "board", "scoreboard"):
        assert after[part] == full[part], part


def test_a_lock_out_lasts_by_the_clock_a_step_shortens_or_lengthens_it(plant, clock, monkeypatch):
    _, engine = plant
    monkeypatch.setenv("SIGNIN_MAX_FAILURES", "3")
    monkeypatch.setenv("SIGNIN_LOCK_MINUTES", "15")
    users.create(engine, "li.na", "manager", PASSWORD, T0)
    assert [users.sign_in(engine, "li.na", "wrong", T0).outcome for _ in range(3)][-1] == "locked"
    # Stepped back ten minutes: locked until 15 minutes after the failures by the clock,
    # 25 minutes of real time.
    back = T0 - timedelta(minutes=10)
    locked = users.sign_in(engine, "li.na", PASSWORD, back + timedelta(minutes=24))
    assert (locked.outcome, locked.locked_until) == ("locked", T0 + timedelta(minutes=15))
    assert users.sign_in(engine, "li.na", PASSWORD, back + timedelta(minutes=25)).outcome == "ok"
    # Stepped forward ten minutes: the lock ends five minutes of real time after the failures.
    assert [users.sign_in(engine, "li.na", "wrong", T0).outcome for _ in range(3)][-1] == "locked"
    assert users.sign_in(engine, "li.na", PASSWORD, T0 + timedelta(minutes=10) + timedelta(minutes=5)).outcome == "ok"


def test_after_a_step_back_a_row_written_then_is_on_the_wall_an_interval_later(plant, clock, caplog):
    url, engine = plant
    for second in range(1, 121, REFRESH_S):           # two minutes of screens, the clock fast
        clock.refresh_at(T0 + timedelta(minutes=10, seconds=second))
        refresh(url)
    clock.step(T0 + timedelta(minutes=11, seconds=1))          # stepped back 50 seconds
    raise_issue(engine, "AFTER-THE-STEP", clock.now)
    shown = []
    with caplog.at_level(logging.WARNING):
        for second in range(11, 121, REFRESH_S):
            clock.refresh_at(T0 + timedelta(minutes=11, seconds=second))
            shown.append("AFTER-THE-STEP" in board_ids(refresh(url)))
    # The instants computed before the step are computed again, from everything written.
    assert all(shown), shown
    stepped = [r.getMessage() for r in caplog.records if "stepped back" in r.getMessage()]
    assert len(stepped) == 1 and "stepped back 50 s" in stepped[0], stepped
    assert not [r for r in caplog.records if r.name == "data.cache"]


def test_a_step_back_the_screens_did_not_see_is_read_again_when_they_come_back(plant, clock, caplog):
    """No screen asks while the clock is behind (the TVs are off): the first refresh after it
    has caught up still finds what was written then, stamped before its last read."""
    url, engine = plant
    clock.refresh_at(T0 + timedelta(minutes=10, seconds=1))
    assert "WHILE-DARK" not in board_ids(refresh(url))
    clock.step(T0 + timedelta(minutes=5))
    raise_issue(engine, "WHILE-DARK", clock.now)
    with caplog.at_level(logging.WARNING):
        clock.refresh_at(T0 + timedelta(minutes=10, seconds=11))
        assert "WHILE-DARK" in board_ids(refresh(url))
    assert "stepped back 301 s" in caplog.text


def _bound_cache(monkeypatch, tmp_path, store: str) -> Flask:
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CACHE_KEY_PREFIX", f"floorlink-clock-{uuid.uuid4().hex[:8]}:")
    if store == "redis":
        import redis
        redis_url = "redis://127.0.0.1:6379/0"
        try:
            redis.Redis.from_url(redis_url).ping()
        except redis.RedisError as exc:
            unavailable(f"Redis not reachable at {redis_url}: {exc}")
        monkeypatch.setenv("REDIS_URL", redis_url)
    else:
        monkeypatch.delenv("REDIS_URL", raising=False)
    server = Flask("clock-cache")
    cache.init_app(server)
    return server


@pytest.mark.parametrize("store", ["files", "redis"])
def test_a_cache_entry_computed_before_a_step_of_the_clock_is_computed_anew(store, clock, monkeypatch,
                                                                          tmp_path, caplog):
    server = _bound_cache(monkeypatch, tmp_path, store)
    with server.app_context(), caplog.at_level(logging.WARNING):
        assert cache.cached("snapshot", lambda: "before", timeout_s=600) == "before"
        clock.refresh_at(T0 + timedelta(seconds=5))
        assert cache.cached("snapshot", lambda: "again", timeout_s=600) == "before"
        clock.step(T0 - timedelta(minutes=1))
        assert cache.cached("snapshot", lambda: "after the step back", timeout_s=600) == "after the step back"
        clock.refresh_at(T0 - timedelta(seconds=50))
        assert cache.cached("snapshot", lambda: "again", timeout_s=600) == "after the step back"
        clock.step(T0 + timedelta(minutes=5))
        assert cache.cached("snapshot", lambda: "after the step forward", timeout_s=600) \
            == "after the step forward"
        # A step shorter than a second is the time between two reads of the clocks.
        clock.step(T0 + timedelta(minutes=5, seconds=-0.5))
        assert cache.cached("snapshot", lambda: "again", timeout_s=600) == "after the step forward"
    assert not [r for r in caplog.records if r.name == "data.cache"]


@pytest.mark.parametrize("store", ["files", "redis"])
def test_an_entry_from_another_server_is_taken_unless_computed_after_now(store, clock, monkeypatch,
                                                                         tmp_path):
    """Several servers share Redis, each with its own clocks: their offsets cannot be
    compared, their clocks can."""
    server = _bound_cache(monkeypatch, tmp_path, store)
    here = cache.MACHINE
    with server.app_context():
        monkeypatch.setattr(cache, "MACHINE", "another server")
        assert cache.cached("shared", lambda: "another server's", timeout_s=600) == "another server's"
        monkeypatch.setattr(cache, "MACHINE", here)
        clock.step(T0 + timedelta(seconds=0.5))     # its clock half a second ahead of this one
        assert cache.cached("shared", lambda: "this server's", timeout_s=600) == "another server's"
        clock.step(T0 - timedelta(seconds=2))
        assert cache.cached("shared", lambda: "this server's", timeout_s=600) == "this server's"


def test_a_session_outlives_a_step_back_of_the_clock(plant, clock, monkeypatch):
    from itsdangerous import TimestampSigner

    from app import create_app
    from data.auth import web

    url, engine = plant
    monkeypatch.setattr(web, "clock", clock)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _signer: int(clock.now.timestamp()))
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    client = create_app(url).server.test_client()
    clock.refresh_at(T0 + timedelta(minutes=10))
    page = client.get("/signin").get_data(as_text=True)
    csrf = page.split("name='csrf' value='", 1)[1].split("'", 1)[0]
    signed_in = client.post("/signin?next=/audit", data={"name": "wang.wu", "password": PASSWORD, "csrf": csrf})
    assert signed_in.status_code == 302 and signed_in.headers["Location"].endswith("/audit")
    assert client.get("/audit").status_code == 200
    clock.step(T0 + timedelta(minutes=1))                # stepped back nine minutes
    assert client.get("/audit").status_code == 200
