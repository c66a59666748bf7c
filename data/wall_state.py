"""The overview's frames kept current from watermarks instead of re-read every refresh.

A wall refresh needs every issue of the last month, the last week's events and where every
lot sits. Reading them in full costs what the history costs; following them costs what
changed since the last refresh. `WallState` loads the frames once (`data.wall.load_frames`),
then on each refresh reads only the issues, events and movements written after its
watermark, less an overlap: PostgreSQL commits out of the order rows were stamped, so a
row stamped just before the watermark may commit just after it. The overlap is read as
keys only (an issue's key includes the stamp of its last write); the rows stamped after the
watermark are read in full by one range read, and a row that committed late into the
overlap by its key, so the overlap costs little at any rate and no row is taken twice.
The events are kept to know when each recent issue first went back to a department it had
left; that instant is recomputed only for the issues that got new events.

Bulk writers (import, demo plant) raise a version counter instead of being followed row by
row; a new version means a full reload. Writers must commit within FOLLOW_OVERLAP_S of
stamping a row (data.store's transactions take milliseconds).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Iterator

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from data import kpis, queries, settings, store, timezones, wall

# NaT as an integer: a move out of a location is no arrival there.
_NO_ARRIVAL = np.iinfo(np.int64).min
# How often rows that no window counts any more are dropped (in as_of time).
_FORGET_EVERY = timedelta(minutes=15)


class WallState:
    """One process's incremental copy of the overview's frames."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: int | None = None
        self._watermark: datetime | None = None
        self._names: dict = {}
        self._locations = pd.DataFrame()
        self._issues = pd.DataFrame()
        self._events = pd.DataFrame()
        self._positions = pd.DataFrame()
        self._pending_moves = pd.DataFrame()
        self._seen: dict[str, set] = {}
        self._ping_pong_at = pd.Series(dtype="datetime64[ns, UTC]")
        self._frames: wall.WallFrames | None = None
        self._frames_as_of: datetime | None = None
        self._forgot_at: datetime | None = None

    def frames(self, conn: Connection, as_of: datetime) -> wall.WallFrames:
        """The frames at as_of: a full load the first time or after a bulk write, else the
        last frames plus what was written since."""
        with self._lock:
            version = store.bulk_version(conn)
            if self._frames is not None and as_of == self._frames_as_of and version == self._version:
                # Every scope of one refresh interval: one follow, one set of frames.
                return self._frames
            if version != self._version or self._watermark is None:
                self._load(conn, as_of, version)
            else:
                self._follow(conn, as_of)
            self._forget_before(as_of)
            self._frames_as_of = as_of
            self._frames = wall.WallFrames(
                names=self._names, issues=self._issues, ping_pong_at=self._ping_pong_at,
                lots=self._positions,
                plan=queries.production_plan(conn, as_of - wall.PLAN_HORIZON, as_of))
            return self._frames

    # ---- full load -------------------------------------------------------------------

    def _load(self, conn: Connection, as_of: datetime, version: int) -> None:
        watermark = timezones.utc_now()
        with _one_snapshot(conn) as snap:
            full, events = wall.load_frames_and_events(snap, as_of)
            # What the overlap will show again is already in the frames: remember its keys.
            self._seen = _written_keys(snap, watermark - _overlap())
            pending = queries.movements_after(snap, as_of)
            self._locations = queries.locations(snap).set_index("code")
        self._names = full.names
        self._issues = _by_id(full.issues)
        self._events = events
        self._ping_pong_at = full.ping_pong_at
        self._positions = full.lots.set_index(_position_keys(full.lots))
        self._pending_moves = pending
        self._version, self._watermark = version, watermark

    # ---- following -------------------------------------------------------------------

    def _follow(self, conn: Connection, as_of: datetime) -> None:
        """Read what was written since the last read: the keys of the whole overlap, the
        rows stamped after the last watermark in full, and by key the rows that committed
        late into the overlap; rows already seen are not taken twice."""
        watermark = timezones.utc_now()
        written = _written_keys(conn, self._watermark - _overlap())
        unseen = {name: written[name] - self._seen[name] for name in _WRITTEN}
        if unseen["issues"]:
            changed = self._fresh(conn, {issue_id for issue_id, _ in unseen["issues"]}, "id",
                                  queries.issues_written_since, queries.issues_by_id)
            self._issues = _replaced(self._issues, _by_id(changed))
        if unseen["events"]:
            raised_since = as_of - wall.EVENT_HORIZON
            new = self._fresh(
                conn, unseen["events"], "event_id",
                lambda c, since: queries.events_written_since(c, since, raised_since),
                lambda c, ids: queries.events_by_id(c, ids, raised_since))
            self._events = pd.concat([self._events, new])
            self._follow_ping_pong(set(new["issue_id"]))
        if unseen["movements"]:
            new = self._fresh(conn, unseen["movements"], "id", queries.movements_written_since,
                              queries.movements_by_id)
            self._pending_moves = pd.concat([self._pending_moves, new]) \
                if not self._pending_moves.empty else new
        # Rows older than the overlap never come back: the keys in it now are all to keep.
        self._seen = written
        self._apply_due_moves(as_of)
        self._watermark = watermark

    def _follow_ping_pong(self, issue_ids: set) -> None:
        """Recompute when the issues that got new events first went back to a department."""
        touched = self._events[self._events["issue_id"].isin(issue_ids)]
        kept = self._ping_pong_at[~self._ping_pong_at.index.isin(issue_ids)]
        self._ping_pong_at = pd.concat([kept, kpis.ping_pong_since(touched)])

    def _fresh(self, conn: Connection, keys: set, key_column: str, written_since, by_keys) -> pd.DataFrame:
        """The rows of `keys`: those stamped after the last watermark by one range read,
        the few that committed late (stamped before it) by key."""
        fresh = written_since(conn, self._watermark)
        fresh = fresh[fresh[key_column].isin(keys)]
        late = keys - set(fresh[key_column])
        if late:
            fresh = pd.concat([fresh, by_keys(conn, late)])
        return fresh

    def _apply_due_moves(self, as_of: datetime) -> None:
        """Add the moves that have happened by as_of to the lots' positions."""
        at = kpis.instant(as_of)
        due = self._pending_moves[self._pending_moves["at"] <= at]
        self._pending_moves = self._pending_moves[self._pending_moves["at"] > at]
        if due.empty:
            return
        stock = self._locations[self._locations["kind"].isin(queries.STOCK_KINDS)]
        # Arrival instants as integers (NaT is the smallest), so a group's latest is a
        # vectorised max rather than pandas' slow path for instants.
        arrivals = due.assign(location_code=due["to_location_code"],
                              in_ns=due["at"].array.as_unit("ns").asi8)
        departures = due.assign(location_code=due["from_location_code"], qty=-due["qty"],
                                in_ns=_NO_ARRIVAL)
        flows = pd.concat([arrivals, departures])
        flows = flows[flows["location_code"].isin(stock.index)]
        change = flows.groupby(["lot", "material_code", "location_code"], sort=False).agg(
            moved=("qty", "sum"), in_ns=("in_ns", "max")).reset_index()
        change.index = _position_keys(change)
        before = self._positions.reindex(change.index)
        latest = np.maximum(before["last_in_at"].array.as_unit("ns").asi8, change["in_ns"].to_numpy())
        where = stock.reindex(change["location_code"])
        changed = pd.DataFrame({
            "lot": change["lot"], "material_code": change["material_code"],
            "location_code": change["location_code"], "location_kind": where["kind"].to_numpy(),
            "qty": before["qty"].fillna(0.0).to_numpy() + change["moved"].to_numpy(),
            "last_in_at": pd.Series(latest.view("M8[ns]"), index=change.index).dt.tz_localize("UTC"),
            "max_dwell_minutes": where["max_dwell_minutes"].to_numpy(dtype="float64"),
        }, index=change.index)
        # Only a changed position can have emptied: the others keep their positive stock.
        changed = changed[changed["qty"] > queries.QTY_EPSILON]
        self._positions = _replaced(self._positions, changed[self._positions.columns],
                                    gone=change.index)

    def _forget_before(self, as_of: datetime) -> None:
        """Drop what no screen can count any more, so memory follows the window, not the
        history. Rows outside every window change no figure, so this runs every 15 minutes of
        as_of, not on every refresh."""
        if self._forgot_at is not None and abs(as_of - self._forgot_at) < _FORGET_EVERY:
            return
        self._forgot_at = as_of
        at = kpis.instant(as_of)
        issues = self._issues
        done = (issues["resolved_at"].notna() & (issues["resolved_at"] < at - timedelta(days=1))) \
            | (issues["status"] == "cancelled")
        stale = (issues["raised_at"] < at - wall.ISSUE_HORIZON) & done
        self._issues = issues[~stale]
        recent = self._issues.index[self._issues["raised_at"] >= at - wall.EVENT_HORIZON]
        self._events = self._events[self._events["issue_id"].isin(recent)]


def _replaced(frame: pd.DataFrame, rows: pd.DataFrame, gone: pd.Index | None = None) -> pd.DataFrame:
    """`frame` with the rows of `gone` (default: of `rows`) taken out and `rows` put in."""
    gone = rows.index if gone is None else gone
    drop = frame.index.get_indexer(gone)
    keep = np.ones(len(frame), dtype=bool)
    keep[drop[drop >= 0]] = False
    kept = frame[keep]
    return pd.concat([kept, rows]) if len(kept) else rows


def _position_keys(frame: pd.DataFrame) -> pd.Index:
    """One key per lot, material and location (a flat index joins far faster than three
    levels)."""
    return pd.Index(frame["lot"].astype(str) + "\x1f" + frame["material_code"].astype(str)
                    + "\x1f" + frame["location_code"].astype(str), name=None)


_WRITTEN = ("issues", "events", "movements")


def _overlap() -> timedelta:
    return timedelta(seconds=settings.get_int("FOLLOW_OVERLAP_S"))


def _written_keys(conn: Connection, since: datetime) -> dict[str, set]:
    """The keys of every row written after `since`, per table."""
    return {"issues": queries.issue_versions_written_since(conn, since),
            "events": queries.event_ids_recorded_since(conn, since),
            "movements": queries.movement_ids_recorded_since(conn, since)}


def _by_id(issues: pd.DataFrame) -> pd.DataFrame:
    return issues.set_index(issues["id"].rename(None))


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
