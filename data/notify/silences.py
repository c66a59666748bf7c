"""Silences: planned maintenance, a line stopped on purpose. While one matches an issue, the
issue's ladder waits; a step that fell due in it is taken when it ends (data/notify/ladder.py)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine

from data import db
from data.models import NotifySilence


class SilenceError(ValueError):
    pass


def add(engine: Engine, *, starts_at: datetime, ends_at: datetime, reason: str, created_by: str,
        now: datetime, department_code: str | None = None, line: str | None = None,
        location_code: str | None = None, issue_type: str | None = None) -> NotifySilence:
    if ends_at <= starts_at:
        raise SilenceError(f"a silence ends after it starts: {ends_at.isoformat()} is not after "
                           f"{starts_at.isoformat()}")
    if ends_at <= now:
        raise SilenceError(f"a silence ending at {ends_at.isoformat()} is already over")
    if not reason.strip():
        raise SilenceError("a silence says why (--reason)")
    with db.session_scope(engine) as session:
        silence = NotifySilence(starts_at=starts_at, ends_at=ends_at, reason=reason.strip(),
                                created_by=created_by, created_at=now, department_code=department_code,
                                line=line, location_code=location_code, issue_type=issue_type)
        session.add(silence)
    return silence


def listed(engine: Engine, as_of: datetime) -> list[NotifySilence]:
    """The silences not over at `as_of`, the soonest to start first."""
    with engine.connect() as conn:
        return list(conn.execute(select(NotifySilence).where(NotifySilence.ends_at > as_of)
                                 .order_by(NotifySilence.starts_at, NotifySilence.id)).scalars())


def end(engine: Engine, silence_id: int, now: datetime) -> bool:
    """End a silence now (the maintenance finished early; one not begun yet is withdrawn);
    False when there is no such silence still to come or running."""
    with db.session_scope(engine) as session:
        silence = session.get(NotifySilence, silence_id)
        if silence is None or silence.ends_at <= now:
            return False
        if silence.starts_at >= now:
            session.delete(silence)
        else:
            silence.ends_at = now
    return True
