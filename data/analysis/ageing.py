"""How old the open issues are and who holds them; how long each week's issues stayed
unresolved; when in the week issues come and how fast they are answered.

Open, resolved and response follow data/kpis.py at as_of; the site's weeks, days and hours
are those of the zone given (SITE_TZ unless given). Definitions: docs/analysis.md.
"""
from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Sequence

import numpy as np
import pandas as pd

from data import kpis, timezones
from data.analysis.breakdown import group_median_p90
from data.analysis.holding import holding_intervals, nanoseconds

AGE_BUCKETS_H = (1, 4, 8, 24, 72)
UNRESOLVED_AFTER_H = (1, 4, 8, 24)
HOUR = pd.Timedelta(hours=1)
OPEN_AGE_COLUMNS = ("issue_id", "age_h", "bucket", "from_h", "to_h", "holder")
AGEING_COLUMNS = ("bucket", "from_h", "to_h", "holder", "count")
UNRESOLVED_COLUMNS = ("week_start", "hours", "raised", "unresolved", "share")
HEATMAP_COLUMNS = ("weekday", "hour", "raised", "response_median_min")


def open_ages(issues: pd.DataFrame, events: pd.DataFrame, as_of: datetime,
              buckets: Sequence[float] = AGE_BUCKETS_H) -> pd.DataFrame:
    """Each issue open at as_of (kpis.open_mask): its age in hours, its bucket (0: younger
    than buckets[0]; i: at least buckets[i-1] and younger than buckets[i]; the last: at least
    buckets[-1], to_h infinite) and its holder: the department of its hop still held at
    as_of, or its owner when its events show none held."""
    edges = np.asarray(sorted(buckets), dtype="float64")
    at = kpis.instant(as_of)
    open_issues = issues[kpis.open_mask(issues, as_of).to_numpy(dtype=bool)]
    age = ((at - pd.to_datetime(open_issues["raised_at"], utc=True)) / HOUR).to_numpy(
        dtype="float64")
    bucket = np.searchsorted(edges, age, side="right")
    bounds = np.concatenate(([0.0], edges, [np.inf]))
    hops = holding_intervals(open_issues, events, as_of)
    held = hops[hops["let_go_at"].isna()].drop_duplicates("issue_id", keep="last")
    holder = open_issues["id"].map(held.set_index("issue_id")["department_code"])
    holder = holder.where(holder.notna(), open_issues["owner_department_code"])
    return pd.DataFrame({
        "issue_id": open_issues["id"].to_numpy(dtype=object), "age_h": age,
        "bucket": bucket.astype("int64"), "from_h": bounds[bucket], "to_h": bounds[bucket + 1],
        "holder": holder.astype(object).to_numpy(dtype=object),
    })


def ageing(issues: pd.DataFrame, events: pd.DataFrame, as_of: datetime,
           buckets: Sequence[float] = AGE_BUCKETS_H) -> pd.DataFrame:
    """Open issues per age bucket and current holder (AGEING_COLUMNS; open_ages says how
    each issue is placed), youngest bucket first, then most issues."""
    ages = open_ages(issues, events, as_of, buckets)
    counted = (ages.groupby(["bucket", "from_h", "to_h", "holder"], dropna=False)
               .size().rename("count").reset_index())
    return counted.sort_values(["bucket", "count", "holder"], ascending=[True, False, True],
                               kind="stable").reset_index(drop=True)[list(AGEING_COLUMNS)]


def _population(issues: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Issues raised by as_of, not cancelled."""
    raised = pd.to_datetime(issues["raised_at"], utc=True)
    return issues[((raised <= kpis.instant(as_of)) & (issues["status"] != "cancelled"))
                  .to_numpy(dtype=bool)]


def unresolved_after(issues: pd.DataFrame, as_of: datetime,
                     hours: Sequence[float] = UNRESOLVED_AFTER_H,
                     tz: tzinfo | None = None) -> pd.DataFrame:
    """For each site-local week raised (Monday to Sunday) and each t in `hours`: the issues
    raised that week, how many were still unresolved t hours after being raised (neither
    resolved nor closed by then), and that share (UNRESOLVED_COLUMNS). A week appears for t
    only once t hours have passed since the week ended, so that every issue of it has had its
    t hours by as_of; the weeks still waiting are left out rather than counted short."""
    zone = tz or timezones.site_zone()
    at = kpis.instant(as_of)
    population = _population(issues, as_of)
    raised_ns = nanoseconds(population["raised_at"])
    local = pd.to_datetime(population["raised_at"], utc=True).dt.tz_convert(zone)
    days = local.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    # 1970-01-01 was a Thursday: day 0 is weekday 3.
    monday = days - ((days.astype("int64") + 3) % 7).astype("timedelta64[D]")
    weeks, week_of = np.unique(monday, return_inverse=True)
    raised = np.bincount(week_of, minlength=len(weeks))
    finished = np.minimum(_known_ns(population["resolved_at"], at),
                          _known_ns(population["closed_at"], at))
    rows = []
    for w, week in enumerate(weeks.astype(object)):
        week_end = pd.Timestamp(datetime.combine(week + timedelta(days=7), datetime.min.time(),
                                                 tzinfo=zone)).tz_convert("UTC")
        for t in hours:
            if week_end + pd.Timedelta(hours=t) > at:
                continue
            rows.append((week, t, w))
    unresolved = {t: np.bincount(week_of[finished > raised_ns + int(pd.Timedelta(hours=t).value)],
                                 minlength=len(weeks)) for t in {t for _, t, _ in rows}}
    rows = [(week, t, int(raised[w]), int(unresolved[t][w]), int(unresolved[t][w]) / int(raised[w]))
            for week, t, w in rows]
    return pd.DataFrame(rows, columns=list(UNRESOLVED_COLUMNS)).astype(
        {"raised": "int64", "unresolved": "int64", "share": "float64"})


def _known_ns(values: pd.Series, at: pd.Timestamp) -> np.ndarray:
    """Instants at or before `at` in ns; later or missing ones as never."""
    ns = nanoseconds(values)
    never = np.iinfo(np.int64).max
    return np.where((ns == np.iinfo(np.int64).min) | (ns > at.as_unit("ns").value), never, ns)


def heatmap(issues: pd.DataFrame, as_of: datetime, tz: tzinfo) -> pd.DataFrame:
    """Weekday (0 Monday .. 6 Sunday) x hour of day in the site's zone, all 168 cells
    (HEATMAP_COLUMNS): issues raised by as_of (not cancelled) in the cell, and their median
    response (kpis.response_minutes and kpis.median_p90; NaN without any)."""
    population = _population(issues, as_of)
    local = pd.to_datetime(population["raised_at"], utc=True).dt.tz_convert(tz)
    cell = (local.dt.day_of_week * 24 + local.dt.hour).to_numpy(dtype="int64")
    median, _ = group_median_p90(
        cell, kpis.response_minutes(population, as_of).to_numpy(dtype="float64"), 7 * 24)
    cells = np.arange(7 * 24)
    return pd.DataFrame({"weekday": cells // 24, "hour": cells % 24,
                         "raised": np.bincount(cell, minlength=7 * 24),
                         "response_median_min": median})
