"""A mixed load on one server: wall screens, ingesting clients and managers in the explorer at once.

On a PostgreSQL database of its own (a demo plant ending now, built at the start and dropped
at the end; or a plant given with --url, kept) and the Redis cache, starts gunicorn on the
project's gunicorn.conf.py, with the records of bench/gunicorn_counting.py, on a free
127.0.0.1 port. Then, for --minutes, all at once:
- --screens wall screens (bench.load.Screen) refresh just after each boundary as browsers do,
  on a mix of pages, scopes and languages (`screen_mix`);
- --clients ingesting clients walk issues through their lives over the API (raised,
  acknowledged, three comments, resolved, closed), each with a token of its own, one request
  every --ingest-every-s with --batch events, an Idempotency-Key on every request, sent again
  until answered, and one request in 50 sent twice as if its answer had been lost (as
  bench/ingest_api.py does);
- --managers managers use the explorer: each opens a view (the page callback, then every
  panel, the summary, the list's heading and the grid's first page, six requests at a time as
  a browser sends them; as bench/explorer_bench.py posts them), reads it for about
  --think-s, and opens another.
An issue is raised through data.store every other interval, and the time until every
site-wide board shows it is measured. The clients and the managers run in processes of their
own, so that none waits for another's interpreter; every process of the bench shares the
machine with the server, and their CPU is reported beside it.

Reported: errors of every kind; rows lost and duplicated (the events the API acknowledged
against those in the database); the screens' round trip and the workers' time per refresh
(p50, p95, max); late refreshes; the explorer's and the ingest API's p50, p95 and max; a new
row's delay to the last screen; database computations per interval; the workers' memory and
the CPU of the server, the database and the bench.

    .venv/bin/python -m bench.mixed [--pg URL | --url URL] [--redis URL] [--minutes 10]
        [--screens 200] [--clients 20] [--managers 5] [--refresh-s 10] [--live]

Writes bench/results/mixed-<time>.json; exits with status 1 on any error, lost or duplicated
row. All traffic stays on this machine; a run lasts at most MAX_MINUTES.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone
from multiprocessing import get_context
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from sqlalchemy import create_engine, func, select, text

from bench.ingest_api import LIFE, REQUEST_TIMEOUT_S, Sender
from bench.load import (BENCH_KIND_HEADER, COMPUTATION_KIND, Connection, IssueWriter, Screen,
                        Server, Simulator, callback_request, component_props, clear_redis, database_host,
                        find_callback, machine_facts, percentile, process_facts, require_loopback,
                        schedule, session_pids, settled_after, wall_statement, warm_up)

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
MAX_MINUTES = 60
# A browser opens at most six connections to one server.
BROWSER_CONNECTIONS = 6
PAGE_LOADS_AT_ONCE = 16
# The explorer's callbacks a view posts (bench/explorer_bench.py; the drill needs a click).
EXPLORER_CALLBACKS = ("flow", "matrix", "pairs", "held", "heat_raised", "heat_response", "pareto",
                      "wow", "ageing", "unresolved", "xmr", "summary", "list", "grid")
# The processes of the clients and the managers start this long before the run, so that
# their imports are done when it begins.
START_AFTER_S = 8


def screen_mix(screens: int, department: str, line: str) -> list[tuple[str, str]]:
    """The pages the screens show, as a plant's walls do: mostly the site's overview in
    Chinese, some in English, the issue board, the material page, a department's and a
    line's overview; (path, query) for each screen."""
    kinds = [("/", "?kiosk=1")] * 5 + [("/", "?kiosk=1&lang=en"), ("/issues", "?kiosk=1"),
                                       ("/material", "?kiosk=1"),
                                       ("/", "?" + urlencode({"kiosk": 1, "dept": department})),
                                       ("/", "?" + urlencode({"kiosk": 1, "line": line}))]
    return [kinds[n % len(kinds)] for n in range(screens)]


def explorer_queries(department: str, line: str, issue_type: str) -> list[str]:
    """The views the managers open, in the address's words (data/explorer/state.py)."""
    return ["", "window=30d", "window=today", urlencode({"dept": department}),
            urlencode({"line": line}), urlencode({"type": issue_type}), "sev=P1",
            urlencode({"window": "30d", "dept": department})]


# ---- the plant -----------------------------------------------------------------------------

class Plant:
    """The database the server serves: given (kept), or made and filled with a demo plant
    ending now (dropped at the end)."""

    def __init__(self, url: str | None, pg: str, days: int, tag: str):
        from data import db, demo

        self.admin = None
        if url:
            self.url, self.name = url, None
            return
        self.name = f"floorlink_bench_mixed_{tag}"
        self.admin = create_engine(f"{pg.rstrip('/')}/postgres", isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = f"{pg.rstrip('/')}/{self.name}"
        engine = db.get_engine(self.url)
        db.upgrade_schema(engine)
        print(f"building a {days}-day demo plant in {self.name}", flush=True)
        demo.build_demo_plant(engine, days=days, seed=7)

    def codes(self) -> dict:
        """The department and the issue type raising most in the last week, a line, and a
        location on it: what scoped screens, views and the clients' issues name."""
        from data import db, timezones
        from data.models import Issue, Location, SlaRule

        week_ago = timezones.utc_now() - timedelta(days=7)
        with db.get_engine(self.url).connect() as conn:
            def most(column):
                return conn.execute(select(column).where(Issue.raised_at >= week_ago, column.is_not(None))
                                    .group_by(column).order_by(func.count().desc(), column).limit(1)).scalar()
            department, issue_type = most(Issue.owner_department_code), most(Issue.issue_type)
            issue_type = issue_type or conn.execute(select(SlaRule.issue_type).order_by(SlaRule.issue_type)).scalar()
            place = conn.execute(select(Location.code, Location.line).where(Location.line.is_not(None))
                                 .order_by(Location.line, Location.code).limit(1)).first()
        if issue_type is None or place is None:
            raise SystemExit(f"{self.url}: the plant has no issue types or no location on a line")
        return {"department": department or "", "issue_type": issue_type, "location": place.code,
                "line": place.line}

    def tokens(self, clients: int, tag: str) -> list[str]:
        from data import db
        from data.ingest import tokens

        return [tokens.create(db.get_engine(self.url), f"mixed-{tag}-{n:02d}")[1] for n in range(clients)]

    def events_written(self, tag: str) -> int:
        from data import db
        from data.models import IssueEvent

        with db.get_engine(self.url).connect() as conn:
            return conn.execute(select(func.count()).select_from(IssueEvent)
                                .where(IssueEvent.issue_id.like(f"MX-{tag}-%"))).scalar()

    def backend_pids(self) -> list[int]:
        """PostgreSQL's processes serving this database's connections."""
        from data import db

        with db.get_engine(self.url).connect() as conn:
            return list(conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                          "AND pid <> pg_backend_pid()")).scalars())

    def finish_issues(self, tag: str) -> int:
        """Resolve the issues the clients left open, so a kept plant's board holds none."""
        from data import db, store, timezones
        from data.models import Issue

        engine = db.get_engine(self.url)
        with engine.connect() as conn:
            ids = conn.execute(select(Issue.id).where(Issue.id.like(f"MX-{tag}-%"),
                                                      Issue.resolved_at.is_(None))).scalars().all()
        for issue_id in ids:
            with db.session_scope(engine) as session:
                store.resolve(session, issue_id, timezones.utc_now(), actor="mixed-load", cause="load test")
        return len(ids)

    def drop(self) -> None:
        from data import db

        db.dispose_all()
        if self.admin is None:
            return
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


# ---- the ingesting clients (a process of their own) -----------------------------------------

class Ingester(Sender):
    """One sender over the API: its issues' lives cut into requests of `per_request` events,
    one request every `every_s`, each sent as bench/ingest_api.py's clients send theirs."""
    headers = {BENCH_KIND_HEADER: "ingest"}

    def __init__(self, number: int, port: int, token: str, tag: str, codes: dict, per_request: int):
        self.number, self.port, self.token, self.tag = number, port, token, tag
        self.codes, self.per_request = codes, per_request
        self.written = self.sends = self.retries = self.behind = 0
        self.times_ms: list[float] = []
        self.failures: list[str] = []
        self._events = ((f"MX-{tag}-{number:02d}-{n}", kind) for n in range(10**9) for kind in LIFE)

    def request(self, chunk: list[tuple[str, str]]) -> tuple[str, bytes]:
        from data import timezones

        base = timezones.utc_now()
        items = []
        for i, (issue_id, kind) in enumerate(chunk):
            when = timezones.to_site(base + timedelta(microseconds=i)).isoformat()
            if kind == "raised":
                items.append({"type": "issue", "id": issue_id, "issue_type": self.codes["issue_type"],
                              "title": "mixed load", "severity": "P3", "raised_at": when,
                              "location_code": self.codes["location"]})
            else:
                items.append({"type": "event", "issue_id": issue_id, "kind": kind, "at": when,
                              "actor": "mixed-load", **({"note": "checked"} if kind == "commented" else {})})
        if len(items) > 1:
            return "/api/v1/batch", json.dumps({"items": items}).encode()
        single = items[0]
        if single.pop("type") == "issue":
            return "/api/v1/issues", json.dumps(single).encode()
        return f"/api/v1/issues/{single.pop('issue_id')}/events", json.dumps(single).encode()

    def run(self, start: float, end: float, every_s: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        due = start + random.Random(self.number).uniform(0, every_s)
        count = 0
        while due < end and not self.failures:
            time.sleep(max(0.0, due - time.time()))
            chunk = [next(self._events) for _ in range(self.per_request)]
            path, body = self.request(chunk)
            count += 1
            status, answer, conn = self.deliver(conn, path, body, f"MX-{self.tag}-{self.number}-{count}", count)
            if status in (200, 201):
                self.written += len(chunk)
            else:
                self.failures.append(f"{path}: {status} {answer[:300]!r}")
            due += every_s
            if due < time.time():
                self.behind += 1        # the server answered slower than the pace
                due = time.time()
        conn.close()


def run_clients(port: int, tokens: list[str], tag: str, codes: dict, per_request: int,
                every_s: float, start: float, end: float) -> dict:
    """The ingesting clients, a thread each; what they were answered."""
    clients = [Ingester(n, port, token, tag, codes, per_request) for n, token in enumerate(tokens)]
    threads = [threading.Thread(target=c.run, args=(start, end, every_s)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    times = [t for c in clients for t in c.times_ms]
    return {"clients": len(clients), "events_answered": sum(c.written for c in clients),
            "requests": len(times), "sends": sum(c.sends for c in clients),
            "retries": sum(c.retries for c in clients), "behind_pace": sum(c.behind for c in clients),
            "p50_ms": percentile(times, 0.5), "p95_ms": percentile(times, 0.95),
            "max_ms": max(times, default=None),
            "failures": [f for c in clients for f in c.failures][:10],
            "errors": sum(len(c.failures) for c in clients),
            "cpu_s": usage.ru_utime + usage.ru_stime}


# ---- the managers in the explorer (a process of their own) ----------------------------------

def _explorer_store(pages_answer: dict) -> dict:
    for props in component_props(pages_answer):
        if props.get("id") == "explorer-state":
            return props["data"]
    raise RuntimeError("the page callback did not send the explorer (no explorer-state)")


class Manager:
    """A manager at a desk: opens the explorer, then one view after another."""

    def __init__(self, number: int, port: int, queries: list[str], think_s: float):
        self.number, self.port, self.queries, self.think_s = number, port, queries, think_s
        self.rng = random.Random(100 + number)
        self.pool = [Connection(port) for _ in range(BROWSER_CONNECTIONS)]
        self.callbacks: dict[str, list[float]] = {name: [] for name in EXPLORER_CALLBACKS}
        self.views_ms: list[float] = []
        self.failures: list[str] = []
        self._path = ""
        self._pages: dict = {}
        self._headers = {"Accept": "application/json", "Content-Type": "application/json",
                         BENCH_KIND_HEADER: "explorer"}

    async def _post(self, connection: Connection, body: dict):
        return await asyncio.wait_for(connection.request("POST", self._path, json.dumps(body).encode(),
                                                         self._headers), REQUEST_TIMEOUT_S)

    async def open(self) -> None:
        """What the browser asks for when the page opens (the script bundles aside)."""
        from bench.load import dash_config

        first = self.pool[0]
        page = await first.request("GET", "/explorer")
        config = dash_config(page.body.decode())
        for path in ("/_dash-layout", "/_dash-dependencies"):
            reply = await first.request("GET", path, headers={"Accept": "application/json"})
            if reply.status != 200:
                raise RuntimeError(f"GET {path}: HTTP {reply.status}")
        self._pages = find_callback(json.loads(reply.body), "_pages_content.children")
        prefix = config.get("requests_pathname_prefix") or "/"
        self._path = f"{prefix}_dash-update-component?endId={config['end_id']}"

    async def view(self, query: str) -> None:
        """One view: its page callback, then its callbacks six at a time."""
        from bench.explorer_bench import _payload

        began = time.perf_counter()
        reply = await self._post(self.pool[0], callback_request(self._pages, ["/explorer", f"?{query}"], []))
        if reply.status != 200:
            self.failures.append(f"the explorer page ?{query}: HTTP {reply.status}")
            return
        store = _explorer_store(json.loads(reply.body))
        free = asyncio.Queue()
        for connection in self.pool:
            free.put_nowait(connection)

        async def one(name: str) -> None:
            connection = await free.get()
            try:
                reply = await self._post(connection, _payload(name, store, None))
                if reply.status not in (200, 204):
                    self.failures.append(f"{name} ?{query}: HTTP {reply.status}: {reply.body[:200]!r}")
                else:
                    self.callbacks[name].append(reply.rtt_ms)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
                self.failures.append(f"{name} ?{query}: {type(exc).__name__}: {exc}")
                await connection.close()
            finally:
                free.put_nowait(connection)

        await asyncio.gather(*(one(name) for name in EXPLORER_CALLBACKS))
        self.views_ms.append((time.perf_counter() - began) * 1000)

    async def run(self, start: float, end: float) -> None:
        try:
            await self.open()
            await asyncio.sleep(max(0.0, start - time.time()) + self.rng.uniform(0, self.think_s))
            while time.time() < end:
                await self.view(self.rng.choice(self.queries))
                await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.think_s)
        except (OSError, RuntimeError, ValueError, asyncio.TimeoutError) as exc:
            self.failures.append(f"manager {self.number}: {type(exc).__name__}: {exc}")
        finally:
            await asyncio.gather(*(c.close() for c in self.pool), return_exceptions=True)


def run_managers(port: int, managers: int, queries: list[str], think_s: float,
                 start: float, end: float) -> dict:
    """The managers, in one event loop; what they waited for."""
    desks = [Manager(n, port, queries, think_s) for n in range(managers)]

    async def all_of_them():
        await asyncio.gather(*(m.run(start, end) for m in desks))

    asyncio.run(all_of_them())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    times = [t for m in desks for values in m.callbacks.values() for t in values]
    by_callback = {name: percentile([t for m in desks for t in m.callbacks[name]], 0.95)
                   for name in EXPLORER_CALLBACKS}
    views = [t for m in desks for t in m.views_ms]
    return {"managers": managers, "views": len(views), "callbacks": len(times),
            "p50_ms": percentile(times, 0.5), "p95_ms": percentile(times, 0.95),
            "max_ms": max(times, default=None), "p95_ms_by_callback": by_callback,
            "view_p50_ms": percentile(views, 0.5), "view_p95_ms": percentile(views, 0.95),
            "failures": [f for m in desks for f in m.failures][:10],
            "errors": sum(len(m.failures) for m in desks), "cpu_s": usage.ru_utime + usage.ru_stime}


# ---- the screens (this process) --------------------------------------------------------------

async def load_screens(port: int, addresses: list[tuple[str, str]], markers: dict) -> list[Screen]:
    """Every screen opens its page; the site-wide boards watch for the new rows (`markers`)."""
    screens = []
    for number, (path, search) in enumerate(addresses):
        site_board = path in ("/", "/issues") and "dept=" not in search and "line=" not in search
        screens.append(Screen(number, port, markers if site_board else {}, path, search))
    gate = asyncio.Semaphore(PAGE_LOADS_AT_ONCE)

    async def load(screen: Screen) -> None:
        async with gate:
            await screen.load_page()

    await asyncio.gather(*(load(s) for s in screens))
    return screens


async def run_screens(screens: list[Screen], writer: IssueWriter, markers: dict, start: float,
                      end: float, period_s: int, seed: int) -> list[dict]:
    """Every screen refreshes just past each boundary until `end`; an issue is raised every
    other interval meanwhile. Returns the issues raised, when each committed."""
    rng = random.Random(seed)
    writes: list[dict] = []

    async def write_issues() -> None:
        at = start + rng.uniform(0.1, 0.9) * period_s
        while at + 2 * period_s + 1 < end:
            await asyncio.sleep(max(0.0, at - time.time()))
            title, committed = await asyncio.to_thread(writer.raise_one)
            markers[title] = {}
            writes.append({"title": title, "committed": committed})
            at += 2 * period_s + rng.uniform(-0.4, 0.4) * period_s

    tasks = [asyncio.create_task(s.run(schedule("aligned", start, end, period_s, rng), period_s))
             for s in screens]
    tasks.append(asyncio.create_task(write_issues()))
    try:
        await asyncio.gather(*tasks)
    finally:
        await asyncio.gather(*(s.connection.close() for s in screens), return_exceptions=True)
    return writes


def screens_summary(screens: list[Screen], writes: list[dict], markers: dict, seconds: float) -> dict:
    refreshes = [r for s in screens for r in s.refreshes]
    answered = [r for r in refreshes if r.error is None]
    rtts = [r.rtt_ms for r in answered]
    errors = Counter(r.error.split(":")[0] for r in refreshes if r.error)
    watching = sum(1 for s in screens if s.markers is markers)
    delays = []
    for w in writes:
        seen = markers[w["title"]]
        delays.append(max(seen.values()) - w["committed"] if len(seen) == watching else None)
    shown = [d for d in delays if d is not None]
    return {"screens": len(screens), "pages": dict(Counter(f"{s.page} {s.address[1]}" for s in screens)),
            "refreshes": len(refreshes), "answered": len(answered),
            "per_s": len(answered) / seconds,
            "rtt_ms": {"p50": percentile(rtts, 0.5), "p95": percentile(rtts, 0.95),
                       "p99": percentile(rtts, 0.99), "max": max(rtts, default=None)},
            "errors": sum(errors.values()), "error_kinds": dict(errors),
            "late": sum(r.late for r in refreshes),
            "new_row": {"watching_screens": watching, "writes": len(writes),
                        "missed": len(delays) - len(shown),
                        "last_screen_p95_s": percentile(shown, 0.95), "last_screen_max_s": max(shown, default=None)}}


# ---- the server's side ----------------------------------------------------------------------

def cpu_used(before: dict[int, dict], after: dict[int, dict]) -> float:
    return sum(f["cpu_s"] - before.get(pid, {"cpu_s": 0.0})["cpu_s"] for pid, f in after.items())


def server_summary(server: Server, start: float, end: float, period_s: int) -> dict:
    """What the workers recorded: their time per request of each client, and the statements
    sent per interval (a computation of a snapshot starts with the data version's)."""
    def times(**which) -> dict:
        values = server.request_times(start, end + 1, **which)
        return {"count": len(values), "p50": percentile(values, 0.5), "p95": percentile(values, 0.95),
                "max": max(values, default=None)}

    # Per boundary: the statements from half an interval before it to half an interval after.
    buckets: dict[int, Counter] = {}
    statements = server.queries((math.ceil(start / period_s) + 0.5) * period_s,
                                (math.floor(end / period_s) - 0.5) * period_s)
    statements = [q for q in statements if wall_statement(q[1])]
    for at, kind, _pid in statements:
        buckets.setdefault(round(at / period_s), Counter())[kind] += 1
    computations = [c[COMPUTATION_KIND] for c in buckets.values()]
    # Where each snapshot computation began, from the nearest boundary: before it when
    # computed ahead (data/wall/ahead.py), after it when a screen computed it.
    offsets = [at - round(at / period_s) * period_s for at, kind, _ in statements if kind == COMPUTATION_KIND]
    return {"refresh_ms": times(path="/_dash-update-component", kind="refresh"),
            "explorer_ms": times(path="/_dash-update-component", kind="explorer"),
            "ingest_ms": times(kind="ingest"),
            "computations_per_interval": {"median": percentile(computations, 0.5),
                                          "max": max(computations, default=None)},
            "computations_ahead": sum(1 for o in offsets if o < 0),
            "computations_after_the_boundary": sum(1 for o in offsets if o >= 0),
            "computation_start_s_from_the_boundary": {"min": min(offsets, default=None),
                                                      "max": max(offsets, default=None)},
            "wall_statements_per_interval": {"median": percentile([sum(c.values()) for c in buckets.values()], 0.5),
                                        "max": max((sum(c.values()) for c in buckets.values()), default=None)}}


# ---- the whole run ---------------------------------------------------------------------------

def verdicts(report: dict, period_s: int) -> dict:
    screens, ingest, explorer = report["screens"], report["ingest"], report["explorer"]
    errors = screens["errors"] + ingest["errors"] + explorer["errors"]
    last = screens["new_row"]["last_screen_p95_s"]
    return {"errors": errors, "no_error": errors == 0,
            "lost": ingest["lost"], "duplicated": ingest["duplicated"],
            "no_row_lost_or_duplicated": ingest["lost"] == 0 and ingest["duplicated"] == 0,
            "refresh_rtt_p95_le_50ms": (screens["rtt_ms"]["p95"] or math.inf) <= 50,
            "refresh_server_p95_le_50ms": (report["server"]["refresh_ms"]["p95"] or math.inf) <= 50,
            "no_late_refresh": screens["late"] == 0,
            "new_row_within_interval_plus_1s": screens["new_row"]["missed"] == 0 and last is not None
            and last <= period_s + 1}


def table(report: dict) -> str:
    s, i, e, srv = report["screens"], report["ingest"], report["explorer"], report["server"]

    def ms(v):
        return "-" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:.1f}"

    new = s["new_row"]
    return "\n".join([
        "| part | clients | requests | p50 / p95 / max ms (client) | server p50 / p95 / max ms | errors | other |",
        "|---|---|---|---|---|---|---|",
        f"| wall screens | {s['screens']} | {s['answered']:,} | {ms(s['rtt_ms']['p50'])} / {ms(s['rtt_ms']['p95'])} / "
        f"{ms(s['rtt_ms']['max'])} | {ms(srv['refresh_ms']['p50'])} / {ms(srv['refresh_ms']['p95'])} / "
        f"{ms(srv['refresh_ms']['max'])} | {s['errors']} | late {s['late']}; new row on the last screen p95 "
        f"{ms(new['last_screen_p95_s'])} s, max {ms(new['last_screen_max_s'])} s, missed {new['missed']} of {new['writes']} |",
        f"| ingest API | {i['clients']} | {i['requests']:,} | {ms(i['p50_ms'])} / {ms(i['p95_ms'])} / {ms(i['max_ms'])} "
        f"| {ms(srv['ingest_ms']['p50'])} / {ms(srv['ingest_ms']['p95'])} / {ms(srv['ingest_ms']['max'])} "
        f"| {i['errors']} | {i['events_answered']:,} events answered, {i['events_in_database']:,} in the "
        f"database: lost {i['lost']}, duplicated {i['duplicated']}; {i['retries']} retries |",
        f"| explorer | {e['managers']} | {e['callbacks']:,} | {ms(e['p50_ms'])} / {ms(e['p95_ms'])} / {ms(e['max_ms'])} "
        f"| {ms(srv['explorer_ms']['p50'])} / {ms(srv['explorer_ms']['p95'])} / {ms(srv['explorer_ms']['max'])} "
        f"| {e['errors']} | {e['views']} views, a whole view p95 {ms(e['view_p95_ms'])} ms |",
    ])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.mixed", description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432",
                        help="PostgreSQL server on which a database of the run's own is made and dropped")
    parser.add_argument("--url", help="serve this plant instead (kept; the clients' issues are resolved at the end)")
    parser.add_argument("--days", type=int, default=90, help="days of the demo plant made (default 90)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="REDIS_URL of the snapshot cache")
    parser.add_argument("--minutes", type=float, default=10, help="length of the run (default 10)")
    parser.add_argument("--screens", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20, help="ingesting clients (default 20)")
    parser.add_argument("--ingest-every-s", type=float, default=1.0,
                        help="seconds between one client's requests (default 1)")
    parser.add_argument("--batch", type=int, default=1, help="events per ingest request (default 1)")
    parser.add_argument("--managers", type=int, default=5, help="managers in the explorer (default 5)")
    parser.add_argument("--think-s", type=float, default=20, help="seconds a manager reads a view, about (default 20)")
    parser.add_argument("--refresh-s", type=int, default=10, help="REFRESH_S of server and screens (default 10)")
    parser.add_argument("--live", action="store_true", help="run the live simulator too")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: the project's, one per core)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="JSON result file (default bench/results/mixed-<time>.json)")
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= MAX_MINUTES:
        parser.error(f"--minutes must be more than 0 and at most {MAX_MINUTES}")
    if args.minutes * 60 < 3 * args.refresh_s:
        parser.error("--minutes must cover three intervals of --refresh-s at least")
    if min(args.screens, args.clients, args.managers) < 0 or args.screens < 1:
        parser.error("--screens must be positive; --clients and --managers may be 0")
    require_loopback(database_host(args.url or args.pg), "the database")
    require_loopback(urlsplit(args.redis).hostname, "--redis")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    tag = uuid.uuid4().hex[:8]
    prefix = f"floorlink-mixed-{tag}:"
    workdir = Path(tempfile.mkdtemp(prefix="floorlink-mixed-"))
    report = {"started": datetime.now(timezone.utc).isoformat(), "machine": machine_facts(),
              "load_average_before": os.getloadavg(),
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    plant = server = simulator = writer = None
    previous_term = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        plant = Plant(args.url, args.pg, args.days, tag)
        report["database"] = plant.name or "given with --url"
        built_at = None if args.url else time.time()
        codes = plant.codes()
        tokens = plant.tokens(args.clients, tag)
        server = Server(plant.url, workdir, args.refresh_s, args.redis, prefix, args.workers, None).start()
        print(f"gunicorn on 127.0.0.1:{server.port}, Redis cache, REFRESH_S={args.refresh_s}", flush=True)
        if args.live:
            simulator = Simulator(plant.url, workdir / "simulator.log").start()
        writer = IssueWriter(plant.url, tag)
        report.update(asyncio.run(_run(args, plant, server, writer, codes, tokens, tag, built_at)))
        report["ingest"]["events_in_database"] = written = plant.events_written(tag)
        answered = report["ingest"]["events_answered"]
        report["ingest"]["lost"], report["ingest"]["duplicated"] = max(answered - written, 0), max(written - answered, 0)
        report["verdicts"] = verdicts(report, args.refresh_s)
        print(table(report), flush=True)
        print(json.dumps(report["verdicts"], indent=1), flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if simulator:
            simulator.stop()
        if server:
            server.stop()
        if plant:
            try:
                if writer:
                    writer.resolve_all()
                if args.url:
                    report["issues_resolved_at_the_end"] = plant.finish_issues(tag)
            except Exception as exc:  # noqa: BLE001 - the report still gets written
                print(f"could not resolve the run's issues: {exc}", file=sys.stderr)
            plant.drop()
        report["redis_keys_removed"] = clear_redis(args.redis, prefix)
        report["load_average_after"] = os.getloadavg()
        report["finished"] = datetime.now(timezone.utc).isoformat()
        out = args.out or RESULTS_DIR / f"mixed-{datetime.now():%Y%m%d-%H%M%S}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, default=str))
        print(f"results: {out}", flush=True)
        shutil.rmtree(workdir, ignore_errors=True)
    if not (report["verdicts"]["no_error"] and report["verdicts"]["no_row_lost_or_duplicated"]):
        raise SystemExit("errors, lost or duplicated rows: see the report")
    return report


async def _run(args, plant: Plant, server: Server, writer: IssueWriter, codes: dict,
               tokens: list[str], tag: str, built_at: float | None) -> dict:
    rng = random.Random(args.seed)
    warm = await warm_up(server, settled_after(built_at), args.refresh_s, rng)
    markers: dict[str, dict[int, float]] = {}
    loading = time.time()
    screens = await load_screens(server.port, screen_mix(args.screens, codes["department"], codes["line"]),
                                 markers)
    print(f"{len(screens)} screens open in {time.time() - loading:.0f} s", flush=True)
    start = time.time() + START_AFTER_S
    end = start + args.minutes * 60
    queries = explorer_queries(codes["department"], codes["line"], codes["issue_type"])
    server_before = process_facts(session_pids(server.process.pid))
    database_before = process_facts(plant.backend_pids())
    bench_before = resource.getrusage(resource.RUSAGE_SELF)
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
        ingest = pool.submit(run_clients, server.port, tokens, tag, codes, args.batch, args.ingest_every_s,
                             start, end) if args.clients else None
        explorer = pool.submit(run_managers, server.port, args.managers, queries, args.think_s,
                               start, end) if args.managers else None
        print(f"running from {datetime.fromtimestamp(start):%H:%M:%S} for {args.minutes:g} min", flush=True)
        writes = await run_screens(screens, writer, markers, start, end, args.refresh_s, args.seed)
        bench_after = resource.getrusage(resource.RUSAGE_SELF)
        ingest_report = ingest.result() if ingest else _nobody("clients")
        explorer_report = explorer.result() if explorer else _nobody("managers")
        finished = time.time()
        server_after = process_facts(session_pids(server.process.pid))
        database_after = process_facts(plant.backend_pids())
    seconds = end - start
    workers = server.worker_pids()
    return {
        "warm_up": warm, "seconds": seconds, "codes": codes, "explorer_queries": queries,
        "screens": screens_summary(screens, writes, markers, seconds),
        "ingest": {**ingest_report, "events_per_s": ingest_report["events_answered"] / seconds},
        "explorer": explorer_report,
        "server": {**server_summary(server, start, finished, args.refresh_s),
                   "workers_rss_mib": {"start": [round(server_before.get(p, {}).get("rss_mib", 0), 1) for p in workers],
                                       "end": [round(server_after.get(p, {}).get("rss_mib", 0), 1) for p in workers]}},
        "cpu_cores_busy": {
            "server": cpu_used(server_before, server_after) / (finished - start),
            "database": cpu_used(database_before, database_after) / (finished - start),
            "bench_screens": (bench_after.ru_utime + bench_after.ru_stime - bench_before.ru_utime
                              - bench_before.ru_stime) / seconds,
            "bench_clients_and_managers": (ingest_report["cpu_s"] + explorer_report["cpu_s"]) / seconds},
    }


def _nobody(who: str) -> dict:
    empty = {"errors": 0, "failures": [], "cpu_s": 0.0, "p50_ms": None, "p95_ms": None, "max_ms": None}
    if who == "clients":
        return {**empty, "clients": 0, "events_answered": 0, "requests": 0, "sends": 0, "retries": 0,
                "behind_pace": 0}
    return {**empty, "managers": 0, "views": 0, "callbacks": 0, "p95_ms_by_callback": {},
            "view_p50_ms": None, "view_p95_ms": None}


if __name__ == "__main__":
    main()
