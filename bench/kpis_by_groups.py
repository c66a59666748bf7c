"""The `kpis` report on the same issues and events spread over 1 to 1,000 departments: its cost
must not grow with the number of departments (at most twice one department's for 1,000).

    python -m bench.kpis_by_groups [--groups 1 10 100 649 1000] [--days 90] [--rounds 3]
                                   [--url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Builds the demo plant once (in a temporary SQLite file, or with --url in a PostgreSQL
database floorlink_bench_groups of that server, created and dropped by the run), then for
each number of departments gives every issue and event a department of that many (the same
issues, events and movements each time) and times the report's function over the whole
history: with the reference loop (kpis.issue_kpis_by_department, one issue_kpis per
department) and with the grouped pass the report uses, interleaved, after a warm-up; both
must give the same report, or the run fails. Then the command `python app.py kpis` end to end
once each way. Prints the medians (wall clock, and the CPU time of the measuring process),
each with its ratio to one department, and writes
bench/results/kpis-by-groups-<database>-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from sqlalchemy import bindparam, create_engine, delete, select, text, update
from sqlalchemy.engine import Engine, make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
DATABASE = "floorlink_bench_groups"
GROUPS = (1, 10, 100, 649, 1000)
END = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
PATHS = ("loop", "grouped")

# The command as a user runs it; the loop's variant is the same command with the report's
# figures by department taken from the reference loop.
COMMAND = """
import sys
from data.reports import kpi_report
if sys.argv[1] == "loop":
    from functools import partial
    from data import kpis
    kpi_report.kpi_report = partial(kpi_report.kpi_report,
                                    by_department=kpis.issue_kpis_by_department)
from app import cli
cli(["kpis", *sys.argv[2:]], standalone_mode=True)
"""


def group_code(number: int) -> str:
    return f"G{number:04d}"


def holders(engine: Engine) -> dict[str, list]:
    """Who holds what in the plant as built: each issue's owner, each event's department,
    each person's and each rule's department, and the departments by number."""
    from data.models import Department, Issue, IssueEvent, Person, SlaRule

    with engine.connect() as conn:
        return {
            "departments": list(conn.execute(select(Department.code).order_by(Department.code))
                                .scalars()),
            "issues": conn.execute(select(Issue.id, Issue.owner_department_code)
                                   .order_by(Issue.id)).all(),
            "events": conn.execute(select(IssueEvent.id, IssueEvent.issue_id,
                                          IssueEvent.department_code)
                                   .where(IssueEvent.department_code.is_not(None))).all(),
            "people": conn.execute(select(Person.id, Person.department_code)).all(),
            "rules": conn.execute(select(SlaRule.issue_type, SlaRule.owner_department_code)).all(),
        }


def spread(engine: Engine, built: dict[str, list], groups: int) -> None:
    """Departments G0000.. (`groups` of them) instead of the plant's own: issue number i's
    department number k (in `built`, the plant as built) becomes G((i + k) mod groups), so
    each issue keeps the shape of its hand-offs (given enough departments) and the issues
    fall evenly over every department."""
    from data.models import Department, Issue, IssueEvent, Person, SlaRule

    number_of = {code: k for k, code in enumerate(built["departments"])}
    new = [group_code(n) for n in range(groups)]
    place = {issue_id: i for i, (issue_id, _) in enumerate(built["issues"])}

    def moved(i: int, code: str) -> str:
        return new[(i + number_of[code]) % groups]

    with engine.begin() as conn:
        present = set(conn.execute(select(Department.code)).scalars())
        conn.execute(Department.__table__.insert(), [
            {"code": code, "name_zh": f"部门{code}", "name_en": f"Department {code}"}
            for code in new if code not in present])
        conn.execute(update(Issue).where(Issue.id == bindparam("key"))
                     .values(owner_department_code=bindparam("code")),
                     [{"key": issue_id, "code": moved(i, code)}
                      for i, (issue_id, code) in enumerate(built["issues"])])
        conn.execute(update(IssueEvent).where(IssueEvent.id == bindparam("key"))
                     .values(department_code=bindparam("code")),
                     [{"key": event_id, "code": moved(place[issue_id], code)}
                      for event_id, issue_id, code in built["events"]])
        for model, key, column, rows in (
                (Person, Person.id, "department_code", built["people"]),
                (SlaRule, SlaRule.issue_type, "owner_department_code", built["rules"])):
            conn.execute(update(model).where(key == bindparam("key"))
                         .values({column: bindparam("code")}),
                         [{"key": row_key, "code": new[number_of[code] % groups]}
                          for row_key, code in rows])
        conn.execute(delete(Department).where(Department.code.not_in(new)))


def plant_rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {table: conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar()
                for table in ("departments", "issues", "issue_events", "movements")}


def timed_ms(call) -> tuple[float, float]:
    """Wall-clock and CPU milliseconds of the call: the CPU time of this process (SQLite's
    work included, PostgreSQL's not) is what other work on the machine inflates far less."""
    started, cpu = time.perf_counter(), time.process_time()
    call()
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000


def command_ms(url: str, path: str, since: datetime, until: datetime) -> tuple[float, float]:
    """`python app.py kpis` over the window, in a fresh process, as the user would wait for it:
    wall-clock and CPU milliseconds of that process."""
    env = {**os.environ, "DATABASE_URL": url}
    started, before = time.perf_counter(), os.times()
    subprocess.run([sys.executable, "-c", COMMAND, path, "--since", since.isoformat(),
                    "--until", until.isoformat(), "--as-of", until.isoformat()],
                   cwd=PROJECT_ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system
                                                          - before.children_system)
    return (time.perf_counter() - started) * 1000, cpu * 1000


def measure(url: str, *, groups: tuple[int, ...], days: int, rounds: int, command: bool,
            log=print) -> dict:
    """Build the plant at `url`, then time both paths for each number of departments."""
    from data import db, kpis
    from data.demo import build_demo_plant
    from data.reports import kpi_report

    engine = db.make_engine(url)
    try:
        db.upgrade_schema(engine)
        started = time.perf_counter()
        build_demo_plant(engine, days=days, seed=7, end=END)
        log(f"demo plant of {days} days built in {time.perf_counter() - started:.1f} s")
        since, until = END - timedelta(days=days), END
        built = holders(engine)
        variants = {"loop": kpis.issue_kpis_by_department,
                    "grouped": kpi_report.issue_kpis_by_department}
        rows = []
        for count in groups:
            spread(engine, built, count)

            def report(path: str) -> dict:
                return kpi_report.kpi_report(engine, since=since, until=until, as_of=until,
                                             by_department=variants[path])

            reports = {path: report(path) for path in PATHS}
            if reports["loop"] != reports["grouped"]:
                raise AssertionError(f"{count} departments: the grouped report differs from "
                                     "the loop's")
            samples: dict[str, list[tuple[float, float]]] = {path: [] for path in PATHS}
            for _ in range(rounds):
                for path in PATHS:
                    samples[path].append(timed_ms(lambda: report(path)))
            row = {"departments": count, "plant": plant_rows(engine),
                   "raised": reports["grouped"]["overall"]["raised"],
                   **{f"{path}_ms": statistics.median(s[0] for s in samples[path])
                      for path in PATHS},
                   **{f"{path}_cpu_ms": statistics.median(s[1] for s in samples[path])
                      for path in PATHS},
                   "samples_wall_cpu_ms": samples}
            if command:
                for path in PATHS:
                    row[f"{path}_command_ms"], row[f"{path}_command_cpu_ms"] = command_ms(
                        url, path, since, until)
            rows.append(row)
            log(f"{count:>5} departments: loop {row['loop_ms']:,.0f} ms, "
                f"grouped {row['grouped_ms']:,.0f} ms (CPU {row['loop_cpu_ms']:,.0f} and "
                f"{row['grouped_cpu_ms']:,.0f} ms)")
        return {"rows": rows, "days": days, "rounds": rounds, "since": since.isoformat(),
                "until": until.isoformat()}
    finally:
        engine.dispose()
        db.dispose_all()


def table(result: dict) -> str:
    """Medians side by side, each with its ratio to the first row (one department)."""
    rows = result["rows"]
    first = rows[0]
    keys = [key for key in ("loop_ms", "grouped_ms", "loop_cpu_ms", "grouped_cpu_ms",
                            "loop_command_ms", "grouped_command_ms", "loop_command_cpu_ms",
                            "grouped_command_cpu_ms") if key in first]
    header = f"{'departments':>11}" + "".join(f"{key[:-3].replace('_', ' '):>21}"
                                              for key in keys)
    lines = [header]
    for row in rows:
        cells = "".join(f"{row[key]:>12,.0f} ms {row[key] / first[key]:>4.1f}x" for key in keys)
        lines.append(f"{row['departments']:>11,}{cells}")
    return "\n".join(lines)


@contextmanager
def database(url: str | None) -> Iterator[tuple[str, str]]:
    """A database of the run's own: a temporary SQLite file, or DATABASE on the server of
    `url`, created empty and dropped afterwards. Yields its URL and its kind."""
    if url is None:
        with tempfile.TemporaryDirectory(prefix="kpis-by-groups-") as folder:
            yield f"sqlite:///{Path(folder) / 'plant.sqlite'}", "sqlite"
        return
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
        plant_url = make_url(url).set(database=DATABASE).render_as_string(hide_password=False)
        yield plant_url, "postgresql"
    finally:
        from data import db

        db.dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        admin.dispose()


def run(url: str | None = None, *, groups: tuple[int, ...] = GROUPS, days: int = 90,
        rounds: int = 3, command: bool = True, out_dir: Path | None = RESULTS_DIR,
        log=print) -> dict:
    with database(url) as (plant_url, kind):
        result = measure(plant_url, groups=groups, days=days, rounds=rounds, command=command,
                         log=log)
    result.update(database=kind, load_average=os.getloadavg()[0],
                  measured_at=datetime.now(timezone.utc).isoformat())
    log(table(result))
    if out_dir is not None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = out_dir / f"kpis-by-groups-{kind}-{stamp}.json"
        out.write_text(json.dumps(result, indent=2))
        log(f"wrote {out.relative_to(PROJECT_ROOT) if out.is_relative_to(PROJECT_ROOT) else out}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None,
                        help="A PostgreSQL server URL (any database on it); default: SQLite.")
    parser.add_argument("--groups", type=int, nargs="+", default=list(GROUPS))
    parser.add_argument("--days", type=int, default=90, help="Days of demo plant history.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-command", dest="command", action="store_false",
                        help="Time the report's function only, not the command end to end.")
    args = parser.parse_args(argv)
    run(args.url, groups=tuple(args.groups), days=args.days, rounds=args.rounds,
        command=args.command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
