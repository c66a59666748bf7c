"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL.

PostgreSQL is the machine's server on 127.0.0.1:5432 (override with TEST_PG_URL); the
suite creates its own database and drops it at the end. In CI a missing PostgreSQL fails.
"""
from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from data import db
from data.models import Base

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def unavailable(reason: str):
    """Skip outside CI; in CI a missing component is a failure."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def require_browser() -> None:
    from tools.browser import missing_browser

    reason = missing_browser()
    if reason:
        unavailable(f"browser tests: {reason}")


@pytest.fixture(scope="session")
def postgres_url():
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"floorlink_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means "no PostgreSQL"
        admin.dispose()
        unavailable(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    db.dispose_all()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


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
