"""The one sender against the local fake platforms: what reaches each robot, retries and
backoff, the platforms' own refusals, digests instead of drops, the pace, and the lease that
keeps a second sender from sending."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from data import settings
from data.models import Delivery
from data.notify import outbox, sender as senders
from tests.notify_support import T0, listening, policy_text, raise_issue, small_plant  # noqa: F401 - autouse
from tools.fake_platforms import FakePlatforms


@pytest.fixture
def fake():
    with FakePlatforms() as platforms:
        yield platforms


class Clock:
    """One clock for the listener, the sweep, the records and the pace."""

    def __init__(self, monkeypatch):
        self.now = T0
        monkeypatch.setattr(outbox.timezones, "utc_now", lambda: self.now)

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def robots(fake, extra: str = "") -> str:
    """The test plant's policy with QA on a WeCom robot, PRD on a signed Feishu bot, WH on a
    signed DingTalk robot and the managers on a signed webhook."""
    return policy_text({
        "qa": f'kind: wecom, url: "{fake.url("wecom", "qa")}"',
        "prd": f'kind: feishu, url: "{fake.url("feishu", "prd", secret="fs")}", secret: fs',
        "wh": f'kind: dingtalk, url: "{fake.url("dingtalk", "wh", secret="ds")}", secret: ds',
        "mgr": f'kind: webhook, url: "{fake.url("webhook", "mgr", secret="ws")}", secret: ws',
    }, extra=extra)


def rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(Delivery.__table__).order_by(Delivery.id)).all()


def test_a_raise_reaches_each_platform_with_its_mentions_signed(engine, fake, clock):
    small_plant(engine, text=robots(fake))
    sender = senders.Sender(engine, clock=clock)
    raise_issue(engine, "Q-1", T0)
    counted, requests = sender.tick()
    assert requests == 3
    [wecom] = fake.received("wecom", "qa")
    assert wecom.body["msgtype"] == "text" and "Q-1" in wecom.body["text"]["content"]
    assert wecom.body["text"]["mentioned_list"] == ["linna"]
    assert wecom.body["text"]["mentioned_mobile_list"] == ["13800000001"]
    [feishu] = fake.received("feishu", "prd")
    assert "Q-1" in feishu.text and "zhangwei" in str(feishu.body)
    [dingtalk] = fake.received("dingtalk", "wh")
    assert dingtalk.body["at"]["atUserIds"] == ["machao"]
    assert {r.status for r in rows(engine)} == {"sent"}
    assert all(r.sent_in == r.id and r.attempts == 1 for r in rows(engine))
    # Nothing is sent twice on the next tick.
    assert sender.tick()[1] == 0


def test_a_server_error_is_retried_with_backoff_until_it_goes_through(engine, fake, clock):
    small_plant(engine, text=robots(fake))
    sender = senders.Sender(engine, clock=clock)
    raise_issue(engine, "Q-2", T0, issue_type="material_shortage")
    fake.fail_next("dingtalk", "wh", "http_500", n=2)
    sender.tick()
    [row] = rows(engine)
    assert (row.status, row.attempts) == ("pending", 1) and "500" in row.last_error
    assert row.next_attempt_at == T0 + timedelta(seconds=2)
    clock.advance(1)
    assert sender.tick()[1] == 0
    clock.advance(1)
    sender.tick()
    [row] = rows(engine)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 2, clock.now + timedelta(seconds=4))
    clock.advance(4)
    sender.tick()
    [row] = rows(engine)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
    assert fake.requests("dingtalk", "wh") == 3 and len(fake.received("dingtalk", "wh")) == 1


def test_dingtalk_throttling_opens_the_robot_s_circuit_for_ten_minutes(engine, fake, clock):
    small_plant(engine, text=robots(fake))
    sender = senders.Sender(engine, clock=clock)
    raise_issue(engine, "S-1", T0, issue_type="material_shortage")
    fake.fail_next("dingtalk", "wh", "throttled", n=1)
    sender.tick()
    [row] = rows(engine)
    assert row.status == "pending" and "130101" in row.last_error
    clock.advance(60)
    raise_issue(engine, "S-2", clock.now, issue_type="material_shortage")
    sender.tick()
    assert fake.requests("dingtalk", "wh") == 1      # blocked: nothing more to this robot
    clock.advance(541)
    sender.tick()
    assert {r.status for r in rows(engine)} == {"sent"}
    # The throttled one, then each on its own (two are not a burst).
    assert fake.requests("dingtalk", "wh") == 3
    received = fake.received("dingtalk", "wh")
    assert [("S-1" in r.text, "S-2" in r.text) for r in received] == [(True, False), (False, True)]


def test_a_configuration_error_fails_at_once_and_the_log_holds_no_secret(engine, fake, clock):
    small_plant(engine, text=robots(fake))
    sender = senders.Sender(engine, clock=clock)
    fake.fail_next("feishu", "prd", "bad_signature", n=1)
    raise_issue(engine, "Q-3", T0)
    sender.tick()
    feishu = [r for r in rows(engine) if r.channel_code == "prd"]
    assert [(r.status, r.attempts) for r in feishu] == [("failed", 1)]
    assert "19021" in feishu[0].last_error
    for row in rows(engine):
        assert "fs" not in (row.last_error or "").split() and "access_token" not in (row.last_error or "")
    clock.advance(3600)
    sender.tick()
    assert fake.requests("feishu", "prd") == 1


def test_a_burst_goes_as_one_digest_with_its_count_and_nothing_is_dropped(engine, fake, clock):
    small_plant(engine, text=robots(fake))
    sender = senders.Sender(engine, clock=clock)
    for n in range(30):
        raise_issue(engine, f"B-{n:02d}", T0, issue_type="material_shortage")
    sender.tick()
    [digest] = fake.received("dingtalk", "wh")
    assert "30" in digest.text
    assert all(f"B-{n:02d}" in digest.text for n in range(10))
    burst = rows(engine)
    assert len(burst) == 30 and {r.status for r in burst} == {"sent"}
    assert {r.sent_in for r in burst} == {burst[0].id}


def test_more_than_burst_over_due_at_once_go_as_one_digest_even_with_room_to_spare(engine, fake, clock):
    small_plant(engine, text=robots(fake))
    sender = senders.Sender(engine, clock=clock)
    for n in range(4):
        raise_issue(engine, f"Q-{n}", T0)
    sender.tick()
    [digest] = fake.received("wecom", "qa")
    assert all(f"Q-{n}" in digest.text for n in range(4))


def test_a_restarted_sender_counts_the_requests_of_the_minute_before_it(engine, fake, clock):
    pace = senders._Pace()
    pace.sent.extend(1_000_000.0 + n for n in range(20))     # twenty in the last 30 s
    assert pace.room(20, 1_000_030.0) == 0
    assert pace.room(20, 1_000_040.0) == 0                   # the bucket refilled; the minute is full
    assert pace.room(20, 1_000_062.0) >= 1


def test_the_pace_spreads_a_channel_s_minute_then_folds_what_waited(engine, fake, clock):
    # 10 a minute: 2 at once, then one every 7.5 s.
    small_plant(engine, text=robots(fake).replace("secret: ws,", "secret: ws, per_minute: 10,"))
    sender = senders.Sender(engine, clock=clock)
    for n in range(5):
        raise_issue(engine, f"M-{n}", T0 + timedelta(seconds=n))
    clock.advance(5)
    sender.tick()
    # Two hours on, each issue's manager step falls due a second after the one before.
    clock.now = T0 + timedelta(hours=2)
    for _ in range(5):
        sender.tick()
        clock.advance(1)
    assert fake.requests("webhook", "mgr") == 2
    waiting = [r for r in rows(engine) if r.channel_code == "mgr" and r.status == "pending"]
    assert [r.issue_id for r in waiting] == ["M-2", "M-3", "M-4"]
    clock.now = T0 + timedelta(hours=2, seconds=8)
    sender.tick()
    assert fake.requests("webhook", "mgr") == 3
    last = fake.received("webhook", "mgr")[-1]
    assert last.body["event"] == "digest" and last.body["issue_ids"] == ["M-2", "M-3", "M-4"]
    assert {r.status for r in rows(engine) if r.channel_code == "mgr"} == {"sent"}


def test_under_endless_demand_a_robot_gets_twenty_a_minute_at_most_and_a_message_every_few_seconds():
    pace, sent = senders._Pace(), []
    for half_second in range(2 * 600):
        now = 1_000_000.0 + half_second / 2
        if pace.room(20, now):
            pace.took(now)
            sent.append(now)
    assert max(sum(1 for t in sent if start <= t < start + 61) for start in sent) == 20
    gaps = [b - a for a, b in zip(sent, sent[1:])]
    assert max(gaps) <= 4.0
    # Four at once, then one every 3.75 s (every 4 s when asked each half second): about
    # 4 + 16 a minute over 10 minutes.
    assert 4 + 150 <= len(sent) <= 4 + 160
    # A robot that was quiet lets a fifth of its minute go at once.
    assert sent[3] - sent[0] < 2


def test_one_sender_sends_while_another_waits_for_the_lease(engine, fake, clock):
    small_plant(engine, text=robots(fake))
    first = senders.Sender(engine, clock=clock, holder="first")
    second = senders.Sender(engine, clock=clock, holder="second")
    assert first.take_lease(clock.now) and not second.take_lease(clock.now)
    raise_issue(engine, "Q-9", T0)
    assert second.tick() == (None, 0)
    assert first.tick()[1] == 3
    clock.advance(settings.get_float("NOTIFY_LEASE_S") - 1)
    assert not second.take_lease(clock.now)
    clock.advance(2)     # the first stopped renewing: its lease lapsed
    assert second.take_lease(clock.now) and not first.take_lease(clock.now)
    second.release_lease()
    assert first.take_lease(clock.now)
