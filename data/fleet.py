"""The fleet of wall screens: every screen that refreshes is recorded (who it is, its address,
what it shows, the build its page was loaded with, its browser, when it was first seen and
last refreshed, how its last refresh went), and the fleet page (/fleet) tells the screens
that refresh from those that are late or have gone dark.

Recording must cost a refresh nothing, at a thousand screens as at one: a refresh only notes
its screen in this worker's buffer (a dict under a lock, the newest refresh of each screen);
a thread of the worker writes the buffer in one transaction, one upsert per screen, at most
once per FLUSH_S. A write that fails is kept and tried again later, waiting longer each time
(RETRY_MAX_S at most), and the buffer never holds more than MAX_BUFFERED screens, so a
database that does not answer costs a refresh nothing and the worker a bounded amount of
memory. A database without the table (a source read through views, which FloorLink may
only read) keeps no fleet: nothing is buffered for it, and the page says so.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from data import db
from data.db import SourceUnavailable
from data.models import SCREEN_OUTCOMES, WallScreen

log = logging.getLogger(__name__)

# What the wall's script (assets/wall.js) sends with each callback: the id its browser keeps,
# the build its page was loaded with, and whether it was opened as a kiosk.
SCREEN_HEADER = "X-FloorLink-Screen"
BUILD_HEADER = "X-FloorLink-Build"
KIOSK_HEADER = "X-FloorLink-Kiosk"
_BROWSER_ID = re.compile(r"[0-9a-f]{32}")
_BUILD_ID = re.compile(r"[0-9a-f]{1,32}")

FLUSH_S = 1.0
RETRY_MAX_S = 30.0
MAX_BUFFERED = 5000
# A live screen's last refresh, as the page reads it, is at most one interval old plus this:
# the spread of the screens' refreshes past a boundary (0.5 s), the worker's buffer (FLUSH_S)
# and the time a refresh and its write take.
GRACE_S = 2.0
# A screen dark for longer is not listed unless asked for; the page says how many there are.
LONG_GONE = timedelta(days=7)
# The states of a screen, the most urgent first (the page's order and its counts).
STATES = ("dark", "late", "error", "db_down", "live")


@dataclass(frozen=True)
class Sighting:
    """One refresh of one screen, as the web server saw it."""
    key: str
    name: str | None
    browser_id: str | None
    address: str | None
    page: str
    department: str | None
    line: str | None
    replay_at: datetime | None
    lang: str
    kiosk: bool | None
    build_id: str | None
    user_agent: str | None
    outcome: str


def sighting(*, screen_name: str | None, browser_id: str | None, address: str | None, page: str,
             department: str | None, line: str | None, replay_at: datetime | None, lang: str,
             kiosk: str | None, build_id: str | None, user_agent: str | None, outcome: str) -> Sighting:
    """A refresh as recorded, from what the request said, each value cut to its column. The
    screen is known by its token's name when it showed one, else by the id its browser keeps,
    else (a client without the wall's script) by its address."""
    if outcome not in SCREEN_OUTCOMES:
        raise ValueError(f"outcome {outcome!r}: one of {', '.join(SCREEN_OUTCOMES)}")
    browser_id = browser_id if browser_id and _BROWSER_ID.fullmatch(browser_id) else None
    address = (address or "")[:64] or None
    if screen_name:
        key = f"token:{screen_name}"
    elif browser_id:
        key = f"browser:{browser_id}"
    else:
        key = f"address:{address or '-'}"
    return Sighting(
        key=key[:100], name=(screen_name or None) and screen_name[:64], browser_id=browser_id,
        address=address, page=page[:32], department=(department or None) and department[:64],
        line=(line or None) and line[:64], replay_at=replay_at, lang=lang[:8],
        kiosk={"1": True, "0": False}.get(kiosk or ""),
        build_id=build_id if build_id and _BUILD_ID.fullmatch(build_id) else None,
        user_agent=(user_agent or "")[:300] or None, outcome=outcome)


def _row(seen: Sighting, at: datetime) -> dict:
    return {"key": seen.key, "name": seen.name, "browser_id": seen.browser_id, "address": seen.address,
            "page": seen.page, "department": seen.department, "line": seen.line,
            "replay_at": seen.replay_at, "lang": seen.lang, "kiosk": seen.kiosk,
            "build_id": seen.build_id, "user_agent": seen.user_agent, "first_seen": at,
            "last_refresh": at, "last_outcome": seen.outcome, "outcome_since": at}


def _newer(row: dict, seen: Sighting, at: datetime) -> None:
    """`row` brought up to another refresh of its screen (one noted a moment late by another
    thread of the worker is folded in as the older one it is)."""
    if at < row["last_refresh"]:
        _older(row, _row(seen, at))
        return
    since = row["outcome_since"] if row["last_outcome"] == seen.outcome else at
    first = min(row["first_seen"], at)
    row.update(_row(seen, at), first_seen=first, outcome_since=since)


def _older(newer: dict, older: dict) -> None:
    """A refresh that could not be written, folded into the newer one of its screen."""
    newer["first_seen"] = min(newer["first_seen"], older["first_seen"])
    if newer["last_outcome"] == older["last_outcome"]:
        newer["outcome_since"] = min(newer["outcome_since"], older["outcome_since"])


class Recorder:
    """This worker's buffer of refreshes and the thread that writes it."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, dict]] = {}
        self._keeps: dict[str, bool] = {}
        self._thread: threading.Thread | None = None
        self._retry_at = 0.0
        self._failures = 0
        self.dropped = 0

    def note(self, url: str, seen: Sighting, at: datetime) -> None:
        """Buffer a refresh: the only cost a refresh pays."""
        if self._keeps.get(url) is False:
            return
        with self._lock:
            pending = self._pending.setdefault(url, {})
            row = pending.get(seen.key)
            if row is not None:
                _newer(row, seen, at)
            elif len(pending) < MAX_BUFFERED:
                pending[seen.key] = _row(seen, at)
            else:
                self._drop()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="floorlink-fleet", daemon=True)
                self._thread.start()

    def _drop(self) -> None:
        if not self.dropped:
            log.warning("the fleet's buffer is full (%d screens): refreshes of further screens are "
                        "not recorded until it is written", MAX_BUFFERED)
        self.dropped += 1

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_S)
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the writer outlives any one batch
                log.exception("the fleet's batch could not be written and is dropped")

    def flush(self, engine_for=db.get_engine) -> int:
        """Write what is buffered, one transaction per database; the screens written. A
        batch that fails goes back into the buffer, to be tried again after a wait that
        doubles with each failure in a row."""
        with self._lock:
            if not self._pending or self._clock() < self._retry_at:
                return 0
            batches, self._pending = self._pending, {}
        written = 0
        for url, rows in batches.items():
            try:
                written += self._write(engine_for(url), url, rows)
            except SQLAlchemyError as exc:
                self._failed(url, rows, exc)
                continue
            with self._lock:
                failures, dropped = self._failures, self.dropped
                self._failures = self.dropped = 0
            if failures or dropped:
                log.info("the fleet is written again after %d failed attempts; %d refreshes of "
                         "screens beyond the buffer were not recorded", failures, dropped)
        return written

    def _write(self, engine: Engine, url: str, rows: dict[str, dict]) -> int:
        if url not in self._keeps:
            with engine.connect() as conn:
                self._keeps[url] = inspect(conn).has_table(WallScreen.__tablename__)
            if not self._keeps[url]:
                log.info("this database has no table %s (a source read through views?): it keeps "
                         "no fleet", WallScreen.__tablename__)
        if not self._keeps[url]:
            return 0
        with engine.begin() as conn:
            # In the order of their keys, so two workers writing the same screens cannot deadlock.
            conn.execute(_upsert(conn.dialect.name), [rows[key] for key in sorted(rows)])
        return len(rows)

    def _failed(self, url: str, rows: dict[str, dict], exc: Exception) -> None:
        with self._lock:
            self._failures += 1
            self._retry_at = self._clock() + min(RETRY_MAX_S, FLUSH_S * 2 ** self._failures)
            pending = self._pending.setdefault(url, {})
            for key, older in rows.items():
                if key in pending:
                    _older(pending[key], older)
                elif len(pending) < MAX_BUFFERED:
                    pending[key] = older
                else:
                    self._drop()
            failures = self._failures
        if failures == 1:
            log.warning("the fleet could not be written (%s: %s): kept, tried again later",
                        type(exc).__name__, str(exc).splitlines()[0][:200])


def _upsert(dialect: str):
    """Insert a screen, or bring its row up to a later refresh; a refresh older than the row
    (written late by another worker) changes nothing."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise ValueError(f"the fleet is kept on PostgreSQL or SQLite, not {dialect}")
    table = WallScreen.__table__
    stmt = insert(table)
    new = stmt.excluded
    kept = ("key", "first_seen", "outcome_since")
    return stmt.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={**{c.name: new[c.name] for c in table.columns if c.name not in kept},
              "outcome_since": case((table.c.last_outcome == new.last_outcome, table.c.outcome_since),
                                    else_=new.outcome_since)},
        where=table.c.last_refresh <= new.last_refresh)


recorder = Recorder()


def note(url: str, seen: Sighting, at: datetime) -> None:
    recorder.note(url, seen, at)


# ---- the page ----------------------------------------------------------------------------

def screen_state(last_refresh: datetime, last_outcome: str, as_of: datetime, refresh_s: float) -> str:
    """A screen's state at `as_of`: "dark" when nothing came from it for two intervals (and
    for GRACE_S past one, when that is longer), "late" when it missed one refresh (nothing
    for an interval and GRACE_S), else how its last refresh went: "db_down", "error", or
    "live". The page reads the fleet every second, so a screen that stops refreshing is
    flagged dark within two intervals and a second of its last refresh."""
    silent = (as_of - last_refresh).total_seconds()
    late_after = refresh_s + GRACE_S
    if silent > max(2 * refresh_s, late_after):
        return "dark"
    if silent > late_after:
        return "late"
    return "live" if last_outcome == "ok" else last_outcome


@dataclass(frozen=True)
class Screen(Sighting):
    """A row of the fleet page: the screen as recorded (`outcome`: its last refresh's), its
    state at the page's instant and since when it is in it (None for a live screen)."""
    first_seen: datetime
    last_refresh: datetime
    state: str
    since: datetime | None


@dataclass(frozen=True)
class Fleet:
    """The fleet at `as_of`: `kept` False for a database that keeps none; the screens listed,
    the most urgent first; their count by state; how many long-gone screens are not listed."""
    as_of: datetime
    kept: bool
    screens: tuple[Screen, ...] = ()
    counts: dict | None = None
    hidden: int = 0


def read(url: str, as_of: datetime, refresh_s: float, everything: bool = False) -> Fleet:
    """The fleet as the database at `url` holds it at `as_of`; screens dark for longer than
    LONG_GONE only when `everything` is asked. Raises SourceUnavailable when the database
    does not answer."""
    try:
        with db.get_engine(url).connect() as conn:
            if not inspect(conn).has_table(WallScreen.__tablename__):
                return Fleet(as_of, kept=False, counts=dict.fromkeys(STATES, 0))
            rows = conn.execute(select(WallScreen.__table__)).mappings().all()
    except SQLAlchemyError as exc:
        raise SourceUnavailable(f"the fleet could not be read: {type(exc).__name__}") from exc
    screens, hidden = [], 0
    for row in rows:
        state = screen_state(row["last_refresh"], row["last_outcome"], as_of, refresh_s)
        if not everything and state == "dark" and as_of - row["last_refresh"] > LONG_GONE:
            hidden += 1
            continue
        since = {"dark": row["last_refresh"], "late": row["last_refresh"], "live": None}.get(
            state, row["outcome_since"])
        screens.append(Screen(**{k: row[k] for k in Screen.__dataclass_fields__ if k in row},
                              outcome=row["last_outcome"], state=state, since=since))
    screens.sort(key=lambda s: (STATES.index(s.state), s.name is None, s.name or "", s.key))
    counts = dict.fromkeys(STATES, 0)
    for screen in screens:
        counts[screen.state] += 1
    return Fleet(as_of, kept=True, screens=tuple(screens), counts=counts, hidden=hidden)


# Browsers as a person names them: (pattern of the User-Agent, name); the first match wins,
# so the browsers built on Chromium come before it.
_BROWSERS = (
    (re.compile(r"Edg(?:e|A|iOS)?/(\d+)"), "Edge"),
    (re.compile(r"OPR/(\d+)"), "Opera"),
    (re.compile(r"SamsungBrowser/(\d+)"), "Samsung Internet"),
    (re.compile(r"HeadlessChrome/(\d+)"), "Chrome headless"),
    (re.compile(r"(?:Chrome|CriOS)/(\d+)"), "Chrome"),
    (re.compile(r"(?:Firefox|FxiOS)/(\d+)"), "Firefox"),
    (re.compile(r"Version/(\d+(?:\.\d+)?).*Safari/"), "Safari"),
)
_SYSTEMS = (
    (re.compile(r"Tizen"), "Tizen"), (re.compile(r"Web0S|webOS"), "webOS"),
    (re.compile(r"Android"), "Android"), (re.compile(r"iPhone|iPad|iPod"), "iOS"),
    (re.compile(r"CrOS"), "ChromeOS"), (re.compile(r"Windows"), "Windows"),
    (re.compile(r"Mac OS X|Macintosh"), "macOS"), (re.compile(r"Linux|X11"), "Linux"),
)
SHORT_CHARS = 40


def short_browser(user_agent: str | None) -> str:
    """A User-Agent as the page shows it: "Chrome 120 · Linux"; one it cannot read, its first
    SHORT_CHARS characters."""
    if not user_agent:
        return ""
    browser = next((f"{name} {m.group(1)}" for pattern, name in _BROWSERS
                    if (m := pattern.search(user_agent))), None)
    system = next((name for pattern, name in _SYSTEMS if pattern.search(user_agent)), None)
    if browser is None:
        cut = user_agent if len(user_agent) <= SHORT_CHARS else user_agent[:SHORT_CHARS - 1] + "…"
        return " · ".join(part for part in (cut, system) if part)
    return " · ".join(part for part in (browser, system) if part)
