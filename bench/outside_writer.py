"""The wall's snapshot while another program writes: at W-L, a writer outside FloorLink
changes 1,000 rows per refresh interval with plain SQL (new issues and their raised events,
acknowledgements and resolutions by UPDATE without an event, comments, movements; no stamps,
so the database sets them: migration 0006), while a snapshot is computed each interval. Rounds alternate in
blocks with and without the writer, so both columns see the same machine; after each block
with it, the followed snapshot must equal a full read, or the run fails.

    python -m bench.outside_writer --url URL [--workload W-L] [--rounds 40] [--block 5]
    python -m bench.outside_writer --writer URL     the writer alone (one instant per line on
                                                    stdin: a batch of rows up to that instant)

The writer stands for another program: it runs in a process of its own and uses only the
database driver (sqlite3 or psycopg), so this module imports FloorLink only where it measures.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROWS = 1_000
TRANSACTIONS = 10
# Shares of a batch's rows: new issues (and as many raised events, acknowledgements and
# resolutions, once earlier batches left issues to acknowledge and resolve) and comments;
# the rest are movements.
NEW_ISSUES, COMMENTS = 0.1, 0.1
PREFIX = "OUTW-"
STEP = timedelta(seconds=60)
RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ---- the writer: plain SQL through the driver, no FloorLink code ------------------------

def _text(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


class OutsideWriter:
    """Another program writing the canonical tables as a plant in a steady state does: each
    batch raises issues (with their `raised` events), acknowledges and resolves by UPDATE,
    without an event, as many as it raised in earlier batches, comments on those it
    acknowledged, and moves lots one step each along supplier -> receiving -> IQC ->
    warehouse -> line side -> consumption, starting as many as reach consumption. It leaves
    every stamp to the database."""

    def __init__(self, url: str, seed: int = 1):
        if url.startswith("sqlite"):
            self.conn = sqlite3.connect(url.split(":///", 1)[1], timeout=30)
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.mark, self.instant = "?", _text
        else:
            import psycopg

            self.conn = psycopg.connect(url.replace("+psycopg", ""))
            self.mark = "%s"
            self.instant = lambda at: at.astimezone(timezone.utc).replace(tzinfo=None)
        self.rng = random.Random(seed)
        self.run = f"{PREFIX}{int(time.time())}-"
        self.number = 0
        cur = self.conn.cursor()
        self.types = cur.execute("SELECT issue_type, owner_department_code FROM sla_rules "
                                 "ORDER BY issue_type").fetchall()
        self.people = [r[0] for r in cur.execute("SELECT id FROM people ORDER BY id").fetchall()]
        kinds: dict[str, list] = {}
        for code, kind, line in cur.execute("SELECT code, kind, line FROM locations ORDER BY code"):
            kinds.setdefault(kind, []).append((code, line))
        consumption = {line: code for code, line in kinds["consumption"] if line}
        self.line_sides = [(code, consumption[line]) for code, line in kinds["line_side"]
                           if line in consumption]
        self.path = [kinds[k] for k in ("supplier", "receiving", "iqc", "warehouse")]
        # Finished products (成品) come from the lines, not from suppliers.
        self.materials = [r[0] for r in cur.execute(
            "SELECT code FROM materials WHERE category != '成品' ORDER BY code").fetchall()]
        self.conn.commit()
        # Issues raised and not acknowledged, acknowledged and not resolved: (id, when its
        # last change happened, owner).
        self.waiting: list[tuple[str, datetime, str]] = []
        self.acknowledged: list[tuple[str, datetime, str]] = []
        # Lots on their way: [lot, material, path, step taken last, when, qty].
        self.lots: list[list] = []

    def _key(self, kind: str) -> str:
        self.number += 1
        return f"{self.run}{kind}{self.number}"

    def _at(self, since: datetime, until: datetime) -> datetime:
        """An instant in (since, until], to the microsecond (two never share one)."""
        span = max(1, int((until - since).total_seconds() * 1_000_000))
        return since + timedelta(microseconds=self.rng.randint(1, span))

    def batch(self, as_of: datetime, rows: int = ROWS, transactions: int = TRANSACTIONS,
              spread_s: float = 0.0) -> dict:
        """`rows` rows dated in the minute up to as_of, in `transactions` commits spread
        evenly over `spread_s` seconds. Returns the rows per kind and the time spent in the
        transactions."""
        window = as_of - STEP
        counts = dict.fromkeys(("issues", "raised_events", "acknowledgements", "resolutions",
                                "comments", "movements"), 0)
        started = time.perf_counter()
        writing = 0.0
        per = rows // transactions
        for number in range(transactions):
            wanted = per if number < transactions - 1 else rows - per * (transactions - 1)
            begun = time.perf_counter()
            self._transaction(window, as_of, wanted, counts)
            writing += time.perf_counter() - begun
            if spread_s and number < transactions - 1:
                time.sleep(max(0.0, started + spread_s * (number + 1) / transactions
                               - time.perf_counter()))
        return {**counts, "rows": sum(counts.values()), "ms": writing * 1000}

    def _ready(self, issues: list, since: datetime, most: int) -> list:
        """Up to `most` of `issues` whose last change came before this window (a change
        comes after the one before), taken out of the list."""
        ready = [issue for issue in issues if issue[1] <= since][:most]
        for issue in ready:
            issues.remove(issue)
        return ready

    def _transaction(self, since: datetime, until: datetime, rows: int, counts: dict) -> None:
        issues, events, acks, resolutions = [], [], [], []
        share = int(rows * NEW_ISSUES)
        for _ in range(share):
            issue_type, owner = self.rng.choice(self.types)
            raised = self._at(since, until)
            issue_id = self._key("I")
            issues.append((issue_id, issue_type, f"外部系统 {issue_id}", self.rng.choice(
                ("P1", "P2", "P3", "P4")), self.rng.choice(self.line_sides)[0],
                self.rng.choice(self.people), self.instant(raised), owner, "open"))
            events.append((issue_id, self.instant(raised), "raised", owner, None))
            self.waiting.append((issue_id, raised, owner))
        for issue_id, _, owner in self._ready(self.acknowledged, since, share):
            resolutions.append((self.instant(self._at(since, until)), issue_id))
        for issue_id, _, owner in self._ready(self.waiting, since, share):
            at = self._at(since, until)
            acks.append((self.instant(at), issue_id))
            self.acknowledged.append((issue_id, at, owner))
        commented = [issue for issue in self.acknowledged if issue[1] <= since]
        comments = int(rows * COMMENTS) if commented else 0
        for _ in range(comments):
            issue_id, _, owner = self.rng.choice(commented)
            events.append((issue_id, self.instant(self._at(since, until)), "commented", owner,
                           self.rng.choice(self.people)))
        moves = self._moves(since, until, rows - len(issues) - len(events) - len(acks)
                            - len(resolutions))
        cur = self.conn.cursor()
        values = lambda n: "(" + ", ".join([self.mark] * n) + ")"  # noqa: E731
        cur.executemany("INSERT INTO issues (id, issue_type, title, severity, location_code, "
                        "raised_by, raised_at, owner_department_code, status) VALUES "
                        + values(9), issues)
        cur.executemany("INSERT INTO issue_events (issue_id, at, kind, department_code, actor) "
                        "VALUES " + values(5), events)
        cur.executemany(f"UPDATE issues SET acknowledged_at = {self.mark}, status = 'acknowledged' "
                        f"WHERE id = {self.mark}", acks)
        cur.executemany(f"UPDATE issues SET resolved_at = {self.mark}, status = 'resolved' "
                        f"WHERE id = {self.mark}", resolutions)
        cur.executemany("INSERT INTO movements (id, at, material_code, lot, qty, "
                        "from_location_code, to_location_code) VALUES " + values(7), moves)
        self.conn.commit()
        counts["issues"] += len(issues)
        counts["raised_events"] += share
        counts["acknowledgements"] += len(acks)
        counts["resolutions"] += len(resolutions)
        counts["comments"] += comments
        counts["movements"] += len(moves)

    def _moves(self, since: datetime, until: datetime, wanted: int) -> list[tuple]:
        """`wanted` moves: lots that moved before this window take their next step (those
        reaching consumption leave), and a fifth of the moves start new lots."""
        moves = []
        waiting = [lot for lot in self.lots if lot[4] <= since]
        self.rng.shuffle(waiting)
        while len(moves) < wanted:
            if waiting and self.rng.random() < 0.8:
                lot = waiting.pop()
            else:
                line_side, consumption = self.rng.choice(self.line_sides)
                lot = [self._key("L"), self.rng.choice(self.materials),
                       [self.rng.choice(step)[0] for step in self.path] + [line_side, consumption],
                       0, since, float(self.rng.randrange(50, 500, 10))]
                self.lots.append(lot)
            name, material, path, step, _, qty = lot
            lot[3], lot[4] = step + 1, self._at(since, until)
            moves.append((self._key("M"), self.instant(lot[4]), material, name, qty, path[step],
                          path[step + 1]))
            if lot[3] == len(path) - 1:
                self.lots.remove(lot)
        return moves

    def close(self) -> None:
        self.conn.close()


def write_from_stdin(url: str, rows: int, transactions: int, spread_s: float) -> None:
    """The writer's process: one batch per instant read from stdin, a JSON line per batch."""
    writer = OutsideWriter(url)
    try:
        for line in sys.stdin:
            done = writer.batch(datetime.fromisoformat(line.strip()), rows, transactions, spread_s)
            print(json.dumps(done), flush=True)
    finally:
        writer.close()


class WriterProcess:
    """The writer in a process of its own."""

    def __init__(self, url: str, rows: int = ROWS, transactions: int = TRANSACTIONS,
                 spread_s: float = 0.0):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.outside_writer", "--writer", url, "--rows", str(rows),
             "--transactions", str(transactions), "--spread-s", str(spread_s)],
            cwd=Path(__file__).resolve().parent.parent, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)

    def start_batch(self, as_of: datetime) -> None:
        self.process.stdin.write(as_of.isoformat() + "\n")
        self.process.stdin.flush()

    def batch_done(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the writer stopped (exit status {self.process.wait()})")
        return json.loads(line)

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


# ---- the measurement --------------------------------------------------------------------

def forget_outside_rows(engine) -> int:
    """Remove what earlier runs' writers wrote (their issues, events and moves), with the
    balances of their lots, so a run counts the workload as built. Returns the rows removed."""
    from sqlalchemy import delete, select

    from data import store
    from data.models import Issue, IssueEvent, Movement

    ours = Issue.id.startswith(PREFIX)
    with engine.begin() as conn:
        lots = conn.execute(select(Movement.lot).where(Movement.id.startswith(PREFIX))
                            .distinct()).scalars().all()
        removed = conn.execute(delete(IssueEvent).where(IssueEvent.issue_id.in_(
            select(Issue.id).where(ours)))).rowcount
        removed += conn.execute(delete(Issue).where(ours)).rowcount
        removed += conn.execute(delete(Movement).where(Movement.id.startswith(PREFIX))).rowcount
        store.refresh_lot_stock(conn, lots)
        store.bump_bulk_version(conn)
    return removed


def _summary(values: list[float]) -> dict:
    import numpy as np

    return {"runs": len(values), "p50_ms": float(np.median(values)),
            "p95_ms": float(np.percentile(values, 95)), "max_ms": float(max(values)),
            "samples_ms": [round(v, 3) for v in values]}


def table(report: dict) -> str:
    """Snapshot times without and with the writer, side by side: wall-clock, and the CPU
    time of the measuring process (which other work on the machine inflates far less)."""
    lines = [f"{'snapshot':<14} {'without writer':>15} {'with writer':>12}"]
    for clock, unit in (("", "ms"), ("cpu_", "cpu ms")):
        without, with_writer = report[f"{clock}without_writer"], report[f"{clock}with_writer"]
        for key in ("p50", "p95", "max"):
            lines.append(f"{key + ' ' + unit:<14} {without[key + '_ms']:>15.1f} "
                         f"{with_writer[key + '_ms']:>12.1f}")
    lines.append(f"{'rounds':<14} {report['without_writer']['runs']:>15} "
                 f"{report['with_writer']['runs']:>12}")
    return "\n".join(lines)


def run(url: str, *, workload: str = "W-L", rounds: int = 40, block: int = 5,
        rows: int = ROWS, transactions: int = TRANSACTIONS, scale: float = 1.0,
        pace_s: float | None = None, out_dir: Path | None = RESULTS_DIR, log=print) -> dict:
    """Load (or reuse) the workload, run the rounds in blocks without and with the writer,
    check the followed snapshot against a full read after each block with it, report."""
    import gc

    from bench import kpi_bench, workloads
    from bench.figures import canonical_figures
    from data import db, settings, timezones, wall

    pace_s = settings.get_int("REFRESH_S") if pace_s is None else pace_s
    kpi_bench.ensure_database(url)
    engine = db.make_engine(url)
    writer = None
    try:
        db.upgrade_schema(engine)
        end = workloads.DEFAULT_END
        marker = workloads.loaded(engine, workload, scale=scale, seed=workloads.DEFAULT_SEED, end=end)
        if marker is None:
            log(f"building {workload} (scale {scale:g}) ...")
            engine.dispose()
            workloads.build(url, workload, scale=scale, end=end)
            marker = workloads.loaded(engine, workload, scale=scale, seed=workloads.DEFAULT_SEED,
                                      end=end)
        removed = workloads.forget_ticks(engine, end) + forget_outside_rows(engine)
        if removed:
            log(f"removed {removed:,} rows that earlier runs wrote")
        # Rows written moments ago sit in the watermark's overlap, which a plant in service
        # never has in bulk: measure once they are older than it.
        time.sleep(settings.get_int("FOLLOW_OVERLAP_S") + 1)
        as_of = workloads.resume_instant(engine, end)
        gc.collect()
        gc.freeze()
        bench = kpi_bench.Bench(engine, ("project",))
        started = time.perf_counter()
        bench.run("project", as_of)
        cold_ms = (time.perf_counter() - started) * 1000
        log(f"{workload}: {marker['rows']}; cold start {cold_ms / 1000:.1f} s")
        bench.run("project", as_of + STEP / 2)
        writer = WriterProcess(url, rows, transactions, spread_s=0.8 * pace_s)
        samples: dict[bool, list[float]] = {False: [], True: []}
        cpu: dict[bool, list[float]] = {False: [], True: []}
        load: list[float] = []
        batches: list[dict] = []
        checks = 0
        round_started = time.perf_counter()
        for number in range(rounds):
            writing = (number // block) % 2 == 1
            if number:
                time.sleep(max(0.0, round_started + pace_s - time.perf_counter()))
            round_started = time.perf_counter()
            as_of += STEP
            if writing:
                writer.start_batch(as_of)
            started, cpu_started = time.perf_counter(), time.process_time()
            bench.run("project", as_of)
            samples[writing].append((time.perf_counter() - started) * 1000)
            cpu[writing].append((time.process_time() - cpu_started) * 1000)
            load.append(os.getloadavg()[0])
            if writing:
                batches.append(writer.batch_done())
            log(f"round {number + 1}/{rounds} {'with' if writing else 'without'} writer: "
                f"{samples[writing][-1]:.1f} ms")
            if writing and number % block == block - 1:
                # Every outside row is in: the followed figures must be a full read's.
                check_at = as_of + STEP / 2
                followed = bench.run("project", check_at)
                with engine.connect() as conn:
                    full = canonical_figures(wall.overview_snapshot(conn, check_at))
                if followed != full:
                    raise kpi_bench.FiguresDiffer(
                        f"followed differs from a full read at {check_at.isoformat()}")
                checks += 1
        writer.stop()
        writer = None
        report = {
            "workload": workload, "scale": scale, "database": engine.dialect.name,
            "rows": json.loads(marker["rows"]), "rounds": rounds, "block": block,
            "pace_s": pace_s, "writer_rows_per_interval": rows, "writer_transactions": transactions,
            "cold_start_ms": cold_ms, "checks_equal_to_full_read": checks,
            "writer_batch_ms_median": float(sorted(b["ms"] for b in batches)[len(batches) // 2])
            if batches else None,
            "writer_batches": batches[:3],
            "without_writer": _summary(samples[False]), "with_writer": _summary(samples[True]),
            "cpu_without_writer": _summary(cpu[False]), "cpu_with_writer": _summary(cpu[True]),
            # The machine's 1-minute load average over the rounds (2 cores: above 2, other
            # work was waiting for them too).
            "load_average_median": sorted(load)[len(load) // 2],
            "machine": kpi_bench.machine(engine),
            "measured_at": timezones.utc_now().isoformat(timespec="seconds"),
        }
        log(table(report))
        log(f"writer: {rows:,} rows per interval in {transactions} transactions, median "
            f"{report['writer_batch_ms_median']:.0f} ms of writing a batch; followed = full read after "
            f"{checks} blocks; machine load average {report['load_average_median']:.1f} (median)")
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            stamp = timezones.utc_now().strftime("%Y%m%dT%H%M%SZ")
            path = out_dir / f"outside-writer-{workload}-{engine.dialect.name}-{stamp}.json"
            path.write_text(json.dumps(report, indent=1, ensure_ascii=False))
            report["path"] = str(path)
            log(f"written {path}")
        forget_outside_rows(engine)
        return report
    finally:
        if writer is not None:
            writer.process.kill()
            writer.process.wait()
        engine.dispose()
        db.dispose_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.outside_writer",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="SQLAlchemy URL of the benchmark database")
    parser.add_argument("--writer", metavar="URL", help="run the writer alone against URL")
    parser.add_argument("--workload", default="W-L")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--block", type=int, default=5,
                        help="rounds in a row with, then without, the writer (default 5)")
    parser.add_argument("--rows", type=int, default=ROWS, help="rows the writer changes per interval")
    parser.add_argument("--transactions", type=int, default=TRANSACTIONS)
    parser.add_argument("--spread-s", type=float, default=0.0,
                        help="(writer) seconds a batch's transactions are spread over")
    parser.add_argument("--pace-s", type=float, default=None,
                        help="seconds from one round to the next (default REFRESH_S)")
    args = parser.parse_args(argv)
    if args.writer:
        write_from_stdin(args.writer, args.rows, args.transactions, args.spread_s)
        return 0
    if not args.url:
        parser.error("--url or --writer is required")
    from bench.kpi_bench import FiguresDiffer

    try:
        run(args.url, workload=args.workload, rounds=args.rounds, block=args.block,
            rows=args.rows, transactions=args.transactions, scale=args.scale, pace_s=args.pace_s,
            log=lambda line: print(line, flush=True))
    except FiguresDiffer as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
