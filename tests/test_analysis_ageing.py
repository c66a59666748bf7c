"""Ageing, unresolved-after and the weekday x hour heatmap (data/analysis/ageing.py) against
hand-computed cases. T0 is Friday 2026-11-20 10:00 site time."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from data import timezones
from data.analysis.ageing import (AGEING_COLUMNS, HEATMAP_COLUMNS, OPEN_AGE_COLUMNS,
                                  UNRESOLVED_COLUMNS, ageing, heatmap, open_ages,
                                  unresolved_after)
from tests.test_analysis_holding import T0, at, plant

SITE = timezones.zone("Asia/Shanghai")
HOUR = 60


def minute_of(local_time: str) -> float:
    """Minutes after T0 of a site-local time."""
    return (pd.Timestamp(local_time, tz=SITE) - pd.Timestamp(T0)) / pd.Timedelta(minutes=1)


def test_open_issues_by_age_bucket_and_holder():
    issues, events = plant(
        {"id": "YOUNG", "events": [(-59, "raised", "QA")]},
        {"id": "ONE_HOUR", "events": [(-HOUR, "raised", "QA")]},
        {"id": "PASSED", "owner": "QA", "events": [(-5 * HOUR, "raised", "QA"),
                                                   (-4 * HOUR, "reassigned", "PRD")]},
        {"id": "DAYS", "events": [(-72 * HOUR, "raised", "WH")]},
        {"id": "NEARLY", "events": [(-72 * HOUR + 1, "raised", "WH")]},
        {"id": "SILENT", "owner": "MNT", "raised": -30, "events": []},
        {"id": "DONE", "events": [(-90, "raised", "QA"), (-10, "resolved", "QA")]},
        {"id": "CANCELLED", "cancelled": True, "events": [(-90, "raised", "QA"),
                                                          (-80, "closed", "QA")]},
        {"id": "LATER", "events": [(10, "raised", "QA")]})
    ages = open_ages(issues, events, at(0)).set_index("issue_id")
    assert tuple(open_ages(issues, events, at(0)).columns) == OPEN_AGE_COLUMNS
    assert set(ages.index) == {"YOUNG", "ONE_HOUR", "PASSED", "DAYS", "NEARLY", "SILENT"}
    assert ages["bucket"].to_dict() == {"YOUNG": 0, "ONE_HOUR": 1, "PASSED": 2, "DAYS": 5,
                                        "NEARLY": 4, "SILENT": 0}
    assert ages.loc["DAYS", "from_h"] == 72 and ages.loc["DAYS", "to_h"] == np.inf
    assert (ages.loc["PASSED", "from_h"], ages.loc["PASSED", "to_h"]) == (4, 8)
    assert ages.loc["PASSED", "holder"] == "PRD" and ages.loc["SILENT", "holder"] == "MNT"
    assert ages.loc["ONE_HOUR", "age_h"] == 1.0

    table = ageing(issues, events, at(0))
    assert tuple(table.columns) == AGEING_COLUMNS
    assert table[["bucket", "holder", "count"]].values.tolist() == [
        [0, "MNT", 1], [0, "QA", 1], [1, "QA", 1], [2, "PRD", 1], [4, "WH", 1], [5, "WH", 1]]
    assert ageing(issues, events, at(0), buckets=(2,))[["bucket", "count"]].groupby(
        "bucket")["count"].sum().to_dict() == {0: 3, 1: 3}


def test_an_open_issue_whose_events_show_it_finished_is_held_by_its_owner():
    issues, events = plant({"id": "A", "owner": "QA", "events": [
        (-90, "raised", "PRD"), (-10, "resolved", "PRD")]})
    # The issue's row was not updated with its resolution: it is open by its columns.
    issues["resolved_at"] = pd.Series([pd.NaT], dtype="datetime64[ns, UTC]")
    issues["status"] = "acknowledged"
    ages = open_ages(issues, events, at(0))
    assert ages[["issue_id", "holder"]].values.tolist() == [["A", "QA"]]


def week_of_nov_9() -> list[dict]:
    """Five issues raised on Tuesday 2026-11-10 10:00: resolved after 30 minutes, exactly
    one hour, five hours, closed unresolved after two hours, and never."""
    raised = minute_of("2026-11-10 10:00")
    return [
        {"id": "R30", "events": [(raised, "raised", "QA"), (raised + 30, "resolved", "QA")]},
        {"id": "R60", "events": [(raised, "raised", "QA"), (raised + 60, "resolved", "QA")]},
        {"id": "R300", "events": [(raised, "raised", "QA"), (raised + 300, "resolved", "QA")]},
        {"id": "C120", "events": [(raised, "raised", "QA"), (raised + 120, "closed", "QA")]},
        {"id": "NEVER", "events": [(raised, "raised", "QA")]},
    ]


def test_share_unresolved_after_t_hours_for_each_week():
    issues, _ = plant(
        *week_of_nov_9(),
        {"id": "OLD", "events": [(minute_of("2026-11-08 23:30"), "raised", "QA")]},
        {"id": "NOW", "events": [(minute_of("2026-11-16 09:00"), "raised", "QA")]},
        {"id": "X", "cancelled": True,
         "events": [(minute_of("2026-11-10 11:00"), "raised", "QA"),
                    (minute_of("2026-11-10 11:05"), "closed", "QA")]})
    table = unresolved_after(issues, at(0), tz=SITE)
    assert tuple(table.columns) == UNRESOLVED_COLUMNS
    rows = {(r.week_start, r.hours): (r.raised, r.unresolved, r.share) for r in table.itertuples()}
    # The week of the 16th has not ended: it is left out. Sunday the 8th is the week of the 2nd.
    assert rows == {
        (date(2026, 11, 2), 1): (1, 1, 1.0), (date(2026, 11, 2), 4): (1, 1, 1.0),
        (date(2026, 11, 2), 8): (1, 1, 1.0), (date(2026, 11, 2), 24): (1, 1, 1.0),
        (date(2026, 11, 9), 1): (5, 3, 0.6), (date(2026, 11, 9), 4): (5, 2, 0.4),
        (date(2026, 11, 9), 8): (5, 1, 0.2), (date(2026, 11, 9), 24): (5, 1, 0.2)}


def test_a_week_appears_for_t_only_once_t_hours_have_passed_since_it_ended():
    issues, _ = plant(*week_of_nov_9())
    as_of = pd.Timestamp("2026-11-16 08:00", tz=SITE)
    table = unresolved_after(issues, as_of, hours=(1, 8, 9), tz=SITE)
    assert table["hours"].tolist() == [1, 8]
    # Before the week has ended, nothing of it is shown.
    early = unresolved_after(issues, pd.Timestamp("2026-11-10 20:00", tz=SITE), hours=(1,),
                             tz=SITE)
    assert early.empty


def test_heatmap_by_weekday_and_hour_of_the_site():
    friday_ten = 0
    issues, _ = plant(
        {"id": "A", "events": [(friday_ten, "raised", "QA"),
                               (friday_ten + 4, "acknowledged", "QA")]},
        {"id": "B", "events": [(friday_ten + 59, "raised", "QA"),
                               (friday_ten + 59 + 10, "acknowledged", "QA")]},
        {"id": "C", "events": [(friday_ten + 30, "raised", "QA")]},
        {"id": "D", "events": [(minute_of("2026-11-15 23:10"), "raised", "QA"),
                               (minute_of("2026-11-15 23:50"), "acknowledged", "QA")]},
        {"id": "LATE_ACK", "events": [(-120, "raised", "QA"), (30, "acknowledged", "QA")]},
        {"id": "X", "cancelled": True, "events": [(-60, "raised", "QA"), (-50, "closed", "QA")]})
    grid = heatmap(issues, at(100), SITE)
    assert tuple(grid.columns) == HEATMAP_COLUMNS and len(grid) == 168
    cells = grid.set_index(["weekday", "hour"])
    assert cells.loc[(4, 10)].tolist() == [3, 7.0]       # A 4, B 10, C not answered
    assert cells.loc[(6, 23)].tolist() == [1, 40.0]      # Sunday 23:00
    assert cells.loc[(4, 8)].tolist() == [1, 150.0]
    assert cells.loc[(4, 9), "raised"] == 0                # the cancelled one is not counted
    assert grid["raised"].sum() == 5
    before = heatmap(issues, at(20), SITE).set_index(["weekday", "hour"])
    assert before.loc[(4, 10)].tolist() == [1, 4.0]        # B raised after as_of
    assert np.isnan(before.loc[(4, 8), "response_median_min"])


def unresolved_after_week_by_week(issues: pd.DataFrame, as_of, hours, tz) -> pd.DataFrame:
    """The reference: each issue's week as a Python date, week after week, t after t."""
    at = pd.Timestamp(as_of).tz_convert("UTC")
    raised_at = pd.to_datetime(issues["raised_at"], utc=True)
    population = issues[((raised_at <= at) & (issues["status"] != "cancelled")).to_numpy(dtype=bool)]
    raised = pd.to_datetime(population["raised_at"], utc=True)
    local = raised.dt.tz_convert(tz)
    week_start = np.array([d - timedelta(days=d.weekday()) for d in local.dt.date], dtype=object)

    def known(column: str) -> pd.Series:
        values = pd.to_datetime(population[column], utc=True)
        return values.where(values <= at)

    finished = pd.concat([known("resolved_at"), known("closed_at")], axis=1).min(axis=1)
    rows = []
    for week in sorted(set(week_start)):
        mine = week_start == week
        week_end = pd.Timestamp(datetime.combine(week + timedelta(days=7), datetime.min.time(),
                                                 tzinfo=tz)).tz_convert("UTC")
        for t in hours:
            if week_end + pd.Timedelta(hours=t) > at:
                continue
            waiting = finished[mine].isna() | (finished[mine] > raised[mine] + pd.Timedelta(hours=t))
            unresolved = int(waiting.sum())
            rows.append((week, t, int(mine.sum()), unresolved, unresolved / int(mine.sum())))
    return pd.DataFrame(rows, columns=list(UNRESOLVED_COLUMNS)).astype(
        {"raised": "int64", "unresolved": "int64", "share": "float64"})


def random_issues(rng: np.random.Generator, n: int, as_of: pd.Timestamp) -> pd.DataFrame:
    """Issues raised over 70 days around as_of (some after it), resolved and closed at random
    later times or never, some cancelled."""
    raised = as_of - pd.to_timedelta(rng.integers(-3 * 24 * 60, 70 * 24 * 60, n), unit="min")

    def later(share_never: float) -> pd.Series:
        after = raised + pd.to_timedelta(rng.integers(0, 40 * 60, n), unit="min")
        return pd.Series(after).where(rng.random(n) >= share_never)

    return pd.DataFrame({
        "id": [f"I{i}" for i in range(n)], "raised_at": pd.Series(raised),
        "resolved_at": later(0.3), "closed_at": later(0.6),
        "status": rng.choice(["open", "resolved", "closed", "cancelled"], n, p=[.3, .3, .3, .1])})


def test_share_unresolved_equals_the_week_by_week_reference_on_random_plants():
    rng = np.random.default_rng(11)
    for zone in (SITE, timezones.zone("America/New_York"), timezones.zone("UTC")):
        for n in (0, 1, 40, 3000):
            as_of = pd.Timestamp("2026-11-20 10:00", tz=zone) - pd.Timedelta(
                minutes=int(rng.integers(0, 200 * 24 * 60)))
            issues = random_issues(rng, n, as_of)
            hours = (1, 4, 8, 24) if n % 2 else (0.5, 24, 72, 24 * 9)
            found = unresolved_after(issues, as_of.to_pydatetime(), hours, tz=zone)
            expected = unresolved_after_week_by_week(issues, as_of, hours, zone)
            pd.testing.assert_frame_equal(found, expected)
            assert n < 40 or len(found) > 10
