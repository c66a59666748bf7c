"""One engine per process, the schema (Alembic), and short transactions.

A web server must not hang on a database that does not answer: after `bound_waits()` (the
server calls it before it opens its first connection) every wait on the database is
bounded by a setting: opening a connection (DB_CONNECT_TIMEOUT_S), checking out a pooled
one (DB_POOL_TIMEOUT_S) and each statement (DB_STATEMENT_TIMEOUT_S; SQLite's busy timeout).
Commands (an import, a migration, the demo plant) run to completion, bounded by nothing.
"""
from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from data import settings

MIGRATIONS_DIR = settings.PROJECT_ROOT / "migrations"

_engines: dict[str, Engine] = {}
_bounded = False
# Seconds a silent PostgreSQL server is given past its own statement_timeout before the
# client cuts the connection (the server, when it answers, cancels the statement first).
_CUT_GRACE_S = 1.0


class SourceUnavailable(RuntimeError):
    """The database did not answer, or not within its bounds; a screen keeps its last good
    figures and says so."""


def bound_waits() -> None:
    """Bound every wait on the database in this process (a web server's), from the settings."""
    global _bounded
    _bounded = True


class _Deadlines:
    """Cuts the connection of a statement waiting past its deadline. A server that does not
    answer at all (stopped, partitioned) cannot enforce its own statement_timeout, and libpq
    has no client-side one; shutting the socket down ends the wait with a disconnect error,
    so the pool drops that connection and the caller learns that the database is down."""

    def __init__(self):
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._waits: dict[int, tuple[float, int]] = {}
        self._tokens = itertools.count()
        self._watching = False

    def start(self, fd: int, seconds: float) -> int:
        token = next(self._tokens)
        with self._lock:
            self._waits[token] = (time.monotonic() + seconds, fd)
            if not self._watching:
                self._watching = True
                threading.Thread(target=self._watch, name="floorlink-db-deadlines", daemon=True).start()
        return token

    def end(self, token: int | None) -> None:
        if token is not None:
            with self._lock:
                self._waits.pop(token, None)

    def _watch(self) -> None:
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            # Cut under the lock: a statement that ends meanwhile waits in end(), so its
            # socket cannot be closed and its number reused before it is cut.
            with self._lock:
                for token, (deadline, fd) in list(self._waits.items()):
                    if deadline <= now:
                        del self._waits[token]
                        _cut(fd)
                if not self._waits:
                    self._watching = False
                    return


def _cut(fd: int) -> None:
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass    # already closed: the wait has ended by itself


_deadlines = _Deadlines()


def _pg_socket(dbapi_conn) -> int | None:
    try:
        return dbapi_conn.pgconn.socket
    except Exception:  # noqa: BLE001 - a closed connection has no socket; psycopg says so variously
        return None


def _bound_postgres(engine: Engine, statement_s: float, ping_s: float) -> None:
    """Give each pool ping, and each statement when `statement_s` is set, a deadline past
    which its connection is cut."""
    if statement_s:
        @event.listens_for(engine, "before_cursor_execute")
        def _start(conn, _cursor, _statement, _parameters, _context, _executemany):
            fd = _pg_socket(conn.connection.dbapi_connection)
            if fd is not None:
                conn.info["deadline"] = _deadlines.start(fd, statement_s + _CUT_GRACE_S)

        @event.listens_for(engine, "after_cursor_execute")
        def _end(conn, _cursor, _statement, _parameters, _context, _executemany):
            _deadlines.end(conn.info.pop("deadline", None))

        @event.listens_for(engine, "handle_error")
        def _failed(context):
            if context.connection is not None:
                _deadlines.end(context.connection.info.pop("deadline", None))

    ping = engine.dialect.do_ping

    def ping_within(dbapi_conn) -> bool:
        fd = _pg_socket(dbapi_conn)
        token = None if fd is None else _deadlines.start(fd, ping_s)
        try:
            return ping(dbapi_conn)
        finally:
            _deadlines.end(token)

    engine.dialect.do_ping = ping_within


def make_engine(url: str) -> Engine:
    statement_s = settings.get_float("DB_STATEMENT_TIMEOUT_S") if _bounded else 0
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": statement_s or 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # WAL lets the wall read while the simulator or an import writes.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
        return engine
    if not _bounded:
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    connect_s = settings.get_float("DB_CONNECT_TIMEOUT_S")
    connect_args = {}
    if url.startswith("postgresql"):
        connect_args["connect_timeout"] = max(2, round(connect_s))   # libpq's least
        if statement_s:
            connect_args["options"] = f"-c statement_timeout={round(statement_s * 1000)}"
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                           pool_timeout=settings.get_float("DB_POOL_TIMEOUT_S"),
                           connect_args=connect_args)
    if engine.dialect.driver == "psycopg":
        _bound_postgres(engine, statement_s, connect_s)
    return engine


def get_engine(url: str | None = None) -> Engine:
    """The process's engine for `url` (default: the configured database)."""
    url = url or settings.database_url()
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def dispose_all() -> None:
    """Drop pooled connections, e.g. in a gunicorn worker after fork."""
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


@contextmanager
def session_scope(bind: Engine | Connection) -> Iterator[Session]:
    """A transaction that commits on success and rolls back on any error."""
    # A Session, not sessionmaker(...)(), which builds a class per call (~0.3 ms).
    session = Session(bind, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


class SchemaOutdated(RuntimeError):
    """The database answers but its schema is not the one this code needs."""


def check_schema(engine: Engine) -> None:
    """Refuse to serve a database whose schema is missing or older than this code; a
    database that does not answer is let through (the screens say so, and recover)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except exc.DBAPIError:
        return
    if current != head:
        raise SchemaOutdated(f"the database schema is at revision {current or 'none'}, this code "
                             f"needs {head}: run `python app.py init-db`")


def upgrade_schema(engine: Engine) -> None:
    """Create or migrate the schema to the newest revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
