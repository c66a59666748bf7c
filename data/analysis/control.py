"""The control chart (XmR: individuals and moving range) of a daily figure, with the Western
Electric run rules, so that a review meeting can tell a real change from the day-to-day noise.

Limits are computed per segment: a dated countermeasure starts a new segment on its date, and
the points from then on are judged against limits of their own (the old ones described a
process that no longer runs). Definitions: docs/analysis.md.
"""
from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Iterable

import numpy as np
import pandas as pd

from data import kpis

# The XmR constants: limits at 2.66 mean moving ranges (3 sigma of individuals), the
# moving range's upper limit at 3.267 of its mean, sigma estimated as MRbar / d2.
LIMIT_FACTOR, MR_LIMIT_FACTOR, D2 = 2.66, 3.267, 1.128
RULES = ("rule_1", "rule_2", "rule_3", "rule_4")
XMR_COLUMNS = ("value", "moving_range", "segment", "segment_start", "centre", "ucl", "lcl",
               "mr_centre", "mr_ucl", "sigma", *RULES, "signal")


def daily_response_median(issues: pd.DataFrame, as_of: datetime, tz: tzinfo) -> pd.Series:
    """The median response (kpis.response_minutes) of the issues raised on each site-local
    day that has ended by as_of, indexed by date; a day without an acknowledged issue is
    left out. Cancelled issues are not in the population."""
    at = kpis.instant(as_of)
    population = issues[issues["status"] != "cancelled"]
    raised = pd.to_datetime(population["raised_at"], utc=True).dt.tz_convert(tz)
    day = raised.dt.normalize()
    ended = (day + pd.DateOffset(days=1)) <= at.tz_convert(tz)
    minutes = kpis.response_minutes(population, as_of)
    frame = pd.DataFrame({"day": raised.dt.date, "minutes": minutes})[ended.to_numpy()]
    return frame.dropna().groupby("day")["minutes"].median().rename("response_median_min")


def _segments(days: pd.Index, countermeasures: Iterable[date]) -> np.ndarray:
    """The segment of each day: how many countermeasure dates are at or before it."""
    marks = np.array(sorted({pd.Timestamp(d).date() for d in countermeasures}), dtype=object)
    day_values = np.array([pd.Timestamp(d).date() for d in days], dtype=object)
    return np.searchsorted(marks, day_values, side="right") if len(marks) else np.zeros(
        len(days), dtype=np.int64)


def xmr(daily: pd.Series, countermeasures: Iterable[date] = ()) -> pd.DataFrame:
    """One row per day with a value (XMR_COLUMNS), days in order: the value, its moving range
    (from the previous day of the same segment), the segment's centre line (mean) and limits
    (centre ± 2.66 MRbar, MR upper limit 3.267 MRbar, sigma = MRbar / 1.128), and the Western
    Electric rules each point completes (rule_1: beyond a limit; rule_2: two of three beyond
    2 sigma on one side; rule_3: four of five beyond 1 sigma on one side; rule_4: eight in a
    row on one side of the centre). A point is flagged for rules 2 and 3 only when it is one
    of the points beyond. Runs never cross a countermeasure. A segment of one point has no
    limits and no rule."""
    series = pd.Series(daily, dtype="float64").dropna().sort_index()
    values = series.to_numpy(dtype="float64")
    segment = _segments(series.index, countermeasures)
    n = len(values)
    continues = np.zeros(n, dtype=bool)
    continues[1:] = segment[1:] == segment[:-1]
    moving_range = np.full(n, np.nan)
    moving_range[1:] = np.abs(np.diff(values))
    moving_range[~continues] = np.nan

    frame = pd.DataFrame({"value": values, "moving_range": moving_range, "segment": segment},
                         index=series.index)
    grouped = frame.groupby("segment")
    centre = grouped["value"].transform("mean").to_numpy()
    mr_centre = grouped["moving_range"].transform("mean").to_numpy()
    sigma = mr_centre / D2
    first_of_segment = np.maximum.accumulate(np.where(continues, 0, np.arange(n)))
    frame["segment_start"] = series.index.to_numpy(dtype=object)[first_of_segment]
    frame["centre"] = centre
    frame["ucl"] = centre + LIMIT_FACTOR * mr_centre
    frame["lcl"] = centre - LIMIT_FACTOR * mr_centre
    frame["mr_centre"] = mr_centre
    frame["mr_ucl"] = MR_LIMIT_FACTOR * mr_centre
    frame["sigma"] = sigma

    judged = ~np.isnan(sigma)
    frame["rule_1"] = judged & ((values > frame["ucl"].to_numpy())
                                | (values < frame["lcl"].to_numpy()))
    frame["rule_2"] = _some_of_last(values, centre, sigma, segment, judged, 2.0, 2, 3)
    frame["rule_3"] = _some_of_last(values, centre, sigma, segment, judged, 1.0, 4, 5)
    frame["rule_4"] = _some_of_last(values, centre, sigma, segment, judged, 0.0, 8, 8)
    frame["signal"] = frame[list(RULES)].any(axis=1)
    return frame[list(XMR_COLUMNS)]


def _some_of_last(values, centre, sigma, segment, judged, zone: float, needed: int,
                  window: int) -> np.ndarray:
    """Points beyond `zone` sigma on one side that complete `needed` of the last `window`
    points (of the same segment) beyond it on that side; zone 0: strictly above or below the
    centre."""
    flagged = np.zeros(len(values), dtype=bool)
    offset = values - centre
    for side in (1.0, -1.0):
        beyond = judged & (side * offset > zone * sigma)
        counts = pd.Series(beyond.astype(np.int64)).groupby(segment).rolling(
            window, min_periods=window).sum().to_numpy()
        flagged |= beyond & (np.nan_to_num(counts) >= needed)
    return flagged
