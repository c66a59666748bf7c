"""The one sender: takes the ladder's steps (data.notify.outbox.sweep) and delivers the outbox.

One process sends, whatever runs beside it: a sender works only while it holds the lease (a
row of notify_lease it renews every tick; another takes it once it has lapsed), so gunicorn's
workers, a second `python app.py notify run` or a second host never send twice.

Each tick, for each channel, the deliveries that may leave now:
- one at a time while the channel's pace allows (a fifth of its `per_minute` at once, the
  rest spread over the minute, and never more than `per_minute` within the last 61 s, as the
  platforms count: WeCom and DingTalk 20);
- more than the policy's `burst_over`, or more than the pace allows: one digest with their
  count, never dropped; a digest marks every delivery it carried (sent_in);
- an answer the platform calls throttled waits as long as the platform asks (DingTalk blocks
  a robot 10 minutes: its circuit stays open that long); a 5xx, a timeout or a refused
  connection is retried after 2, 4, 8 ... up to 300 s; a configuration error (a bad key, a
  bad signature, an unknown answer) fails at once, shown on the delivery log (/deliveries).

Exactly once: a delivery is marked sent in the transaction that follows its request. A sender
stopped with SIGTERM finishes the request in hand and records it; one killed between a
request and its record sends that one again when it restarts (the generic webhook carries
`event_id` for receivers to drop it; docs/notify.md).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from data import db, settings, timezones, words
from data.models import Delivery, NotifyLease
from data.notify import channels, outbox, policy as policies
from data.notify.messages import Message
from data.notify.policy import Channel, Policy
from data.reports import schedule

log = logging.getLogger(__name__)

LEASE = "sender"
TICK_S = 0.5
# The window a platform counts its per-minute limit in, with a second of margin for the
# time a request takes to arrive.
PACE_WINDOW_S = 61.0
MAX_BACKOFF_S = 300.0
MAX_ATTEMPTS = 12
# Lines a digest lists before "... and n more".
DIGEST_LINES = 10
# Deliveries read per tick at most.
BATCH = 1000
# Seconds before a scheduled weekly pack that failed (sources behind, a folder not writable)
# is tried again.
PACK_RETRY_S = 600.0


@dataclass
class _Pace:
    """One channel's pace: a token bucket that lets a fifth of the minute's budget go at once
    and the rest evenly (a WeCom robot: 4 at once, then one every 3.75 s), so a long burst
    is told every few seconds in digests instead of 20 messages and then a minute of silence;
    and, whatever the bucket says, never more than `per_minute` requests in the pace window.
    Also how long the channel's circuit is open (DingTalk's 10-minute block)."""
    sent: deque = field(default_factory=deque)
    tokens: float | None = None
    refilled: float = 0.0
    closed_until: float = 0.0

    def room(self, per_minute: int, now: float) -> int:
        while self.sent and self.sent[0] <= now - PACE_WINDOW_S:
            self.sent.popleft()
        burst = max(1, per_minute // 5)
        if self.tokens is None:
            self.tokens, self.refilled = float(max(0, burst - len(self.sent))), now
        rate = (per_minute - burst) / 60.0
        self.tokens = min(float(burst), self.tokens + max(0.0, now - self.refilled) * rate)
        self.refilled = now
        if now < self.closed_until:
            return 0
        return max(0, min(int(self.tokens), per_minute - len(self.sent)))

    def took(self, now: float) -> None:
        self.sent.append(now)
        self.tokens = (self.tokens or 0.0) - 1.0


class Sender:
    """Sweep and deliver while holding the lease. `send` is the network and `clock` the one
    clock of the ladder, the records and the pace (tests give their own); `holder` names this
    sender in the lease."""

    def __init__(self, engine: Engine, *, send: Callable[..., channels.Outcome] = channels.send,
                 clock: Callable[[], datetime] = timezones.utc_now, holder: str | None = None):
        self.engine, self.send, self.clock = engine, send, clock
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        self.paces: dict[str, _Pace] = defaultdict(_Pace)
        self.holding = False
        self.stopping = threading.Event()
        self.packing: threading.Thread | None = None
        self.pack_retry_at: datetime | None = None

    # ---- the lease --------------------------------------------------------------------
    def take_lease(self, now: datetime) -> bool:
        """Hold or renew the lease; False while another sender holds it."""
        expires = now + timedelta(seconds=settings.get_float("NOTIFY_LEASE_S"))
        with db.session_scope(self.engine) as session:
            lease = session.get(NotifyLease, LEASE, with_for_update=True)
            if lease is None:
                session.add(NotifyLease(name=LEASE, holder=self.holder, expires_at=expires))
            elif lease.holder == self.holder or lease.expires_at <= now:
                lease.holder, lease.expires_at = self.holder, expires
            else:
                return False
        if not self.holding:
            log.info("sender %s holds the lease", self.holder)
            self._load_paces(now)
        self.holding = True
        return True

    def release_lease(self) -> None:
        with db.session_scope(self.engine) as session:
            session.execute(update(NotifyLease).where(NotifyLease.name == LEASE,
                                                      NotifyLease.holder == self.holder)
                            .values(expires_at=self.clock()))
        self.holding = False

    def _load_paces(self, now: datetime) -> None:
        """The requests the sender before this one made in the pace window: a restart does
        not make a robot's minute start again."""
        self.paces.clear()
        since = now - timedelta(seconds=PACE_WINDOW_S)
        with self.engine.connect() as conn:
            for code, sent_at in conn.execute(
                    select(Delivery.channel_code, Delivery.sent_at)
                    .where(Delivery.sent_at > since, Delivery.id == Delivery.sent_in)):
                self.paces[code].sent.append(sent_at.timestamp())
        for pace in self.paces.values():
            pace.sent = deque(sorted(pace.sent))
            pace.tokens = None

    # ---- the loop ---------------------------------------------------------------------
    def run(self) -> None:
        """Tick until stop(): sweep and deliver while holding the lease."""
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a database outage must not end the sender
                log.exception("notify tick failed; trying again")
                self.holding = False
            self.stopping.wait(max(0.0, TICK_S - (time.monotonic() - started)))
        if self.holding:
            self.release_lease()

    def stop(self) -> None:
        self.stopping.set()

    def tick(self) -> tuple[outbox.SweepCount | None, int]:
        now = self.clock()
        if not self.take_lease(now):
            return None, 0
        counted = outbox.sweep(self.engine, now)
        try:
            self.weekly_pack(now)
        except Exception:  # noqa: BLE001 - a mistyped WEEKLY_PACK_AT must not hold up the ladder
            log.exception("the scheduled weekly pack could not start; trying again in %.0f s", PACK_RETRY_S)
            self.pack_retry_at = now + timedelta(seconds=PACK_RETRY_S)
        return counted, self.deliver(self.clock())

    # ---- the scheduled weekly pack ------------------------------------------------------
    def weekly_pack(self, now: datetime) -> None:
        """Start the scheduled weekly pack (data/reports/schedule.py) when it is due and not
        written, in a thread beside the ticks: a build takes seconds, minutes on a large plant,
        and deliveries do not wait for it. One that failed is tried again PACK_RETRY_S later."""
        if self.packing is not None and self.packing.is_alive():
            return
        if self.pack_retry_at is not None and now < self.pack_retry_at:
            return
        if schedule.pending(now) is None:
            return
        self.packing = threading.Thread(target=self._build_pack, args=(now,), name="weekly-pack",
                                        daemon=True)
        self.packing.start()

    def _build_pack(self, now: datetime) -> None:
        try:
            week = schedule.build_scheduled(self.engine, now, tell=outbox.owe_weekly)
        except Exception:  # noqa: BLE001 - sources behind, a full disk: try again later
            log.exception("the scheduled weekly pack failed; trying again in %.0f s", PACK_RETRY_S)
            self.pack_retry_at = now + timedelta(seconds=PACK_RETRY_S)
            return
        if week is not None:
            log.info("weekly pack %s written to %s", week, schedule.folder())

    # ---- delivering ---------------------------------------------------------------------
    def deliver(self, now: datetime) -> int:
        """Send what may leave at `now`, channel by channel; returns the requests made."""
        with self.engine.connect() as conn:
            policy = policies.in_force(conn)
            due = conn.execute(
                select(Delivery.id, Delivery.channel_code, Delivery.message, Delivery.attempts, Delivery.key)
                .where(Delivery.status == "pending", Delivery.next_attempt_at <= now,
                       Delivery.deliver_after <= now)
                .order_by(Delivery.id).limit(BATCH)).all()
        by_channel: dict[str, list] = defaultdict(list)
        for row in due:
            by_channel[row.channel_code].append(row)
        requests = 0
        for code, rows in by_channel.items():
            if self.stopping.is_set():
                break
            channel = policy.channels.get(code)
            if channel is None:
                self._fail(rows, now, f"channel {code!r} is not in the policy in force")
                continue
            requests += self._deliver_channel(channel, policy, rows, now)
        return requests

    def _deliver_channel(self, channel: Channel, policy: Policy, rows: list, now: datetime) -> int:
        if channel.unset:
            self._fail(rows, now, f"not set in the sender's environment: {', '.join(channel.unset)}")
            return 0
        pace = self.paces[channel.code]
        room = pace.room(channel.per_minute, self.clock().timestamp())
        if room == 0:
            return 0
        if len(rows) > policy.burst_over or len(rows) > room:
            batches = [rows]
        else:
            batches = [[row] for row in rows]
        requests = 0
        for batch in batches:
            if self.stopping.is_set() or pace.room(channel.per_minute, self.clock().timestamp()) == 0:
                break
            message = Message.from_json(batch[0].message) if len(batch) == 1 \
                else digest([Message.from_json(r.message) for r in batch], channel.language)
            pace.took(self.clock().timestamp())
            # The platforms check a signature's time against their own clocks: the real time.
            outcome = self.send(channel, message, now=datetime.now(timezone.utc))
            requests += 1
            self._record(batch, outcome, pace)
        return requests

    def _record(self, batch: list, outcome: channels.Outcome, pace: _Pace) -> None:
        now = self.clock()
        ids = [row.id for row in batch]
        attempts = max(row.attempts for row in batch) + 1
        with db.session_scope(self.engine) as session:
            if outcome.delivered:
                session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(
                    status="sent", sent_at=now, sent_in=ids[0], attempts=Delivery.attempts + 1,
                    last_error=None))
                return
            if outcome.retry_after_s is None or attempts >= MAX_ATTEMPTS:
                session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(
                    status="failed", attempts=Delivery.attempts + 1, last_error=outcome.error))
                log.warning("deliveries %s failed: %s", ids, outcome.error)
                return
            wait = max(outcome.retry_after_s, min(MAX_BACKOFF_S, 2.0 ** attempts))
            if outcome.retry_after_s >= 60:
                pace.closed_until = self.clock().timestamp() + outcome.retry_after_s
            session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(
                attempts=Delivery.attempts + 1, last_error=outcome.error,
                next_attempt_at=now + timedelta(seconds=wait)))

    def _fail(self, rows: list, now: datetime, error: str) -> None:
        with db.session_scope(self.engine) as session:
            session.execute(update(Delivery).where(Delivery.id.in_([r.id for r in rows])).values(
                status="failed", attempts=Delivery.attempts + 1, last_error=error))
        log.warning("%d deliveries failed: %s", len(rows), error)


def digest(messages: list[Message], lang: str) -> Message:
    """Several messages for one channel as one: a count, the first ones' titles with their
    acknowledgement links, every mention once, and a link to the issue board."""
    languages = ("zh", "en") if lang == "zh+en" else (lang,)
    count = len(messages)
    title = " / ".join(words.t("notify_digest", one).format(n=count) for one in languages)
    lines = [f"{m.title} {m.link}" if m.link else m.title for m in messages[:DIGEST_LINES]]
    if count > DIGEST_LINES:
        lines.append(" / ".join(words.t("notify_digest_more", one).format(n=count - DIGEST_LINES)
                                for one in languages))
    mentions, seen = [], set()
    for message in messages:
        for mention in message.mentions:
            if mention.name not in seen:
                seen.add(mention.name)
                mentions.append(mention)
    issue_ids = tuple(dict.fromkeys(i for m in messages for i in m.issue_ids))
    return Message(event="digest", event_id=f"{messages[0].event_id}+{count - 1}", issue_ids=issue_ids,
                   level=max(m.level for m in messages), severity=min(m.severity for m in messages),
                   lang=lang, title=title, lines=tuple(lines),
                   link=f"{settings.public_url()}/issues?lang={languages[0]}",
                   link_text=" / ".join(words.t("notify_board", one) for one in languages),
                   mentions=tuple(mentions), at=messages[0].at)
