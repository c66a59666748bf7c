"""What changed this week (data/analysis/change.py): the weeks' bounds, each value's change in
count, and its Shapley share of the change in median response, worked out by hand and
adding up to the whole change."""
from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from data import kpis, timezones
from data.analysis import change
from data.analysis.change import WEEK_COLUMNS, week_over_week, weeks
from tests.test_analysis_holding import at, plant

SITE = timezones.zone("Asia/Shanghai")
WEEK = 7 * 24 * 60
AS_OF = at(0)


def answered(issue_id: str, department: str, raised: float, response: float, **more) -> dict:
    return {"id": issue_id, "events": [(raised, "raised", department),
                                       (raised + response, "acknowledged", department)], **more}


def test_the_weeks_are_seven_site_days_ending_at_as_of():
    last_start, this_start, end = weeks(AS_OF, SITE)
    assert end == AS_OF
    assert this_start == AS_OF - pd.Timedelta(days=7)
    assert last_start == AS_OF - pd.Timedelta(days=14)


def test_counts_by_hand_and_the_weeks_edges():
    issues, _ = plant(
        answered("A1", "QA", -WEEK, 5),              # this week's first instant
        answered("A2", "QA", -1, 5),                 # this week
        {"id": "A3", "events": [(0, "raised", "QA")]},   # at as_of: next week's
        answered("B1", "PRD", -WEEK - 1, 5),          # last week's last minute
        answered("B2", "PRD", -2 * WEEK, 5),          # last week's first instant
        answered("B3", "PRD", -2 * WEEK - 1, 5),      # before both weeks
        answered("C1", "WH", -10, 5),
        {"id": "X", "cancelled": True, "events": [(-10, "raised", "WH"), (-5, "closed", "WH")]})
    frame = week_over_week(issues, AS_OF, "department", SITE)
    assert tuple(frame.columns) == WEEK_COLUMNS
    counts = frame[["count_last", "count_this", "count_change"]].to_dict("index")
    assert counts == {"QA": {"count_last": 0, "count_this": 2, "count_change": 2},
                      "PRD": {"count_last": 2, "count_this": 0, "count_change": -2},
                      "WH": {"count_last": 0, "count_this": 1, "count_change": 1}}
    assert frame.attrs["count_change"] == frame["count_change"].sum() == 1


def test_the_median_change_split_by_shapley_values_by_hand():
    # A: last week 10 and 20 minutes, this week 30 and 40; B: last week 50, this week 5.
    # v(none switched) = median(10, 20, 50) = 20; v(both) = median(30, 40, 5) = 30;
    # v(A only) = median(30, 40, 50) = 40; v(B only) = median(10, 20, 5) = 10.
    # A: ((40 - 20) + (30 - 10)) / 2 = 20; B: ((10 - 20) + (30 - 40)) / 2 = -10.
    issues, _ = plant(
        answered("A1", "A", -WEEK - 100, 10), answered("A2", "A", -WEEK - 200, 20),
        answered("A3", "A", -100, 30), answered("A4", "A", -200, 40),
        answered("B1", "B", -WEEK - 300, 50), answered("B2", "B", -300, 5))
    frame = week_over_week(issues, AS_OF, "department", SITE)
    assert frame.attrs["median_last_min"] == 20.0 and frame.attrs["median_this_min"] == 30.0
    assert frame.attrs["median_change_min"] == 10.0
    assert frame.loc["A", "median_contribution_min"] == pytest.approx(20.0)
    assert frame.loc["B", "median_contribution_min"] == pytest.approx(-10.0)
    assert list(frame.index) == ["A", "B"]
    assert frame.loc["A", "median_last_min"] == 15.0 and frame.loc["A", "median_this_min"] == 35.0


def test_a_value_without_responses_contributes_nothing_and_one_empty_week_gives_no_split():
    issues, _ = plant(
        answered("A1", "A", -WEEK - 100, 10), answered("A2", "A", -100, 30),
        {"id": "N1", "events": [(-50, "raised", "N")]})
    frame = week_over_week(issues, AS_OF, "department", SITE)
    assert frame.loc["N", "median_contribution_min"] == 0.0
    assert frame.loc["A", "median_contribution_min"] == pytest.approx(20.0)
    only_this, _ = plant(answered("A2", "A", -100, 30))
    split = week_over_week(only_this, AS_OF, "department", SITE)
    assert np.isnan(split.loc["A", "median_contribution_min"])
    assert np.isnan(split.attrs["median_change_min"])


def random_weeks(seed: int, values: int, count: int = 400) -> pd.DataFrame:
    rng = random.Random(seed)
    specs = []
    for number in range(count):
        group = f"V{rng.randrange(values):02d}"
        raised = -rng.uniform(1, 2 * WEEK - 1)
        if rng.random() < 0.15:
            specs.append({"id": f"I{number}", "events": [(raised, "raised", group)]})
        else:
            slow = 3 if raised > -WEEK and group < "V03" else 1
            specs.append(answered(f"I{number}", group, raised, rng.lognormvariate(2, 1) * slow))
    issues, _ = plant(*specs)
    return issues


@pytest.mark.parametrize("values", [3, change.EXACT_PLAYERS, change.EXACT_PLAYERS + 4, 30])
def test_the_contributions_add_up_to_the_whole_change(values):
    issues = random_weeks(values, values)
    frame = week_over_week(issues, AS_OF, "department", SITE)
    population = issues[(issues["raised_at"] >= AS_OF - pd.Timedelta(days=14))
                        & (issues["raised_at"] < AS_OF)]
    this_week = population["raised_at"] >= AS_OF - pd.Timedelta(days=7)
    last = kpis.median_p90(kpis.response_minutes(population[~this_week], AS_OF))[0]
    this = kpis.median_p90(kpis.response_minutes(population[this_week], AS_OF))[0]
    assert frame.attrs["median_last_min"] == last and frame.attrs["median_this_min"] == this
    assert frame["median_contribution_min"].sum() == pytest.approx(this - last, abs=1e-9)
    assert frame["count_change"].sum() == int(this_week.sum()) - int((~this_week).sum())
    contributions = frame["median_contribution_min"].abs().to_numpy()
    assert np.all(np.diff(contributions) <= 1e-12)
    again = week_over_week(issues.sample(frac=1, random_state=1), AS_OF, "department", SITE)
    pd.testing.assert_frame_equal(again, frame)


def test_walking_an_order_moves_the_median_as_recomputing_it_does():
    rng = np.random.default_rng(4)
    for size in (1, 2, 3, 50, 3000):
        minutes = np.round(rng.lognormal(2, 1, size), 1)
        player = rng.integers(0, 7, size)
        this_week = rng.random(size) < 0.5
        responses = change._Responses(minutes, player, this_week)
        players = int(player.max()) + 1
        order = rng.permutation(players)
        switched = np.zeros(players, dtype=bool)
        medians = [responses.median(switched)]
        for one in order:
            switched[one] = True
            medians.append(responses.median(switched))
        assert responses.walk(order).tolist() == np.diff(medians).tolist()
