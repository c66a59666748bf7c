"""Instants: stored as UTC, read in the site's zone when they carry no offset."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from data import settings

UTC = timezone.utc


@lru_cache(maxsize=8)
def zone(name: str | None = None) -> ZoneInfo:
    return ZoneInfo(name or settings.get("SITE_TZ"))


def site_zone() -> ZoneInfo:
    return zone(settings.get("SITE_TZ"))


def to_utc(value: datetime, tz: ZoneInfo | None = None) -> datetime:
    """An aware UTC instant; a naive value is taken as local time of `tz` (the site)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz or site_zone())
    return value.astimezone(UTC)


def parse_instant(text: str, tz: ZoneInfo | None = None) -> datetime:
    """ISO 8601 text to an aware UTC instant (naive text is site-local)."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r}") from None
    return to_utc(parsed, tz)


def to_site(value: datetime, tz: ZoneInfo | None = None) -> datetime:
    return value.astimezone(tz or site_zone())


def utc_now() -> datetime:
    """The one place 'now' is read; computations take `as_of` instead."""
    return datetime.now(UTC)


# A change of clock_offset() smaller than this is the time between its two reads, not a step.
CLOCK_STEP_S = 1.0


def clock_offset() -> float:
    """The machine's clock (utc_now) minus its monotonic clock, in seconds. NTP's slewing
    changes both alike, so it holds still while the clock runs; a step of the clock moves it
    by the step. What was stamped with it tells, on this machine, whether the clock has
    been stepped since (docs/operations.md, Clock jumps)."""
    return utc_now().timestamp() - time.monotonic()
