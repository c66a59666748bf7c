"""The weekly review pack: how long its figures take to compute and its files to render, on the
demo plant and on W-M (README: the pack and its PDF within 10 s on the demo plant, 60 s on W-M).

    python -m bench.weekly [--rounds 3] [--wm-url sqlite:////tmp/floorlink-bench-weekly/W-M.sqlite]
                           [--skip-wm]

The demo plant (42 days, seed 7, ending on a Monday morning) is built in a temporary SQLite
file; W-M is loaded into --wm-url once (bench/workloads.py) and reused while its marker matches.
Each round computes the pack of the last complete week (weekly.build_pack, as the command and
the schedule do) and renders it to PDF, XLSX and HTML in both languages; the medians are
printed side by side with each file's size, and written to bench/results/weekly-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from data import db
from data.demo import build_demo_plant
from data.reports import render, weekly

from bench import workloads

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
WM_URL = "sqlite:////tmp/floorlink-bench-weekly/W-M.sqlite"
# Monday 30 Nov 2026, 08:00 at the site: week 48 is over and past its grace.
DEMO_END = datetime(2026, 11, 30, 0, 0, tzinfo=timezone.utc)
DEMO_DAYS = 42
BUDGET_S = {"demo": 10.0, "W-M": 60.0}
FILES = tuple((lang, ext) for lang in ("zh", "en") for ext in (".pdf", ".xlsx", ".html"))


def measure(engine, as_of: datetime, rounds: int, out: Path, log=print) -> dict:
    """Median seconds to compute the pack of the last complete week at as_of and to render
    each file, with the files' sizes."""
    week = weekly.last_complete_week(as_of)
    builds, renders, sizes = [], {f"{lang}{ext}": [] for lang, ext in FILES}, {}
    for number in range(rounds):
        started = time.perf_counter()
        pack = weekly.build_pack(engine, week, as_of=as_of)
        builds.append(time.perf_counter() - started)
        for lang, ext in FILES:
            path = out / f"floorlink-{week}-{lang}{ext}"
            started = time.perf_counter()
            render.write(pack, path, lang)
            renders[f"{lang}{ext}"].append(time.perf_counter() - started)
            sizes[f"{lang}{ext}"] = path.stat().st_size
        log(f"  round {number + 1}: build {builds[-1]:.2f} s, PDF zh {renders['zh.pdf'][-1]:.2f} s")
    render_s = {name: statistics.median(times) for name, times in renders.items()}
    return {"week": week, "as_of": as_of.isoformat(), "rounds": rounds,
            "build_s": statistics.median(builds), "build_s_all": builds,
            "render_s": render_s, "render_s_all": renders, "bytes": sizes,
            "issues_in_week": pack["kpis"][0]["this"],
            "pack_json_bytes": len(json.dumps(pack, ensure_ascii=False).encode())}


def demo(rounds: int, log=print) -> dict:
    with tempfile.TemporaryDirectory(prefix="floorlink-weekly-") as folder:
        url = f"sqlite:///{Path(folder) / 'demo.sqlite'}"
        engine = db.make_engine(url)
        try:
            db.upgrade_schema(engine)
            log(f"building the demo plant ({DEMO_DAYS} days) ...")
            build_demo_plant(engine, days=DEMO_DAYS, seed=workloads.DEFAULT_SEED, end=DEMO_END)
            out = Path(folder) / "files"
            out.mkdir()
            return measure(engine, DEMO_END, rounds, out, log)
        finally:
            engine.dispose()


def w_m(url: str, rounds: int, log=print) -> dict:
    engine = db.make_engine(url)
    try:
        db.upgrade_schema(engine)
        end = workloads.DEFAULT_END
        if workloads.loaded(engine, "W-M", scale=1.0, seed=workloads.DEFAULT_SEED, end=end) is None:
            log("building W-M (a few minutes) ...")
            engine.dispose()
            workloads.build(url, "W-M", end=end)
        workloads.forget_ticks(engine, end)
        with tempfile.TemporaryDirectory(prefix="floorlink-weekly-") as folder:
            return measure(engine, end, rounds, Path(folder), log)
    finally:
        engine.dispose()


def table(results: dict) -> str:
    """The workloads side by side: compute, render, their sum against the budget, sizes."""
    names = list(results)
    rows = [("week", lambda r: r["week"]),
            ("issues raised in the week", lambda r: f"{r['issues_in_week']:,}"),
            ("pack build (figures), s", lambda r: f"{r['build_s']:.2f}"),
            ("PDF render zh, s", lambda r: f"{r['render_s']['zh.pdf']:.2f}"),
            ("PDF render en, s", lambda r: f"{r['render_s']['en.pdf']:.2f}"),
            ("build + PDF zh, s", lambda r: f"{r['build_s'] + r['render_s']['zh.pdf']:.2f}"),
            ("budget, s", lambda r: f"{r['budget_s']:g}"),
            ("XLSX render zh, s", lambda r: f"{r['render_s']['zh.xlsx']:.2f}"),
            ("HTML render zh, s", lambda r: f"{r['render_s']['zh.html']:.2f}")]
    rows += [(f"{name} size, KB", (lambda r, n=name: f"{r['bytes'][n] / 1024:,.0f}"))
             for name in (f"{lang}{ext}" for lang, ext in FILES)]
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {label} | " + " | ".join(cell(results[n]) for n in names) + " |" for label, cell in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.weekly", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wm-url", default=WM_URL, help="SQLAlchemy URL of the W-M database")
    parser.add_argument("--skip-wm", action="store_true", help="measure the demo plant only")
    args = parser.parse_args(argv)
    results = {"demo": demo(args.rounds)}
    if not args.skip_wm:
        print("W-M ...")
        results["W-M"] = w_m(args.wm_url, args.rounds)
    for name, result in results.items():
        result["budget_s"] = BUDGET_S[name]
        result["within_budget"] = result["build_s"] + result["render_s"]["zh.pdf"] <= BUDGET_S[name]
    print(table(results))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"weekly-{stamp}.json"
    path.write_text(json.dumps({"measured_at": datetime.now(timezone.utc).isoformat(),
                                "workloads": results}, indent=2), encoding="utf-8")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
