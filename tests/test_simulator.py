"""The live simulator: advances a loaded plant through the data layer, deterministically."""
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from sqlalchemy import select

from data import demo, queries, store, timezones
from data.demo import reference, simulator
from data.models import Issue, IssueEvent, Movement, ProductionPlan, SlaRule

END = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)  # 10:00 at the site
STEP = timedelta(minutes=10)


def run(engine, *, seed=1, hours=4, issues_per_hour=20.0, moves_per_hour=200.0) -> Counter:
    sim = simulator.LiveSimulator(engine, seed=seed, issues_per_hour=issues_per_hour,
                                  moves_per_hour=moves_per_hour)
    done = Counter()
    for n in range(1, int(hours * 60 / 10) + 1):
        done.update(sim.step(END + n * STEP))
    return done


def simulated(engine) -> dict[str, list[tuple]]:
    """What the simulator wrote: its issues, every event, its moves and the plan."""
    with engine.connect() as conn:
        issues = conn.execute(select(Issue.id, Issue.issue_type, Issue.title, Issue.raised_at,
                                     Issue.status, Issue.owner_department_code,
                                     Issue.acknowledged_at, Issue.resolved_at, Issue.closed_at)
                              .where(Issue.id.startswith(reference.LIVE_ID_PREFIX))
                              .order_by(Issue.id)).all()
        events = conn.execute(select(IssueEvent.issue_id, IssueEvent.at, IssueEvent.kind,
                                     IssueEvent.department_code, IssueEvent.actor, IssueEvent.note)
                              .order_by(IssueEvent.issue_id, IssueEvent.at, IssueEvent.kind)).all()
        moves = conn.execute(select(Movement.id, Movement.at, Movement.material_code, Movement.lot,
                                    Movement.qty, Movement.from_location_code,
                                    Movement.to_location_code)
                             .where(Movement.id.startswith(reference.LIVE_ID_PREFIX))
                             .order_by(Movement.id)).all()
        plan = conn.execute(select(ProductionPlan.line, ProductionPlan.shift_start,
                                   ProductionPlan.planned_qty, ProductionPlan.actual_qty)
                            .order_by(ProductionPlan.line, ProductionPlan.shift_start)).all()
    return {"issues": issues, "events": events, "moves": moves, "plan": plan}


@pytest.fixture
def plant(engine):
    demo.build_demo_plant(engine, days=3, seed=7, end=END)
    return engine


def test_steps_raise_hand_on_answer_resolve_and_move_material(plant):
    with plant.connect() as conn:
        newest = simulator.newest_instant(conn)
    done = run(plant)
    for kind in ("raised", "acknowledged", "reassigned", "resolved", "closed"):
        assert done[kind] > 0, kind
    assert done["movements"] > 4 * 200 * 0.7
    assert done["plan_rows"] > 0
    written = simulated(plant)
    assert len(written["issues"]) == done["raised"]
    assert len(written["moves"]) == done["movements"]
    after = Counter(row.kind for row in written["events"] if row.at > newest)
    for kind in ("raised", "acknowledged", "reassigned", "resolved", "closed"):
        assert after[kind] == done[kind], kind
    # The first step carried on from the demo plant's last record, not from an earlier time.
    assert min(row.raised_at for row in written["issues"]) > newest
    assert min(row.at for row in written["moves"]) > newest


def test_live_writes_are_followed_not_reloaded(plant):
    """The simulator writes as a live source: no step makes the wall's readers reload."""
    with plant.connect() as conn:
        before = store.bulk_version(conn)
    done = run(plant, hours=1)
    assert done["plan_rows"] > 0 and done["movements"] > 0
    with plant.connect() as conn:
        assert store.bulk_version(conn) == before


def test_simulated_data_obeys_the_contract(plant):
    run(plant)
    with plant.connect() as conn:
        issues = pd.DataFrame(conn.execute(
            select(Issue.id, Issue.raised_at, Issue.acknowledged_at, Issue.resolved_at,
                   Issue.owner_department_code, SlaRule.ack_minutes)
            .join(SlaRule, SlaRule.issue_type == Issue.issue_type)).all())
        events = pd.DataFrame(conn.execute(
            select(IssueEvent.issue_id, IssueEvent.at, IssueEvent.kind, IssueEvent.department_code)
            .order_by(IssueEvent.issue_id, IssueEvent.at, IssueEvent.id)).all())
        stock = [queries.stock_on_hand(conn, END + timedelta(hours=h)) for h in (1, 2, 4)]
    joined = events.merge(issues, left_on="issue_id", right_on="id")
    assert (joined["at"] >= joined["raised_at"]).all()
    done = issues.dropna(subset=["resolved_at"])
    assert (done["acknowledged_at"] <= done["resolved_at"]).all()
    # Escalations are the notifier's, by the plant's policy (tests/test_notify_outbox.py).
    assert not (joined[joined["at"] > END]["kind"] == "escalated").any()
    holder = joined.groupby("issue_id")["department_code"].last()
    assert (holder == issues.set_index("id")["owner_department_code"].reindex(holder.index)).all()
    for on_hand in stock:
        assert (on_hand["qty"] >= 0).all()


def test_same_seed_and_instants_give_the_same_plant_and_another_seed_does_not(plant):
    run(plant, seed=5, hours=1)
    first = simulated(plant)
    demo.build_demo_plant(plant, days=3, seed=7, end=END)
    assert simulated(plant)["issues"] == []
    run(plant, seed=5, hours=1)
    assert simulated(plant) == first
    demo.build_demo_plant(plant, days=3, seed=7, end=END)
    run(plant, seed=6, hours=1)
    other = simulated(plant)
    assert other["issues"] != first["issues"] and other["moves"] != first["moves"]


def test_a_failed_step_is_retried_without_writing_twice(plant, monkeypatch):
    sim = simulator.LiveSimulator(plant, seed=2, issues_per_hour=30, moves_per_hour=200)
    sim.step(END + STEP)
    record = store.record_movements

    def database_busy(session, movements):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(store, "record_movements", database_busy)
    with pytest.raises(RuntimeError):
        sim.step(END + 2 * STEP)
    monkeypatch.setattr(store, "record_movements", record)
    retried = sim.step(END + 3 * STEP)
    assert retried["movements"] > 0
    with plant.connect() as conn:
        moved_after = conn.execute(
            select(Movement.at).where(Movement.at > END + STEP)).scalars().all()
    # The retry covered the failed interval too.
    assert min(moved_after) < END + 2 * STEP
    later = sim.step(END + 4 * STEP)
    assert sum(later.values()) > 0


def test_an_empty_database_gives_nothing_to_do(engine):
    sim = simulator.LiveSimulator(engine, seed=1, issues_per_hour=30, moves_per_hour=200)
    assert sum(sim.step(END).values()) == 0
    assert sum(sim.step(END + STEP).values()) == 0


def test_background_thread_steps_with_the_clock_and_survives_a_failed_step(engine, monkeypatch):
    now = timezones.utc_now()
    demo.build_demo_plant(engine, days=1, seed=7, end=now - timedelta(hours=1))
    monkeypatch.setenv("SIMULATOR_TICK_S", "0.05")
    calls = Counter()
    step = simulator.LiveSimulator.step

    def flaky(self, at):
        calls["steps"] += 1
        if calls["steps"] == 1:
            raise RuntimeError("database is locked")
        return step(self, at)

    monkeypatch.setattr(simulator.LiveSimulator, "step", flaky)
    thread = simulator.start_background(engine)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                moved = conn.execute(select(Movement.id).where(
                    Movement.id.startswith(reference.LIVE_ID_PREFIX)).limit(1)).first()
            if moved is not None:
                break
            time.sleep(0.1)
        assert thread.daemon and thread.is_alive()
        assert moved is not None
        assert calls["steps"] >= 2
    finally:
        thread.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()
