"""The workloads obey the data contract, and every benchmark variant computes the wall's
figures exactly as the project does (on SQLite and PostgreSQL, at a small scale)."""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from bench import figures as fig
from bench import kpi_bench, variants, workloads
from data import db, kpis, queries, store, wall
from data.models import Issue, IssueEvent, Location, Movement
from tools.databases import throwaway_postgres

END = datetime(2026, 3, 10, 2, 0, tzinfo=timezone.utc)
SCALE = 0.005


@pytest.fixture(scope="module")
def postgres_url():
    with throwaway_postgres("floorlink_bench_test") as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def loaded_url(request, tmp_path_factory):
    """A small W-M workload, loaded once per database kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('bench') / 'wm.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    workloads.build(url, "W-M", scale=SCALE, seed=3, end=END)
    yield url
    db.dispose_all()


def _frame(conn, stmt) -> pd.DataFrame:
    result = conn.execute(stmt)
    return pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))


def test_instants_are_stored_as_sqlalchemy_stores_them(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'f.sqlite'}")
    db.upgrade_schema(engine)
    workloads._reference_plant(engine, 1, END)
    with engine.begin() as conn:
        store.upsert_rows(conn, Movement, [{
            "id": "X", "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "material_code": "M-1001",
            "lot": "L", "qty": 1.0, "from_location_code": "SUP-HL", "to_location_code": "RCV-01"}])
        stored = conn.exec_driver_sql("SELECT at FROM movements").scalar()
    assert workloads.instants_text(np.array([int(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
                                                 .timestamp())]))[0] == stored
    assert stored == "2026-01-02 03:04:05.000000"


def test_workload_sizes_follow_the_daily_pace(loaded_url):
    engine = db.make_engine(loaded_url)
    marker = workloads.loaded(engine, "W-M", scale=SCALE, seed=3, end=END)
    rows = {k: v for k, v in __import__("json").loads(marker["rows"]).items()}
    assert rows["issues"] == 5_000
    assert 4.5 <= rows["issue_events"] / rows["issues"] <= 5.5
    assert 45_000 <= rows["movements"] <= 55_000
    assert workloads.loaded(engine, "W-M", scale=SCALE, seed=4, end=END) is None
    with engine.connect() as conn:
        first, last = conn.execute(select(Issue.raised_at).order_by(Issue.raised_at).limit(1)).scalar(), \
            conn.execute(select(Issue.raised_at).order_by(Issue.raised_at.desc()).limit(1)).scalar()
    assert last <= END and (END - first) <= timedelta(days=5, hours=1)


def test_events_follow_the_contract(loaded_url):
    engine = db.make_engine(loaded_url)
    with engine.connect() as conn:
        issues = _frame(conn, select(Issue.id, Issue.raised_at, Issue.acknowledged_at,
                                     Issue.resolved_at, Issue.status, Issue.owner_department_code))
        events = _frame(conn, select(IssueEvent.issue_id, IssueEvent.id, IssueEvent.at,
                                     IssueEvent.kind, IssueEvent.department_code))
    events = events.sort_values(["issue_id", "at", "id"])
    first = events.groupby("issue_id").first()
    last = events.groupby("issue_id").last()
    issues = issues.set_index("id")
    assert (first["kind"] == "raised").all()
    assert (first["at"] == issues.loc[first.index, "raised_at"]).all()
    assert events.groupby("issue_id")["at"].apply(lambda s: s.is_monotonic_increasing and s.is_unique).all()
    assert (last["department_code"] == issues.loc[last.index, "owner_department_code"]).all()
    # The department only changes on a hand-off.
    previous = events.groupby("issue_id")["department_code"].shift()
    changed = previous.notna() & (events["department_code"] != previous)
    assert (events.loc[changed, "kind"] == "reassigned").all()
    both = issues.dropna(subset=["acknowledged_at", "resolved_at"])
    assert (both["acknowledged_at"] <= both["resolved_at"]).all()
    assert (issues["resolved_at"].isna() | issues["acknowledged_at"].notna()).all()
    acknowledged = events[events["kind"] == "acknowledged"].groupby("issue_id")["at"].first()
    assert (acknowledged == issues.loc[acknowledged.index, "acknowledged_at"]).all()
    assert set(issues["status"]) == {"open", "acknowledged", "resolved", "closed", "cancelled"}


def test_stock_never_goes_negative_and_some_lots_are_stuck(loaded_url):
    engine = db.make_engine(loaded_url)
    with engine.connect() as conn:
        moves = _frame(conn, select(Movement.at, Movement.id, Movement.lot, Movement.qty,
                                    Movement.from_location_code, Movement.to_location_code))
        kinds = dict(conn.execute(select(Location.code, Location.kind)).all())
        stagnant = kpis.stagnant_lots(queries.lot_positions(conn, END), END)
    flows = pd.concat([
        moves.assign(location=moves["to_location_code"], delta=moves["qty"], side=0),
        moves.assign(location=moves["from_location_code"], delta=-moves["qty"], side=1)])
    flows = flows[flows["location"].map(kinds).isin(queries.STOCK_KINDS)]
    # Same instant: the move in is booked before the move out.
    flows = flows.sort_values(["lot", "location", "at", "side"])
    on_hand = flows.groupby(["lot", "location"])["delta"].cumsum()
    assert on_hand.min() >= 0
    assert set(stagnant["location_kind"]) == {"iqc", "line_side"}


def test_the_plant_is_alive_at_the_end(loaded_url):
    engine = db.make_engine(loaded_url)
    with engine.connect() as conn:
        snapshot = wall.overview_snapshot(conn, END)
    assert 100 <= snapshot["tiles"]["open"]["value"] <= 600
    assert 0 < snapshot["tiles"]["overdue"]["value"] < snapshot["tiles"]["open"]["value"]
    assert sum(r["ping_pong"] for r in snapshot["scoreboard"]) > 0
    assert snapshot["tiles"]["plan_attainment"]["value"] is not None


def test_tick_writes_a_thousand_rows_through_the_store(loaded_url):
    engine = db.make_engine(loaded_url)
    with engine.connect() as conn:
        before = conn.execute(select(Issue.id).where(Issue.resolved_at.is_(None),
                                                     Issue.status != "cancelled")).scalars().all()
    now = END + timedelta(minutes=5)
    changed = workloads.tick(engine, now, random.Random(1))
    assert changed["rows"] == workloads.TICK_ROWS
    assert changed["raised"] == workloads.TICK_RAISED
    assert changed["resolved"] > 0 and changed["acknowledged"] > 0 and changed["reassigned"] > 0
    with engine.connect() as conn:
        written = conn.execute(select(IssueEvent.at).where(IssueEvent.at > END)).scalars().all()
        moves = conn.execute(select(Movement.at).where(Movement.id.in_(changed["movement_ids"]))).scalars().all()
    assert written and all(now - workloads.TICK_SPAN < at <= now for at in written)
    assert len(moves) == changed["movements"] and all(at <= now for at in moves)
    assert len(set(changed["issue_ids"]) & set(before)) == len(changed["issue_ids"]) - workloads.TICK_RAISED


def test_every_variant_matches_the_project_round_after_round(loaded_url):
    report = kpi_bench.run_bench(loaded_url, "W-M", rounds=2, scale=SCALE, seed=3, end=END,
                                 pace_s=0, out_dir=None, log=lambda line: None)
    assert set(report["variants"]) == set(kpi_bench.VARIANTS)
    assert all(v["runs"] == 2 for v in report["variants"].values())
    assert report["tick_rows_median"] == workloads.TICK_ROWS


def test_a_changed_figure_fails_the_run(loaded_url, monkeypatch):
    real = variants.PandasEngine.parts

    def one_more_open(self, moments):
        parts = real(self, moments)
        parts.open_now += 1
        return parts

    monkeypatch.setattr(variants.PandasEngine, "parts", one_more_open)
    with pytest.raises(kpi_bench.FiguresDiffer, match=r"tiles/open/0: expected \d+, found \d+"):
        kpi_bench.run_bench(loaded_url, "W-M", rounds=1, scale=SCALE, seed=3, end=END, ticks=False,
                            wanted=("project", "memory-pandas"), out_dir=None, log=lambda line: None)


def test_issues_closed_without_resolution_are_finished_in_every_variant(loaded_url):
    """Contract section 2: an issue closed without resolved_at is finished at closed_at. The
    workloads close only resolved issues, so a few open ones are closed here (and restored)."""
    engine = db.make_engine(loaded_url)
    with engine.connect() as conn:
        before = wall.overview_snapshot(conn, END)
        still_open = select(Issue.id, Issue.raised_at, Issue.status).where(
            Issue.resolved_at.is_(None), Issue.closed_at.is_(None), Issue.status != "cancelled")
        old = conn.execute(still_open.where(Issue.raised_at < END - timedelta(days=2))
                           .order_by(Issue.id).limit(10)).all()
        today = conn.execute(still_open.where(Issue.raised_at >= END - timedelta(hours=1))
                             .order_by(Issue.id).limit(10)).all()
    # Closed before yesterday's same time (open neither then nor now), and closed today.
    closings = [(i, END - timedelta(hours=25), "closed") for i, _, _ in old] + \
        [(i, min(raised + timedelta(minutes=5), END), "closed") for i, raised, _ in today]
    assert len(closings) == 20

    def set_closed(rows):
        with engine.begin() as conn:
            for issue_id, closed_at, status in rows:
                conn.execute(Issue.__table__.update().where(Issue.id == issue_id)
                             .values(closed_at=closed_at, status=status))

    set_closed(closings)
    try:
        with engine.connect() as conn:
            after = wall.overview_snapshot(conn, END)
        assert after["tiles"]["open"]["value"] == before["tiles"]["open"]["value"] - 20
        assert after["tiles"]["open"]["yesterday"] == before["tiles"]["open"]["yesterday"] - 10
        kpi_bench.run_bench(loaded_url, "W-M", rounds=1, scale=SCALE, seed=3, end=END, ticks=False,
                            pace_s=0, out_dir=None, log=lambda line: None)
    finally:
        set_closed([(i, None, status) for i, _, status in old + today])


def test_the_star_rule(monkeypatch):
    # [code, raised, open, overdue, median, response SLA compliance, ping-pong]
    rows = [["EHS", 9, 0, 0, 3.0, 0.74, 0],   # fastest, but its SLA is red
            ["ENG", 4, 0, 0, 2.0, 1.0, 0],    # too few issues
            ["MNT", 5, 0, 0, 6.0, 0.75, 0],
            ["QA", 8, 0, 0, 6.0, 0.80, 0],    # MNT's median, a better SLA
            ["WH", 6, 0, 0, 9.0, 0.95, 0]]
    star, reason = fig.star(rows)
    assert star == "QA"
    assert reason == {"department_code": "QA", "raised": 8, "median_response_min": 6.0,
                      "response_sla_compliance": 0.80, "min_issues": 5, "tied_with": ["MNT"]}
    rows[3][5] = 0.75
    assert fig.star(rows)[0] == "QA"     # same SLA: more issues
    rows[3][1] = 5
    assert fig.star(rows)[0] == "MNT"    # same issues: the code
    monkeypatch.setenv("STAR_MIN_ISSUES", "4")
    assert fig.star(rows)[0] == "ENG"
    assert fig.star([["PRD", 9, 0, 0, 1.0, 0.5, 0]]) == (None, None)


def test_the_two_median_conventions():
    # Two middle values where hi - (hi - lo) * 0.5 and (lo + hi) / 2 differ in the last bit.
    low, high = 13.51, 72.15
    assert fig.quantile_median([high, low]) == pd.Series([low, high]).quantile(0.5)
    assert fig.groupby_median([high, low]) == pd.Series([low, high]).groupby([0, 0]).median()[0]
    assert fig.quantile_median([low, high]) != fig.groupby_median([low, high])
    assert fig.quantile_median([3.0, 1.0, 2.0]) == fig.groupby_median([3.0, 1.0, 2.0]) == 2.0
    assert fig.quantile_median([np.nan]) is None


def test_differences_are_exact_for_medians_and_counts_only():
    expected = {"tiles": {"open": [3, 2], "median_response_min": [12.5, None],
                          "response_sla_compliance": [0.5, None]},
                "trend": [1.0], "scoreboard": [["QA", 5, 1, 0, 7.25, 0.8, 1]]}
    near = float(np.nextafter(0.5, 1.0))
    actual = {"tiles": {"open": [3, 2], "median_response_min": [12.5, None],
                        "response_sla_compliance": [near, None]},
              "trend": [1.0], "scoreboard": [["QA", 5, 1, 0, 7.25, 0.8, 1]]}
    assert fig.differences(expected, actual) == []
    actual["scoreboard"][0][4] = float(np.nextafter(7.25, 8.0))
    actual["tiles"]["open"][1] = 3
    assert fig.differences(expected, actual) == [
        "scoreboard/0/4: expected 7.25, found 7.250000000000001",
        "tiles/open/1: expected 2, found 3"]


def test_kpis_by_groups_spreads_the_same_plant_and_times_both_paths(tmp_path):
    from bench import kpis_by_groups

    result = kpis_by_groups.run(groups=(1, 3, 40), days=2, rounds=1, command=False,
                                out_dir=tmp_path, log=lambda _: None)
    rows = result["rows"]
    assert [row["departments"] for row in rows] == [1, 3, 40]
    assert [row["plant"]["departments"] for row in rows] == [1, 3, 40]
    # The same issues and events every time, only their departments differ.
    assert len({(row["plant"]["issues"], row["plant"]["issue_events"], row["raised"])
                for row in rows}) == 1
    assert rows[0]["raised"] > 0
    assert all(row["loop_ms"] > 0 and row["grouped_ms"] > 0 for row in rows)
    saved = json.loads(next(tmp_path.glob("kpis-by-groups-sqlite-*.json")).read_text())
    assert saved["rows"][2]["departments"] == 40
    assert "40" in kpis_by_groups.table(result).splitlines()[3]


def test_kpis_by_groups_fails_when_the_paths_disagree(tmp_path, monkeypatch):
    from bench import kpis_by_groups
    from data.reports import kpi_report

    def one_more_raised(*args):
        figures = kpis.issue_kpis_by_department(*args)
        first = next(iter(figures))
        figures[first] = {**figures[first], "raised": figures[first]["raised"] + 1}
        return figures

    monkeypatch.setattr(kpi_report, "issue_kpis_by_department", one_more_raised)
    with pytest.raises(AssertionError, match="3 departments: the grouped report differs"):
        kpis_by_groups.run(groups=(3,), days=1, rounds=1, command=False, out_dir=None,
                           log=lambda _: None)


def test_the_explorer_bench_times_every_callback_and_checks_every_figure(loaded_url, monkeypatch):
    from bench import explorer_bench
    monkeypatch.setenv("EXPLORER_HISTORY_DAYS", "400")
    report = explorer_bench.run_bench(loaded_url, windows=(30,), rounds=2, out_dir=None,
                                      log=lambda *_: None)
    callbacks = report["callbacks"]["30"]
    assert set(callbacks) == set(explorer_bench.CALLBACKS)
    assert all(v["project"]["n"] == 2 * len(report["combinations"]) for k, v in callbacks.items()
               if k != "drill")
    assert all(v["straightforward"]["n"] == len(report["combinations"]) for k, v in callbacks.items()
               if k != "drill")


def test_a_figure_off_by_one_issue_fails_the_explorer_bench(loaded_url, monkeypatch):
    from bench import explorer_bench
    from data.explorer import history
    monkeypatch.setenv("EXPLORER_HISTORY_DAYS", "400")
    rows_of = history.Snapshot.rows

    def one_short(self, *args, **kwargs):
        found = rows_of(self, *args, **kwargs)
        found.issues = found.issues.iloc[1:].reset_index(drop=True)
        return found

    monkeypatch.setattr(history.Snapshot, "rows", one_short)
    with pytest.raises(explorer_bench.FiguresDiffer, match="counts|answers differently"):
        explorer_bench.run_bench(loaded_url, windows=(30,), rounds=1, out_dir=None, log=lambda *_: None)
