"""A reproducible demo plant: reference data and weeks of floor history that tell one story.

The story is the reference case of site management: once every department works from one
live wall, the median response to a floor problem falls from about four hours to about a
quarter of an hour. Nights stay slower than days, a few department pairs keep passing
issues back and forth, a supplier problem brings a burst of material shortages, and at the
end the plant is alive: open issues, overdue ones, lots stuck at IQC and at the line side.

This module writes it; the parts are told by their own modules over one timeline:
reference.py (the plant), issue_history.py, plan_history.py and material_history.py, at the
pace of pace.py.

Same seed and same end give the same rows. A build replaces the generated history (issues
and movements whose ids start with DEMO- or SIM-, and the plan of the demo lines) and
leaves rows imported from elsewhere alone.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.engine import Engine

from data import store, timezones
from data.demo import reference
from data.demo.issue_history import IssueHistory
from data.demo.material_history import MaterialHistory
from data.demo.plan_history import PlanHistory
from data.demo.timeline import Timeline
from data.models import Department, Issue, IssueEvent, Movement, ProductionPlan
from data.notify import policy

# The demo plant's escalation policy, in force from its first build until another is imported.
ESCALATION_POLICY = Path(__file__).with_name("escalation.yaml")


def build_demo_plant(engine: Engine, *, days: int = 90, seed: int = 7,
                     end: datetime | None = None) -> dict[str, int]:
    """Write the demo plant: reference tables and `days` of history ending at `end`.

    One transaction: the wall never sees half a plant; then, on a database without an
    escalation policy, the demo plant's (escalation.yaml). Returns the rows written per table.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if end is None:
        end = timezones.utc_now().replace(minute=0, second=0, microsecond=0)
    elif end.tzinfo is None:
        raise ValueError(f"naive end {end!r}; pass an aware instant")
    end = end.astimezone(timezones.UTC)
    timeline = Timeline(seed, end - timedelta(days=days), end, timezones.site_zone())
    tables = reference.tables()
    tables[Issue], tables[IssueEvent] = IssueHistory(timeline).issues()
    plan = PlanHistory(timeline)
    shifts = plan.shifts()
    tables[ProductionPlan] = plan.production_plan(shifts)
    tables[Movement] = MaterialHistory(timeline).movements(shifts)
    with engine.begin() as conn:
        _forget_generated_history(conn)
        for model, rows in tables.items():
            store.upsert_rows(conn, model, rows, recorded_by=store.DEMO_PLANT)
        has_policy = policy.stored(conn) is not None
    if not has_policy:
        # In force from the end of the history: the live plant escalates, its past does not.
        policy.store(engine, ESCALATION_POLICY.read_text(encoding="utf-8"), ESCALATION_POLICY.name,
                     store.DEMO_PLANT, end)
    return {model.__tablename__: len(rows) for model, rows in tables.items()}


def is_empty(engine: Engine) -> bool:
    """No issues and no departments: a database nobody has filled yet."""
    with engine.connect() as conn:
        issues = conn.execute(select(exists().where(Issue.id.is_not(None)))).scalar()
        departments = conn.execute(select(exists().where(Department.code.is_not(None)))).scalar()
    return not issues and not departments


def _generated(column):
    return or_(*(column.startswith(prefix, autoescape=True)
                 for prefix in reference.GENERATED_ID_PREFIXES))


def _forget_generated_history(conn) -> None:
    """Remove an earlier demo or simulator history, so a new build replaces it."""
    conn.execute(delete(IssueEvent).where(_generated(IssueEvent.issue_id)))
    conn.execute(delete(Issue).where(_generated(Issue.id)))
    conn.execute(delete(Movement).where(_generated(Movement.id)))
    conn.execute(delete(ProductionPlan).where(ProductionPlan.line.in_(list(reference.LINE_BY_CODE))))
    store.rebuild_lot_stock(conn)
