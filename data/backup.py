"""Backup and restore of FloorLink's own database (docs/operations.md, Backup and restore).

SQLite: a backup is SQLite's online backup of the database, one consistent state while the
wall reads and the simulator, imports and the ingest API write; it is checked (integrity
check) and only then given its name (a temporary name first, then a rename), so a file under
that name is always a whole, checked copy. A restore checks the file (an SQLite database,
whole, FloorLink's, of this code's schema or an older one, which it migrates), keeps the
database it replaces as a `.before-restore` copy, and writes the restored state in one
transaction: a restore that stops halfway leaves the database as it was.

PostgreSQL: pg_dump (custom format) of the one state the row counts are read from, when
pg_dump is on the PATH; a restore is pg_restore's, whose commands `restore_commands` says.
"""
from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from sqlalchemy import text
from sqlalchemy.engine import make_url

from data import db, settings
from data.store import BULK_VERSION

BACKUP_DIR = settings.PROJECT_ROOT / "instance" / "backups"
# The first bytes of every SQLite database file.
_SQLITE_HEADER = b"SQLite format 3\x00"
# Tables a database must hold to be FloorLink's.
_FLOORLINK_TABLES = ("alembic_version", "departments", "issues", "issue_events", "movements",
                     "data_versions")
# Problems of an integrity check named in an error; the rest are counted.
_SHOWN_PROBLEMS = 5
# Problems SQLite's integrity check lists at most.
_CHECK_STOPS_AT = 100


class BackupError(RuntimeError):
    """A backup or restore that was not made; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class Copy:
    """A database file written: where, its size, its schema revision and rows per table."""
    file: Path
    size: int
    revision: str | None
    rows: dict[str, int]


@dataclass(frozen=True)
class Restored:
    """A restore: the copy now in place, the file it came from, the revision that file had
    (`migrated_from`: None when it was this code's), and where the replaced database is kept
    (None: there was none)."""
    database: Copy
    source: Path
    migrated_from: str | None
    kept: Path | None


def kind(url: str) -> str:
    """The kind of the database of `url`: "sqlite" or "postgresql", those FloorLink backs up."""
    backend = make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(f"FloorLink backs up SQLite and PostgreSQL, not {backend}")
    return backend


def default_file(url: str, now: datetime) -> Path:
    """instance/backups/floorlink-<UTC time>.sqlite (.dump for PostgreSQL)."""
    suffix = ".sqlite" if kind(url) == "sqlite" else ".dump"
    return BACKUP_DIR / f"floorlink-{_stamp(now)}{suffix}"


def _stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"{url} is not an SQLite database file")
    return Path(database)


# ---- backup -------------------------------------------------------------------------------

def backup(url: str, to: Path, now: datetime) -> Copy:
    """Back the database of `url` up into the file `to` (replaced if it exists)."""
    if kind(url) == "postgresql":
        return _pg_dump(url, to)
    source = sqlite_path(url)
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    try:
        return _sqlite_copy(source, to)
    except (BackupError, sqlite3.Error, OSError) as exc:
        raise BackupError(f"no backup was written: {exc}") from None


def _sqlite_copy(source: Path, to: Path, check: bool = True) -> Copy:
    """SQLite's online backup of `source` into `to`, checked (with `check`) before it takes
    the name."""
    with _partial(to) as partial:
        with closing(sqlite3.connect(source, timeout=30)) as reader, \
                closing(sqlite3.connect(partial)) as copy:
            # One step: the whole database as one state, read while writers go on (WAL).
            reader.backup(copy)
            # One file, without a -wal beside it.
            copy.execute("PRAGMA journal_mode=DELETE")
            if check:
                _check_integrity(copy, source)
            revision, rows = _revision(copy), _rows(copy)
        _durable(partial)
    return Copy(to, to.stat().st_size, revision, rows)


@contextmanager
def _partial(final: Path) -> Iterator[Path]:
    """A temporary name beside `final`, renamed to it when the block ends without error and
    removed otherwise: a file under the final name is always whole."""
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
    except BaseException:
        for leftover in (partial, *_sidecars(partial)):
            leftover.unlink(missing_ok=True)
        raise
    os.replace(partial, final)
    _durable_folder(final.parent)


def _sidecars(path: Path) -> tuple[Path, ...]:
    return tuple(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))


def _durable(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _durable_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _check_integrity(conn: sqlite3.Connection, file: Path) -> None:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        shown = "; ".join(problems[:_SHOWN_PROBLEMS])
        more = ""
        if len(problems) >= _CHECK_STOPS_AT:
            more = f" (and more: the check stops at {_CHECK_STOPS_AT})"
        elif len(problems) > _SHOWN_PROBLEMS:
            more = f" (and {len(problems) - _SHOWN_PROBLEMS} more)"
        raise BackupError(f"{file}: the integrity check fails: {shown}{more}")


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]


def _revision(conn: sqlite3.Connection) -> str | None:
    if "alembic_version" not in _tables(conn):
        return None
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else row[0]


def _rows(conn: sqlite3.Connection) -> dict[str, int]:
    return {table: conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            for table in _tables(conn) if table != "alembic_version"}


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL as libpq takes it, without its password, and the environment holding the
    password (so that no process list shows it)."""
    parsed = make_url(url)
    env = {} if parsed.password is None else {"PGPASSWORD": str(parsed.password)}
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _pg_dump(url: str, to: Path) -> Copy:
    """pg_dump --format=custom of one state of the database, whose revision and row counts
    are read in that same state (an exported snapshot)."""
    if shutil.which("pg_dump") is None:
        raise BackupError("pg_dump is not on the PATH (Debian: apt-get install postgresql-client); "
                          "back the database up with:\n" + backup_commands(url, to))
    address, password = _libpq(url)
    engine = db.get_engine(url)
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
            names = [name for (name,) in conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"))]
            revision = (conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
                        if "alembic_version" in names else None)
            rows = {name: conn.exec_driver_sql(f'SELECT count(*) FROM "{name}"').scalar()
                    for name in names if name != "alembic_version"}
            with _partial(to) as partial:
                done = subprocess.run(
                    ["pg_dump", "--format=custom", f"--snapshot={snapshot}", f"--file={partial}",
                     f"--dbname={address}"],
                    env={**os.environ, **password}, capture_output=True, text=True)
                if done.returncode != 0:
                    said = done.stderr.strip().splitlines()
                    raise BackupError(f"pg_dump failed: {said[0] if said else done.returncode}")
                _durable(partial)
    return Copy(to, to.stat().st_size, revision, rows)


def backup_commands(url: str, to: Path) -> str:
    address, _ = _libpq(url)
    return f"  pg_dump --format=custom --file={shlex.quote(str(to))} --dbname={shlex.quote(address)}"


def restore_commands(url: str, file: Path) -> str:
    """The commands that restore the dump `file` into the PostgreSQL database of `url`, as
    one transaction (all of it or nothing), then migrate it to this code's schema."""
    address, _ = _libpq(url)
    return "\n".join([
        "  # stop the servers and the simulator of this database first",
        f"  pg_restore --clean --if-exists --no-owner --single-transaction --exit-on-error "
        f"--dbname={shlex.quote(address)} {shlex.quote(str(file))}",
        "  python app.py init-db      # a dump of an older FloorLink is migrated",
        "  # then start the servers again",
    ])


# ---- restore ------------------------------------------------------------------------------

def restore(url: str, file: Path, now: datetime, *, replace: bool) -> Restored:
    """Restore the SQLite backup `file` into the database of `url`. The file is checked and
    migrated on a copy first; a database in place is replaced only with `replace`, and kept
    as <name>.before-restore-<UTC time>. Raises BackupError with nothing changed."""
    if kind(url) == "postgresql":
        raise BackupError("a PostgreSQL database is restored with pg_restore; nothing was "
                          "changed. The commands:\n" + restore_commands(url, file))
    target = sqlite_path(url)
    file = Path(file)
    if not file.is_file():
        raise BackupError(f"there is no file {file}")
    if target.exists() and target.resolve() == file.resolve():
        raise BackupError(f"{file} is the database itself")
    try:
        return _restore(target, file, now, replace)
    except (sqlite3.Error, OSError) as exc:
        raise BackupError(f"nothing was restored: {exc}") from None


def _restore(target: Path, file: Path, now: datetime, replace: bool) -> Restored:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".restoring", dir=target.parent)
    os.close(handle)
    staged = Path(name)
    try:
        shutil.copyfile(file, staged)
        migrated_from = _checked(staged, file)
        kept = None
        if target.exists():
            if not replace:
                raise BackupError(f"{target} holds a database: add --yes to replace it (it is kept "
                                  f"as {target.name}.before-restore-<time>); nothing was changed")
            kept = target.with_name(f"{target.name}.before-restore-{_stamp(now)}")
            if _sound(target):
                _raise_version_past(staged, target)
                _sqlite_copy(target, kept, check=False)
                _write_into(staged, target)
            else:
                _keep_files(target, kept)
                _rename_into(staged, target)
        else:
            _rename_into(staged, target)
    finally:
        for leftover in (staged, *_sidecars(staged)):
            leftover.unlink(missing_ok=True)
    with closing(sqlite3.connect(target, timeout=30)) as conn:
        database = Copy(target, target.stat().st_size, _revision(conn), _rows(conn))
    return Restored(database, file, migrated_from, kept)


def _checked(staged: Path, file: Path) -> str | None:
    """Check the copy `staged` of the backup `file` and migrate it to this code's schema;
    the revision it was migrated from (None: it was this code's)."""
    with open(staged, "rb") as handle:
        if handle.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
            raise BackupError(f"{file} is not an SQLite database")
    conn = sqlite3.connect(staged)
    try:
        _check_integrity(conn, file)
        missing = [t for t in _FLOORLINK_TABLES if t not in _tables(conn)]
        if missing:
            raise BackupError(f"{file} is not a FloorLink database: it has no table "
                              f"{', '.join(missing)}")
        revision = _revision(conn)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{file} cannot be read as a database: {exc}") from None
    finally:
        conn.close()
    known, head = _revisions()
    if revision not in known:
        raise BackupError(f"{file} has the schema revision {revision or 'none'}, which this code does "
                          f"not know (it knows up to {head}): restore it with the FloorLink that "
                          "made it")
    if revision == head:
        return None
    engine = db.make_engine(f"sqlite:///{staged}")
    try:
        db.upgrade_schema(engine)
    finally:
        engine.dispose()
    with closing(sqlite3.connect(staged)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    return revision


def _revisions() -> tuple[set[str], str]:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(db.MIGRATIONS_DIR))
    return {script.revision for script in scripts.walk_revisions()}, scripts.get_current_head()


def _version_sum(conn: sqlite3.Connection) -> int:
    if "data_versions" not in _tables(conn):
        return 0
    return conn.execute("SELECT coalesce(sum(version), 0) FROM data_versions").fetchone()[0]


def _sound(database: Path) -> bool:
    """Whether the database in place reads as a whole (SQLite's quick check): then it is
    kept and replaced through SQLite; a damaged one is kept as its files are and replaced
    by a rename. Read-only: closing the last connection would otherwise fold the -wal into
    the database, changing what is kept."""
    try:
        address = f"file:{quote(str(database.resolve()))}?mode=ro"
        with closing(sqlite3.connect(address, uri=True, timeout=30)) as conn:
            return [row[0] for row in conn.execute("PRAGMA quick_check")] == ["ok"]
    except sqlite3.DatabaseError:
        return False


def _raise_version_past(staged: Path, target: Path) -> None:
    """Raise the staged copy's data version past the database's, so that every running wall
    reloads instead of following the restored rows as if they were its own."""
    with closing(sqlite3.connect(target, timeout=30)) as live:
        in_place = _version_sum(live)
    with closing(sqlite3.connect(staged)) as conn, conn:
        raise_by = in_place + 1 - _version_sum(conn)
        if raise_by > 0:
            conn.execute("INSERT INTO data_versions (name, version) VALUES (?, ?) ON CONFLICT (name) "
                         "DO UPDATE SET version = version + excluded.version",
                         (BULK_VERSION, raise_by))


def _write_into(staged: Path, target: Path) -> None:
    """Write the staged copy into the database in place, as one transaction of SQLite's
    backup: readers see the old state or the new, a restore stopped halfway writes nothing.
    Renaming a file over a database that a server has open would corrupt it (its connections
    and its -wal file belong to the file replaced)."""
    with closing(sqlite3.connect(staged)) as source, \
            closing(sqlite3.connect(target, timeout=30)) as live:
        try:
            source.backup(live)
        except sqlite3.Error as exc:
            raise BackupError(f"{target} was not written ({exc}); it is as it was") from None


def _keep_files(database: Path, kept: Path) -> None:
    """A damaged database kept as its files are (the database and its -wal)."""
    shutil.copyfile(database, kept)
    wal = database.with_name(database.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, kept.with_name(kept.name + "-wal"))


def _rename_into(staged: Path, target: Path) -> None:
    """The staged copy takes the database's name, in one rename; a -wal or -shm left beside
    the name belongs to the file replaced (or to none) and goes first."""
    _durable(staged)
    for stale in _sidecars(target):
        stale.unlink(missing_ok=True)
    os.replace(staged, target)
    _durable_folder(target.parent)
