"""The weekly review's pack: one ISO week of the plant in site time against the weeks before,
as plain JSON data, built once after the week and kept (frozen) so that the meeting, and anyone
asking later what it saw, read the same figures.

Every KPI figure is the `kpis` report's (data.reports.kpi_report) for the week's window: week k
before this one is computed at as_of minus k weeks, each week as known the same time after its
end, so a week is not flattered by having had longer to resolve its issues. The figure of week w
equals `python app.py kpis --json --since <Monday of w> --until <Monday after> --as-of <as_of of
w>`. Rules and freshness: docs/review.md.

The pack (SCHEMA 1). Instants are ISO 8601 with the site's offset, dates YYYY-MM-DD, names in
both languages as name_zh / name_en:
- schema, week ("2026-W48"), since, until (the week's Monday 00:00 and the next, site time),
  as_of, built_at, tz (the site's IANA zone).
- kpis: per KPI of KPIS: key, name_zh, name_en, unit ("min" | "ratio" | "count"; hand-offs per
  issue is a count that may have decimals), this, last (the week before), avg4 (the mean of the
  four weeks before this one that have a value), delta (this - last), better ("lower" |
  "higher"), good (whether delta went the better way; null without a change), signal (this
  week completes a Western Electric rule on the KPI's control chart: the daily series where
  `daily` has it, else the weekly values of the five weeks; countermeasures start segments),
  weeks (the five weeks' values, oldest first, as [{week, value}]).
- departments: every department with the week's raised, response_median_min,
  response_sla_compliance, resolution_rate, ping_pong (issues), and rank (1 the best: response
  SLA compliance, then median response, then resolution rate; null without issues or without a
  decided response).
- star: the collaboration star by the wall's rule (docs/wall.md) over the week: code, names,
  why_zh / why_en, raised, response_median_min, response_sla_compliance, tied_with, min_issues;
  null when no department qualifies.
- worst_breaches: the week's issues that breached the response SLA, most minutes over first
  (LIST_ROWS): id, title, type_zh/en, owner_code/zh/en, raised_at, response_min (null while
  unacknowledged at as_of), limit_min, over_min, trace (the issue page's path).
- longest_open: the issues open at as_of, longest first (LIST_ROWS): the same columns as a
  breach but open_min, overdue and acknowledged instead of response/limit/over.
- ping_pong: the week's issues that went back to a department they had left, most hops first
  (LIST_ROWS): id, title, type, owner, raised_at, hops (the holding departments in order),
  handoffs, trace.
- pareto: types, locations, causes: code (null: not given), names, this (issues this week),
  avg4 (per week over the four before), share and cumulative_share of this week's issues; the
  PARETO_ROWS largest.
- escalations: per ladder level reached by an `escalated` event in the week: level, count
  (issues), ack_median_min (from the issue's first escalation to that level to its
  acknowledgement, for those escalated unacknowledged and acknowledged by as_of).
- material: stagnant (the lots stagnant at as_of, longest first, LIST_ROWS: lot, material_code,
  material_name, location_code, location_name, qty, dwell_min, limit_min) and stagnant_total;
  turnover (the week's); line_stops (the week's shortage issues, SHORTAGE_ISSUE_TYPES, at a
  line, the LIST_ROWS longest stops: id, title, line, location_code, raised_at, response_min,
  stop_min: raised to resolved, or to as_of while unresolved, resolved, trace) and
  line_stops_total.
- plan: every shift starting in the week: line, shift_start, shift_end, planned, actual,
  attainment (actual / planned once the shift has ended with an actual reported).
- actions: the action register carried into the week (data.reports.actions.carried), with
  `overdue`.
- daily: per KPI of DAILY_KEYS, its value over the issues raised on each site-local day of the
  five weeks that has ended by as_of (null on a day without one), as [{date, value}].
- markers: the start of each countermeasure about a KPI on that chart: date, action_id, kpi.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from data import db, kpis, queries, settings, theme, timezones, words
from data.analysis import breakdown, control
from data.models import Issue, IssueEvent, Location, Material, SlaRule, WeeklyPack
from data.reports import actions, kpi_report

SCHEMA = 1
WEEKS_BEFORE = 4
LIST_ROWS = 10
PARETO_ROWS = 10
WEEK_PATTERN = re.compile(r"^(\d{4})-W(\d{2})$")
LEVEL_PATTERN = re.compile(r"^L(\d+)\b")


@dataclass(frozen=True)
class Kpi:
    key: str
    unit: str
    better: str
    word: str


# The smallest change the pack shows of each unit: a tenth of a minute, of a percentage
# point, a hundredth of a count.
SHOWN_STEP = {"min": 0.1, "ratio": 0.001, "count": 0.01}

KPIS = (
    Kpi("raised", "count", "lower", "kpi_raised"),
    Kpi("response_median_min", "min", "lower", "kpi_response_median_min"),
    Kpi("response_p90_min", "min", "lower", "kpi_response_p90_min"),
    Kpi("resolution_median_min", "min", "lower", "kpi_resolution_median_min"),
    Kpi("resolution_p90_min", "min", "lower", "kpi_resolution_p90_min"),
    Kpi("response_sla_compliance", "ratio", "higher", "kpi_response_sla_compliance"),
    Kpi("resolution_sla_compliance", "ratio", "higher", "kpi_resolution_sla_compliance"),
    Kpi("resolution_rate", "ratio", "higher", "kpi_resolution_rate"),
    Kpi("open", "count", "lower", "kpi_open"),
    Kpi("overdue", "count", "lower", "kpi_overdue"),
    Kpi("handoffs_mean", "count", "lower", "kpi_handoffs_mean"),
    Kpi("ping_pong_issues", "count", "lower", "kpi_ping_pong_issues"),
    Kpi("stagnant_lots", "count", "lower", "report_stagnant_lots"),
    Kpi("plan_attainment", "ratio", "higher", "report_plan_attainment"),
)
KPI_KEYS = tuple(k.key for k in KPIS)
# The figures of the issues raised in a window, which a day's issues have too.
DAILY_KEYS = ("raised", "response_median_min", "response_p90_min", "resolution_median_min",
              "resolution_p90_min", "response_sla_compliance", "resolution_sla_compliance",
              "resolution_rate", "handoffs_mean", "ping_pong_issues")


class SourcesBehind(Exception):
    """The sources have not caught up with the week's end: a pack built now would miss rows."""


class WeekNotOver(ValueError):
    """A pack is of a whole week; this one has not ended at as_of."""


def parse_week(week: str) -> tuple[int, int]:
    """'2026-W48' as (2026, 48); a ValueError naming the value otherwise."""
    found = WEEK_PATTERN.match(week) if isinstance(week, str) else None
    if not found:
        raise ValueError(f"week {week!r} is not an ISO week such as 2026-W48")
    year, number = int(found[1]), int(found[2])
    try:
        date.fromisocalendar(year, number, 1)
    except ValueError:
        raise ValueError(f"week {week!r} does not exist: {year} has "
                         f"{date(year, 12, 28).isocalendar().week} ISO weeks") from None
    return year, number


def week_of(day: date) -> str:
    year, number, _ = day.isocalendar()
    return f"{year}-W{number:02d}"


def week_window(week: str) -> tuple[datetime, datetime]:
    """The week's Monday 00:00 and the next Monday 00:00, in site time."""
    year, number = parse_week(week)
    tz = timezones.site_zone()
    monday = date.fromisocalendar(year, number, 1)
    return (datetime.combine(monday, time(), tzinfo=tz),
            datetime.combine(monday + timedelta(days=7), time(), tzinfo=tz))


def shifted(week: str, weeks: int) -> str:
    """The ISO week `weeks` after `week` (before, when negative)."""
    year, number = parse_week(week)
    return week_of(date.fromisocalendar(year, number, 1) + timedelta(weeks=weeks))


def last_complete_week(now: datetime) -> str:
    """The newest week that has ended by `now` (site time)."""
    return week_of(timezones.to_site(now).date() - timedelta(days=7))


def grace() -> timedelta:
    hours = settings.get_float("WEEKLY_GRACE_HOURS")
    if hours < 0 or math.isnan(hours):
        raise ValueError(f"setting WEEKLY_GRACE_HOURS must be 0 or more, got {hours!r}")
    return timedelta(hours=hours)


def check_fresh(engine: Engine, week: str, as_of: datetime) -> None:
    """Refuse a pack of a week not over at as_of, or one the sources have not caught up with:
    while as_of is within the grace after the week's end, the newest record (an issue raised,
    an event, a movement) must be at most the grace before the week's end."""
    _, until = week_window(week)
    if as_of < until:
        raise WeekNotOver(f"week {week} is not over at {_iso(as_of)}: it ends at {_iso(until)}")
    wait = grace()
    if as_of >= until + wait:
        return
    with engine.connect() as conn:
        newest = queries.newest_record(conn, as_of)
    if newest is not None and newest >= until - wait:
        return
    hours = wait.total_seconds() / 3600
    said = ("there is no record at all" if newest is None else
            f"the newest record (an issue raised, an event or a movement) is at {_iso(newest)}, "
            f"{(until - newest).total_seconds() / 3600:.1f} hours before the week's end")
    raise SourcesBehind(
        f"the sources are behind for week {week}: {said}; the pack waits until they reach "
        f"{_iso(until - wait)}, or is built from {_iso(until + wait)} on as they are "
        f"(WEEKLY_GRACE_HOURS={hours:g})")


def _iso(value: datetime) -> str:
    return timezones.to_site(value).isoformat()


def _number(value):
    """A value as plain JSON: numpy scalars as Python ones, NaN as None."""
    if value is None:
        return None
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    return value


def _minutes(value) -> float | None:
    value = _number(value)
    return None if value is None else round(value, kpi_report.MINUTE_DECIMALS)


def _ratio(value) -> float | None:
    value = _number(value)
    return None if value is None else round(value, kpi_report.RATIO_DECIMALS)


def figure(report: dict, key: str):
    """A KPI of the pack out of the `kpis` report."""
    if key == "stagnant_lots":
        return report["material"]["stagnant_lots"]
    if key == "plan_attainment":
        return report["plan_attainment"]
    return report["overall"][key]


def _rounded(kpi: Kpi, value):
    if value is None:
        return None
    if kpi.unit == "min":
        return round(value, kpi_report.MINUTE_DECIMALS)
    if isinstance(value, int) or (kpi.unit == "count" and float(value).is_integer()):
        return int(value)
    return round(value, kpi_report.RATIO_DECIMALS)


def _kpi_row(kpi: Kpi, values: list, daily: pd.Series | None, starts: list[date],
             week_starts: list[date]) -> dict:
    """One KPI over the weeks, oldest first (this week last)."""
    this, last, before = values[-1], values[-2], [v for v in values[:-1] if v is not None]
    average = sum(before) / len(before) if before else None
    delta = None if this is None or last is None else _rounded(kpi, this - last)
    # A change too small to show (0.0 at the pack's precision) is neither good nor bad.
    good = None if delta is None or abs(delta) < SHOWN_STEP[kpi.unit] / 2 \
        else (delta < 0) == (kpi.better == "lower")
    if daily is not None:
        chart = control.xmr(daily, starts)
        signal = bool(chart.loc[[d >= week_starts[-1] for d in chart.index], "signal"].any())
    else:
        weekly = pd.Series(values, index=week_starts, dtype="float64")
        chart = control.xmr(weekly, starts)
        signal = bool(this is not None and week_starts[-1] in chart.index
                      and chart.loc[week_starts[-1], "signal"])
    name_zh, name_en = words.TEXT[kpi.word]
    return {"key": kpi.key, "name_zh": name_zh, "name_en": name_en, "unit": kpi.unit,
            "this": this, "last": last, "avg4": _rounded(kpi, average), "delta": delta,
            "better": kpi.better, "good": good, "signal": signal}


class _Names:
    """The plant's names for codes: departments, issue types, locations, materials."""

    def __init__(self, conn):
        self.departments = {r.code: (r.name_zh, r.name_en)
                            for r in queries.departments(conn).itertuples(index=False)}
        self.types = {r.issue_type: (r.name_zh, r.name_en)
                      for r in conn.execute(select(SlaRule.issue_type, SlaRule.name_zh, SlaRule.name_en))}
        self.locations = dict(conn.execute(select(Location.code, Location.name)).all())
        self.materials = dict(conn.execute(select(Material.code, Material.name)).all())

    def department(self, code) -> tuple[str, str]:
        return self.departments.get(code, (code, code))

    def issue_type(self, code) -> tuple[str, str]:
        return self.types.get(code, (code, code))


def _issue_row(issue, names: _Names) -> dict:
    type_zh, type_en = names.issue_type(issue.issue_type)
    owner_zh, owner_en = names.department(issue.owner_department_code)
    return {"id": issue.id, "title": issue.title, "type_zh": type_zh, "type_en": type_en,
            "owner_code": issue.owner_department_code, "owner_zh": owner_zh,
            "owner_en": owner_en, "raised_at": _iso(issue.raised_at)}


def trace(issue_id: str) -> str:
    return f"/issue/{issue_id}"


def _worst_breaches(population: pd.DataFrame, as_of: datetime, names: _Names) -> list[dict]:
    at = kpis.instant(as_of)
    breached = population[kpis.response_sla_outcomes(population, as_of) == kpis.BREACHED]
    response = kpis.response_minutes(breached, as_of)
    waited = ((at - pd.to_datetime(breached["raised_at"], utc=True)) / kpis.MINUTE)
    limit = pd.to_numeric(breached["ack_minutes"]).astype("float64")
    over = response.fillna(waited) - limit
    ranked = breached.assign(the_over=over, the_response=response, the_limit=limit).sort_values(
        ["the_over", "id"], ascending=[False, True], kind="stable").head(LIST_ROWS)
    return [{**_issue_row(r, names), "response_min": _minutes(r.the_response),
             "limit_min": _minutes(r.the_limit), "over_min": _minutes(r.the_over), "trace": trace(r.id)}
            for r in ranked.itertuples(index=False)]


def _longest_open(open_now: pd.DataFrame, as_of: datetime, names: _Names) -> list[dict]:
    at = kpis.instant(as_of)
    still = open_now[kpis.open_mask(open_now, as_of)]
    overdue = kpis.overdue_mask(still, as_of)
    acknowledged = pd.to_datetime(still["acknowledged_at"], utc=True) <= at
    ranked = still.assign(
        the_open=(at - pd.to_datetime(still["raised_at"], utc=True)) / kpis.MINUTE,
        the_overdue=overdue, the_acknowledged=acknowledged.fillna(False)).sort_values(
        ["the_open", "id"], ascending=[False, True], kind="stable").head(LIST_ROWS)
    return [{**_issue_row(r, names), "open_min": _minutes(r.the_open), "overdue": bool(r.the_overdue),
             "acknowledged": bool(r.the_acknowledged), "trace": trace(r.id)}
            for r in ranked.itertuples(index=False)]


def _ping_pong(population: pd.DataFrame, events: pd.DataFrame, as_of: datetime,
               names: _Names) -> list[dict]:
    chosen = population[population["id"].isin(kpis.ping_pong_issue_ids(events, as_of))]
    hops = kpis.holding_sequences(events[events["issue_id"].isin(chosen["id"])], as_of) \
        .groupby("issue_id")["department_code"].agg(list)
    handoffs = kpis.handoff_counts(chosen, events, as_of)
    ranked = chosen.assign(the_hops=chosen["id"].map(hops), the_count=chosen["id"].map(hops).str.len(),
                           the_handoffs=chosen["id"].map(handoffs)).sort_values(
        ["the_count", "raised_at", "id"], ascending=[False, True, True], kind="stable").head(LIST_ROWS)
    return [{**_issue_row(r, names), "hops": list(r.the_hops), "handoffs": int(r.the_handoffs),
             "trace": trace(r.id)} for r in ranked.itertuples(index=False)]


def _pareto(this: pd.DataFrame, before: pd.DataFrame, by: str, named) -> list[dict]:
    """The PARETO_ROWS values with the most issues this week (then the most before)."""
    counts = breakdown.pareto(this, by) if len(this) else pd.DataFrame(
        columns=list(breakdown.PARETO_COLUMNS))
    earlier = breakdown.dimension_values(before, breakdown.dimension_column(by, before)) \
        .value_counts(dropna=False) if len(before) else pd.Series(dtype="int64")
    earlier.index = [None if pd.isna(v) else v for v in earlier.index]
    rows = {value: {"this": int(n), "share": _ratio(share), "cumulative_share": _ratio(cumulative)}
            for value, n, share, cumulative in counts.itertuples(index=False, name=None)}
    for value in earlier.index:
        rows.setdefault(value, {"this": 0, "share": 0.0, "cumulative_share": None})
    ranked = sorted(rows.items(), key=lambda item: (
        -item[1]["this"], -int(earlier.get(item[0], 0)), item[0] is None, str(item[0])))
    result = []
    for value, row in ranked[:PARETO_ROWS]:
        name_zh, name_en = words.TEXT["weekly_not_given"] if value is None else named(value)
        result.append({"code": value, "name_zh": name_zh, "name_en": name_en, "this": row["this"],
                       "avg4": round(int(earlier.get(value, 0)) / WEEKS_BEFORE, 2),
                       "share": row["share"], "cumulative_share": row["cumulative_share"]})
    return result


def _causes(conn, since: datetime, until: datetime) -> pd.Series:
    rows = conn.execute(select(Issue.id, Issue.cause).where(
        Issue.raised_at >= since, Issue.raised_at < until)).all()
    return pd.Series({issue_id: cause for issue_id, cause in rows}, dtype=object)


def _escalations(conn, since: datetime, until: datetime, as_of: datetime) -> list[dict]:
    rows = conn.execute(
        select(IssueEvent.issue_id, IssueEvent.at, IssueEvent.note, Issue.acknowledged_at)
        .join(Issue, Issue.id == IssueEvent.issue_id)
        .where(IssueEvent.kind == "escalated", IssueEvent.at >= since, IssueEvent.at < until,
               IssueEvent.at <= as_of)).all()
    first: dict[int, dict[str, tuple]] = {}
    for issue_id, at, note, acknowledged in rows:
        found = LEVEL_PATTERN.match(note or "")
        if not found:
            continue
        level = first.setdefault(int(found[1]), {})
        if issue_id not in level or at < level[issue_id][0]:
            level[issue_id] = (at, acknowledged)
    result = []
    for level in sorted(first):
        waits = [(acknowledged - at).total_seconds() / 60
                 for at, acknowledged in first[level].values()
                 if acknowledged is not None and at < acknowledged <= as_of]
        median, _ = kpis.median_p90(pd.Series(waits, dtype="float64"))
        result.append({"level": level, "count": len(first[level]), "ack_median_min": _minutes(median)})
    return result


def _material(conn, population: pd.DataFrame, as_of: datetime, turnover, names: _Names) -> dict:
    at = kpis.instant(as_of)
    stuck = kpis.stagnant_lots(queries.lot_positions(conn, as_of), as_of)
    stagnant = [{"lot": r.lot, "material_code": r.material_code,
                 "material_name": names.materials.get(r.material_code, r.material_code),
                 "location_code": r.location_code,
                 "location_name": names.locations.get(r.location_code, r.location_code),
                 "qty": round(float(r.qty), kpi_report.QTY_DECIMALS),
                 "dwell_min": _minutes(r.dwell_minutes), "limit_min": _minutes(r.max_dwell_minutes)}
                for r in stuck.head(LIST_ROWS).itertuples(index=False)]
    short = population[population["issue_type"].isin(_shortage_types())
                       & population["line"].notna()].sort_values(["raised_at", "id"], kind="stable")
    raised = pd.to_datetime(short["raised_at"], utc=True)
    resolved = pd.to_datetime(short["resolved_at"], utc=True)
    done = resolved <= at
    stop = (resolved.where(done, at) - raised) / kpis.MINUTE
    response = kpis.response_minutes(short, as_of)
    longest = stop.sort_values(ascending=False, kind="stable").index[:LIST_ROWS]
    stops = [{"id": r.id, "title": r.title, "line": r.line, "location_code": r.location_code,
              "raised_at": _iso(r.raised_at), "response_min": _minutes(response[i]),
              "stop_min": _minutes(stop[i]), "resolved": bool(done[i]), "trace": trace(r.id)}
             for i, r in zip(short.loc[longest].index, short.loc[longest].itertuples(index=False))]
    return {"stagnant": stagnant, "stagnant_total": len(stuck), "turnover": turnover,
            "line_stops": stops, "line_stops_total": len(short)}


def _shortage_types() -> list[str]:
    return [t.strip() for t in settings.get("SHORTAGE_ISSUE_TYPES").split(",") if t.strip()]


def _plan(conn, since: datetime, until: datetime, as_of: datetime) -> list[dict]:
    plan = queries.production_plan(conn, since, until).sort_values(["line", "shift_start"],
                                                                   kind="stable")
    at = kpis.instant(as_of)
    rows = []
    for r in plan.itertuples(index=False):
        ended = pd.Timestamp(r.shift_end) <= at and not pd.isna(r.actual_qty)
        planned, actual = float(r.planned_qty), _number(r.actual_qty)
        rows.append({"line": r.line, "shift_start": _iso(r.shift_start),
                     "shift_end": _iso(r.shift_end), "planned": planned, "actual": actual,
                     "attainment": _ratio(actual / planned) if ended and planned > 0 else None})
    return rows


def _departments(report: dict, names: _Names) -> list[dict]:
    rows = []
    for code, values in report["by_department"].items():
        name_zh, name_en = names.department(code)
        rows.append({"code": code, "name_zh": name_zh, "name_en": name_en,
                     "raised": values["raised"],
                     "response_median_min": values["response_median_min"],
                     "response_sla_compliance": values["response_sla_compliance"],
                     "resolution_rate": values["resolution_rate"],
                     "ping_pong": values["ping_pong_issues"], "rank": None})
    ranked = sorted((r for r in rows if r["raised"] and r["response_sla_compliance"] is not None),
                    key=lambda r: (-r["response_sla_compliance"],
                                   math.inf if r["response_median_min"] is None else r["response_median_min"],
                                   -(r["resolution_rate"] or 0), r["code"]))
    for place, row in enumerate(ranked, start=1):
        row["rank"] = place
    return sorted(rows, key=lambda r: (r["rank"] is None, r["rank"] or 0, r["code"]))


def _star(departments: list[dict]) -> dict | None:
    """The collaboration star by the wall's rule (data.kpis.collaboration_star) over the week,
    with the figures that earned it in both languages."""
    minimum = settings.get_int("STAR_MIN_ISSUES")
    code, tied = kpis.collaboration_star(
        ((r["code"], r["raised"], r["response_median_min"], r["response_sla_compliance"]) for r in departments),
        minimum, lambda compliance: theme.level("response_sla_compliance", compliance) == theme.BAD)
    if code is None:
        return None
    best = next(r for r in departments if r["code"] == code)
    said = {lang: words.t("weekly_star_why", lang).format(
        median=words.format_minutes(best["response_median_min"], lang),
        compliance=words.format_percent(best["response_sla_compliance"], lang),
        raised=best["raised"]) for lang in words.LANGUAGES}
    return {"code": code, "name_zh": best["name_zh"], "name_en": best["name_en"],
            "why_zh": said["zh"], "why_en": said["en"], "raised": best["raised"],
            "response_median_min": best["response_median_min"],
            "response_sla_compliance": best["response_sla_compliance"],
            "tied_with": tied, "min_issues": minimum}


def _daily(population: pd.DataFrame, events: pd.DataFrame, days: list[date],
           as_of: datetime) -> dict[str, pd.Series]:
    """Each DAILY_KEYS figure over the issues raised on each day, in one grouped pass."""
    tz = timezones.site_zone()
    day = pd.to_datetime(population["raised_at"], utc=True).dt.tz_convert(tz).dt.date
    table = breakdown.kpis_by(population.assign(raised_day=day), events,
                              population.iloc[0:0].assign(raised_day=[]), as_of, "raised_day",
                              values=days)
    return {key: table[key].astype("float64") for key in DAILY_KEYS}


def build_pack(engine: Engine, week: str, *, as_of: datetime) -> dict:
    """The pack of `week` at as_of (module docstring): refused with WeekNotOver before the week
    has ended, SourcesBehind while the sources have not caught up."""
    kpis.instant(as_of)
    check_fresh(engine, week, as_of)
    since, until = week_window(week)
    tz = timezones.site_zone()
    weeks = [shifted(week, -k) for k in range(WEEKS_BEFORE, -1, -1)]
    reports = []
    for k, each in zip(range(WEEKS_BEFORE, -1, -1), weeks):
        start, end = week_window(each)
        # The earlier weeks need the counts only: their stock and turnover are not shown.
        reports.append(kpi_report.kpi_report(engine, since=start, until=end,
                                             as_of=as_of - timedelta(weeks=k), stock=k == 0))
    report = reports[-1]
    first, _ = week_window(weeks[0])
    days = [first.date() + timedelta(days=n) for n in range((until - first).days)
            if datetime.combine(first.date() + timedelta(days=n + 1), time(), tzinfo=tz) <= as_of]
    with engine.connect() as conn:
        names = _Names(conn)
        history = queries.issue_population(conn, first, until)
        history_events = queries.holder_events(conn, first, until, as_of)
        population = queries.issue_population(conn, since, until)
        events = queries.holder_events(conn, since, until, as_of)
        open_now = queries.open_issues(conn, as_of)
        causes = _causes(conn, first, until)
        escalations = _escalations(conn, since, until, as_of)
        material = _material(conn, population, as_of, report["material"]["turnover"], names)
        plan = _plan(conn, since, until, as_of)
    daily = _daily(history, history_events, days, as_of)
    markers = actions.markers(engine, week, first.date())
    week_starts = [week_window(w)[0].date() for w in weeks]
    rows = []
    for kpi in KPIS:
        starts = [date.fromisoformat(m["date"]) for m in markers if m["kpi"] == kpi.key]
        values = [figure(r, kpi.key) for r in reports]
        row = _kpi_row(kpi, values, daily.get(kpi.key), starts, week_starts)
        row["weeks"] = [{"week": w, "value": v} for w, v in zip(weeks, values)]
        rows.append(row)
    before = history[pd.to_datetime(history["raised_at"], utc=True) < since]
    departments = _departments(report, names)
    return {
        "schema": SCHEMA, "week": week, "since": _iso(since), "until": _iso(until),
        "as_of": _iso(as_of), "built_at": _iso(timezones.utc_now()), "tz": str(tz.key),
        "kpis": rows,
        "departments": departments,
        "star": _star(departments),
        "worst_breaches": _worst_breaches(population, as_of, names),
        "longest_open": _longest_open(open_now, as_of, names),
        "ping_pong": _ping_pong(population, events, as_of, names),
        "pareto": {
            "types": _pareto(population, before, "issue_type", names.issue_type),
            "locations": _pareto(population, before, "location",
                                 lambda code: (names.locations.get(code, code),) * 2),
            "causes": _pareto(population.assign(cause=population["id"].map(causes)),
                              before.assign(cause=before["id"].map(causes)), "cause",
                              lambda cause: (cause, cause)),
        },
        "escalations": escalations,
        "material": material,
        "plan": plan,
        "actions": actions.carried(engine, week),
        "daily": {key: [{"date": d.isoformat(), "value": _rounded(_kpi(key), _number(v))}
                        for d, v in series.items()] for key, series in daily.items()},
        "markers": markers,
    }


def _kpi(key: str) -> Kpi:
    return next(k for k in KPIS if k.key == key)


def freeze(engine: Engine, week: str, *, as_of: datetime, built_by: str) -> dict:
    """Build the pack of `week` and keep it; a week already frozen keeps its first pack (which
    is returned), whoever asks again."""
    if not isinstance(built_by, str) or not built_by.strip():
        raise ValueError("built_by: must name who froze the pack")
    kept = frozen(engine, week)
    if kept is not None:
        return kept
    pack = build_pack(engine, week, as_of=as_of)
    try:
        with db.session_scope(engine) as session:
            session.add(WeeklyPack(week=week, built_at=datetime.fromisoformat(pack["built_at"]),
                                   as_of=as_of, built_by=built_by.strip()[:100],
                                   pack=json.dumps(pack, ensure_ascii=False, allow_nan=False)))
    except IntegrityError:
        return frozen(engine, week)
    return pack


def frozen(engine: Engine, week: str) -> dict | None:
    """The pack kept for `week`, as it was built; None when the week was never frozen."""
    parse_week(week)
    with engine.connect() as conn:
        text = conn.execute(select(WeeklyPack.pack).where(WeeklyPack.week == week)).scalar()
    return None if text is None else json.loads(text)
