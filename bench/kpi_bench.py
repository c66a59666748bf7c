"""The wall's snapshot, timed against other ways to compute the same figures.

Every variant runs in this one process on the same data, interleaved (the order rotates
each round), after a warm-up. Each round optionally applies one tick of live writes,
advances as_of, then times each variant at that as_of; every variant's figures must equal
the project's (bench.figures.differences), or the run fails with the differences.

    python -m bench.kpi_bench --workload W-S|W-M|W-L --url URL [--rounds N] [--scale F]
                              [--ticks/--no-ticks]
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import resource
import sqlite3
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy
from sqlalchemy import select, text
from sqlalchemy.engine import Engine, make_url

from bench import figures as fig
from bench import variants, workloads
from data import db, settings, timezones, wall
from data.wall.follower import WallState
from data.models import Department

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# "project" is what a screen's refresh costs: the overview from frames followed incrementally
# (data.wall.follower), as data.wall.screens serves it; "project-full" reads the frames in full, as
# a worker does on its first refresh.
VARIANTS = ("project", "project-full", "naive-pandas", "memory-pandas", "duckdb", "sql-pushdown",
            "memory-probe")
STEP = timedelta(seconds=60)


class FiguresDiffer(AssertionError):
    """A variant's figures are not the project's."""


def machine(engine: Engine) -> dict:
    """What the numbers were measured on."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    memory_kib = next((int(line.split()[1]) for line in
                       Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), 0)
    import duckdb

    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            database = "PostgreSQL " + conn.execute(text("SHOW server_version")).scalar()
        else:
            database = "SQLite " + sqlite3.sqlite_version
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory_kib / 2**20, 1),
            "python": platform.python_version(), "database": database,
            "duckdb": duckdb.__version__, "pandas": pd.__version__, "numpy": np.__version__,
            "sqlalchemy": sqlalchemy.__version__}


class Bench:
    """The variants over one database, and the copies of its rows that some hold in memory."""

    def __init__(self, engine: Engine, wanted: tuple[str, ...]):
        self.engine = engine
        self.wanted = wanted
        self.load_ms: dict[str, float] = {}
        self.memory = self.duck = None
        self.state = WallState()
        if {"memory-pandas", "duckdb", "memory-probe"} & set(wanted):
            started = time.perf_counter()
            with engine.connect() as conn:
                self.tables = variants.read_tables(conn)
            self.strings = self.tables.strings
            self.load_ms["read tables"] = _ms_since(started)
        if {"memory-pandas", "memory-probe"} & set(wanted):
            started = time.perf_counter()
            self.memory = variants.PandasEngine(self.tables)
            self.load_ms["memory-pandas"] = _ms_since(started)
            self.probe = np.ones(max(1, self.memory.hot_bytes() // 8), dtype=np.float64)
        if "duckdb" in wanted:
            started = time.perf_counter()
            self.duck = variants.DuckEngine(self.tables)
            self.load_ms["duckdb"] = _ms_since(started)
            if self.memory is None:
                # DuckDB holds its own copy; at W-L two copies do not fit in memory.
                self.strings, self.tables = self.tables.strings, None
        with engine.connect() as conn:
            self.departments = sorted(conn.execute(select(Department.code)).scalars())

    def refresh(self, changed: dict) -> dict[str, float]:
        """Bring the in-memory copies up to date with what a tick wrote (timed apart)."""
        spent = {}
        if self.memory is None and self.duck is None:
            return spent
        started = time.perf_counter()
        with self.engine.connect() as conn:
            delta = variants.read_tables(conn, self.strings, issue_ids=changed["issue_ids"],
                                         movement_ids=changed["movement_ids"])
        if self.memory is not None:
            # The engine's arrays go before the merged copy is built: two would not fit at W-L.
            self.memory = None
            self.tables.merge(delta)
            self.memory = variants.PandasEngine(self.tables)
            spent["memory-pandas"] = _ms_since(started)
        if self.duck is not None:
            started = time.perf_counter()
            self.duck.merge(delta)
            spent["duckdb"] = _ms_since(started)
        return spent

    def run(self, variant: str, as_of: datetime) -> dict | None:
        """The canonical figures of one variant at as_of (None for the memory probe)."""
        if variant == "project":
            with self.engine.connect() as conn:
                frames = self.state.frames(conn, as_of)
                return fig.canonical_figures(wall.overview_from_frames(frames, as_of))
        if variant == "project-full":
            with self.engine.connect() as conn:
                return fig.canonical_figures(wall.overview_snapshot(conn, as_of))
        moments = fig.instants(as_of)
        if variant == "naive-pandas":
            with self.engine.connect() as conn:
                tables = variants.read_tables(conn)
            parts = variants.PandasEngine(tables).parts(moments)
        elif variant == "memory-pandas":
            parts = self.memory.parts(moments)
        elif variant == "duckdb":
            parts = self.duck.parts(moments)
        elif variant == "sql-pushdown":
            with self.engine.connect() as conn:
                parts = variants.sql_parts(conn, moments)
        else:
            float(self.probe.sum())
            return None
        return fig.assemble(parts, moments, self.departments)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _check(variant: str, expected: dict, actual: dict | None, as_of: datetime) -> None:
    if actual is None:
        return
    found = fig.differences(expected, actual)
    if found:
        lines = "\n  ".join(found[:40])
        more = f"\n  ... and {len(found) - 40} more" if len(found) > 40 else ""
        raise FiguresDiffer(f"{variant} differs from project at {as_of.isoformat()}:\n  {lines}{more}")


def summarise(samples: dict[str, list[float]]) -> dict[str, dict]:
    project = float(np.median(samples["project"])) if samples.get("project") else None
    out = {}
    for variant, values in samples.items():
        if not values:
            continue
        median = float(np.median(values))
        out[variant] = {"runs": len(values), "median_ms": median,
                        "p95_ms": float(np.percentile(values, 95)),
                        "ratio_to_project": median / project if project else None,
                        "samples_ms": [round(v, 3) for v in values]}
    return out


def table(summary: dict[str, dict], refresh: dict[str, list[float]]) -> str:
    lines = [f"{'variant':<15} {'median ms':>11} {'p95 ms':>11} {'ratio':>8} {'runs':>5} "
             f"{'refresh ms':>11}"]
    for variant in VARIANTS:
        row = summary.get(variant)
        if row is None:
            continue
        ratio = row["ratio_to_project"]
        kept = refresh.get(variant)
        lines.append(f"{variant:<15} {row['median_ms']:>11.1f} {row['p95_ms']:>11.1f} "
                     f"{ratio if ratio is not None else float('nan'):>8.3f} {row['runs']:>5} "
                     f"{np.median(kept) if kept else float('nan'):>11.1f}")
    return "\n".join(lines)


def ensure_database(url: str) -> None:
    """Create a PostgreSQL benchmark database that does not exist yet (SQLite files create
    themselves). Only the named database is created; no other is touched."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    admin = sqlalchemy.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                  {"name": parsed.database}).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()


def run_bench(url: str, workload: str, *, rounds: int = 20, scale: float = 1.0,
              seed: int = workloads.DEFAULT_SEED, end: datetime = workloads.DEFAULT_END,
              ticks: bool = True, wanted: tuple[str, ...] = VARIANTS, budget_s: float = 600.0,
              pace_s: float | None = None, out_dir: Path | None = RESULTS_DIR, log=print) -> dict:
    """Load (or reuse) the workload, run the rounds, check every variant, return the report.

    A round starts no sooner than `pace_s` (default: the refresh interval) after the one
    before, as refreshes come in service: the watermark's overlap is wall-clock time, and
    back-to-back rounds would crowd it with dozens of ticks where service holds a few."""
    pace_s = settings.get_int("REFRESH_S") if pace_s is None else pace_s
    ensure_database(url)
    engine = db.make_engine(url)
    try:
        db.upgrade_schema(engine)
        marker = workloads.loaded(engine, workload, scale=scale, seed=seed, end=end)
        reused = marker is not None
        if not reused:
            log(f"building {workload} (scale {scale:g}) ...")
            # SQLite changes its journal for the load only when no other connection is open.
            engine.dispose()
            workloads.build(url, workload, scale=scale, seed=seed, end=end)
            marker = workloads.loaded(engine, workload, scale=scale, seed=seed, end=end)
            # Rows written moments ago sit in the watermark's overlap, which a plant in
            # service never has in bulk: measure once they are older than it.
            time.sleep(settings.get_int("FOLLOW_OVERLAP_S") + 1)
        rows = json.loads(marker["rows"])
        if reused:
            removed = workloads.forget_ticks(engine, end)
            if removed:
                log(f"removed {removed:,} rows that earlier runs' ticks raised")
        log(f"{workload}: " + ", ".join(f"{k} {v:,}" for k, v in rows.items())
            + f" ({'reused' if reused else 'built'}; loaded in {marker['load_s']:.1f} s)")
        as_of = workloads.resume_instant(engine, end)
        # As the server does after start-up (app.py): what lives as long as the process stays
        # out of the collector's full passes.
        gc.collect()
        gc.freeze()
        bench = Bench(engine, wanted)
        if bench.load_ms:
            log("held in memory: " + ", ".join(f"{k} {v / 1000:.1f} s" for k, v in bench.load_ms.items()))
        rng = random.Random(seed)

        # Warm-up: every variant once, checked; its time decides how often a slow one runs.
        started = time.perf_counter()
        expected = bench.run("project", as_of)
        cold_start_ms = _ms_since(started)
        log(f"cold start (first snapshot, frames read in full): {cold_start_ms / 1000:.1f} s")
        stride, warm_ms = {}, {}
        for variant in wanted:
            started = time.perf_counter()
            actual = bench.run(variant, as_of)
            warm_ms[variant] = _ms_since(started)
            if variant != "project":
                _check(variant, expected, actual, as_of)
            stride[variant] = 1 if variant == "project" else \
                max(1, math.ceil(warm_ms[variant] / 1000 * rounds / budget_s))
        # The project also once following the database, as a server has by its next refresh.
        bench.run("project", as_of + STEP / 2)
        slow = {v: s for v, s in stride.items() if s > 1}
        if slow:
            log("over the time budget, run every n-th round: " + ", ".join(f"{v} {s}" for v, s in slow.items()))

        # A variant too slow to run again within the budget keeps its warm-up run as its sample.
        samples = {v: [warm_ms[v]] if stride[v] > rounds else [] for v in wanted}
        refresh: dict[str, list[float]] = {}
        tick_ms, tick_rows = [], []
        for number in range(rounds):
            if number:
                time.sleep(max(0.0, round_started + pace_s - time.perf_counter()))
            round_started = time.perf_counter()
            as_of = as_of + STEP
            if ticks:
                started = time.perf_counter()
                changed = workloads.tick(engine, as_of, rng)
                tick_ms.append(_ms_since(started))
                tick_rows.append(changed["rows"])
                for variant, spent in bench.refresh(changed).items():
                    refresh.setdefault(variant, []).append(spent)
            order = list(wanted[number % len(wanted):] + wanted[:number % len(wanted)])
            results = {}
            for variant in order:
                if variant != "project" and (number % stride[variant] or stride[variant] > rounds):
                    continue
                started = time.perf_counter()
                results[variant] = bench.run(variant, as_of)
                samples[variant].append(_ms_since(started))
            for variant, actual in results.items():
                if variant != "project":
                    _check(variant, results["project"], actual, as_of)
            log(f"round {number + 1}/{rounds}: " + ", ".join(
                f"{v} {samples[v][-1]:.0f}" for v in wanted if v in results) + " ms")

        summary = summarise(samples)
        backend = make_url(url).get_backend_name()
        report = {
            "workload": workload, "scale": scale, "seed": seed, "end": end.isoformat(),
            "database": backend, "rows": rows, "reused": reused, "load_s": marker["load_s"],
            "database_bytes": workloads.database_size_bytes(url),
            "memory_load_ms": bench.load_ms, "cold_start_ms": cold_start_ms,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rounds": rounds, "ticks": ticks, "pace_s": pace_s,
            "tick_ms_median": float(np.median(tick_ms)) if tick_ms else None,
            "tick_rows_median": float(np.median(tick_rows)) if tick_rows else None,
            "refresh_ms_median": {k: float(np.median(v)) for k, v in refresh.items()},
            "hot_bytes": bench.memory.hot_bytes() if bench.memory else None,
            "machine": machine(engine), "variants": summary,
            "measured_at": timezones.utc_now().isoformat(timespec="seconds"),
        }
        log(table(summary, refresh))
        if ticks and tick_ms:
            log(f"tick: {np.median(tick_ms):.0f} ms median for {np.median(tick_rows):.0f} rows")
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            stamp = timezones.utc_now().strftime("%Y%m%dT%H%M%SZ")
            path = out_dir / f"{workload}-{backend}-{stamp}.json"
            path.write_text(json.dumps(report, indent=1, ensure_ascii=False))
            report["path"] = str(path)
            log(f"written {path}")
        return report
    finally:
        engine.dispose()
        db.dispose_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kpi_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--workload", required=True, choices=sorted(workloads.WORKLOADS))
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the database to use")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=workloads.DEFAULT_SEED)
    parser.add_argument("--end", type=timezones.parse_instant, default=workloads.DEFAULT_END)
    parser.add_argument("--ticks", action=argparse.BooleanOptionalAction, default=True,
                        help="apply one tick of live writes before each round (default: on)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset of: " + ", ".join(VARIANTS))
    parser.add_argument("--pace-s", type=float, default=None,
                        help="seconds from the start of one round to the next (default: "
                             "REFRESH_S, as screens refresh; 0 runs them back to back)")
    parser.add_argument("--budget-s", type=float, default=600.0,
                        help="seconds a variant may spend over all rounds; a slower one runs "
                             "every n-th round only (default 600)")
    args = parser.parse_args(argv)
    wanted = tuple(v for v in VARIANTS if v in args.variants.split(","))
    if "project" not in wanted:
        wanted = ("project",) + wanted
    try:
        run_bench(args.url, args.workload, rounds=args.rounds, scale=args.scale, seed=args.seed,
                  end=args.end, ticks=args.ticks, wanted=wanted, budget_s=args.budget_s,
                  pace_s=args.pace_s,
                  log=lambda line: print(line, flush=True))
    except FiguresDiffer as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
