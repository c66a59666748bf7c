"""People who sign in: names, roles, argon2id password hashes, lock-out.

argon2id is slow and salted on purpose: a copy of the database costs whoever holds it a
guess per ~50 ms per core for each person, and two people with one password get different
hashes. After SIGNIN_MAX_FAILURES wrong passwords in a row a name is locked for
SIGNIN_LOCK_MINUTES, whatever is typed. Every function takes the instant it acts at (`now`):
tests step the clock instead of waiting.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, inspect, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from data import db, settings
from data.models import ROLES, User

NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
MIN_PASSWORD = 10
# How long a process trusts what it read of the users (whether there are any, who is
# disabled): the longest a disabled person keeps using an open session on another process.
CACHE_FOR_S = 5.0
_hasher = PasswordHasher()      # argon2id, the library's defaults (RFC 9106, low memory)
# A hash to verify against for an unknown name, so that a name's existence does not show in
# the time an answer takes.
_UNKNOWN = _hasher.hash("an unknown name gets a wrong password")
_clock = time.monotonic


class UserError(ValueError):
    """A name, role or password that cannot be used; the message says why."""


@dataclass(frozen=True)
class Person:
    """Who is signed in: the user's id, name and role."""
    id: int
    name: str
    role: str


@dataclass(frozen=True)
class SignIn:
    """What a sign-in came to: "ok" (with the person), "failed" or "locked" (with until when)."""
    outcome: str
    person: Person | None = None
    locked_until: datetime | None = None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create(engine: Engine, name: str, role: str, password: str, now: datetime) -> User:
    if not NAME.fullmatch(name):
        raise UserError(f"name {name!r}: use 1 to 64 letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        raise UserError(f"role {role!r}: one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password needs at least {MIN_PASSWORD} characters")
    with db.session_scope(engine) as session:
        if session.scalar(select(User.id).where(User.name == name)) is not None:
            raise UserError(f"there is already a user {name!r}")
        row = User(name=name, role=role, password_hash=hash_password(password), failed_attempts=0,
                   created_at=now)
        session.add(row)
    _known.clear()
    return row


def listed(engine: Engine) -> list[User]:
    with Session(engine) as session:
        return list(session.scalars(select(User).order_by(User.name)))


def disable(engine: Engine, name: str, now: datetime) -> bool:
    """Disable the user `name`: their sessions end within CACHE_FOR_S. False if already so."""
    with engine.begin() as conn:
        if conn.execute(select(User.id).where(User.name == name)).first() is None:
            raise UserError(f"no user {name!r} (see `user list`)")
        changed = conn.execute(update(User).where(User.name == name, User.disabled_at.is_(None))
                               .values(disabled_at=now)).rowcount
    _known.clear()
    return bool(changed)


def sign_in(engine: Engine, name: str, password: str, now: datetime) -> SignIn:
    """Check a name and password at `now`, counting failures and locking the name."""
    limit = settings.get_int("SIGNIN_MAX_FAILURES")
    lock = timedelta(minutes=settings.get_int("SIGNIN_LOCK_MINUTES"))
    with db.session_scope(engine) as session:
        user = session.scalar(select(User).where(User.name == name, User.disabled_at.is_(None))
                              .with_for_update())
        if user is None:
            _verify(_UNKNOWN, password)
            return SignIn("failed")
        if user.locked_until is not None and now < user.locked_until:
            return SignIn("locked", locked_until=user.locked_until)
        if not _verify(user.password_hash, password):
            user.failed_attempts = (user.failed_attempts or 0) + 1
            if user.failed_attempts >= limit:
                user.failed_attempts, user.locked_until = 0, now + lock
                return SignIn("locked", locked_until=user.locked_until)
            return SignIn("failed")
        user.failed_attempts, user.locked_until = 0, None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        return SignIn("ok", Person(user.id, user.name, user.role))


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass
class _Known:
    value: object
    until: float


# (database URL, question) -> the answer and until when it is trusted (monotonic seconds).
_known: dict[tuple, _Known] = {}


def _remembered(engine: Engine, question, read):
    """The answer to `question`, read again once it is CACHE_FOR_S old. When the database
    does not answer, the last answer stands for another CACHE_FOR_S, so that requests do not
    each wait on a silent database before the page's own bounded read says it is down."""
    key = (str(engine.url), question)
    known = _known.get(key)
    if known is not None and known.until > _clock():
        return known.value
    try:
        value = read()
    except DBAPIError:
        if known is None:
            raise
        value = known.value
    _known[key] = _Known(value, _clock() + CACHE_FOR_S)
    return value


def signin_on(engine: Engine) -> bool | None:
    """Whether any user can sign in, that is whether sign-in is on; None when the database
    does not answer and this process never knew. A database without the users table (a
    source read through views) has sign-in off."""
    def read():
        with engine.connect() as conn:
            if not inspect(conn).has_table(User.__tablename__):
                return False
            return conn.scalar(select(func.count()).select_from(User)
                               .where(User.disabled_at.is_(None))) > 0

    try:
        return _remembered(engine, "on", read)
    except DBAPIError:
        stale = _known.get((str(engine.url), "on"))
        return None if stale is None else stale.value


def current(engine: Engine, user_id: int) -> Person | None:
    """The person with this id as the database has them now (None: disabled or gone)."""
    def read():
        with engine.connect() as conn:
            row = conn.execute(select(User.id, User.name, User.role)
                               .where(User.id == user_id, User.disabled_at.is_(None))).first()
        return None if row is None else Person(row.id, row.name, row.role)

    return _remembered(engine, ("user", user_id), read)
