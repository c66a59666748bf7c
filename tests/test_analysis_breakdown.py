"""Figures by dimension (data/analysis/breakdown.py): the Pareto against a hand count, and
kpis_by held to kpis.issue_kpis group by group on generated plants (a differential test: the
grouped pass must give every figure the reference rules give each group's rows)."""
from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest

from data import kpis
from data.analysis.breakdown import (DIMENSIONS, PARETO_COLUMNS, dimension_column,
                                     group_median_p90, kpis_by, pareto)
from tests.test_analysis_holding import at, plant


def test_pareto_counts_shares_and_cumulative_shares():
    issues, _ = plant(*[{"id": f"I{n}", "type": issue_type, "events": [(n, "raised", "QA")]}
                        for n, issue_type in enumerate(
                            ["shortage"] * 5 + ["fault"] * 3 + ["quality"] * 3 + ["safety"])])
    frame = pareto(issues, "issue_type")
    assert tuple(frame.columns) == PARETO_COLUMNS
    assert frame["value"].tolist() == ["shortage", "fault", "quality", "safety"]
    assert frame["count"].tolist() == [5, 3, 3, 1]
    np.testing.assert_allclose(frame["share"], [5 / 12, 3 / 12, 3 / 12, 1 / 12])
    np.testing.assert_allclose(frame["cumulative_share"], [5 / 12, 8 / 12, 11 / 12, 1.0])
    assert frame["cumulative_share"].iloc[-1] == 1.0


def test_pareto_puts_issues_without_a_value_last_among_equals_and_handles_nothing():
    issues, _ = plant({"id": "A", "line": "L1", "events": [(0, "raised", "QA")]},
                      {"id": "B", "events": [(0, "raised", "QA")]},
                      {"id": "C", "line": "L2", "events": [(0, "raised", "QA")]},
                      {"id": "D", "line": "L2", "events": [(0, "raised", "QA")]})
    assert pareto(issues, "line")["value"].tolist() == ["L2", "L1", None]
    assert pareto(issues.iloc[:0], "line").empty


def test_unknown_dimension_is_named():
    issues, _ = plant({"id": "A", "events": [(0, "raised", "QA")]})
    with pytest.raises(ValueError, match="unknown dimension 'colour'"):
        pareto(issues, "colour")
    assert dimension_column("department") == "owner_department_code"
    assert dimension_column("severity", issues) == "severity"


def test_group_quantiles_are_numpys_to_the_last_bit():
    rng = np.random.default_rng(5)
    groups = rng.integers(0, 40, 3000)
    minutes = rng.lognormal(3, 1.2, 3000)
    minutes[rng.random(3000) < 0.1] = np.nan
    # Two values whose midpoint numpy's interpolation rounds as only it does.
    groups = np.append(groups, [41, 41])
    minutes = np.append(minutes, [0.1, 0.5])
    median, p90 = group_median_p90(groups, minutes, 43)
    assert median[41] == np.percentile([0.1, 0.5], 50) != 0.1 + (0.5 - 0.1) * 0.5
    for group in range(43):
        expected = kpis.median_p90(pd.Series(minutes[groups == group]))
        got = tuple(None if math.isnan(v) else v for v in (median[group], p90[group]))
        assert got == expected


DEPARTMENTS = ("PRD", "QA", "WH", "ENG")


def generated_plant(seed: int, count: int = 120):
    """Issues of every sort on the edges of the rules: acknowledged and resolved exactly at
    their limits, unacknowledged, closed without a resolution, cancelled, reopened, without
    limits, handed back and forth; dimensions with missing values."""
    rng = random.Random(seed)
    specs = []
    for number in range(count):
        ack_limit, resolve_limit = rng.choice([(10.0, 60.0), (5.0, 30.0), (math.nan, math.nan)])
        raised = rng.choice([0, 10, 20, 30, 40, 50, 55])
        owner = rng.choice(DEPARTMENTS)
        events = [(raised, "raised", owner)]
        minute, holder = raised, owner
        for _ in range(rng.randint(0, 2)):
            minute += rng.choice([1, 3, 5])
            holder = rng.choice([d for d in DEPARTMENTS if d != holder])
            events.append((minute, "reassigned", holder))
        ending = rng.choice(["open", "ack", "ack", "resolved", "resolved", "closed", "cancelled",
                             "reopened"])
        limit = ack_limit if not math.isnan(ack_limit) else 10.0
        if ending != "open" and ending != "cancelled":
            minute = max(minute, raised + rng.choice([limit - 1, limit, limit + 1, 2 * limit]))
            events.append((minute, "acknowledged", holder))
        if ending in ("resolved", "reopened"):
            finish = resolve_limit if not math.isnan(resolve_limit) else 60.0
            minute = max(minute + 1, raised + rng.choice([finish - 1, finish, finish + 2]))
            events.append((minute, "resolved", holder))
        if ending == "reopened":
            events += [(minute + 4, "reopened", holder), (minute + 9, "resolved", holder)]
        if ending in ("closed", "cancelled"):
            events.append((minute + rng.choice([1, 8]), "closed", holder))
        specs.append({
            "id": f"G{seed}-{number:03d}", "events": events, "cancelled": ending == "cancelled",
            "type": rng.choice(["shortage", "fault", "quality"]),
            "severity": rng.choice(["P1", "P2", "P3"]),
            "location": rng.choice(["L1-S1", "L2-S1", "WH1", None]),
            "line": rng.choice(["L1", "L2", None]),
            "ack_minutes": ack_limit, "resolve_minutes": resolve_limit,
        })
    issues, events = plant(*specs)
    issues["cause"] = issues["cause"].where(issues["status"] != "open", None)
    return issues, events


def reference_kpis(population, events, open_now, as_of, column, value) -> dict:
    def of(frame):
        if value is None:
            return frame[frame[column].isna()]
        return frame[frame[column] == value]

    mine = of(population)
    return kpis.issue_kpis(mine, events[events["issue_id"].isin(mine["id"])], of(open_now),
                           as_of)


def as_dict(row: pd.Series) -> dict:
    return {key: (None if isinstance(value, float) and math.isnan(value) else
                  (int(value) if isinstance(value, (np.integer, int)) else float(value)))
            for key, value in row.items()}


@pytest.mark.parametrize("seed", range(4))
def test_every_figure_of_every_group_equals_issue_kpis_of_its_rows(seed):
    issues, events = generated_plant(seed)
    population = issues[issues["status"] != "cancelled"]
    assert (issues["status"] == "cancelled").any() and issues["resolved_at"].isna().any()
    assert (issues["closed_at"].notna() & issues["resolved_at"].isna()
            & (issues["status"] == "closed")).any()
    for minutes in (9, 30, 70, 400):
        as_of = at(minutes)
        for dimension, column in DIMENSIONS.items():
            table = kpis_by(population, events, issues, as_of, dimension)
            values = set(population[column].tolist()) | set(issues[column].tolist())
            assert set(table.index) == values
            assert tuple(table.columns) == kpis.ISSUE_KPI_KEYS
            for value in values:
                expected = reference_kpis(population, events, issues, as_of, column, value)
                assert as_dict(table.loc[value]) == expected, (dimension, value, minutes)


def test_asked_for_values_without_issues_get_zeros_and_nones():
    issues, events = generated_plant(1, count=30)
    population = issues[issues["status"] != "cancelled"]
    table = kpis_by(population, events, issues, at(70), "department",
                    values=["QA", "MNT", "PRD"])
    assert list(table.index) == ["QA", "MNT", "PRD"]
    expected = kpis.issue_kpis(population.iloc[:0], events.iloc[:0], issues.iloc[:0], at(70))
    assert as_dict(table.loc["MNT"]) == expected
    assert as_dict(table.loc["QA"]) == reference_kpis(
        population, events, issues, at(70), "owner_department_code", "QA")
    # Open issues of a value that raised nothing in the window still count as open.
    only_open = kpis_by(population.iloc[:0], events, issues, at(70), "department")
    assert only_open["raised"].sum() == 0
    assert only_open["open"].sum() == int(kpis.open_mask(issues, at(70)).sum())
