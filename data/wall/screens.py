"""What each screen reads: a page's snapshot of the current refresh interval, computed once
for every screen and worker, and served from the shared cache (data/cache.py).

The clock is rounded down to the refresh interval, so every screen in one interval shares
one `as_of` and one computation per scope. The overview is computed from frames that this
process keeps current incrementally (data/wall/follower.py), so its cost follows what changed,
not the length of the history. A scope is checked against the plant's departments and lines
(`scope_problem`) before anything is computed for it, so a made-up scope costs nothing.
"""
from __future__ import annotations

import difflib
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


def _for_screen(page: str, database_url: str, compute: Callable[[Connection, datetime], dict],
                **scope) -> dict:
    refresh_s = settings.get_int("REFRESH_S")
    as_of = snapshot_instant(timezones.utc_now(), refresh_s)
    key = cache.cache_key(page, database_url, sorted(scope.items()), as_of.timestamp())
    return cache.cached(key, lambda: _read(database_url, lambda conn: compute(conn, as_of)),
                        timeout_s=2 * refresh_s)


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
                        line: str | None = None) -> dict:
    """The overview's snapshot of this interval for a scope; UnknownScope for a department or
    line the plant does not have (nothing computed, nothing cached)."""
    _check_scope(database_url, department, line)
    state = _states.setdefault(database_url, WallState())

    def compute(conn: Connection, as_of: datetime) -> dict:
        return overview.overview_from_frames(state.frames(conn, as_of), as_of,
                                         department=department, line=line)

    return _for_screen("overview", database_url, compute, department=department, line=line)


def material_for_screen(database_url: str, *, line: str | None = None) -> dict:
    """The material page's snapshot of this interval for a line (see overview_for_screen)."""
    _check_scope(database_url, None, line)
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
