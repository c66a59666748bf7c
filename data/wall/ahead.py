"""The work ahead of each snapshot boundary, so that screens refreshing together do not queue.

Screens refresh just after each boundary T of the refresh interval (assets/wall.js
alignRefresh). Without this module the first of them computes T's snapshot and views while
the others wait for it. Instead, SNAPSHOT_AHEAD_S before T, one worker computes the views
that screens asked for in the interval before (page, scope and language), so that by the
time screens ask they are in the shared cache.

The rule, exact: from T - SNAPSHOT_AHEAD_S on, the wall serves the snapshot of instant T
(`serving_instant`). Its figures are computed at as_of T by the same functions as ever
(data/wall/overview.py, material.py), from the rows committed when it was computed: at
T - SNAPSHOT_AHEAD_S for a view computed ahead, or when the first screen asked for one that
nobody asked for in the interval before. A row committed after that is in the snapshot of
T + REFRESH_S: on screen within an interval and SNAPSHOT_AHEAD_S of its commit, plus the
screen's own delay past the boundary.

Which views: every live view served notes its key in the shared cache once per worker and
interval (`asked`). At T - SNAPSHOT_AHEAD_S the beat of every worker wakes (`start`, from
gunicorn.conf.py) and looks for the views noted in the interval before that it knows how to
compute (a worker keeps how to compute each view it served, `_Worker.recipes`, for
RECIPE_KEEP_S). The first worker to claim T for its database (through the cache's
single-flight lock) computes them while the others wait; then each computes, if any, those
it knows that the first did not (a view is computed once, whoever computes it). While Redis
does not answer, the cache is each worker's own (data/cache.py), and so is the claim: each
worker computes ahead for itself, as it computes everything else then.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Callable

from data import cache, settings, timezones
from data.db import SourceUnavailable

log = logging.getLogger(__name__)

# Intervals the beat rests after the database did not answer it.
RESTING_INTERVALS = 5
# How long a worker keeps how to compute a view after it last served it, and how many.
RECIPE_KEEP_S = 3600
RECIPES_KEPT = 1000


def lead_s() -> float:
    """How long before each boundary its views are computed: SNAPSHOT_AHEAD_S, at most a
    fifth of REFRESH_S (so a short interval keeps most of itself); 0: not at all."""
    lead, refresh_s = settings.get_float("SNAPSHOT_AHEAD_S"), settings.get_int("REFRESH_S")
    if not 0 <= lead < math.inf:
        raise ValueError(f"setting SNAPSHOT_AHEAD_S must be 0 or more seconds, got {lead}")
    return min(lead, refresh_s / 5)


def serving_instant(now: datetime, refresh_s: int, lead: float) -> datetime:
    """The instant whose snapshot the wall serves at `now`: the boundary of the refresh
    interval at or before now, or the next one from `lead` seconds before it (as
    data/wall/screens.py rounds the clock moved on by the lead)."""
    bucket = math.floor((now.timestamp() + lead) / refresh_s) * refresh_s
    return datetime.fromtimestamp(bucket, timezone.utc)


class _Worker:
    """What this process knows: how to compute each view it served (by key: its database,
    the compute function, when it was last served), the interval each key was last noted
    in, and its beat thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.recipes: OrderedDict[str, tuple[str, Callable[[], Any], float]] = OrderedDict()
        self.noted: dict[str, float] = {}
        self.beat_pid: int | None = None
        # While the database does not answer, the beat rests until then (monotonic seconds):
        # screens learn it from their own refreshes, and nothing waits behind the beat's work.
        self.resting_until = 0.0


_worker = _Worker()


def _asked_key(key: str, instant: float) -> str:
    return cache.cache_key("asked", key, instant)


def asked(database_url: str, key: str, instant: datetime, compute: Callable[[], Any]) -> None:
    """A screen was served the live view `key` of `instant`; `compute()` computes that view
    at whatever instant is being served when it is called. Noted in the shared cache once per
    worker and interval."""
    stamp = instant.timestamp()
    with _worker.lock:
        _worker.recipes[key] = (database_url, compute, time.monotonic())
        _worker.recipes.move_to_end(key)
        _forget_old_recipes(time.monotonic())
        first = _worker.noted.get(key) != stamp
        _worker.noted[key] = stamp
    if first:
        cache.cached(_asked_key(key, stamp), lambda: True, timeout_s=3 * settings.get_int("REFRESH_S"))


def _forget_old_recipes(now: float) -> None:
    """Under the lock, at `now` (time.monotonic): drop the views served longest ago, past
    RECIPES_KEPT or RECIPE_KEEP_S, so a worker's memory and beat follow the screens shown."""
    recipes = _worker.recipes
    while len(recipes) > RECIPES_KEPT or (recipes and next(iter(recipes.values()))[2] < now - RECIPE_KEEP_S):
        _worker.noted.pop(recipes.popitem(last=False)[0], None)


def _was_asked(key: str, instant: float) -> bool:
    # Reading a note nobody wrote settles it as not asked: the interval is over, no screen
    # can note it any more.
    return cache.cached(_asked_key(key, instant), lambda: False,
                        timeout_s=3 * settings.get_int("REFRESH_S")) is True


def claim_key(database_url: str, boundary: datetime) -> str:
    """The cache key the work ahead of `boundary` is claimed under; it holds the keys of the
    views the claiming worker computed."""
    return cache.cache_key("ahead", database_url, boundary.timestamp())


def _compute(views: list[tuple[str, Callable[[], Any]]], boundary: datetime) -> list[str]:
    """Compute `views` in turn; the keys tried (a view that fails is left to its screens,
    which say so; a database that does not answer ends the turn)."""
    tried = []
    for key, compute in views:
        tried.append(key)
        try:
            compute()
        except SourceUnavailable as exc:
            log.warning("computing ahead of %s: the database did not answer (%s); resting for "
                        "%d intervals", boundary, exc, RESTING_INTERVALS)
            _worker.resting_until = time.monotonic() + RESTING_INTERVALS * settings.get_int("REFRESH_S")
            break
        except Exception:  # noqa: BLE001 - the beat goes on with the next view
            log.exception("computing a view ahead of %s failed", boundary)
    return tried


def compute_ahead(boundary: datetime, now: datetime) -> dict[str, list[str]]:
    """At `now`, a moment after `boundary` - SNAPSHOT_AHEAD_S: the views asked for in the
    interval before `boundary` that this worker knows how to compute. The first worker to
    claim the boundary for a database computes those it knows while the others wait; then
    each computes those it knows that the first did not. Returns the keys of the views this
    worker computed, by database; nothing when `now` is not served `boundary`'s snapshot
    (the beat woke too late) or the beat rests after the database did not answer it."""
    refresh_s = settings.get_int("REFRESH_S")
    if serving_instant(now, refresh_s, lead_s()) != boundary or time.monotonic() < _worker.resting_until:
        return {}
    before = boundary.timestamp() - refresh_s
    with _worker.lock:
        _forget_old_recipes(time.monotonic())
        known = [(key, url, compute) for key, (url, compute, _) in _worker.recipes.items()]
    wanted: dict[str, list[tuple[str, Callable[[], Any]]]] = {}
    for key, url, compute in known:
        if _was_asked(key, before):
            wanted.setdefault(url, []).append((key, compute))
    computed: dict[str, list[str]] = {}
    for url, views in wanted.items():
        started = time.perf_counter()
        here: list[str] = []

        def claimed(views=views, here=here) -> list[str]:
            here.extend(_compute(views, boundary))
            return here

        try:
            tried = cache.cached(claim_key(url, boundary), claimed, timeout_s=3 * refresh_s)
        except SourceUnavailable as exc:
            log.warning("computing ahead of %s: %s", boundary, exc)
            _worker.resting_until = time.monotonic() + RESTING_INTERVALS * refresh_s
            continue
        if tried is not here:
            here.extend(_compute([view for view in views if view[0] not in tried], boundary))
        if here:
            computed[url] = here
            log.debug("computed %d views ahead of %s in %.0f ms", len(here), boundary,
                      (time.perf_counter() - started) * 1000)
    return computed


def start(app) -> None:
    """Start the beat that computes ahead of each boundary in this process (a gunicorn
    worker, after the fork: gunicorn.conf.py), bound to the Flask `app` it serves; once per
    process, and not at all when SNAPSHOT_AHEAD_S is 0."""
    pid = os.getpid()
    with _worker.lock:
        if _worker.beat_pid == pid or lead_s() == 0:
            return
        _worker.beat_pid = pid
    threading.Thread(target=_beat, args=(app,), name="wall-ahead", daemon=True).start()


def _beat(app) -> None:
    while True:
        refresh_s, lead = settings.get_int("REFRESH_S"), lead_s()
        now = time.time()
        # The next boundary whose lead has not begun; woken a millisecond into it.
        boundary = (math.floor((now + lead) / refresh_s) + 1) * refresh_s
        time.sleep(max(0.0, boundary - lead - now + 0.001))
        try:
            with app.app_context():
                compute_ahead(datetime.fromtimestamp(boundary, timezone.utc), timezones.utc_now())
        except Exception:  # noqa: BLE001 - the beat goes on; screens compute what it could not
            log.exception("computing ahead of a boundary failed")
