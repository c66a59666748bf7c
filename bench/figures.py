"""The wall's figures in one comparable form, and the rules every variant computes them by.

`canonical_figures` reduces an overview snapshot to its figures (no display names); the
other variants of the benchmark build the same dict from their own intermediate results
with `assemble`. Counts, ids and medians must agree exactly; ratios, quantities and
minutes within a relative 1e-9, since a database may sum in another order.

The medians follow the wall's two conventions, which differ in the last bit about once in
a hundred even counts: tiles and scoreboard use pandas' quantile (linear interpolation,
computed as hi - (hi - lo) * 0.5), the trend uses pandas' groupby median ((lo + hi) / 2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

import numpy as np

from data import settings, theme, timezones

# The wall's rules (data/wall/, docs/wall.md "The rules behind the figures"), restated so the
# benchmark checks them independently; the thresholds and types are the project's settings.
TREND_DAYS = 30
LIST_ROWS = 50
STOCK_KINDS = ("receiving", "iqc", "warehouse", "line_side", "wip", "finished", "scrap")
QTY_EPSILON = 1e-9
PLAN_HORIZON = timedelta(hours=36)
MINUTE_NS = 60_000_000_000
NEVER = np.iinfo(np.int64).max
TILE_KEYS = ("open", "overdue", "median_response_min", "response_sla_compliance",
             "resolution_rate", "plan_attainment")
RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Instants:
    """The instants a snapshot at as_of looks at, in epoch microseconds (UTC)."""
    as_of: datetime
    now: int
    day_before: int
    today: int
    yesterday: int
    week_start: int
    trend_start: int
    plan_since: int
    day_starts: tuple[int, ...]      # TREND_DAYS local midnights, then the end of the last day
    day_labels: tuple[str, ...]


def epoch_us(instant: datetime) -> int:
    delta = instant - datetime(1970, 1, 1, tzinfo=timezones.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def instants(as_of: datetime) -> Instants:
    tz = timezones.site_zone()
    local = as_of.astimezone(tz)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    trend_start = today - timedelta(days=TREND_DAYS - 1)
    days = [(trend_start + timedelta(days=i)).date() for i in range(TREND_DAYS + 1)]
    starts = tuple(epoch_us(datetime.combine(day, time(), tzinfo=tz)) for day in days)
    return Instants(
        as_of=as_of, now=epoch_us(as_of), day_before=epoch_us(as_of - timedelta(days=1)),
        today=epoch_us(today), yesterday=epoch_us(yesterday),
        week_start=epoch_us(as_of - timedelta(days=7)), trend_start=epoch_us(trend_start),
        plan_since=epoch_us(as_of - PLAN_HORIZON), day_starts=starts,
        day_labels=tuple(day.strftime("%m-%d") for day in days[:-1]))


def minutes(later_us, earlier_us):
    """Minutes between instants as pandas computes them: nanoseconds / one minute in ns."""
    elapsed_ns = (np.asarray(later_us, dtype=np.int64) - np.asarray(earlier_us, dtype=np.int64)) * 1000
    return elapsed_ns.astype(np.float64) / float(MINUTE_NS)


def _middle(values, *, average: bool) -> float | None:
    """The median of the known values: the mean of the two middle ones (`average`), or
    numpy's linear interpolation between them."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    values = values[~np.isnan(values)]
    n = len(values)
    if n == 0:
        return None
    if n % 2:
        return float(values[n // 2])
    low, high = values[n // 2 - 1], values[n // 2]
    return float((low + high) / 2) if average else float(high - (high - low) * 0.5)


def quantile_median(values) -> float | None:
    """pandas' Series.quantile(0.5): linear interpolation, numpy's formula."""
    return _middle(values, average=False)


def groupby_median(values) -> float | None:
    """pandas' groupby median: the mean of the two middle values."""
    return _middle(values, average=True)


def ms(us: int) -> int:
    """Whole epoch milliseconds, as the wall writes them."""
    return int(us) // 1000


@dataclass
class WindowFigures:
    median_response_min: float | None
    response_sla_compliance: float | None
    resolution_rate: float | None


@dataclass
class DepartmentFigures:
    raised: int = 0
    open: int = 0
    overdue: int = 0
    median_response_min: float | None = None
    response_sla_compliance: float | None = None
    ping_pong: int = 0


@dataclass
class Parts:
    """What a variant computes; `assemble` turns it into the canonical figures."""
    open_now: int
    open_before: int
    overdue_now: int
    overdue_before: int
    today: WindowFigures
    yesterday: WindowFigures
    plan_now: float | None
    plan_before: float | None
    # (id, severity, issue_type, owner, location_code, line, raised_us, acknowledged_us|None,
    #  ack_minutes, resolve_minutes, ping_pong), ordered by raised_at then id
    board: list[tuple]
    departments: dict[str, DepartmentFigures]
    # (lot, material_code, location_code, qty, dwell_min, limit_min), longest dwell first, all
    stagnant: list[tuple]
    trend: list[float | None]
    population: int
    empty_database: bool
    extra: dict = field(default_factory=dict)


def compliance(met: int, breached: int) -> float | None:
    decided = met + breached
    return met / decided if decided else None


def rate(resolved: int, raised: int) -> float | None:
    return resolved / raised if raised else None


def shortage_types() -> set[str]:
    """The issue types counted as shortages, read from the setting SHORTAGE_ISSUE_TYPES
    itself so that the wall's parsing of it is checked too."""
    return {t.strip() for t in settings.get("SHORTAGE_ISSUE_TYPES").split(",") if t.strip()}


def star(rows: list[list]) -> tuple[str | None, dict | None]:
    """The collaboration star and why: among departments with at least STAR_MIN_ISSUES
    issues in the week and a response SLA compliance not rated bad, the fastest median; a
    tie goes to the higher compliance, then the more issues, then the code."""
    minimum = settings.get_int("STAR_MIN_ISSUES")
    contenders = [r for r in rows if r[1] >= minimum and r[4] is not None and r[5] is not None
                  and theme.level("response_sla_compliance", r[5]) != theme.BAD]
    if not contenders:
        return None, None
    code, raised, _, _, median, sla, _ = min(contenders, key=lambda r: (r[4], -r[5], -r[1], r[0]))
    return code, {"department_code": code, "raised": raised, "median_response_min": median,
                  "response_sla_compliance": sla, "min_issues": minimum,
                  "tied_with": sorted(r[0] for r in contenders if r[4] == median and r[0] != code)}


def limit_us(limit_minutes: float) -> int:
    return int(round(limit_minutes * 60_000_000))


def assemble(parts: Parts, moments: Instants, department_codes: list[str]) -> dict:
    rows = []
    for code in sorted(department_codes):
        d = parts.departments.get(code, DepartmentFigures())
        rows.append([code, d.raised, d.open, d.overdue, d.median_response_min,
                     d.response_sla_compliance, d.ping_pong])
    best, reason = star(rows)
    rows.sort(key=lambda r: (-r[3], -r[2], r[0]))
    board = [[i, sev, kind, owner, loc, line, ms(raised), None if ack is None else ms(ack),
              ms(raised + limit_us(ack_min)), ms(raised + limit_us(resolve_min)), bool(pp)]
             for i, sev, kind, owner, loc, line, raised, ack, ack_min, resolve_min, pp in parts.board]
    as_of_ms = moments.as_of.timestamp() * 1000
    kinds = shortage_types()
    shortages = [[r[0], (as_of_ms - r[6]) / 60000] for r in board if r[2] in kinds]
    tiles = {
        "open": [parts.open_now, parts.open_before],
        "overdue": [parts.overdue_now, parts.overdue_before],
        "median_response_min": [parts.today.median_response_min, parts.yesterday.median_response_min],
        "response_sla_compliance": [parts.today.response_sla_compliance,
                                    parts.yesterday.response_sla_compliance],
        "resolution_rate": [parts.today.resolution_rate, parts.yesterday.resolution_rate],
        "plan_attainment": [parts.plan_now, parts.plan_before],
    }
    return {
        "as_of_ms": int(moments.as_of.timestamp() * 1000),
        "no_data": parts.population == 0 and parts.open_now == 0,
        "empty_database": parts.empty_database,
        # A variant computes every part or fails as a whole.
        "failed_panels": [],
        "tiles": tiles, "board": board, "scoreboard": rows, "star": best, "star_reason": reason,
        "stagnant": [list(r) for r in parts.stagnant[:LIST_ROWS]],
        "stagnant_total": len(parts.stagnant),
        "shortages": shortages[:LIST_ROWS], "shortages_total": len(shortages),
        "trend_days": list(moments.day_labels), "trend": list(parts.trend),
    }


def canonical_figures(snapshot: dict) -> dict:
    """The figures of an overview snapshot, without display names, in a comparable form.

    Left out: a board row's `contact` (the variants read no acknowledger: it is a name
    looked up, not a figure) and `data_errors` (the workloads write only plausible rows, and
    the variants restate no plausibility bounds)."""
    tiles = snapshot["tiles"]
    return {
        "as_of_ms": snapshot["as_of_ms"],
        "no_data": snapshot["no_data"],
        "empty_database": snapshot["empty_database"],
        "failed_panels": snapshot["failed_panels"],
        "tiles": {k: [tiles[k]["value"], tiles[k]["yesterday"]] for k in TILE_KEYS},
        "board": [[r["id"], r["severity"], r["issue_type"], r["owner_department_code"],
                   r["location_code"], r["line"], r["raised_ms"], r["acknowledged_ms"],
                   r["ack_due_ms"], r["resolve_due_ms"], r["ping_pong"]] for r in snapshot["board"]],
        "scoreboard": [[r["department_code"], r["raised"], r["open"], r["overdue"],
                        r["median_response_min"], r["response_sla_compliance"], r["ping_pong"]]
                       for r in snapshot["scoreboard"]],
        "star": snapshot["star"], "star_reason": snapshot["star_reason"],
        "stagnant": [[r["lot"], r["material_code"], r["location_code"], r["qty"], r["dwell_min"],
                      r["limit_min"]] for r in snapshot["stagnant"]],
        "stagnant_total": snapshot["stagnant_total"],
        "shortages": [[r["id"], r["waiting_min"]] for r in snapshot["shortages"]],
        "shortages_total": snapshot["shortages_total"],
        "trend_days": snapshot["trend"]["days"], "trend": snapshot["trend"]["median_min"],
    }


def _is_median(path: tuple) -> bool:
    """Medians are compared bit for bit: the trend, the median tiles, the scoreboard's column,
    the star's."""
    if not path:
        return False
    if path[0] == "trend":
        return True
    if path[0] == "star_reason":
        return path[1] == "median_response_min"
    if path[0] == "tiles":
        return path[1] == "median_response_min"
    return path[0] == "scoreboard" and len(path) > 2 and path[2] == 4


def differences(expected, actual, path: tuple = ()) -> list[str]:
    """Where two canonical figure dicts disagree, as readable lines (empty when they agree)."""
    where = "/".join(str(p) for p in path) or "(root)"
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual), key=str):
            if key not in expected or key not in actual:
                out.append(f"{where}/{key}: present in only one")
                continue
            out += differences(expected[key], actual[key], path + (key,))
        return out
    if isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        out = []
        if len(expected) != len(actual):
            out.append(f"{where}: {len(expected)} items expected, {len(actual)} found")
        for n, (e, a) in enumerate(zip(expected, actual)):
            out += differences(e, a, path + (n,))
        return out
    if isinstance(expected, bool) or isinstance(actual, bool) or expected is None or actual is None \
            or isinstance(expected, str) or isinstance(actual, str):
        return [] if expected == actual else [f"{where}: expected {expected!r}, found {actual!r}"]
    if isinstance(expected, int) and isinstance(actual, int):
        return [] if expected == actual else [f"{where}: expected {expected}, found {actual}"]
    e, a = float(expected), float(actual)
    if _is_median(path) or isinstance(expected, int) or isinstance(actual, int):
        same = e == a
    else:
        same = math.isclose(e, a, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)
    return [] if same else [f"{where}: expected {expected!r}, found {actual!r}"]
