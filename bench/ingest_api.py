"""Benchmark of the ingest API: concurrent clients posting events against gunicorn.

For each database (PostgreSQL, and SQLite), starts `gunicorn 'app:create_server()'` with the
project's gunicorn.conf.py on a free 127.0.0.1 port over a fresh database of its own, then
runs each mode for --seconds: --clients threads, each on its own keep-alive connection,
walking issues through their life (raised, acknowledged, commented three times, resolved,
closed: 7 events an issue), one event per request or N per batch request. Every request
carries an Idempotency-Key and is sent again, with the same key, until it is answered (a
dropped connection, a 503, a conflict with a concurrent write); 1 request in 50 is also
sent a second time as if its answer had been lost. At the end the events in the database
are counted against the events the clients were told were written: lost and duplicated
must both be 0.

Meanwhile wall screens refresh the overview every REFRESH_S, as browsers do, and a probe
issue is raised through the API every few seconds: how long after its answer it is on the
last screen (the target: within one interval and one second). The CPU time of the server's
processes (and of PostgreSQL's connections) per request says where the machine's time went.

    .venv/bin/python -m bench.ingest_api [--url postgresql+psycopg://postgres@127.0.0.1:5432]
                                         [--databases postgresql,sqlite] [--clients 20]
                                         [--seconds 30] [--batches 1,10,50]

Prints one table and writes bench/results/ingest-api-<time>.json. All traffic stays on this
machine; the databases are dropped at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from bench.load import (Screen, database_host, free_port, machine_facts, percentile,
                        require_loopback, schedule, stop_process_group)
from data import db, timezones
from data.ingest import tokens
from data.models import Department, IssueEvent, Location, Material, SlaRule

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
SERVER_START_TIMEOUT_S = 90
REQUEST_TIMEOUT_S = 30
MAX_SENDS = 50
LOST_ANSWER_EVERY = 50
# An issue's life as the clients post it, one event each.
LIFE = ("raised", "acknowledged", "commented", "commented", "commented", "resolved", "closed")
WARM_UP_S = 3
PROBE_EVERY_S = 2.0
# How long the screens refresh after the clients stop, beyond an interval.
SCREENS_LINGER_S = 3.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids) -> dict[int, float]:
    """User and system CPU time of each process still running."""
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return found


class Gunicorn:
    """gunicorn on the project's gunicorn.conf.py, on a free loopback port."""

    def __init__(self, database_url: str, workdir: Path, refresh_s: int):
        self.port = free_port()
        self.log = workdir / "gunicorn.log"
        self.env = {**os.environ, "DATABASE_URL": database_url, "HOST": "127.0.0.1",
                    "PORT": str(self.port), "CACHE_DIR": str(workdir / "cache"),
                    "REFRESH_S": str(refresh_s), "PYTHONUNBUFFERED": "1"}
        self.env.pop("REDIS_URL", None)
        self.process: subprocess.Popen | None = None

    def start(self) -> "Gunicorn":
        gunicorn = Path(sys.executable).parent / "gunicorn"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(gunicorn), "-c", "gunicorn.conf.py", "app:create_server()"], cwd=ROOT,
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited: {self.log.read_text()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/v1/openapi.json")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"gunicorn did not serve within {SERVER_START_TIMEOUT_S} s")

    def pids(self) -> list[int]:
        """The master and its workers: the processes of its session."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getsid(int(entry.name)) == self.process.pid:
                        found.append(int(entry.name))
                except ProcessLookupError:
                    continue
        return found

    def stop(self) -> None:
        stop_process_group(self.process)
        self.process = None


class Database:
    """A fresh database of the benchmark's own: its URL, and the pids serving it."""

    def __init__(self, kind: str, server_url: str, workdir: Path):
        self.kind = kind
        if kind == "sqlite":
            self.url = f"sqlite:///{workdir / 'ingest.sqlite'}"
            self._admin = None
            return
        self.name = f"floorlink_bench_api_{uuid.uuid4().hex[:8]}"
        self._admin = create_engine(f"{server_url.rstrip('/')}/postgres", isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = f"{server_url.rstrip('/')}/{self.name}"

    def pids(self) -> list[int]:
        """PostgreSQL's processes serving this database's connections (SQLite: none, its work
        is the server's own)."""
        if self._admin is None:
            return []
        with self._admin.connect() as conn:
            return list(conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :name"),
                                     {"name": self.name}).scalars())

    def drop(self) -> None:
        if self._admin is None:
            return
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


class Sender:
    """How a client of the ingest API sends a request: with its Idempotency-Key, again on a
    lost connection, a 409 conflict of writers, 429 or 503, until answered; and every
    LOST_ANSWER_EVERY-th request once more, as after a lost answer, expecting the same answer.
    A sender has `port`, `token`, `sends`, `retries`, `times_ms` and `failures`."""
    headers: dict[str, str] = {}

    def deliver(self, conn, path: str, body: bytes, key: str, count: int):
        status, answer, conn = self.send(conn, path, body, key)
        if count % LOST_ANSWER_EVERY == 0:
            again = self.send(conn, path, body, key)
            conn = again[2]
            if again[:2] != (status, answer):
                self.failures.append(f"{path}: a retry got another answer")
        return status, answer, conn

    def send(self, conn, path: str, body: bytes, key: str):
        headers = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": key,
                   "Content-Type": "application/json", **self.headers}
        for _ in range(MAX_SENDS):
            self.sends += 1
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                reply = conn.getresponse()
                status, answer = reply.status, reply.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
                self.retries += 1
                continue
            self.times_ms.append((time.perf_counter() - started) * 1000)
            if status in (429, 503) or (status == 409 and b'"field":null' in answer):
                self.retries += 1
                time.sleep(min(float(reply.getheader("Retry-After") or 0.05), 1.0))
                continue
            return status, answer, conn
        return 0, b"no answer", conn


@dataclass
class Client(Sender):
    """One sender: its issues' lives cut into requests of `per_request` events."""
    number: int
    port: int
    token: str
    mode: str
    per_request: int
    start: datetime
    written: int = 0            # events the server said it wrote
    sends: int = 0              # HTTP exchanges, retries included
    retries: int = 0
    times_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def items(self):
        """Endless events: (issue id, event kind, at)."""
        for n in range(10**9):
            issue_id = f"{self.mode}-{self.number:02d}-{n}"
            for step, kind in enumerate(LIFE):
                yield issue_id, kind, self.start + timedelta(seconds=n * len(LIFE) + step)

    def run(self, until: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        events = self.items()
        count = 0
        while time.monotonic() < until and not self.failures:
            chunk = [next(events) for _ in range(self.per_request)]
            path, body = request_for(chunk)
            count += 1
            status, answer, conn = self.deliver(conn, path, body, f"{self.mode}-{self.number}-{count}", count)
            if status not in (200, 201):
                self.failures.append(f"{path}: {status} {answer[:300]!r}")
            else:
                self.written += len(chunk)
        conn.close()


def request_for(chunk: list[tuple[str, str, datetime]]) -> tuple[str, bytes]:
    def item(issue_id: str, kind: str, at: datetime) -> dict:
        when = timezones.to_site(at).isoformat()
        if kind == "raised":
            return {"type": "issue", "id": issue_id, "issue_type": "quality_anomaly",
                    "title": "bench", "severity": "P3", "raised_at": when, "location_code": "L1-ST1"}
        event = {"type": "event", "issue_id": issue_id, "kind": kind, "at": when, "actor": "bench"}
        if kind == "commented":
            event["note"] = "checked"
        return event

    items = [item(*event) for event in chunk]
    if len(items) > 1:
        return "/api/v1/batch", json.dumps({"items": items}).encode()
    single = items[0]
    if single.pop("type") == "issue":
        return "/api/v1/issues", json.dumps(single).encode()
    return f"/api/v1/issues/{single.pop('issue_id')}/events", json.dumps(single).encode()


class WallWatch:
    """Screens on the overview while the clients write, and a probe issue raised through the
    API every PROBE_EVERY_S meanwhile: how long after the API answered each probe was on the
    last screen. The screens go on for an interval and a few seconds after the clients stop,
    so that the last probes can be shown (the target: on every screen within an interval and
    a second)."""

    def __init__(self, port: int, token: str, mode: str, refresh_s: int, screens: int):
        self.port, self.token, self.mode, self.refresh_s = port, token, mode, refresh_s
        self.screens = screens
        self.markers: dict[str, dict[int, float]] = {}
        self.answered: dict[str, float] = {}
        self.failures: list[str] = []
        self.watching: list[Screen] = []

    def run(self, seconds: float) -> None:
        self.began = time.monotonic()
        try:
            asyncio.run(self._watch(seconds))
        except Exception as exc:  # noqa: BLE001 - a screen that fails is reported, not raised
            self.failures.append(f"wall screens: {exc!r}")

    async def _watch(self, seconds: float) -> None:
        screens = self.watching = [Screen(n, self.port, self.markers) for n in range(self.screens)]
        try:
            for screen in screens:
                await screen.load_page()
            until = self.began + seconds
            start = time.time()
            end = start + (until - time.monotonic()) + self.refresh_s + SCREENS_LINGER_S
            rng = random.Random(7)
            tasks = [asyncio.create_task(s.run(schedule("aligned", start, end, self.refresh_s, rng),
                                               self.refresh_s)) for s in screens]
            number = 0
            while time.monotonic() + PROBE_EVERY_S < until:
                number += 1
                title = f"probe {self.mode} {number}"
                await asyncio.to_thread(self._raise, number, title)
                await asyncio.sleep(PROBE_EVERY_S)
            await asyncio.gather(*tasks)
        finally:
            await asyncio.gather(*(s.connection.close() for s in screens), return_exceptions=True)
        for screen in screens:
            self.failures += [f"screen {screen.number}: {r.error}" for r in screen.refreshes if r.error][:3]

    def _raise(self, number: int, title: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        body = {"id": f"probe-{self.mode}-{number}", "issue_type": "quality_anomaly",
                "title": title, "severity": "P1", "location_code": "L1-ST1"}
        conn.request("POST", "/api/v1/issues", body=json.dumps(body).encode(), headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        reply = conn.getresponse()
        reply.read()
        conn.close()
        if reply.status != 201:
            self.failures.append(f"probe {number}: {reply.status}")
            return
        self.answered[title] = time.time()
        self.markers[title] = {}

    def delays_s(self) -> list[float | None]:
        """Per probe: from the API's answer to its first showing on the last screen (None: a
        screen never showed it)."""
        delays = []
        for title, answered in self.answered.items():
            seen = self.markers[title]
            delays.append(max(seen.values()) - answered if len(seen) == self.screens else None)
        return delays

    def refreshes(self) -> dict:
        """The screens' refreshes: round trip p95 and max, and how many were answered after
        the next was due (a screen then skips that next one, as a browser does)."""
        done = [r for screen in self.watching for r in screen.refreshes]
        rtts = [r.rtt_ms for r in done if r.rtt_ms is not None]
        return {"screen_refreshes": len(done), "screen_rtt_p95_ms": percentile(rtts, 0.95),
                "screen_rtt_max_ms": max(rtts, default=None),
                "screen_refreshes_late": sum(r.late for r in done)}


def seed(url: str, clients: int) -> list[str]:
    """The reference rows the clients' issues name, and a token per client and one for the
    wall probe."""
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    with db.session_scope(engine) as s:
        s.add_all([Department(code="QA", name_zh="质量部", name_en="Quality"),
                   Location(code="L1-ST1", name="L1 工位 1", kind="wip", line="L1"),
                   Material(code="M-1", name="m", unit="pcs", category="c")])
        s.flush()
        s.add(SlaRule(issue_type="quality_anomaly", name_zh="质量异常", name_en="Quality anomaly",
                      owner_department_code="QA", notify_department_codes="", ack_minutes=10,
                      resolve_minutes=240))
    return [tokens.create(engine, f"bench-{n:02d}")[1] for n in range(clients + 1)]


def run_mode(database: Database, server: Gunicorn, client_tokens: list[str], per_request: int,
             seconds: float, mode: str, refresh_s: int, screens: int) -> dict:
    start = (timezones.utc_now() - timedelta(days=1)).replace(microsecond=0)
    clients = [Client(n, server.port, token, mode, per_request, start)
               for n, token in enumerate(client_tokens[:-1])]
    watch = WallWatch(server.port, client_tokens[-1], mode, refresh_s, screens) if screens else None
    server_cpu, database_cpu = cpu_seconds(server.pids()), cpu_seconds(database.pids())
    began = time.monotonic()
    threads = [threading.Thread(target=c.run, args=(began + seconds,)) for c in clients]
    if watch is not None:
        threads.append(threading.Thread(target=watch.run, args=(seconds,)))
    for thread in threads:
        thread.start()
    for thread in threads[:len(clients)]:
        thread.join()
    elapsed = time.monotonic() - began
    server_cpu_s = _used(server_cpu, cpu_seconds(server.pids()))
    database_cpu_s = _used(database_cpu, cpu_seconds(database.pids()))
    for thread in threads[len(clients):]:
        thread.join()
    engine = db.get_engine(database.url)
    with engine.connect() as conn:
        in_database = conn.execute(select(func.count()).select_from(IssueEvent)
                                   .where(IssueEvent.issue_id.like(f"{mode}-%"))).scalar()
    written = sum(c.written for c in clients)
    times = [t for c in clients for t in c.times_ms]
    requests = len(times)
    delays = watch.delays_s() if watch else []
    shown = [d for d in delays if d is not None]
    return {
        "database": database.kind, "events_per_request": per_request, "seconds": round(elapsed, 2),
        "requests": requests, "sends": sum(c.sends for c in clients),
        "retries": sum(c.retries for c in clients),
        "events_answered": written, "events_in_database": in_database,
        "lost": max(written - in_database, 0), "duplicated": max(in_database - written, 0),
        "events_per_s": round(in_database / elapsed, 1),
        "p50_ms": percentile(times, 0.5), "p95_ms": percentile(times, 0.95),
        "p99_ms": percentile(times, 0.99),
        "server_cpu_ms_per_request": round(1000 * server_cpu_s / max(requests, 1), 2),
        "database_cpu_ms_per_request": (round(1000 * database_cpu_s / max(requests, 1), 2)
                                        if database.kind == "postgresql" else None),
        "cores_busy": {"server": round(server_cpu_s / elapsed, 2),
                       "database": round(database_cpu_s / elapsed, 2)},
        "wall_refresh_s": refresh_s, "screens": screens, "probes": len(delays),
        "probes_not_shown": len(delays) - len(shown),
        "on_wall_p50_s": percentile(shown, 0.5), "on_wall_max_s": max(shown, default=None),
        "on_wall_s": [None if d is None else round(d, 2) for d in delays],
        **(watch.refreshes() if watch else {}),
        "failures": ([f for c in clients for f in c.failures] + (watch.failures if watch else []))[:10],
    }


def _used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two readings; a process that started meanwhile counts whole."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(rows: list[dict]) -> str:
    lines = ["| database | events per request | events/s | requests/s | p50 ms | p95 ms | p99 ms "
             "| retries | lost | duplicated | server CPU ms per request | database CPU ms per request "
             "| on the wall after, s (median / max) | screens' round trip p95 / max ms, late |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        wall = "-" if not r["probes"] else (
            f"{_number(r['on_wall_p50_s'], 1)} / {_number(r['on_wall_max_s'], 1)}"
            + (f", {r['probes_not_shown']} of {r['probes']} not shown" if r["probes_not_shown"] else ""))
        lines.append(
            f"| {'PostgreSQL' if r['database'] == 'postgresql' else 'SQLite'} | "
            f"{r['events_per_request']} | {r['events_per_s']:,.0f} | "
            f"{r['requests'] / r['seconds']:,.0f} | {_number(r['p50_ms'])} | {_number(r['p95_ms'])} | "
            f"{_number(r['p99_ms'])} | {r['retries']} | {r['lost']} | {r['duplicated']} | "
            f"{_number(r['server_cpu_ms_per_request'], 2)} | "
            f"{_number(r['database_cpu_ms_per_request'], 2)} | {wall} | "
            f"{_number(r.get('screen_rtt_p95_ms'))} / {_number(r.get('screen_rtt_max_ms'))}, "
            f"{r.get('screen_refreshes_late', '-')} |")
    return "\n".join(lines)


def run_database(kind: str, server_url: str, args, report: dict) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="floorlink-ingest-"))
    database = Database(kind, server_url, workdir)
    server = None
    try:
        client_tokens = seed(database.url, args.clients)
        server = Gunicorn(database.url, workdir, args.refresh_s).start()
        # Every worker and thread connects to the database first.
        run_mode(database, server, client_tokens, 1, WARM_UP_S, f"{kind[:2]}-warm-up",
                 args.refresh_s, 0)
        for per_request in (int(n) for n in args.batches.split(",")):
            result = run_mode(database, server, client_tokens, per_request, args.seconds,
                              f"{kind[:2]}-b{per_request}", args.refresh_s, args.screens)
            report["modes"].append(result)
            print(table([result]).splitlines()[-1], flush=True)
    finally:
        if server is not None:
            server.stop()
        db.dispose_all()
        database.drop()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432",
                        help="PostgreSQL server (a database of the benchmark's own is made there)")
    parser.add_argument("--databases", default="postgresql,sqlite",
                        help="postgresql, sqlite or both, comma separated")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--batches", default="1,10,50",
                        help="events per request of each mode, comma separated")
    parser.add_argument("--refresh-s", type=int, default=10,
                        help="the wall's refresh interval (REFRESH_S) of the screens watched")
    parser.add_argument("--screens", type=int, default=3,
                        help="wall screens refreshing meanwhile (0: none, and no probes)")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    if not kinds or set(kinds) - {"postgresql", "sqlite"}:
        parser.error("--databases: postgresql, sqlite or both")
    if "postgresql" in kinds:
        require_loopback(database_host(args.url), "--url")
    report = {"started": datetime.now(timezone.utc).isoformat(), "machine": machine_facts(),
              "load_average_before": os.getloadavg(),
              "settings": {"clients": args.clients, "seconds": args.seconds,
                           "server": "gunicorn, gunicorn.conf.py", "databases": kinds,
                           "life": LIFE, "screens": args.screens, "refresh_s": args.refresh_s},
              "modes": []}
    for kind in kinds:
        run_database(kind, args.url, args, report)
    report["load_average_after"] = os.getloadavg()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"ingest-api-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    print(table(report["modes"]))
    print(f"load average before {report['load_average_before'][0]:.1f}, after "
          f"{report['load_average_after'][0]:.1f}; written to {out.relative_to(ROOT)}")
    if any(m["lost"] or m["duplicated"] or m["failures"] for m in report["modes"]):
        raise SystemExit("lost, duplicated or refused events: see the report")
    return report


if __name__ == "__main__":
    main()
