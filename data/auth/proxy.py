"""The plant's identity provider, through the reverse proxy in front of FloorLink.

A proxy that signed the person in against the plant's OIDC or LDAP (oauth2-proxy, Authelia,
nginx auth_request) passes their name in the header AUTH_PROXY_HEADER. FloorLink believes
that header from the addresses in AUTH_PROXY_NETWORKS alone: from anywhere else anyone could
write it, so it is ignored there and the attempt logged. The name must be a FloorLink user
(`python app.py user create`), who keeps the role the users table gives them; no password is
asked. A name that is no user, or a disabled one, is refused: the identity provider decides
who someone is, FloorLink still decides what they may do.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine

from data import settings
from data.auth import users
from data.models import User

log = logging.getLogger(__name__)

# How long a process trusts what it read of a name (its role, disabled or not), as for
# sessions (data/auth/users.py).
CACHE_FOR_S = users.CACHE_FOR_S
# A header ignored from an address is logged at most once per address this often.
WARN_EVERY_S = 60.0
_clock = time.monotonic


@dataclass(frozen=True)
class Claim:
    """What the proxy's header says of a request: the name it carries, and the person it
    names (None: no FloorLink user of that name, or a disabled one)."""
    name: str
    person: users.Person | None


def init_app() -> None:
    """Check the settings once, at the start: a header without networks trusts nobody."""
    header = settings.get("AUTH_PROXY_HEADER")
    found = settings.networks("AUTH_PROXY_NETWORKS")
    if header and not found:
        raise ValueError("setting AUTH_PROXY_HEADER is set but AUTH_PROXY_NETWORKS is empty: name "
                         "the reverse proxy's addresses, e.g. 127.0.0.1/32")


def claim(engine: Engine, headers, address: str | None) -> Claim | None:
    """The claim of a request's header when it comes from the proxy; None when no header is
    set up, the request carries none (or an empty one), or it comes from elsewhere (logged)."""
    header = settings.get("AUTH_PROXY_HEADER")
    name = headers.get(header, "").strip() if header else ""
    if not name:
        return None
    if not settings.in_networks("AUTH_PROXY_NETWORKS", address):
        _warn_ignored(header, address)
        return None
    return Claim(name, person_named(engine, name))


_warned: dict[str, float] = {}


def _warn_ignored(header: str, address: str | None) -> None:
    now = _clock()
    if now - _warned.get(address or "-", -WARN_EVERY_S) < WARN_EVERY_S:
        return
    if len(_warned) > 10_000:
        _warned.clear()
    _warned[address or "-"] = now
    log.warning("ignored the identity header %s from %s, which is not in AUTH_PROXY_NETWORKS "
                "(logged once a minute per address)", header, address)


_known: dict[tuple, tuple[users.Person | None, float]] = {}


def person_named(engine: Engine, name: str) -> users.Person | None:
    """The enabled user called `name`, read again once CACHE_FOR_S old."""
    key = (str(engine.url), name)
    known = _known.get(key)
    if known is not None and known[1] > _clock():
        return known[0]
    person = None
    if users.NAME.fullmatch(name):
        with engine.connect() as conn:
            row = conn.execute(select(User.id, User.name, User.role)
                               .where(User.name == name, User.disabled_at.is_(None))).first()
        person = None if row is None else users.Person(row.id, row.name, row.role)
    if len(_known) > 10_000:
        _known.clear()
    _known[key] = (person, _clock() + CACHE_FOR_S)
    return person
