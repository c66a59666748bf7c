"""API tokens: one or more per source (an andon box, a MES, a script), shown once, kept hashed.

A token is `fl_` and 43 random URL-safe characters (secrets.token_urlsafe(32), 256 bits); the
database keeps only its sha256, so a copy of the database lets nobody write as a source. A
slow password hash (a KDF) would add nothing: it exists to make guessing a low-entropy
password expensive, and 2**256 guesses are out of reach at any speed. One sha256 costs a
microsecond, so every request can be checked.

Each process remembers a token it found for CACHE_FOR_S seconds: a request then reads no
token row. A token revoked by `token revoke` is refused by every server within that time (at
once by the process that revoked it); the last use is recorded to the minute, and a use after
an hour without any (or the first) is marked, for the audit log.
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session

from data import db, timezones
from data.models import ApiToken

log = logging.getLogger(__name__)

PREFIX = "fl_"
# A source is named like a code: letters, digits and . _ - (at least one that is not a digit,
# so that `token revoke` can tell a name from an id).
SOURCE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The last use is written at most this often per token: every request would otherwise be a
# write to one row that all of a source's requests wait on.
LAST_USE_EVERY = timedelta(minutes=1)
# How long a process trusts a token it found without reading its row again: the longest a
# revoked token is still taken by another process.
CACHE_FOR_S = 5.0
# A use after this long without one starts a new spell of use: the one use the audit log keeps.
USE_PAUSE = timedelta(hours=1)


class TokenError(ValueError):
    """A source name or token reference that cannot be used; the message says why."""


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the token's id and its source; `resumed` when this request is the
    token's first use, or its first after USE_PAUSE."""
    token_id: int
    source: str
    resumed: bool = False


@dataclass
class _Known:
    """A token found in the database: whom it names, until when that is trusted (monotonic
    seconds), and when this process last recorded its use."""
    caller: Caller
    until: float
    last_used_at: datetime | None


# (database URL, digest) -> what this process knows of the token.
_known: dict[tuple, _Known] = {}
_clock = time.monotonic


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_source_name(source: str) -> str:
    if not SOURCE_NAME.fullmatch(source) or source.isdigit():
        raise TokenError(f"source {source!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
                         "not only digits (e.g. andon-L2, mes)")
    return source


def create(engine: Engine, source: str) -> tuple[ApiToken, str]:
    """A new token for `source`: the row and the token itself, which is not kept anywhere."""
    check_source_name(source)
    token = PREFIX + secrets.token_urlsafe(32)
    with db.session_scope(engine) as session:
        row = ApiToken(source=source, token_sha256=digest(token), created_at=timezones.utc_now())
        session.add(row)
    return row, token


def listed(engine: Engine) -> list[ApiToken]:
    with Session(engine) as session:
        return list(session.scalars(select(ApiToken).order_by(ApiToken.source, ApiToken.id)))


def revoke(engine: Engine, name_or_id: str) -> int:
    """Revoke the token with this id, or every token of this source; how many were revoked."""
    if name_or_id.isdigit():
        which = ApiToken.id == int(name_or_id)
    else:
        which = ApiToken.source == check_source_name(name_or_id)
    with engine.begin() as conn:
        found = conn.execute(select(ApiToken.id).where(which)).scalars().all()
        if not found:
            raise TokenError(f"no token with id or source {name_or_id!r} (see `token list`)")
        revoked = conn.execute(update(ApiToken).where(which, ApiToken.revoked_at.is_(None))
                               .values(revoked_at=timezones.utc_now())).rowcount
    _known.clear()
    return revoked


def authenticate(engine: Engine, token: str, now: datetime) -> Caller | None:
    """The caller a token names, or None for an unknown or revoked one: remembered for
    CACHE_FOR_S, else read. Its use is recorded at most once a minute per process, in a
    transaction of its own, so whatever the request then does cannot undo it."""
    key = (engine.url, digest(token))
    known = _known.get(key)
    if known is None or known.until <= _clock():
        with engine.connect() as conn:
            row = conn.execute(select(ApiToken.id, ApiToken.source, ApiToken.last_used_at)
                               .where(ApiToken.token_sha256 == key[1],
                                      ApiToken.revoked_at.is_(None))).first()
        if row is None:
            _known.pop(key, None)
            return None
        known = _Known(Caller(row.id, row.source), _clock() + CACHE_FOR_S, row.last_used_at)
        _known[key] = known
    if known.last_used_at is None or now - known.last_used_at >= LAST_USE_EVERY:
        try:
            with engine.begin() as conn:
                resumed = mark_used(conn, ApiToken, known.caller.token_id, now)
        except OperationalError as exc:
            # A database that takes no write (a full disk) still answers reads: the use is
            # recorded by a later request.
            log.warning("the use of API token %s was not recorded: %s", known.caller.token_id,
                        str(exc.orig).splitlines()[0])
            return known.caller
        known.last_used_at = now
        if resumed:
            return replace(known.caller, resumed=True)
    return known.caller


def mark_used(conn: Connection, table: type[DeclarativeBase], token_id: int, now: datetime) -> bool:
    """Record a token's use at `now` (at most once per LAST_USE_EVERY); True when it ends a
    pause of USE_PAUSE or is the first. The condition is in the UPDATE, so of several
    processes only one learns it."""
    column = table.last_used_at
    resumed = conn.execute(update(table).where(
        table.id == token_id, or_(column.is_(None), column <= now - USE_PAUSE))
        .values(last_used_at=now)).rowcount == 1
    if not resumed:
        conn.execute(update(table).where(table.id == token_id, column <= now - LAST_USE_EVERY)
                     .values(last_used_at=now))
    return resumed
