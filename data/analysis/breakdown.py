"""Figures by any dimension: a Pareto of counts, and every issue KPI of kpis.issue_kpis for
each department, issue type, location, line, severity or cause in one grouped pass, so that a
thousand groups cost about what one costs.

Each figure follows the reference rules of data/kpis.py to the last bit (the differential test
holds every group to kpis.issue_kpis on its rows); only the grouping is new.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

import numpy as np
import pandas as pd

from data import kpis

# The explorer's dimensions and the issue column each groups by. An issue belongs to the
# department that owns it now, as in the contract's "by department".
DIMENSIONS = {
    "department": "owner_department_code", "issue_type": "issue_type",
    "location": "location_code", "line": "line", "severity": "severity", "cause": "cause",
}
PARETO_COLUMNS = ("value", "count", "share", "cumulative_share")
# The quantiles of kpis.median_p90, as it hands them to numpy.
QUANTILES = np.array([0.5, 0.9]) * 100 / 100


def dimension_column(by: str, frame: pd.DataFrame | None = None) -> str:
    """The column a dimension groups by: a name of DIMENSIONS, or a column of `frame`."""
    if by in DIMENSIONS:
        return DIMENSIONS[by]
    if frame is not None and by in frame:
        return by
    raise ValueError(f"unknown dimension {by!r}; choose one of {', '.join(DIMENSIONS)}")


def dimension_values(frame: pd.DataFrame, column: str) -> pd.Series:
    """The frame's values of a column as objects, missing ones as None (a group of their
    own: issues without a line, a cause not yet known)."""
    if column not in frame:
        raise ValueError(f"the issues have no column {column!r}")
    values = frame[column].astype(object)
    return values.where(values.notna(), None)


def pareto(issues: pd.DataFrame, by: str) -> pd.DataFrame:
    """Issues per value of a dimension (PARETO_COLUMNS), most first (ties by value, no value
    last); `cumulative_share` is the share of the values up to this one, ending at 1."""
    values = dimension_values(issues, dimension_column(by, issues))
    counts = values.value_counts(dropna=False)
    named = pd.Series(counts.index.to_numpy(dtype=object), dtype=object)
    missing = named.isna()
    frame = pd.DataFrame({"value": named.where(~missing, None),
                          "count": counts.to_numpy(dtype="int64")})
    frame = (frame.assign(_missing=missing, _name=frame["value"].where(~missing, "").astype(str))
             .sort_values(["count", "_missing", "_name"], ascending=[False, True, True],
                          kind="stable")
             .drop(columns=["_missing", "_name"]).reset_index(drop=True))
    total = int(frame["count"].sum())
    frame["share"] = frame["count"] / total if total else np.nan
    frame["cumulative_share"] = frame["count"].cumsum() / total if total else np.nan
    return frame[list(PARETO_COLUMNS)]


def group_median_p90(groups: np.ndarray, minutes: np.ndarray,
                     count: int) -> tuple[np.ndarray, np.ndarray]:
    """kpis.median_p90 of the minutes of each group 0..count-1 at once (NaN where a group has
    no value), by numpy's own linear interpolation, operation for operation."""
    keep = ~np.isnan(minutes)
    groups, minutes = groups[keep], minutes[keep]
    order = np.lexsort((minutes, groups))
    groups, minutes = groups[order], minutes[order]
    sizes = np.bincount(groups, minlength=count)
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    result = np.full((len(QUANTILES), count), np.nan)
    has = np.flatnonzero(sizes)
    n = sizes[has]
    for row, quantile in enumerate(QUANTILES):
        virtual = (n - 1) * quantile
        previous = np.floor(virtual)
        above = virtual >= n - 1
        lower = np.where(above, n - 1, previous).astype(np.int64)
        upper = np.where(above, n - 1, previous + 1).astype(np.int64)
        gamma = virtual - np.where(above, -1, previous)
        a, b = minutes[offsets[has] + lower], minutes[offsets[has] + upper]
        difference = b - a
        value = a + difference * gamma
        value = np.where(gamma >= 0.5, b - difference * (1 - gamma), value)
        result[row, has] = value
    return result[0], result[1]


def _ratio(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(whole > 0, part / np.where(whole > 0, whole, 1), np.nan)


def kpis_by(issues: pd.DataFrame, events: pd.DataFrame, open_now: pd.DataFrame,
            as_of: datetime, by: str, values: Iterable | None = None) -> pd.DataFrame:
    """kpis.issue_kpis for each value of a dimension, one row per value (index named after
    the dimension, columns kpis.ISSUE_KPI_KEYS; NaN where issue_kpis says None). `issues` is
    the window's population, `open_now` the issues open at as_of. The rows are the values of
    the population and of open_now, or exactly `values` when given (a value without issues
    gets zeros and NaN)."""
    column = dimension_column(by, issues)
    population = dimension_values(issues, column)
    open_values = (dimension_values(open_now, column) if len(open_now)
                   else pd.Series([], dtype=object))
    groups = pd.Index(pd.unique(pd.concat([population, open_values], ignore_index=True))
                      if values is None else list(values), dtype=object)
    count = len(groups)
    mine = groups.get_indexer(population)
    inside = mine >= 0
    people = issues[inside]
    mine = mine[inside]

    response = kpis.response_sla_outcomes(people, as_of).to_numpy()
    resolution = kpis.resolution_sla_outcomes(people, as_of).to_numpy()

    def tally(mask) -> np.ndarray:
        return np.bincount(mine[np.asarray(mask, dtype=bool)], minlength=count)

    raised = np.bincount(mine, minlength=count)
    response_median, response_p90 = group_median_p90(
        mine, kpis.response_minutes(people, as_of).to_numpy(dtype="float64"), count)
    resolution_median, resolution_p90 = group_median_p90(
        mine, kpis.resolution_minutes(people, as_of).to_numpy(dtype="float64"), count)
    finished = kpis._finished_by(people, kpis.instant(as_of)).to_numpy(dtype=bool)
    handoffs = kpis.handoff_counts(people, events, as_of).to_numpy(dtype="float64")
    ping_pong = people["id"].isin(kpis.ping_pong_issue_ids(events, as_of)).to_numpy()

    open_mine = groups.get_indexer(open_values)
    is_open = kpis.open_mask(open_now, as_of).to_numpy(dtype=bool) & (open_mine >= 0)
    is_overdue = kpis.overdue_mask(open_now, as_of).to_numpy(dtype=bool) & (open_mine >= 0)

    result = pd.DataFrame({
        "raised": raised,
        "response_median_min": response_median,
        "response_p90_min": response_p90,
        "resolution_median_min": resolution_median,
        "resolution_p90_min": resolution_p90,
        "response_sla_met": tally(response == kpis.MET),
        "response_sla_breached": tally(response == kpis.BREACHED),
        "response_sla_compliance": _ratio(tally(response == kpis.MET),
                                          tally(response != kpis.PENDING)),
        "resolution_sla_met": tally(resolution == kpis.MET),
        "resolution_sla_breached": tally(resolution == kpis.BREACHED),
        "resolution_sla_compliance": _ratio(tally(resolution == kpis.MET),
                                            tally(resolution != kpis.PENDING)),
        "resolution_rate": _ratio(tally(finished), raised),
        "open": np.bincount(open_mine[is_open], minlength=count),
        "overdue": np.bincount(open_mine[is_overdue], minlength=count),
        "handoffs_mean": _ratio(np.bincount(mine, weights=handoffs, minlength=count), raised),
        "ping_pong_issues": tally(ping_pong),
    }, index=pd.Index(groups, name=by))
    return result[list(kpis.ISSUE_KPI_KEYS)]
