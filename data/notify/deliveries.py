"""The delivery log (/deliveries) as the outbox holds it: the newest deliveries with what
happened to each, the counts of the last day, and how far behind the sender is.

Every reading is at an explicit `as_of`: a delivery written after it is not there yet. A
delivery's status is the one it has now (the outbox keeps no history of it), so a page read
at an earlier instant shows the rows of that instant in their present state.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from data import db
from data.db import SourceUnavailable
from data.models import DELIVERY_STATUSES, Delivery

# A delivery's statuses, in the order the page counts them.
STATUSES = DELIVERY_STATUSES
# The newest deliveries a page lists; the ones past them are counted, not listed.
LIMIT = 500
# The counts on top are of the deliveries written in this last stretch.
WINDOW = timedelta(hours=24)
_OUTBOX = Delivery.__table__
_LISTED = (_OUTBOX.c.id, _OUTBOX.c.created_at, _OUTBOX.c.issue_id, _OUTBOX.c.step, _OUTBOX.c.level,
           _OUTBOX.c.channel_code, _OUTBOX.c.status, _OUTBOX.c.attempts, _OUTBOX.c.next_attempt_at,
           _OUTBOX.c.sent_at, _OUTBOX.c.last_error, _OUTBOX.c.sent_in, _OUTBOX.c.message)


@dataclass(frozen=True)
class Listed:
    """One delivery as the log lists it. `carried`: how many deliveries the request that
    carried this one carried (1 sent alone, more in a digest, 0 not sent yet). `title`: the
    message's title, None when the message cannot be read."""
    id: int
    created_at: datetime
    # None: a message about no issue (the weekly pack; its step is the week).
    issue_id: str | None
    step: str
    level: int
    channel_code: str
    status: str
    attempts: int
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None
    sent_in: int | None
    title: str | None
    carried: int

    @property
    def in_digest(self) -> bool:
        return self.carried > 1


@dataclass(frozen=True)
class Listing:
    """The newest deliveries matching a filter at `as_of`, newest first; `hidden`: how many
    more match that the limit leaves out."""
    as_of: datetime
    rows: tuple[Listed, ...]
    hidden: int


@dataclass(frozen=True)
class Summary:
    """The deliveries written in the WINDOW before `as_of`: by status, and by channel and
    status. `oldest_pending`: how long the pending delivery due the longest has been due
    (None when none is), retries included, with its id: the sender's lag; `held`: pending
    ones not due yet (quiet hours hold a message to their end), which are not late."""
    as_of: datetime
    by_status: dict[str, int]
    by_channel: dict[str, dict[str, int]]
    oldest_pending: timedelta | None
    oldest_pending_id: int | None
    held: int


@dataclass(frozen=True)
class Log:
    """Everything the page shows at `as_of`; `kept` False for a database that keeps no
    outbox (a source read through views)."""
    as_of: datetime
    kept: bool
    listing: Listing | None = None
    summary: Summary | None = None
    channels: tuple[str, ...] = ()


def _matching(as_of: datetime, status: str | None, channel: str | None, issue_id: str | None):
    if status is not None and status not in STATUSES:
        raise ValueError(f"status {status!r}: one of {', '.join(STATUSES)}")
    where = [_OUTBOX.c.created_at <= as_of]
    if status:
        where.append(_OUTBOX.c.status == status)
    if channel:
        where.append(_OUTBOX.c.channel_code == channel)
    if issue_id:
        where.append(_OUTBOX.c.issue_id == issue_id)
    return where


def _title(message: str | None) -> str | None:
    try:
        title = json.loads(message or "")["title"]
    except (ValueError, TypeError, KeyError):
        return None
    return title if isinstance(title, str) else None


def latest(conn: Connection, as_of: datetime, *, status: str | None = None, channel: str | None = None,
           issue_id: str | None = None, limit: int = LIMIT) -> Listing:
    """The newest `limit` deliveries written up to `as_of`, newest first, of one status, one
    channel and one issue when asked, and how many more match."""
    where = _matching(as_of, status, channel, issue_id)
    rows = conn.execute(select(*_LISTED).where(*where)
                        .order_by(_OUTBOX.c.created_at.desc(), _OUTBOX.c.id.desc()).limit(limit)).all()
    total = len(rows) if len(rows) < limit else conn.execute(
        select(func.count()).select_from(_OUTBOX).where(*where)).scalar_one()
    # A digest's members are counted whatever the filter shows of them.
    carriers = sorted({row.sent_in for row in rows if row.sent_in is not None})
    carried = dict(conn.execute(
        select(_OUTBOX.c.sent_in, func.count()).where(_OUTBOX.c.sent_in.in_(carriers))
        .group_by(_OUTBOX.c.sent_in)).all()) if carriers else {}
    listed = tuple(Listed(**{name: getattr(row, name) for name in Listed.__dataclass_fields__
                             if name not in ("title", "carried")},
                          title=_title(row.message), carried=carried.get(row.sent_in, 0))
                   for row in rows)
    return Listing(as_of, listed, total - len(rows))


def summary(conn: Connection, as_of: datetime) -> Summary:
    """The counts of the deliveries written in the WINDOW before `as_of`, and the sender's lag
    at `as_of`: the pending delivery due the longest, whenever it was written."""
    counted = conn.execute(
        select(_OUTBOX.c.channel_code, _OUTBOX.c.status, func.count())
        .where(_OUTBOX.c.created_at > as_of - WINDOW, _OUTBOX.c.created_at <= as_of)
        .group_by(_OUTBOX.c.channel_code, _OUTBOX.c.status)).all()
    by_status = dict.fromkeys(STATUSES, 0)
    by_channel: dict[str, dict[str, int]] = {}
    for channel, status, n in counted:
        by_status[status] += n
        by_channel.setdefault(channel, dict.fromkeys(STATUSES, 0))[status] += n
    pending = (_OUTBOX.c.status == "pending", _OUTBOX.c.created_at <= as_of)
    oldest = conn.execute(
        select(_OUTBOX.c.id, _OUTBOX.c.deliver_after).where(*pending, _OUTBOX.c.deliver_after <= as_of)
        .order_by(_OUTBOX.c.deliver_after, _OUTBOX.c.id).limit(1)).first()
    held = conn.execute(select(func.count()).select_from(_OUTBOX)
                        .where(*pending, _OUTBOX.c.deliver_after > as_of)).scalar_one()
    return Summary(as_of, by_status, dict(sorted(by_channel.items())),
                   as_of - oldest.deliver_after if oldest else None, oldest.id if oldest else None, held)


def channels(conn: Connection, as_of: datetime) -> tuple[str, ...]:
    """The channels any delivery written up to `as_of` was owed to, for the page's filter."""
    return tuple(conn.execute(select(_OUTBOX.c.channel_code).distinct()
                              .where(_OUTBOX.c.created_at <= as_of)
                              .order_by(_OUTBOX.c.channel_code)).scalars())


def read(url: str, as_of: datetime, *, status: str | None = None, channel: str | None = None,
         issue_id: str | None = None, limit: int | None = None) -> Log:
    """The page's reading of the database at `url`, in one connection, of the newest `limit`
    deliveries (LIMIT unless given). Raises SourceUnavailable when the database does not answer."""
    try:
        with db.get_engine(url).connect() as conn:
            if not inspect(conn).has_table(Delivery.__tablename__):
                return Log(as_of, kept=False)
            return Log(as_of, kept=True,
                       listing=latest(conn, as_of, status=status, channel=channel, issue_id=issue_id,
                                      limit=LIMIT if limit is None else limit),
                       summary=summary(conn, as_of), channels=channels(conn, as_of))
    except SQLAlchemyError as exc:
        raise SourceUnavailable(f"the deliveries could not be read: {type(exc).__name__}") from exc
