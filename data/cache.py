"""The snapshot cache shared by every screen and every worker.

A wall refresh asks for a snapshot keyed by scope and time bucket; the first asker
computes it, everyone else in that bucket reads it. flask-caching has no stampede
protection, so `cached` holds a single-flight lock (Redis SET NX, or an flock on a file)
while it computes: when an entry expires under 200 screens, one worker recomputes. A
refresh waits for another's computation at most CACHE_WAIT_S, then the screen says the
database does not answer (db.SourceUnavailable). A lock file lives only while its
computation runs, so the lock folder holds no more files than computations in flight.

Redis may stop answering while the database is fine: then each worker computes for itself
into its own memory (one warning in the log per outage), asks Redis again every
REDIS_RETRY_S, and shares again as soon as it answers.

Every key carries the fingerprint of the code being served (BUILD_ID): after a deploy no
screen is sent what the code before it computed or drew, even an entry kept for minutes.

Entries are JSON, in Redis, in the cache folder and in a worker's own memory alike: whoever
can write a key can make a screen show a wrong figure, but cannot run code in the server (a
pickle would let them). A value that is not plain JSON (a tuple, a date, a non-text key) is
refused when it is stored, so it is the same value whichever store it is read from.

An entry is kept by the snapshot's instant, and an instant comes round again when the
machine's clock is stepped back: an entry computed before then would be served again without
the rows written since. So every entry carries when it was computed, by the clock and by
the clock's offset from the monotonic clock (timezones.clock_offset), and the machine that
computed it. Read on the same machine, an entry computed before a step of the clock (its
offset differs) is a miss; read on another machine (several servers sharing Redis), an entry
computed later than the reader's clock says now is a miss. Expiry stays the stores' own.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from cachelib import SimpleCache
from cachelib.serializers import BaseSerializer
from flask import Flask
from flask_caching import Cache
from flask_caching.backends.filesystemcache import FileSystemCache
from flask_caching.backends.rediscache import RedisCache
from redis.exceptions import RedisError

from data import settings, timezones
from data.db import SourceUnavailable

log = logging.getLogger(__name__)

cache = Cache()

# Longest a computation may hold the Redis lock before another worker takes over.
_LOCK_TIMEOUT_S = 30
# Longest a Redis command waits to connect or for an answer: a silent Redis costs a
# refresh this much once per REDIS_RETRY_S, not every request.
_REDIS_TIMEOUT_S = 2
REDIS_RETRY_S = 5
# Entries a worker keeps for itself while Redis is down: a few intervals of every
# page, scope and language.
_LOCAL_ENTRIES = 2000
# Beside a key, what the database said when its computation got no answer.
_UNANSWERED = "unanswered:"


class NotPlainJson(TypeError):
    """A value given to the cache holds something JSON would not give back as it was."""


def _plain(value: Any, where: str = "value") -> None:
    if value is None or type(value) in (str, int, bool) or isinstance(value, float):
        return      # numpy's float64 is a float: it comes back an equal float
    if type(value) is list:
        for i, item in enumerate(value):
            _plain(item, f"{where}[{i}]")
        return
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise NotPlainJson(f"{where} has the key {key!r}, which is not text")
            _plain(item, f"{where}[{key!r}]")
        return
    raise NotPlainJson(f"{where} is a {type(value).__name__}, not plain JSON")


class JsonValues(BaseSerializer):
    """The cache's serializer: JSON text, never pickle. `dumps` refuses what would not come
    back as it went in; `loads` of anything that is not JSON (a foreign or corrupted entry)
    is a miss, computed anew."""

    def dumps(self, value: Any, *_args) -> bytes:
        _plain(value)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(self, raw: bytes | str | None, *_args) -> Any:
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            log.warning("a cache entry that is not JSON was ignored")
            return None

    def dump(self, value: Any, f, *_args) -> None:
        f.write(self.dumps(value))

    def load(self, f, *_args) -> Any:
        return self.loads(f.read())


_JSON = JsonValues()


class JsonFiles(FileSystemCache):
    """The file cache, JSON from its first write: the count of files it writes as it is made
    is read back by the same serializer. Written as a pickle, it would read as no count (with
    a warning), and the files already in the folder would go uncounted at each start, past
    the threshold."""
    serializer = _JSON


class JsonRedis(RedisCache):
    """Redis with the cache's serializer."""
    serializer = _JSON


def _machine() -> str:
    """What names this machine's clocks: the kernel's boot id (shared by its containers,
    new at each boot), else the host's name."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return socket.gethostname()


MACHINE = _machine()


def _entry(value: Any) -> dict:
    return {"value": value, "computed_at": timezones.utc_now().timestamp(),
            "clock_offset": timezones.clock_offset(), "machine": MACHINE}


def _fresh(entry: Any) -> Any:
    """The value of a stored entry, or None when it is none of FloorLink's or was computed
    before a step of this machine's clock (or, on another machine, after now)."""
    if entry is None:
        return None
    if type(entry) is not dict or set(entry) != {"value", "computed_at", "clock_offset", "machine"}:
        log.warning("a cache entry that is not FloorLink's was ignored")
        return None
    if entry["machine"] == MACHINE:
        stepped = abs(timezones.clock_offset() - entry["clock_offset"]) > timezones.CLOCK_STEP_S
    else:
        stepped = entry["computed_at"] > timezones.utc_now().timestamp() + timezones.CLOCK_STEP_S
    return None if stepped else entry["value"]


def _get(store, key: str) -> Any:
    return _fresh(store.get(key))


def _set(store, key: str, value: Any, timeout_s: int | None) -> None:
    store.set(key, _entry(value), timeout=timeout_s)


class RedisOutage:
    """Whether a Redis is to be asked, for a part of the server that falls back to its own
    worker while Redis does not answer: after a failure only the first caller past
    REDIS_RETRY_S asks it again, the others go on without it meanwhile; one warning per
    outage, one line when it ends. `what` names the part in those lines."""

    def __init__(self, what: str, fallback: str):
        self.what, self.fallback = what, fallback
        self.lock = threading.Lock()
        self.down_since: float | None = None
        self.retry_at = 0.0

    def ask(self) -> bool:
        if self.down_since is None:
            return True
        with self.lock:
            now = time.monotonic()
            if now < self.retry_at:
                return False
            self.retry_at = now + REDIS_RETRY_S
            return True

    def failed(self, exc: Exception) -> None:
        with self.lock:
            self.retry_at = time.monotonic() + REDIS_RETRY_S
            first = self.down_since is None
            if first:
                self.down_since = time.monotonic()
        if first:
            log.warning("%s (Redis) does not answer (%s): %s, asking again every %d s",
                        self.what, exc, self.fallback, REDIS_RETRY_S)

    def answered(self) -> None:
        if self.down_since is None:
            return
        with self.lock:
            down_since, self.down_since = self.down_since, None
        if down_since is not None:
            log.info("%s (Redis) answers again after %.0f s", self.what, time.monotonic() - down_since)


class _Sharing(RedisOutage):
    """Whether this worker shares through Redis, or computes for itself into `local`."""

    def __init__(self):
        super().__init__("the shared cache", "each worker computes for itself")
        self.local = SimpleCache(threshold=_LOCAL_ENTRIES)
        self.local.serializer = _JSON
        self.flights: dict[str, threading.Lock] = {}


_sharing = _Sharing()


def init_app(server: Flask) -> None:
    """Bind the cache: Redis when REDIS_URL is set, else files every worker shares."""
    global _sharing
    redis_url = settings.get("REDIS_URL")
    prefix = settings.get("CACHE_KEY_PREFIX")
    if redis_url:
        config = {"CACHE_TYPE": f"{__name__}.JsonRedis", "CACHE_REDIS_URL": redis_url,
                  "CACHE_KEY_PREFIX": prefix,
                  "CACHE_OPTIONS": {"socket_timeout": _REDIS_TIMEOUT_S,
                                    "socket_connect_timeout": _REDIS_TIMEOUT_S}}
    else:
        cache_dir = Path(settings.get("CACHE_DIR"))
        cache_dir.mkdir(parents=True, exist_ok=True)
        config = {"CACHE_TYPE": f"{__name__}.JsonFiles", "CACHE_DIR": str(cache_dir),
                  "CACHE_KEY_PREFIX": prefix, "CACHE_THRESHOLD": 2000}
    config["CACHE_DEFAULT_TIMEOUT"] = 2 * settings.get_int("REFRESH_S")
    cache.init_app(server, config=config)
    _sharing = _Sharing()


def _build_id() -> str:
    """A fingerprint of the code and assets being served; every worker of one deploy computes
    the same value. An open screen that sees it change reloads itself."""
    digest = hashlib.sha1()
    for path in sorted(settings.PROJECT_ROOT.glob("*.py")) + sorted(
            p for folder in ("dashboards", "data", "assets") for p in
            (settings.PROJECT_ROOT / folder).rglob("*") if p.suffix in (".py", ".js", ".css")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


BUILD_ID = _build_id()


def cache_key(*parts: Any) -> str:
    raw = "|".join(str(p) for p in (BUILD_ID, *parts))
    return hashlib.sha1(raw.encode()).hexdigest()[:24]


def _waited_too_long(key: str) -> SourceUnavailable:
    return SourceUnavailable(f"the computation of {key} did not end within "
                             f"{settings.get('CACHE_WAIT_S')} s")


@contextmanager
def _single_flight(key: str) -> Iterator[None]:
    backend = cache.cache
    wait_s = settings.get_float("CACHE_WAIT_S")
    redis_client = getattr(backend, "_write_client", None)
    if redis_client is not None:
        lock = redis_client.lock(f"{settings.get('CACHE_KEY_PREFIX')}lock:{key}",
                                 timeout=_LOCK_TIMEOUT_S, blocking_timeout=wait_s)
        if not lock.acquire():
            if _get(cache, key) is None and _get(cache, _UNANSWERED + key) is None:
                raise _waited_too_long(key)
            yield
            return
        try:
            yield
        finally:
            try:
                lock.release()
            except RedisError:
                pass    # Redis went away meanwhile: the lock expires by itself
        return
    # Beside the cache, not in it: FileSystemCache.clear() stops at the first folder it meets.
    cache_dir = Path(settings.get("CACHE_DIR"))
    lock_dir = cache_dir.with_name(cache_dir.name + "-locks")
    lock_dir.mkdir(parents=True, exist_ok=True)
    with _file_lock(lock_dir / f"{key}.lock", wait_s):
        yield


@contextmanager
def _file_lock(path: Path, wait_s: float) -> Iterator[None]:
    """An exclusive flock on `path`, waited for at most `wait_s`, and the file removed
    before it is released. A waiter that then holds the lock of a removed file sees that the
    path no longer names it and locks the path anew."""
    deadline = time.monotonic() + wait_s
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise _waited_too_long(path.stem) from None
                    time.sleep(0.02)
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
        except BaseException:
            os.close(fd)
            raise
        if current:
            break
        os.close(fd)
    try:
        yield
    finally:
        os.unlink(path)
        os.close(fd)


@contextmanager
def _local_flight(key: str) -> Iterator[None]:
    """The single-flight lock among this worker's threads, while Redis is down."""
    with _sharing.lock:
        lock = _sharing.flights.setdefault(key, threading.Lock())
    if not lock.acquire(timeout=settings.get_float("CACHE_WAIT_S")):
        raise _waited_too_long(key)
    try:
        yield
    finally:
        lock.release()
        with _sharing.lock:
            if _sharing.flights.get(key) is lock and not lock.locked():
                del _sharing.flights[key]


def _computed_once(store, key: str, compute: Callable[[], Any], timeout_s: int | None) -> Any:
    """Inside the key's lock: the value another caller stored meanwhile, or computed here.
    A computation the database did not answer is remembered for an interval, so the callers
    that waited for it, and those after them, learn at once instead of waiting in turn."""
    value = _get(store, key)
    if value is not None:
        return value
    unanswered = _get(store, _UNANSWERED + key)
    if unanswered is not None:
        raise SourceUnavailable(unanswered)
    started = time.perf_counter()
    try:
        value = compute()
    except SourceUnavailable as exc:
        _set(store, _UNANSWERED + key, str(exc) or "the database did not answer",
             settings.get_int("REFRESH_S"))
        raise
    _set(store, key, value, timeout_s)
    log.debug("computed %s in %.0f ms", key, (time.perf_counter() - started) * 1000)
    return value


def _cached_locally(key: str, compute: Callable[[], Any], timeout_s: int | None) -> Any:
    value = _get(_sharing.local, key)
    if value is not None:
        return value
    with _local_flight(key):
        return _computed_once(_sharing.local, key, compute,
                              timeout_s or 2 * settings.get_int("REFRESH_S"))


def cached(key: str, compute: Callable[[], Any], timeout_s: int | None = None) -> Any:
    """The cached value of `key`, computed by one caller at a time across all workers (in
    this worker alone while Redis is down)."""
    if not _sharing.ask():
        return _cached_locally(key, compute, timeout_s)
    try:
        value = _get(cache, key)
    except RedisError as exc:
        _sharing.failed(exc)
        return _cached_locally(key, compute, timeout_s)
    _sharing.answered()
    if value is not None:
        return value
    computed = []

    def compute_here() -> Any:
        computed.append(compute())
        return computed[0]

    try:
        with _single_flight(key):
            return _computed_once(cache, key, compute_here, timeout_s)
    except RedisError as exc:
        _sharing.failed(exc)
        if computed:
            _set(_sharing.local, key, computed[0], timeout_s or 2 * settings.get_int("REFRESH_S"))
            return computed[0]
        return _cached_locally(key, compute, timeout_s)
