"""What people on the floor do to issues by hand, and what their pages read: raise one at a
station with a photo (the andon page), acknowledge, reassign or resolve one with a note
(the andon page, the phone page of an acknowledgement link).

Every change goes through data/store.py in one short transaction that holds the issue
(SQLite's write lock, PostgreSQL's row lock), so two taps at once take turns. A page sends
back the version of the issue it showed (`IssueCard.version`): when the issue has moved on
since, nothing is written, and the page says what happened instead of doing it twice.
"""
from __future__ import annotations

import hashlib
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from data import db, lifecycle, store, timezones
from data.lifecycle import LifecycleError
from data.models import (
    SEVERITIES, Department, Issue, IssueEvent, IssuePhoto, Location, Person, SlaRule,
)

# What a person may do to an issue from the floor, by the event each writes.
ACTIONS = ("acknowledged", "reassigned", "resolved")
# The event that left an issue in each status where an action is no longer allowed.
_LEFT_BY = {"acknowledged": "acknowledged", "resolved": "resolved", "closed": "closed",
            "cancelled": "closed"}
PHOTO_MAX_BYTES = 5 * 1024 * 1024
# Photos are known by their first bytes, whatever the file is called or claims to be.
_PHOTO_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))
NOTE_MAX_CHARS = 2000
TITLE_MAX_CHARS = 200
ACTOR_MAX_CHARS = 100
# PostgreSQL: how long a tap waits for another holding the same issue.
_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '5s'"


@dataclass(frozen=True)
class Station:
    code: str
    name: str
    line: str


@dataclass(frozen=True)
class Named:
    """A department or an issue type: its code and its name in both languages."""
    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Someone:
    """A person of the plant (`people`), as a page offers them to pick."""
    id: str
    name: str


@dataclass(frozen=True)
class IssueCard:
    """An issue as the phone and andon pages show it."""
    id: str
    issue_type: Named
    title: str
    severity: str
    location_code: str | None
    location_name: str | None
    line: str | None
    owner: Named
    status: str
    raised_at: datetime
    acknowledged_at: datetime | None
    ack_due: datetime
    resolve_due: datetime
    version: str
    photo_ids: tuple[int, ...] = ()

    @property
    def active(self) -> bool:
        return self.status in lifecycle.ACTIVE

    def limit(self) -> tuple[str, datetime]:
        """The limit in force ("ack" or "resolve") and when it falls: the response limit until
        someone acknowledges, then the resolution limit, as the wall counts down."""
        return ("resolve", self.resolve_due) if self.acknowledged_at else ("ack", self.ack_due)

    def allows(self, action: str) -> bool:
        return action in ACTIONS and lifecycle.allowed(self.status, action)


@dataclass(frozen=True)
class Happened:
    """An event as a page tells it: what, when, by whom (a person's name, else the actor as
    written, else who recorded it), and the department it left the issue with."""
    kind: str
    at: datetime
    who: str
    department: Named | None = None
    note: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of an action. `done`: written, `happened` its events. Else nothing was
    written: `stale`, the issue moved on since the page showed it (`happened`: since then);
    otherwise the action is not allowed any more (`happened`: the event that left the issue
    where it is), or the issue is gone (`missing`)."""
    done: bool
    happened: tuple[Happened, ...] = ()
    stale: bool = False
    missing: bool = False
    card: IssueCard | None = None


# ---- reading ---------------------------------------------------------------------------------

def _reading(url: str) -> Session:
    return Session(db.get_engine(url))


def stations(url: str) -> list[Station]:
    """Every location on a line, by line and code: the places an andon page stands."""
    with _reading(url) as session:
        rows = session.execute(select(Location.code, Location.name, Location.line)
                               .where(Location.line.is_not(None))
                               .order_by(Location.line, Location.code)).all()
    return [Station(*row) for row in rows]


def station(url: str, code: str) -> Station | None:
    with _reading(url) as session:
        row = session.execute(select(Location.code, Location.name, Location.line)
                              .where(Location.code == code, Location.line.is_not(None))).first()
    return Station(*row) if row else None


def issue_types(url: str) -> list[Named]:
    with _reading(url) as session:
        rows = session.execute(select(SlaRule.issue_type, SlaRule.name_zh, SlaRule.name_en)
                               .order_by(SlaRule.issue_type)).all()
    return [Named(*row) for row in rows]


def departments(url: str) -> list[Named]:
    with _reading(url) as session:
        rows = session.execute(select(Department.code, Department.name_zh, Department.name_en)
                               .order_by(Department.code)).all()
    return [Named(*row) for row in rows]


def people(url: str, department_code: str) -> list[Someone]:
    with _reading(url) as session:
        rows = session.execute(select(Person.id, Person.name)
                               .where(Person.department_code == department_code)
                               .order_by(Person.id)).all()
    return [Someone(*row) for row in rows]


def _cards(session: Session, *where) -> list[IssueCard]:
    owner, kind = Department.__table__.alias("owner"), SlaRule
    last_event = (select(func.max(IssueEvent.id)).where(IssueEvent.issue_id == Issue.id)
                  .correlate(Issue).scalar_subquery())
    rows = session.execute(
        select(Issue, kind.name_zh, kind.name_en, kind.ack_minutes, kind.resolve_minutes,
               Location.name, Location.line, owner.c.name_zh, owner.c.name_en, last_event)
        .join(kind, kind.issue_type == Issue.issue_type)
        .join(owner, owner.c.code == Issue.owner_department_code)
        .outerjoin(Location, Location.code == Issue.location_code)
        .where(*where).order_by(Issue.raised_at, Issue.id)).all()
    ids = [row[0].id for row in rows]
    photos: dict[str, list[int]] = {}
    if ids:
        for issue_id, photo_id in session.execute(select(IssuePhoto.issue_id, IssuePhoto.id)
                                                  .where(IssuePhoto.issue_id.in_(ids))
                                                  .order_by(IssuePhoto.id)):
            photos.setdefault(issue_id, []).append(photo_id)
    return [IssueCard(
        id=issue.id, issue_type=Named(issue.issue_type, type_zh, type_en), title=issue.title,
        severity=issue.severity, location_code=issue.location_code, location_name=place, line=line,
        owner=Named(issue.owner_department_code, owner_zh, owner_en), status=issue.status,
        raised_at=issue.raised_at, acknowledged_at=issue.acknowledged_at,
        ack_due=issue.raised_at + timedelta(minutes=ack_minutes),
        resolve_due=issue.raised_at + timedelta(minutes=resolve_minutes),
        version=_version(issue.updated_at, last), photo_ids=tuple(photos.get(issue.id, ())))
        for issue, type_zh, type_en, ack_minutes, resolve_minutes, place, line, owner_zh, owner_en, last
        in rows]


def _version(updated_at: datetime | None, last_event_id: int | None) -> str:
    """What a page sends back to say which state of the issue it showed: the row's write
    stamp and its newest event."""
    return f"{updated_at.isoformat() if updated_at else '-'}~{last_event_id or 0}"


def card(url: str, issue_id: str) -> IssueCard | None:
    with _reading(url) as session:
        found = _cards(session, Issue.id == issue_id)
    return found[0] if found else None


def open_at(url: str, location_code: str) -> list[IssueCard]:
    """The issues raised at a station and not resolved yet: those nobody has acknowledged
    first, each part the oldest first."""
    with _reading(url) as session:
        found = _cards(session, Issue.location_code == location_code, Issue.status.in_(lifecycle.ACTIVE))
    return sorted(found, key=lambda c: c.acknowledged_at is not None)


def _events(session: Session, *where, newest_first: bool = False, limit: int | None = None) -> list[Happened]:
    holder = Department.__table__.alias("holder")
    order = (IssueEvent.at.desc(), IssueEvent.id.desc()) if newest_first else (IssueEvent.at, IssueEvent.id)
    rows = session.execute(
        select(IssueEvent.kind, IssueEvent.at, IssueEvent.actor, IssueEvent.source, IssueEvent.note,
               Person.name, holder.c.code, holder.c.name_zh, holder.c.name_en)
        .outerjoin(Person, Person.id == IssueEvent.actor)
        .outerjoin(holder, holder.c.code == IssueEvent.department_code)
        .where(*where).order_by(*order).limit(limit)).all()
    return [Happened(kind, at, person or actor or (store.writer_shown(source) if source else "—"),
                     Named(code, zh, en) if code else None, note)
            for kind, at, actor, source, note, person, code, zh, en in rows]


def happened_at(session: Session, issue_id: str, kind: str, at: datetime) -> Happened | None:
    """The issue's `kind` event at `at`, if it has one."""
    found = _events(session, IssueEvent.issue_id == issue_id, IssueEvent.kind == kind, IssueEvent.at == at,
                    limit=1)
    return found[0] if found else None


def last_happened(url: str, issue_id: str, status: str) -> Happened | None:
    """The event that left the issue in `status` (acknowledged, resolved, closed...)."""
    kind = _LEFT_BY.get(status)
    if kind is None:
        return None
    with _reading(url) as session:
        found = _events(session, IssueEvent.issue_id == issue_id, IssueEvent.kind == kind,
                        newest_first=True, limit=1)
    return found[0] if found else None


def photo(url: str, photo_id: int) -> tuple[str, bytes] | None:
    """A photo's content type and bytes."""
    with _reading(url) as session:
        row = session.execute(select(IssuePhoto.content_type, IssuePhoto.data)
                              .where(IssuePhoto.id == photo_id)).first()
    return (row[0], bytes(row[1])) if row else None


def photo_type(data: bytes) -> str | None:
    """image/jpeg or image/png by the photo's first bytes; None for anything else."""
    for magic, content_type in _PHOTO_MAGIC:
        if data.startswith(magic):
            return content_type
    return None


# ---- writing ---------------------------------------------------------------------------------

@contextmanager
def writing(url: str) -> Iterator[Session]:
    """One tap's transaction: on SQLite the write lock first (what is checked is then what is
    written on, and no upgrade from reading to writing fails), on PostgreSQL a bounded wait
    for the issue's row lock."""
    with db.session_scope(db.get_engine(url)) as session:
        conn = session.connection()
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.dialect.name == "sqlite" else _LOCK_TIMEOUT)
        yield session


def hold(session: Session, issue_id: str) -> bool:
    """Hold the issue until the transaction ends (another tap on it waits); False: no such issue."""
    return session.get(Issue, issue_id, with_for_update=True) is not None


def check(session: Session, issue_id: str, action: str, shown_version: str) -> Outcome | None:
    """None when `action` may be done to the issue as the page showed it (the issue is then
    held until the transaction ends); else the Outcome that says why not."""
    if not hold(session, issue_id):
        return Outcome(False, missing=True)
    found = _cards(session, Issue.id == issue_id)[0]
    if found.version != shown_version:
        seen = _seen_event(shown_version)
        return Outcome(False, tuple(_events(session, IssueEvent.issue_id == issue_id, IssueEvent.id > seen)),
                       stale=True, card=found)
    if not found.allows(action):
        kind = _LEFT_BY.get(found.status)
        last = _events(session, IssueEvent.issue_id == issue_id, IssueEvent.kind == kind,
                       newest_first=True, limit=1) if kind else []
        return Outcome(False, tuple(last), card=found)
    return None


def _seen_event(version: str) -> int:
    try:
        return int(version.rsplit("~", 1)[1])
    except (IndexError, ValueError):
        return 0


def apply(session: Session, issue_id: str, action: str, *, actor: str, actor_shown: str, at: datetime,
          note: str | None = None, cause: str | None = None,
          to_department: Named | None = None) -> tuple[Happened, ...]:
    """Write `action` (checked first: `check`) and its note, which comes first as a comment by
    the department holding the issue when it was written."""
    happened = []
    if note:
        store.comment(session, issue_id, at, actor, note)
        happened.append(Happened("commented", at, actor_shown, None, note))
    if action == "acknowledged":
        store.acknowledge(session, issue_id, at, actor)
    elif action == "reassigned":
        store.reassign(session, issue_id, at, to_department.code, actor)
    elif action == "resolved":
        store.resolve(session, issue_id, at, actor, cause)
    else:
        raise LifecycleError(f"issue {issue_id}: {action!r} is not done from the floor")
    happened.append(Happened(action, at, actor_shown, to_department, cause))
    return tuple(happened)


def act(url: str, issue_id: str, action: str, *, shown_version: str, writer: str,
        actor: str, actor_shown: str, at: datetime, note: str | None = None,
        cause: str | None = None, to_department: Named | None = None) -> Outcome:
    """Do `action` to the issue as the page showed it, recorded by `writer`, or write
    nothing and say why (Outcome)."""
    with writing(url) as session:
        refused = check(session, issue_id, action, shown_version)
        if refused is not None:
            return refused
        store.record_as(session, writer)
        return Outcome(True, apply(session, issue_id, action, actor=actor, actor_shown=actor_shown,
                                   at=at, note=note, cause=cause, to_department=to_department))


def new_issue_id(at: datetime) -> str:
    """AN-<yymmdd>-<6 hex>: raised at an andon station, on the site's date."""
    return f"AN-{timezones.to_site(at):%y%m%d}-{secrets.token_hex(3)}"


def raise_at_station(url: str, *, station: Station, issue_type: str, severity: str, title: str,
                     note: str | None, photo_bytes: bytes | None, raised_by: str | None, writer: str,
                     at: datetime) -> str:
    """A new open issue at `station`, with its note as a comment and its photo, in one
    transaction; its id."""
    if severity not in SEVERITIES:
        raise LifecycleError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    content_type = photo_type(photo_bytes) if photo_bytes else None
    if photo_bytes and (content_type is None or len(photo_bytes) > PHOTO_MAX_BYTES):
        raise ValueError("a photo is a JPEG or PNG of at most 5 MB")
    with writing(url) as session:
        issue_id = new_issue_id(at)
        while session.get(Issue, issue_id) is not None:
            issue_id = new_issue_id(at)
        store.record_as(session, writer)
        store.raise_issue(session, issue_id=issue_id, issue_type=issue_type, title=title[:TITLE_MAX_CHARS],
                          severity=severity, at=at, location_code=station.code, raised_by=raised_by)
        if note:
            store.comment(session, issue_id, at, raised_by, note)
        if photo_bytes:
            session.add(IssuePhoto(issue_id=issue_id, at=at, content_type=content_type, data=photo_bytes,
                                   sha256=hashlib.sha256(photo_bytes).hexdigest()))
    return issue_id
