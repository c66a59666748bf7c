"""The overview's frames kept current from watermarks instead of re-read every refresh.

A wall refresh needs every issue of the last month, the last week's events and where every
lot sits. Reading them in full costs what the history costs; following them costs what
changed since the last refresh. `WallState` loads the frames once (`data.wall.load_frames`),
then on each refresh reads only the issues, events and movements written after its
watermark, less an overlap: PostgreSQL commits out of the order rows were stamped, so a
row stamped just before the watermark may commit just after it. The overlap is read as
keys only (an issue's key includes the stamp of its last write), and only the rows whose
keys this state has not seen are read in full, so the overlap costs little at any rate.

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
# Rows that no window counts any more are dropped once they are this share of a frame.
_STALE_SHARE = 0.02


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

    def frames(self, conn: Connection, as_of: datetime) -> wall.WallFrames:
        """The frames at as_of: a full load the first time or after a bulk write, else the
        last frames plus what was written since."""
        with self._lock:
            version = store.bulk_version(conn)
            if version != self._version or self._watermark is None:
                self._load(conn, as_of, version)
            else:
                self._follow(conn, as_of)
            self._forget_before(as_of)
            return wall.WallFrames(
                names=self._names, issues=self._issues, events=self._events,
                lots=self._positions,
                plan=queries.production_plan(conn, as_of - wall.PLAN_HORIZON, as_of))

    # ---- full load -------------------------------------------------------------------

    def _load(self, conn: Connection, as_of: datetime, version: int) -> None:
        watermark = timezones.utc_now()
        with _one_snapshot(conn) as snap:
            full = wall.load_frames(snap, as_of)
            # What the overlap will show again is already in the frames: remember its keys.
            self._seen = _written_keys(snap, watermark - _overlap())
            pending = queries.movements_after(snap, as_of)
            self._locations = queries.locations(snap).set_index("code")
        self._names = full.names
        self._issues = _by_id(full.issues)
        self._events = full.events
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
            changed = _by_id(changed)
            kept = self._issues[~self._issues.index.isin(changed.index)]
            self._issues = pd.concat([kept, changed]) if not kept.empty else changed
        if unseen["events"]:
            raised_since = as_of - wall.EVENT_HORIZON
            new = self._fresh(
                conn, unseen["events"], "event_id",
                lambda c, since: queries.events_written_since(c, since, raised_since),
                lambda c, ids: queries.events_by_id(c, ids, raised_since))
            self._events = pd.concat([self._events, new])
        if unseen["movements"]:
            new = self._fresh(conn, unseen["movements"], "id", queries.movements_written_since,
                              queries.movements_by_id)
            self._pending_moves = pd.concat([self._pending_moves, new]) \
                if not self._pending_moves.empty else new
        # Rows older than the overlap never come back: the keys in it now are all to keep.
        self._seen = written
        self._apply_due_moves(as_of)
        self._watermark = watermark

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
        change = flows.groupby(_position_keys(flows)).agg(
            lot=("lot", "first"), material_code=("material_code", "first"),
            location_code=("location_code", "first"), moved=("qty", "sum"), in_ns=("in_ns", "max"))
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
        kept = self._positions[~self._positions.index.isin(change.index)]
        self._positions = pd.concat([kept, changed[kept.columns]])

    def _forget_before(self, as_of: datetime) -> None:
        """Drop what no screen can count any more, so memory follows the window, not the
        history. Rows outside every window change no figure, so they are dropped only
        once they are a noticeable share, not by a copy of every frame on every refresh."""
        at = kpis.instant(as_of)
        issues = self._issues
        stale = (issues["raised_at"] < at - wall.ISSUE_HORIZON) & issues["resolved_at"].notna() \
            & (issues["resolved_at"] < at - timedelta(days=1))
        if stale.sum() > _STALE_SHARE * len(issues):
            self._issues = issues[~stale]
        old = ~self._events["issue_id"].isin(
            self._issues.index[self._issues["raised_at"] >= at - wall.EVENT_HORIZON])
        if old.sum() > _STALE_SHARE * len(self._events):
            self._events = self._events[~old]
        empty = self._positions["qty"] <= queries.QTY_EPSILON
        if empty.any():
            self._positions = self._positions[~empty]


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
