"""The write path: schema on both databases, the issue life cycle, idempotent upserts."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from data import db, store
from data.models import Department, Issue, IssueEvent, SlaRule

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)


def seed_reference(engine):
    with db.session_scope(engine) as s:
        s.add_all([Department(code="PRD", name_zh="生产部", name_en="Production"),
                   Department(code="QA", name_zh="质量部", name_en="Quality")])
        s.flush()
        s.add(SlaRule(issue_type="quality_anomaly", name_zh="质量异常", name_en="Quality anomaly",
                      owner_department_code="QA", notify_department_codes="PRD",
                      ack_minutes=10, resolve_minutes=240))


def test_life_cycle_records_every_hand_off(engine):
    seed_reference(engine)
    with db.session_scope(engine) as s:
        store.raise_issue(s, issue_id="Q-1", issue_type="quality_anomaly", title="毛刺",
                          severity="P2", at=T0, raised_by="op1")
    with db.session_scope(engine) as s:
        store.reassign(s, "Q-1", T0 + timedelta(minutes=3), "PRD", actor="qa1")
        store.acknowledge(s, "Q-1", T0 + timedelta(minutes=5), actor="prd1")
        store.resolve(s, "Q-1", T0 + timedelta(minutes=50), actor="prd1", cause="刀具磨损")
    with db.session_scope(engine) as s:
        issue = s.get(Issue, "Q-1")
        assert issue.status == "resolved"
        assert issue.owner_department_code == "PRD"
        assert issue.acknowledged_at == T0 + timedelta(minutes=5)
        assert issue.raised_at.tzinfo is not None
        kinds = s.execute(select(IssueEvent.kind, IssueEvent.department_code)
                          .order_by(IssueEvent.at)).all()
        assert kinds == [("raised", "QA"), ("reassigned", "PRD"), ("acknowledged", "PRD"),
                         ("resolved", "PRD")]


def test_life_cycle_refuses_impossible_changes(engine):
    seed_reference(engine)
    with db.session_scope(engine) as s:
        store.raise_issue(s, issue_id="Q-1", issue_type="quality_anomaly", title="x",
                          severity="P2", at=T0)
    with pytest.raises(store.LifecycleError, match="before it was raised"):
        with db.session_scope(engine) as s:
            store.acknowledge(s, "Q-1", T0 - timedelta(minutes=1))
    with pytest.raises(store.LifecycleError, match="only a resolved issue"):
        with db.session_scope(engine) as s:
            store.close(s, "Q-1", T0 + timedelta(minutes=1))
    with db.session_scope(engine) as s:
        assert s.get(Issue, "Q-1").status == "open"


def test_the_store_follows_the_life_cycle_and_leaves_a_refused_issue_as_it_was(engine):
    seed_reference(engine)
    with db.session_scope(engine) as s:
        store.raise_issue(s, issue_id="Q-1", issue_type="quality_anomaly", title="x",
                          severity="P2", at=T0)
        assert s.get(Issue, "Q-1").status == "open"
    with db.session_scope(engine) as s:
        # Resolving an issue nobody acknowledged acknowledges it at the same instant.
        store.resolve(s, "Q-1", T0 + timedelta(minutes=20), cause="刀具磨损")
    refused = [
        (store.acknowledge, (), "only an open issue can be acknowledged"),
        (store.reassign, ("PRD",), "only an open or acknowledged issue can be reassigned"),
        (store.escalate, (), "only an open or acknowledged issue can be escalated"),
        (store.resolve, (), "only an open or acknowledged issue can be resolved"),
    ]
    for change, args, message in refused:
        with pytest.raises(store.LifecycleError, match=message):
            with db.session_scope(engine) as s:
                change(s, "Q-1", T0 + timedelta(minutes=30), *args)
    with db.session_scope(engine) as s:
        store.close(s, "Q-1", T0 + timedelta(minutes=40))
    with pytest.raises(store.LifecycleError, match="only a resolved issue can be closed"):
        with db.session_scope(engine) as s:
            store.close(s, "Q-1", T0 + timedelta(minutes=50))
    with db.session_scope(engine) as s:
        issue = s.get(Issue, "Q-1")
        assert (issue.status, issue.owner_department_code, issue.cause) == ("closed", "QA", "刀具磨损")
        assert (issue.acknowledged_at, issue.resolved_at, issue.closed_at) == (
            T0 + timedelta(minutes=20), T0 + timedelta(minutes=20), T0 + timedelta(minutes=40))
        kinds = s.execute(select(IssueEvent.kind).order_by(IssueEvent.at, IssueEvent.id)).scalars().all()
        assert kinds == ["raised", "acknowledged", "resolved", "closed"]


def test_naive_instants_are_refused(engine):
    seed_reference(engine)
    with pytest.raises(Exception, match="naive datetime"):
        with db.session_scope(engine) as s:
            store.raise_issue(s, issue_id="Q-2", issue_type="quality_anomaly", title="x",
                              severity="P3", at=datetime(2026, 11, 20, 10, 0))


def test_upsert_writes_once(engine):
    rows = [{"code": "PRD", "name_zh": "生产部", "name_en": "Production"}]
    with engine.begin() as conn:
        store.upsert_rows(conn, Department, rows)
        store.upsert_rows(conn, Department, [{**rows[0], "name_en": "Production dept."}])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Department)).scalar() == 1
        assert conn.execute(select(Department.name_en)).scalar() == "Production dept."
