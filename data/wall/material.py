"""Every figure of the material page at an explicit `as_of`, as plain data."""
from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from data import kpis, queries, timezones
from data.wall.columns import MINUTE_NS, epoch_ns
from data.wall.frames import QTY_DECIMALS, WallFrames, load_frames, on_line, stagnant_lots
from data.wall.overview import SHORTAGE_TYPE

def material_snapshot(conn: Connection, as_of: datetime, *, line: str | None = None) -> dict:
    """Every figure of the material page at as_of, read in full from the database."""
    return material_from_frames(load_frames(conn, as_of), conn, as_of, line=line)


def material_from_frames(frames: WallFrames, conn: Connection, as_of: datetime, *,
                         line: str | None = None) -> dict:
    """Where material sits and where it is stuck at as_of: lots per stage, stagnant lots,
    open shortages and the week's turnover. The turnover's day-end stock is the on-hand now
    less what moved since each day end, so it reads only the week's moves."""
    names = frames.names
    lots = on_line(frames.lots, line, frames.lots["location_code"].map(names["location_lines"]))
    stagnant = stagnant_lots(lots, as_of)
    week_start = as_of - timedelta(days=7)
    consumed = queries.consumed(conn, week_start, as_of, line=line)
    day_ends = kpis.day_ends(week_start, as_of, timezones.site_zone())
    # Summed exactly, so the figure does not depend on the order the lots are held in.
    on_hand = math.fsum(lots.loc[lots["location_kind"].isin(queries.TURNOVER_STOCK_KINDS), "qty"])
    moved_since = queries.stock_changes_after_day_ends(conn, day_ends, as_of, line=line)
    levels = pd.DataFrame({"at": day_ends, "qty": on_hand - moved_since.to_numpy(dtype="float64")})
    issues = frames.issues if line is None else frames.issues.where(frames.issues.line == line)
    at = epoch_ns(as_of)
    shortages = issues.where(issues.open_mask(at) & (issues.issue_type == SHORTAGE_TYPE))
    by_raised = np.lexsort((shortages.id, shortages.raised))
    stages = [k for k in queries.STOCK_KINDS if k != "scrap"]
    per_stage = lots.groupby("location_kind").size()
    stuck_per_stage = stagnant.groupby("location_kind").size()
    turnover = kpis.turnover(consumed, levels)
    return {
        "as_of": as_of.isoformat(), "as_of_ms": int(as_of.timestamp() * 1000),
        "scope": {"line": line},
        "names": {k: v for k, v in names.items() if k != "location_lines"},
        "no_data": lots.empty and consumed.empty,
        "stages": [{"kind": k, "lots": int(per_stage.get(k, 0)),
                    "stagnant": int(stuck_per_stage.get(k, 0))} for k in stages],
        "stagnant": [{"lot": r.lot, "material_code": r.material_code,
                      "material_name": names["materials"].get(r.material_code, r.material_code),
                      "location_name": names["locations"].get(r.location_code, r.location_code),
                      "qty": round(float(r.qty), QTY_DECIMALS), "dwell_min": float(r.dwell_minutes),
                      "limit_min": float(r.max_dwell_minutes)} for r in stagnant.itertuples()],
        "shortages": [{"id": issue_id, "title": title,
                       "location_name": names["locations"].get(location, location or ""),
                       "owner_department_code": owner, "waiting_min": (at - raised) / MINUTE_NS}
                      for issue_id, title, location, owner, raised in zip(
                          *(getattr(shortages, c)[by_raised] for c in
                            ("id", "title", "location_code", "owner", "raised")))],
        "tiles": {"stagnant_lots": len(stagnant), "shortages": len(shortages),
                  "lots_at_iqc": int(per_stage.get("iqc", 0)),
                  "turnover_week": None if turnover is None else round(turnover, QTY_DECIMALS)},
    }
