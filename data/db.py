"""One engine per process, the schema (Alembic), and short transactions."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from data import settings

MIGRATIONS_DIR = settings.PROJECT_ROOT / "migrations"

_engines: dict[str, Engine] = {}


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # WAL lets the wall read while the simulator or an import writes.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


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
