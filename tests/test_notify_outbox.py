"""The outbox on SQLite and PostgreSQL: a raise owes its messages in its own transaction, the
sweep takes each step once, tells the highest of several, and real data escalates too."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, update

from data import db, demo, store
from data.demo import simulator
from data.models import Delivery, Issue, IssueEvent, NotifyStep
from data.notify import links, outbox
from data.notify.messages import Message
from tests.notify_support import T0, listening, policy_text, raise_issue, small_plant  # noqa: F401 - autouse

# The listener's transaction, its rollback and the sweep are checked on both databases by
# the sender's and the restart's tests too; here SQLite keeps the suite within its time.
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def at(monkeypatch):
    """The listener's clock: the raise's own instant."""
    clock = {"now": T0}
    monkeypatch.setattr(outbox.timezones, "utc_now", lambda: clock["now"])
    return clock


def deliveries(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(Delivery.__table__).order_by(Delivery.id)).all()


def steps(engine, issue_id: str) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.scalars(select(NotifyStep.step).where(NotifyStep.issue_id == issue_id)))


def escalations(engine, issue_id: str) -> list:
    with engine.connect() as conn:
        return conn.execute(select(IssueEvent.at, IssueEvent.note, IssueEvent.source, IssueEvent.actor)
                            .where(IssueEvent.issue_id == issue_id, IssueEvent.kind == "escalated")
                            .order_by(IssueEvent.at)).all()


def test_a_raise_owes_the_first_step_to_its_department_and_those_told_in_its_transaction(engine, at):
    small_plant(engine)
    raise_issue(engine, "Q-1", T0)
    owed = deliveries(engine)
    assert {(d.channel_code, d.step, d.level, d.status) for d in owed} == {
        ("qa", "L0", 0, "pending"), ("prd", "L0", 0, "pending"), ("wh", "L0", 0, "pending")}
    assert {d.key for d in owed} == {"Q-1|L0|qa", "Q-1|L0|prd", "Q-1|L0|wh"}
    by_channel = {d.channel_code: Message.from_json(d.message) for d in owed}
    # Each department's on-duty person at 10:00, with their handles.
    assert [m.name for m in by_channel["qa"].mentions] == ["林娜"]
    assert by_channel["qa"].mentions[0].handles["mobile"] == "13800000001"
    assert [m.name for m in by_channel["wh"].mentions] == ["马超"]
    message = by_channel["qa"]
    assert message.event == "issue.raised" and message.issue_ids == ("Q-1",)
    assert "Q-1" in message.title and "质量异常" in message.title and "焊点虚焊" in message.lines
    assert any("L2 工位 1" in line and "质量部" in line for line in message.lines)
    # The link acknowledges this issue for this step and channel.
    claim = links.read_token(message.link.rsplit("/", 1)[1], T0)
    assert (claim.issue_id, claim.step, claim.channel_code) == ("Q-1", "L0", "qa")
    assert steps(engine, "Q-1") == ["L0"]
    assert escalations(engine, "Q-1") == []


def test_a_raise_rolled_back_owes_nothing(engine, at):
    small_plant(engine)
    with pytest.raises(RuntimeError):
        with db.session_scope(engine) as session:
            store.raise_issue(session, issue_id="Q-2", issue_type="quality_anomaly", title="x",
                              severity="P2", at=T0, location_code="L2-ST1")
            session.flush()
            raise RuntimeError("the writer failed after the raise")
    assert deliveries(engine) == [] and steps(engine, "Q-2") == []


def test_the_sweep_escalates_once_at_the_response_limit_and_again_at_the_resolution_share(engine, at):
    small_plant(engine)
    raise_issue(engine, "Q-3", T0)
    assert outbox.sweep(engine, T0 + timedelta(minutes=9)).steps == 0
    first = outbox.sweep(engine, T0 + timedelta(minutes=10, seconds=1))
    assert (first.steps, first.deliveries) == (1, 1)
    assert outbox.sweep(engine, T0 + timedelta(minutes=10, seconds=2)).steps == 0
    level_1 = [d for d in deliveries(engine) if d.step == "L1"]
    assert [(d.channel_code, d.key) for d in level_1] == [("qa", "Q-3|L1|qa")]
    assert [m.name for m in Message.from_json(level_1[0].message).mentions] == ["高翔"]
    [(when, note, source, actor)] = escalations(engine, "Q-3")
    assert when == T0 + timedelta(minutes=10, seconds=1)
    assert note.startswith("L1 · 超过响应时限 10") and source == outbox.NOTIFIER and actor == outbox.ACTOR
    with db.session_scope(engine) as session:
        store.acknowledge(session, "Q-3", T0 + timedelta(minutes=20), actor="高翔")
    assert outbox.sweep(engine, T0 + timedelta(minutes=119)).steps == 0
    second = outbox.sweep(engine, T0 + timedelta(minutes=120))
    assert second.steps == 1
    level_2 = [d for d in deliveries(engine) if d.step == "L2"]
    assert [d.channel_code for d in level_2] == ["mgr"]
    message = Message.from_json(level_2[0].message)
    assert [m.name for m in message.mentions] == ["罗红"]
    # zh+en: both languages; acknowledged, so the resolution limit is the one counted.
    assert "Escalated" in message.title and "升级" in message.title
    assert any("解决时限 4 时" in line for line in message.lines)
    assert any("resolution limit 4 h" in line for line in message.lines)


def test_several_steps_owed_at_once_are_all_taken_but_only_the_highest_is_told(engine, at):
    small_plant(engine)
    with engine.begin() as conn:   # an outside writer: no listener saw it
        conn.execute(insert(Issue).values(
            id="OLD-1", issue_type="quality_anomaly", title="旧问题", severity="P3", location_code="L1-ST1",
            raised_at=T0, owner_department_code="QA", status="open", updated_at=T0))
    counted = outbox.sweep(engine, T0 + timedelta(hours=3, minutes=30))
    assert steps(engine, "OLD-1") == ["L0", "L1", "L2", "L3"]
    assert counted.steps == 4
    assert [(d.step, d.channel_code) for d in deliveries(engine)] == [("L3", "plant")]
    [(_, note, _, _)] = escalations(engine, "OLD-1")
    assert note.startswith("L3 · ")
    # The repeats come on their own hours, capped at two.
    outbox.sweep(engine, T0 + timedelta(hours=4, minutes=1))
    outbox.sweep(engine, T0 + timedelta(hours=5, minutes=1))
    outbox.sweep(engine, T0 + timedelta(hours=9))
    assert [d.step for d in deliveries(engine)] == ["L3", "L3#2", "L3#3"]


def test_steps_due_before_the_policy_was_imported_are_taken_without_a_word(engine, at):
    small_plant(engine, imported_at=T0 + timedelta(hours=2, minutes=1))
    with engine.begin() as conn:
        conn.execute(insert(Issue).values(
            id="OLD-2", issue_type="quality_anomaly", title="旧问题", severity="P3", location_code="L1-ST1",
            raised_at=T0, owner_department_code="QA", status="open", updated_at=T0))
    outbox.sweep(engine, T0 + timedelta(hours=2, minutes=30))
    assert steps(engine, "OLD-2") == ["L0", "L1", "L2"]
    assert deliveries(engine) == [] and escalations(engine, "OLD-2") == []
    outbox.sweep(engine, T0 + timedelta(hours=3, minutes=1))
    assert [d.step for d in deliveries(engine)] == ["L3"]


def test_a_hand_back_tells_the_managers_of_both_departments(engine, at):
    small_plant(engine)
    raise_issue(engine, "Q-4", T0)
    with db.session_scope(engine) as session:
        store.reassign(session, "Q-4", T0 + timedelta(minutes=2), "PRD", actor="林娜")
    assert not [d for d in deliveries(engine) if d.step.startswith("PP@")]
    with db.session_scope(engine) as session:
        store.reassign(session, "Q-4", T0 + timedelta(minutes=4), "QA", actor="张伟")
    notices = [d for d in deliveries(engine) if d.step.startswith("PP@")]
    assert [d.channel_code for d in notices] == ["mgr"]
    message = Message.from_json(notices[0].message)
    assert {m.name for m in message.mentions} == {"罗红", "王芳"}
    assert message.event == "issue.ping_pong"
    assert any("由 生产部 转回 质量部" in line for line in message.lines)
    # The sweep finds it taken and owes it no second time, without even trying.
    assert outbox.sweep(engine, T0 + timedelta(minutes=5)).skipped == []
    assert len([d for d in deliveries(engine) if d.step.startswith("PP@")]) == 1


def test_a_hand_back_by_an_outside_writer_is_found_by_the_sweep(engine, at):
    small_plant(engine)
    raise_issue(engine, "Q-5", T0)
    with engine.begin() as conn:
        for minute, department in ((1, "WH"), (3, "QA")):
            conn.execute(insert(IssueEvent).values(issue_id="Q-5", at=T0 + timedelta(minutes=minute),
                                                   kind="reassigned", department_code=department))
        conn.execute(update(Issue).where(Issue.id == "Q-5").values(owner_department_code="QA"))
    outbox.sweep(engine, T0 + timedelta(minutes=5))
    notices = [d for d in deliveries(engine) if d.step.startswith("PP@")]
    assert [d.channel_code for d in notices] == ["mgr"]
    assert {m.name for m in Message.from_json(notices[0].message).mentions} == {"罗红", "朱琳"}


def test_quiet_hours_hold_a_p2_message_until_morning(engine, at):
    small_plant(engine, text=policy_text(quiet="22:00-06:00"))
    late = T0 + timedelta(hours=13)     # 23:00 at the site
    at["now"] = late
    raise_issue(engine, "Q-6", late)
    raise_issue(engine, "Q-7", late, severity="P1")
    qa = {d.issue_id: d for d in deliveries(engine) if d.channel_code == "qa"}
    assert qa["Q-6"].deliver_after == T0 + timedelta(hours=20)      # 06:00 at the site
    assert qa["Q-7"].deliver_after == late
    # Who is on duty at 23:00 is the night shift.
    assert [m.name for m in Message.from_json(qa["Q-6"].message).mentions] == ["高翔"]


def test_the_demo_plant_escalates_by_its_policy_with_the_simulator_running(engine, monkeypatch):
    end = T0
    demo.build_demo_plant(engine, days=2, seed=7, end=end)
    sim = simulator.LiveSimulator(engine, seed=3, issues_per_hour=20, moves_per_hour=0)
    for n in range(1, 13):
        sim.step(end + n * timedelta(minutes=10))
        outbox.sweep(engine, end + n * timedelta(minutes=10))
    with engine.connect() as conn:
        escalated = conn.execute(
            select(IssueEvent.issue_id, IssueEvent.at, IssueEvent.note, Issue.raised_at, Issue.acknowledged_at)
            .join(Issue, Issue.id == IssueEvent.issue_id)
            .where(IssueEvent.kind == "escalated", IssueEvent.source == outbox.NOTIFIER)).all()
        live = conn.scalar(select(func.count()).select_from(Issue).where(Issue.id.startswith("SIM-")))
    assert live > 10 and escalated
    assert all(e.at > end for e in escalated)
    assert all(e.note.startswith("L") for e in escalated)
