"""What the wall shows: every figure of a page at an explicit `as_of`, as plain data.

The overview is computed from frames (`WallFrames`) that `load_frames` reads in full and
data/wall_state.py keeps current incrementally; data/screens.py serves both to the pages.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

import numpy as np
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


NEVER_NS = np.iinfo(np.int64).max
MINUTE_NS = 60_000_000_000


def ns(instants: pd.Series) -> np.ndarray:
    """Instants as int64 nanoseconds since the epoch, NEVER_NS where there is none (a step
    not taken yet), so `stamp <= at` reads "had happened by at"."""
    values = instants.array.as_unit("ns").asi8
    return np.where(instants.isna().to_numpy(), NEVER_NS, values)


def _limit_ns(minutes: pd.Series) -> np.ndarray:
    """Time limits in minutes as nanoseconds, converted as pandas converts them."""
    limit = pd.to_timedelta(pd.to_numeric(minutes).astype("float64"), unit="m")
    return np.where(limit.isna().to_numpy(), NEVER_NS, limit.array.as_unit("ns").asi8)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def epoch_ns(instant: datetime) -> int:
    """An aware instant as nanoseconds since the epoch (integer arithmetic: a refresh asks
    this dozens of times)."""
    if isinstance(instant, pd.Timestamp) or instant.tzinfo is None:
        return int(kpis.instant(instant).as_unit("ns").value)
    return (instant - _EPOCH) // _MICROSECOND * 1000


def _group_medians(groups: np.ndarray, values: np.ndarray, count: int) -> list:
    """The median of the values of each group 0..count-1 (None for a group without a
    value), as pandas' groupby median gives it."""
    known = ~np.isnan(values)
    groups, values = groups[known], values[known]
    order = np.argsort(groups, kind="stable")
    groups, values = groups[order], values[order]
    bounds = np.searchsorted(groups, np.arange(count + 1))
    return [float(np.median(values[start:end])) if end > start else None
            for start, end in zip(bounds[:-1], bounds[1:])]


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


def issue_columns(frame: pd.DataFrame, departments: list[str],
                  ping_pong_at: pd.Series | None = None) -> dict[str, np.ndarray]:
    """An issue frame (queries.ISSUE_COLUMNS) as the numpy columns the overview counts with:
    instants and limits as nanoseconds, the owner also as its position in `departments`,
    and when each issue first went back to a department it had left (NEVER_NS if not)."""
    def text(name: str) -> np.ndarray:
        return frame[name].to_numpy(dtype=object)

    return {
        "id": text("id"), "raised": ns(frame["raised_at"]),
        "acknowledged": ns(frame["acknowledged_at"]), "resolved": ns(frame["resolved_at"]),
        "ack_limit": _limit_ns(frame["ack_minutes"]), "resolve_limit": _limit_ns(frame["resolve_minutes"]),
        "cancelled": (frame["status"] == "cancelled").to_numpy(dtype=bool),
        "owner": text("owner_department_code"),
        "department": _positions(frame["owner_department_code"], departments),
        "line": text("line"), "issue_type": text("issue_type"), "severity": text("severity"),
        "title": text("title"), "location_code": text("location_code"),
        "ping_pong": np.full(len(frame), NEVER_NS, dtype=np.int64) if ping_pong_at is None
        else ns(ping_pong_at.reindex(frame["id"].to_numpy(dtype=object))),
    }


def _positions(codes: pd.Series, known: list[str]) -> np.ndarray:
    """Each code's position in `known`, -1 for one not in it."""
    position = {code: n for n, code in enumerate(known)}
    return np.fromiter((position.get(code, -1) for code in codes.tolist()), dtype=np.int64,
                       count=len(codes))


class IssueColumns:
    """Issues as numpy columns (see `issue_columns`), and the figures of contract section 2
    over them: the same rules as data.kpis, vectorised for a refresh that must take
    milliseconds. A selection keeps row numbers into the shared columns and takes a column
    only when it is first read."""

    def __init__(self, columns: dict[str, np.ndarray], rows: np.ndarray | None = None):
        self._columns = columns
        self._rows = rows

    def __getattr__(self, name: str) -> np.ndarray:
        columns = self.__dict__["_columns"]
        if name not in columns:
            raise AttributeError(name)
        rows = self.__dict__["_rows"]
        values = columns[name] if rows is None else columns[name][rows]
        self.__dict__[name] = values
        return values

    def __len__(self) -> int:
        return len(self._columns["id"]) if self._rows is None else len(self._rows)

    def as_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self._columns}

    def where(self, mask: np.ndarray) -> "IssueColumns":
        rows = np.flatnonzero(mask) if self._rows is None else self._rows[mask]
        return IssueColumns(self._columns, rows)

    def open_mask(self, at: int) -> np.ndarray:
        return (self.raised <= at) & (self.resolved > at) & ~self.cancelled

    def overdue_mask(self, at: int) -> np.ndarray:
        waited = at - self.raised
        late = ((self.acknowledged > at) & (waited > self.ack_limit)) | (waited > self.resolve_limit)
        return self.open_mask(at) & late

    def response_outcomes(self, at: int) -> tuple[np.ndarray, np.ndarray]:
        """(met, breached) masks of the response SLA (kpis.sla_outcomes)."""
        done = self.acknowledged <= at
        elapsed = np.where(done, self.acknowledged - self.raised, at - self.raised)
        has_limit = self.ack_limit != NEVER_NS
        met = done & has_limit & (elapsed <= self.ack_limit)
        breached = has_limit & (self.raised <= at) & (elapsed > self.ack_limit)
        return met, breached

    def response_minutes(self, at: int) -> np.ndarray:
        done = self.acknowledged <= at
        return np.where(done, (self.acknowledged - self.raised) / MINUTE_NS, np.nan)

    def window_figures(self, at: int) -> dict:
        met, breached = self.response_outcomes(at)
        median, _ = kpis.median_p90(self.response_minutes(at))
        decided = int(met.sum()) + int(breached.sum())
        return {"median_response_min": median,
                "response_sla_compliance": int(met.sum()) / decided if decided else None,
                "resolution_rate": float((self.resolved <= at).sum() / len(self)) if len(self) else None}


def _board(open_now: IssueColumns, as_of: datetime) -> list[dict]:
    """The open issues by when they were raised, with their absolute deadlines."""
    at = epoch_ns(as_of)
    order = np.lexsort((open_now.id, open_now.raised))
    raised, acknowledged = open_now.raised[order], open_now.acknowledged[order]
    ack_due, resolve_due = raised + open_now.ack_limit[order], raised + open_now.resolve_limit[order]
    columns = [getattr(open_now, c)[order] for c in
               ("id", "severity", "issue_type", "title", "location_code", "line", "owner")]
    return [{
        "id": issue_id, "severity": severity, "issue_type": issue_type, "title": title,
        "location_code": None if pd.isna(location) else location,
        "line": None if pd.isna(on_line) else on_line, "owner_department_code": owner,
        "raised_ms": int(r) // 1_000_000,
        "acknowledged_ms": int(a) // 1_000_000 if a <= at else None,
        "ack_due_ms": int(ad) // 1_000_000, "resolve_due_ms": int(rd) // 1_000_000,
    } for issue_id, severity, issue_type, title, location, on_line, owner, r, a, ad, rd
        in zip(*columns, raised, acknowledged, ack_due, resolve_due)]


def _scoreboard(week: IssueColumns, open_now: IssueColumns, as_of: datetime,
                names: dict) -> tuple[list[dict], str | None]:
    """Per department: open and overdue now, and the week's response and ping-pong; each
    figure computed once for the week and then counted per department."""
    at = epoch_ns(as_of)
    codes = list(names["departments"])

    def count(issues: IssueColumns, mask: np.ndarray | None = None) -> np.ndarray:
        chosen = issues.department if mask is None else issues.department[mask]
        return np.bincount(chosen[chosen >= 0], minlength=len(codes))

    met, breached = week.response_outcomes(at)
    medians = _group_medians(week.department, week.response_minutes(at), len(codes))
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
    contenders = [r for r in rows if r["raised"] >= STAR_MIN_ISSUES
                  and r["response_sla_compliance"] is not None]
    star = None
    if contenders:
        best = max(contenders, key=lambda r: (r["response_sla_compliance"],
                                              -(r["median_response_min"] or 0.0)))
        star = best["department_code"]
    rows.sort(key=lambda r: (-r["overdue"], -r["open"], r["department_code"]))
    return rows, star


def _daily_median_response(issues: IssueColumns, as_of: datetime, days: list) -> list:
    """The median response of the issues raised on each site-local day of `days`."""
    tz = timezones.site_zone()
    starts = [epoch_ns(datetime.combine(day, time(), tzinfo=tz)) for day in days]
    day = np.searchsorted(np.asarray(starts, dtype=np.int64), issues.raised, side="right") - 1
    return _group_medians(day, issues.response_minutes(epoch_ns(as_of)), len(days))


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
    incremental reader in data/wall_state.py, which must give the same frames)."""
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


def _on_line(frame: pd.DataFrame, line: str | None, lines: pd.Series | None = None) -> pd.DataFrame:
    if line is None:
        return frame
    return frame[(frame["line"] if lines is None else lines) == line]


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
    plan = _on_line(frames.plan, line)
    lots = frames.lots if line is None else \
        _on_line(frames.lots, line, frames.lots["location_code"].map(names["location_lines"]))

    def scoped(rows: IssueColumns) -> IssueColumns:
        return rows if department is None else rows.where(rows.owner == department)

    mine, mine_open, mine_open_before = scoped(issues), scoped(open_now), scoped(open_day_before)
    today_ns, yesterday_ns = epoch_ns(today), epoch_ns(yesterday)
    now_figures = mine.where(mine.raised >= today_ns).window_figures(at)
    before_figures = mine.where((mine.raised >= yesterday_ns) & (mine.raised < today_ns)).window_figures(at)
    tiles = {
        "open": {"value": len(mine_open), "yesterday": len(mine_open_before)},
        "overdue": {"value": int(mine_open.overdue_mask(at).sum()),
                    "yesterday": int(mine_open_before.overdue_mask(day_before).sum())},
        **{k: {"value": now_figures[k], "yesterday": before_figures[k]} for k in now_figures},
        "plan_attainment": {"value": shift_attainment(plan, as_of, as_of),
                            "yesterday": shift_attainment(plan, as_of - timedelta(days=1), as_of)},
    }

    scoreboard, star = _scoreboard(week, open_now, as_of, names)

    stagnant = _stagnant_lots(lots, as_of).head(_MAX_ALERTS)
    board = _board(mine_open, as_of)
    as_of_ms = int(as_of.timestamp() * 1000)
    shortages = [{"id": r["id"], "title": r["title"], "line": r["line"],
                  "location_name": names["locations"].get(r["location_code"], r["location_code"] or ""),
                  "waiting_min": (as_of_ms - r["raised_ms"]) / 60000}
                 for r in board if r["issue_type"] == SHORTAGE_TYPE][:_MAX_ALERTS]

    days = [(trend_start + timedelta(days=i)).date() for i in range(TREND_DAYS)]
    return {
        "as_of": as_of.isoformat(), "as_of_ms": as_of_ms,
        "scope": {"department": department, "line": line},
        "goal_min": settings.get_float("RESPONSE_GOAL_MIN"),
        "no_data": len(mine) == 0 and len(mine_open) == 0,
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
                  "median_min": _daily_median_response(
                      mine.where(mine.raised >= epoch_ns(trend_start)), as_of, days)},
    }


def _stagnant_lots(lots: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """kpis.stagnant_lots in numpy: the lots past their location's limit with their
    dwell_minutes, longest first (then by location, lot and material)."""
    dwell = (epoch_ns(as_of) - ns(lots["last_in_at"])) / MINUTE_NS
    limit = lots["max_dwell_minutes"].to_numpy(dtype="float64")
    past = np.flatnonzero((lots["qty"].to_numpy(dtype="float64") > 0) & ~np.isnan(limit)
                          & (dwell > np.nan_to_num(limit, nan=np.inf)))
    text = {c: lots[c].to_numpy(dtype=object)[past] for c in ("material_code", "lot", "location_code")}
    order = past[np.lexsort((text["material_code"], text["lot"], text["location_code"], -dwell[past]))]
    return lots.iloc[order].assign(dwell_minutes=dwell[order])


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
    stagnant = _stagnant_lots(lots, as_of)
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
