"""Load test of the wall: simulated screens refreshing the overview against gunicorn.

Starts `gunicorn 'app:create_server()'` with the project's gunicorn.conf.py (through
bench/gunicorn_counting.py, which adds hooks that record every SQL statement and every
request's time inside the workers) on a free 127.0.0.1 port, then sweeps a number of
screens. A screen does what the browser does: it loads the page once (GET /, the Dash
layout and dependencies, the shell and page callbacks, the overview's initial refresh),
then posts the overview's refresh callback every interval, carrying back the
`overview-sent` and `wall-status` it was answered with as the next State, with the headers
assets/wall.js adds (the screen's id, the build, kiosk) and X-Bench-Kind, by which the
workers' record tells the screens' requests from other clients' (bench/mixed.py). `Screen`
shows any wall page and scope.

Each step runs in three modes: staggered (each screen at its own random phase of the
interval, as unsynchronised TVs), aligned (each screen just past the server's snapshot
boundary, by the delay it draws once, as assets/wall.js alignRefresh makes real browsers
do) and synchronised (every screen 250 ms past the boundary in the same millisecond: the
worst case). During each run issues are raised through data.store, and the time until the
first and the last screen show them is measured. Each step also says how much of the
machine the screens took themselves (they share its cores with the server).

    .venv/bin/python -m bench.load [--url URL] [--redis URL] [--screens 1,10,50,200]
                                   [--seconds 60] [--refresh-s 10] [--live]

All traffic stays on 127.0.0.1; the run refuses to last longer than 30 minutes and stops
the server, the simulator and every screen at the end, on errors and on Ctrl-C alike.
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
COUNTING_CONFIG = ROOT / "bench" / "gunicorn_counting.py"

MAX_RUN_S = 30 * 60
WALL_JS = ROOT / "assets" / "wall.js"
# The synchronised variant: every screen this long after each snapshot boundary, in the same
# millisecond (what alignRefresh did before each screen drew a delay of its own).
SYNCHRONISED_DELAY_S = 0.25
# gunicorn closes a keep-alive connection idle for 2 s; a screen reconnects before that.
KEEPALIVE_REUSE_S = 1.5
REQUEST_TIMEOUT_S = 30.0
PAGE_LOADS_AT_ONCE = 16
SERVER_START_TIMEOUT_S = 90
# Statement kinds (bench/gunicorn_counting.statement_kind) that mark a snapshot computation
# (data/wall_state.WallState.frames reads the bulk version first) and a full frame reload.
COMPUTATION_KIND = "SELECT data_versions"
FULL_LOAD_KIND = "SELECT departments"
REFRESH_OUTPUT = "overview-sent.data"
# The tables the wall reads: the statements on others (the fleet's record of screens, the
# doors' sign-in check) are not the wall's work per interval.
WALL_TABLES = frozenset({"data_versions", "issues", "issue_events", "movements", "lot_stock",
                         "production_plan", "locations", "departments", "sla_rules", "materials",
                         "people"})
WALL_PAGES = ("overview", "issues", "material")
# Says which of the bench's clients sent a request (recorded by bench/gunicorn_counting.py).
BENCH_KIND_HEADER = "X-Bench-Kind"
MODES = ("staggered", "aligned", "synchronised")
WARM_UP_SCREENS = 4
WARM_UP_CHUNKS = 8


class LoadTestError(RuntimeError):
    """The run cannot go on (server did not start, a reply was not what a browser gets)."""


# ---- loopback only -----------------------------------------------------------------------

def require_loopback(host: str | None, what: str) -> None:
    """Refuse any target that is not this machine."""
    if host in (None, "", "localhost"):
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SystemExit(f"{what} must be on this machine (127.0.0.1, localhost or ::1), got {host!r}")


def database_host(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return None if parsed.get_backend_name() == "sqlite" else parsed.host


# ---- a small HTTP/1.1 client on asyncio ------------------------------------------------

@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    sent_at: float          # wall clock when the request started going out
    done_at: float          # wall clock when the last byte of the body arrived
    rtt_ms: float           # send start to last body byte (excludes opening the connection)


class Connection:
    """One screen's keep-alive connection, reopened when idle or closed, as a browser does."""

    def __init__(self, port: int):
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._idle_since = 0.0
        self.opened = 0

    async def _open(self) -> None:
        await self.close()
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.opened += 1

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        self._reader = self._writer = None

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> Reply:
        stale = self._writer is None or time.monotonic() - self._idle_since > KEEPALIVE_REUSE_S
        if stale:
            await self._open()
        try:
            return await self._exchange(method, path, body, headers or {})
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            if stale or getattr(exc, "partial", b""):
                raise
            # The server closed the idle connection just before we reused it: nothing was
            # answered, so sending again on a new connection is what a browser does too.
            await self._open()
            return await self._exchange(method, path, body, headers or {})

    async def _exchange(self, method: str, path: str, body: bytes | None,
                        headers: dict[str, str]) -> Reply:
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}",
                "Accept-Encoding: identity", "Connection: keep-alive"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            head.append(f"Content-Length: {len(body)}")
        sent_at, started = time.time(), time.perf_counter()
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
        await self._writer.drain()
        status_line = await self._reader.readuntil(b"\r\n")
        if not status_line:
            raise ConnectionResetError("connection closed before the answer")
        status = int(status_line.split()[1])
        response_headers: dict[str, str] = {}
        while True:
            line = await self._reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            response_headers[name.strip().lower()] = value.strip()
        if "content-length" in response_headers:
            payload = await self._reader.readexactly(int(response_headers["content-length"]))
        elif response_headers.get("transfer-encoding", "").lower() == "chunked":
            payload = await self._read_chunked()
        else:
            payload = await self._reader.read()
            response_headers["connection"] = "close"
        rtt_ms = (time.perf_counter() - started) * 1000
        done_at = time.time()
        if response_headers.get("connection", "").lower() == "close":
            await self.close()
        self._idle_since = time.monotonic()
        return Reply(status, response_headers, payload, sent_at, done_at, rtt_ms)

    async def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await self._reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                return b"".join(chunks)
            chunks.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)


# ---- the Dash callback requests, built as the renderer builds them ----------------------

_MISSING = object()


def callback_request(callback: dict, input_values: list, state_values: list) -> dict:
    """The JSON body dash-renderer posts to /_dash-update-component for `callback` (an entry
    of /_dash-dependencies). An input value of _MISSING is left out, as on an initial call
    of a property the layout did not set (an Interval's n_intervals)."""
    spec = callback["output"]
    if not spec.startswith(".."):
        raise LoadTestError(f"only multi-output callbacks are replayed, got {spec!r}")
    outputs = []
    for part in spec[2:-2].split("..."):
        component, _, prop = part.partition(".")
        outputs.append({"id": component, "property": prop})
    inputs = [dict(i) if v is _MISSING else {**i, "value": v}
              for i, v in zip(callback["inputs"], input_values)]
    changed = [f"{i['id']}.{i['property']}" for i in callback["inputs"]]
    body = {"output": spec, "outputs": outputs, "inputs": inputs,
            "changedPropIds": changed, "parsedChangedPropsIds": list(changed)}
    if callback["state"]:
        body["state"] = [{**s, "value": v} for s, v in zip(callback["state"], state_values)]
    return body


def find_callback(dependencies: list[dict], output: str) -> dict:
    """The server callback that writes `output` ("component.property")."""
    for callback in dependencies:
        spec = callback["output"]
        written = [part.split("@")[0] for part in spec.strip(".").split("...")]
        if callback.get("clientside_function") is None and output in written:
            return callback
    raise LoadTestError(f"no server callback writes {output} in /_dash-dependencies")


def dash_config(page_html: str) -> dict:
    found = re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>',
                      page_html, re.S)
    if not found:
        raise LoadTestError("GET / did not return a Dash page (no _dash-config)")
    return json.loads(found.group(1))


# ---- one simulated screen ---------------------------------------------------------------

@dataclass
class Refresh:
    """One refresh of one screen, as its browser would experience it."""
    screen: int
    due: float
    sent_at: float
    done_at: float | None = None
    rtt_ms: float | None = None
    status: int | None = None
    body_bytes: int = 0
    error: str | None = None
    late: bool = False
    as_of_ms: int | None = None     # the instant of the data it was answered with
    outputs: list[str] = field(default_factory=list)
    resent_unchanged: list[str] = field(default_factory=list)


class Screen:
    """A wall screen: the page at `path` with its query (`search`: "?dept=QA&lang=en"); by
    default the overview at the site scope."""

    def __init__(self, number: int, port: int, markers: dict[str, dict[int, float]],
                 path: str = "/", search: str = ""):
        self.number = number
        self.connection = Connection(port)
        self.address = (path, search)
        self.page = ""
        self.markers = markers          # issue title -> {screen: wall time it was first shown}
        self.n_intervals = 0
        self.sent: dict = {}
        self.status: dict = {}
        self.scope: dict = {}
        self.last_values: dict = {}
        self.refreshes: list[Refresh] = []
        self.first: Refresh | None = None
        self._refresh_callback: dict = {}
        self._path = ""
        self._headers: dict[str, str] = {}

    async def load_page(self) -> None:
        """What the browser asks for when the page opens (the script bundles aside)."""
        page = await self.connection.request("GET", "/")
        _expect_ok(page, "GET /")
        config = dash_config(page.body.decode())
        for path in ("/_dash-layout", "/_dash-dependencies"):
            reply = await self.connection.request("GET", path, headers={"Accept": "application/json"})
            _expect_ok(reply, f"GET {path}")
        dependencies = json.loads(reply.body)
        prefix = config.get("requests_pathname_prefix") or "/"
        self._path = f"{prefix}_dash-update-component?endId={config['end_id']}"
        self._headers = {"Accept": "application/json", "Content-Type": "application/json",
                         "Referer": f"http://127.0.0.1:{self.connection.port}/",
                         "X-FloorLink-Screen": uuid.uuid4().hex, BENCH_KIND_HEADER: "refresh"}
        path, search = self.address
        shell = find_callback(dependencies, "wall-title.children")
        reply = await self._post(callback_request(shell, [search, path], []))
        _expect_ok(reply, "the shell callback")
        # What assets/wall.js sends with every callback, from the shell's config.
        config = json.loads(reply.body)["response"].get("wall-config", {}).get("data") or {}
        self._headers.update({"X-FloorLink-Build": config.get("build_id", ""),
                              "X-FloorLink-Kiosk": "1" if config.get("kiosk") else "0"})
        pages = find_callback(dependencies, "_pages_content.children")
        reply = await self._post(callback_request(pages, [path, search], []))
        _expect_ok(reply, "the page callback")
        self.page, self.scope = page_scope(json.loads(reply.body))
        self._refresh_callback = find_callback(dependencies, f"{self.page}-sent.data")
        self.first = await self.refresh(due=time.time(), initial=True)
        if self.first.error:
            raise LoadTestError(f"screen {self.number}: the initial refresh failed: {self.first.error}")

    def payload(self, initial: bool = False) -> dict:
        value = _MISSING if initial else self.n_intervals
        return callback_request(self._refresh_callback, [value], [self.scope, self.sent, self.status])

    async def _post(self, body: dict) -> Reply:
        return await self.connection.request("POST", self._path, json.dumps(body).encode(),
                                             self._headers)

    async def refresh(self, due: float, initial: bool = False) -> Refresh:
        if not initial:
            self.n_intervals += 1
        record = Refresh(self.number, due, sent_at=time.time())
        try:
            reply = await asyncio.wait_for(self._post(self.payload(initial)), REQUEST_TIMEOUT_S)
        except asyncio.TimeoutError:
            record.error = "timeout"
            await self.connection.close()
            return record
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            await self.connection.close()
            return record
        record.sent_at, record.done_at, record.rtt_ms = reply.sent_at, reply.done_at, reply.rtt_ms
        record.status, record.body_bytes = reply.status, len(reply.body)
        if reply.status != 200:
            record.error = f"HTTP {reply.status}"
            return record
        try:
            answer = json.loads(reply.body)["response"]
            self.sent = answer[f"{self.page}-sent"]["data"]
            self.status = answer["wall-status"]["data"]
        except (ValueError, KeyError, TypeError) as exc:
            record.error = f"not a refresh answer: {exc!r}: {reply.body[:200]!r}"
            return record
        if self.status.get("state") != "ok":
            record.error = f"wall-status {self.status.get('state')!r}"
        record.as_of_ms = self.status.get("last_good_ms")
        record.outputs = sorted(answer)
        record.resent_unchanged = self._resent_unchanged(answer)
        board = answer.get(f"{self.page}-board-data", {}).get("data")
        if board:
            titles = {row["title"] for row in board["rows"]}
            for title, seen in self.markers.items():
                if title in titles and self.number not in seen:
                    seen[self.number] = reply.done_at
        return record

    def _resent_unchanged(self, answer: dict) -> list[str]:
        """Panels sent again exactly as this screen already shows them: whole outputs, and
        the tiles of a patch (a tile counts when every part of it sent is unchanged)."""
        resent = []
        for component, props in answer.items():
            if component in (f"{self.page}-sent", f"{self.page}-notice", "wall-status"):
                continue
            for prop, value in props.items():
                if isinstance(value, dict) and "__dash_patch_update" in value:
                    parts: dict[str, list] = {}
                    for op in value["operations"]:
                        name = f"{component} {prop} [{op['location'][0]}]"
                        parts.setdefault(name, []).append((json.dumps(op["location"]), op.get("params")))
                else:
                    parts = {f"{component} {prop}": [("", value)]}
                for name, pieces in parts.items():
                    if all(self.last_values.get((name, where), _MISSING) == piece for where, piece in pieces):
                        resent.append(name)
                    self.last_values.update({(name, where): piece for where, piece in pieces})
        return resent

    async def run(self, dues: list[float], period_s: float) -> None:
        """Refresh at each due instant; a refresh still unanswered when the next is due
        drops that next one, as a renderer cannot fire twice at once."""
        for k, due in enumerate(dues):
            now = time.time()
            if now > due:
                continue
            await asyncio.sleep(due - now)
            record = await self.refresh(due)
            next_due = dues[k + 1] if k + 1 < len(dues) else due + period_s
            record.late = record.error is not None or (record.done_at or math.inf) > next_due
            self.refreshes.append(record)


def _expect_ok(reply: Reply, what: str) -> None:
    if reply.status != 200:
        raise LoadTestError(f"{what} answered HTTP {reply.status}: {reply.body[:300]!r}")


def component_props(answer) -> list[dict]:
    """The props of every component in a callback's answer, outermost first."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("props"), dict):
                found.append(node["props"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(answer)
    return found


def page_scope(pages_answer: dict) -> tuple[str, dict]:
    """The wall page the page callback's layout holds, and its scope Store's data."""
    scopes = {f"{page}-scope" for page in WALL_PAGES}
    for props in component_props(pages_answer):
        if isinstance(props.get("id"), str) and props["id"] in scopes:
            return props["id"].removesuffix("-scope"), props["data"]
    raise LoadTestError("the page callback did not send a wall page (no page scope)")


# ---- the server and what its workers record ---------------------------------------------

def stop_process_group(process: subprocess.Popen | None) -> None:
    """Stop a server started in a session of its own, and its workers: politely, then not."""
    if process and process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class Server:
    """gunicorn on the project's settings plus the counting hooks, on a free loopback port."""

    def __init__(self, database_url: str, workdir: Path, refresh_s: int, redis_url: str | None,
                 cache_prefix: str, workers: int | None, threads: int | None):
        self.port = free_port()
        self.counts = workdir / "counts"
        self.counts.mkdir()
        self.log = workdir / "gunicorn.log"
        env = {**os.environ, "DATABASE_URL": database_url, "HOST": "127.0.0.1",
               "PORT": str(self.port), "REFRESH_S": str(refresh_s), "CACHE_DIR": str(workdir / "cache"),
               "CACHE_KEY_PREFIX": cache_prefix, "BENCH_COUNT_DIR": str(self.counts),
               "PYTHONUNBUFFERED": "1"}
        env.pop("REDIS_URL", None)
        if redis_url:
            env["REDIS_URL"] = redis_url
        if workers:
            env["WEB_CONCURRENCY"] = str(workers)
        if threads:
            env["GUNICORN_THREADS"] = str(threads)
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> "Server":
        gunicorn = Path(sys.executable).parent / "gunicorn"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(gunicorn), "-c", str(COUNTING_CONFIG), "app:create_server()"], cwd=ROOT,
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LoadTestError(f"gunicorn exited: {self.log.read_text()[-3000:]}")
            workers = list(self.counts.glob("requests-*.tsv"))
            if workers and self._answers():
                return self
            time.sleep(0.3)
        raise LoadTestError(f"gunicorn did not serve within {SERVER_START_TIMEOUT_S} s: "
                            f"{self.log.read_text()[-3000:]}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"GET /_dash-layout HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                return s.recv(12).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def stop(self) -> None:
        stop_process_group(self.process)
        self.process = None

    def worker_pids(self) -> list[int]:
        return sorted(int(p.stem.split("-")[1]) for p in self.counts.glob("queries-*.tsv"))

    def queries(self, since: float, until: float) -> list[tuple[float, str, int]]:
        """(time, kind, worker pid) of every statement the workers sent in [since, until)."""
        rows = []
        for path in self.counts.glob("queries-*.tsv"):
            pid = int(path.stem.split("-")[1])
            for line in path.read_text().splitlines():
                at, kind = line.split("\t")
                if since <= float(at) < until:
                    rows.append((float(at), kind, pid))
        return sorted(rows)

    def workers_that_ran(self, kind: str) -> list[int]:
        """Pids of the workers that sent a statement of `kind` at any time."""
        return sorted({pid for _at, k, pid in self.queries(0, math.inf) if k == kind})

    def request_times(self, since: float, until: float, path: str | None = None,
                      kind: str | None = None) -> list[float]:
        """Milliseconds inside the workers of the requests ending in [since, until): to `path`
        and from the bench's clients of `kind` (BENCH_KIND_HEADER), each when given."""
        times = []
        for file in self.counts.glob("requests-*.tsv"):
            for line in file.read_text().splitlines():
                at, request_path, _status, _sent, ms, sent_by = line.split("\t")
                if path in (None, request_path) and kind in (None, sent_by) and since <= float(at) < until:
                    times.append(float(ms))
        return times


def process_facts(pids: list[int]) -> dict[int, dict]:
    """Resident memory (MiB) and CPU seconds of each process still running."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        rss_kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")), 0)
        found[pid] = {"rss_mib": rss_kb / 1024, "cpu_s": (int(stat[11]) + int(stat[12])) / ticks}
    return found


def session_pids(leader: int) -> list[int]:
    """The processes of a session: gunicorn's master and its workers."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == leader:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Simulator:
    """The live simulator in a process of its own, so its work does not slow the screens."""

    CODE = ("from data import db; from data.demo import simulator; "
            "simulator.start_background(db.get_engine()).join()")

    def __init__(self, database_url: str, log: Path):
        self.database_url, self.log = database_url, log
        self.process: subprocess.Popen | None = None

    def start(self) -> "Simulator":
        env = {**os.environ, "DATABASE_URL": self.database_url, "PYTHONUNBUFFERED": "1"}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-c", self.CODE], cwd=ROOT, env=env,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        self.process = None


# ---- new rows during the run (T6) ------------------------------------------------------

class IssueWriter:
    """Raises issues through data.store with unique titles, and resolves them at the end so
    a shared database keeps no test issue on its board."""

    def __init__(self, database_url: str, tag: str):
        from sqlalchemy import select

        from data import db
        from data.models import Location, SlaRule

        self.engine = db.get_engine(database_url)
        self.tag = tag
        self.raised: list[str] = []
        with self.engine.connect() as conn:
            self.issue_type = conn.execute(select(SlaRule.issue_type).order_by(SlaRule.issue_type)).scalar()
            self.location = conn.execute(select(Location.code).order_by(Location.code)).scalar()
        if self.issue_type is None:
            raise LoadTestError("the database has no SLA rules: load a plant first")

    def raise_one(self) -> tuple[str, float]:
        """Write one issue; return its title and the wall time its transaction committed."""
        from data import db, store, timezones

        number = len(self.raised) + 1
        issue_id = f"LOADTEST-{self.tag}-{number:03d}"
        title = f"load test {self.tag} #{number}"
        with db.session_scope(self.engine) as session:
            store.raise_issue(session, issue_id=issue_id, issue_type=self.issue_type, title=title,
                              severity="P3", at=timezones.utc_now(), location_code=self.location,
                              raised_by="load-test")
        self.raised.append(issue_id)
        return title, time.time()

    def resolve_all(self) -> None:
        from data import db, store, timezones

        for issue_id in self.raised:
            with db.session_scope(self.engine) as session:
                store.resolve(session, issue_id, timezones.utc_now(), actor="load-test",
                              cause="load test issue")
        self.raised.clear()


# ---- one run: N screens in one mode -------------------------------------------------------

def wall_statement(kind: str) -> bool:
    """Whether a statement kind (bench/gunicorn_counting.statement_kind) reads the wall's tables."""
    return kind.split(" ")[-1] in WALL_TABLES


def align_delay_range_s() -> tuple[float, float]:
    """The delay past each snapshot boundary that alignRefresh in assets/wall.js draws once per
    screen: (lowest, highest) in seconds."""
    found = re.search(r"floorlinkJitterMs = (\d+) \+ Math\.floor\(Math\.random\(\) \* (\d+)\)",
                      WALL_JS.read_text())
    if not found:
        raise LoadTestError("assets/wall.js alignRefresh no longer draws its delay as this load test "
                            "replays it: update bench/load.py align_delay_range_s")
    low_ms, spread_ms = int(found.group(1)), int(found.group(2))
    return low_ms / 1000, (low_ms + spread_ms) / 1000


def schedule(mode: str, start: float, end: float, period_s: float, rng: random.Random) -> list[float]:
    """The instants one screen refreshes at within [start, end)."""
    boundary = math.ceil(start / period_s) * period_s
    if mode == "aligned":
        first = boundary + rng.uniform(*align_delay_range_s())
    elif mode == "synchronised":
        first = boundary + SYNCHRONISED_DELAY_S
    else:
        first = start + rng.uniform(0, period_s)
    return [t for t in (first + k * period_s for k in range(int((end - start) / period_s) + 2))
            if t < end]


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def run_step(server: Server, writer: IssueWriter | None, screens_n: int, mode: str,
                   seconds: float, period_s: int, rng: random.Random) -> dict:
    markers: dict[str, dict[int, float]] = {}
    screens = [Screen(i, server.port, markers) for i in range(screens_n)]
    gate = asyncio.Semaphore(PAGE_LOADS_AT_ONCE)

    async def load(screen: Screen) -> None:
        async with gate:
            await screen.load_page()

    loading = time.time()
    try:
        await asyncio.gather(*(load(s) for s in screens))
        page_load_s = time.time() - loading
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.time() + 0.5
        end = start + seconds
        dues = {s.number: schedule(mode, start, end, period_s, rng) for s in screens}
        writes: list[dict] = []

        async def write_issues() -> None:
            # One issue every other interval, at a random point of it, while every screen can
            # still refresh twice after it before the run ends.
            at = start + rng.uniform(0.1, 0.9) * period_s
            while at + 2 * period_s + 1 < end:
                await asyncio.sleep(max(0.0, at - time.time()))
                title, committed = await asyncio.to_thread(writer.raise_one)
                markers[title] = {}
                writes.append({"title": title, "committed": committed})
                at += 2 * period_s + rng.uniform(-0.4, 0.4) * period_s

        tasks = [asyncio.create_task(s.run(dues[s.number], period_s)) for s in screens]
        if writer is not None:
            tasks.append(asyncio.create_task(write_issues()))
        await asyncio.gather(*tasks)
        finished = time.time()
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        await asyncio.gather(*(s.connection.close() for s in screens), return_exceptions=True)
    step = summarise(server, screens, writes, markers, mode, start, end, finished, period_s,
                     page_load_s)
    # The screens share the machine with the server: how much of it they took themselves.
    step["client_cpu_share"] = (cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime
                                - cpu_before.ru_stime) / (finished - start)
    step["load_average"] = os.getloadavg()[0]
    return step


def summarise(server: Server, screens: list[Screen], writes: list[dict],
              markers: dict[str, dict[int, float]], mode: str, start: float, end: float,
              finished: float, period_s: int, page_load_s: float) -> dict:
    refreshes = [r for s in screens for r in s.refreshes]
    answered = [r for r in refreshes if r.error is None]
    rtts = [r.rtt_ms for r in answered]
    server_ms = server.request_times(start, finished + 1, "/_dash-update-component", "refresh")
    first_bytes = [s.first.body_bytes for s in screens]
    steady_bytes = [r.body_bytes for r in answered]
    outputs = Counter(o for r in answered for o in r.outputs)

    # Intervals wholly inside the run: every screen refreshed in them.
    first_bucket = math.ceil(start / period_s)
    last_bucket = math.floor(min(end, finished) / period_s) - 1
    statements = [q for q in server.queries(first_bucket * period_s, (last_bucket + 1) * period_s)
                  if wall_statement(q[1])]
    per_bucket = {b: Counter() for b in range(first_bucket, last_bucket + 1)}
    for at, kind, _pid in statements:
        per_bucket[int(at // period_s)][kind] += 1
    queries_per_tick = [sum(c.values()) for c in per_bucket.values()]
    computations = [c[COMPUTATION_KIND] for c in per_bucket.values()]
    full_loads = sum(c[FULL_LOAD_KIND] for c in per_bucket.values())
    incremental = [sum(c.values()) for c in per_bucket.values() if not c[FULL_LOAD_KIND]]
    kinds = Counter()
    for c in per_bucket.values():
        if not c[FULL_LOAD_KIND]:
            kinds.update(c)

    latencies = []
    for w in writes:
        seen = markers[w["title"]]
        shown = sorted(t - w["committed"] for t in seen.values())
        latencies.append({"title": w["title"], "screens_showing": len(shown), "screens": len(screens),
                          "first_s": shown[0] if shown else None,
                          "last_s": shown[-1] if len(shown) == len(screens) else None})
    firsts = [x["first_s"] for x in latencies if x["first_s"] is not None]
    lasts = [x["last_s"] for x in latencies if x["last_s"] is not None]
    errors = Counter(r.error.split(":")[0] for r in refreshes if r.error)
    return {
        "mode": mode, "screens": len(screens), "seconds": end - start, "period_s": period_s,
        "page_load_s": page_load_s,
        "refreshes": len(refreshes), "answered": len(answered),
        "callbacks_per_s": len(answered) / (end - start),
        "rtt_ms": {"p50": percentile(rtts, 0.5), "p95": percentile(rtts, 0.95),
                   "p99": percentile(rtts, 0.99), "max": max(rtts, default=None)},
        "server_ms": {"count": len(server_ms), "p50": percentile(server_ms, 0.5),
                      "p95": percentile(server_ms, 0.95), "p99": percentile(server_ms, 0.99),
                      "max": max(server_ms, default=None)},
        "errors": sum(errors.values()), "error_kinds": dict(errors),
        "dropped": sum(r.late for r in refreshes),
        "bytes_first": {"median": percentile(first_bytes, 0.5), "max": max(first_bytes)},
        "bytes_steady": {"median": percentile(steady_bytes, 0.5), "p95": percentile(steady_bytes, 0.95),
                         "max": max(steady_bytes, default=None)},
        "outputs_share": {o: n / len(answered) for o, n in sorted(outputs.items())} if answered else {},
        "resent_unchanged": sum(len(r.resent_unchanged) for r in answered),
        "resent_unchanged_by_output": dict(Counter(o for r in answered for o in r.resent_unchanged)),
        "intervals": len(per_bucket),
        "queries_per_tick": {"median": percentile(queries_per_tick, 0.5),
                             "min": min(queries_per_tick, default=None),
                             "max": max(queries_per_tick, default=None),
                             "incremental_median": percentile(incremental, 0.5),
                             "each": queries_per_tick},
        "queries_by_kind_incremental": dict(sorted(kinds.items())),
        "computations_per_tick": {"max": max(computations, default=None),
                                  "min": min(computations, default=None), "each": computations},
        "full_loads": full_loads,
        "new_row": {"writes": latencies,
                    "first_p95_s": percentile(firsts, 0.95), "last_p95_s": percentile(lasts, 0.95),
                    "last_max_s": max(lasts, default=None),
                    "missed": sum(1 for x in latencies if x["last_s"] is None)},
        "connections_opened": sum(s.connection.opened for s in screens),
    }


# ---- checks before the sweep ------------------------------------------------------------

async def preflight(server: Server) -> dict:
    """One screen loads the page and refreshes twice: every answer must be what a browser gets."""
    screen = Screen(-1, server.port, {})
    try:
        await screen.load_page()
        first = screen.first
        second = await screen.refresh(time.time())
        if second.error:
            raise LoadTestError(f"the replayed refresh failed: {second.error}")
        return {"first_bytes": first.body_bytes, "first_outputs": first.outputs,
                "second_bytes": second.body_bytes, "second_outputs": second.outputs,
                "status": screen.status.get("state")}
    finally:
        await screen.connection.close()


def browser_payloads(url: str, period_s: int) -> list[dict]:
    """The refresh callback bodies a real Chromium posts, from its network log."""
    from tools.browser import chromium

    driver = chromium(performance_log=True)
    try:
        driver.get(url)
        time.sleep(2 * period_s + 3)
        bodies = []
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] != "Network.requestWillBeSent":
                continue
            request = message["params"]["request"]
            if "_dash-update-component" in request["url"] and REFRESH_OUTPUT in (request.get("postData") or ""):
                bodies.append(json.loads(request["postData"]))
        return bodies
    finally:
        driver.quit()


async def compare_with_browser(server: Server, period_s: int) -> dict:
    """Rebuild each refresh body the browser sent from its own values: they must be equal."""
    from tools.browser import missing_browser

    if missing_browser():
        return {"checked": False, "why": missing_browser()}
    bodies = await asyncio.to_thread(browser_payloads, f"http://127.0.0.1:{server.port}/", period_s)
    screen = Screen(-2, server.port, {})
    try:
        await screen.load_page()
    finally:
        await screen.connection.close()
    mismatches = []
    for body in bodies:
        value = body["inputs"][0].get("value", _MISSING)
        rebuilt = callback_request(screen._refresh_callback, [value],
                                   [s["value"] for s in body["state"]])
        if rebuilt != body:
            mismatches.append({"browser": body, "replayed": rebuilt})
    return {"checked": True, "browser_refreshes": len(bodies), "equal": len(bodies) - len(mismatches),
            "mismatches": mismatches[:2]}


# ---- the machine and the report -----------------------------------------------------------

def machine_facts() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"cpu_model": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


TABLE_HEAD = ("| mode | screens | callbacks/s | RTT p50 / p95 / p99 / max ms | server p50 / p95 / p99 ms "
              "| errors | dropped | bytes first | bytes steady median / max | resent unchanged "
              "| queries/tick median (max) | computations/tick | full loads "
              "| new row first / last p95 s | screens' own CPU |\n" + "|---" * 15 + "|")


def table_row(step: dict) -> str:
    """One Markdown table row of a run."""
    rtt, srv = step["rtt_ms"], step["server_ms"]
    q, c, new = step["queries_per_tick"], step["computations_per_tick"], step["new_row"]
    steady = step["bytes_steady"]
    computations = f"{c['min']}" if c["min"] == c["max"] else f"{c['min']}..{c['max']}"
    return (f"| {step['mode']} | {step['screens']} | {step['callbacks_per_s']:.1f} "
            f"| {_ms(rtt['p50'])} / {_ms(rtt['p95'])} / {_ms(rtt['p99'])} / {_ms(rtt['max'])} "
            f"| {_ms(srv['p50'])} / {_ms(srv['p95'])} / {_ms(srv['p99'])} "
            f"| {step['errors']} | {step['dropped']} | {step['bytes_first']['median']:.0f} "
            f"| {steady['median'] or 0:.0f} / {steady['max'] or 0:.0f} | {step['resent_unchanged']} "
            f"| {_s(q['incremental_median'])} ({_s(q['max'])}) | {computations} | {step['full_loads']} "
            f"| {_s(new['first_p95_s'])} / {_s(new['last_p95_s'])} "
            f"| {_share(step.get('client_cpu_share'))} |")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def verdicts(steps: list[dict], period_s: int) -> dict:
    """The targets T4..T7 against what was measured, per mode where the mode matters."""
    biggest = max(s["screens"] for s in steps)
    per_tick = {(s["queries_per_tick"]["min"], s["queries_per_tick"]["max"]) for s in steps}
    incremental = {s["queries_per_tick"]["incremental_median"] for s in steps} - {None}
    by_mode: dict[str, dict] = {}
    for mode in sorted({s["mode"] for s in steps}):
        runs = [s for s in steps if s["mode"] == mode]
        top = next(s for s in runs if s["screens"] == max(r["screens"] for r in runs))
        lasts = [w["last_s"] for s in runs for w in s["new_row"]["writes"] if w["last_s"] is not None]
        missed = sum(s["new_row"]["missed"] for s in runs)
        last_p95 = percentile(lasts, 0.95)
        by_mode[mode] = {
            "T5_screens": top["screens"], "T5_rtt_p95_ms": top["rtt_ms"]["p95"],
            "T5_p95_le_50ms": top["rtt_ms"]["p95"] is not None and top["rtt_ms"]["p95"] <= 50,
            "T5_errors": sum(s["errors"] for s in runs), "T5_dropped": sum(s["dropped"] for s in runs),
            "T6_writes": len(lasts) + missed, "T6_last_screen_p95_s": last_p95,
            "T6_within_interval_plus_1s": bool(lasts) and missed == 0 and last_p95 <= period_s + 1,
        }
    return {
        "max_screens": biggest,
        "T4_queries_per_tick_constant": len(per_tick) == 1 and len({q for pair in per_tick for q in pair}) == 1,
        "T4_queries_per_tick": sorted({q for pair in per_tick for q in pair}),
        "T4_queries_per_tick_without_full_loads": sorted(incremental),
        "T4_one_computation_per_interval": all(s["computations_per_tick"]["max"] == 1
                                               and s["computations_per_tick"]["min"] == 1 for s in steps),
        "T7_steady_bytes_max": max((s["bytes_steady"]["max"] or 0) for s in steps),
        "T7_steady_bytes_le_50KB": all((s["bytes_steady"]["max"] or 0) <= 50 * 1024 for s in steps),
        "T7_no_unchanged_panel_resent": all(s["resent_unchanged"] == 0 for s in steps),
        **{f"{mode}": v for mode, v in by_mode.items()},
    }


# ---- the whole run ----------------------------------------------------------------------

def build_demo_database(folder: Path) -> str:
    from data import db, demo

    url = f"sqlite:///{folder / 'plant.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=90, seed=7)
    return url


def settled_after(built_at: float | None) -> float:
    """When a plant written at `built_at` stops being re-read whole by incremental follows."""
    from data import settings

    return 0.0 if built_at is None else built_at + settings.get_int("FOLLOW_OVERLAP_S") + 5


def clear_redis(redis_url: str, prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


def estimated_seconds(args) -> float:
    runs = len(args.screens) * len(args.modes)
    per_run = args.seconds + 2 * args.refresh_s + 15
    settle = 3 * args.refresh_s if args.url else max(130, 3 * args.refresh_s)
    return 30 + settle + (WARM_UP_CHUNKS - 1) * (2 * args.refresh_s + 5) + runs * per_run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="DATABASE_URL to serve (default: a 90-day demo plant in a temp SQLite file)")
    parser.add_argument("--redis", help="REDIS_URL for the snapshot cache (default: the file cache in a temp folder)")
    parser.add_argument("--screens", default="1,10,50,200", help="screen counts to sweep (default 1,10,50,200)")
    parser.add_argument("--seconds", type=float, default=60, help="length of each step (default 60)")
    parser.add_argument("--refresh-s", type=int, default=10, help="REFRESH_S of server and screens (default 10)")
    parser.add_argument("--modes", default=",".join(MODES), help="any of staggered, aligned, synchronised (default all three)")
    parser.add_argument("--live", action="store_true", help="run the live simulator, so rows arrive during the run")
    parser.add_argument("--no-writes", dest="writes", action="store_false",
                        help="do not raise test issues (skips the new-row latency)")
    parser.add_argument("--no-browser-check", dest="browser_check", action="store_false",
                        help="skip comparing the replayed refresh body with a real Chromium's")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: the project's, one per core)")
    parser.add_argument("--threads", type=int, help="threads per worker (default: the project's, 4)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the screens' phases")
    parser.add_argument("--out", type=Path, help="JSON result file (default bench/results/load-<timestamp>.json)")
    parser.add_argument("--show", type=Path, metavar="JSON", help="print the tables of an earlier result file and exit")
    args = parser.parse_args(argv)
    args.screens = [int(n) for n in args.screens.split(",") if n.strip()]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.screens or min(args.screens) < 1:
        parser.error("--screens needs positive counts")
    if set(args.modes) - set(MODES) or not args.modes:
        parser.error(f"--modes takes {', '.join(MODES)}")
    if args.refresh_s < 1 or args.seconds < 2 * args.refresh_s:
        parser.error("--seconds must cover at least two intervals of --refresh-s")
    return args


async def warm_up(server: Server, settled: float, period_s: int, rng: random.Random) -> dict:
    """A few screens refresh until every worker has computed a snapshot after `settled`, so
    that what is measured is the steady state of a plant in service.

    A plant loaded moments ago is re-read whole by every incremental follow until it is
    older than FOLLOW_OVERLAP_S (its rows carry their write time), and a worker whose
    last follow is older than that re-reads it once more on its next one: the sweep starts
    when each worker has followed past it."""
    began = time.time()
    seconds = max(settled - began, 3 * period_s)
    print(f"warming up for {seconds:.0f} s or more", flush=True)
    for _chunk in range(WARM_UP_CHUNKS):
        step = await run_step(server, None, WARM_UP_SCREENS, "staggered", seconds, period_s, rng)
        computed = {pid for _at, kind, pid in server.queries(max(settled, began), math.inf)
                    if kind == COMPUTATION_KIND}
        if computed >= set(server.worker_pids()):
            break
        seconds = 2 * period_s
    return {"seconds": time.time() - began, "screens": WARM_UP_SCREENS, "errors": step["errors"],
            "workers": server.worker_pids(), "workers_settled": sorted(computed),
            "workers_with_full_load": server.workers_that_ran(FULL_LOAD_KIND)}


async def sweep(args, server: Server, writer: IssueWriter | None, report: dict,
                settle_until: float) -> None:
    report["preflight"] = await preflight(server)
    if args.browser_check:
        report["browser_check"] = await compare_with_browser(server, args.refresh_s)
        check = report["browser_check"]
        print(f"browser check: {check.get('equal', 0)}/{check.get('browser_refreshes', 0)} refresh bodies "
              f"rebuilt equal" if check["checked"] else f"browser check skipped: {check['why']}", flush=True)
    rng = random.Random(args.seed)
    report["warm_up"] = await warm_up(server, settle_until, args.refresh_s, rng)
    print(TABLE_HEAD, flush=True)
    for mode in args.modes:
        for n in args.screens:
            step = await run_step(server, writer, n, mode, args.seconds, args.refresh_s, rng)
            report["steps"].append(step)
            print(table_row(step), flush=True)


def show(path: Path) -> dict:
    report = json.loads(path.read_text())
    print(f"{report['machine']['cpu_model']}, {report['machine']['cores']} cores, "
          f"{report['machine']['memory_gib']} GiB; settings {json.dumps(report['settings'])}")
    print(TABLE_HEAD)
    for step in report["steps"]:
        print(table_row(step))
    print(json.dumps(report.get("verdicts"), indent=2))
    return report


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.show:
        return show(args.show)
    estimate = estimated_seconds(args)
    if estimate > MAX_RUN_S:
        raise SystemExit(f"refusing: this sweep would take about {estimate / 60:.0f} min "
                         f"(limit {MAX_RUN_S // 60} min); use fewer screens, modes or seconds")
    if args.url:
        require_loopback(database_host(args.url), "--url")
    if args.redis:
        require_loopback(urlsplit(args.redis).hostname, "--redis")
    sys.path.insert(0, str(ROOT))

    workdir = Path(tempfile.mkdtemp(prefix="floorlink-load-"))
    tag = uuid.uuid4().hex[:8]
    prefix = f"floorlink-load-{tag}:"
    server = simulator = writer = None
    report = {"started": datetime.now(timezone.utc).isoformat(), "machine": machine_facts(),
              "settings": {"refresh_s": args.refresh_s, "seconds": args.seconds, "screens": args.screens,
                           "modes": args.modes, "live": args.live,
                           "cache": "redis" if args.redis else "file", "database": "given" if args.url
                           else "demo plant, 90 days, seed 7, SQLite", "workers": args.workers,
                           "threads": args.threads},
              "steps": []}
    previous_term = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        url = args.url or build_demo_database(workdir)
        settle_until = settled_after(None if args.url else time.time())
        if args.url:
            report["settings"]["database_backend"] = url.split(":", 1)[0]
        server = Server(url, workdir, args.refresh_s, args.redis, prefix, args.workers, args.threads).start()
        print(f"gunicorn on 127.0.0.1:{server.port}, {report['settings']['cache']} cache, "
              f"REFRESH_S={args.refresh_s}", flush=True)
        if args.live:
            simulator = Simulator(url, workdir / "simulator.log").start()
        if args.writes:
            writer = IssueWriter(url, tag)
        asyncio.run(asyncio.wait_for(sweep(args, server, writer, report, settle_until), MAX_RUN_S))
        report["settings"]["worker_pids"] = server.worker_pids()
        report["verdicts"] = verdicts(report["steps"], args.refresh_s)
        print(json.dumps(report["verdicts"], indent=2), flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if simulator:
            simulator.stop()
        if server:
            server.stop()
        if writer:
            try:
                writer.resolve_all()
            except Exception as exc:  # noqa: BLE001 - the report still gets written
                print(f"could not resolve the test issues: {exc}", file=sys.stderr)
        if args.redis:
            report["redis_keys_removed"] = clear_redis(args.redis, prefix)
        report["finished"] = datetime.now(timezone.utc).isoformat()
        out = args.out or RESULTS_DIR / f"load-{datetime.now():%Y%m%d-%H%M%S}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, default=str))
        print(f"results: {out}", flush=True)
        shutil.rmtree(workdir, ignore_errors=True)
    return report


if __name__ == "__main__":
    main()
