"""The overview's frames kept current from watermarks instead of re-read every refresh.

A wall refresh needs every issue of the last month, the last week's events and where every
lot sits. Reading them in full costs what the history costs; following them costs what
changed since the last refresh. `WallState` loads the frames once (`data.wall.frames.load_frames`)
into numpy columns with a key-to-row map, then on each refresh reads only the issues,
events and movements written after its watermark and changes those rows in place. It
composes one class per concern: `IssueFollower` (issue rows, and ping-pong from their
events), `LotFollower` (lot positions from movements), `PlanReader` (the shifts' window) and
`Overlap` (what was read near the watermark). Each keeps the rows of its tables that it left
out as implausible (queries.LeftOut) as a full read would find them.

A transaction commits after it stamped its rows (on PostgreSQL and on SQLite alike), so a
row stamped just before the watermark may commit just after a read passed it. The watermark
therefore keeps an overlap of FOLLOW_OVERLAP_S before it. Events and movements are only
inserted: each refresh counts those stamped in the overlap and compares the count with the
rows it has read there; only when they differ does it read the overlap's keys, and the rows
it has not seen by key. Issues change in place, so a count cannot tell a late change from
one already read: each refresh also sums the stamps of the issues stamped in the overlap;
only when the count or the sum differs from what it has read does it read their ids and
stamps, and by id the issues whose stamp it has not read (an issue changed by another
program without an event included). The events are kept to know when each recent
issue first went back to a department it had left; that instant is recomputed only for the
issues that got new events.

Bulk writers (import, demo plant) raise a version counter instead of being followed row by
row, and the database raises one of its own when another program changes a table that is not
followed (migration 0006, docs/outside-writers.md); a new version means a full reload.
Writers must commit within FOLLOW_OVERLAP_S of stamping a row (data.store's transactions take
milliseconds); the database stamps the rows other programs write.

The watermark is the server's clock. When that clock is stepped back, the rows written after
the step are stamped below the watermark, where no follow looks: each read notes the clock's
offset from the monotonic clock (timezones.clock_offset), and a read that finds it smaller
by more than a second reloads in full, with one warning, whenever it comes (docs/operations.md,
Clock jumps).
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Iterable, Iterator, NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from data import kpis, queries, settings, timezones
from data.wall.columns import NEVER_NS, IssueColumns, epoch_ns, issue_columns, ns
from data.wall.frames import (EVENT_HORIZON, ISSUE_HORIZON, PLAN_HORIZON, WallFrames,
                              counts_at, load_frames_and_events)

log = logging.getLogger(__name__)

# A lot position's last arrival when nothing arrived (NaT as an integer, smaller than any).
_NO_ARRIVAL = np.iinfo(np.int64).min
# How often rows that no window counts any more are dropped (in as_of time).
_FORGET_EVERY = timedelta(minutes=15)
# How far past as_of the plan is read, so that the window moves on without a re-read.
_PLAN_AHEAD = timedelta(hours=1)


class _Rows:
    """Rows as numpy columns with a key-to-row map. A change appends the row's new version
    and retires the old one, so the rows handed out (`live`) never change under a reader;
    retired rows are dropped once they outnumber the live ones."""

    _BLANK = {np.dtype(object): None, np.dtype(np.int64): NEVER_NS,
              np.dtype(np.float64): np.nan, np.dtype(bool): False}

    def __init__(self, keys: Iterable, columns: dict[str, np.ndarray]):
        self.row_of = {key: row for row, key in enumerate(keys)}
        self.size = len(self.row_of)
        self.columns = {name: np.array(values, copy=True) for name, values in columns.items()}
        self.alive = np.ones(self.size, dtype=bool)

    def get(self, keys: list, name: str, default) -> np.ndarray:
        """Column `name` of `keys`, `default` for a key without a live row."""
        rows = np.fromiter((self.row_of.get(key, -1) for key in keys), dtype=np.int64, count=len(keys))
        values = self.columns[name][np.maximum(rows, 0)] if self.size else np.zeros(len(keys))
        return np.where(rows >= 0, values, default)

    def _reserve(self, extra: int) -> None:
        capacity = len(self.alive)
        if self.size + extra <= capacity:
            return
        capacity = max(self.size + extra, 2 * capacity, 1024)
        for name, values in self.columns.items():
            grown = np.full(capacity, self._BLANK[values.dtype], dtype=values.dtype)
            grown[:self.size] = values[:self.size]
            self.columns[name] = grown
        alive = np.zeros(capacity, dtype=bool)
        alive[:self.size] = self.alive[:self.size]
        self.alive = alive

    def put(self, keys: list, columns: dict[str, np.ndarray]) -> None:
        """New versions of the rows of `keys` (distinct), with `columns` changed and the
        other columns as they were (blank for a new key)."""
        if not keys:
            return
        old = np.fromiter((self.row_of.get(key, -1) for key in keys), dtype=np.int64, count=len(keys))
        self._reserve(len(keys))
        new = np.arange(self.size, self.size + len(keys))
        had = old >= 0
        for name, values in self.columns.items():
            if name in columns:
                values[new] = columns[name]
            else:
                values[new[had]] = values[old[had]]
        self.alive[old[had]] = False
        self.alive[new] = True
        self.row_of.update(zip(keys, new.tolist()))
        self.size += len(keys)
        self._compact_if_sparse()

    def retire(self, keys: Iterable) -> None:
        rows = [self.row_of.pop(key) for key in keys if key in self.row_of]
        self.alive[rows] = False
        self._compact_if_sparse()

    def live(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The columns (views: rows below `size` never change) and the live rows among them."""
        return ({name: values[:self.size] for name, values in self.columns.items()},
                np.flatnonzero(self.alive[:self.size]))

    def _compact_if_sparse(self) -> None:
        rows = np.flatnonzero(self.alive[:self.size])
        if 2 * len(rows) >= self.size:
            return
        self.columns = {name: values[rows] for name, values in self.columns.items()}
        renumbered = np.cumsum(self.alive[:self.size]) - 1
        old = np.fromiter(self.row_of.values(), dtype=np.int64, count=len(self.row_of))
        self.row_of = dict(zip(self.row_of.keys(), renumbered[old].tolist()))
        self.size = len(rows)
        self.alive = np.ones(self.size, dtype=bool)


class _Read:
    """The keys and stamps of the rows of one table read within the overlap, a batch per
    read: what the overlap's count is checked against, and what is not taken twice."""

    def __init__(self) -> None:
        self._batches: list[tuple[np.ndarray, set]] = []

    def add(self, keys: np.ndarray, stamps: np.ndarray) -> None:
        if len(keys):
            self._batches.append((np.sort(stamps), set(keys.tolist())))

    def count(self, since: int, until: int) -> int:
        """Rows read that were stamped in (since, until]."""
        return sum(int(np.searchsorted(s, until, "right") - np.searchsorted(s, since, "right"))
                   for s, _ in self._batches)

    def keys(self) -> set:
        return set().union(*(keys for _, keys in self._batches))

    def unread(self, keys: np.ndarray, after: int) -> np.ndarray:
        """Per key stamped after `after`: not read yet (a read may have taken rows stamped
        after its own watermark)."""
        recent = set().union(*(keys for stamps, keys in self._batches if stamps[-1] > after))
        return np.fromiter((key not in recent for key in keys.tolist()), dtype=bool, count=len(keys))

    def forget_before(self, since: int) -> None:
        self._batches = [batch for batch in self._batches if batch[0][-1] > since]


class _LeftOut:
    """The rows of some tables left out as implausible, by (table, key): a later plausible
    version of a row takes it back; rows no window counts any more are forgotten."""

    def __init__(self, rows: Iterable[queries.LeftOut] = ()) -> None:
        self.rows: dict[tuple[str, str], queries.LeftOut] = {}
        self.add(rows)

    def add(self, rows: Iterable[queries.LeftOut]) -> None:
        self.rows.update(((left.table, left.key), left) for left in rows)

    def taken(self, table: str, keys: Iterable) -> None:
        if self.rows:
            for key in keys:
                self.rows.pop((table, str(key)), None)

    def forget_before(self, as_of: datetime) -> None:
        self.rows = {k: left for k, left in self.rows.items() if counts_at(left, as_of)}


class Late(NamedTuple):
    """What committed after the last read although stamped within the overlap before it."""
    events: pd.DataFrame
    movements: pd.DataFrame
    # The ids of the issues whose stamp there was not read, and the overlap's issue stamps
    # (None when the count and the stamps' sum said nothing was missed), to be taken once
    # the issues are read.
    issue_ids: set
    issue_stamps: pd.DataFrame | None
    # Whether plan rows were written within the overlap or since.
    plan_written: bool


class Overlap:
    """What was read near the watermark, to find the rows that committed late into the
    overlap before it: the keys and stamps of events and movements (so that no row is taken
    twice), and the stamp each issue had when it was last read."""

    TABLES = ("events", "movements")

    def __init__(self, read: dict[str, pd.DataFrame] | None = None,
                 issue_stamps: pd.DataFrame | None = None) -> None:
        self._read = {table: _Read() for table in self.TABLES}
        for table, keys in (read or {}).items():
            self._read[table].add(keys["key"].to_numpy(), ns(keys["recorded_at"]))
        # Issue id -> its stamp (µs) when last read, for the issues stamped in the overlap
        # or since.
        self._issue_stamps: dict[str, int] = {}
        if issue_stamps is not None:
            self.took_issues(issue_stamps["key"], issue_stamps["stamp"])

    def unread(self, table: str, keys: np.ndarray, after: datetime) -> np.ndarray:
        return self._read[table].unread(keys, epoch_ns(after))

    def took(self, table: str, keys: np.ndarray, stamps: np.ndarray) -> None:
        self._read[table].add(keys, stamps)

    def unread_issues(self, issues: pd.DataFrame) -> pd.DataFrame:
        """`issues` (queries.FOLLOWED_ISSUE_COLUMNS) without the versions already read."""
        known = self._issue_stamps
        return issues[np.fromiter(
            (known.get(key) != stamp for key, stamp in zip(issues["id"].tolist(),
                                                          issues["updated_at"].tolist())),
            dtype=bool, count=len(issues))]

    def took_issues(self, keys: pd.Series, stamps: pd.Series) -> None:
        self._issue_stamps.update(zip(keys.tolist(), stamps.tolist()))

    def late(self, conn: Connection, until: datetime, issues: pd.DataFrame,
             left_out: list[queries.LeftOut]) -> Late:
        """What committed late into the overlap before `until`, given the `issues` just read
        after it. Nothing is read unless the overlap's counts (and for issues, the sum of
        their stamps) differ from what was read there."""
        since = until - _overlap()
        written = queries.written_counts(conn, since, until)
        counted = {"events": written.events, "movements": written.movements}
        late = {"events": pd.DataFrame(), "movements": pd.DataFrame()}
        for table, keys_since, by_key in (
                ("events", queries.event_keys_recorded_since, queries.events_by_id),
                ("movements", queries.movement_keys_recorded_since, queries.movements_by_id)):
            read = self._read[table]
            if counted[table] == read.count(epoch_ns(since), epoch_ns(until)):
                continue
            keys = keys_since(conn, since)
            keys = keys[keys["recorded_at"] <= kpis.instant(until)]
            unseen = set(keys["key"].tolist()) - read.keys()
            if unseen:
                late[table] = by_key(conn, unseen, left_out=left_out)
        issue_ids, issue_stamps = self._late_issues(conn, since, until, issues, written)
        return Late(late["events"], late["movements"], issue_ids, issue_stamps, bool(written.plan))

    def _late_issues(self, conn: Connection, since: datetime, until: datetime,
                     issues: pd.DataFrame, written: queries.Written) -> tuple[set, pd.DataFrame | None]:
        """An issue changes in place, so a count alone cannot tell a version that committed
        late from one read before: the stamps' sum can. The stamps known are those last read,
        `issues` (read after `until`) included: an issue changed again since has left the
        overlap."""
        low, high = queries.epoch_micros(since), queries.epoch_micros(until)
        newer = dict(zip(issues["id"].tolist(), issues["updated_at"].tolist()))
        known = [stamp for key, stamp in self._issue_stamps.items()
                 if key not in newer and low < stamp <= high]
        known += [stamp for stamp in newer.values() if low < stamp <= high]
        if written.issues == len(known) and written.issue_stamps == sum(known) - low * len(known):
            return set(), None
        stamps = queries.issue_stamps(conn, since, until)
        last_read = {**self._issue_stamps, **newer}
        return {key for key, stamp in zip(stamps["key"].tolist(), stamps["stamp"].tolist())
                if last_read.get(key) != stamp}, stamps

    def forget_before(self, since: datetime) -> None:
        for read in self._read.values():
            read.forget_before(epoch_ns(since))

    def forget_issues_before(self, since: datetime) -> None:
        """Forget the issues last stamped before the overlap: a later change stamps them
        again, inside it."""
        oldest = queries.epoch_micros(since)
        self._issue_stamps = {key: stamp for key, stamp in self._issue_stamps.items()
                              if stamp > oldest}


class IssueFollower:
    """The issues in play as numpy rows, and when each issue first went back to a department
    it had left, from its events: those of the issues raised in the last EVENT_HORIZON (the
    scoreboard's week), and of the older ones still unresolved (the board) as loaded or read
    again when they change; the instant is recomputed only for the issues that got new
    events."""

    def __init__(self, departments: list[str], issues: IssueColumns, events: pd.DataFrame,
                 left_out: Iterable[queries.LeftOut]) -> None:
        self._departments = departments
        columns = issues.as_dict()
        self._rows = _Rows(columns["id"].tolist(), columns)
        # Per issue whose events are kept: (event id, at in ns, department).
        self._events: dict[str, list[tuple]] = {}
        self._add_events(events)
        self.left_out = _LeftOut(left_out)

    def live(self) -> IssueColumns:
        return IssueColumns(*self._rows.live())

    def without_history(self, issues: pd.DataFrame, as_of: datetime) -> set:
        """The issues read again that are older than EVENT_HORIZON and unresolved at as_of
        but whose events are not kept (reopened, or forgotten since the full load): their
        whole history must be read."""
        older = issues["raised_at"] < kpis.instant(as_of - EVENT_HORIZON)
        unresolved = ~(issues["resolved_at"] <= kpis.instant(as_of)) & (issues["status"] != "cancelled")
        return {i for i in issues.loc[older & unresolved, "id"] if i not in self._events}

    def unkept(self, events: pd.DataFrame, as_of: datetime) -> set:
        """The issues of `events` whose events are not kept: to be read again, so that an
        older one still unresolved has its whole history read (`without_history`)."""
        return set(events.loc[~self._kept(events, as_of), "issue_id"])

    def _kept(self, events: pd.DataFrame, as_of: datetime) -> np.ndarray:
        return (events["issue_raised_at"] >= kpis.instant(as_of - EVENT_HORIZON)).to_numpy() \
            | np.fromiter((i in self._events for i in events["issue_id"]), dtype=bool, count=len(events))

    def follow(self, issues: pd.DataFrame, events: pd.DataFrame, history: pd.DataFrame,
               left_out: list[queries.LeftOut], as_of: datetime) -> None:
        """Take the issues and events read since the last read, the whole `history` of the
        issues `without_history` named, and the rows of them left out as implausible."""
        rejected = [left for left in left_out if left.table == queries.ISSUES.table]
        self._rows.retire(left.key for left in rejected)
        self.left_out.add(left for left in left_out
                          if left.table in (queries.ISSUES.table, queries.EVENTS.table))
        self.left_out.taken(queries.ISSUES.table, issues["id"])
        self.left_out.taken(queries.EVENTS.table, events["event_id"])
        if len(issues):
            columns = issue_columns(issues, self._departments)
            # When an issue went back to a department follows from its events, below.
            del columns["ping_pong"]
            self._rows.put(columns["id"].tolist(), columns)
        kept = self._kept(events, as_of)
        events = events[kept & ~events["issue_id"].isin(history["issue_id"]).to_numpy()]
        self._follow_ping_pong(self._add_events(events) | self._add_events(history))

    def _add_events(self, events: pd.DataFrame) -> set:
        """Keep `events` with their issues' others; the ids of the issues they belong to."""
        issue_ids = events["issue_id"].to_numpy(dtype=object)
        for issue_id, event_id, at, department in zip(
                issue_ids, events["event_id"].to_numpy(), ns(events["at"]),
                events["department_code"].to_numpy(dtype=object)):
            self._events.setdefault(issue_id, []).append((int(event_id), int(at), department))
        return set(issue_ids.tolist())

    def _follow_ping_pong(self, issue_ids: set) -> None:
        """Recompute when the issues that got new events first went back to a department."""
        issue_ids = [i for i in issue_ids if i in self._rows.row_of]
        if not issue_ids:
            return
        events = [(issue_id, *event) for issue_id in issue_ids for event in self._events[issue_id]
                  if event[2] is not None]
        returned = {}
        if events:
            issues, event_ids, at, departments = zip(*events)
            returned = dict(zip(*kpis.first_returns(
                np.array(issues, dtype=object), np.array(departments, dtype=object),
                np.array(at, dtype=np.int64), np.array(event_ids, dtype=np.int64))))
        self._rows.put(issue_ids, {"ping_pong": np.array(
            [returned.get(i, NEVER_NS) for i in issue_ids], dtype=np.int64)})

    def forget_before(self, as_of: datetime) -> None:
        """Retire the issues no window counts any more, and the events of those raised
        before the last EVENT_HORIZON (an older issue still unresolved keeps its mark, and
        its history is read again when it changes: `without_history`)."""
        columns, rows = self._rows.live()
        resolved, raised, ids = columns["resolved"][rows], columns["raised"][rows], columns["id"][rows]
        day_ago = epoch_ns(as_of - timedelta(days=1))
        done = (resolved < day_ago) | (columns["closed"][rows] < day_ago) | columns["cancelled"][rows]
        stale = (raised < epoch_ns(as_of - ISSUE_HORIZON)) & done
        self._rows.retire(ids[stale].tolist())
        for issue_id in ids[(raised < epoch_ns(as_of - EVENT_HORIZON)) | stale].tolist():
            self._events.pop(issue_id, None)
        self.left_out.forget_before(as_of)


class LotFollower:
    """Where every lot sits, kept from the movements: a move changes the positions it
    leaves and enters once its time has come."""

    def __init__(self, lots: pd.DataFrame, pending: pd.DataFrame, locations: pd.DataFrame,
                 left_out: Iterable[queries.LeftOut]) -> None:
        self._locations = {code: (kind, dwell) for code, kind, dwell in zip(
            locations["code"], locations["kind"], locations["max_dwell_minutes"])}
        self._rows = _Rows(zip(lots["lot"], lots["material_code"], lots["location_code"]), {
            "lot": lots["lot"].to_numpy(dtype=object),
            "material_code": lots["material_code"].to_numpy(dtype=object),
            "location_code": lots["location_code"].to_numpy(dtype=object),
            "location_kind": lots["location_kind"].to_numpy(dtype=object),
            "qty": lots["qty"].to_numpy(dtype=np.float64),
            "last_in": _arrival_ns(lots["last_in_at"]),
            "max_dwell_minutes": lots["max_dwell_minutes"].to_numpy(dtype=np.float64)})
        # Moves booked for a later time: (at in ns, lot, material, qty, from, to).
        self._pending: list[tuple] = []
        self.add_moves(pending)
        self.left_out = _LeftOut(left_out)

    def frame(self) -> pd.DataFrame:
        return _lot_frame(*self._rows.live())

    def follow(self, moves: pd.DataFrame, left_out: list[queries.LeftOut], as_of: datetime) -> None:
        """Take the movements read since the last read (the implausible ones move nothing)."""
        self.left_out.add(left for left in left_out if left.table == queries.MOVEMENTS.table)
        self.left_out.taken(queries.MOVEMENTS.table, moves["id"])
        self.add_moves(moves)
        self._apply_due(as_of)

    def add_moves(self, moves: pd.DataFrame) -> None:
        if len(moves):
            self._pending.extend(zip(
                ns(moves["at"]).tolist(), moves["lot"].tolist(), moves["material_code"].tolist(),
                moves["qty"].tolist(), moves["from_location_code"].tolist(),
                moves["to_location_code"].tolist()))

    def _apply_due(self, as_of: datetime) -> None:
        """Add the moves that have happened by as_of to the lots' positions: each changed
        position is its balance before plus the moves in and out, its last arrival the
        latest; a position that empties leaves."""
        at = epoch_ns(as_of)
        due = [move for move in self._pending if move[0] <= at]
        if not due:
            return
        self._pending = [move for move in self._pending if move[0] > at]
        changes: dict[tuple, list] = {}
        for arrived, lot, material, qty, source, target in due:
            if self._locations.get(target, ("",))[0] in queries.STOCK_KINDS:
                change = changes.setdefault((lot, material, target), [0.0, _NO_ARRIVAL])
                change[0] += qty
                change[1] = max(change[1], arrived)
            if self._locations.get(source, ("",))[0] in queries.STOCK_KINDS:
                changes.setdefault((lot, material, source), [0.0, _NO_ARRIVAL])[0] -= qty
        keys = list(changes)
        lots = self._rows
        qty = lots.get(keys, "qty", 0.0) + np.array([c[0] for c in changes.values()])
        arrived = np.maximum(lots.get(keys, "last_in", _NO_ARRIVAL),
                             np.array([c[1] for c in changes.values()], dtype=np.int64))
        where = [self._locations[location] for _, _, location in keys]
        lots.put(keys, {
            "lot": np.array([k[0] for k in keys], dtype=object),
            "material_code": np.array([k[1] for k in keys], dtype=object),
            "location_code": np.array([k[2] for k in keys], dtype=object),
            "location_kind": np.array([w[0] for w in where], dtype=object),
            "qty": qty, "last_in": arrived,
            "max_dwell_minutes": np.array([w[1] for w in where], dtype=np.float64)})
        lots.retire(key for key, left in zip(keys, qty) if left <= queries.QTY_EPSILON)


class PlanReader:
    """The shifts starting in the PLAN_HORIZON before as_of (queries.production_plan), read
    with an hour to spare and read again only after plan rows were written or when as_of
    leaves what was read."""

    def __init__(self) -> None:
        self._plan = pd.DataFrame()
        self._span: tuple[datetime, datetime] | None = None
        self.left_out: list[queries.LeftOut] = []

    def written(self) -> None:
        self._span = None

    def at(self, conn: Connection, as_of: datetime) -> pd.DataFrame:
        since = as_of - PLAN_HORIZON
        if self._span is None or not self._span[0] <= since < as_of <= self._span[1]:
            self._span = (since, as_of + _PLAN_AHEAD)
            self.left_out = []
            self._plan = queries.production_plan(conn, *self._span, left_out=self.left_out)
        start = self._plan["shift_start"]
        return self._plan[(start >= kpis.instant(since)) & (start < kpis.instant(as_of))] \
            .reset_index(drop=True)


class WallState:
    """One process's incremental copy of the overview's frames: the watermark and the bulk
    version it follows from, and the followers of each table."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: int | None = None
        self._watermark: datetime | None = None
        # The clock's offset from the monotonic clock when the watermark was read.
        self._clock_offset = 0.0
        self._names: dict = {}
        self._empty = False
        self._issues: IssueFollower | None = None
        self._lots: LotFollower | None = None
        self._plan = PlanReader()
        self._overlap = Overlap()
        self._frames: WallFrames | None = None
        self._frames_as_of: datetime | None = None
        self._forgot_at: datetime | None = None

    def frames(self, conn: Connection, as_of: datetime) -> WallFrames:
        """The frames at as_of: a full load the first time or after a bulk write, else the
        last frames plus what was written since."""
        with self._lock:
            version = queries.data_version(conn)
            if self._frames is not None and as_of == self._frames_as_of and version == self._version:
                # Every scope of one refresh interval: one follow, one set of frames.
                return self._frames
            if version != self._version or self._watermark is None or self._stepped_back():
                self._load(conn, as_of, version)
            else:
                self._follow(conn, as_of)
            self._forget_before(as_of)
            plan = self._plan.at(conn, as_of)
            self._frames_as_of = as_of
            self._frames = WallFrames(
                names=self._names, issues=self._issues.live(), lots=self._lots.frame(), plan=plan,
                left_out=(*self._issues.left_out.rows.values(), *self._lots.left_out.rows.values(),
                          *self._plan.left_out),
                empty_database=self._empty)
            return self._frames

    def _stepped_back(self) -> bool:
        """Whether the server's clock was stepped back since the last read, however long
        ago and whether or not it has caught up since."""
        back = self._clock_offset - timezones.clock_offset()
        if back <= timezones.CLOCK_STEP_S:
            return False
        log.warning("the server's clock was stepped back %.0f s since the wall last read the "
                    "database: rows written since may be stamped before what it has read, so it "
                    "reads everything again", back)
        return True

    def _load(self, conn: Connection, as_of: datetime, version: int) -> None:
        watermark, clock_offset = timezones.utc_now(), timezones.clock_offset()
        since = watermark - _overlap()
        left_out: list[queries.LeftOut] = []
        with _one_snapshot(conn) as snap:
            full, events = load_frames_and_events(snap, as_of)
            # What the overlap will count again is already in the frames: remember it.
            read = {"events": queries.event_keys_recorded_since(snap, since),
                    "movements": queries.movement_keys_recorded_since(snap, since)}
            issue_stamps = queries.issue_stamps(snap, since)
            pending = queries.movements_after(snap, as_of, left_out=left_out)
            locations = queries.locations(snap)
        left_out += full.left_out
        self._names, self._empty = full.names, full.empty_database
        self._issues = IssueFollower(list(full.names["departments"]), full.issues, events, [
            left for left in left_out if left.table in (queries.ISSUES.table, queries.EVENTS.table)])
        self._lots = LotFollower(full.lots, pending, locations, [
            left for left in left_out if left.table in (queries.MOVEMENTS.table, queries.LOTS.table)])
        self._overlap = Overlap(read, issue_stamps)
        self._plan = PlanReader()
        self._version, self._watermark, self._clock_offset = version, watermark, clock_offset

    def _follow(self, conn: Connection, as_of: datetime) -> None:
        """Read what was written since the last read, and by key what committed late into
        the overlap before it."""
        watermark, clock_offset = timezones.utc_now(), timezones.clock_offset()
        left_out: list[queries.LeftOut] = []
        events = queries.events_recorded_since(conn, self._watermark, left_out=left_out)
        events = events[self._overlap.unread("events", events["event_id"].to_numpy(), self._watermark)]
        moves = queries.movements_written_since(conn, self._watermark, left_out=left_out)
        moves = moves[self._overlap.unread("movements", moves["id"].to_numpy(dtype=object),
                                           self._watermark)]
        issues = self._overlap.unread_issues(
            queries.issues_written_since(conn, self._watermark, left_out=left_out))
        late = self._overlap.late(conn, self._watermark, issues, left_out)
        if late.plan_written:
            self._plan.written()
        if len(late.events):
            events = pd.concat([events, late.events])
        # By id: the issues that committed late into the overlap, and those of events whose
        # issue's events are not kept (another program may add an event without changing
        # the issue): an older issue's history follows.
        missed = (late.issue_ids | self._issues.unkept(events, as_of)) - set(issues["id"]) \
            - {left.key for left in left_out if left.table == queries.ISSUES.table}
        if missed:
            issues = pd.concat([issues, queries.issues_by_id(conn, missed, left_out=left_out)])
        if len(late.movements):
            moves = pd.concat([moves, late.movements])
        reopened = self._issues.without_history(issues, as_of)
        history = queries.events_of_issues(conn, reopened, left_out=left_out) if reopened \
            else events.iloc[:0]
        self._overlap.took("events", events["event_id"].to_numpy(), ns(events["recorded_at"]))
        self._overlap.took("movements", moves["id"].to_numpy(dtype=object), ns(moves["recorded_at"]))
        if late.issue_stamps is not None:
            self._overlap.took_issues(late.issue_stamps["key"], late.issue_stamps["stamp"])
        self._overlap.took_issues(issues["id"], issues["updated_at"])
        self._took_left_out(left_out)
        self._overlap.forget_issues_before(self._watermark - _overlap())
        self._issues.follow(issues, events, history, left_out, as_of)
        self._lots.follow(moves, left_out, as_of)
        if len(issues) or len(moves) or left_out:
            self._empty = False
        self._watermark, self._clock_offset = watermark, clock_offset

    def _took_left_out(self, left_out: list[queries.LeftOut]) -> None:
        """The overlap counts rows left out as read too, so they are not looked for again."""
        for table, source, key in (("events", queries.EVENTS, "event_id"),
                                   ("movements", queries.MOVEMENTS, "id")):
            rows = [left.row for left in left_out
                    if left.table == source.table and left.row["recorded_at"] is not None]
            if rows:
                self._overlap.took(table, np.array([row[key] for row in rows], dtype=object),
                                   ns(pd.Series([row["recorded_at"] for row in rows])))
        issues = [left.row for left in left_out if left.table == queries.ISSUES.table]
        self._overlap.took_issues(pd.Series([row["id"] for row in issues], dtype=object),
                                  pd.Series([row["updated_at"] for row in issues], dtype=object))

    def _forget_before(self, as_of: datetime) -> None:
        """Retire what no screen can count any more, so memory follows the window, not the
        history. Rows outside every window change no figure, so this runs every 15 minutes of
        as_of, not on every refresh."""
        if self._forgot_at is not None and abs(as_of - self._forgot_at) < _FORGET_EVERY:
            return
        self._forgot_at = as_of
        self._issues.forget_before(as_of)
        self._overlap.forget_before(self._watermark - _overlap())


def _lot_frame(columns: dict[str, np.ndarray], rows: np.ndarray) -> pd.DataFrame:
    """The live positions in the shape of queries.lot_positions."""
    last_in = pd.Series(columns["last_in"][rows].view("M8[ns]")).dt.tz_localize("UTC")
    return pd.DataFrame({
        "lot": columns["lot"][rows], "material_code": columns["material_code"][rows],
        "location_code": columns["location_code"][rows],
        "location_kind": columns["location_kind"][rows], "qty": columns["qty"][rows],
        "last_in_at": last_in, "max_dwell_minutes": columns["max_dwell_minutes"][rows]})


def _arrival_ns(instants: pd.Series) -> np.ndarray:
    return np.where(instants.isna().to_numpy(), _NO_ARRIVAL, instants.array.as_unit("ns").asi8)


def _overlap() -> timedelta:
    return timedelta(seconds=settings.get_int("FOLLOW_OVERLAP_S"))


@contextmanager
def _one_snapshot(conn: Connection) -> Iterator[Connection]:
    """A read transaction that sees one state of the database for all its statements."""
    if conn.in_transaction():
        conn.rollback()
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ")
    with conn.begin() as transaction:
        yield conn
        transaction.rollback()
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="READ COMMITTED")
