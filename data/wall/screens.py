"""What each screen reads: a page's snapshot of the current refresh interval, computed once
for every screen and worker, and served from the shared cache (data/cache.py).

The clock is rounded down to the refresh interval, so every screen in one interval shares
one `as_of` and one computation per scope. The overview is computed from frames that this
process keeps current incrementally (data/wall/follower.py), so its cost follows what changed,
not the length of the history.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from data import cache, db, settings, timezones
from data.wall import frames, material, overview
from data.wall.follower import WallState

_states: dict[str, WallState] = {}


class SourceUnavailable(RuntimeError):
    """The database did not answer; the screen keeps its last good figures."""


def snapshot_instant(now: datetime, refresh_s: int) -> datetime:
    """`now` rounded down to the refresh interval: every screen in it shares one snapshot."""
    bucket = int(now.timestamp()) // refresh_s * refresh_s
    return datetime.fromtimestamp(bucket, timezone.utc)


def _read(database_url: str, read: Callable[[Connection], dict]) -> dict:
    try:
        with db.get_engine(database_url).connect() as conn:
            return read(conn)
    except DBAPIError as exc:
        raise SourceUnavailable(str(exc.orig)) from exc


def _for_screen(page: str, database_url: str, compute: Callable[[Connection, datetime], dict],
                **scope) -> dict:
    refresh_s = settings.get_int("REFRESH_S")
    as_of = snapshot_instant(timezones.utc_now(), refresh_s)
    key = cache.cache_key(page, database_url, sorted(scope.items()), as_of.timestamp())
    return cache.cached(key, lambda: _read(database_url, lambda conn: compute(conn, as_of)),
                        timeout_s=2 * refresh_s)


def overview_for_screen(database_url: str, *, department: str | None = None,
                        line: str | None = None) -> dict:
    state = _states.setdefault(database_url, WallState())

    def compute(conn: Connection, as_of: datetime) -> dict:
        return overview.overview_from_frames(state.frames(conn, as_of), as_of,
                                         department=department, line=line)

    return _for_screen("overview", database_url, compute, department=department, line=line)


def material_for_screen(database_url: str, *, line: str | None = None) -> dict:
    state = _states.setdefault(database_url, WallState())

    def compute(conn: Connection, as_of: datetime) -> dict:
        return material.material_from_frames(state.frames(conn, as_of), conn, as_of, line=line)

    return _for_screen("material", database_url, compute, line=line)


def view_for_screen(view: str, database_url: str, snapshot: Callable[[], dict],
                    render: Callable[[dict], dict], **scope) -> dict:
    """A page's parts rendered from its snapshot for one scope and language, once per
    interval for every screen that shows them: a screen's refresh reads this one entry and
    compares digests. The view carries the instant of its data as `as_of_ms`."""
    refresh_s = settings.get_int("REFRESH_S")
    as_of = snapshot_instant(timezones.utc_now(), refresh_s)
    key = cache.cache_key("view", view, database_url, sorted(scope.items()), as_of.timestamp())

    def rendered() -> dict:
        data = snapshot()
        return {**render(data), "as_of_ms": data["as_of_ms"]}

    return cache.cached(key, rendered, timeout_s=2 * refresh_s)


def names_for_screen(database_url: str) -> dict:
    """Display names for screen headers; a missing database leaves codes on screen."""
    return cache.cached(cache.cache_key("names", database_url),
                        lambda: _read(database_url, frames.display_names), timeout_s=300)
