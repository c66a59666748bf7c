"""Benchmark of the ingest API: concurrent clients posting events against gunicorn.

Starts `gunicorn 'app:create_server()'` with the project's gunicorn.conf.py (one worker per
core, 4 threads each) on a free 127.0.0.1 port, over a fresh PostgreSQL database of its own,
then runs each mode for --seconds: --clients threads, each on its own keep-alive connection,
walking issues through their life (raised, acknowledged, commented three times, resolved,
closed: 7 events an issue), one event per request or N per batch request. Every request
carries an Idempotency-Key and is sent again, with the same key, until it is answered (a
dropped connection, a 503, a conflict with a concurrent write); 1 request in 50 is also
sent a second time as if its answer had been lost. At the end the events in the database
are counted against the events the clients were told were written: lost and duplicated
must both be 0.

    .venv/bin/python -m bench.ingest_api [--url postgresql+psycopg://postgres@127.0.0.1:5432]
                                         [--clients 20] [--seconds 30] [--batches 1,10,50,200]

Prints a table and writes bench/results/ingest-api-<time>.json. All traffic stays on this
machine; the database is dropped at the end.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
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

from bench.load import (database_host, free_port, machine_facts, percentile, require_loopback,
                        stop_process_group)
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


class Gunicorn:
    """gunicorn on the project's gunicorn.conf.py, on a free loopback port."""

    def __init__(self, database_url: str, workdir: Path):
        self.port = free_port()
        self.log = workdir / "gunicorn.log"
        self.env = {**os.environ, "DATABASE_URL": database_url, "HOST": "127.0.0.1",
                    "PORT": str(self.port), "CACHE_DIR": str(workdir / "cache"),
                    "PYTHONUNBUFFERED": "1"}
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

    def stop(self) -> None:
        stop_process_group(self.process)
        self.process = None


@dataclass
class Client:
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
            key = f"{self.mode}-{self.number}-{count}"
            status, answer, conn = self.send(conn, path, body, key)
            if count % LOST_ANSWER_EVERY == 0:
                again = self.send(conn, path, body, key)
                conn = again[2]
                if again[:2] != (status, answer):
                    self.failures.append(f"{path}: a retry got another answer")
            if status not in (200, 201):
                self.failures.append(f"{path}: {status} {answer[:300]!r}")
            else:
                self.written += len(chunk)
        conn.close()

    def send(self, conn, path: str, body: bytes, key: str):
        headers = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": key,
                   "Content-Type": "application/json"}
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
            if status == 503 or (status == 409 and b'"field":null' in answer):
                self.retries += 1
                time.sleep(0.05)
                continue
            return status, answer, conn
        return 0, b"no answer", conn


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


def seed(url: str, clients: int) -> list[str]:
    """The reference rows the clients' issues name, and a token per client."""
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
    return [tokens.create(engine, f"bench-{n:02d}")[1] for n in range(clients)]


def run_mode(url: str, port: int, client_tokens: list[str], per_request: int, seconds: float,
             mode: str) -> dict:
    start = (timezones.utc_now() - timedelta(days=1)).replace(microsecond=0)
    clients = [Client(n, port, token, mode, per_request, start) for n, token in enumerate(client_tokens)]
    began = time.monotonic()
    threads = [threading.Thread(target=c.run, args=(began + seconds,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    engine = db.get_engine(url)
    with engine.connect() as conn:
        in_database = conn.execute(select(func.count()).select_from(IssueEvent)
                                   .where(IssueEvent.issue_id.like(f"{mode}-%"))).scalar()
    written = sum(c.written for c in clients)
    times = [t for c in clients for t in c.times_ms]
    return {
        "events_per_request": per_request, "seconds": round(elapsed, 2),
        "requests": sum(len(c.times_ms) for c in clients), "sends": sum(c.sends for c in clients),
        "retries": sum(c.retries for c in clients),
        "events_answered": written, "events_in_database": in_database,
        "lost": max(written - in_database, 0), "duplicated": max(in_database - written, 0),
        "events_per_s": round(in_database / elapsed, 1),
        "p50_ms": percentile(times, 0.5), "p95_ms": percentile(times, 0.95),
        "p99_ms": percentile(times, 0.99),
        "failures": [f for c in clients for f in c.failures][:10],
    }


def table(rows: list[dict]) -> str:
    lines = ["| events per request | events/s | requests/s | p50 ms | p95 ms | p99 ms | retries "
             "| lost | duplicated |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['events_per_request']} | {r['events_per_s']:,.0f} | "
                     f"{r['requests'] / r['seconds']:,.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                     f"{r['p99_ms']:.1f} | {r['retries']} | {r['lost']} | {r['duplicated']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432",
                        help="PostgreSQL server (a database of the benchmark's own is made there)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--batches", default="1,10,50,200",
                        help="events per request of each mode, comma separated")
    args = parser.parse_args(argv)
    require_loopback(database_host(args.url), "--url")
    name = f"floorlink_bench_api_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{args.url.rstrip('/')}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{args.url.rstrip('/')}/{name}"
    workdir = Path(tempfile.mkdtemp(prefix="floorlink-ingest-"))
    server = None
    report = {"started": datetime.now(timezone.utc).isoformat(), "machine": machine_facts(),
              "load_average_before": os.getloadavg(),
              "settings": {"clients": args.clients, "seconds": args.seconds,
                           "server": "gunicorn, gunicorn.conf.py", "database": "PostgreSQL",
                           "life": LIFE}, "modes": []}
    try:
        client_tokens = seed(url, args.clients)
        server = Gunicorn(url, workdir).start()
        # A warm-up: every worker and thread connects to the database.
        run_mode(url, server.port, client_tokens, 1, 3, "warm-up")
        for per_request in (int(n) for n in args.batches.split(",")):
            result = run_mode(url, server.port, client_tokens, per_request, args.seconds,
                              f"b{per_request}")
            report["modes"].append(result)
            print(table([result]).splitlines()[-1], flush=True)
    finally:
        if server is not None:
            server.stop()
        db.dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    report["load_average_after"] = os.getloadavg()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"ingest-api-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    print(table(report["modes"]))
    print(f"written to {out.relative_to(ROOT)}")
    if any(m["lost"] or m["duplicated"] or m["failures"] for m in report["modes"]):
        raise SystemExit("lost, duplicated or refused events: see the report")
    return report


if __name__ == "__main__":
    main()
