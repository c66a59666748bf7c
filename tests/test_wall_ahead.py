"""The work ahead of each snapshot boundary (data/wall/ahead.py): a moment before each boundary
one worker computes the views screens asked for in the interval before; the screens that ask
after the boundary read them and compute nothing; the figures are a full computation's at the
boundary's instant over the rows committed then; a row committed after that is on screen from
the next boundary."""
from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event

from bench.gunicorn_counting import statement_kind
from bench.load import (COMPUTATION_KIND, Screen, Server, callback_request, find_callback, page_scope,
                        schedule, wall_statement)
from data import cache, db, demo, store, timezones, wall
from data.wall import ahead, screens
from tools.databases import unavailable

import app as floorlink

REFRESH_S = 3
LEAD_S = 0.6


def test_from_the_lead_on_the_next_boundary_is_served():
    at = datetime(2026, 11, 20, 2, 0, 10, tzinfo=timezone.utc)
    assert ahead.serving_instant(at - timedelta(seconds=0.31), 10, 0.3) == at - timedelta(seconds=10)
    assert ahead.serving_instant(at - timedelta(seconds=0.3), 10, 0.3) == at
    assert ahead.serving_instant(at + timedelta(seconds=9.69), 10, 0.3) == at
    assert ahead.serving_instant(at + timedelta(seconds=9.7), 10, 0.3) == at + timedelta(seconds=10)
    assert ahead.serving_instant(at - timedelta(seconds=0.01), 10, 0) == at - timedelta(seconds=10)


def test_the_lead_is_at_most_a_fifth_of_the_interval_and_never_negative(monkeypatch):
    monkeypatch.setenv("REFRESH_S", "10")
    monkeypatch.setenv("SNAPSHOT_AHEAD_S", "0.5")
    assert ahead.lead_s() == 0.5
    monkeypatch.setenv("REFRESH_S", "1")
    assert ahead.lead_s() == 0.2
    monkeypatch.setenv("SNAPSHOT_AHEAD_S", "-1")
    with pytest.raises(ValueError, match="SNAPSHOT_AHEAD_S must be 0 or more seconds, got -1"):
        ahead.lead_s()
    monkeypatch.setenv("SNAPSHOT_AHEAD_S", "soon")
    with pytest.raises(ValueError, match="SNAPSHOT_AHEAD_S must be a number"):
        ahead.lead_s()


# ---- in one process: the rule, figure for figure ------------------------------------------

class PageScreen:
    """A wall page at the site scope (the overview unless `path` says another), refreshed
    through the app as dash-renderer posts it; keeps what it was sent, as the browser does."""

    def __init__(self, client, path: str = "/"):
        self.client = client
        dependencies = client.get("/_dash-dependencies").get_json()
        pages = find_callback(dependencies, "_pages_content.children")
        self.page, self.scope = page_scope(self._post(callback_request(pages, [path, ""], [])))
        self.callback = find_callback(dependencies, f"{self.page}-sent.data")
        self.sent, self.status, self.rows, self.n = {}, {}, [], 0

    def _post(self, body: dict) -> dict:
        response = self.client.post("/_dash-update-component", json=body)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        return response.get_json()

    def refresh(self) -> dict:
        self.n += 1
        answer = self._post(callback_request(self.callback, [self.n], [self.scope, self.sent, self.status]))
        answer = answer["response"]
        self.sent, self.status = answer[f"{self.page}-sent"]["data"], answer["wall-status"]["data"]
        assert self.status["state"] == "ok", self.status
        if f"{self.page}-board-data" in answer:
            self.rows = answer[f"{self.page}-board-data"]["data"]["rows"]
        return answer

    def titles(self) -> set[str]:
        return {row["title"] for row in self.rows}


def _sleep_until(instant: float) -> None:
    time.sleep(max(0.0, instant - time.time()))


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


@pytest.fixture
def live_app(engine, monkeypatch, tmp_path):
    monkeypatch.setenv("REFRESH_S", str(REFRESH_S))
    monkeypatch.setenv("SNAPSHOT_AHEAD_S", str(LEAD_S))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CACHE_KEY_PREFIX", f"floorlink-test-{uuid.uuid4().hex[:8]}:")
    monkeypatch.delenv("REDIS_URL", raising=False)
    demo.build_demo_plant(engine, days=2, seed=5)
    url = engine.url.render_as_string(hide_password=False)
    return floorlink.create_app(url).server, url


def test_a_row_committed_after_the_lead_is_on_screen_from_the_next_boundary(live_app, engine):
    server, url = live_app
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    screen = PageScreen(server.test_client())
    screen.refresh()                # the first, full load
    for attempt in range(3):
        screen.refresh()            # noted as asked for in the interval it was served
        boundary = screen.status["last_good_ms"] // 1000 + REFRESH_S
        _sleep_until(boundary - LEAD_S + 0.01)
        at = datetime.fromtimestamp(boundary, timezone.utc)
        with server.app_context():
            computed = ahead.compute_ahead(at, timezones.utc_now())
            shown = screens.overview_for_screen(url)
        with engine.connect() as conn:
            full = wall.overview_snapshot(conn, at)
        title = f"ahead {uuid.uuid4().hex[:8]}"
        with db.session_scope(engine) as s:
            store.raise_issue(s, issue_id=f"AHEAD-{attempt}", issue_type="quality_anomaly", title=title,
                              severity="P1", at=timezones.utc_now())
        if computed and time.time() < boundary - 0.05:
            break               # computed ahead, and the row committed after it, before the boundary
    else:
        pytest.fail("three intervals in a row, the work ahead did not end before its boundary")
    assert list(computed) == [url] and len(computed[url]) == 1
    assert shown["as_of_ms"] == boundary * 1000
    assert _same(shown, full), "the snapshot computed ahead is not the full computation at its instant"

    _sleep_until(boundary + 0.15)
    del statements[:]
    screen.refresh()
    assert screen.status["last_good_ms"] == boundary * 1000
    assert title not in screen.titles()
    assert not [s for s in statements if wall_statement(statement_kind(s))], \
        "a screen after the boundary computed what was computed ahead"

    _sleep_until(boundary + REFRESH_S - LEAD_S + 0.01)
    with server.app_context():
        assert ahead.compute_ahead(datetime.fromtimestamp(boundary + REFRESH_S, timezone.utc),
                                   timezones.utc_now()) == computed
    _sleep_until(boundary + REFRESH_S + 0.15)
    screen.refresh()
    assert screen.status["last_good_ms"] == (boundary + REFRESH_S) * 1000
    assert title in screen.titles()


def test_only_what_screens_asked_for_in_the_interval_before_is_computed_ahead(live_app):
    server, url = live_app
    screen = PageScreen(server.test_client())
    screen.refresh()                # the first, full load
    screen.refresh()
    boundary = screen.status["last_good_ms"] // 1000 + REFRESH_S
    at = datetime.fromtimestamp(boundary, timezone.utc)
    with server.app_context():
        # Woken before its lead: nothing.
        assert ahead.compute_ahead(at, at - timedelta(seconds=LEAD_S + 0.01)) == {}
    _sleep_until(boundary - LEAD_S + 0.01)
    with server.app_context():
        assert list(ahead.compute_ahead(at, timezones.utc_now())) == [url]
    # No screen refreshed in the interval since: what was computed ahead is not asked for.
    _sleep_until(boundary + REFRESH_S - LEAD_S + 0.01)
    with server.app_context():
        assert ahead.compute_ahead(at + timedelta(seconds=REFRESH_S), timezones.utc_now()) == {}


def _next_lead(screen: PageScreen) -> datetime:
    """Waits for the lead of the boundary after the interval `screen` was last served in."""
    boundary = screen.status["last_good_ms"] // 1000 + REFRESH_S
    _sleep_until(boundary - LEAD_S + 0.01)
    return datetime.fromtimestamp(boundary, timezone.utc)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the database is not the point
def test_workers_waking_together_compute_each_view_once_the_first_all_it_knows(live_app):
    server, url = live_app
    client = server.test_client()
    overview, material = PageScreen(client), PageScreen(client, "/material")
    for screen in (overview, material, overview, material):
        screen.refresh()
    at = _next_lead(overview)
    results = []

    def worker():
        with server.app_context():
            results.append(ahead.compute_ahead(at, timezones.utc_now()))

    workers = [threading.Thread(target=worker) for _ in range(2)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert sorted(len(r.get(url, [])) for r in results) == [0, 2], results


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the database is not the point
def test_a_view_the_claiming_worker_did_not_know_is_computed_by_one_that_does(live_app):
    server, url = live_app
    screen = PageScreen(server.test_client())
    screen.refresh()
    screen.refresh()
    at = _next_lead(screen)
    with server.app_context():
        # Another worker claimed the boundary first, knowing none of this worker's views.
        cache.cached(ahead.claim_key(url, at), lambda: [], timeout_s=30)
        computed = ahead.compute_ahead(at, timezones.utc_now())
        assert len(computed[url]) == 1
        assert screens.overview_for_screen(url)["as_of_ms"] == at.timestamp() * 1000


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the database is not the point
def test_after_the_database_did_not_answer_the_beat_rests_for_some_intervals(live_app, monkeypatch):
    server, url = live_app
    monkeypatch.setattr(ahead._worker, "resting_until", 0.0)
    screen = PageScreen(server.test_client())
    screen.refresh()
    screen.refresh()
    at = _next_lead(screen)
    asked = []

    def silent(*_args):
        asked.append(1)
        raise screens.SourceUnavailable("the database does not answer")

    monkeypatch.setattr(screens, "_read", silent)
    with server.app_context():
        ahead.compute_ahead(at, timezones.utc_now())
    assert len(asked) == 1
    rest = ahead._worker.resting_until - time.monotonic()
    assert (ahead.RESTING_INTERVALS - 1) * REFRESH_S < rest <= ahead.RESTING_INTERVALS * REFRESH_S
    # Asked for in the interval before the next boundary, and told the database is down.
    answer = screen._post(callback_request(screen.callback, [99], [screen.scope, screen.sent, screen.status]))
    assert answer["response"]["wall-status"]["data"]["state"] == "db_down"
    before = len(asked)
    _sleep_until(at.timestamp() + REFRESH_S - LEAD_S + 0.01)
    with server.app_context():
        assert ahead.compute_ahead(at + timedelta(seconds=REFRESH_S), timezones.utc_now()) == {}
    assert len(asked) == before     # resting: the database was not asked again


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the database is not the point
def test_a_worker_forgets_the_views_it_has_not_served_for_an_hour(live_app, monkeypatch):
    server, url = live_app
    PageScreen(server.test_client()).refresh()
    served = [key for key, (database, _, _) in ahead._worker.recipes.items() if database == url]
    assert len(served) == 1
    with ahead._worker.lock:
        ahead._forget_old_recipes(time.monotonic() + ahead.RECIPE_KEEP_S - 5)
        assert served[0] in ahead._worker.recipes
        ahead._forget_old_recipes(time.monotonic() + ahead.RECIPE_KEEP_S + 5)
        assert served[0] not in ahead._worker.recipes and served[0] not in ahead._worker.noted
    PageScreen(server.test_client()).refresh()
    monkeypatch.setattr(ahead, "RECIPES_KEPT", 0)
    with ahead._worker.lock:
        ahead._forget_old_recipes(time.monotonic())
        assert not ahead._worker.recipes


# ---- across gunicorn's workers ---------------------------------------------------------------

@pytest.mark.parametrize("backend", ["files", "redis"])
def test_each_snapshot_is_computed_once_ahead_and_the_screens_only_read(backend, monkeypatch, tmp_path):
    """Two workers, screens on two pages refreshing just after each boundary as browsers do:
    in each interval each page's snapshot is computed once, before the boundary; no screen's
    refresh computes anything, and every screen is served the boundary's instant."""
    redis_url = None
    if backend == "redis":
        import redis
        redis_url = "redis://127.0.0.1:6379/0"
        try:
            redis.Redis.from_url(redis_url).ping()
        except redis.RedisError as exc:
            unavailable(f"Redis not reachable at {redis_url}: {exc}")
    url = f"sqlite:///{tmp_path / 'plant.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=2, seed=5)
    monkeypatch.setenv("SNAPSHOT_AHEAD_S", str(LEAD_S))
    prefix = f"floorlink-test-{uuid.uuid4().hex[:8]}:"
    server = Server(url, tmp_path, REFRESH_S, redis_url, prefix, workers=2, threads=4).start()
    try:
        refreshes, began = asyncio.run(_screens(server.port, screens_n=8, intervals=4))
        statements = server.queries(began, time.time())
    finally:
        server.stop()
        if redis_url:
            from bench.load import clear_redis
            clear_redis(redis_url, prefix)
    assert not [r.error for r in refreshes if r.error]
    boundaries = sorted({math.floor(r.sent_at / REFRESH_S) * REFRESH_S for r in refreshes})
    # The first interval's views were asked for before: from the second on, computed ahead.
    for boundary in boundaries[1:]:
        window = [(at, kind, pid) for at, kind, pid in statements
                  if boundary - LEAD_S <= at < boundary + REFRESH_S - LEAD_S
                  and wall_statement(kind)]
        computations = [(at, pid) for at, kind, pid in window if kind == COMPUTATION_KIND]
        assert len(computations) == 2, (boundary, window)     # the overview's and the material page's
        assert all(at < boundary for at, _, _ in window), \
            f"a screen after the boundary {boundary} computed: {window}"
    for r in refreshes:
        boundary = math.floor(r.sent_at / REFRESH_S) * REFRESH_S
        assert r.as_of_ms == boundary * 1000, "a screen was not served its boundary's instant"


async def _screens(port: int, screens_n: int, intervals: int):
    markers: dict = {}
    # Two pages, so two snapshots to compute: still one worker computes them.
    screens_ = [Screen(n, port, markers, path="/material" if n % 2 else "/") for n in range(screens_n)]
    try:
        for screen in screens_:
            await screen.load_page()
        start = time.time()
        end = start + intervals * REFRESH_S
        rng = random.Random(3)
        await asyncio.gather(*(s.run(schedule("aligned", start, end, REFRESH_S, rng), REFRESH_S)
                               for s in screens_))
    finally:
        await asyncio.gather(*(s.connection.close() for s in screens_), return_exceptions=True)
    return [r for s in screens_ for r in s.refreshes], start
