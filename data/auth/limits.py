"""Rate limits: sign-in forms per address, the ingest API per token and, for requests without
a valid token, per address (docs/security.md, Rate limits).

Each limit counts the requests of one key (an address, a token) in fixed windows of
WINDOW_S seconds on the clock (a window is the same for every worker and every server); past
the limit a request is refused with the seconds to the window's end (Retry-After). With
REDIS_URL set, every worker and every server counts in Redis (one INCR per request, under a
key that expires with its window). Redis may stop answering while the rest is fine: each
worker then counts for itself in its memory (one warning in the log per outage), asks Redis
again every cache.REDIS_RETRY_S and counts there again from its first answer, as the snapshot cache
does (data/cache.py). Without REDIS_URL each worker counts in its memory.

The first refusal of a key in a window goes to the audit log, so a flood is one entry per
address or token and minute, not one per request.
"""
from __future__ import annotations

import hashlib
import logging
import math
import threading
from dataclasses import dataclass
from datetime import datetime

import flask
import redis
from redis.exceptions import RedisError

from data import cache, db, settings, timezones
from data.auth import audit

log = logging.getLogger(__name__)

WINDOW_S = 60
# As the snapshot cache: a silent Redis costs a request this long once per cache.REDIS_RETRY_S.
_REDIS_TIMEOUT_S = 2
# Keys one worker counts in a window in its memory; past it a new key is not counted (the
# memory of a worker stays bounded whatever the number of addresses sending).
MAX_KEYS = 100_000


@dataclass(frozen=True)
class Verdict:
    """What a limit says of one request: refused or not, the seconds to the window's end,
    and whether this is the window's first refusal of its key (the one to record)."""
    refused: bool
    retry_after: int
    first_refusal: bool


class _Memory:
    """The counts of the current window, in this worker."""

    def __init__(self):
        self.lock = threading.Lock()
        self.window = -1
        self.counts: dict[str, int] = {}

    def incr(self, key: str, window: int) -> int:
        with self.lock:
            if window != self.window:
                self.window, self.counts = window, {}
            if key not in self.counts and len(self.counts) >= MAX_KEYS:
                return 1
            self.counts[key] = count = self.counts.get(key, 0) + 1
            return count


class Counter:
    """Counts requests per key and window: in Redis when a URL is given and it answers, else
    in this worker's memory."""

    def __init__(self, redis_url: str = "", prefix: str = ""):
        self.prefix = prefix + "rate:"
        self.memory = _Memory()
        self.redis = (redis.Redis.from_url(redis_url, socket_timeout=_REDIS_TIMEOUT_S,
                                           socket_connect_timeout=_REDIS_TIMEOUT_S)
                      if redis_url else None)
        self.outage = cache.RedisOutage("the rate limits' counter", "each worker counts for itself")

    def hit(self, kind: str, key: str, limit: int, now: datetime) -> Verdict:
        """Count one request of `key` at the instant `now` against `limit` per window."""
        at = now.timestamp()
        window = int(at // WINDOW_S)
        name = f"{kind}:{key}:{window}"
        count = self._shared(name) if self.redis is not None and self.outage.ask() else None
        if count is None:
            count = self.memory.incr(name, window)
        retry_after = max(1, math.ceil((window + 1) * WINDOW_S - at))
        return Verdict(count > limit, retry_after, count == limit + 1)

    def _shared(self, name: str) -> int | None:
        """The count in Redis after this request, or None when Redis does not answer."""
        key = self.prefix + name
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                count, _ = pipe.incr(key).expire(key, WINDOW_S + 1).execute()
        except RedisError as exc:
            self.outage.failed(exc)
            return None
        self.outage.answered()
        return int(count)


_counter = Counter()


def init_app(server: flask.Flask, api) -> None:
    """Count in Redis when REDIS_URL is set, and put the ingest API (`api`, data/ingest/api.py)
    behind its limits."""
    global _counter
    _counter = Counter(settings.get("REDIS_URL"), settings.get("CACHE_KEY_PREFIX"))
    for name in ("SIGNIN_POSTS_PER_MINUTE", "API_REQUESTS_PER_MINUTE", "API_NO_TOKEN_PER_MINUTE"):
        settings.get_int(name)      # a mistyped limit stops the start, not each request
    _known_tokens.clear()

    @server.before_request
    def _limit_the_api():
        if flask.request.blueprint == api.bp.name:
            _check_api(api)

    @server.after_request
    def _learn_tokens(response: flask.Response) -> flask.Response:
        if flask.request.blueprint == api.bp.name:
            _learn(response)
        return response


def check(kind: str, key: str, limit: int, now: datetime, *, engine, who: str,
          address: str | None, what: str) -> int | None:
    """None when a request of `key` may go on at `now`; else the seconds it should wait. The
    first refusal of a window is written to the audit log as `who`."""
    verdict = _counter.hit(kind, key, limit, now)
    if not verdict.refused:
        return None
    if verdict.first_refusal:
        audit.record(engine, "rate_limited", who, now, address=address,
                     detail=f"{what}: more than {limit} in one minute")
    return verdict.retry_after


# ---- the ingest API -------------------------------------------------------------------------

# The tokens this worker saw the API take, by their sha256, and their sources (as many as
# there are valid tokens). A token is counted on its own only once it is known to be valid:
# guessed tokens then count against their address, however many are tried.
_known_tokens: dict[str, str] = {}
# The clock of the API's windows (tests step it instead of waiting); the sign-in reads the
# doors' own (data/auth/web.py).
clock = timezones.utc_now


def _bearer_digest() -> str | None:
    scheme, _, token = flask.request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return hashlib.sha256(token.strip().encode()).hexdigest()


def _check_api(api) -> None:
    address = flask.request.remote_addr or "-"
    digest = _bearer_digest()
    source = _known_tokens.get(digest) if digest else None
    if source is not None:
        kind, key, setting, who = "api", digest, "API_REQUESTS_PER_MINUTE", f"api:{source}"
        field, what = None, "requests with this token"
    else:
        kind, key, setting, who = "api-no-token", address, "API_NO_TOKEN_PER_MINUTE", f"anyone@{address}"
        field, what = "Authorization", "requests without a valid token from this address"
    limit = settings.get_int(setting)
    engine = db.get_engine(flask.current_app.config["FLOORLINK_DATABASE_URL"])
    wait = check(kind, key, limit, clock(), engine=engine, who=who, address=address,
                 what=f"ingest API {what}")
    if wait is not None:
        raise api.Refused(429, [api.problem(field, f"more than {limit} {what} in one minute: "
                                                   f"send again in {wait} s")],
                          {"Retry-After": str(wait)})


def _learn(response: flask.Response) -> None:
    """A token the API took (it named its caller) is known valid; one it refused is not."""
    digest = _bearer_digest()
    if digest is None:
        return
    caller = flask.g.get("api_caller")
    if response.status_code == 401:
        _known_tokens.pop(digest, None)
    elif caller is not None:
        _known_tokens[digest] = caller.source
