"""UCI event-log import speed and peak memory, on SQLite and PostgreSQL, for the log as it is
and repeated with new case ids (a larger log must not need proportionally more memory).

    .venv/bin/python bench/import_speed.py [--times 1 10] [--rounds 3] [--databases sqlite postgresql]
                                           [--pg postgresql+psycopg://postgres@127.0.0.1/postgres]

Each import runs in a fresh process into an empty database; the databases take turns, round
after round. Prints one table row per log and database: source rows, seconds (the median of
the rounds, and the best), rows/s of the median, and the peak memory of the importing process
(VmHWM, the most of the rounds); writes bench/results/import-speed-<time>.json with every
round and the machine's load. Not a timed test: figures depend on the machine and on what
else runs on it.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
UCI = PROJECT_ROOT.parent / "shared" / "data" / "real" / "uci_incident_event_log.csv.gz"
MAPPING = PROJECT_ROOT / "docs" / "mappings" / "uci-incident-event-log.yaml"
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"

# The peak of the importing process alone (VmHWM): ru_maxrss would also count the memory of
# the process it was started from.
PROBE = """
import sys, time
from data import db
from data.ingest import importer
engine = db.get_engine(sys.argv[1]); db.upgrade_schema(engine)
start = time.perf_counter()
result = importer.import_file(engine, "event_log", sys.argv[2], sys.argv[3])
seconds = time.perf_counter() - start
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(seconds, peak // 1024, result.rows, result.summary["events"])
"""


def repeated(times: int, folder: Path) -> tuple[Path, int]:
    """The UCI log `times` over, each copy's cases renamed, as gzip CSV; and its row count."""
    if times == 1:
        with gzip.open(UCI, "rt", newline="") as handle:
            return UCI, sum(1 for _ in csv.reader(handle)) - 1
    path = folder / f"uci-x{times}.csv.gz"
    rows = 0
    with gzip.open(path, "wt", newline="", compresslevel=1) as out:
        writer = csv.writer(out)
        for copy in range(times):
            with gzip.open(UCI, "rt", newline="") as handle:
                reader = csv.reader(handle)
                header = next(reader)
                if copy == 0:
                    writer.writerow(header)
                for row in reader:
                    row[0] = f"{row[0]}-{copy}"
                    writer.writerow(row)
                    rows += 1
    return path, rows


def postgres_database(admin_url: str) -> tuple[str, callable]:
    from sqlalchemy import create_engine, text

    name = f"floorlink_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


def import_once(kind: str, path: Path, folder: Path, pg: str) -> dict:
    """One import into a fresh database: seconds, peak MB, issues and events written."""
    drop = None
    url = f"sqlite:///{folder}/bench-{uuid.uuid4().hex[:8]}.sqlite"
    if kind == "postgresql":
        url, drop = postgres_database(pg)
    try:
        done = subprocess.run([sys.executable, "-c", PROBE, url, str(path), str(MAPPING)],
                              cwd=PROJECT_ROOT, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1]}
        seconds, peak, issues, events = done.stdout.split()
        return {"seconds": float(seconds), "peak_mb": int(peak), "issues": int(issues),
                "events": int(events), "load": os.getloadavg()[0]}
    finally:
        if drop:
            drop()
        if kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])
    parser.add_argument("--pg", default=os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    report = {"started": datetime.now(timezone.utc).isoformat(), "cpus": os.cpu_count(),
              "load_at_start": os.getloadavg(), "runs": []}
    print(f"{'database':10} {'log':>5} {'rows':>10} {'seconds':>8} {'best':>6} {'rows/s':>8} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for times in args.times:
            path, rows = repeated(times, Path(folder))
            rounds: dict[str, list[dict]] = {kind: [] for kind in args.databases}
            for _ in range(args.rounds):
                for kind in args.databases:
                    rounds[kind].append(import_once(kind, path, Path(folder), args.pg))
            for kind, runs in rounds.items():
                report["runs"].append({"database": kind, "times": times, "rows": rows, "rounds": runs})
                good = [r for r in runs if "error" not in r]
                if not good:
                    print(f"{kind:10} x{times:<4} failed: {runs[-1]['error']}")
                    continue
                seconds = statistics.median(r["seconds"] for r in good)
                print(f"{kind:10} x{times:<4} {rows:>10,} {seconds:>8.1f} "
                      f"{min(r['seconds'] for r in good):>6.1f} {rows / seconds:>8,.0f} "
                      f"{max(r['peak_mb'] for r in good):>8,}")
    report["load_at_end"] = os.getloadavg()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"import-speed-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"load average {report['load_at_start'][0]:.1f} at the start, "
          f"{report['load_at_end'][0]:.1f} at the end on {report['cpus']} cores; {out.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s in all)")
