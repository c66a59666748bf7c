"""Backup and restore as a user runs them (`python app.py backup`, `restore`): a demo plant
backed up while a writer goes on, changed, restored; the rows and KPIs of the restored
database equal the backup's. A bad file is refused in one line and changes nothing. On
PostgreSQL the backup is pg_dump of one state, and the restore commands it prints restore it."""
from __future__ import annotations

import hashlib
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from data import db, demo, queries, store, timezones
from data.reports import kpi_report
from tools.databases import throwaway_postgres

ROOT = Path(__file__).resolve().parent.parent
HEAD = ScriptDirectory(str(db.MIGRATIONS_DIR)).get_current_head()

# Writes through data.store until stopped, as the live simulator and the ingest API do: each
# transaction an issue, its acknowledgement and a movement; prints the number of each one
# committed.
WRITER = """
import sys
from data import db, store, timezones
url, issue_type, material, source, target = sys.argv[1:]
engine = db.get_engine(url)
n = 0
while True:
    n += 1
    now = timezones.utc_now()
    with db.session_scope(engine) as session:
        store.raise_issue(session, issue_id=f"W-{n}", issue_type=issue_type, title="backup under way",
                          severity="P3", at=now)
        store.acknowledge(session, f"W-{n}", now, actor="writer")
        store.record_movements(session, [{"id": f"W-MV-{n}", "at": now, "material_code": material,
                                          "lot": f"W-LOT-{n % 5}", "qty": 1.0,
                                          "from_location_code": source, "to_location_code": target}])
    print(n, flush=True)
"""


def run(*args: str, url: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, text=True, capture_output=True,
                            env={**os.environ, "DATABASE_URL": url}, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


class Writer:
    """WRITER in a process of its own on `url`, writing until stopped; `committed` is the
    number of its last transaction committed."""

    def __init__(self, url: str):
        engine = db.get_engine(url)
        with engine.connect() as conn:
            issue_type = conn.execute(text("SELECT issue_type FROM sla_rules ORDER BY 1")).scalar()
            material = conn.execute(text("SELECT code FROM materials ORDER BY 1")).scalar()
            source, target = conn.execute(text(
                "SELECT code FROM locations WHERE kind IN ('warehouse', 'line_side') ORDER BY kind DESC, code"
            )).scalars().all()[:2]
        self.committed = 0
        self.process = subprocess.Popen(
            [sys.executable, "-c", WRITER, url, issue_type, material, source, target], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.committed = int(line)

    def wait_for(self, commits: int) -> None:
        deadline = time.monotonic() + 30
        while self.committed < commits:
            assert self.process.poll() is None, f"the writer stopped: {self.process.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "the writer does not write"
            time.sleep(0.05)

    def stop(self) -> int:
        """Stop it; the number of its last transaction committed."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self.reader.join(timeout=30)
        return self.committed


def printed_rows(output: str) -> dict[str, int]:
    return {table: int(count.replace(",", ""))
            for table, count in re.findall(r"^  (\w+) +([\d,]+)$", output, flags=re.M)}


def table_rows(path: Path) -> dict[str, list]:
    """Every row of every table of the SQLite file, in order."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        tables = [t for (t,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}


def but_versions(rows: dict[str, list]) -> dict[str, list]:
    """The rows but the data version counters, which a restore raises."""
    return {t: r for t, r in rows.items() if t != "data_versions"}


def the_kpis(url: str, as_of) -> dict:
    engine = create_engine(url)
    try:
        return kpi_report.kpi_report(engine, since=as_of - timedelta(days=7), until=as_of, as_of=as_of)
    finally:
        engine.dispose()


def data_version(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return queries.data_version(conn)
    finally:
        engine.dispose()


def written_by_the_writer(issues: list) -> set[int]:
    return {int(row[0][2:]) for row in issues if row[0].startswith("W-")}


def one_state(rows: dict[str, list]) -> None:
    """Each transaction of the writer is in whole or not at all, and none is missing before
    the last one in: the rows are one state of the database."""
    numbers = written_by_the_writer(rows["issues"])
    assert numbers == set(range(1, len(numbers) + 1))
    assert len([r for r in rows["issue_events"] if r[1].startswith("W-")]) == 2 * len(numbers)
    assert {r[0] for r in rows["movements"] if r[0].startswith("W-MV-")} == {f"W-MV-{n}" for n in numbers}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def plant(tmp_path_factory) -> Path:
    """A demo plant in an SQLite file, to copy for each test."""
    path = tmp_path_factory.mktemp("plant") / "plant.sqlite"
    engine = db.get_engine(f"sqlite:///{path}")
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=5, seed=11)
    db.dispose_all()
    return path


def copy_of(plant: Path, path: Path) -> str:
    """A copy of the plant at `path`; its URL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(plant)) as source, closing(sqlite3.connect(path)) as target:
        source.backup(target)
    return f"sqlite:///{path}"


def test_a_backup_taken_while_writes_go_on_restores_to_its_rows_and_kpis(plant, tmp_path):
    database = tmp_path / "floorlink.sqlite"
    url = copy_of(plant, database)
    backup_file = tmp_path / "backups" / "plant.sqlite"
    writer = Writer(url)
    try:
        writer.wait_for(20)
        before = writer.committed
        backed_up = run("backup", "--to", str(backup_file), url=url)
        writer.wait_for(writer.committed + 1)
    finally:
        last = writer.stop()
    saved = table_rows(backup_file)
    # The writer went on beside the backup, which holds one state of what it wrote.
    assert before < len(written_by_the_writer(saved["issues"])) < last
    assert re.match(rf"wrote {re.escape(str(backup_file))}: [\d,]+ bytes, schema revision {HEAD}\n",
                    backed_up.stdout)
    assert [p.name for p in backup_file.parent.iterdir()] == ["plant.sqlite"]   # no partial file left
    assert printed_rows(backed_up.stdout) == {t: len(r) for t, r in saved.items() if t != "alembic_version"}
    one_state(saved)

    as_of = timezones.utc_now() + timedelta(minutes=1)
    expected_kpis = the_kpis(copy_of(backup_file, tmp_path / "scratch" / "copy.sqlite"), as_of)

    # The plant changes after the backup: an issue withdrawn with its events, a title edited.
    with closing(sqlite3.connect(database)) as conn, conn:
        conn.execute("DELETE FROM issue_events WHERE issue_id = 'W-1'")
        conn.execute("DELETE FROM issues WHERE id = 'W-1'")
        conn.execute("UPDATE issues SET title = 'changed after the backup' WHERE id = 'W-2'")
    changed = table_rows(database)
    version_before = data_version(url)
    assert the_kpis(url, as_of) != expected_kpis

    refused = run("restore", str(backup_file), url=url, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"Error: {database} holds a database: add --yes to replace it (it is kept as "
        "floorlink.sqlite.before-restore-<time>); nothing was changed"]
    assert table_rows(database) == changed

    restored = run("restore", str(backup_file), "--yes", url=url)
    assert restored.stdout.startswith(f"restored {database} from {backup_file}: schema revision {HEAD}\n")
    assert but_versions(table_rows(database)) == but_versions(saved)
    assert the_kpis(url, as_of) == expected_kpis
    assert data_version(url) > version_before      # every running wall reloads
    with closing(sqlite3.connect(database)) as conn:
        assert [r[0] for r in conn.execute("PRAGMA integrity_check")] == ["ok"]
    kept = Path(re.search(r"the database replaced is kept as (\S+)", restored.stdout).group(1))
    assert kept.parent == tmp_path and kept.name.startswith("floorlink.sqlite.before-restore-")
    assert table_rows(kept) == changed


def damage_an_index(path: Path) -> None:
    """An index that no longer matches its table, as a torn write leaves one."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET sql = replace(sql, '(recorded_at)', '(at)') "
                     "WHERE name = 'ix_issue_events_recorded_at'")


def test_a_damaged_database_is_not_backed_up_under_the_name(plant, tmp_path):
    database = tmp_path / "floorlink.sqlite"
    url = copy_of(plant, database)
    damage_an_index(database)
    result = run("backup", "--to", str(tmp_path / "backups" / "plant.sqlite"), url=url, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: no backup was written: {database}: the integrity check "
                                    "fails: row 1 missing from index ix_issue_events_recorded_at; ")
    assert list((tmp_path / "backups").iterdir()) == []       # nothing under the name, no partial file


def test_a_bad_file_is_refused_in_one_line_and_nothing_changes(plant, tmp_path):
    database = tmp_path / "floorlink.sqlite"
    url = copy_of(plant, database)
    before = digest(database)
    files = tmp_path / "files"
    files.mkdir()
    (files / "notes.sqlite").write_text("these are notes, not a database\n")
    with closing(sqlite3.connect(files / "other.sqlite")) as other:
        other.execute("CREATE TABLE things (id INTEGER PRIMARY KEY)")
    copy_of(plant, files / "newer.sqlite")
    with closing(sqlite3.connect(files / "newer.sqlite")) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    copy_of(plant, files / "damaged.sqlite")
    damage_an_index(files / "damaged.sqlite")
    reasons = {
        "missing.sqlite": "there is no file {f}",
        "notes.sqlite": "{f} is not an SQLite database",
        "other.sqlite": "{f} is not a FloorLink database: it has no table alembic_version, "
                        "departments, issues, issue_events, movements, data_versions",
        "newer.sqlite": f"{{f}} has the schema revision 9999, which this code does not know (it "
                        f"knows up to {HEAD}): restore it with the FloorLink that made it",
        "damaged.sqlite": "{f}: the integrity check fails: row 1 missing from index "
                          "ix_issue_events_recorded_at; ",
    }
    for name, reason in reasons.items():
        file = files / name
        result = run("restore", str(file), "--yes", url=url, check=False)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, result.stderr
        assert lines[0].startswith("Error: " + reason.format(f=file)), lines
        assert digest(database) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["files", "floorlink.sqlite"]


def test_a_damaged_database_is_kept_as_it_is_and_replaced(plant, tmp_path):
    database = tmp_path / "floorlink.sqlite"
    url = copy_of(plant, database)
    backup_file = tmp_path / "backups" / "plant.sqlite"
    run("backup", "--to", str(backup_file), url=url)
    wal = database.with_name(database.name + "-wal")
    with closing(sqlite3.connect(database)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'issues'").fetchone()[0]
        # A -wal left by a server killed after a commit, beside the damaged database.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        with conn:
            conn.execute("UPDATE departments SET name_en = 'written in the old -wal'")
        left_behind = wal.read_bytes()
    wal.write_bytes(left_behind)
    with open(database, "r+b") as handle:          # pages of the issues overwritten
        handle.seek(root * page_size)
        handle.write(b"\xff" * 3 * page_size)
    damaged = digest(database)
    restored = run("restore", str(backup_file), "--yes", url=url)
    kept = Path(re.search(r"the database replaced is kept as (\S+)", restored.stdout).group(1))
    assert digest(kept) == damaged
    assert kept.with_name(kept.name + "-wal").read_bytes() == left_behind
    assert table_rows(database) == table_rows(backup_file)
    with closing(sqlite3.connect(database)) as conn:
        assert [r[0] for r in conn.execute("PRAGMA integrity_check")] == ["ok"]


def test_a_backup_of_an_older_schema_is_migrated_on_restore(tmp_path):
    older = tmp_path / "older.sqlite"
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS_DIR))
    engine = create_engine(f"sqlite:///{older}")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0007")
        conn.execute(text("INSERT INTO departments (code, name_zh, name_en) VALUES ('QA', '质量部', 'Quality')"))
    engine.dispose()
    url = f"sqlite:///{tmp_path / 'new' / 'floorlink.sqlite'}"
    restored = run("restore", str(older), url=url)
    assert restored.stdout.startswith(f"restored {tmp_path / 'new' / 'floorlink.sqlite'} from {older}: "
                                      f"schema revision {HEAD}, migrated from schema revision 0007\n")
    assert "the database replaced" not in restored.stdout
    engine = create_engine(url)
    db.check_schema(engine)                    # this code's schema: the server serves it
    with engine.connect() as conn:
        assert conn.execute(text("SELECT code FROM departments")).scalars().all() == ["QA"]
    engine.dispose()


CHANGING = ("issues", "issue_events", "movements", "lot_stock")


def pg_rows(url: str, tables=CHANGING) -> dict[str, list]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: sorted(map(tuple, conn.execute(text(f'SELECT * FROM "{t}"')).all()), key=repr)
                    for t in tables}
    finally:
        engine.dispose()


def test_postgresql_is_backed_up_by_pg_dump_of_one_state_and_restored_by_the_commands_said(tmp_path):
    with throwaway_postgres("floorlink_backup") as url, throwaway_postgres("floorlink_restored") as other:
        engine = db.get_engine(url)
        db.upgrade_schema(engine)
        demo.build_demo_plant(engine, days=3, seed=11)
        writer = Writer(url)
        try:
            writer.wait_for(20)
            backed_up = run("backup", "--to", str(tmp_path / "plant.dump"), url=url)
        finally:
            last = writer.stop()
        assert backed_up.stdout.startswith(f"wrote {tmp_path / 'plant.dump'}: ")
        said = run("restore", str(tmp_path / "plant.dump"), url=other, check=False)
        assert said.returncode == 1 and "nothing was changed" in said.stderr
        commands = [line.strip().split("#")[0] for line in said.stderr.splitlines()
                    if line.strip().startswith(("pg_restore ", "python app.py "))]
        assert [c.split()[0] for c in commands] == ["pg_restore", "python"]
        # Restored over a database in use before: another plant, which it replaces whole.
        db.upgrade_schema(db.get_engine(other))
        demo.build_demo_plant(db.get_engine(other), days=1, seed=2)
        subprocess.run(shlex.split(commands[0]), check=True, capture_output=True)
        run(*shlex.split(commands[1])[2:], url=other)

        restored = pg_rows(other, tuple(printed_rows(backed_up.stdout)))
        # The counts printed are those of the state dumped, though the writer went on.
        assert {t: len(r) for t, r in restored.items()} == printed_rows(backed_up.stdout)
        one_state(restored)
        kept = written_by_the_writer(restored["issues"])
        assert 20 <= len(kept) < last
        # The plant as it was then: what the writer wrote after the dump taken away.
        with engine.begin() as conn:
            for table, key, prefix in (("issue_events", "issue_id", "W-"), ("issues", "id", "W-"),
                                       ("movements", "id", "W-MV-")):
                conn.execute(text(f"DELETE FROM {table} WHERE {key} LIKE :like AND "
                                  f"CAST(substr({key}, :digits) AS integer) > :kept"),
                             {"like": prefix + "%", "digits": len(prefix) + 1, "kept": len(kept)})
            store.rebuild_lot_stock(conn)
        assert pg_rows(url) == {t: restored[t] for t in CHANGING}
        as_of = timezones.utc_now() + timedelta(minutes=1)
        assert the_kpis(other, as_of) == the_kpis(url, as_of)
