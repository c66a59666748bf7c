"""Writers killed with SIGKILL mid-write, for real, in processes of their own: an import of a
big file killed at several moments holds all its rows or none and runs again to the same
rows; the ingest API (gunicorn) killed under clients posting batches with Idempotency-Keys
has every batch it acknowledged and, once the clients have sent the rest again to a new
server, every batch once. On SQLite and on PostgreSQL."""
from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from data import db, store
from data.ingest import tokens
from data.models import Department, SlaRule
from tools.browser import AppServer
from tools.databases import throwaway_postgres

ROOT = Path(__file__).resolve().parent.parent
BIG_FILE_ROWS = 50_000
# Seconds after the import began writing at which it is killed: from its first batch to
# about its commit (an import of BIG_FILE_ROWS writes for some 2 s on the reference machine).
KILL_AFTER_S = (0.0, 0.4, 0.9, 1.6)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """An empty, migrated database of each kind, with a department and an issue type."""
    if request.param == "sqlite":
        address = f"sqlite:///{tmp_path / 'floorlink.sqlite'}"
        prepared(address)
        yield address
        return
    with throwaway_postgres("floorlink_killed") as address:
        prepared(address)
        yield address


def prepared(url: str) -> None:
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    with engine.begin() as conn:
        store.upsert_rows(conn, Department, [{"code": "QA", "name_zh": "质量部", "name_en": "Quality"}])
        store.upsert_rows(conn, SlaRule, [{
            "issue_type": "quality_anomaly", "name_zh": "质量异常", "name_en": "Quality anomaly",
            "owner_department_code": "QA", "notify_department_codes": "", "ack_minutes": 10,
            "resolve_minutes": 240}])
    db.dispose_all()


def sqlite_file(url: str) -> Path:
    return Path(url.split("///", 1)[1])


def scalar(url: str, sql: str):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def sound(url: str) -> None:
    """The database opens and its own checks find nothing wrong: SQLite's integrity check;
    on PostgreSQL amcheck over the issues' heap and every index of theirs."""
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(sqlite_file(url))) as conn:
            assert [r[0] for r in conn.execute("PRAGMA integrity_check")] == ["ok"]
        return
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS amcheck"))
            assert conn.execute(text("SELECT count(*) FROM verify_heapam('issues')")).scalar() == 0
            indexes = conn.execute(text("SELECT indexrelid::regclass::text FROM pg_index "
                                        "WHERE indrelid = 'issues'::regclass")).scalars().all()
            assert indexes
            for index in indexes:
                conn.execute(text("SELECT bt_index_check(CAST(:index AS regclass), true)"), {"index": index})
    finally:
        engine.dispose()


def big_issues_file(path: Path) -> Path:
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "issue_type", "title", "severity", "raised_at", "owner_department_code", "status"])
        for n in range(BIG_FILE_ROWS):
            out.writerow([f"BIG-{n:06d}", "quality_anomaly", f"毛刺超标 第{n}号", "P2",
                          (start + timedelta(seconds=30 * n)).strftime("%Y-%m-%d %H:%M:%S"), "QA", "open"])
    return path


def writing(url: str):
    """Whether an import is writing: SQLite's -wal grows with its pages; on PostgreSQL a
    connection to the database has a transaction that has written."""
    if url.startswith("sqlite"):
        wal = sqlite_file(url).with_name(sqlite_file(url).name + "-wal")
        return lambda: wal.exists() and wal.stat().st_size > 64 * 1024
    engine = create_engine(url)

    def has_written() -> bool:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                     "current_database() AND pid <> pg_backend_pid() AND "
                                     "backend_xid IS NOT NULL")).scalar() > 0
    return has_written


def importing(url: str, file: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "app.py", "import", "issues", str(file)], cwd=ROOT,
                            env={**os.environ, "DATABASE_URL": url}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def big_rows(url: str) -> tuple[int, int]:
    """The file's rows in the table, and how many distinct ids they have."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(text("SELECT count(*), count(DISTINCT id) FROM issues "
                                           "WHERE id LIKE 'BIG-%'")).one())
    finally:
        engine.dispose()


def test_an_import_killed_at_any_moment_holds_all_its_rows_or_none(url, tmp_path):
    file = big_issues_file(tmp_path / "issues.csv")
    began_writing = writing(url)
    outcomes = []
    for after_s in KILL_AFTER_S:
        process = importing(url, file)
        deadline = time.monotonic() + 60
        while not began_writing() and process.poll() is None:
            assert time.monotonic() < deadline, "the import never began writing"
            time.sleep(0.01)
        time.sleep(after_s)
        running = process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        rows = big_rows(url)
        outcomes.append((after_s, running, rows))
        assert rows in ((0, 0), (BIG_FILE_ROWS, BIG_FILE_ROWS)), outcomes
        sound(url)
    print(f"killed at {outcomes}")
    # Most kills land mid-write, before the commit: nothing of the file is there.
    assert sum(running and rows == (0, 0) for _, running, rows in outcomes) >= 2, outcomes
    for _ in range(2):
        process = importing(url, file)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert f"{BIG_FILE_ROWS} rows imported into issues" in out
        assert big_rows(url) == (BIG_FILE_ROWS, BIG_FILE_ROWS)
    sound(url)


# ---- the ingest API ---------------------------------------------------------------------

CLIENTS = 6
BATCHES = 30
LOST_EVERY = 5


class Sender:
    """An andon box or a MES posting batches of comments on its issue, each batch with its
    Idempotency-Key, sent again unchanged until it is answered with a 2xx (docs/api.md);
    one batch in LOST_EVERY is sent once more after its answer, as if that had been lost."""

    def __init__(self, number: int, token: str, server: dict):
        self.number, self.token, self.server = number, token, server
        self.acknowledged: list[int] = []
        self.unanswered = 0
        self.failure: str | None = None
        self.thread = threading.Thread(target=self._send_all, daemon=True)

    def note(self, batch: int) -> str:
        return f"sender {self.number} batch {batch}"

    def issue(self, batch: int) -> str:
        return f"KILL-{self.number}-{batch}"

    def _send_all(self) -> None:
        session = requests.Session()
        for batch in range(BATCHES):
            # A comment without its time is dated when it arrives: sent twice without its key,
            # it would be written twice. An issue raised and acknowledged.
            body = {"items": [
                {"type": "event", "issue_id": f"KILL-{self.number}", "kind": "commented",
                 "note": self.note(batch)},
                {"type": "issue", "id": self.issue(batch), "issue_type": "quality_anomaly",
                 "title": "异物", "severity": "P3"},
                {"type": "event", "issue_id": self.issue(batch), "kind": "acknowledged"}]}
            headers = {"Authorization": f"Bearer {self.token}",
                       "Idempotency-Key": f"sender-{self.number}-batch-{batch}"}
            deadline = time.monotonic() + 30
            answers = 2 if batch % LOST_EVERY == LOST_EVERY - 1 else 1
            while True:
                try:
                    answer = session.post(self.server["url"] + "/api/v1/batch", json=body,
                                          headers=headers, timeout=10)
                    if answer.status_code in (200, 201):
                        answers -= 1
                        if answers == 0:
                            self.acknowledged.append(batch)
                            break
                        continue
                    if answer.status_code not in (409, 503):
                        self.failure = f"batch {batch}: {answer.status_code} {answer.text[:200]}"
                        return
                except requests.RequestException:
                    self.unanswered += 1
                    session = requests.Session()
                if time.monotonic() > deadline:
                    self.failure = f"batch {batch} was never answered"
                    return
                time.sleep(0.1)


def comments(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT note FROM issue_events WHERE kind = 'commented'")).scalars().all()
    finally:
        engine.dispose()


def acknowledged_issues(url: str) -> list[str]:
    """The issues raised by the senders' batches that hold their acknowledgement."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(
                "SELECT i.id FROM issues i JOIN issue_events e ON e.issue_id = i.id "
                "AND e.kind = 'acknowledged' WHERE i.id LIKE 'KILL-%-%' AND i.status = 'acknowledged'"
            )).scalars().all()
    finally:
        engine.dispose()


def test_the_ingest_api_killed_mid_write_keeps_what_it_acknowledged_and_writes_nothing_twice(url, tmp_path):
    engine = db.get_engine(url)
    raised = datetime.now(timezone.utc) - timedelta(hours=1)
    with db.session_scope(engine) as session:
        for number in range(CLIENTS):
            store.raise_issue(session, issue_id=f"KILL-{number}", issue_type="quality_anomaly",
                              title="异物", severity="P2", at=raised)
    _, token = tokens.create(engine, "killed-server")
    db.dispose_all()
    server = {"url": ""}
    app = AppServer(url, tmp_path).start()
    server["url"] = app.url
    senders = [Sender(number, token, server) for number in range(CLIENTS)]
    for sender in senders:
        sender.thread.start()
    try:
        deadline = time.monotonic() + 60
        while sum(len(s.acknowledged) for s in senders) < CLIENTS * BATCHES // 3:
            assert time.monotonic() < deadline and not any(s.failure for s in senders), \
                [s.failure for s in senders]
            time.sleep(0.01)
        os.killpg(app.process.pid, signal.SIGKILL)
        app.process.wait(timeout=10)
        acknowledged = {(s.number, batch) for s in senders for batch in list(s.acknowledged)}
        written, issues = comments(url), acknowledged_issues(url)
        for number, batch in acknowledged:
            assert written.count(senders[number].note(batch)) == 1
            assert senders[number].issue(batch) in issues
        unacknowledged = {s.note(b) for s in senders for b in range(BATCHES)
                          if (s.number, b) not in acknowledged}
        print(f"at the kill: {len(acknowledged)} batches acknowledged, "
              f"{len(unacknowledged & set(written))} written whose answer was lost")
        if url.startswith("sqlite"):
            sound(url)
        app = AppServer(url, tmp_path).start()
        server["url"] = app.url
        for sender in senders:
            sender.thread.join(timeout=90)
    finally:
        app.stop()
    assert not any(s.failure for s in senders), [s.failure for s in senders]
    assert all(s.acknowledged == list(range(BATCHES)) for s in senders)
    # Requests went unanswered (on their way at the kill, or sent while no server listened)
    # and were sent again.
    assert sum(s.unanswered for s in senders) >= 1
    written = comments(url)
    assert sorted(written) == sorted(s.note(b) for s in senders for b in range(BATCHES))
    assert sorted(acknowledged_issues(url)) == sorted(s.issue(b) for s in senders for b in range(BATCHES))
    assert scalar(url, "SELECT count(*) FROM issue_events") == CLIENTS * (1 + 3 * BATCHES)
