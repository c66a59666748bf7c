"""Every figure of the overview page at an explicit `as_of`, as plain data."""
from __future__ import annotations

from datetime import datetime, time, timedelta

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from data import kpis, settings, theme, timezones
from data.wall.columns import IssueColumns, epoch_ns, group_medians, ns
from data.wall.frames import (QTY_DECIMALS, TREND_DAYS, WallFrames, capped, computed_parts,
                              data_errors, load_frames, on_line, shortage_types, stagnant_lots)


def shift_attainment(plan: pd.DataFrame, during: datetime, as_of: datetime) -> float | None:
    """Attainment of the shifts running at `during`, as known at as_of: actual / planned for
    a shift that has ended, actual so far / the plan's share of the elapsed time for one
    still running (a shift half done with half its plan made is on plan)."""
    at, moment = epoch_ns(as_of), epoch_ns(during)
    start, end = ns(plan["shift_start"]), ns(plan["shift_end"])
    actual = plan["actual_qty"].to_numpy(dtype="float64")
    running = (start <= moment) & (end > moment) & ~np.isnan(actual)
    if not running.any():
        return None
    start, end = start[running], end[running]
    elapsed = np.minimum((at - start) / (end - start), 1.0)
    due = float((plan["planned_qty"].to_numpy(dtype="float64")[running] * elapsed).sum())
    return float(actual[running].sum()) / due if due > 0 else None


def _tiles(mine: IssueColumns, mine_open: IssueColumns, mine_open_before: IssueColumns,
           plan: pd.DataFrame, as_of: datetime, today: datetime) -> dict:
    """Each tile now and yesterday at the same time of day: open and overdue 24 hours ago;
    the window figures over the issues raised yesterday before this time, as known then."""
    at, day_before = epoch_ns(as_of), epoch_ns(as_of - timedelta(days=1))
    today_ns, yesterday_ns = epoch_ns(today), epoch_ns(today - timedelta(days=1))
    now_figures = mine.where(mine.raised >= today_ns).window_figures(at)
    before_figures = mine.where((mine.raised >= yesterday_ns) & (mine.raised < day_before)) \
        .window_figures(day_before)
    return {
        "open": {"value": len(mine_open), "yesterday": len(mine_open_before)},
        "overdue": {"value": int(mine_open.overdue_mask(at).sum()),
                    "yesterday": int(mine_open_before.overdue_mask(day_before).sum())},
        **{k: {"value": now_figures[k], "yesterday": before_figures[k]} for k in now_figures},
        "plan_attainment": {"value": shift_attainment(plan, as_of, as_of),
                            "yesterday": shift_attainment(plan, as_of - timedelta(days=1), as_of)},
    }


def _board(open_now: IssueColumns, as_of: datetime) -> list[dict]:
    """The open issues by when they were raised, with their absolute deadlines, whom to
    call (who acknowledged it; None: the owning department) and whether the issue has gone
    back to a department it had left."""
    at = epoch_ns(as_of)
    order = np.lexsort((open_now.id, open_now.raised))
    raised, acknowledged = open_now.raised[order], open_now.acknowledged[order]
    ack_due, resolve_due = raised + open_now.ack_limit[order], raised + open_now.resolve_limit[order]
    ping_pong = open_now.ping_pong[order] <= at
    columns = [getattr(open_now, c)[order] for c in
               ("id", "severity", "issue_type", "title", "location_code", "line", "owner", "contact")]
    return [{
        "id": issue_id, "severity": severity, "issue_type": issue_type, "title": title,
        "location_code": None if pd.isna(location) else location,
        "line": None if pd.isna(on_line) else on_line, "owner_department_code": owner,
        "raised_ms": int(r) // 1_000_000,
        "acknowledged_ms": int(a) // 1_000_000 if a <= at else None,
        "ack_due_ms": int(ad) // 1_000_000, "resolve_due_ms": int(rd) // 1_000_000,
        "ping_pong": bool(pp), "contact": contact if a <= at and isinstance(contact, str) else None,
    } for issue_id, severity, issue_type, title, location, on_line, owner, contact, r, a, ad, rd, pp
        in zip(*columns, raised, acknowledged, ack_due, resolve_due, ping_pong)]


def _scoreboard(week: IssueColumns, open_now: IssueColumns, as_of: datetime,
                names: dict) -> list[dict]:
    """Per department: open and overdue now, and the week's response and ping-pong; each
    figure computed once for the week and then counted per department."""
    at = epoch_ns(as_of)
    codes = list(names["departments"])

    def count(issues: IssueColumns, mask: np.ndarray | None = None) -> np.ndarray:
        chosen = issues.department if mask is None else issues.department[mask]
        return np.bincount(chosen[chosen >= 0], minlength=len(codes))

    met, breached = week.response_outcomes(at)
    medians = group_medians(week.department, week.response_minutes(at), len(codes))
    raised = count(week)
    met_counts, breached_counts = count(week, met), count(week, breached)
    ping_pong = count(week, week.ping_pong <= at)
    open_counts = count(open_now)
    overdue_counts = count(open_now, open_now.overdue_mask(at))
    rows = []
    for n, code in enumerate(codes):
        decided = int(met_counts[n]) + int(breached_counts[n])
        rows.append({"department_code": code, **names["departments"][code],
                     "raised": int(raised[n]), "open": int(open_counts[n]),
                     "overdue": int(overdue_counts[n]),
                     "median_response_min": medians[n],
                     "response_sla_compliance": int(met_counts[n]) / decided if decided else None,
                     "ping_pong": int(ping_pong[n])})
    rows.sort(key=lambda r: (-r["overdue"], -r["open"], r["department_code"]))
    return rows


def _star(scoreboard: list[dict]) -> tuple[str | None, dict | None]:
    """The collaboration star of the week and why (data.kpis.collaboration_star)."""
    minimum = settings.get_int("STAR_MIN_ISSUES")
    code, tied = kpis.collaboration_star(
        ((r["department_code"], r["raised"], r["median_response_min"], r["response_sla_compliance"])
         for r in scoreboard), minimum, _red_response_sla)
    if code is None:
        return None, None
    best = next(r for r in scoreboard if r["department_code"] == code)
    return code, {"department_code": code, "raised": best["raised"],
                  "median_response_min": best["median_response_min"],
                  "response_sla_compliance": best["response_sla_compliance"],
                  "tied_with": tied, "min_issues": minimum}


def _red_response_sla(compliance: float) -> bool:
    return theme.level("response_sla_compliance", compliance) == theme.BAD


def _material_alerts(mine_open: IssueColumns, lots: pd.DataFrame, names: dict,
                     as_of: datetime) -> dict:
    """Open shortages (issues of SHORTAGE_ISSUE_TYPES) by when they were raised, and the
    stagnant lots longest first: each list capped, with its full total."""
    as_of_ms = int(as_of.timestamp() * 1000)
    short = mine_open.where(np.isin(mine_open.issue_type, shortage_types()))
    order = np.lexsort((short.id, short.raised))
    shortages, shortages_total = capped([
        {"id": issue_id, "title": title, "line": line,
         "location_name": names["locations"].get(location, location or ""),
         "waiting_min": (as_of_ms - int(raised) // 1_000_000) / 60000}
        for issue_id, title, line, location, raised in zip(
            *(getattr(short, c)[order] for c in ("id", "title", "line", "location_code", "raised")))])
    stagnant, stagnant_total = capped([
        {"lot": r.lot, "material_code": r.material_code,
         "material_name": names["materials"].get(r.material_code, r.material_code),
         "location_code": r.location_code,
         "location_name": names["locations"].get(r.location_code, r.location_code),
         "qty": round(float(r.qty), QTY_DECIMALS), "dwell_min": float(r.dwell_minutes),
         "limit_min": float(r.max_dwell_minutes)} for r in stagnant_lots(lots, as_of).itertuples()])
    return {"shortages": shortages, "shortages_total": shortages_total,
            "stagnant": stagnant, "stagnant_total": stagnant_total}


def _daily_median_response(issues: IssueColumns, as_of: datetime, days: list) -> list:
    """The median response of the issues raised on each site-local day of `days`."""
    tz = timezones.site_zone()
    starts = [epoch_ns(datetime.combine(day, time(), tzinfo=tz)) for day in days]
    day = np.searchsorted(np.asarray(starts, dtype=np.int64), issues.raised, side="right") - 1
    return group_medians(day, issues.response_minutes(epoch_ns(as_of)), len(days))


def _trend(mine: IssueColumns, as_of: datetime, trend_start: datetime) -> dict:
    days = [(trend_start + timedelta(days=i)).date() for i in range(TREND_DAYS)]
    return {"days": [d.strftime("%m-%d") for d in days],
            "median_min": _daily_median_response(
                mine.where(mine.raised >= epoch_ns(trend_start)), as_of, days)}


def overview_snapshot(conn: Connection, as_of: datetime, *, department: str | None = None,
                      line: str | None = None) -> dict:
    """Every figure of the overview page at as_of, read in full from the database."""
    return overview_from_frames(load_frames(conn, as_of), as_of, department=department, line=line)


def overview_from_frames(frames: WallFrames, as_of: datetime, *, department: str | None = None,
                         line: str | None = None) -> dict:
    """Every figure of the overview page at as_of, as plain JSON-ready data.

    Tiles, board and shortages follow the department scope; the scoreboard, the star and the
    stagnant lots stay site- (or line-) wide, so a department's screen still sees how it
    compares and where material is stuck. Each part is computed on its own: one that fails
    is None and named in `failed_panels`, and the others are still shown.
    """
    tz = timezones.site_zone()
    today = as_of.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    trend_start = today - timedelta(days=TREND_DAYS - 1)
    at, day_before = epoch_ns(as_of), epoch_ns(as_of - timedelta(days=1))
    week_start = epoch_ns(as_of - timedelta(days=7))

    names = frames.names
    known = frames.issues
    if line is not None:
        known = known.where(known.line == line)
    counted = ~known.cancelled & (known.raised >= min(epoch_ns(trend_start), week_start)) \
        & (known.raised < at)
    issues = known.where(counted)
    open_now, open_day_before = known.where(known.open_mask(at)), known.where(known.open_mask(day_before))
    week = issues.where(issues.raised >= week_start)
    plan = on_line(frames.plan, line)
    lots = frames.lots if line is None else \
        on_line(frames.lots, line, frames.lots["location_code"].map(names["location_lines"]))

    def scoped(rows: IssueColumns) -> IssueColumns:
        return rows if department is None else rows.where(rows.owner == department)

    mine, mine_open, mine_open_before = scoped(issues), scoped(open_now), scoped(open_day_before)
    parts, failed = computed_parts("overview", {
        "tiles": lambda done: _tiles(mine, mine_open, mine_open_before, plan, as_of, today),
        "board": lambda done: _board(mine_open, as_of),
        "scoreboard": lambda done: _scoreboard(week, open_now, as_of, names),
        "star": lambda done: _star(done["scoreboard"]),
        "material": lambda done: _material_alerts(mine_open, lots, names, as_of),
        "trend": lambda done: _trend(mine, as_of, trend_start),
    })
    star, star_reason = parts["star"] or (None, None)
    material = parts["material"] or dict.fromkeys(
        ("shortages", "shortages_total", "stagnant", "stagnant_total"))
    return {
        "as_of": as_of.isoformat(), "as_of_ms": int(as_of.timestamp() * 1000),
        "scope": {"department": department, "line": line},
        "goal_min": settings.get_float("RESPONSE_GOAL_MIN"),
        "no_data": len(mine) == 0 and len(mine_open) == 0,
        "no_material_data": bool(lots.empty),
        "empty_database": frames.empty_database,
        "data_errors": data_errors(frames.left_out, as_of),
        "failed_panels": failed,
        "names": {k: v for k, v in names.items() if k != "location_lines"},
        "shortage_types": list(shortage_types()),
        "tiles": parts["tiles"],
        "board": parts["board"],
        "scoreboard": parts["scoreboard"], "star": star, "star_reason": star_reason,
        **material,
        "trend": parts["trend"],
    }
