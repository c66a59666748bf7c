"""Wall screens' tokens: a TV never types a password; its URL carries `?screen=TOKEN`.

A screen token is made and kept like an API token (data/ingest/tokens.py: 256 random bits,
only the sha256 stored, so a slow hash would add nothing) but in a table of its own and with
its own prefix, so that neither kind opens the other's door. It makes its holder a read-only
viewer named after the screen. Revoked, it is refused by every process within CACHE_FOR_S.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from data import db
from data.ingest import tokens
from data.models import ScreenToken

PREFIX = "fls_"
LAST_USE_EVERY = tokens.LAST_USE_EVERY
CACHE_FOR_S = tokens.CACHE_FOR_S
_clock = time.monotonic


class ScreenTokenError(ValueError):
    """A screen name or token reference that cannot be used; the message says why."""


@dataclass(frozen=True)
class Screen:
    """A wall screen known by its token: the token's id and the screen's name; `resumed` when
    this request is the token's first use, or its first after tokens.USE_PAUSE."""
    id: int
    name: str
    resumed: bool = False


@dataclass
class _Known:
    screen: Screen | None
    until: float
    last_used_at: datetime | None


_known: dict[tuple, _Known] = {}


def create(engine: Engine, name: str, now: datetime) -> tuple[ScreenToken, str]:
    """A new token for the screen `name`: the row and the token, which is kept nowhere."""
    name = name.strip()
    if not 1 <= len(name) <= 64:
        raise ScreenTokenError("a screen's name has 1 to 64 characters, e.g. \"TV L2\"")
    token = PREFIX + secrets.token_urlsafe(32)
    with db.session_scope(engine) as session:
        row = ScreenToken(name=name, token_sha256=tokens.digest(token), created_at=now)
        session.add(row)
    return row, token


def listed(engine: Engine) -> list[ScreenToken]:
    with Session(engine) as session:
        return list(session.scalars(select(ScreenToken).order_by(ScreenToken.name, ScreenToken.id)))


def revoke(engine: Engine, name_or_id: str, now: datetime) -> list[ScreenToken]:
    """Revoke the token with this id, or every token of the screen with this name; the rows
    revoked now."""
    which = (ScreenToken.id == int(name_or_id)) if name_or_id.isdigit() else (ScreenToken.name == name_or_id)
    with db.session_scope(engine) as session:
        rows = list(session.scalars(select(ScreenToken).where(which)))
        if not rows:
            raise ScreenTokenError(f"no screen token with id or name {name_or_id!r} (see `screen-token list`)")
        revoked = [row for row in rows if row.revoked_at is None]
        for row in revoked:
            row.revoked_at = now
    _known.clear()
    return revoked


def authenticate(engine: Engine, token: str, now: datetime) -> Screen | None:
    """The screen a token names, or None for an unknown or revoked one."""
    if not token.startswith(PREFIX):
        return None
    return _screen(engine, tokens.digest(token), now)


def still_valid(engine: Engine, screen_id: int, now: datetime) -> Screen | None:
    """The screen with this token id, if its token is not revoked: asked on every request of
    a screen that showed its token once."""
    return _screen(engine, screen_id, now)


def _screen(engine: Engine, digest_or_id, now: datetime) -> Screen | None:
    key = (str(engine.url), digest_or_id)
    known = _known.get(key)
    if known is None or known.until <= _clock():
        column = ScreenToken.id if isinstance(digest_or_id, int) else ScreenToken.token_sha256
        with engine.connect() as conn:
            row = conn.execute(select(ScreenToken.id, ScreenToken.name, ScreenToken.last_used_at)
                               .where(column == digest_or_id, ScreenToken.revoked_at.is_(None))).first()
        known = _known[key] = _Known(None if row is None else Screen(row.id, row.name),
                                     _clock() + CACHE_FOR_S, None if row is None else row.last_used_at)
    if known.screen is not None and (known.last_used_at is None
                                     or now - known.last_used_at >= LAST_USE_EVERY):
        with engine.begin() as conn:
            resumed = tokens.mark_used(conn, ScreenToken, known.screen.id, now)
        known.last_used_at = now
        if resumed:
            return replace(known.screen, resumed=True)
    return known.screen

