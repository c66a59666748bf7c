"""The sender restarted in the middle of a burst (`python app.py notify run`, a process of its
own, as in production): with SIGTERM every message reaches the platform exactly once; with
SIGKILL none is lost and at most the one in flight is sent again. Counted at the fake server."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from data import timezones
from data.models import Delivery, Issue
from tests.notify_support import policy_text, small_plant
from tools.fake_platforms import FakePlatforms

ROOT = Path(__file__).resolve().parent.parent
BURST = 40
# The lease a killed sender leaves, short: the test waits for it to lapse.
LEASE_S = 3


@pytest.fixture
def fake():
    # A slow platform: a burst of 40 takes a few seconds, long enough to stop it midway.
    with FakePlatforms(answer_delay_s=0.1) as platforms:
        yield platforms


def burst_owed(engine, fake) -> None:
    """BURST open issues written beside FloorLink, raised 3.5 hours ago: each owes its plant
    step (L3) on the plant's webhook, one message per issue."""
    now = timezones.utc_now()
    plant = f'kind: webhook, url: "{fake.url("webhook", "plant", secret="ps")}", secret: ps'
    small_plant(engine, text=policy_text({"plant": plant}, extra="burst_over: 100"),
                imported_at=now - timedelta(hours=4))
    with engine.begin() as conn:
        for n in range(BURST):
            conn.execute(insert(Issue).values(
                id=f"R-{n:02d}", issue_type="quality_anomaly", title=f"问题 {n}", severity="P3",
                raised_at=now - timedelta(hours=3, minutes=30), owner_department_code="QA",
                status="open", updated_at=now))


def start_sender(db_url: str, tmp_path: Path) -> subprocess.Popen:
    log = open(tmp_path / "sender.log", "ab")
    return subprocess.Popen([sys.executable, "app.py", "notify", "run"], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT,
                            env={**os.environ, "DATABASE_URL": db_url, "PYTHONUNBUFFERED": "1",
                                 "NOTIFY_LEASE_S": str(LEASE_S)})


def wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s")


def received_per_issue(fake) -> Counter:
    return Counter(i for r in fake.received("webhook", "plant") for i in r.body["issue_ids"])


def sent(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_sender_stopped_mid_burst_and_started_again_delivers_each_message_once(engine, db_url, fake, tmp_path):
    burst_owed(engine, fake)
    first = start_sender(db_url, tmp_path)
    try:
        wait_for(lambda: len(fake.received("webhook", "plant")) >= BURST // 4, 60)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    finally:
        first.kill()
    halfway = len(fake.received("webhook", "plant"))
    assert BURST // 4 <= halfway < BURST
    # What reached the platform is exactly what the sender recorded: nothing was in flight.
    assert sent(engine) == halfway
    second = start_sender(db_url, tmp_path)
    try:
        wait_for(lambda: sent(engine) == BURST, 90)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    counts = received_per_issue(fake)
    assert len(counts) == BURST and set(counts.values()) == {1}
    assert fake.requests("webhook", "plant") == BURST


# PostgreSQL: the lease the second sender waits for is taken under FOR UPDATE there.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_sender_killed_mid_burst_loses_nothing_and_repeats_at_most_the_one_in_flight(engine, db_url, fake, tmp_path):
    burst_owed(engine, fake)
    first = start_sender(db_url, tmp_path)
    try:
        wait_for(lambda: len(fake.received("webhook", "plant")) >= BURST // 4, 60)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        first.kill()
    second = start_sender(db_url, tmp_path)
    try:
        # The killed sender's lease lapses first (LEASE_S).
        wait_for(lambda: sent(engine) == BURST, 120)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    counts = received_per_issue(fake)
    assert len(counts) == BURST
    assert sum(c - 1 for c in counts.values()) <= 1
