"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL.

PostgreSQL is the machine's server on 127.0.0.1:5432 (override with TEST_PG_URL); the
suite creates its own database and drops it at the end. In CI a missing PostgreSQL fails.
"""
from __future__ import annotations

import pytest
from sqlalchemy import text

from data import db
from data.models import Base
from tools.databases import throwaway_postgres, unavailable  # noqa: F401 - tests import it from here


def require_browser() -> None:
    from tools.browser import missing_browser

    reason = missing_browser()
    if reason:
        unavailable(f"browser tests: {reason}")


@pytest.fixture(scope="session")
def postgres_url():
    with throwaway_postgres("floorlink_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The URL of an empty, migrated database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'floorlink.sqlite'}"
        db.upgrade_schema(db.get_engine(url))
        yield url
        db.get_engine(url).dispose()
        return
    url = request.getfixturevalue("postgres_url")
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    yield url
    with engine.begin() as conn:
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def engine(db_url):
    return db.get_engine(db_url)
