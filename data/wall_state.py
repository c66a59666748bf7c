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
row; a new version means a full reload. Writers must commit within OVERLAP of stamping a
row (data.store's transactions take milliseconds).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Iterator

import pandas as pd
from sqlalchemy.engine import Connection

from data import kpis, queries, store, timezones, wall

OVERLAP = timedelta(minutes=2)
_POSITION_KEY = ["lot", "material_code", "location_code"]


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
                lots=self._lot_positions(),
                plan=queries.production_plan(conn, as_of - wall.PLAN_HORIZON, as_of))

    # ---- full load -------------------------------------------------------------------

    def _load(self, conn: Connection, as_of: datetime, version: int) -> None:
        watermark = timezones.utc_now()
        with _one_snapshot(conn) as snap:
            full = wall.load_frames(snap, as_of)
            # What the overlap will show again is already in the frames: remember its keys.
            self._seen = _written_keys(snap, watermark - OVERLAP)
            pending = queries.movements_after(snap, as_of)
            self._locations = queries.locations(snap).set_index("code")
        self._names = full.names
        self._issues = _by_id(full.issues)
        self._events = full.events
        self._positions = full.lots[_POSITION_KEY + ["qty", "last_in_at"]].set_index(_POSITION_KEY)
        self._pending_moves = pending
        self._version, self._watermark = version, watermark

    # ---- following -------------------------------------------------------------------

    def _follow(self, conn: Connection, as_of: datetime) -> None:
        """Read the rows written since the last watermark (less the overlap) that this
        state has not seen: their keys first, then the unseen rows in full."""
        watermark = timezones.utc_now()
        written = _written_keys(conn, self._watermark - OVERLAP)
        issues, events, moves = (written[name] - self._seen[name] for name in _WRITTEN)
        if issues:
            changed = _by_id(queries.issues_by_id(conn, {issue_id for issue_id, _ in issues}))
            kept = self._issues[~self._issues.index.isin(changed.index)]
            self._issues = pd.concat([kept, changed]) if not kept.empty else changed
        if events:
            new = queries.events_by_id(conn, events, as_of - wall.EVENT_HORIZON)
            self._events = pd.concat([self._events, new]).drop_duplicates("event_id", keep="last")
        if moves:
            new = queries.movements_by_id(conn, moves)
            self._pending_moves = pd.concat([self._pending_moves, new]) \
                if not self._pending_moves.empty else new
        # Rows older than the overlap never come back: the keys in it now are all to keep.
        self._seen = written
        self._apply_due_moves(as_of)
        self._watermark = watermark

    def _apply_due_moves(self, as_of: datetime) -> None:
        """Add the moves that have happened by as_of to the lots' positions."""
        at = kpis.instant(as_of)
        due = self._pending_moves[self._pending_moves["at"] <= at]
        self._pending_moves = self._pending_moves[self._pending_moves["at"] > at]
        if due.empty:
            return
        stock = self._locations.index[self._locations["kind"].isin(queries.STOCK_KINDS)]
        arrivals = due.assign(location_code=due["to_location_code"], last_in_at=due["at"])
        departures = due.assign(location_code=due["from_location_code"], qty=-due["qty"],
                                last_in_at=pd.NaT)
        flows = pd.concat([arrivals, departures])
        flows = flows[flows["location_code"].isin(stock)]
        change = flows.groupby(_POSITION_KEY).agg(qty=("qty", "sum"), last_in_at=("last_in_at", "max"))
        merged = self._positions.join(change, how="outer", suffixes=("", "_new"))
        merged["qty"] = merged["qty"].fillna(0.0) + merged["qty_new"].fillna(0.0)
        merged["last_in_at"] = merged[["last_in_at", "last_in_at_new"]].max(axis=1)
        self._positions = merged[["qty", "last_in_at"]]

    def _forget_before(self, as_of: datetime) -> None:
        """Drop what no screen can count any more, so memory follows the window, not history."""
        at = kpis.instant(as_of)
        issues = self._issues
        stale = (issues["raised_at"] < at - wall.ISSUE_HORIZON) & issues["resolved_at"].notna() \
            & (issues["resolved_at"] < at - timedelta(days=1))
        self._issues = issues[~stale]
        recent = self._issues.index[self._issues["raised_at"] >= at - wall.EVENT_HORIZON]
        self._events = self._events[self._events["issue_id"].isin(recent)]
        self._positions = self._positions[self._positions["qty"] > queries.QTY_EPSILON]

    def _lot_positions(self) -> pd.DataFrame:
        """Positions in the shape of data.queries.lot_positions."""
        positions = self._positions.reset_index()
        where = self._locations.reindex(positions["location_code"])
        frame = positions.assign(location_kind=where["kind"].to_numpy(),
                                 max_dwell_minutes=where["max_dwell_minutes"].to_numpy())
        frame = frame[frame["location_kind"].isin(queries.STOCK_KINDS)]
        return frame[list(queries.LOT_COLUMNS)].sort_values(
            ["location_code", "lot", "material_code"], ignore_index=True)


_WRITTEN = ("issues", "events", "movements")


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
