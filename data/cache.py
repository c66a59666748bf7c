"""The snapshot cache shared by every screen and every worker.

A wall refresh asks for a snapshot keyed by scope and time bucket; the first asker
computes it, everyone else in that bucket reads it. flask-caching has no stampede
protection, so `cached` holds a single-flight lock (Redis SET NX, or an flock on a file)
while it computes: when an entry expires under 200 screens, one worker recomputes.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from flask import Flask
from flask_caching import Cache

from data import settings

log = logging.getLogger(__name__)

cache = Cache()

# Longest a computation may hold the lock before another worker takes over.
_LOCK_TIMEOUT_S = 30


def init_app(server: Flask) -> None:
    """Bind the cache: Redis when REDIS_URL is set, else files every worker shares."""
    redis_url = settings.get("REDIS_URL")
    prefix = settings.get("CACHE_KEY_PREFIX")
    if redis_url:
        config = {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": redis_url,
                  "CACHE_KEY_PREFIX": prefix}
    else:
        cache_dir = Path(settings.get("CACHE_DIR"))
        cache_dir.mkdir(parents=True, exist_ok=True)
        config = {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(cache_dir),
                  "CACHE_KEY_PREFIX": prefix, "CACHE_THRESHOLD": 2000}
    config["CACHE_DEFAULT_TIMEOUT"] = 2 * settings.get_int("REFRESH_S")
    cache.init_app(server, config=config)


def cache_key(*parts: Any) -> str:
    raw = "|".join(str(p) for p in parts)
    return hashlib.sha1(raw.encode()).hexdigest()[:24]


@contextmanager
def _single_flight(key: str) -> Iterator[None]:
    backend = cache.cache
    redis_client = getattr(backend, "_write_client", None)
    if redis_client is not None:
        lock = redis_client.lock(f"{settings.get('CACHE_KEY_PREFIX')}lock:{key}",
                                 timeout=_LOCK_TIMEOUT_S, blocking_timeout=_LOCK_TIMEOUT_S)
        acquired = lock.acquire()
        try:
            yield
        finally:
            if acquired:
                lock.release()
        return
    # Beside the cache, not in it: FileSystemCache.clear() stops at the first folder it meets.
    cache_dir = Path(settings.get("CACHE_DIR"))
    lock_dir = cache_dir.with_name(cache_dir.name + "-locks")
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{key}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached(key: str, compute: Callable[[], Any], timeout_s: int | None = None) -> Any:
    """The cached value of `key`, computed by one caller at a time across all workers."""
    value = cache.get(key)
    if value is not None:
        return value
    with _single_flight(key):
        value = cache.get(key)
        if value is None:
            started = time.perf_counter()
            value = compute()
            cache.set(key, value, timeout=timeout_s)
            log.debug("computed %s in %.0f ms", key, (time.perf_counter() - started) * 1000)
    return value
