"""The control chart (data/analysis/control.py): XmR limits worked out by hand, each Western
Electric rule on a series built to break it and nothing else, and a countermeasure that
splits the limits."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from data import timezones
from data.analysis.control import RULES, XMR_COLUMNS, daily_response_median, xmr
from tests.test_analysis_holding import plant

FIRST_DAY = date(2026, 10, 1)


def daily(values) -> pd.Series:
    return pd.Series(values, index=[FIRST_DAY + timedelta(days=n) for n in range(len(values))],
                     dtype="float64")


def flagged(chart: pd.DataFrame) -> dict[str, list[int]]:
    """Which points (by position) each rule flags."""
    return {rule: np.flatnonzero(chart[rule].to_numpy()).tolist() for rule in RULES}


def test_limits_by_hand():
    chart = xmr(daily([10, 12, 11, 13, 9]))
    assert tuple(chart.columns) == XMR_COLUMNS
    # mean 11; moving ranges 2, 1, 2, 4: MRbar 2.25
    assert chart["moving_range"].tolist()[1:] == [2.0, 1.0, 2.0, 4.0]
    assert np.isnan(chart["moving_range"].iloc[0])
    row = chart.iloc[0]
    assert row["centre"] == pytest.approx(11.0)
    assert row["mr_centre"] == pytest.approx(2.25)
    assert row["ucl"] == pytest.approx(11 + 2.66 * 2.25)
    assert row["lcl"] == pytest.approx(11 - 2.66 * 2.25)
    assert row["mr_ucl"] == pytest.approx(3.267 * 2.25)
    assert row["sigma"] == pytest.approx(2.25 / 1.128)
    assert not chart["signal"].any()
    assert chart.index.tolist() == [FIRST_DAY + timedelta(days=n) for n in range(5)]


BASE = [10, 11] * 10


def test_rule_1_one_point_beyond_a_limit():
    # centre (10.5 * 20 + 16) / 21 = 10.762, MRbar (19 * 1 + 5) / 20 = 1.2, UCL 13.954
    chart = xmr(daily(BASE + [16]))
    assert chart["ucl"].iloc[0] == pytest.approx(226 / 21 + 2.66 * 1.2)
    assert flagged(chart) == {"rule_1": [20], "rule_2": [], "rule_3": [], "rule_4": []}
    assert np.flatnonzero(chart["signal"]).tolist() == [20]


def test_rule_2_two_of_three_beyond_two_sigma():
    values = BASE + [13.4, 10.5, 13.4] + [10, 11] * 3
    chart = xmr(daily(values))
    centre, sigma = chart["centre"].iloc[0], chart["sigma"].iloc[0]
    # 13.4 is beyond 2 sigma (2.4) and inside the limit; no other point is beyond 2 sigma.
    assert 2 * sigma < 13.4 - centre < chart["ucl"].iloc[0] - centre
    assert flagged(chart) == {"rule_1": [], "rule_2": [22], "rule_3": [], "rule_4": []}


def test_rule_2_flags_the_points_beyond_not_the_one_that_ends_the_window():
    values = BASE + [13.4, 13.4, 10.5] + [10, 11] * 3
    chart = xmr(daily(values))
    centre, sigma = chart["centre"].iloc[0], chart["sigma"].iloc[0]
    assert 2 * sigma < 13.4 - centre < chart["ucl"].iloc[0] - centre
    # The windows ending at 21 and at 22 both hold two points beyond; 22 is not one of them.
    assert flagged(chart) == {"rule_1": [], "rule_2": [21], "rule_3": [], "rule_4": []}


def test_rule_3_four_of_five_beyond_one_sigma():
    values = BASE + [12.2, 12.2, 10.5, 12.2, 12.2] + [10, 11] * 3
    chart = xmr(daily(values))
    centre, sigma = chart["centre"].iloc[0], chart["sigma"].iloc[0]
    assert sigma < 12.2 - centre < 2 * sigma and 11 - centre < sigma
    # At the fourth 12.2 the last five hold only three beyond; at the fifth, four.
    assert flagged(chart) == {"rule_1": [], "rule_2": [], "rule_3": [24], "rule_4": []}


def test_rule_4_eight_in_a_row_on_one_side():
    values = [11, 10] * 4 + [10.6] * 8 + [10, 11] * 4
    chart = xmr(daily(values))
    centre, sigma = chart["centre"].iloc[0], chart["sigma"].iloc[0]
    assert 0 < 10.6 - centre < sigma and 10 < centre < 11
    assert flagged(chart) == {"rule_1": [], "rule_2": [], "rule_3": [], "rule_4": [15]}
    # The same below the centre.
    below = xmr(daily([10, 11] * 4 + [10.4] * 8 + [11, 10] * 4))
    assert flagged(below)["rule_4"] == [15]


def test_a_point_on_the_centre_line_breaks_a_run():
    # Centre exactly 241.5 / 23 = 10.5: 11 and four 10.75 above, 10.5 on it, three 10.75 above.
    values = [10, 11] * 4 + [10.75] * 4 + [10.5] + [10.75] * 3 + [10.25] * 7
    chart = xmr(daily(values))
    assert chart["centre"].iloc[0] == 10.5
    assert not chart["signal"].any()


def test_a_countermeasure_splits_the_limits():
    values = [60, 62] * 5 + [20, 22] * 5
    whole = xmr(daily(values))
    # One segment: centre 41, MRbar (18 * 2 + 42) / 19 = 4.1: limits 30.1 and 51.9, and
    # every point beyond one of them.
    assert whole["ucl"].iloc[0] == pytest.approx(41 + 2.66 * 78 / 19)
    assert whole["lcl"].iloc[0] == pytest.approx(41 - 2.66 * 78 / 19)
    assert flagged(whole)["rule_1"] == list(range(20))

    split = xmr(daily(values), countermeasures=[FIRST_DAY + timedelta(days=10)])
    assert split["segment"].tolist() == [0] * 10 + [1] * 10
    assert split["segment_start"].tolist() == [FIRST_DAY] * 10 + [
        FIRST_DAY + timedelta(days=10)] * 10
    assert split["centre"].tolist() == [61.0] * 10 + [21.0] * 10
    assert split["mr_centre"].tolist() == [2.0] * 20
    assert split["ucl"].iloc[-1] == pytest.approx(21 + 2.66 * 2)
    # No range is taken across the countermeasure, and no rule runs across it.
    assert np.isnan(split["moving_range"].iloc[10])
    assert not split["signal"].any()


def test_a_countermeasure_on_a_day_without_a_value_and_a_segment_of_one_point():
    values = daily([10, 12, 11, 13, 9, 30]).drop(FIRST_DAY + timedelta(days=4))
    chart = xmr(values, countermeasures=[pd.Timestamp(FIRST_DAY + timedelta(days=4))])
    assert chart["segment"].tolist() == [0, 0, 0, 0, 1]
    last = chart.iloc[-1]
    assert last["centre"] == 30.0 and np.isnan(last["ucl"]) and not last["signal"]


def test_days_without_a_value_are_left_out_and_nothing_gives_nothing():
    series = daily([10, np.nan, 12])
    chart = xmr(series)
    assert len(chart) == 2 and chart["moving_range"].iloc[1] == 2.0
    assert xmr(daily([])).empty


def test_daily_response_median_of_the_days_ended_by_as_of():
    site = timezones.zone("Asia/Shanghai")
    # T0 is 2026-11-20 10:00 site time. Raised on the 19th (minutes -1000 and -900), on the
    # 20th (0, 30, 31 and 23:50, answered after midnight), one cancelled; as_of is the 21st
    # 10:00, so the 21st is not over.
    issues, _ = plant(
        {"id": "A", "events": [(-1000, "raised", "QA"), (-990, "acknowledged", "QA")]},
        {"id": "B", "events": [(-900, "raised", "QA"), (-870, "acknowledged", "QA")]},
        {"id": "C", "events": [(0, "raised", "QA"), (4, "acknowledged", "QA")]},
        {"id": "D", "events": [(30, "raised", "QA"), (36, "acknowledged", "QA")]},
        {"id": "E", "events": [(31, "raised", "QA"), (32, "acknowledged", "QA")]},
        {"id": "G", "events": [(830, "raised", "QA"), (870, "acknowledged", "QA")]},
        {"id": "X", "cancelled": True, "events": [(40, "raised", "QA"), (41, "closed", "QA")]},
        {"id": "F", "events": [(1320, "raised", "QA"), (1321, "acknowledged", "QA")]})
    as_of = pd.Timestamp("2026-11-21 10:00", tz=site)
    medians = daily_response_median(issues, as_of, site)
    assert medians.to_dict() == {date(2026, 11, 19): 20.0, date(2026, 11, 20): 5.0}
    # At midnight the 20th is over, and its last answer not given yet.
    early = daily_response_median(issues, pd.Timestamp("2026-11-21 00:00", tz=site), site)
    assert early.to_dict() == {date(2026, 11, 19): 20.0, date(2026, 11, 20): 4.0}
