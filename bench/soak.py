"""Soak test of a wall screen: the browser's memory over time, every refresh accounted for.

Serves a demo plant with the live simulator running (so the board keeps changing), opens
the overview in headless Chromium at a short refresh interval, and samples every 10 s: the
JS heap in use (CDP Runtime.getHeapUsage) before and after a forced garbage collection,
the DOM counters (CDP Memory.getDOMCounters: nodes alive, detached ones included, and
event listeners), the elements in the document, the resident memory of the renderer
process and of the server's processes. A leak shows as a steady slope of the heap after GC
or of the node count; the least-squares slope is reported in KB/min and extrapolated to
MB/day.

Every refresh answer the page receives is counted in the page (a script added before the
page's own, `COUNT_REFRESHES`, keeping only what arrived since the last sample) and taken at
each sample with the console's errors: a refresh whose answer never came, or came more than
half an interval late, counts as missed (`missed_refreshes`), and the summary gives the
refreshes expected, seen and missed, the answers that were HTTP errors, and every severe
console message.

    .venv/bin/python -m bench.soak [--minutes 10] [--refresh-s 1]

The server listens on 127.0.0.1 only; the run stops by itself after --minutes and closes
the browser, the server and the simulator at the end, on errors and on Ctrl-C alike.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import signal
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.load import machine_facts, process_facts, session_pids, settled_after
from tools.browser import console_errors

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
SAMPLE_EVERY_S = 10
# The first samples include the page's own start-up (scripts, the first figures): slopes
# are fitted from this minute on.
WARM_UP_MIN = 1.0
MAX_MINUTES = 2 * 1440

# Counts the refresh answers (a wall page's `<page>-sent` callback): when each arrived, and
# how many were HTTP errors; the sample takes and empties the list, so it stays small.
COUNT_REFRESHES = """
window.floorlinkSoak = {answers: [], failed: 0};
const soakFetch = window.fetch.bind(window);
window.fetch = function (resource, options) {
  const refresh = String(resource && resource.url || resource).indexOf("_dash-update-component") >= 0
    && String(options && options.body).indexOf("-sent.data") >= 0;
  return soakFetch(resource, options).then(function (response) {
    if (refresh) {
      if (response.ok) { window.floorlinkSoak.answers.push(Date.now()); }
      else { window.floorlinkSoak.failed += 1; }
    }
    return response;
  });
};
"""
TAKE_ANSWERS = """
const soak = window.floorlinkSoak || {answers: [], failed: 0};
return {answers: soak.answers.splice(0), failed: soak.failed};
"""

PAGE_PROBE = """
const updated = document.getElementById('wall-updated');
const banner = document.querySelector('.stale-banner.show');
return {elements: document.getElementsByTagName('*').length,
        js_heap_used: performance.memory ? performance.memory.usedJSHeapSize : null,
        updated: updated ? updated.textContent : null,
        stale: banner ? banner.textContent : null};
"""


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (minutes, value) points."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def _process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def renderer_rss_kb(driver_pid: int) -> int | None:
    """Resident memory of the renderer processes the chromedriver started."""
    total, seen = 0, False
    for pid in _process_tree(driver_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if b"--type=renderer" in cmdline:
            seen = True
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return total if seen else None


def missed_refreshes(answers_ms: list[int], refresh_s: float, since_ms: float, until_ms: float) -> dict:
    """The refreshes expected from `since_ms` to `until_ms`, those seen, and those missed.
    A page's refreshes arrive at one phase of the interval (its own delay past each boundary,
    and the round trip): each answer is put in the interval its time rounds to from that
    phase, and an interval without one is a refresh missed (an answer more than half an
    interval late is counted in the next, and its own as missed)."""
    period = refresh_s * 1000
    if not answers_ms:
        return {"expected": max(0, math.floor((until_ms - since_ms) / period)), "seen": 0,
                "missed": max(0, math.floor((until_ms - since_ms) / period))}
    angles = [2 * math.pi * (t % period) / period for t in answers_ms]
    phase = period * (math.atan2(sum(map(math.sin, angles)), sum(map(math.cos, angles))) / (2 * math.pi) % 1)
    slots = {round((t - phase) / period) for t in answers_ms}
    first, last = math.ceil((since_ms - phase) / period), math.floor((until_ms - phase) / period)
    return {"expected": last - first + 1, "seen": len(answers_ms),
            "missed": sum(1 for k in range(first, last + 1) if k not in slots)}


def sample(driver, started: float, server_pid: int | None = None) -> dict:
    heap = driver.execute_cdp_cmd("Runtime.getHeapUsage", {})
    counters = driver.execute_cdp_cmd("Memory.getDOMCounters", {})
    page = driver.execute_script(PAGE_PROBE)
    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    after_gc = driver.execute_cdp_cmd("Runtime.getHeapUsage", {})
    refreshes = driver.execute_script(TAKE_ANSWERS)
    server = process_facts(session_pids(server_pid)) if server_pid else {}
    return {"minute": (time.time() - started) / 60, "at": datetime.now(timezone.utc).isoformat(),
            "heap_used_kb": heap["usedSize"] / 1024, "heap_total_kb": heap["totalSize"] / 1024,
            "heap_after_gc_kb": after_gc["usedSize"] / 1024,
            "dom_nodes": counters["nodes"], "documents": counters["documents"],
            "js_event_listeners": counters["jsEventListeners"], "elements": page["elements"],
            "renderer_rss_kb": renderer_rss_kb(driver.service.process.pid),
            "server_rss_kb": sum(f["rss_mib"] for f in server.values()) * 1024 if server else None,
            "updated": page["updated"], "stale": page["stale"],
            "answers_ms": refreshes["answers"], "failed_answers": refreshes["failed"],
            "console_errors": console_errors(driver)}


def summarise(samples: list[dict], refresh_s: float, started: float) -> dict:
    fitted = [s for s in samples if s["minute"] >= WARM_UP_MIN] or samples
    trends = {}
    for name in ("heap_after_gc_kb", "heap_used_kb", "renderer_rss_kb", "server_rss_kb", "dom_nodes",
                 "js_event_listeners", "elements"):
        points = [(s["minute"], s[name]) for s in fitted if s[name] is not None]
        slope = slope_per_min(points)
        trend = {"start": points[0][1] if points else None, "end": points[-1][1] if points else None,
                 "min": min((v for _, v in points), default=None),
                 "max": max((v for _, v in points), default=None), "slope_per_min": slope}
        if name.endswith("_kb") and slope is not None:
            trend["mb_per_day"] = slope * 1440 / 1024
        trends[name] = trend
    updates = {s["updated"] for s in samples if s["updated"]}
    errors = [e for s in samples for e in s["console_errors"]]
    return {"samples": len(samples), "fitted_from_minute": fitted[0]["minute"] if fitted else None,
            "trends": trends, "distinct_updated_texts": len(updates),
            "stale_samples": sum(1 for s in samples if s["stale"]),
            "refreshes": {**missed_refreshes([t for s in samples for t in s["answers_ms"]], refresh_s,
                                             started * 1000, started * 1000 + samples[-1]["minute"] * 60_000),
                          "failed_answers": samples[-1]["failed_answers"] if samples else 0},
            "console_errors": len(errors), "first_console_errors": errors[:10]}


def build_plant(folder: Path, days: int, seed: int) -> str:
    from data import db, demo

    url = f"sqlite:///{folder / 'plant.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=days, seed=seed)
    return url


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="length of the soak (default 10)")
    parser.add_argument("--refresh-s", type=int, default=1, help="REFRESH_S of the server (default 1)")
    parser.add_argument("--days", type=int, default=14, help="days of demo plant history (default 14)")
    parser.add_argument("--path", default="/", help="page to open, with its query (default /)")
    parser.add_argument("--out", type=Path, help="JSON result file (default bench/results/soak-<timestamp>.json)")
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= MAX_MINUTES:
        parser.error(f"--minutes must be between 0 and {MAX_MINUTES}")
    if not args.path.startswith("/"):
        parser.error("--path is a path on the wall's server, starting with /")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from data import db
    from data.demo import simulator
    from tools.browser import AppServer, chromium, missing_browser, wait_until

    if missing_browser():
        raise SystemExit(missing_browser())
    workdir = Path(tempfile.mkdtemp(prefix="floorlink-soak-"))
    server = driver = live = None
    started = time.time()
    report = {"started": datetime.now(timezone.utc).isoformat(), "machine": machine_facts(),
              "settings": {"minutes": args.minutes, "refresh_s": args.refresh_s, "days": args.days,
                           "path": args.path, "sample_every_s": SAMPLE_EVERY_S,
                           "browser": "headless Chromium 1920x1080 (tools.browser.chromium)"},
              "samples": []}
    previous_term = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        url = build_plant(workdir, args.days, seed=7)
        settle_until = settled_after(time.time())
        live = simulator.start_background(db.get_engine(url))
        server = AppServer(url, workdir, REFRESH_S=str(args.refresh_s)).start()
        # A plant written moments ago is re-read whole on every refresh for a while
        # (see bench/load.py warm_up); the screen opens once the server is in its steady state.
        time.sleep(max(0.0, settle_until - time.time()))
        driver = chromium()
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": COUNT_REFRESHES})
        driver.get(server.url + args.path)
        wait_until(lambda: driver.execute_script(PAGE_PROBE)["updated"], timeout=60,
                   message="the first refresh")
        started = time.time()
        deadline = started + args.minutes * 60
        print(f"{'min':>6} {'heap KB':>9} {'after GC':>9} {'nodes':>7} {'listeners':>9} "
              f"{'elements':>8} {'renderer RSS KB':>15} {'server RSS MB':>13} {'refreshes':>9}  updated",
              flush=True)
        driver.execute_script(TAKE_ANSWERS)      # the page's start-up is not counted
        console_errors(driver)
        while True:
            s = sample(driver, started, server.process.pid)
            report["samples"].append(s)
            print(f"{s['minute']:>6.1f} {s['heap_used_kb']:>9.0f} {s['heap_after_gc_kb']:>9.0f} "
                  f"{s['dom_nodes']:>7} {s['js_event_listeners']:>9} {s['elements']:>8} "
                  f"{s['renderer_rss_kb'] or 0:>15} {(s['server_rss_kb'] or 0) / 1024:>13.0f} "
                  f"{len(s['answers_ms']):>9}  {s['updated']}{'  STALE' if s['stale'] else ''}"
                  f"{'  ' + str(len(s['console_errors'])) + ' CONSOLE ERRORS' if s['console_errors'] else ''}",
                  flush=True)
            next_at = started + len(report["samples"]) * SAMPLE_EVERY_S
            if next_at > deadline:
                break
            time.sleep(max(0.0, next_at - time.time()))
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if driver:
            driver.quit()
        if server:
            server.stop()
        if live:
            live.stop()
            live.join(timeout=30)
        report["finished"] = datetime.now(timezone.utc).isoformat()
        if report["samples"]:
            report["summary"] = summarise(report["samples"], args.refresh_s, started)
        out = args.out or RESULTS_DIR / f"soak-{datetime.now():%Y%m%d-%H%M%S}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, default=str))
        shutil.rmtree(workdir, ignore_errors=True)
        print(f"results: {out}", flush=True)
    print_summary(report)
    return report


def print_summary(report: dict) -> None:
    summary = report["summary"]
    print(f"\n{summary['samples']} samples; slopes fitted from minute {summary['fitted_from_minute']:.1f}")
    print(f"{'measure':20} {'start':>10} {'end':>10} {'slope/min':>10} {'MB/day':>8}")
    for name, t in summary["trends"].items():
        if t["start"] is None:
            continue
        slope = "-" if t["slope_per_min"] is None else f"{t['slope_per_min']:.2f}"
        per_day = f"{t['mb_per_day']:.1f}" if "mb_per_day" in t else ""
        print(f"{name:20} {t['start']:>10.0f} {t['end']:>10.0f} {slope:>10} {per_day:>8}")
    refreshes = summary["refreshes"]
    print(f"refreshes: {refreshes['expected']} expected, {refreshes['seen']} seen, {refreshes['missed']} missed, "
          f"{refreshes['failed_answers']} HTTP errors; stale samples: {summary['stale_samples']}; "
          f"console errors: {summary['console_errors']}")
    for error in summary["first_console_errors"]:
        print(f"  {error}")


if __name__ == "__main__":
    main()
