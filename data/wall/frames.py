"""What every wall screen is computed from: the frames of one refresh, read in full here
(the reference for data/wall/follower.py, which keeps the same frames current), and the
helpers every page's figures share: the data errors, the panels computed one by one, the
shortage rule."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import kpis, queries, settings
from data.models import Location, Material, SlaRule
from data.wall.columns import MINUTE_NS, IssueColumns, epoch_ns, issue_columns, ns

log = logging.getLogger(__name__)

TREND_DAYS = 30
# Quantities on screen: sums of moves carry float noise past this many decimals.
QTY_DECIMALS = 6
# Rows a list panel is sent at most; the snapshot also carries the list's full total.
LIST_ROWS = 50
# Data errors a snapshot shows by example; it counts them all.
ERROR_EXAMPLES = 5


def display_names(conn: Connection) -> dict:
    """Display names of departments, issue types, locations and materials."""
    departments = queries.departments(conn)
    rules = conn.execute(select(SlaRule.issue_type, SlaRule.name_zh, SlaRule.name_en)).all()
    locations = conn.execute(select(Location.code, Location.name, Location.line)).all()
    materials = conn.execute(select(Material.code, Material.name)).all()
    return {
        "departments": {r.code: {"name_zh": r.name_zh, "name_en": r.name_en}
                        for r in departments.itertuples()},
        "issue_types": {r.issue_type: {"name_zh": r.name_zh, "name_en": r.name_en} for r in rules},
        "locations": {r.code: r.name for r in locations},
        "location_lines": {r.code: r.line for r in locations},
        "materials": dict(materials),
    }



@dataclass(frozen=True)
class WallFrames:
    """What the overview is computed from: every issue it may count (the window's, and the
    ones open now or a day ago) as columns, where the lots sit (queries.LOT_COLUMNS), and
    the last shifts (queries.PLAN_COLUMNS), for every line; every scope of one refresh
    shares them. `left_out` holds the rows read and left out as implausible (see
    `data_errors`); `empty_database` says the plant has no issue and no movement at all."""
    names: dict
    issues: IssueColumns
    lots: pd.DataFrame
    plan: pd.DataFrame
    left_out: tuple[queries.LeftOut, ...] = ()
    empty_database: bool = False


# How far back the overview looks: the 30-day trend from the site's midnight, with a day spare.
ISSUE_HORIZON = timedelta(days=TREND_DAYS + 1)
EVENT_HORIZON = timedelta(days=8)
PLAN_HORIZON = timedelta(hours=36)


def load_frames(conn: Connection, as_of: datetime) -> WallFrames:
    """The overview's frames read in full from the database (the reference for the
    incremental reader in data/wall/follower.py, which must give the same frames)."""
    return load_frames_and_events(conn, as_of)[0]


def load_frames_and_events(conn: Connection, as_of: datetime) -> tuple[WallFrames, pd.DataFrame]:
    """The frames, and the events they were derived from: those of the issues raised in the
    last EVENT_HORIZON (the scoreboard's week) and of the older ones still unresolved (the
    board), so that each knows when it went back to a department it had left."""
    left_out: list[queries.LeftOut] = []
    issues = queries.issues_in_play(conn, as_of - ISSUE_HORIZON, as_of - timedelta(days=1),
                                    left_out=left_out)
    events = queries.events_of_issues_in_play(conn, as_of - EVENT_HORIZON, as_of, left_out=left_out)
    names = display_names(conn)
    columns = issue_columns(issues, list(names["departments"]), kpis.ping_pong_since(events))
    lots = queries.lot_positions(conn, as_of, left_out=left_out)
    plan = queries.production_plan(conn, as_of - PLAN_HORIZON, as_of, left_out=left_out)
    left_out += queries.implausible_movements(conn)
    frames = WallFrames(names=names, issues=IssueColumns(columns), lots=lots, plan=plan,
                        left_out=tuple(left_out), empty_database=queries.plant_is_empty(conn))
    return frames, events


def counts_at(left: queries.LeftOut, as_of: datetime) -> bool:
    """Whether a row left out would be in the frames at as_of, had it been plausible: the
    same windows as the frames' reads (a movement or a lot position counts as long as it is
    there)."""
    row = left.row
    if left.table == queries.ISSUES.table:
        return queries.in_play(row, as_of - ISSUE_HORIZON, as_of - timedelta(days=1))
    if left.table == queries.EVENTS.table:     # counted for the scoreboard's issues only
        return row["issue_raised_at"] is None or row["issue_raised_at"] >= as_of - EVENT_HORIZON
    if left.table == queries.PLAN.table:
        start = row["shift_start"]
        return start is None or as_of - PLAN_HORIZON <= start < as_of
    return True


def data_errors(left_out: Iterable[queries.LeftOut], as_of: datetime) -> dict:
    """The rows the frames at as_of would hold but left out, for whoever maintains the data:
    how many, and the first few by table and key."""
    rows = {(left.table, left.key): left for left in left_out if counts_at(left, as_of)}
    examples = [rows[key] for key in sorted(rows)[:ERROR_EXAMPLES]]
    return {"count": len(rows),
            "examples": [{"table": e.table, "key": e.key, "column": e.column, "value": e.value,
                          "reason": e.reason} for e in examples]}


class PartFailed(RuntimeError):
    """A part of a snapshot could not be computed because a part it needs failed."""


class _Done(dict):
    """The parts computed so far; reading one that failed fails the reader."""

    def __missing__(self, name: str):
        raise PartFailed(f"needs the {name} part, which failed")


def computed_parts(page: str, parts: dict[str, Callable[[dict], Any]]) -> tuple[dict, list[str]]:
    """Each part of a page's snapshot computed on its own, in order, from the parts before it:
    one that raises is logged with its traceback and reported as failed (None), and the
    others are still computed. A part that reads a failed one fails too."""
    done = _Done()
    failed: list[str] = []
    for name, compute in parts.items():
        try:
            done[name] = compute(done)
        except PartFailed as exc:
            log.warning("%s snapshot: the %s part %s", page, name, exc)
            failed.append(name)
        except Exception:
            log.exception("%s snapshot: the %s part failed", page, name)
            failed.append(name)
    return {name: done.get(name) for name in parts}, failed


def shortage_types() -> tuple[str, ...]:
    """The issue types that count as material shortages (setting SHORTAGE_ISSUE_TYPES)."""
    return tuple(t.strip() for t in settings.get("SHORTAGE_ISSUE_TYPES").split(",") if t.strip())


def freshness(newest_record: datetime | None, as_of: datetime) -> dict:
    """When the plant's newest record at as_of happened (queries.newest_record), and whether
    it is older than QUIET_AFTER_H: the figures of a quiet plant are true, but a count of 0
    then says nothing about how the plant is doing, so the screens say so instead of green."""
    quiet = newest_record is not None and \
        as_of - newest_record > timedelta(hours=settings.get_float("QUIET_AFTER_H"))
    return {"newest_record_ms": None if newest_record is None else int(newest_record.timestamp() * 1000),
            "quiet": quiet}


def capped(rows: list) -> tuple[list, int]:
    """A list as sent (at most LIST_ROWS rows) and its full total."""
    return rows[:LIST_ROWS], len(rows)


def on_line(frame: pd.DataFrame, line: str | None, lines: pd.Series | None = None) -> pd.DataFrame:
    if line is None:
        return frame
    return frame[(frame["line"] if lines is None else lines) == line]



def stagnant_lots(lots: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """kpis.stagnant_lots in numpy: the lots past their location's limit with their
    dwell_minutes, longest first (then by location, lot and material)."""
    dwell = (epoch_ns(as_of) - ns(lots["last_in_at"])) / MINUTE_NS
    limit = lots["max_dwell_minutes"].to_numpy(dtype="float64")
    past = np.flatnonzero((lots["qty"].to_numpy(dtype="float64") > 0) & ~np.isnan(limit)
                          & (dwell > np.nan_to_num(limit, nan=np.inf)))
    text = {c: lots[c].to_numpy(dtype=object)[past] for c in ("material_code", "lot", "location_code")}
    order = past[np.lexsort((text["material_code"], text["lot"], text["location_code"], -dwell[past]))]
    return lots.iloc[order].assign(dwell_minutes=dwell[order])

