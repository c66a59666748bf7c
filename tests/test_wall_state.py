"""The incremental reader gives exactly what a full read gives, after live writes, bulk
writes and the passing of time."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from data import db, demo, kpis, queries, store, timezones, wall
from data.models import Department, Issue, IssueEvent, Movement, ProductionPlan
from data.wall.follower import WallState

END = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)   # 10:00 in Shanghai


@pytest.fixture
def plant(engine):
    demo.build_demo_plant(engine, days=6, seed=11, end=END)
    return engine


def assert_same_as_full_read(engine, state: WallState, as_of: datetime, **scope):
    with engine.connect() as conn:
        frames = state.frames(conn, as_of)
        incremental = wall.overview_from_frames(frames, as_of, **scope)
        material = wall.material_from_frames(frames, conn, as_of, line=scope.get("line"))
    with engine.connect() as conn:
        full = wall.overview_snapshot(conn, as_of, **scope)
        full_material = wall.material_snapshot(conn, as_of, line=scope.get("line"))
    assert incremental == full
    assert material == full_material


def live_changes(engine, at: datetime) -> None:
    """A minute on the floor: issues raised, handed back and forth, acknowledged, resolved;
    lots arriving and leaving; one move booked for later; a shift's output reported."""
    with db.session_scope(engine) as s:
        store.raise_issue(s, issue_id="LIVE-1", issue_type="quality_anomaly", title="毛刺",
                          severity="P1", at=at, location_code=None)
        store.raise_issue(s, issue_id="LIVE-2", issue_type="material_shortage", title="缺料",
                          severity="P2", at=at - timedelta(minutes=40))
    with db.session_scope(engine) as s:
        store.reassign(s, "LIVE-1", at + timedelta(minutes=1), "PRD")
        store.reassign(s, "LIVE-1", at + timedelta(minutes=2), "QA")
        store.acknowledge(s, "LIVE-2", at + timedelta(minutes=3))
        store.resolve(s, "LIVE-2", at + timedelta(minutes=4))
    with engine.connect() as conn:
        lot = conn.execute(
            select(Movement.lot, Movement.material_code, Movement.to_location_code)
            .where(Movement.to_location_code == "IQC-01")
            .order_by(Movement.at.desc(), Movement.id).limit(1)).one()
    with db.session_scope(engine) as s:
        store.record_movements(s, [
            {"id": "LIVE-M1", "at": at + timedelta(minutes=2), "material_code": lot.material_code,
             "lot": lot.lot, "qty": 1.0, "from_location_code": lot.to_location_code,
             "to_location_code": "WH-RM"},
            {"id": "LIVE-M2", "at": at + timedelta(hours=3), "material_code": lot.material_code,
             "lot": lot.lot, "qty": 1.0, "from_location_code": lot.to_location_code,
             "to_location_code": "WH-RM"},
        ])
    with engine.begin() as conn:
        shift = conn.execute(select(ProductionPlan).where(ProductionPlan.shift_start <= at)
                             .order_by(ProductionPlan.shift_start.desc()).limit(1)).one()
        store.report_production(conn, [{"line": shift.line, "shift_start": shift.shift_start,
                                        "shift_end": shift.shift_end, "planned_qty": shift.planned_qty,
                                        "actual_qty": (shift.actual_qty or 0.0) + 37.0}])


@pytest.mark.parametrize("scope", [{}, {"department": "QA"}, {"line": "L2"}], ids=["site", "dept", "line"])
def test_incremental_equals_full_read(plant, scope):
    state = WallState()
    assert_same_as_full_read(plant, state, END, **scope)           # the first, full load
    live_changes(plant, END + timedelta(minutes=1))
    assert_same_as_full_read(plant, state, END + timedelta(minutes=10), **scope)   # followed
    assert_same_as_full_read(plant, state, END + timedelta(hours=4), **scope)      # a booked move
    assert_same_as_full_read(plant, state, END + timedelta(days=2), **scope)       # time passes


def test_a_row_that_commits_late_into_the_overlap_is_still_read(plant):
    """A writer stamps its rows, then commits after the reader's last read: the rows carry
    stamps older than the reader's watermark, and are found by key in the overlap."""
    state = WallState()
    assert_same_as_full_read(plant, state, END)
    assert_same_as_full_read(plant, state, END + timedelta(minutes=1))
    live_changes(plant, END + timedelta(minutes=1))
    stamped = state._watermark - timedelta(seconds=5)
    with plant.begin() as conn:
        for model, column in ((Issue, Issue.updated_at), (IssueEvent, IssueEvent.recorded_at),
                              (Movement, Movement.recorded_at),
                              (ProductionPlan, ProductionPlan.updated_at)):
            conn.execute(update(model).where(column > stamped).values({column: stamped}))
    assert_same_as_full_read(plant, state, END + timedelta(minutes=10))


def test_rows_read_past_the_watermark_are_not_taken_twice(plant):
    """A read takes the rows committed by the time it runs, some stamped after the
    watermark it took first; the next read, from that watermark, sees them again."""
    state = WallState()
    assert_same_as_full_read(plant, state, END)
    live_changes(plant, END + timedelta(minutes=1))
    assert_same_as_full_read(plant, state, END + timedelta(minutes=10))
    state._watermark -= timedelta(seconds=10)
    assert_same_as_full_read(plant, state, END + timedelta(minutes=20))


def test_a_bulk_write_makes_the_reader_reload(plant):
    state = WallState()
    assert_same_as_full_read(plant, state, END)
    with plant.begin() as conn:
        store.upsert_rows(conn, Department, [{"code": "QA", "name_zh": "品质部", "name_en": "Quality"}])
    with plant.connect() as conn:
        frames = state.frames(conn, END)
    assert frames.names["departments"]["QA"]["name_zh"] == "品质部"
    assert_same_as_full_read(plant, state, END)


def test_week_turnover_from_the_current_stock_equals_the_contract_definition(plant):
    """The material page derives day-end stock from the on-hand now; the contract's
    definition brings the balance forward from the start of history. Same figure."""
    as_of = END
    week_start = as_of - timedelta(days=7)
    with plant.connect() as conn:
        shown = wall.material_snapshot(conn, as_of)["tiles"]["turnover_week"]
        day_ends = kpis.day_ends(week_start, as_of, timezones.site_zone())
        contract = kpis.turnover(queries.consumed(conn, week_start, as_of),
                                 queries.stock_at_day_ends(conn, week_start, day_ends))
    assert contract is not None and contract > 0
    assert shown == pytest.approx(contract, abs=1e-6)   # shown to 6 decimals
