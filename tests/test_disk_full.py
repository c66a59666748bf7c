"""A disk that takes no more writes, for real: a process whose file size limit
(RLIMIT_FSIZE, with SIGXFSZ ignored) makes every write past it fail with EFBIG, as a full
disk makes them fail with ENOSPC. An import into SQLite fails in one line and leaves the
database as it was; the wall reads on and the ingest API answers 503, so senders keep their
events and send them again (docs/operations.md, A full disk)."""
from __future__ import annotations

import csv
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from data import db, demo, store
from data.ingest import tokens

ROOT = Path(__file__).resolve().parent.parent


def limited_to(size: int):
    """What a child process runs before it starts: writes past `size` bytes fail."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return limit


def everything(path: Path) -> list:
    """Every row of every table, for 'as it was'."""
    with closing(sqlite3.connect(path)) as conn:
        tables = [t for (t,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return [(t, sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)) for t in tables]


def without_token_use(tables: list) -> list:
    """`everything` without the tokens' last use and the audit log's token uses."""
    kept = []
    for table, rows in tables:
        if table == "api_tokens":
            rows = [row[:-2] + row[-1:] for row in rows]      # last_used_at, before revoked_at
        elif table == "audit_log":
            rows = [row for row in rows if "token_used" not in row]
        kept.append((table, rows))
    return kept


def integrity(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]


@pytest.fixture(scope="module")
def plant(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("full") / "plant.sqlite"
    engine = db.get_engine(f"sqlite:///{path}")
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=2, seed=5)
    db.dispose_all()
    return path


@pytest.fixture
def database(plant, tmp_path) -> Path:
    path = tmp_path / "floorlink.sqlite"
    with closing(sqlite3.connect(plant)) as source, closing(sqlite3.connect(path)) as target:
        source.backup(target)
    return path


def issues_file(path: Path, rows: int) -> Path:
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "issue_type", "title", "severity", "raised_at", "owner_department_code", "status"])
        for n in range(rows):
            out.writerow([f"FULL-{n:06d}", "quality_anomaly", f"尺寸超差 {n}", "P3",
                          (start + timedelta(minutes=n)).strftime("%Y-%m-%d %H:%M"), "QA", "open"])
    return path


def test_an_import_that_cannot_be_written_fails_in_one_line_and_changes_nothing(database, tmp_path):
    before = everything(database)
    file = issues_file(tmp_path / "issues.csv", 30_000)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}
    command = [sys.executable, "app.py", "import", "issues", str(file)]
    full = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=limited_to(database.stat().st_size + 256 * 1024))
    assert full.returncode == 1
    assert full.stderr.strip().splitlines() == [
        "Error: the database refused: disk I/O error - the database could not write to its disk "
        "(full, past a file size limit, or failing): the write was rolled back; free space and run "
        "it again"]
    assert integrity(database) == ["ok"]
    assert everything(database) == before
    # Space again: the same import goes through.
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "30000 rows imported into issues" in again.stdout


# Runs under the limit: the wall's snapshot, an API write and an API read, printed as JSON.
ON_A_FULL_DISK = """
import json, sys
from app import create_app
from data.wall import screens
url, token = sys.argv[1:]
app = create_app(url)
client = app.server.test_client()
with app.server.app_context():
    board = screens.overview_for_screen(url)["board"]
items = [{"type": "event", "issue_id": "FULL-DISK", "kind": "commented", "note": f"写不下 {n}",
          "at": f"2026-11-19T08:{n // 60:02d}:{n % 60:02d}"} for n in range(300)]
write = client.post("/api/v1/batch", json={"items": items},
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "full-disk-1"})
read = client.get(f"/api/v1/issues/{board[0]['id']}", headers={"Authorization": f"Bearer {token}"})
print(json.dumps({"board": len(board), "write": write.status_code, "write_body": write.get_json(),
                  "retry_after": write.headers.get("Retry-After"), "read": read.status_code}))
"""


def test_on_a_full_disk_the_wall_reads_on_and_the_api_refuses_writes_to_be_sent_again(database, tmp_path):
    url = f"sqlite:///{database}"
    engine = db.get_engine(url)
    _, token = tokens.create(engine, "full-disk")
    with db.session_scope(engine) as session:
        store.raise_issue(session, issue_id="FULL-DISK", issue_type="quality_anomaly", title="满了",
                          severity="P2", at=datetime(2026, 11, 19, tzinfo=timezone.utc))
    db.dispose_all()
    before = everything(database)
    env = {**os.environ, "DATABASE_URL": url, "CACHE_DIR": str(tmp_path / "cache"),
           "SECRET_KEY": "a key of this test alone"}
    env.pop("REDIS_URL", None)
    (tmp_path / "cache").mkdir()
    ran = subprocess.run([sys.executable, "-c", ON_A_FULL_DISK, url, token], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120, preexec_fn=limited_to(64 * 1024))
    assert ran.returncode == 0, ran.stderr
    said = json.loads(ran.stdout.strip().splitlines()[-1])
    assert said["board"] > 0 and said["read"] == 200          # reads go on
    assert said["write"] == 503 and said["retry_after"] == "1", said
    assert said["write_body"] == {"errors": [{"field": None, "reason": "the database is busy or not "
                                                                       "answering; send it again"}]}
    assert "the database did not take the write: disk I/O error" in ran.stderr
    assert integrity(database) == ["ok"]
    # Nothing of the write. The token's last use is recorded apart from the request's fate
    # when the disk takes it, and may be lost when it does not: the read answers all the same.
    assert without_token_use(everything(database)) == without_token_use(before)
