"""Throwaway databases for the test suites: each is created on the machine's PostgreSQL
server (127.0.0.1:5432, or TEST_PG_URL) under a name of its own and dropped afterwards, so a
run never touches another database. In CI a missing component fails; elsewhere it skips."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text

from data import db

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def unavailable(reason: str):
    """Skip outside CI; in CI a missing component is a failure."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@contextmanager
def throwaway_postgres(prefix: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped when the block ends."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means "no PostgreSQL"
        admin.dispose()
        unavailable(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        db.dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
