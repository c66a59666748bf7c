"""The demo plant: reproducible, replaced rather than duplicated, and telling its story."""
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from sqlalchemy import func, select

from data import db, demo, kpis, queries, store
from data.demo import reference
from data.reports import kpi_report
from data.models import CANONICAL_TABLES, Issue, IssueEvent, Location, Movement, SlaRule

END = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)  # 10:00 at the site (Asia/Shanghai)
# Not the plant's content: surrogate keys the contract does not name (a database numbers
# them as it likes) and the writer's clock (when a row reached the database).
NOT_CONTENT = {"issue_events.id", "production_plan.id", "issues.updated_at",
               "issue_events.recorded_at", "movements.recorded_at", "production_plan.updated_at"}


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every canonical table's rows, sorted, in a form that compares across databases."""
    tables = {}
    with engine.connect() as conn:
        for name, model in CANONICAL_TABLES.items():
            columns = [c for c in model.__table__.columns if f"{name}.{c.name}" not in NOT_CONTENT]
            rows = conn.execute(select(*columns)).all()
            tables[name] = sorted((tuple("" if v is None else str(v) for v in row) for row in rows))
    return tables


def test_same_seed_and_end_give_the_same_plant_and_a_rebuild_does_not_duplicate(engine):
    written = demo.build_demo_plant(engine, days=3, seed=7, end=END)
    first = snapshot(engine)
    assert written == {name: len(rows) for name, rows in first.items()}
    assert written["issues"] > 100 and written["movements"] > 500

    assert demo.build_demo_plant(engine, days=3, seed=7, end=END) == written
    assert snapshot(engine) == first

    demo.build_demo_plant(engine, days=3, seed=8, end=END)
    other = snapshot(engine)
    assert other["departments"] == first["departments"]
    assert other["issues"] != first["issues"]
    assert other["movements"] != first["movements"]


def test_a_new_build_replaces_the_generated_history_and_keeps_imported_rows(engine):
    demo.build_demo_plant(engine, days=2, seed=7, end=END)
    with db.session_scope(engine) as session:
        store.raise_issue(session, issue_id="ANDON-1", issue_type="safety_hazard", title="急停失效",
                          severity="P1", at=END - timedelta(hours=1))
    later = demo.build_demo_plant(engine, days=2, seed=7, end=END + timedelta(days=1))
    with engine.connect() as conn:
        ids = set(conn.execute(select(Issue.id)).scalars())
        first_raised = conn.execute(select(func.min(Issue.raised_at))
                                    .where(Issue.id.startswith(reference.HISTORY_ID_PREFIX))).scalar()
        movements = conn.execute(select(func.count()).select_from(Movement)).scalar()
    assert "ANDON-1" in ids
    assert len(ids) == later["issues"] + 1
    assert movements == later["movements"]
    assert first_raised >= END - timedelta(days=1)


def test_is_empty_until_a_plant_is_built(engine):
    assert demo.is_empty(engine)
    demo.build_demo_plant(engine, days=1, seed=7, end=END)
    assert not demo.is_empty(engine)


def test_reference_tables_hold_the_collaboration_matrix_and_the_material_path(engine):
    demo.build_demo_plant(engine, days=1, seed=7, end=END)
    with engine.connect() as conn:
        rules = {r.issue_type: r for r in conn.execute(select(SlaRule.__table__))}
        locations = pd.DataFrame(conn.execute(select(Location.__table__)).all())
    assert (rules["production_plan_change"].owner_department_code,
            rules["production_plan_change"].notify_department_codes,
            rules["production_plan_change"].ack_minutes) == ("PLN", "PUR;WH", 30)
    assert (rules["material_receipt"].owner_department_code,
            rules["material_receipt"].notify_department_codes,
            rules["material_receipt"].ack_minutes) == ("WH", "QA", 20)
    assert (rules["quality_anomaly"].owner_department_code,
            rules["quality_anomaly"].notify_department_codes,
            rules["quality_anomaly"].ack_minutes) == ("QA", "PRD;ENG;WH;PUR", 10)
    assert (rules["customer_complaint"].owner_department_code,
            rules["customer_complaint"].ack_minutes) == ("SAL", 120)
    assert len(rules) == 8
    kinds = locations.groupby("kind")["code"].count().to_dict()
    assert kinds == {"supplier": 5, "receiving": 1, "iqc": 1, "warehouse": 2, "line_side": 4,
                     "wip": 12, "consumption": 4, "finished": 1, "customer": 3, "scrap": 1}
    limited = locations[locations["max_dwell_minutes"].notna()]
    assert set(limited["kind"]) == {"receiving", "iqc", "warehouse", "line_side"}
    line_sides = locations[locations["kind"] == "line_side"]
    assert sorted(line_sides["line"]) == ["L1", "L2", "L3", "L4"]


@pytest.fixture
def three_weeks(engine):
    demo.build_demo_plant(engine, days=21, seed=7, end=END)
    return engine


def test_the_story_shows_in_the_kpis(three_weeks):
    start = END - timedelta(days=21)
    first_week = kpi_report.kpi_report(three_weeks, since=start, until=start + timedelta(days=7),
                                       as_of=END)["overall"]
    last_week = kpi_report.kpi_report(three_weeks, since=END - timedelta(days=7), until=END,
                                      as_of=END)
    latest = last_week["overall"]
    assert first_week["response_median_min"] > 150
    assert latest["response_median_min"] < 30
    assert first_week["response_median_min"] > 3 * latest["response_median_min"]
    assert first_week["ping_pong_issues"] > latest["ping_pong_issues"] > 0
    assert first_week["handoffs_mean"] > latest["handoffs_mean"]
    assert latest["open"] > 0 and latest["overdue"] > 0
    assert last_week["material"]["stagnant_lots"] > 0


def test_nights_are_slower_shortages_burst_and_lines_differ(three_weeks):
    start = END - timedelta(days=21)
    with three_weeks.connect() as conn:
        week = queries.issue_population(conn, END - timedelta(days=7), END)
        shortages = queries.issue_population(conn, start, END)
        plan = queries.production_plan(conn, start, END)
    local_hour = week["raised_at"].dt.tz_convert("Asia/Shanghai").dt.hour
    night = ((local_hour >= 20) | (local_hour < 8)).to_numpy()
    response = kpis.response_minutes(week, END)
    assert response[night].median() > 1.4 * response[~night].median()

    shortages = shortages[shortages["issue_type"] == "material_shortage"]
    per_day = shortages["raised_at"].dt.tz_convert("Asia/Shanghai").dt.date.value_counts()
    assert per_day.max() > 2 * per_day.median()

    attainment = {line: kpis.plan_attainment(shifts, END) for line, shifts in plan.groupby("line")}
    assert attainment["L1"] == pytest.approx(0.97, abs=0.02)
    assert attainment["L3"] == pytest.approx(0.85, abs=0.02)


def test_the_history_obeys_the_contract(three_weeks):
    with three_weeks.connect() as conn:
        issues = pd.DataFrame(conn.execute(select(Issue.__table__)).all())
        events = pd.DataFrame(conn.execute(
            select(IssueEvent.__table__).order_by(IssueEvent.issue_id, IssueEvent.at)).all())
        stock = queries.stock_on_hand(conn, END)
        midway = queries.stock_on_hand(conn, END - timedelta(days=10, hours=3))
    joined = events.merge(issues[["id", "raised_at", "owner_department_code"]],
                          left_on="issue_id", right_on="id")
    assert (joined["at"] >= joined["raised_at"]).all()
    assert (joined["at"] <= END).all()
    last_holder = joined.groupby("issue_id")["department_code"].last()
    owner = issues.set_index("id")["owner_department_code"]
    assert (last_holder == owner.reindex(last_holder.index)).all()
    done = issues.dropna(subset=["resolved_at"])
    assert (done["acknowledged_at"] <= done["resolved_at"]).all()
    assert set(issues["status"]) <= {"open", "acknowledged", "resolved", "closed", "cancelled"}
    assert issues.loc[issues["status"] == "open", "acknowledged_at"].isna().all()
    assert (stock["qty"] >= 0).all() and (midway["qty"] >= 0).all()
