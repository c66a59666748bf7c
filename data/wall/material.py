"""Every figure of the material page at an explicit `as_of`, as plain data."""
from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from data import kpis, queries, timezones
from data.wall.columns import MINUTE_NS, IssueColumns, epoch_ns
from data.wall.frames import (QTY_DECIMALS, WallFrames, capped, computed_parts, data_errors,
                              load_frames, on_line, shortage_types, stagnant_lots)

# The stages a lot passes through on its way to the line (scrap is not a stage).
STAGES = tuple(k for k in queries.STOCK_KINDS if k != "scrap")


def material_snapshot(conn: Connection, as_of: datetime, *, line: str | None = None) -> dict:
    """Every figure of the material page at as_of, read in full from the database."""
    return material_from_frames(load_frames(conn, as_of), conn, as_of, line=line)


def _stagnant(lots: pd.DataFrame, names: dict, as_of: datetime) -> dict:
    """The stagnant lots, longest first, capped, with their full total, and per stage."""
    stuck = stagnant_lots(lots, as_of)
    rows, total = capped([
        {"lot": r.lot, "material_code": r.material_code,
         "material_name": names["materials"].get(r.material_code, r.material_code),
         "location_name": names["locations"].get(r.location_code, r.location_code),
         "qty": round(float(r.qty), QTY_DECIMALS), "dwell_min": float(r.dwell_minutes),
         "limit_min": float(r.max_dwell_minutes)} for r in stuck.itertuples()])
    return {"rows": rows, "total": total, "per_stage": stuck.groupby("location_kind").size()}


def _shortages(issues: IssueColumns, names: dict, as_of: datetime) -> dict:
    """The open issues of SHORTAGE_ISSUE_TYPES by when they were raised, capped, with their
    full total."""
    at = epoch_ns(as_of)
    short = issues.where(issues.open_mask(at) & np.isin(issues.issue_type, shortage_types()))
    order = np.lexsort((short.id, short.raised))
    rows, total = capped([
        {"id": issue_id, "title": title,
         "location_name": names["locations"].get(location, location or ""),
         "owner_department_code": owner, "waiting_min": (at - raised) / MINUTE_NS}
        for issue_id, title, location, owner, raised in zip(
            *(getattr(short, c)[order] for c in ("id", "title", "location_code", "owner", "raised")))])
    return {"rows": rows, "total": total}


def _stages(lots: pd.DataFrame, stuck_per_stage: pd.Series) -> list[dict]:
    per_stage = lots.groupby("location_kind").size()
    return [{"kind": k, "lots": int(per_stage.get(k, 0)), "stagnant": int(stuck_per_stage.get(k, 0))}
            for k in STAGES]


def _turnover(lots: pd.DataFrame, conn: Connection, as_of: datetime, line: str | None) -> dict:
    """The week's turnover, and whether anything was consumed. Its day-end stock is the
    on-hand now less what moved since each day end, so it reads only the week's moves."""
    week_start = as_of - timedelta(days=7)
    consumed = queries.consumed(conn, week_start, as_of, line=line)
    day_ends = kpis.day_ends(week_start, as_of, timezones.site_zone())
    # Summed exactly, so the figure does not depend on the order the lots are held in.
    on_hand = math.fsum(lots.loc[lots["location_kind"].isin(queries.TURNOVER_STOCK_KINDS), "qty"])
    moved_since = queries.stock_changes_after_day_ends(conn, day_ends, as_of, line=line)
    levels = pd.DataFrame({"at": day_ends, "qty": on_hand - moved_since.to_numpy(dtype="float64")})
    turnover = kpis.turnover(consumed, levels)
    return {"week": None if turnover is None else round(turnover, QTY_DECIMALS),
            "consumed": not consumed.empty}


def _tiles(lots: pd.DataFrame, stagnant: dict, shortages: dict, turnover: dict | None) -> dict:
    return {"stagnant_lots": stagnant["total"], "shortages": shortages["total"],
            "lots_at_iqc": int((lots["location_kind"] == "iqc").sum()),
            "turnover_week": turnover["week"] if turnover else None}


def material_from_frames(frames: WallFrames, conn: Connection, as_of: datetime, *,
                         line: str | None = None) -> dict:
    """Where material sits and where it is stuck at as_of: lots per stage, stagnant lots,
    open shortages and the week's turnover. Each part is computed on its own: one that fails
    is None and named in `failed_panels` (a failed turnover leaves the tiles without it)."""
    names = frames.names
    lots = on_line(frames.lots, line, frames.lots["location_code"].map(names["location_lines"]))
    issues = frames.issues if line is None else frames.issues.where(frames.issues.line == line)
    parts, failed = computed_parts("material", {
        "stagnant": lambda done: _stagnant(lots, names, as_of),
        "shortages": lambda done: _shortages(issues, names, as_of),
        "stages": lambda done: _stages(lots, done["stagnant"]["per_stage"]),
        "turnover": lambda done: _turnover(lots, conn, as_of, line),
        "tiles": lambda done: _tiles(lots, done["stagnant"], done["shortages"],
                                     done.get("turnover")),
    })
    stagnant, shortages = parts["stagnant"] or {}, parts["shortages"] or {}
    consumed = (parts["turnover"] or {}).get("consumed", False)
    return {
        "as_of": as_of.isoformat(), "as_of_ms": int(as_of.timestamp() * 1000),
        "scope": {"line": line},
        "names": {k: v for k, v in names.items() if k != "location_lines"},
        "no_data": lots.empty and not consumed,
        "empty_database": frames.empty_database,
        "data_errors": data_errors(frames.left_out, as_of),
        "failed_panels": failed,
        "shortage_types": list(shortage_types()),
        "stages": parts["stages"],
        "stagnant": stagnant.get("rows"), "stagnant_total": stagnant.get("total"),
        "shortages": shortages.get("rows"), "shortages_total": shortages.get("total"),
        "tiles": parts["tiles"],
    }
