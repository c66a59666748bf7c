"""What changed this week against last: for each value of a dimension, its share of the
change in the number of issues raised and of the change in the median response.

The weeks are the seven site-local days that end at as_of, [as_of - 7 days, as_of), and the
seven before them (the `kpis` command's default window, and the one before it). Both weeks'
responses are taken as known at as_of. Cancelled issues are in neither week.

The change in count splits exactly: each value's own change. The median has no such sum, so
the change in median response is split by Shapley values: the values are players; a
coalition's median is the median of this week's responses for the values in it and last
week's for the others; each value gets its average marginal effect over the orders in which
the values could switch from last week to this. Every order adds up to the whole change, so
the contributions always do. With at most EXACT_PLAYERS values every coalition is computed
(the exact Shapley value); with more, the average is over SAMPLED_ORDERS random orders and
their reverses (seeded: the same data gives the same split). Definitions: docs/analysis.md.
"""
from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd

from data import kpis, timezones
from data.analysis.breakdown import dimension_column, dimension_values

EXACT_PLAYERS = 8
SAMPLED_ORDERS = 16
WEEK_COLUMNS = ("count_last", "count_this", "count_change", "median_last_min",
                "median_this_min", "median_contribution_min")


def weeks(as_of: datetime, tz: tzinfo) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """(last week's start, this week's start, as_of): seven site-local days each, in UTC."""
    at = kpis.instant(as_of)
    local = at.tz_convert(tz).to_pydatetime()
    this_start = pd.Timestamp(local - timedelta(days=7)).tz_convert("UTC")
    last_start = pd.Timestamp(local - timedelta(days=14)).tz_convert("UTC")
    return last_start, this_start, at


class _Responses:
    """Both weeks' responses of the players, sorted once, for the median of any coalition."""

    BLOCK = 512

    def __init__(self, minutes: np.ndarray, player: np.ndarray, this_week: np.ndarray):
        order = np.argsort(minutes, kind="stable")
        self.minutes, self.player = minutes[order], player[order]
        self.this_week = this_week[order]
        self.pooled = _median(self.minutes)
        self.block = np.arange(len(self.minutes)) // self.BLOCK
        self.blocks = int(self.block[-1]) + 1 if len(self.block) else 0
        mine = np.argsort(self.player, kind="stable")
        bounds = np.searchsorted(self.player[mine], np.arange(int(self.player.max()) + 2))
        self.rows_of = [mine[bounds[p]:bounds[p + 1]] for p in range(len(bounds) - 1)]

    def median(self, switched: np.ndarray) -> float:
        """The median with this week's responses of the switched players and last week's of
        the others; when that leaves none, the median of both weeks (a neutral value)."""
        chosen = self.minutes[self.this_week == switched[self.player]]
        return _median(chosen) if len(chosen) else self.pooled

    def walk(self, order: np.ndarray) -> np.ndarray:
        """The median's move as each player of `order` switches in turn, from nobody to
        everybody: the same values as `median` gives, without re-reading every response at
        each step (the responses in counted blocks, only the switching player's updated)."""
        counted = ~self.this_week
        per_block = np.bincount(self.block[counted], minlength=self.blocks)
        before = self._ranked_median(counted, per_block)
        moves = np.zeros(len(order))
        for step, player in enumerate(order):
            rows = self.rows_of[player]
            counted[rows] = ~counted[rows]
            change = np.where(counted[rows], 1, -1)
            per_block += np.bincount(self.block[rows], weights=change,
                                     minlength=self.blocks).astype(per_block.dtype)
            after = self._ranked_median(counted, per_block)
            moves[step], before = after - before, after
        return moves

    def _ranked_median(self, counted: np.ndarray, per_block: np.ndarray) -> float:
        """_median of the counted responses, found by rank through the blocks' counts."""
        total = int(per_block.sum())
        if not total:
            return self.pooled
        ends = np.cumsum(per_block)
        # The two middle responses (one and the same for an odd count).
        middle = [self._at_rank(counted, ends, rank) for rank in ((total - 1) // 2, total // 2)]
        return _median(np.array(middle))

    def _at_rank(self, counted: np.ndarray, ends: np.ndarray, rank: int) -> float:
        block = int(np.searchsorted(ends, rank, side="right"))
        skipped = int(ends[block - 1]) if block else 0
        start = block * self.BLOCK
        inside = np.flatnonzero(counted[start:start + self.BLOCK])
        return float(self.minutes[start + inside[rank - skipped]])


def _median(sorted_minutes: np.ndarray) -> float:
    """kpis.median_p90's median, of values already sorted."""
    n = len(sorted_minutes)
    if not n:
        return np.nan
    virtual = (n - 1) * 0.5
    lower = int(np.floor(virtual))
    upper = min(lower + 1, n - 1)
    gamma = virtual - lower
    a, b = sorted_minutes[lower], sorted_minutes[upper]
    return float(b - (b - a) * (1 - gamma) if gamma >= 0.5 else a + (b - a) * gamma)


def _exact_shapley(responses: _Responses, players: int) -> np.ndarray:
    value = {}
    for size in range(players + 1):
        for coalition in combinations(range(players), size):
            switched = np.zeros(players, dtype=bool)
            switched[list(coalition)] = True
            value[coalition] = responses.median(switched)
    shares = np.zeros(players)
    for coalition, worth in value.items():
        size = len(coalition)
        weight = factorial(size) * factorial(players - size - 1) / factorial(players) \
            if size < players else 0.0
        for player in set(range(players)) - set(coalition):
            joined = tuple(sorted((*coalition, player)))
            shares[player] += weight * (value[joined] - worth)
    return shares


def _sampled_shapley(responses: _Responses, players: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    shares = np.zeros(players)
    orders = []
    for _ in range(SAMPLED_ORDERS):
        order = rng.permutation(players)
        orders += [order, order[::-1]]
    for order in orders:
        shares[order] += responses.walk(order)
    return shares / len(orders)


def week_over_week(issues: pd.DataFrame, as_of: datetime, by: str,
                   tz: tzinfo | None = None) -> pd.DataFrame:
    """Per value of the dimension (WEEK_COLUMNS, index named after it): issues raised last
    week and this, the change, each week's median response of its own issues, and its
    contribution to the change in the median response of all issues (NaN when either week
    has no response). Ranked by the size of the contribution to the median, then of the
    change in count. `attrs` holds the totals: count_change, median_last_min,
    median_this_min, median_change_min, and the weeks' bounds. `tz`: the site's zone
    (SITE_TZ) unless given."""
    last_start, this_start, at = weeks(as_of, tz or timezones.site_zone())
    column = dimension_column(by, issues)
    raised = pd.to_datetime(issues["raised_at"], utc=True)
    counted = (issues["status"] != "cancelled") & (raised >= last_start) & (raised < at)
    population = issues[counted.to_numpy(dtype=bool)]
    this_week = (pd.to_datetime(population["raised_at"], utc=True) >= this_start).to_numpy()
    values = dimension_values(population, column)
    # In order of value, so that the sampled orders, and ties, do not depend on row order.
    groups = pd.Index(sorted(set(values), key=lambda v: (v is None, str(v))), dtype=object)
    group = groups.get_indexer(values)
    count_this = np.bincount(group[this_week], minlength=len(groups))
    count_last = np.bincount(group[~this_week], minlength=len(groups))

    minutes = kpis.response_minutes(population, as_of).to_numpy(dtype="float64")
    answered = ~np.isnan(minutes)
    medians = {}
    for week, chosen in (("this", this_week), ("last", ~this_week)):
        mine = answered & chosen
        medians[week] = pd.Series(minutes[mine]).groupby(group[mine]).median().reindex(
            range(len(groups))).to_numpy()
    total_last = _median(np.sort(minutes[answered & ~this_week]))
    total_this = _median(np.sort(minutes[answered & this_week]))

    contribution = np.full(len(groups), np.nan)
    if not (np.isnan(total_last) or np.isnan(total_this)):
        players, player = np.unique(group[answered], return_inverse=True)
        responses = _Responses(minutes[answered], player, this_week[answered])
        split = (_exact_shapley if len(players) <= EXACT_PLAYERS else _sampled_shapley)(
            responses, len(players))
        contribution[:] = 0.0
        contribution[players] = split

    frame = pd.DataFrame({
        "count_last": count_last, "count_this": count_this,
        "count_change": count_this - count_last,
        "median_last_min": medians["last"], "median_this_min": medians["this"],
        "median_contribution_min": contribution,
    }, index=pd.Index(groups, name=by))
    frame = frame.iloc[np.lexsort((
        -np.abs(frame["count_change"].to_numpy()),
        -np.nan_to_num(np.abs(contribution), nan=-1.0)))][list(WEEK_COLUMNS)]
    frame.attrs.update({
        "count_change": int(count_this.sum() - count_last.sum()),
        "median_last_min": total_last, "median_this_min": total_this,
        "median_change_min": total_this - total_last,
        "last_week_start": last_start, "this_week_start": this_start, "as_of": at,
    })
    return frame
