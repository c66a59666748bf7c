"""Faults survived, each for real against `python app.py serve` (gunicorn) in its own
process: a PostgreSQL server of the test's own frozen (silent, not refusing) and stopped
under the wall, a Redis of its own killed and restarted, a request body of 100 MB, malformed
callback requests, and many snapshots through the file cache's locks. Never the machine's
shared PostgreSQL or Redis."""
from __future__ import annotations

import http.client
import json
import pickle
import shutil
import socket
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import create_engine

from conftest import unavailable
from data import cache, db, demo
from tools.browser import AppServer, free_port
from tools.databases import postgres_server

REFRESH_S = 2
# Every wait the server has on its database, as short as the drivers allow: a refresh on a
# silent database answers within the ping's deadline and a new connection's (2 s each).
BOUNDS = {"REFRESH_S": str(REFRESH_S), "DB_CONNECT_TIMEOUT_S": "2", "DB_STATEMENT_TIMEOUT_S": "2",
          "DB_POOL_TIMEOUT_S": "2", "CACHE_WAIT_S": "3"}
# The longest a refresh can wait on a frozen database: for a pooled connection
# (DB_POOL_TIMEOUT_S), then to open one (DB_CONNECT_TIMEOUT_S), then for its statement to be
# cut (DB_STATEMENT_TIMEOUT_S), and a second for the work around them.
ANSWER_WITHIN_S = 2 + 2 + 2 + 1.0
SCOPE = {"lang": "zh", "dept": None, "line": None, "at": None}


class Screen:
    """One wall screen on the overview, as dash-renderer asks for its refresh."""

    def __init__(self, url: str):
        self.url = url
        dependencies = requests.get(url + "/_dash-dependencies", timeout=10).json()
        self.callback = next(c for c in dependencies if "overview-sent.data" in c["output"])

    def refresh(self, timeout: float = 30) -> tuple[float, dict]:
        """Seconds the refresh took, and its answer's outputs (as a screen that has nothing)."""
        spec = self.callback["output"]
        outputs = [dict(zip(("id", "property"), part.split("@")[0].split(".")))
                   for part in spec[2:-2].split("...")]
        inputs = [{**self.callback["inputs"][0], "value": 1}]
        state = [{**s, "value": v} for s, v in zip(self.callback["state"], [SCOPE, {}, {}])]
        body = {"output": spec, "outputs": outputs, "inputs": inputs, "state": state,
                "changedPropIds": [f"{i['id']}.{i['property']}" for i in inputs]}
        started = time.monotonic()
        reply = requests.post(self.url + "/_dash-update-component", json=body, timeout=timeout)
        took = time.monotonic() - started
        assert reply.status_code == 200, reply.text[:300]
        return took, reply.json()["response"]


def status_of(response: dict) -> str:
    return response["wall-status"]["data"]["state"]


def refresh_until(screen: Screen, state: str, within_s: float) -> float:
    """Refresh every half second until the wall's status is `state`; each refresh must
    answer within ANSWER_WITHIN_S. The seconds it took."""
    started = time.monotonic()
    while True:
        took, response = screen.refresh()
        assert took < ANSWER_WITHIN_S, f"a refresh took {took:.1f} s"
        if status_of(response) == state:
            return time.monotonic() - started
        assert time.monotonic() - started < within_s, f"no {state} within {within_s} s"
        time.sleep(0.5)


def page_answers(url: str) -> float:
    started = time.monotonic()
    reply = requests.get(url + "/", timeout=30)
    assert reply.status_code == 200
    return time.monotonic() - started


@pytest.fixture(scope="module")
def pg_wall(tmp_path_factory):
    """A demo plant on a PostgreSQL server of its own, served by `app.py serve`."""
    folder = tmp_path_factory.mktemp("pg-wall")
    with postgres_server() as pg:
        engine = db.get_engine(pg.url)
        db.upgrade_schema(engine)
        demo.build_demo_plant(engine, days=2, seed=5)
        db.dispose_all()
        app = AppServer(pg.url, folder, **BOUNDS).start()
        try:
            yield pg, app
        finally:
            app.stop()


def test_a_frozen_database_answers_db_down_within_seconds_and_the_wall_recovers_by_itself(pg_wall):
    pg, app = pg_wall
    screen = Screen(app.url)
    refresh_until(screen, "ok", within_s=20)
    pg.freeze()
    try:
        # The entry of this interval may still be cached: db_down from the next one on.
        refresh_until(screen, "db_down", within_s=2 * REFRESH_S + 2 * ANSWER_WITHIN_S)
        assert page_answers(app.url) < ANSWER_WITHIN_S
        # As many refreshes at once as the server has threads (2 workers x 4): none is held
        # longer than one, they do not wait for each other in turn.
        took = []
        crowd = [threading.Thread(target=lambda: took.append(screen.refresh()[0])) for _ in range(8)]
        for thread in crowd:
            thread.start()
        for thread in crowd:
            thread.join()
        print(f"refreshes on a frozen database: {sorted(round(t, 2) for t in took)} s")
        assert len(took) == 8 and max(took) < ANSWER_WITHIN_S, took
    finally:
        pg.thaw()
    assert refresh_until(screen, "ok", within_s=REFRESH_S + 1) <= REFRESH_S + 1


def test_a_statement_slower_than_its_limit_is_cancelled_by_the_database(pg_wall):
    """A database that answers but slowly (here: a table locked by another session) cancels
    the wall's statement at DB_STATEMENT_TIMEOUT_S itself, and the wall says it is down."""
    pg, app = pg_wall
    screen = Screen(app.url)
    refresh_until(screen, "ok", within_s=20)
    blocker = create_engine(pg.url)
    with blocker.connect() as conn:
        conn.exec_driver_sql("LOCK TABLE issues, issue_events, movements IN ACCESS EXCLUSIVE MODE")
        refresh_until(screen, "db_down", within_s=2 * REFRESH_S + 2 * ANSWER_WITHIN_S)
        conn.rollback()
    blocker.dispose()
    assert "canceling statement due to statement timeout" in app.log.read_text()
    assert refresh_until(screen, "ok", within_s=REFRESH_S + 1) <= REFRESH_S + 1


def test_a_pool_without_a_free_connection_is_waited_for_at_most_db_pool_timeout_s(pg_wall, monkeypatch):
    from data.wall import screens

    pg, _ = pg_wall
    monkeypatch.setattr(db, "_bounded", True)
    monkeypatch.setenv("DB_POOL_TIMEOUT_S", "0.5")
    engine = db.make_engine(pg.url)
    monkeypatch.setitem(db._engines, pg.url, engine)
    held = [engine.connect() for _ in range(10)]          # pool_size 5 + max_overflow 5
    try:
        started = time.monotonic()
        with pytest.raises(screens.SourceUnavailable, match="no free database connection"):
            screens._read(pg.url, lambda conn: {})
        assert 0.45 <= time.monotonic() - started < 2
    finally:
        for conn in held:
            conn.close()
        engine.dispose()


def test_a_database_stopped_and_restarted_mid_display(pg_wall):
    pg, app = pg_wall
    screen = Screen(app.url)
    refresh_until(screen, "ok", within_s=20)
    pg.stop()
    try:
        refresh_until(screen, "db_down", within_s=2 * REFRESH_S + ANSWER_WITHIN_S)
        assert page_answers(app.url) < ANSWER_WITHIN_S
    finally:
        pg.start()
    assert refresh_until(screen, "ok", within_s=REFRESH_S + 1) <= REFRESH_S + 1


# ---- Redis gone ---------------------------------------------------------------------------

class RedisServer:
    """`redis-server` of the test's own on a free port, in memory only."""

    def __init__(self):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            unavailable("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("redis-server did not listen within 10 s")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def keys(self, prefix: str) -> int:
        import redis

        return len(redis.Redis.from_url(self.url).keys(prefix + "*"))


@pytest.fixture(scope="module")
def sqlite_plant(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plant")
    url = f"sqlite:///{folder / 'plant.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=3, seed=3)
    db.dispose_all()
    return url


def board_ids(response: dict) -> list[str]:
    return [row["id"] for row in response["overview-board-data"]["data"]["rows"]]


def test_redis_gone_the_wall_computes_per_worker_and_shares_again_when_it_returns(sqlite_plant, tmp_path):
    redis_server = RedisServer().start()
    prefix = "floorlink-faults:"
    app = AppServer(sqlite_plant, tmp_path, REFRESH_S=str(REFRESH_S), REDIS_URL=redis_server.url,
                    CACHE_KEY_PREFIX=prefix).start()
    try:
        screen = Screen(app.url)
        refresh_until(screen, "ok", within_s=20)
        assert redis_server.keys(prefix) > 0
        shared_board = board_ids(screen.refresh()[1])
        assert shared_board
        redis_server.kill()
        answers = [screen.refresh() for _ in range(16)]
        for took, response in answers:
            assert status_of(response) == "ok"
            assert board_ids(response) == shared_board       # the same plant, computed here
            assert "未关闭问题" in json.dumps(response["overview-tiles"], ensure_ascii=False)
            assert took < ANSWER_WITHIN_S
        warnings = app.log.read_text().count("the shared cache (Redis) does not answer")
        assert 1 <= warnings <= 2, warnings          # one per worker and outage, not per request
        redis_server.start()
        deadline = time.monotonic() + cache.REDIS_RETRY_S + 3 * REFRESH_S
        while redis_server.keys(prefix) == 0:
            assert time.monotonic() < deadline, "the shared cache is not used again"
            screen.refresh()
            time.sleep(0.5)
        assert app.log.read_text().count("the shared cache (Redis) does not answer") == warnings
    finally:
        app.stop()
        redis_server.kill()


def test_an_outage_of_redis_is_one_warning_however_often_it_is_asked_again(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")   # nothing listens
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "REDIS_RETRY_S", 0)                           # ask on every call
    server = Flask("faults-redis")
    cache.init_app(server)
    computed = []
    with server.app_context(), caplog.at_level("WARNING", logger="data.cache"):
        for n in range(10):
            assert cache.cached(f"key-{n % 3}", lambda: computed.append(1) or {"n": 1}) == {"n": 1}
    assert len(computed) == 3                     # kept in this worker's memory meanwhile
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "does not answer" in messages[0], messages


# ---- one request cannot exhaust the server ----------------------------------------------

def worker_rss_mb(app: AppServer) -> list[float]:
    children = Path(f"/proc/{app.process.pid}/task/{app.process.pid}/children").read_text().split()
    sizes = []
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


def post_huge(port: int, size: int, chunked: bool = False) -> tuple[int, float]:
    """POST a body of `size` bytes to the callback endpoint, sending it as long as the server
    reads it; the status and the seconds until it came."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        sock.sendall(f"POST /_dash-update-component HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     f"application/json\r\n{length}\r\n\r\n".encode())
        chunk = b"[" * (1024 * 1024)
        try:
            for _ in range(size // len(chunk)):
                sock.sendall(b"100000\r\n" + chunk + b"\r\n" if chunked else chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass    # the server answered and closed: what is wanted
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        return reply.status, time.monotonic() - started


@pytest.fixture(scope="module")
def sqlite_wall(sqlite_plant, tmp_path_factory):
    folder = tmp_path_factory.mktemp("wall")
    app = AppServer(sqlite_plant, folder, REFRESH_S=str(REFRESH_S)).start()
    yield app
    app.stop()


def test_serve_is_gunicorn_without_the_reload_hash(sqlite_wall):
    log = sqlite_wall.log.read_text()
    assert "Using worker: gthread" in log and "Running on http" not in log
    assert requests.get(sqlite_wall.url + "/_reload-hash", timeout=10).status_code == 404


@pytest.mark.parametrize("chunked", [False, True], ids=["with-length", "chunked"])
def test_a_100_mb_post_is_refused_quickly_and_memory_does_not_grow(sqlite_wall, chunked):
    Screen(sqlite_wall.url).refresh()
    before = worker_rss_mb(sqlite_wall)
    status, took = post_huge(sqlite_wall.port, 100 * 1024 * 1024, chunked=chunked)
    after = worker_rss_mb(sqlite_wall)
    print(f"100 MB POST ({'chunked' if chunked else 'with length'}): {status} in {took:.2f} s; "
          f"worker RSS MB before {before}, after {after}")
    assert status == 413
    assert took < 5
    assert max(a - b for a, b in zip(after, before)) < 20


def test_a_malformed_callback_request_is_one_line_in_the_log(sqlite_wall):
    before = sqlite_wall.log.read_text()
    bodies = [{}, {"output": "nothing.children", "outputs": {"id": "nothing", "property": "children"},
                   "inputs": [], "changedPropIds": []}, [1, 2, 3]]
    for body in bodies:
        reply = requests.post(sqlite_wall.url + "/_dash-update-component", json=body, timeout=10)
        assert reply.status_code == 400
        assert "Traceback" not in reply.text
    reply = requests.post(sqlite_wall.url + "/_dash-update-component", data=b"{not json",
                          headers={"Content-Type": "application/json"}, timeout=10)
    assert reply.status_code == 400
    time.sleep(0.5)
    added = sqlite_wall.log.read_text()[len(before):]
    assert "Traceback" not in added
    assert added.count("refused a malformed callback request") == len(bodies)


def test_the_ingest_api_keeps_its_own_limit_and_answer(sqlite_plant, monkeypatch):
    from app import create_app
    from data.ingest import api, tokens

    _, secret = tokens.create(db.get_engine(sqlite_plant), "faults-test")
    client = create_app(sqlite_plant).server.test_client()
    reply = client.post("/api/v1/batch", data=b" " * (api.MAX_BODY_BYTES + 10),
                        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
    assert reply.status_code == 413
    assert "fewer items per request" in reply.get_data(as_text=True)


# ---- the file cache's locks -------------------------------------------------------------

def _file_cache(monkeypatch, tmp_path, wait_s: str = "10") -> Flask:
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CACHE_WAIT_S", wait_s)
    monkeypatch.delenv("REDIS_URL", raising=False)
    server = Flask("faults-cache")
    cache.init_app(server)
    return server


def test_the_lock_folder_stays_small_after_many_keys(monkeypatch, tmp_path):
    server = _file_cache(monkeypatch, tmp_path)
    with server.app_context():
        for n in range(500):
            assert cache.cached(f"key-{n}", lambda: {"n": n}) == {"n": n}
    assert list((tmp_path / "cache-locks").iterdir()) == []


def test_a_computation_that_does_not_end_is_waited_for_at_most_cache_wait_s(monkeypatch, tmp_path):
    server = _file_cache(monkeypatch, tmp_path, wait_s="0.5")
    release = threading.Event()

    def hung():
        release.wait(10)
        return {"late": True}

    def holds_the_lock():
        with server.app_context():
            cache.cached("slow", hung)

    with server.app_context():
        holder = threading.Thread(target=holds_the_lock)
        holder.start()
        time.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(db.SourceUnavailable):
            cache.cached("slow", lambda: {"second": True})
        waited = time.monotonic() - started
        release.set()
        holder.join()
        assert 0.45 <= waited < 1.5
        assert cache.cached("slow", lambda: {"second": True}) == {"late": True}
    assert list((tmp_path / "cache-locks").iterdir()) == []


def test_a_waiter_on_a_removed_lock_file_locks_the_path_anew(monkeypatch, tmp_path):
    """Three computations of one key in a row, each while the next waits: never two at once."""
    server = _file_cache(monkeypatch, tmp_path)
    running, most = [0], [0]
    guard = threading.Lock()

    def compute():
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with guard:
            running[0] -= 1
        return None     # never cached: every caller computes, one at a time

    def caller():
        with server.app_context():
            for _ in range(10):
                cache.cached("same", compute)

    threads = [threading.Thread(target=caller) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
    assert list((tmp_path / "cache-locks").iterdir()) == []


# ---- what the cache holds ---------------------------------------------------------------

class _Planted:
    """Unpickled, it creates `marker`: what an entry written by someone else could do in the
    server if the cache held pickles."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def _in_one_interval(refresh_s: int, needed_s: float) -> None:
    """Wait, if need be, for an interval with `needed_s` seconds left in it."""
    left = refresh_s - time.time() % refresh_s
    if left < needed_s:
        time.sleep(left + 0.5)


@pytest.mark.parametrize("store", ["redis", "files"])
def test_an_entry_planted_in_the_cache_runs_nothing_and_is_computed_anew(sqlite_plant, tmp_path, store):
    import redis

    marker = tmp_path / "planted-code-ran"
    planted = pickle.dumps(_Planted(marker))
    refresh_s, prefix = 30, "floorlink-planted:"
    redis_server = RedisServer().start() if store == "redis" else None
    env = {"REDIS_URL": redis_server.url, "CACHE_KEY_PREFIX": prefix} if redis_server else {}
    app = AppServer(sqlite_plant, tmp_path, REFRESH_S=str(refresh_s), **env).start()
    try:
        screen = Screen(app.url)
        _in_one_interval(refresh_s, needed_s=15)
        refresh_until(screen, "ok", within_s=10)
        shown = board_ids(screen.refresh()[1])
        if redis_server:
            client = redis.Redis.from_url(redis_server.url)
            keys = [k for k in client.keys(prefix + "*") if b"lock:" not in k]
            assert keys
            for key in keys:
                json.loads(client.get(key))          # stored as JSON text
                client.set(key, b"!" + planted, keepttl=True)   # as cachelib's pickles are stored
        else:
            entries = list((tmp_path / "cache").iterdir())
            assert entries
            for entry in entries:
                header, stored = entry.read_bytes()[:4], entry.read_bytes()[4:]
                json.loads(stored)
                entry.write_bytes(header + planted)
        took, response = screen.refresh()
        assert status_of(response) == "ok"
        assert board_ids(response) == shown          # computed anew, the same plant
        assert not marker.exists(), "an entry planted in the cache ran code in the server"
        assert "a cache entry that is not JSON was ignored" in app.log.read_text()
    finally:
        app.stop()
        if redis_server:
            redis_server.kill()


def test_a_value_that_json_would_change_is_refused_when_stored(monkeypatch, tmp_path):
    server = _file_cache(monkeypatch, tmp_path)
    with server.app_context():
        for value in ({"pair": (1, 2)}, {1: "one"}, {"when": datetime.now(timezone.utc)}):
            with pytest.raises(cache.NotPlainJson):
                cache.cached(f"key-{len(str(value))}", lambda: value)
        stored = {"a": [1, 2.5, None, True, "五"], "b": {"c": float("nan")}}
        assert cache.cached("plain", lambda: stored) is stored
        assert json.dumps(cache.cached("plain", lambda: None)) == json.dumps(stored)
