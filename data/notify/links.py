"""Signed, expiring, single-use acknowledgement links: what a pushed message carries so that
whoever it reaches can acknowledge, reassign or resolve the issue from the phone
(dashboards/ack.py), without an account, and no more than once.

A token is its claim (issue, ladder step, channel, expiry, a random nonce) and an
HMAC-SHA256 of it, keyed with a key of its own derived from the session key
(data.auth.web.secret_key): whoever can read a link can use it, nobody can make or change
one, and changing SECRET_KEY voids every link. The nonce is the link's identity: its
one use is a row of ack_link_uses keyed by it, so a second tap finds the first.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from data import db, floor, settings, store
from data.auth import web
from data.models import AckLinkUse

# The claim's fields, in order, joined by a character no field holds.
_SEPARATOR = "\n"
_NONCE = re.compile(r"[0-9a-f]{16}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
# The hidden field of the phone page's form: another purpose, another key.
_FORM_PURPOSE = b"floorlink ack form"


class LinkInvalid(ValueError):
    """Not a link FloorLink made: damaged, cut, or forged."""


class LinkExpired(ValueError):
    """A link FloorLink made whose time is up; carries its claim."""

    def __init__(self, claim: "Claim"):
        super().__init__(f"the link for issue {claim.issue_id} expired at {claim.expires_at.isoformat()}")
        self.claim = claim


@dataclass(frozen=True)
class Claim:
    issue_id: str
    step: str
    channel_code: str
    expires_at: datetime
    nonce: str


@dataclass(frozen=True)
class Spent:
    """The link was used before: what for, by whom, when (as the use recorded it)."""
    use: floor.Happened


def _key() -> bytes:
    return hmac.new(web.secret_key().encode(), b"floorlink ack link", hashlib.sha256).digest()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    if not _BASE64URL.fullmatch(text):
        raise LinkInvalid("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise LinkInvalid("not base64url") from None


def default_expiry(now: datetime) -> datetime:
    """When a link made at `now` stops working: ACK_LINK_HOURS later."""
    return now + timedelta(hours=settings.get_int("ACK_LINK_HOURS"))


def make_token(issue_id: str, step: str, channel_code: str, expires_at: datetime) -> str:
    """A URL-safe token that acknowledges `issue_id` once, until `expires_at`."""
    fields = (issue_id, step, channel_code)
    if any(_SEPARATOR in field for field in fields):
        raise ValueError(f"a link's fields hold no line break: {fields!r}")
    if expires_at.tzinfo is None:
        raise ValueError(f"naive expiry {expires_at!r}; pass an aware instant")
    payload = _SEPARATOR.join((*fields, str(int(expires_at.timestamp())), secrets.token_hex(8))).encode()
    signature = hmac.new(_key(), payload, hashlib.sha256).digest()
    return f"{_encode(payload)}.{_encode(signature)}"


def link_url(token: str) -> str:
    return f"{settings.public_url()}/ack/{token}"


def read_token(token: str, now: datetime) -> Claim:
    """The claim of a token; LinkInvalid unless FloorLink made it whole, LinkExpired once
    its time is up."""
    encoded, dot, signed = token.partition(".")
    if not dot:
        raise LinkInvalid("no signature")
    payload, signature = _decode(encoded), _decode(signed)
    if not hmac.compare_digest(signature, hmac.new(_key(), payload, hashlib.sha256).digest()):
        raise LinkInvalid("signature does not match")
    try:
        issue_id, step, channel_code, expiry, nonce = payload.decode("utf-8").split(_SEPARATOR)
        expires_at = datetime.fromtimestamp(int(expiry), timezone.utc)
    except (UnicodeDecodeError, ValueError, OverflowError, OSError):
        raise LinkInvalid("signed but unreadable") from None
    if not _NONCE.fullmatch(nonce):
        raise LinkInvalid("signed but unreadable")
    claim = Claim(issue_id, step, channel_code, expires_at, nonce)
    if now >= expires_at:
        raise LinkExpired(claim)
    return claim


def form_value(token: str) -> str:
    """The hidden field the phone page's form must send back: derived from the token, so only
    a page opened with the link can post it, and a GET never acts."""
    return _encode(hmac.new(_key(), _FORM_PURPOSE + token.encode(), hashlib.sha256).digest())


def form_ok(token: str, sent: str) -> bool:
    return hmac.compare_digest(form_value(token).encode(), sent.encode())


def writer(channel_code: str) -> str:
    """`link:<channel>`: who recorded an event made with a link by someone not signed in. The
    person names themselves on the page (the event's actor); what vouches for them is the
    link the channel carried."""
    name = f"link:{channel_code}"
    return name if len(name) <= 64 else name[:63] + "…"


def use(session: Session, claim: Claim, action: str, actor: str, at: datetime) -> tuple[AckLinkUse, bool]:
    """Spend the link on `action` by `actor`: (its use, True), or (the earlier use, False)
    when it was spent before, also by a tap that committed while this one was on its way
    (the key refuses the second row, and only this savepoint is rolled back). Whoever gets
    False writes nothing."""
    earlier = session.get(AckLinkUse, claim.nonce)
    if earlier is not None:
        return earlier, False
    row = AckLinkUse(nonce=claim.nonce, issue_id=claim.issue_id, used_at=at, action=action,
                     actor=actor[:100])
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return session.get(AckLinkUse, claim.nonce, populate_existing=True), False
    return row, True


def spent(url: str, claim: Claim) -> Spent | None:
    """The link's earlier use, if it has one."""
    with Session(db.get_engine(url)) as session:
        earlier = session.get(AckLinkUse, claim.nonce)
        return _spent(session, earlier) if earlier is not None else None


def _spent(session: Session, row: AckLinkUse) -> Spent:
    """The use as its event tells it (with the department a reassignment went to), else as
    the use itself recorded it."""
    return Spent(floor.happened_at(session, row.issue_id, row.action, row.used_at)
                 or floor.Happened(row.action, row.used_at, row.actor))


def act(url: str, claim: Claim, action: str, *, shown_version: str, signed_in_as: str | None,
        actor: str, actor_shown: str, at: datetime, note: str | None = None, cause: str | None = None,
        to_department: floor.Named | None = None) -> floor.Outcome | Spent:
    """Spend the link on `action`, as the page showed the issue: recorded by the person signed
    in (`signed_in_as`), else by the link's channel (`writer`). Nothing is written when the
    link was used before (Spent), also at the same moment by another tap, or when the issue
    has moved on since the page showed it (floor.Outcome, not done)."""
    with floor.writing(url) as session:
        # The issue first: a second tap of the link waits here for the first to commit, and
        # then finds its use.
        floor.hold(session, claim.issue_id)
        earlier = session.get(AckLinkUse, claim.nonce)
        if earlier is not None:
            return _spent(session, earlier)
        refused = floor.check(session, claim.issue_id, action, shown_version)
        if refused is not None:
            return refused
        row, first = use(session, claim, action, actor_shown, at)
        if not first:
            return _spent(session, row)
        store.record_as(session, store.user_writer(signed_in_as) if signed_in_as else writer(claim.channel_code))
        return floor.Outcome(True, floor.apply(session, claim.issue_id, action, actor=actor,
                                               actor_shown=actor_shown, at=at, note=note, cause=cause,
                                               to_department=to_department))
