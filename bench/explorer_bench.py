"""The bottleneck explorer's callbacks, timed against the straightforward way, figure for figure.

Each callback of the page (the eleven panels, the summary, the list's heading, the grid's
first page, the drill on a matrix cell) is posted to the Flask test client's
`/_dash-update-component`, as the browser posts it, and timed there. Each round moves the
instant on by a minute, as a live page does, so every round builds new views.

- project: the page as it runs (data.explorer.history: the recent history in memory,
  followed by stamps; holding intervals kept per issue).
- straightforward: what the page did before: every request reads its rows with rows.load
  and builds its View, no cache. The read is timed once per round, window and filters and
  added to each request's time on a fresh View of those rows.

Every callback's answer must be the same in both, and the window's counts (issues raised,
open at the instant, per issue type) must equal counts taken by SQL; the run fails loudly
otherwise.

    python -m bench.explorer_bench --url URL [--windows 90,365] [--rounds 3]
                                   [--straightforward-rounds 1] [--at ISO]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench.kpi_bench import RESULTS_DIR, machine
from data import db, settings, timezones
from data.explorer import history, rows
from data.explorer import state as explorer_state
from data.explorer import view as explorer_view
from data.models import Issue, Location

PANELS = ("flow", "matrix", "pairs", "held", "heat_raised", "heat_response", "pareto", "wow",
          "ageing", "unresolved", "xmr")
CALLBACKS = (*PANELS, "summary", "list", "grid", "drill")
VARIANTS = ("project", "straightforward")


class FiguresDiffer(AssertionError):
    """A figure of the explorer is not the reference's."""


def _combinations(conn, since: datetime, until: datetime) -> dict[str, str]:
    """The filter combinations timed, named, as the address asks for them: none; the
    department and the issue type raising most; a severity; a line; a clicked matrix cell
    (filled in once the matrix is drawn)."""
    def most(column, *where):
        stmt = (select(column, func.count().label("n")).select_from(Issue)
                .outerjoin(Location, Location.code == Issue.location_code)
                .where(Issue.raised_at >= since, Issue.raised_at < until, column.is_not(None), *where)
                .group_by(column).order_by(func.count().desc(), column).limit(1))
        found = conn.execute(stmt).first()
        return found[0] if found else None

    dept = most(Issue.owner_department_code)
    kind = most(Issue.issue_type, Issue.owner_department_code == dept)
    line = most(Location.line)
    chosen = {"none": "", "department": f"dept={dept}", "department+type": f"dept={dept}&type={kind}",
              "severity": "sev=P1", "line": f"line={line}"}
    return {name: q for name, q in chosen.items() if "None" not in q}


def _store(query: str, database_url: str) -> dict:
    """The page's store for an address, as dashboards.explorer.layout writes it."""
    tz = timezones.site_zone()
    asked, _ = explorer_state.parse("?" + query, tz)
    window, _ = explorer_state.resolve(asked, asked.at, tz,
                                       explorer_view.shift_finder(database_url, asked.values("line")))
    return {"query": explorer_state.to_query(asked, tz), "lang": asked.lang,
            "since": window.since.isoformat(), "until": window.until.isoformat(),
            "as_of": window.as_of.isoformat(), "history_since": window.history_since.isoformat(),
            "preset": window.preset, "live": False}


def _payload(name: str, store: dict, click: dict | None) -> dict:
    state_input = {"id": "explorer-state", "property": "data", "value": store}
    if name in PANELS:
        return {"output": f"explorer-{name}.figure", "outputs": {"id": f"explorer-{name}", "property": "figure"},
                "inputs": [state_input], "changedPropIds": ["explorer-state.data"], "state": []}
    if name in ("summary", "list"):
        out = "explorer-summary" if name == "summary" else "explorer-list-what"
        return {"output": f"{out}.children", "outputs": {"id": out, "property": "children"},
                "inputs": [state_input], "changedPropIds": ["explorer-state.data"], "state": []}
    if name == "grid":
        request = {"startRow": 0, "endRow": 100, "sortModel": [], "filterModel": {}}
        return {"output": "explorer-grid.getRowsResponse",
                "outputs": {"id": "explorer-grid", "property": "getRowsResponse"},
                "inputs": [{"id": "explorer-grid", "property": "getRowsRequest", "value": request}],
                "changedPropIds": ["explorer-grid.getRowsRequest"], "state": [state_input]}
    from dashboards.explorer import PANEL_PLACES
    inputs = [{"id": f"explorer-{p}", "property": "clickData", "value": click if p == "matrix" else None}
              for p, _ in PANEL_PLACES]
    inputs.append([])
    return {"output": "explorer-drill.children", "outputs": {"id": "explorer-drill", "property": "children"},
            "inputs": inputs, "changedPropIds": ["explorer-matrix.clickData"], "state": [state_input]}


def _post(client, payload: dict) -> tuple[float, object]:
    started = time.perf_counter()
    response = client.post("/_dash-update-component", json=payload)
    ms = (time.perf_counter() - started) * 1000
    if response.status_code == 204:
        return ms, None
    if response.status_code != 200:
        raise RuntimeError(f"{payload['output']}: HTTP {response.status_code}: {response.get_data(as_text=True)[:300]}")
    return ms, json.loads(response.get_data(as_text=True))


def _matrix_click(figure: dict) -> dict | None:
    """A click on the matrix's busiest cell, as the browser reports it."""
    for trace in figure.get("data", []):
        if trace.get("type") != "heatmap" or not trace.get("z"):
            continue
        z = np.array([[v if isinstance(v, (int, float)) and v is not None else -1 for v in row]
                      for row in trace["z"]], dtype=float)
        i, j = np.unravel_index(np.argmax(z), z.shape)
        if z[i, j] > 0:
            return {"points": [{"curveNumber": 0, "x": trace["x"][j], "y": trace["y"][i],
                                "customdata": trace["customdata"][i][j]}]}
    return None


class _Straightforward:
    """view_for as the page had it: rows.load and a View for every request (the read timed
    once per round and added to each request)."""

    def __init__(self):
        self.loaded: dict = {}
        self.read_ms: dict = {}

    def read(self, database_url: str, window, filters: dict) -> float:
        key = (window, tuple(sorted(filters.items())))
        started = time.perf_counter()
        with db.get_engine(database_url).connect() as conn:
            self.loaded[key] = (rows.load(conn, window.history_since, window.as_of, window.as_of, filters),
                                rows.reference(conn))
        self.read_ms[key] = (time.perf_counter() - started) * 1000
        return self.read_ms[key]

    def view_for(self, database_url, window, filters, marks, tz):
        loaded, reference = self.loaded[(window, tuple(sorted(filters.items())))]
        view = explorer_view.View(window, explorer_view.Frames(
            loaded.issues, loaded.open_now, loaded.events, loaded.shifts), reference, tz,
            left_out=len(loaded.left_out))
        for mark in marks:
            view = view.narrowed(mark)
        return view


def _sql_counts(database_url: str, window, filters: dict) -> dict:
    """The window's issues raised, open at the instant and per issue type, counted by SQL."""
    with db.get_engine(database_url).connect() as conn:
        base = rows._filtered(select(Issue.issue_type, Issue.raised_at, Issue.resolved_at, Issue.closed_at)
                              .outerjoin(Location, Location.code == Issue.location_code)
                              .where(Issue.status != "cancelled"), filters)
        raised = conn.execute(base.where(Issue.raised_at >= window.since, Issue.raised_at < window.until)).all()
        opened = conn.execute(base.where(
            Issue.raised_at <= window.as_of,
            (Issue.resolved_at.is_(None)) | (Issue.resolved_at > window.as_of),
            (Issue.closed_at.is_(None)) | (Issue.closed_at > window.as_of))).all()
    by_type: dict[str, int] = {}
    for row in raised:
        by_type[row.issue_type] = by_type.get(row.issue_type, 0) + 1
    return {"raised": len(raised), "open": len(opened), "by_type": by_type}


def _check_counts(database_url: str, store: dict, name: str) -> None:
    tz = timezones.site_zone()
    asked, _ = explorer_state.parse(store["query"], tz)
    window = explorer_state.Window(*(datetime.fromisoformat(store[k]) for k in ("since", "until", "as_of")),
                                   store["preset"], datetime.fromisoformat(store["history_since"]))
    view = explorer_view.view_for(database_url, window, dict(asked.filters), (), tz)
    expected = _sql_counts(database_url, window, dict(asked.filters))
    found = {"raised": len(view.population),
             "open": int(view.frames.open_now["id"].nunique()),
             "by_type": view.population["issue_type"].value_counts().to_dict()}
    if found != expected:
        raise FiguresDiffer(f"{name}: the window's counts {found} are not SQL's {expected}")


def run_bench(url: str, *, windows=(90, 365), rounds: int = 3, straightforward_rounds: int = 1,
              at: datetime | None = None, out_dir: Path | None = RESULTS_DIR, log=print) -> dict:
    """Time every callback for every window and filter combination; fail on a difference."""
    import app as floorlink
    engine = db.get_engine(url)
    with engine.connect() as conn:
        newest = conn.execute(select(func.max(Issue.raised_at))).scalar()
    if at is None:
        newest = newest if newest.tzinfo else newest.replace(tzinfo=timezones.UTC)
        at = (newest + timedelta(minutes=1)).replace(second=0, microsecond=0)
    now = timezones.utc_now()
    # The history must reach back over the longest window at `at` (its span: 28 days more).
    days = max(int(settings.get("EXPLORER_HISTORY_DAYS")),
               math.ceil((now - at) / timedelta(days=1)) + max(windows) + 28 + 2)
    os.environ["EXPLORER_HISTORY_DAYS"] = str(days)
    history.forget(url)
    server = floorlink.create_app(url).server
    client = server.test_client()
    client.get("/explorer")
    started = time.perf_counter()
    history.snapshot_for(url)
    load_s = time.perf_counter() - started
    tz = timezones.site_zone()
    with engine.connect() as conn:
        combos = _combinations(conn, at - timedelta(days=max(windows)), at)
    straightforward = _Straightforward()
    samples = {(w, v, c): [] for w in windows for v in VARIANTS for c in CALLBACKS}
    read_ms = {w: [] for w in windows}
    original = explorer_view.view_for
    clicks: dict = {}
    try:
        for round_ in range(rounds):
            as_of = at + timedelta(minutes=round_)
            for days_ in windows:
                since = as_of - timedelta(days=days_)
                for name, filters in combos.items():
                    query = (f"window=custom&since={since.astimezone(tz):%Y-%m-%dT%H:%M}"
                             f"&until={as_of.astimezone(tz):%Y-%m-%dT%H:%M}&at={as_of.astimezone(tz):%Y-%m-%dT%H:%M}")
                    query += f"&{filters}" if filters else ""
                    _one_combination(url, client, query, name, days_, round_, samples, read_ms,
                                     straightforward, clicks, original, straightforward_rounds, log)
                if (days_, "none") in clicks and clicks[(days_, "none")] is not None:
                    token = clicks[(days_, "none")]["points"][0]["customdata"][0]
                    query = (f"window=custom&since={since.astimezone(tz):%Y-%m-%dT%H:%M}"
                             f"&until={as_of.astimezone(tz):%Y-%m-%dT%H:%M}&at={as_of.astimezone(tz):%Y-%m-%dT%H:%M}"
                             f"&mark={quote(token)}")
                    _one_combination(url, client, query, "matrix mark", days_, round_, samples, read_ms,
                                     straightforward, clicks, original, straightforward_rounds, log)
    finally:
        explorer_view.view_for = original
    summary = {}
    for (w, v, c), values in samples.items():
        if values:
            summary.setdefault(str(w), {}).setdefault(c, {})[v] = {
                "p50_ms": float(np.percentile(values, 50)), "p95_ms": float(np.percentile(values, 95)),
                "n": len(values)}
    backend = make_url(url).get_backend_name()
    report = {"database": backend, "url_database": make_url(url).database, "at": at.isoformat(),
              "history_days": days, "history_load_s": load_s, "windows": list(windows),
              "combinations": list(combos) + ["matrix mark"], "rounds": rounds,
              "straightforward_rounds": straightforward_rounds,
              "straightforward_read_ms_median": {str(w): float(np.median(v)) for w, v in read_ms.items() if v},
              "callbacks": summary, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "machine": machine(engine), "measured_at": timezones.utc_now().isoformat(timespec="seconds")}
    log(table(report))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        stamp = timezones.utc_now().strftime("%Y%m%dT%H%M%SZ")
        path = out_dir / f"explorer-{backend}-{make_url(url).database.rsplit('/', 1)[-1]}-{stamp}.json"
        path.write_text(json.dumps(report, indent=1, ensure_ascii=False))
        report["path"] = str(path)
        log(f"written {path}")
    return report


def _one_combination(url, client, query, name, days_, round_, samples, read_ms, straightforward,
                     clicks, original, straightforward_rounds, log) -> None:
    """Every callback of one address, the project's way, then (in the first rounds) the
    straightforward way; the answers compared."""
    store = _store(query, url)
    answers = {}
    explorer_view.view_for = original
    for callback in CALLBACKS:
        click = clicks.get((days_, name if name != "matrix mark" else "none"))
        if callback == "drill" and click is None:
            continue
        ms, answers[callback] = _post(client, _payload(callback, store, click))
        samples[(days_, "project", callback)].append(ms)
        if callback == "matrix" and round_ == 0 and name != "matrix mark":
            clicks[(days_, name)] = _matrix_click(answers["matrix"]["response"]["explorer-matrix"]["figure"])
    if round_ == 0:
        _check_counts(url, store, f"{days_} days, {name}")
    if round_ >= straightforward_rounds:
        return
    tz = timezones.site_zone()
    window = explorer_state.Window(*(datetime.fromisoformat(store[k]) for k in ("since", "until", "as_of")),
                                   store["preset"], datetime.fromisoformat(store["history_since"]))
    asked, _ = explorer_state.parse(store["query"], tz)
    read = straightforward.read(url, window, dict(asked.filters))
    read_ms[days_].append(read)
    explorer_view.view_for = straightforward.view_for
    try:
        for callback in CALLBACKS:
            if callback not in answers:
                continue
            click = clicks.get((days_, name if name != "matrix mark" else "none"))
            ms, answer = _post(client, _payload(callback, store, click))
            samples[(days_, "straightforward", callback)].append(ms + read)
            if answer != answers[callback]:
                raise FiguresDiffer(f"{days_} days, {name}: the {callback} callback answers differently "
                                    "from the straightforward way")
    finally:
        explorer_view.view_for = original
    log(f"{days_} d {name}: equal; read {read:.0f} ms")


def table(report: dict) -> str:
    lines = [f"explorer on {report['database']} ({report['url_database']}), at {report['at']}, "
             f"history of {report['history_days']} days loaded in {report['history_load_s']:.1f} s",
             f"{'window':>6} {'callback':<14} {'project p50':>11} {'p95':>7} "
             f"{'straightforward p50':>19} {'p95':>8} {'ratio p95':>9}"]
    for window, callbacks in report["callbacks"].items():
        for callback, variants in callbacks.items():
            mine, plain = variants.get("project"), variants.get("straightforward")
            ratio = f"{plain['p95_ms'] / mine['p95_ms']:.0f}x" if mine and plain and mine["p95_ms"] else "-"
            lines.append(f"{window + ' d':>6} {callback:<14} {mine['p50_ms']:>11.0f} {mine['p95_ms']:>7.0f} "
                         + (f"{plain['p50_ms']:>19.0f} {plain['p95_ms']:>8.0f}" if plain else f"{'-':>19} {'-':>8}")
                         + f" {ratio:>9}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.explorer_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of a built workload")
    parser.add_argument("--windows", default="90,365", help="window lengths in days, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--straightforward-rounds", type=int, default=1)
    parser.add_argument("--at", type=timezones.parse_instant, default=None,
                        help="the instant of the first round (default: a minute after the newest issue)")
    args = parser.parse_args(argv)
    windows = tuple(int(w) for w in args.windows.split(","))
    try:
        run_bench(args.url, windows=windows, rounds=args.rounds,
                  straightforward_rounds=args.straightforward_rounds, at=args.at)
    except FiguresDiffer as error:
        print(f"FIGURES DIFFER: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
