"""What each screen reads: a page's snapshot of the current refresh interval, computed once
for every screen and worker, and served from the shared cache (data/cache.py).

The clock is rounded down to the refresh interval, so every screen in one interval shares
one `as_of` and one computation per scope; from SNAPSHOT_AHEAD_S before each boundary on, the
boundary's snapshot is served, computed ahead by one worker for the views screens asked for
in the interval before (data/wall/ahead.py: what such a snapshot holds, exactly). The
overview is computed from frames that this process keeps current incrementally
(data/wall/follower.py), so its cost follows what changed, not the length of the history.
A scope is checked against the plant's departments and lines (`scope_problem`) before
anything is computed for it, so a made-up scope costs nothing.

A screen may instead replay a past instant (`at`): its snapshot is computed from frames read
in full at that instant (frames.load_frames) by the same functions, and kept for
REPLAY_KEEP_S under a key that carries the data version, so a bulk write is seen from the
next interval. Every view also carries the plant's freshness (`freshness_for_screen`): a
plant whose newest record is old is said to be quiet.
"""
from __future__ import annotations

import difflib
import threading
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Callable, NamedTuple

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from data import cache, db, queries, settings, timezones
from data.wall import ahead, frames, material, overview
from data.wall.follower import WallState

_states: dict[str, WallState] = {}
# Seconds a replayed instant's snapshot and views are kept: the past changes only by a
# bulk write, which changes the key, or by a late row, seen within this time.
REPLAY_KEEP_S = 600
# The frames of the last instants replayed in this process, so the pages of one replaying
# screen (the overview, then the material page) read them once.
REPLAYED_FRAMES = 2
_replayed: OrderedDict[tuple, frames.WallFrames] = OrderedDict()
_replayed_lock = threading.Lock()


# The database did not answer, or not within its bounds (data/db.py), or another worker's
# computation of the same snapshot did not end within its wait (data/cache.py).
SourceUnavailable = db.SourceUnavailable


class UnknownScope(ValueError):
    """A screen asked for a department or line the plant does not have (`problem` says
    which, as `scope_problem` does); nothing is computed for it."""

    def __init__(self, problem: dict):
        super().__init__(f"unknown {problem['kind']} {problem['value']!r}")
        self.problem = problem


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
    except PoolTimeout as exc:
        raise SourceUnavailable(f"no free database connection: {exc}") from exc


class Instant(NamedTuple):
    """The instant a screen's figures are computed at, what their cache keys carry for it,
    and how long they are kept."""
    as_of: datetime
    key: tuple
    keep_s: int


def _instant(database_url: str, at: datetime | None) -> Instant:
    """The instant served now (ahead.serving_instant: the clock rounded down to the refresh
    interval, the next boundary from SNAPSHOT_AHEAD_S before it), or the replayed instant `at`
    with the data version of this interval (one query per interval for every replaying
    screen)."""
    refresh_s = settings.get_int("REFRESH_S")
    now = snapshot_instant(timezones.utc_now() + timedelta(seconds=ahead.lead_s()), refresh_s)
    if at is None:
        return Instant(now, ("now", now.timestamp()), 2 * refresh_s)
    version = cache.cached(cache.cache_key("data-version", database_url, now.timestamp()),
                           lambda: _read(database_url, lambda conn: {"version": queries.data_version(conn)}),
                           timeout_s=2 * refresh_s)["version"]
    return Instant(at, ("at", at.timestamp(), version), REPLAY_KEEP_S)


def _for_screen(page: str, database_url: str, compute: Callable[..., dict], at: datetime | None,
                **scope) -> dict:
    """A page's snapshot for a scope, live or at a replayed instant. `compute(conn, frames,
    as_of)` draws it from the frames: kept current by the follower when live, read in full
    at the instant when replayed."""
    instant = _instant(database_url, at)
    key = cache.cache_key(page, database_url, sorted(scope.items()), *instant.key)

    def read(conn: Connection) -> dict:
        if at is None:
            wall_frames = _states.setdefault(database_url, WallState()).frames(conn, instant.as_of)
        else:
            wall_frames = _replayed_frames(conn, (database_url, *instant.key), instant.as_of)
        return compute(conn, wall_frames, instant.as_of)

    return cache.cached(key, lambda: _read(database_url, read), timeout_s=instant.keep_s)


def _replayed_frames(conn: Connection, key: tuple, as_of: datetime) -> frames.WallFrames:
    """The frames at a replayed instant, read in full, kept for the last REPLAYED_FRAMES
    instants (`key` carries the data version, as the snapshots' keys do)."""
    with _replayed_lock:
        if key in _replayed:
            _replayed.move_to_end(key)
            return _replayed[key]
        read = _replayed[key] = frames.load_frames(conn, as_of)
        while len(_replayed) > REPLAYED_FRAMES:
            _replayed.popitem(last=False)
        return read


def freshness_for_screen(database_url: str, at: datetime | None = None) -> dict:
    """When the plant's newest record at this interval's instant (or the replayed one) is from,
    and whether the plant is quiet (frames.freshness): one query per instant for every page
    and scope, whatever the pages' snapshots."""
    instant = _instant(database_url, at)
    return cache.cached(
        cache.cache_key("freshness", database_url, *instant.key),
        lambda: frames.freshness(_read(database_url, lambda conn: {
            "at": queries.newest_record(conn, instant.as_of)})["at"], instant.as_of),
        timeout_s=instant.keep_s)


def scope_problem(database_url: str, department: str | None = None,
                  line: str | None = None) -> dict | None:
    """None when `department` and `line` (None: not asked for) name a department and a
    line of the plant, else what is wrong with the first that does not: {"kind":
    "department" | "line", "value", "suggestion": the known code it most likely means (same
    letters in another case, or a close spelling) or None, "known": the known codes}.
    Answered from the cached display names; when the database cannot be read, None (the
    snapshot then says the source is down)."""
    try:
        names = names_for_screen(database_url)
    except SourceUnavailable:
        return None
    known = {"department": sorted(names["departments"]),
             "line": sorted({code for code in names["location_lines"].values() if code})}
    for kind, value in (("department", department), ("line", line)):
        if value is not None and value not in known[kind]:
            return {"kind": kind, "value": value, "suggestion": _likely(value, known[kind]),
                    "known": known[kind]}
    return None


def _likely(value: str, known: list[str]) -> str | None:
    """The known code closest to `value` whatever its case (the same letters first)."""
    upper = {code.upper(): code for code in known}
    close = difflib.get_close_matches(value.strip().upper(), list(upper), n=1, cutoff=0.6)
    return upper[close[0]] if close else None


def _check_scope(database_url: str, department: str | None, line: str | None) -> None:
    problem = scope_problem(database_url, department, line)
    if problem is not None:
        raise UnknownScope(problem)


def overview_for_screen(database_url: str, *, department: str | None = None,
                        line: str | None = None, at: datetime | None = None) -> dict:
    """The overview's snapshot of this interval, or of the replayed instant `at`, for a
    scope; UnknownScope for a department or line the plant does not have (nothing computed,
    nothing cached)."""
    _check_scope(database_url, department, line)

    def compute(conn: Connection, wall_frames: frames.WallFrames, as_of: datetime) -> dict:
        return overview.overview_from_frames(wall_frames, as_of, department=department, line=line)

    return _for_screen("overview", database_url, compute, at, department=department, line=line)


def material_for_screen(database_url: str, *, line: str | None = None,
                        at: datetime | None = None) -> dict:
    """The material page's snapshot of this interval, or of the replayed instant `at`, for a
    line (see overview_for_screen)."""
    _check_scope(database_url, None, line)

    def compute(conn: Connection, wall_frames: frames.WallFrames, as_of: datetime) -> dict:
        return material.material_from_frames(wall_frames, conn, as_of, line=line)

    return _for_screen("material", database_url, compute, at, line=line)


def view_for_screen(view: str, database_url: str, snapshot: Callable[[], dict],
                    render: Callable[[dict], dict], *, at: datetime | None = None, **scope) -> dict:
    """A page's parts rendered from its snapshot for one scope and language, once per
    interval (or per replayed instant `at`) for every screen that shows them: a screen's
    refresh reads this one entry and compares digests. The snapshot is drawn with the
    plant's freshness (`newest_record_ms`, `quiet`: freshness_for_screen), and the view
    carries the instant of its data as `as_of_ms`. A live view is noted as asked for, so
    that the next interval's is computed ahead of its boundary (data/wall/ahead.py)."""
    instant = _instant(database_url, at)
    if at is None and ahead.lead_s() > 0:
        ahead.asked(database_url, cache.cache_key("view", view, database_url, sorted(scope.items())),
                    instant.as_of, lambda: _view(view, database_url, snapshot, render,
                                                 _instant(database_url, None), None, scope))
    return _view(view, database_url, snapshot, render, instant, at, scope)


def _view(view: str, database_url: str, snapshot: Callable[[], dict], render: Callable[[dict], dict],
          instant: Instant, at: datetime | None, scope: dict) -> dict:
    key = cache.cache_key("view", view, database_url, sorted(scope.items()), *instant.key)

    def rendered() -> dict:
        data = {**snapshot(), **freshness_for_screen(database_url, at)}
        return {**render(data), "as_of_ms": data["as_of_ms"]}

    return cache.cached(key, rendered, timeout_s=instant.keep_s)


def names_for_screen(database_url: str) -> dict:
    """Display names for screen headers; a missing database leaves codes on screen."""
    return cache.cached(cache.cache_key("names", database_url),
                        lambda: _read(database_url, frames.display_names), timeout_s=300)
