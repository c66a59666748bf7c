"""The audit log: sign-ins (ok, failed, locked), sign-outs, users and tokens made, disabled or
revoked, exports, rate limits reached (once per address or token and window). Never a
password, a token or a session cookie (docs/security.md).

A database FloorLink may only read (a source of views) cannot keep it: the entry then goes
to the server's log instead, so nothing is lost silently and nothing fails for it.
"""
from __future__ import annotations

import logging
import socket
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from data import settings
from data.models import AuditEntry

log = logging.getLogger(__name__)

KINDS = ("signin_ok", "signin_failed", "signin_locked", "signout", "user_created", "user_disabled",
         "screen_token_created", "screen_token_revoked", "api_token_created", "api_token_revoked",
         "screen_token_used", "api_token_used", "export", "rate_limited", "settings",
         "notify_policy", "notify_silence")


def record(engine: Engine, kind: str, who: str, at: datetime, *, address: str | None = None,
           detail: str | None = None) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown audit kind {kind!r}")
    entry = {"at": at, "kind": kind, "who": who[:100], "address": address, "detail": detail}
    try:
        with engine.begin() as conn:
            conn.execute(insert(AuditEntry).values(**entry))
    except DBAPIError as exc:
        log.warning("audit entry not stored (%s): %s by %r from %s: %s", type(exc.orig).__name__,
                    kind, who, address, detail)


def record_settings(engine: Engine, at: datetime) -> None:
    """The server's settings that differ from their defaults (secrets and passwords masked:
    settings.shown), when they differ from those of the last start: a change of settings is a
    restart with another environment, so it is kept as one entry at the start after it."""
    detail = "\n".join(f"{name}={value}" for name, value in sorted(settings.changed().items()))
    try:
        with engine.connect() as conn:
            last = conn.execute(select(AuditEntry.detail).where(AuditEntry.kind == "settings")
                                .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(1)).scalar()
    except DBAPIError:
        last = None
    if last != detail:
        record(engine, "settings", f"server:{socket.gethostname()}", at, detail=detail)


def listed(engine: Engine, since: datetime | None = None) -> list[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.at, AuditEntry.id)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    with engine.connect() as conn:
        return list(conn.execute(stmt).all())
