"""What the wall shows: every figure of a page at an explicit `as_of`, as plain data.

The overview is computed from frames (`WallFrames`) that `load_frames` reads in full and
data/wall_state.py keeps current incrementally; data/screens.py serves both to the pages.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import kpis, queries, settings, timezones
from data.models import Location, Material, SlaRule

SHORTAGE_TYPE = "material_shortage"
# A department needs this many issues in the week to compete for collaboration star.
STAR_MIN_ISSUES = 5
TREND_DAYS = 30
_MAX_ALERTS = 12
# Quantities on screen: sums of moves carry float noise past this many decimals.
QTY_DECIMALS = 6

_THRESHOLD_SETTINGS = {
    "open": "THRESHOLD_OPEN", "overdue": "THRESHOLD_OVERDUE",
    "median_response_min": "THRESHOLD_MEDIAN_RESPONSE_MIN",
    "response_sla_compliance": "THRESHOLD_RESPONSE_SLA",
    "resolution_rate": "THRESHOLD_RESOLUTION_RATE",
    "plan_attainment": "THRESHOLD_PLAN_ATTAINMENT",
}


def threshold(tile: str) -> tuple[float, float]:
    """(amber, red) of a tile: amber <= red means higher is worse."""
    return settings.get_pair(_THRESHOLD_SETTINGS[tile])


def _ms(value) -> int | None:
    return None if value is None or pd.isna(value) else int(pd.Timestamp(value).timestamp() * 1000)


def _none_if_nan(value):
    return None if value is None or pd.isna(value) else float(value)


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


def shift_attainment(plan: pd.DataFrame, during: datetime, as_of: datetime) -> float | None:
    """Attainment of the shifts running at `during`, as known at as_of: actual / planned for
    a shift that has ended, actual so far / the plan's share of the elapsed time for one
    still running (a shift half done with half its plan made is on plan)."""
    at, moment = kpis.instant(as_of), kpis.instant(during)
    shifts = plan[(plan["shift_start"] <= moment) & (plan["shift_end"] > moment)
                  & plan["actual_qty"].notna()]
    if shifts.empty:
        return None
    length = shifts["shift_end"] - shifts["shift_start"]
    elapsed = ((at - shifts["shift_start"]) / length).clip(upper=1.0)
    due = float((shifts["planned_qty"] * elapsed).sum())
    return float(shifts["actual_qty"].sum()) / due if due > 0 else None


def _window_figures(issues: pd.DataFrame, as_of: datetime) -> dict:
    outcomes = kpis.response_sla_outcomes(issues, as_of)
    median, _ = kpis.median_p90(kpis.response_minutes(issues, as_of))
    return {"median_response_min": median,
            "response_sla_compliance": kpis.compliance(outcomes),
            "resolution_rate": kpis.resolution_rate(issues, as_of)}


def _board(open_now: pd.DataFrame, as_of: datetime) -> list[dict]:
    board = open_now[kpis.open_mask(open_now, as_of)].sort_values(["raised_at", "id"])
    acknowledged = board["acknowledged_at"].where(board["acknowledged_at"] <= kpis.instant(as_of))
    ack_due = board["raised_at"] + pd.to_timedelta(board["ack_minutes"], unit="m")
    resolve_due = board["raised_at"] + pd.to_timedelta(board["resolve_minutes"], unit="m")
    return [{
        "id": row.id, "severity": row.severity, "issue_type": row.issue_type, "title": row.title,
        "location_code": None if pd.isna(row.location_code) else row.location_code,
        "line": None if pd.isna(row.line) else row.line,
        "owner_department_code": row.owner_department_code,
        "raised_ms": _ms(row.raised_at), "acknowledged_ms": _ms(ack),
        "ack_due_ms": _ms(a_due), "resolve_due_ms": _ms(r_due),
    } for row, ack, a_due, r_due in zip(board.itertuples(), acknowledged, ack_due, resolve_due)]


def _scoreboard(week: pd.DataFrame, events: pd.DataFrame, open_now: pd.DataFrame,
                as_of: datetime, names: dict) -> tuple[list[dict], str | None]:
    """Per department: open and overdue now, and the week's response and ping-pong; each
    figure computed once for the week and then grouped, not once per department."""
    owner = week["owner_department_code"]
    outcomes = kpis.response_sla_outcomes(week, as_of)
    met = (outcomes == kpis.MET).groupby(owner).sum()
    breached = (outcomes == kpis.BREACHED).groupby(owner).sum()
    medians = kpis.response_minutes(week, as_of).groupby(owner).median()
    ping_pong = week["id"].isin(kpis.ping_pong_issue_ids(events, as_of)).groupby(owner).sum()
    raised = owner.value_counts()
    open_counts = open_now["owner_department_code"].value_counts()
    overdue_counts = open_now.loc[kpis.overdue_mask(open_now, as_of), "owner_department_code"].value_counts()
    rows = []
    for code, name in names["departments"].items():
        decided = int(met.get(code, 0)) + int(breached.get(code, 0))
        rows.append({"department_code": code, **name,
                     "raised": int(raised.get(code, 0)),
                     "open": int(open_counts.get(code, 0)),
                     "overdue": int(overdue_counts.get(code, 0)),
                     "median_response_min": _none_if_nan(medians.get(code)),
                     "response_sla_compliance": int(met.get(code, 0)) / decided if decided else None,
                     "ping_pong": int(ping_pong.get(code, 0))})
    contenders = [r for r in rows if r["raised"] >= STAR_MIN_ISSUES
                  and r["response_sla_compliance"] is not None]
    star = None
    if contenders:
        best = max(contenders, key=lambda r: (r["response_sla_compliance"],
                                              -(r["median_response_min"] or 0.0)))
        star = best["department_code"]
    rows.sort(key=lambda r: (-r["overdue"], -r["open"], r["department_code"]))
    return rows, star


def _daily_median_response(issues: pd.DataFrame, as_of: datetime, days: list) -> list:
    local_day = issues["raised_at"].dt.tz_convert(timezones.site_zone()).dt.date
    minutes = kpis.response_minutes(issues, as_of)
    medians = minutes.groupby(local_day).median()
    return [_none_if_nan(medians.get(day)) for day in days]


@dataclass(frozen=True)
class WallFrames:
    """What the overview is computed from: every issue it may count (the window's, and the
    ones open now or a day ago), the events of the last week's issues, where the lots sit,
    and the last shifts. Frames of the shapes data.queries returns, for every line."""
    names: dict
    issues: pd.DataFrame
    events: pd.DataFrame
    lots: pd.DataFrame
    plan: pd.DataFrame


# How far back the overview looks: the 30-day trend from the site's midnight, with a day spare.
ISSUE_HORIZON = timedelta(days=TREND_DAYS + 1)
EVENT_HORIZON = timedelta(days=8)
PLAN_HORIZON = timedelta(hours=36)


def load_frames(conn: Connection, as_of: datetime) -> WallFrames:
    """The overview's frames read in full from the database (the reference for the
    incremental reader in data/wall_state.py, which must give the same frames)."""
    issues = queries.issues_in_play(conn, as_of - ISSUE_HORIZON, as_of - timedelta(days=1))
    return WallFrames(
        names=display_names(conn), issues=issues,
        events=queries.events_of_issues_raised_since(conn, as_of - EVENT_HORIZON),
        lots=queries.lot_positions(conn, as_of),
        plan=queries.production_plan(conn, as_of - PLAN_HORIZON, as_of))


def _on_line(frame: pd.DataFrame, line: str | None, lines: pd.Series | None = None) -> pd.DataFrame:
    if line is None:
        return frame
    return frame[(frame["line"] if lines is None else lines) == line]


def _open_at(issues: pd.DataFrame, at: datetime) -> pd.DataFrame:
    return issues[kpis.open_mask(issues, at)]


def overview_snapshot(conn: Connection, as_of: datetime, *, department: str | None = None,
                      line: str | None = None) -> dict:
    """Every figure of the overview page at as_of, read in full from the database."""
    return overview_from_frames(load_frames(conn, as_of), as_of, department=department, line=line)


def overview_from_frames(frames: WallFrames, as_of: datetime, *, department: str | None = None,
                         line: str | None = None) -> dict:
    """Every figure of the overview page at as_of, as plain JSON-ready data.

    Tiles, board and shortages follow the department scope; the scoreboard, the star and the
    material alerts stay site- (or line-) wide, so a department's screen still sees how it
    compares and where material is stuck.
    """
    tz = timezones.site_zone()
    local = as_of.astimezone(tz)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    trend_start = today - timedelta(days=TREND_DAYS - 1)
    week_start = as_of - timedelta(days=7)
    day_before = as_of - timedelta(days=1)
    at = kpis.instant(as_of)

    names = frames.names
    known = _on_line(frames.issues, line)
    counted = known[known["status"] != "cancelled"]
    issues = counted[(counted["raised_at"] >= min(trend_start, week_start)) & (counted["raised_at"] < at)]
    open_now, open_day_before = _open_at(known, as_of), _open_at(known, day_before)
    week = issues[issues["raised_at"] >= week_start]
    events = frames.events[frames.events["issue_id"].isin(week["id"])
                           & (frames.events["at"] <= at)]
    plan = _on_line(frames.plan, line)
    location_lines = frames.lots["location_code"].map(names["location_lines"])
    lots = _on_line(frames.lots, line, location_lines)

    def scoped(frame: pd.DataFrame) -> pd.DataFrame:
        return frame if department is None else frame[frame["owner_department_code"] == department]

    mine, mine_open, mine_open_before = scoped(issues), scoped(open_now), scoped(open_day_before)
    today_issues = mine[mine["raised_at"] >= today]
    yesterday_issues = mine[(mine["raised_at"] >= yesterday) & (mine["raised_at"] < today)]
    now_figures = _window_figures(today_issues, as_of)
    before_figures = _window_figures(yesterday_issues, as_of)
    tiles = {
        "open": {"value": len(mine_open), "yesterday": len(mine_open_before)},
        "overdue": {"value": int(kpis.overdue_mask(mine_open, as_of).sum()),
                    "yesterday": int(kpis.overdue_mask(mine_open_before, day_before).sum())},
        **{k: {"value": now_figures[k], "yesterday": before_figures[k]} for k in now_figures},
        "plan_attainment": {"value": shift_attainment(plan, as_of, as_of),
                            "yesterday": shift_attainment(plan, day_before, as_of)},
    }

    scoreboard, star = _scoreboard(week, events, open_now, as_of, names)

    stagnant = kpis.stagnant_lots(lots, as_of).head(_MAX_ALERTS)
    board = _board(mine_open, as_of)
    shortages = [{"id": r["id"], "title": r["title"], "line": r["line"],
                  "location_name": names["locations"].get(r["location_code"], r["location_code"] or ""),
                  "waiting_min": (as_of.timestamp() * 1000 - r["raised_ms"]) / 60000}
                 for r in board if r["issue_type"] == SHORTAGE_TYPE][:_MAX_ALERTS]

    days = [(trend_start + timedelta(days=i)).date() for i in range(TREND_DAYS)]
    trend_issues = mine[mine["raised_at"] >= trend_start]
    return {
        "as_of": as_of.isoformat(), "as_of_ms": int(as_of.timestamp() * 1000),
        "scope": {"department": department, "line": line},
        "goal_min": settings.get_float("RESPONSE_GOAL_MIN"),
        "no_data": mine.empty and mine_open.empty,
        "names": {k: v for k, v in names.items() if k != "location_lines"},
        "tiles": tiles,
        "board": board,
        "scoreboard": scoreboard, "star": star,
        "shortages": shortages,
        "stagnant": [{"lot": r.lot, "material_code": r.material_code,
                      "material_name": names["materials"].get(r.material_code, r.material_code),
                      "location_code": r.location_code,
                      "location_name": names["locations"].get(r.location_code, r.location_code),
                      "qty": round(float(r.qty), QTY_DECIMALS), "dwell_min": float(r.dwell_minutes),
                      "limit_min": float(r.max_dwell_minutes)} for r in stagnant.itertuples()],
        "trend": {"days": [d.strftime("%m-%d") for d in days],
                  "median_min": _daily_median_response(trend_issues, as_of, days)},
    }


def material_snapshot(conn: Connection, as_of: datetime, *, line: str | None = None) -> dict:
    """Every figure of the material page at as_of, read in full from the database."""
    return material_from_frames(load_frames(conn, as_of), conn, as_of, line=line)


def material_from_frames(frames: WallFrames, conn: Connection, as_of: datetime, *,
                         line: str | None = None) -> dict:
    """Where material sits and where it is stuck at as_of: lots per stage, stagnant lots,
    open shortages and the week's turnover. The turnover's day-end stock is the on-hand now
    less what moved since each day end, so it reads only the week's moves."""
    names = frames.names
    lots = _on_line(frames.lots, line, frames.lots["location_code"].map(names["location_lines"]))
    stagnant = kpis.stagnant_lots(lots, as_of)
    week_start = as_of - timedelta(days=7)
    consumed = queries.consumed(conn, week_start, as_of, line=line)
    day_ends = kpis.day_ends(week_start, as_of, timezones.site_zone())
    on_hand = float(lots.loc[lots["location_kind"].isin(queries.TURNOVER_STOCK_KINDS), "qty"].sum())
    moved_since = queries.stock_changes_after_day_ends(conn, day_ends, as_of, line=line)
    levels = pd.DataFrame({"at": day_ends, "qty": on_hand - moved_since.to_numpy(dtype="float64")})
    open_now = _open_at(_on_line(frames.issues, line), as_of)
    shortages = open_now[open_now["issue_type"] == SHORTAGE_TYPE].sort_values(["raised_at", "id"])
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
        "shortages": [{"id": r.id, "title": r.title,
                       "location_name": names["locations"].get(r.location_code, r.location_code or ""),
                       "owner_department_code": r.owner_department_code,
                       "waiting_min": (kpis.instant(as_of) - r.raised_at) / kpis.MINUTE}
                      for r in shortages.itertuples()],
        "tiles": {"stagnant_lots": len(stagnant), "shortages": len(shortages),
                  "lots_at_iqc": int(per_stage.get("iqc", 0)),
                  "turnover_week": None if turnover is None else round(turnover, QTY_DECIMALS)},
    }
