"""What every wall screen is computed from: the frames of one refresh, read in full here
(the reference for data/wall/follower.py, which keeps the same frames current), and the
helpers every page's figures share."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import kpis, queries
from data.models import Location, Material, SlaRule
from data.wall.columns import MINUTE_NS, IssueColumns, epoch_ns, issue_columns, ns

TREND_DAYS = 30
# Quantities on screen: sums of moves carry float noise past this many decimals.
QTY_DECIMALS = 6


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
    shares them."""
    names: dict
    issues: IssueColumns
    lots: pd.DataFrame
    plan: pd.DataFrame


# How far back the overview looks: the 30-day trend from the site's midnight, with a day spare.
ISSUE_HORIZON = timedelta(days=TREND_DAYS + 1)
EVENT_HORIZON = timedelta(days=8)
PLAN_HORIZON = timedelta(hours=36)


def load_frames(conn: Connection, as_of: datetime) -> WallFrames:
    """The overview's frames read in full from the database (the reference for the
    incremental reader in data/wall/follower.py, which must give the same frames)."""
    return load_frames_and_events(conn, as_of)[0]


def load_frames_and_events(conn: Connection, as_of: datetime) -> tuple[WallFrames, pd.DataFrame]:
    """The frames, and the events of the last week's issues they were derived from."""
    issues = queries.issues_in_play(conn, as_of - ISSUE_HORIZON, as_of - timedelta(days=1))
    events = queries.events_of_issues_raised_since(conn, as_of - EVENT_HORIZON)
    names = display_names(conn)
    columns = issue_columns(issues, list(names["departments"]), kpis.ping_pong_since(events))
    frames = WallFrames(
        names=names, issues=IssueColumns(columns), lots=queries.lot_positions(conn, as_of),
        plan=queries.production_plan(conn, as_of - PLAN_HORIZON, as_of))
    return frames, events


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

