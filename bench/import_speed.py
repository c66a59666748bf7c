"""UCI event-log import speed and peak memory, on SQLite and PostgreSQL, for the log as it is
and repeated with new case ids (a larger log must not need proportionally more memory).

    .venv/bin/python bench/import_speed.py [--times 1 10] [--pg postgresql+psycopg://postgres@127.0.0.1/postgres]

Each import runs in a fresh process into an empty database; prints one table row per run:
source rows, seconds, rows/s, peak RSS. Not a timed test: figures depend on the machine.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
UCI = PROJECT_ROOT.parent / "shared" / "data" / "real" / "uci_incident_event_log.csv.gz"
MAPPING = PROJECT_ROOT / "docs" / "mappings" / "uci-incident-event-log.yaml"

PROBE = """
import resource, sys, time
from data import db
from data.ingest import importer
engine = db.get_engine(sys.argv[1]); db.upgrade_schema(engine)
start = time.perf_counter()
result = importer.import_file(engine, "event_log", sys.argv[2], sys.argv[3])
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def repeated(times: int, folder: Path) -> tuple[Path, int]:
    """The UCI log `times` over, each copy's cases renamed, as gzip CSV; and its row count."""
    if times == 1:
        with gzip.open(UCI, "rt", newline="") as handle:
            return UCI, sum(1 for _ in handle) - 1
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--pg", default=os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    print(f"{'database':10} {'log':>5} {'rows':>10} {'seconds':>8} {'rows/s':>8} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for times in args.times:
            path, rows = repeated(times, Path(folder))
            for kind in ("sqlite", "postgresql"):
                drop = None
                url = f"sqlite:///{folder}/bench-{times}.sqlite"
                if kind == "postgresql":
                    url, drop = postgres_database(args.pg)
                try:
                    done = subprocess.run([sys.executable, "-c", PROBE, url, str(path), str(MAPPING)],
                                          cwd=PROJECT_ROOT, capture_output=True, text=True,
                                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
                    if done.returncode != 0:
                        print(f"{kind:10} x{times:<4} failed: {done.stderr.strip().splitlines()[-1]}")
                        continue
                    seconds, peak = done.stdout.split()
                    seconds = float(seconds)
                    print(f"{kind:10} x{times:<4} {rows:>10,} {seconds:>8.1f} {rows / seconds:>8,.0f} {int(peak):>8,}")
                finally:
                    if drop:
                        drop()


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s in all)")
