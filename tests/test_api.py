"""The ingest API (docs/api.md): every endpoint writes what it says, checked through the life
cycle; every refusal names its field and writes nothing; tokens, idempotent retries, batches
all or nothing, no 5xx under fuzzing, 20 concurrent clients, and the wall sees each write on
its next refresh without reloading. On SQLite and PostgreSQL."""
from __future__ import annotations

import http.client
import io
import json
import threading
import time
import uuid
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from flask import Flask
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from data import cache, db, store, timezones
from data.ingest import api, importer, tokens
from data.lifecycle import LifecycleError
from data.models import (
    ApiAnswer, ApiToken, Department, Issue, IssueEvent, Location, LotStock, Material, Movement,
    SlaRule,
)
from data.wall import screens
from data.wall.follower import WallState
from tools.browser import AppServer

NOW = timezones.utc_now().replace(microsecond=0)
T0 = NOW - timedelta(hours=3)


def site(instant: datetime) -> str:
    """An instant as a sender writes it: site time without an offset."""
    return timezones.to_site(instant).replace(tzinfo=None).isoformat()


def at(minutes: float) -> str:
    return site(T0 + timedelta(minutes=minutes))


@pytest.fixture
def plant(engine):
    """The reference rows the documented examples name."""
    with db.session_scope(engine) as s:
        s.add_all([Department(code="PRD", name_zh="生产部", name_en="Production"),
                   Department(code="QA", name_zh="质量部", name_en="Quality"),
                   Department(code="WH", name_zh="仓储物流部", name_en="Warehouse")])
        s.flush()
        s.add_all([
            SlaRule(issue_type="quality_anomaly", name_zh="质量异常", name_en="Quality anomaly",
                    owner_department_code="QA", notify_department_codes="PRD", ack_minutes=10,
                    resolve_minutes=240),
            SlaRule(issue_type="material_shortage", name_zh="物料短缺", name_en="Material shortage",
                    owner_department_code="WH", notify_department_codes="PRD", ack_minutes=15,
                    resolve_minutes=120),
            Location(code="WH-RM", name="原材料仓", kind="warehouse"),
            Location(code="L2-LS", name="L2 线边库", kind="line_side", line="L2"),
            Location(code="L2-ST2", name="L2 工位 2 装配", kind="wip", line="L2"),
            Material(code="M-3002", name="电源模块 12V", unit="pcs", category="电子料")])
    return engine


@pytest.fixture
def token(plant):
    return tokens.create(plant, "andon-L2")[1]


@pytest.fixture
def client(db_url, plant):
    from app import create_app

    return create_app(db_url).server.test_client()


def post(client, path, body, token, key=None, raw=None):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(f"/api/v1{path}", data=raw if raw is not None else json.dumps(body),
                       headers=headers)


def counts(engine) -> dict:
    with engine.connect() as conn:
        return {model.__tablename__: conn.execute(select(func.count()).select_from(model)).scalar()
                for model in (Issue, IssueEvent, Movement, LotStock, ApiAnswer)}


def issue_body(issue_id="ANDON-1", **changes):
    return {"id": issue_id, "issue_type": "quality_anomaly", "title": "毛刺超标", "severity": "P2",
            "raised_at": at(0), "location_code": "L2-ST2", "raised_by": "PRD-01", **changes}


def move_body(move_id="MD-1", **changes):
    return {"id": move_id, "at": at(5), "material_code": "M-3002", "lot": "LOT-1", "qty": 200,
            "from_location_code": "WH-RM", "to_location_code": "L2-LS", **changes}


def errors_of(response) -> list[dict]:
    body = response.get_json()
    assert set(body) <= {"errors", "more_errors"} and body["errors"], body
    return body["errors"]


# ---- every endpoint, its rows in the database ------------------------------------------

def test_an_issue_lives_its_whole_life_through_the_api(client, token, plant):
    raised = post(client, "/issues", issue_body(), token)
    assert raised.status_code == 201
    assert raised.get_json() == {"type": "issue", "id": "ANDON-1", "status": "open",
                                 "owner_department_code": "QA",
                                 "raised_at": timezones.to_site(T0).isoformat()}
    steps = [
        ({"kind": "reassigned", "at": at(2), "actor": "QA-01", "to_department_code": "PRD",
          "note": "工装问题"}, "open", "PRD"),
        ({"kind": "acknowledged", "at": at(4), "actor": "PRD-02"}, "acknowledged", "PRD"),
        ({"kind": "escalated", "at": at(30), "note": "超时"}, "acknowledged", "PRD"),
        ({"kind": "commented", "at": at(1), "actor": "QA-01", "note": "先隔离"}, "acknowledged", "PRD"),
        ({"kind": "resolved", "at": at(50), "actor": "PRD-02", "cause": "刀具磨损"}, "resolved", "PRD"),
        ({"kind": "reopened", "at": at(60), "note": "复发"}, "acknowledged", "PRD"),
        ({"kind": "resolved", "at": at(70), "actor": "PRD-02"}, "resolved", "PRD"),
        ({"kind": "closed", "at": at(80), "actor": "PRD-01"}, "closed", "PRD"),
    ]
    for change, status, owner in steps:
        answer = post(client, "/issues/ANDON-1/events", change, token)
        assert answer.status_code == 201, answer.get_json()
        assert answer.get_json()["status"] == status
        assert answer.get_json()["owner_department_code"] == owner
    with db.session_scope(plant) as s:
        issue = s.get(Issue, "ANDON-1")
        assert (issue.status, issue.owner_department_code, issue.location_code, issue.raised_by) == \
            ("closed", "PRD", "L2-ST2", "PRD-01")
        assert issue.acknowledged_at == T0 + timedelta(minutes=4)
        assert issue.resolved_at == T0 + timedelta(minutes=70)
        assert issue.closed_at == T0 + timedelta(minutes=80)
        assert issue.cause == "刀具磨损"
        events = s.execute(select(IssueEvent.kind, IssueEvent.department_code, IssueEvent.actor,
                                  IssueEvent.note, IssueEvent.source)
                           .order_by(IssueEvent.at, IssueEvent.id)).all()
    assert events == [
        ("raised", "QA", "PRD-01", None, "andon-L2"),
        ("commented", "QA", "QA-01", "先隔离", "andon-L2"),
        ("reassigned", "PRD", "QA-01", "工装问题", "andon-L2"),
        ("acknowledged", "PRD", "PRD-02", None, "andon-L2"),
        ("escalated", "PRD", None, "超时", "andon-L2"),
        ("resolved", "PRD", "PRD-02", "刀具磨损", "andon-L2"),
        ("reopened", "PRD", None, "复发", "andon-L2"),
        ("resolved", "PRD", "PRD-02", None, "andon-L2"),
        ("closed", "PRD", "PRD-01", None, "andon-L2"),
    ]
    shown = client.get("/api/v1/issues/ANDON-1", headers={"Authorization": f"Bearer {token}"})
    assert shown.status_code == 200
    assert shown.get_json()["status"] == "closed"
    assert [e["kind"] for e in shown.get_json()["events"]][-1] == "closed"


def test_a_cancelled_issue_is_out_and_cannot_be_resolved(client, token, plant):
    post(client, "/issues", issue_body(), token)
    cancelled = post(client, "/issues/ANDON-1/events",
                     {"kind": "cancelled", "at": at(3), "note": "误报"}, token)
    assert cancelled.status_code == 201 and cancelled.get_json()["status"] == "cancelled"
    before = counts(plant)
    refused = post(client, "/issues/ANDON-1/events", {"kind": "resolved", "at": at(9)}, token)
    assert refused.status_code == 409
    assert errors_of(refused) == [{"field": "kind", "reason": "issue ANDON-1 is cancelled; only "
                                   "an open or acknowledged issue can be resolved"}]
    assert counts(plant) == before
    with db.session_scope(plant) as s:
        issue = s.get(Issue, "ANDON-1")
        assert (issue.status, issue.closed_at, issue.resolved_at) == \
            ("cancelled", T0 + timedelta(minutes=3), None)


def test_movements_are_recorded_once_with_their_lot_balances(client, token, plant):
    first = post(client, "/movements", move_body(), token)
    assert first.status_code == 201 and first.get_json()["written"] is True
    again = post(client, "/movements", move_body(), token)
    assert again.status_code == 200 and again.get_json()["written"] is False
    other = post(client, "/movements", move_body(qty=300), token)
    assert other.status_code == 409
    assert errors_of(other)[0]["field"] == "id"
    post(client, "/movements", move_body("MD-2", qty=50.5, at=at(6), from_location_code="L2-LS",
                                         to_location_code="L2-ST2"), token)
    with plant.connect() as conn:
        moves = conn.execute(select(Movement.id, Movement.qty, Movement.at).order_by(Movement.id)).all()
        stock = dict(conn.execute(select(LotStock.location_code, LotStock.qty)).all())
    assert moves == [("MD-1", 200.0, T0 + timedelta(minutes=5)),
                     ("MD-2", 50.5, T0 + timedelta(minutes=6))]
    assert stock == {"WH-RM": -200.0, "L2-LS": 149.5, "L2-ST2": 50.5}


def test_a_time_without_an_offset_is_site_time_and_a_missing_one_is_now(client, token, plant):
    post(client, "/issues", issue_body(raised_at=site(T0)), token)
    post(client, "/issues", issue_body("ANDON-2", raised_at=T0.isoformat()), token)
    before = timezones.utc_now()
    post(client, "/issues", {k: v for k, v in issue_body("ANDON-3").items() if k != "raised_at"},
         token)
    with db.session_scope(plant) as s:
        assert s.get(Issue, "ANDON-1").raised_at == T0
        assert s.get(Issue, "ANDON-2").raised_at == T0
        assert before <= s.get(Issue, "ANDON-3").raised_at <= timezones.utc_now()


# ---- batches ------------------------------------------------------------------------------

def batch(*items):
    return {"items": list(items)}


def test_a_batch_is_written_in_order_and_whole(client, token, plant):
    answer = post(client, "/batch", batch(
        {"type": "issue", **issue_body()},
        {"type": "event", "issue_id": "ANDON-1", "kind": "acknowledged", "at": at(3)},
        {"type": "movement", **move_body()},
        {"type": "event", "issue_id": "ANDON-1", "kind": "resolved", "at": at(9), "cause": "松动"},
    ), token)
    assert answer.status_code == 201
    assert [(i["type"], i.get("kind"), i.get("status")) for i in answer.get_json()["items"]] == [
        ("issue", None, "open"), ("event", "acknowledged", "acknowledged"),
        ("movement", None, None), ("event", "resolved", "resolved")]
    assert counts(plant)["issue_events"] == 3 and counts(plant)["movements"] == 1


def test_a_batch_with_one_refused_item_writes_nothing(client, token, plant):
    before = counts(plant)
    refused = post(client, "/batch", batch(
        {"type": "issue", **issue_body()},
        {"type": "movement", **move_body()},
        {"type": "event", "issue_id": "ANDON-1", "kind": "acknowledged", "at": at(3)},
        {"type": "event", "issue_id": "ANDON-1", "kind": "acknowledged", "at": at(4)},
    ), token)
    assert refused.status_code == 409
    assert errors_of(refused) == [{"field": "items[3].kind", "reason": "issue ANDON-1 is "
                                   "acknowledged; only an open issue can be acknowledged"}]
    assert counts(plant) == before
    invalid = post(client, "/batch", batch(
        {"type": "issue", **issue_body()}, {"type": "movement", **move_body(qty=0)}), token)
    assert invalid.status_code == 422
    assert [e["field"] for e in errors_of(invalid)] == ["items[1].qty"]
    assert counts(plant) == before


# ---- refusals name their field ----------------------------------------------------------

REFUSED = [
    # (path, body, status, field, words of the reason)
    ("/issues", issue_body(severity="P5"), 422, "severity", "not one of P1, P2, P3, P4"),
    ("/issues", issue_body(raised_at="3026-01-01T08:00"), 422, "raised_at", "PLAUSIBLE_UNTIL"),
    ("/issues", issue_body(raised_at="1999-12-31T08:00"), 422, "raised_at", "PLAUSIBLE_FROM"),
    ("/issues", issue_body(raised_at="0001-01-01T00:00+08:00"), 422, "raised_at",
     "outside the plausible range"),
    ("/issues", issue_body(raised_at="9999-12-31T23:59-12:00"), 422, "raised_at", "outside"),
    ("/issues", issue_body(raised_at=site(NOW + timedelta(hours=1))), 422, "raised_at",
     "ahead of the server's clock"),
    ("/issues", issue_body(raised_at="next monday"), 422, "raised_at", "not an ISO 8601"),
    ("/issues", issue_body(raised_at="2026-11-20"), 422, "raised_at", "not an ISO 8601"),
    ("/issues", issue_body(raised_at=20261120), 422, "raised_at", "must be a string"),
    ("/issues", issue_body(title="x" * 401), 422, "title", "longer than 400 characters (401)"),
    ("/issues", issue_body(title="a\x00b"), 422, "title", "NUL"),
    ("/issues", issue_body(title="\ud800"), 422, "title", "lone surrogate"),
    ("/issues", issue_body(title=""), 422, "title", "required"),
    ("/issues", issue_body(title=None), 422, "title", "required"),
    ("/issues", issue_body(issue_type="quality"), 422, "issue_type", "unknown issue type 'quality'"),
    ("/issues", issue_body(location_code="L9"), 422, "location_code", "unknown location 'L9'"),
    ("/issues", issue_body(owner_department_code="IT"), 422, "owner_department_code",
     "unknown department 'IT'"),
    ("/issues", issue_body(colour="red"), 422, "colour", "unknown field"),
    ("/issues", issue_body(id=["A"]), 422, "id", "must be a string, not a list"),
    ("/issues/ANDON-0/events", {"kind": "escalate"}, 422, "kind", "not one of acknowledged"),
    ("/issues/ANDON-0/events", {"kind": "commented"}, 422, "note", "required for commented events"),
    ("/issues/ANDON-0/events", {"kind": "reassigned"}, 422, "to_department_code", "required for"),
    ("/issues/ANDON-0/events", {"kind": "acknowledged", "note": "x"}, 422, "note",
     "not taken by acknowledged events"),
    ("/issues/ANDON-0/events", {"kind": "closed", "cause": "x"}, 422, "cause", "not taken by"),
    ("/issues/ANDON-0/events", {"kind": "reassigned", "to_department_code": "IT"}, 422,
     "to_department_code", "unknown department 'IT'"),
    ("/issues/ANDON-0/events", {"kind": "acknowledged", "issue_id": "ANDON-0"}, 422, "issue_id",
     "given in the path"),
    ("/issues/NOPE/events", {"kind": "acknowledged"}, 404, "issue_id", "no issue 'NOPE'"),
    ("/issues/ANDON-0/events", {"kind": "acknowledged", "at": at(-1)}, 409, "at",
     "is before it was raised"),
    ("/issues/ANDON-0/events", {"kind": "commented", "note": "x", "at": at(-1)}, 409, "at",
     "is before it was raised"),
    ("/issues/ANDON-0/events", {"kind": "closed"}, 409, "kind", "only a resolved issue can be closed"),
    ("/issues/ANDON-0/events", {"kind": "reopened"}, 409, "kind", "can be reopened"),
    ("/issues/ANDON-0/events", {"kind": "reassigned", "to_department_code": "QA"}, 409,
     "to_department_code", "already held by QA"),
    ("/issues", issue_body("ANDON-0"), 409, "id", "already exists"),
    ("/movements", move_body(qty=0), 422, "qty", "must be greater than 0"),
    ("/movements", move_body(qty=-3), 422, "qty", "must be greater than 0"),
    ("/movements", move_body(qty=1e10), 422, "qty", "more than 1,000,000,000"),
    ("/movements", move_body(qty=10 ** 400), 422, "qty", "not a number"),
    ("/movements", move_body(qty="5"), 422, "qty", "must be a number, not a string"),
    ("/movements", move_body(qty=True), 422, "qty", "must be a number, not true/false"),
    ("/movements", move_body(to_location_code="WH-RM"), 422, "to_location_code", "the same as"),
    ("/movements", move_body(material_code="M-9"), 422, "material_code", "unknown material"),
    ("/movements", move_body(lot=None), 422, "lot", "required"),
    ("/batch", {"items": []}, 422, "items", "a list of 1 to 1000"),
    ("/batch", {"items": [{"type": "issue"}] * 1001}, 422, "items", "at most 1000"),
    ("/batch", {"items": [{"type": "issue", **issue_body("B-1")}, {"type": "issue", **issue_body("B-1")}]},
     422, "items[1].id", "the same issue id as items[0].id"),
    ("/batch", {"items": [{"type": "event", "issue_id": "ANDON-0", "kind": "commented",
                           "note": "x"}, {"type": "move"}]}, 422, "items[1].type", "one of issue"),
    ("/batch", {"items": [{"type": "event", "issue_id": "B-2", "kind": "acknowledged"},
                          {"type": "issue", **issue_body("B-2")}]}, 422, "items[0].issue_id",
     "raise it first"),
    ("/batch", {"items": [{"type": "issue", **issue_body("B-3")}, {"type": "movement", **move_body()},
                          {"type": "movement", **move_body("MD-2", at="2026-11-20T25:00")}]},
     422, "items[2].at", "not an ISO 8601"),
    ("/batch", {"item": []}, 422, "item", "unknown field"),
]


def test_each_refusal_names_its_field_and_writes_nothing(client, token, plant):
    """One test for the whole table: a database each would take longer than the cases."""
    post(client, "/issues", issue_body("ANDON-0"), token)
    before = counts(plant)
    wrong = []
    for path, body, status, field, reason in REFUSED:
        answer = post(client, path, body, token)
        problems = errors_of(answer)
        if answer.status_code != status or not any(
                p["field"] == field and reason in p["reason"] for p in problems):
            wrong.append((path, field, reason, answer.status_code, problems))
    assert wrong == []
    assert counts(plant) == before


def test_a_site_time_that_does_not_exist_is_refused(client, token, plant, monkeypatch):
    monkeypatch.setenv("SITE_TZ", "Europe/Berlin")
    answer = post(client, "/issues", issue_body(raised_at="2026-03-29T02:30"), token)
    assert answer.status_code == 422
    assert errors_of(answer)[0]["field"] == "raised_at"
    assert "does not exist in Europe/Berlin" in errors_of(answer)[0]["reason"]


def test_events_keep_the_order_they_happened_in(client, token, plant):
    post(client, "/issues", issue_body(), token)
    post(client, "/issues/ANDON-1/events", {"kind": "acknowledged", "at": at(5)}, token)
    late = post(client, "/issues/ANDON-1/events", {"kind": "resolved", "at": at(4)}, token)
    assert late.status_code == 409
    assert errors_of(late)[0]["field"] == "at"
    assert "before its acknowledged event" in errors_of(late)[0]["reason"]
    # A comment may come in late; the same comment twice at one instant is one event.
    assert post(client, "/issues/ANDON-1/events", {"kind": "commented", "at": at(2), "note": "a"},
                token).status_code == 201
    twice = post(client, "/issues/ANDON-1/events", {"kind": "commented", "at": at(2), "note": "b"},
                 token)
    assert twice.status_code == 409 and errors_of(twice)[0]["field"] == "at"


def test_events_of_an_issue_imported_without_events_follow_its_row(client, token, plant, tmp_path):
    """An issues file imported alone writes issues without events: their row says when they
    were raised, acknowledged and resolved, and who holds them."""
    path = tmp_path / "issues.csv"
    path.write_text(
        "id,issue_type,title,severity,raised_at,owner_department_code,acknowledged_at,resolved_at,status\n"
        f"Q-OPEN,quality_anomaly,burr,P3,{at(0)},QA,,,open\n"
        f"Q-DONE,quality_anomaly,burr,P3,{at(0)},QA,{at(10)},{at(30)},resolved\n", encoding="utf-8")
    importer.import_file(plant, "issues", path)
    assert counts(plant)["issue_events"] == 0
    commented = post(client, "/issues/Q-OPEN/events", {"kind": "commented", "at": at(3), "note": "看过"}, token)
    assert commented.status_code == 201, commented.get_json()
    early = post(client, "/issues/Q-OPEN/events", {"kind": "commented", "at": at(-1), "note": "早"}, token)
    assert early.status_code == 409 and errors_of(early)[0]["field"] == "at"
    assert "before it was raised" in errors_of(early)[0]["reason"]
    assert post(client, "/issues/Q-OPEN/events", {"kind": "acknowledged", "at": at(4)}, token).status_code == 201
    before_resolved = post(client, "/issues/Q-DONE/events", {"kind": "closed", "at": at(20)}, token)
    assert before_resolved.status_code == 409 and errors_of(before_resolved)[0]["field"] == "at"
    assert "before its resolved event" in errors_of(before_resolved)[0]["reason"]
    assert post(client, "/issues/Q-DONE/events", {"kind": "commented", "at": at(20), "note": "迟"},
                token).status_code == 201
    assert post(client, "/issues/Q-DONE/events", {"kind": "closed", "at": at(40)}, token).status_code == 201
    with plant.connect() as conn:
        written = conn.execute(select(IssueEvent.issue_id, IssueEvent.kind, IssueEvent.department_code)
                               .order_by(IssueEvent.id)).all()
        done = conn.execute(select(Issue.status, Issue.closed_at).where(Issue.id == "Q-DONE")).one()
    assert written == [("Q-OPEN", "commented", "QA"), ("Q-OPEN", "acknowledged", "QA"),
                       ("Q-DONE", "commented", "QA"), ("Q-DONE", "closed", "QA")]
    assert done == ("closed", T0 + timedelta(minutes=40))


def test_a_comment_before_the_first_event_of_an_issue_imported_without_its_raise(client, token, plant,
                                                                                tmp_path):
    """An events file may hold an issue's later events and not its raise: a comment before the
    first of them is held by the department that event names."""
    issues, events = tmp_path / "issues.csv", tmp_path / "issue_events.csv"
    issues.write_text("id,issue_type,title,severity,raised_at,owner_department_code,acknowledged_at,status\n"
                      f"Q-ACK,quality_anomaly,burr,P3,{at(0)},QA,{at(10)},acknowledged\n", encoding="utf-8")
    events.write_text(f"issue_id,at,kind,department_code\nQ-ACK,{at(10)},acknowledged,PRD\n", encoding="utf-8")
    importer.import_file(plant, "issues", issues)
    importer.import_file(plant, "issue_events", events)
    early = post(client, "/issues/Q-ACK/events", {"kind": "commented", "at": at(-1), "note": "早"}, token)
    assert early.status_code == 409 and "before it was raised" in errors_of(early)[0]["reason"]
    assert post(client, "/issues/Q-ACK/events", {"kind": "commented", "at": at(2), "note": "看过"},
                token).status_code == 201
    with plant.connect() as conn:
        assert conn.execute(select(IssueEvent.kind, IssueEvent.department_code).order_by(IssueEvent.at)).all() \
            == [("commented", "PRD"), ("acknowledged", "PRD")]


def test_bodies_that_are_not_json_objects(client, token, plant):
    before = counts(plant)
    for raw, status, reason in ((b"{", 400, "not JSON"), (b"", 400, "not JSON"),
                                (b'{"qty": NaN}', 400, "NaN is not a number"),
                                (b'{"qty": Infinity}', 400, "Infinity"),
                                (b"\xff\xfe{}", 400, "not UTF-8"),
                                (b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
                                (b"[]", 422, "must be a JSON object"),
                                (b'"text"', 422, "must be a JSON object")):
        answer = post(client, "/movements", None, token, raw=raw)
        assert answer.status_code == status, raw[:20]
        assert errors_of(answer) == [{"field": "body", "reason": errors_of(answer)[0]["reason"]}]
        assert reason in errors_of(answer)[0]["reason"]
    too_large = post(client, "/batch", None, token, raw=b" " * (api.MAX_BODY_BYTES + 1))
    assert too_large.status_code == 413
    # A body sent in chunks says no length: it is cut at the limit as it is read.
    streamed = client.post("/api/v1/batch", input_stream=io.BytesIO(b" " * (api.MAX_BODY_BYTES + 10)),
                           headers={"Authorization": f"Bearer {token}",
                                    "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert streamed.status_code == 413
    assert counts(plant) == before


def test_paths_and_methods_that_are_not_served_answer_json(client, token):
    headers = {"Authorization": f"Bearer {token}"}
    missing = client.get("/api/v1/tickets", headers=headers)
    assert missing.status_code == 404 and "openapi.json" in errors_of(missing)[0]["reason"]
    wrong = client.get("/api/v1/movements", headers=headers)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    assert client.delete("/api/v1/issues/X", headers=headers).status_code == 405
    assert client.get("/api/v1/").status_code == 404 and client.get("/api/v1/").is_json


# ---- tokens -------------------------------------------------------------------------------

def test_a_missing_bad_or_revoked_token_is_refused(client, token, plant):
    body = json.dumps(issue_body())
    for headers, reason in (({}, "missing"), ({"Authorization": "Basic dTpw"}, "not a bearer"),
                            ({"Authorization": "Bearer "}, "not a bearer"),
                            ({"Authorization": f"Bearer {token}x"}, "unknown or revoked")):
        answer = client.post("/api/v1/issues", data=body, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert errors_of(answer)[0]["field"] == "Authorization"
        assert reason in errors_of(answer)[0]["reason"]
    assert post(client, "/issues", issue_body(), token).status_code == 201
    tokens.revoke(plant, "andon-L2")
    revoked = post(client, "/issues", issue_body("ANDON-2"), token)
    assert revoked.status_code == 401 and "revoked" in errors_of(revoked)[0]["reason"]
    assert client.get("/api/v1/issues/ANDON-1",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert counts(plant)["issues"] == 1


def test_tokens_are_kept_hashed_and_their_last_use_recorded(client, token, plant):
    with plant.connect() as conn:
        row = conn.execute(select(ApiToken)).one()
    assert row.token_sha256 == tokens.digest(token) and token not in row.token_sha256
    assert token.startswith("fl_") and len(token) == 3 + 43
    assert row.last_used_at is None
    post(client, "/issues", issue_body(), token)
    with plant.connect() as conn:
        assert conn.execute(select(ApiToken.last_used_at)).scalar() is not None


def test_a_token_revoked_by_another_process_is_refused_within_the_cache_time(
        client, token, plant, monkeypatch):
    """A process remembers a token it found for CACHE_FOR_S seconds; a revocation made
    elsewhere (the `token revoke` command is another process) holds once that has passed."""
    clock = {"now": 1000.0}
    monkeypatch.setattr(tokens, "_clock", lambda: clock["now"])
    assert post(client, "/issues", issue_body(), token).status_code == 201
    with plant.begin() as conn:
        conn.execute(update(ApiToken).values(revoked_at=NOW))
    clock["now"] += tokens.CACHE_FOR_S - 1
    assert post(client, "/issues", issue_body("ANDON-2"), token).status_code == 201
    clock["now"] += 1
    refused = post(client, "/issues", issue_body("ANDON-3"), token)
    assert refused.status_code == 401 and "revoked" in errors_of(refused)[0]["reason"]
    assert counts(plant)["issues"] == 2


def test_a_remembered_token_records_its_use_to_the_minute(client, token, plant, monkeypatch):
    def used_at(now: datetime) -> datetime:
        monkeypatch.setattr(timezones, "utc_now", lambda: now)
        post(client, "/issues", issue_body(f"ANDON-{uuid.uuid4().hex[:8]}"), token)
        with plant.connect() as conn:
            return conn.execute(select(ApiToken.last_used_at)).scalar()

    assert used_at(NOW) == NOW
    assert used_at(NOW + tokens.LAST_USE_EVERY - timedelta(seconds=1)) == NOW
    assert used_at(NOW + tokens.LAST_USE_EVERY) == NOW + tokens.LAST_USE_EVERY


def test_the_token_commands(db_url, plant, monkeypatch):
    from app import cli

    monkeypatch.setenv("DATABASE_URL", db_url)
    runner = CliRunner()
    created = runner.invoke(cli, ["token", "create", "--source", "mes"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("fl_") and "not shown again" in created.stderr
    listed = runner.invoke(cli, ["token", "list"])
    assert "mes" in listed.output and secret not in listed.output
    refused = runner.invoke(cli, ["token", "create", "--source", "has space"])
    assert refused.exit_code == 1 and "letters, digits" in refused.output
    with plant.connect() as conn:
        token_id = conn.execute(select(ApiToken.id).where(ApiToken.source == "mes")).scalar()
    assert runner.invoke(cli, ["token", "revoke", str(token_id)]).output.strip() == "1 token(s) revoked"
    assert runner.invoke(cli, ["token", "revoke", "mes"]).output.strip() == "already revoked"
    assert runner.invoke(cli, ["token", "revoke", "nobody"]).exit_code == 1
    with plant.connect() as conn:
        assert conn.execute(select(ApiToken.revoked_at).where(ApiToken.id == token_id)).scalar()


# ---- idempotent retries ------------------------------------------------------------------

def test_a_retry_with_the_same_key_writes_once_and_gets_the_same_answer(client, token, plant):
    event = {"kind": "commented", "at": at(2), "note": "换刀"}
    post(client, "/issues", issue_body(), token)
    first = post(client, "/issues/ANDON-1/events", event, token, key="k-1")
    before = counts(plant)
    again = post(client, "/issues/ANDON-1/events", event, token, key="k-1")
    assert (again.status_code, again.get_data()) == (first.status_code, first.get_data())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert counts(plant) == before
    other = post(client, "/issues/ANDON-1/events", {**event, "note": "换夹具"}, token, key="k-1")
    assert other.status_code == 422 and errors_of(other)[0]["field"] == "Idempotency-Key"
    elsewhere = post(client, "/movements", move_body(), token, key="k-1")
    assert elsewhere.status_code == 422
    assert counts(plant) == before
    # Another source's keys are its own.
    mes = tokens.create(plant, "mes")[1]
    assert post(client, "/movements", move_body(), mes, key="k-1").status_code == 201


def test_the_same_request_sent_twice_at_once_is_written_once(client, token, plant):
    """A retry that arrives while the first is still being written waits for it, then gets
    its answer: for a raise, an event that may repeat (a comment), a movement and a batch."""
    def at_once(path: str, body: dict, key: str) -> None:
        answers = []
        senders = [threading.Thread(target=lambda: answers.append(post(
            client, path, body, token, key=key))) for _ in range(3)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        assert {(a.status_code, a.get_data()) for a in answers} == {(201, answers[0].get_data())}
        assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == ["", "true", "true"]

    for n in range(5):
        at_once("/issues", issue_body(f"TWICE-{n}"), f"twice-{n}")
        at_once(f"/issues/TWICE-{n}/events", {"kind": "commented", "at": at(1), "note": "换刀"},
                f"comment-{n}")
        at_once("/movements", move_body(f"MD-{n}"), f"move-{n}")
        at_once("/batch", batch({"type": "event", "issue_id": f"TWICE-{n}", "kind": "commented",
                                 "at": at(2), "note": "再换刀"},
                                {"type": "movement", **move_body(f"MD-B{n}")}), f"batch-{n}")
    assert counts(plant) == {"issues": 5, "issue_events": 15, "movements": 10, "lot_stock": 2,
                             "api_answers": 20}


def test_a_retry_of_a_write_that_would_now_write_nothing_gets_the_first_answer(
        client, token, plant):
    """Sent again, a movement is "already recorded" (200) and an acknowledgement no longer
    allowed (409): with the same key both get the first answer, 201, instead."""
    first = post(client, "/movements", move_body(), token, key="m-1")
    again = post(client, "/movements", move_body(), token, key="m-1")
    assert (again.status_code, again.get_data()) == (201, first.get_data())
    post(client, "/issues", issue_body(), token)
    ack = {"kind": "acknowledged", "at": at(1)}
    first = post(client, "/issues/ANDON-1/events", ack, token, key="a-1")
    again = post(client, "/issues/ANDON-1/events", ack, token, key="a-1")
    assert (again.status_code, again.get_data()) == (201, first.get_data())
    assert post(client, "/issues/ANDON-1/events", ack, token, key="a-2").status_code == 409


def test_an_event_that_waited_for_another_writer_is_checked_against_its_events(
        client, token, plant, db_url):
    """Another writer escalates the issue at minute 10 while an acknowledgement dated minute
    5 waits for the issue: once it gets it, it must see the escalation and be refused."""
    post(client, "/issues", issue_body(), token)
    other = Session(plant)
    store.escalate(other, "ANDON-1", T0 + timedelta(minutes=10), "QA-01")
    other.flush()
    answers = []
    sender = threading.Thread(target=lambda: answers.append(post(
        client, "/issues/ANDON-1/events", {"kind": "acknowledged", "at": at(5)}, token)))
    sender.start()
    waiting_for_lock(plant, db_url)
    other.commit()
    other.close()
    sender.join()
    assert answers[0].status_code == 409
    assert errors_of(answers[0])[0]["field"] == "at"
    assert "escalated" in errors_of(answers[0])[0]["reason"]


def waiting_for_lock(engine, db_url: str) -> None:
    """Returns once another connection waits for a lock (PostgreSQL), or after a moment (SQLite,
    whose writers wait in their busy timeout, unseen)."""
    if not db_url.startswith("postgresql"):
        time.sleep(0.5)
        return
    deadline = time.monotonic() + 10
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            if conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                                 "'Lock' AND datname = current_database()")).scalar():
                return
            conn.rollback()
            time.sleep(0.02)
    raise AssertionError("no request waited for the lock")


def test_a_batch_writes_a_statement_per_table_not_per_item(client, token, plant, db_url):
    """Issues raised in a batch are found by its later events without being written first:
    every read comes before the first write, and on PostgreSQL (where each statement is a
    round trip) all the batch's events go in one INSERT, its issues in one too. SQLite
    inserts events one by one, each a call inside the process."""
    post(client, "/issues", issue_body("ANDON-0"), token)
    statements = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()[:3]).replace('"', ""))

    items = []
    for n in (1, 2, 3):
        items += [{"type": "issue", **issue_body(f"ANDON-{n}")},
                  {"type": "event", "issue_id": f"ANDON-{n}", "kind": "acknowledged", "at": at(1)},
                  {"type": "event", "issue_id": f"ANDON-{n}", "kind": "commented", "at": at(2),
                   "note": "换刀"}]
    items.append({"type": "event", "issue_id": "ANDON-0", "kind": "acknowledged", "at": at(3)})
    sa_event.listen(plant, "before_cursor_execute", seen)
    try:
        answer = post(client, "/batch", batch(*items), token, key="b-1")
    finally:
        sa_event.remove(plant, "before_cursor_execute", seen)
    assert answer.status_code == 201
    assert counts(plant)["issue_events"] == 1 + 3 * 3 + 1
    reads = ["SELECT sla_rules.issue_type, sla_rules.name_zh,", "SELECT locations.code, locations.name,",
             "SELECT issues.id, issues.issue_type,", "SELECT issue_events.issue_id, issue_events.kind,"]
    assert statements[1:5] == reads
    writes = statements[5:]
    assert not [s for s in writes if s.startswith("SELECT")]
    if db_url.startswith("postgresql"):
        assert writes == ["UPDATE issues SET", "INSERT INTO issues", "INSERT INTO issue_events",
                          "INSERT INTO api_answers"]


def test_an_issue_raised_in_a_session_that_rolled_back_is_gone_from_it(plant):
    """The store finds issues raised earlier in the session without asking the database;
    after a rollback that issue is not there to find."""
    with Session(plant) as session:
        store.raise_issue(session, issue_id="GONE-1", issue_type="quality_anomaly", title="x",
                          severity="P3", at=T0)
        store.acknowledge(session, "GONE-1", T0 + timedelta(minutes=1))
        session.rollback()
        with pytest.raises(LifecycleError, match="does not exist"):
            store.acknowledge(session, "GONE-1", T0 + timedelta(minutes=2))
    assert counts(plant)["issues"] == 0


def test_a_single_event_is_one_transaction_of_few_statements(client, token, plant, db_url):
    """The round trips of an event sent alone, with its key: the token is remembered, the key
    is claimed by the answer written last, and nothing is read twice."""
    post(client, "/issues", issue_body(), token)
    statements = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()[:3]))

    sa_event.listen(plant, "before_cursor_execute", seen)
    try:
        answer = post(client, "/issues/ANDON-1/events", {"kind": "acknowledged", "at": at(1)},
                      token, key="k-1")
    finally:
        sa_event.remove(plant, "before_cursor_execute", seen)
    assert answer.status_code == 201
    first = "SET LOCAL lock_timeout" if db_url.startswith("postgresql") else "BEGIN IMMEDIATE"
    assert [s.split(" ")[0] for s in statements] == [first.split(" ")[0], "SELECT", "SELECT",
                                                     "UPDATE", "INSERT", "INSERT"]
    assert statements[0] == first and "api_answers" in statements[-1]


def test_a_refused_request_keeps_no_answer_and_an_old_answer_is_forgotten(client, token, plant):
    refused = post(client, "/movements", move_body(qty=-1), token, key="k-2")
    assert refused.status_code == 422
    assert post(client, "/movements", move_body(), token, key="k-2").status_code == 201
    with db.session_scope(plant) as s:
        s.execute(update(ApiAnswer).values(created_at=NOW - api.KEEP_ANSWERS - timedelta(minutes=1)))
    reused = post(client, "/movements", move_body("MD-2"), token, key="k-2")
    assert reused.status_code == 201
    assert counts(plant)["movements"] == 2


def test_an_invalid_idempotency_key_is_refused(client, token, plant):
    for key in ("", "has space", "x" * 201, "中文"):
        answer = client.post("/api/v1/movements", data=json.dumps(move_body()), headers={
            "Authorization": f"Bearer {token}", "Idempotency-Key": key.encode().decode("latin-1")})
        assert answer.status_code == 422 and errors_of(answer)[0]["field"] == "Idempotency-Key"
    assert counts(plant)["movements"] == 0


# ---- failures answer plainly ------------------------------------------------------------

def test_an_unexpected_failure_is_a_plain_500_and_is_logged(client, token, plant, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("SELECT secret FROM issues")

    monkeypatch.setattr(store, "raise_issue", broken)
    answer = post(client, "/issues", issue_body(), token)
    assert answer.status_code == 500
    assert "secret" not in answer.get_data(as_text=True)
    assert "Traceback" not in answer.get_data(as_text=True)
    assert errors_of(answer)[0]["field"] is None
    assert "SELECT secret" in caplog.text and "Traceback" in caplog.text
    assert counts(plant)["issues"] == 0


def test_a_database_that_stays_locked_is_a_503_to_retry(client, token, plant, monkeypatch):
    from sqlalchemy.exc import OperationalError

    tries = []

    def locked(self):
        tries.append(1)
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(api._Writer, "write", locked)
    monkeypatch.setattr(api, "RETRY_FOR_S", 0.5)
    answer = post(client, "/issues", issue_body(), token)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert "INSERT" not in answer.get_data(as_text=True)
    assert len(tries) > 1


# ---- fuzzing: no 5xx, and a refusal writes nothing ----------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
awkward = st.sampled_from([
    "", " ", "\x00", "\ud800", "3026-01-01T00:00", "0001-01-01T00:00+08:00", "9999-12-31T23:59:59",
    "2026-02-30T08:00", "2026-11-20T08:00+25:00", "x" * 401, "P1", "P9", "closed", "cancelled",
    "reassigned", "WH-RM", "L2-LS", "QA", "M-3002", "ANDON-1", 0, -1, 1e308, 10 ** 400, 2 ** 63,
    True, [], {}])


def mutated(example: dict) -> st.SearchStrategy:
    """A valid body with some fields dropped, replaced by awkward or random values, or added."""
    def mutate(draw_changes):
        drops, changes, extra = draw_changes
        body = {k: v for k, v in example.items() if k not in drops}
        body.update(changes)
        body.update(extra)
        return body
    names = st.sampled_from(sorted(example))
    return st.tuples(st.sets(names, max_size=2),
                     st.dictionaries(names, awkward | json_values, max_size=3),
                     st.dictionaries(st.text(max_size=6), json_values, max_size=1)).map(mutate)


def fuzz_body(endpoint: str) -> st.SearchStrategy:
    item = {"issue": mutated(issue_body("FUZZ-1")),
            "event": mutated({"kind": "acknowledged", "at": at(1), "actor": "QA-01"}),
            "movement": mutated(move_body())}
    if endpoint == "batch":
        typed = st.tuples(st.sampled_from(["issue", "event", "movement", "other"]),
                          st.sampled_from(["issue", "event", "movement"]).flatmap(lambda t: item[t]),
                          st.sampled_from(["ANDON-1", "ANDON-X"]))
        entries = st.lists(typed.map(lambda t: {"type": t[0], "issue_id": t[2], **t[1]}),
                           max_size=4)
        return st.one_of(json_values, entries.map(lambda items: {"items": items}),
                         mutated({"items": []}))
    return st.one_of(json_values, item[endpoint])


ENDPOINTS = {"issue": "/issues", "event": "/issues/{id}/events", "movement": "/movements",
             "batch": "/batch", "get": "/issues/{id}"}


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_requests_never_fail_the_server(client, token, plant, endpoint, data):
    if counts(plant)["issues"] == 0:
        post(client, "/issues", issue_body(), token)
    issue_id = data.draw(st.sampled_from(["ANDON-1", "x/y", "%00", ""]) | st.text(max_size=70),
                         label="issue_id")
    path = "/api/v1" + ENDPOINTS[endpoint].replace("{id}", quote(issue_id, safe=""))
    headers = {"Authorization": f"Bearer {token}"}
    before = counts(plant)
    if endpoint == "get":
        answer = client.get(path, headers=headers)
    else:
        body = data.draw(fuzz_body(endpoint) | st.binary(max_size=40), label="body")
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = client.post(path, data=raw, headers=headers)
    event(f"status {answer.status_code}")
    assert answer.status_code < 500, answer.get_data(as_text=True)
    assert answer.is_json
    if answer.status_code >= 400:
        errors_of(answer)
        assert counts(plant) == before


@pytest.mark.parametrize("issue_id", ["/\n", "a\nb", "//x"])
def test_an_id_no_route_can_hold_answers_json_not_a_redirect(client, token, plant, issue_id):
    """Found by the fuzzing above: an id of "/\n" was merged into a redirect answered in HTML."""
    before = counts(plant)
    answer = client.post("/api/v1" + ENDPOINTS["event"].replace("{id}", quote(issue_id, safe="")),
                         data=b"{}", headers={"Authorization": f"Bearer {token}"})
    assert 400 <= answer.status_code < 500 and answer.is_json
    errors_of(answer)
    assert counts(plant) == before


# ---- the OpenAPI description --------------------------------------------------------------

def test_the_openapi_description_matches_the_routes_and_its_examples_work(client, token, plant):
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200
    spec = document.get_json()
    assert spec["openapi"].startswith("3.")
    served = {}
    for rule in client.application.url_map.iter_rules():
        if rule.endpoint.startswith(api.bp.name + ".") and rule.endpoint != f"{api.bp.name}.no_such_endpoint":
            path = rule.rule.removeprefix(api.bp.url_prefix).replace("<", "{").replace(">", "}")
            served.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    assert {path: set(ops) for path, ops in spec["paths"].items()} == served
    schemas = spec["components"]["schemas"]
    for name, fields in (("Issue", api.ISSUE_FIELDS), ("Event", api.EVENT_FIELDS),
                         ("Movement", api.MOVEMENT_FIELDS)):
        assert set(schemas[name]["properties"]) == {f.name for f in fields}
        assert set(schemas[name]["required"]) == {f.name for f in fields if f.required}
    for path, method, name in (("/issues", "post", "Issue"),
                               ("/issues/{issue_id}/events", "post", "Event"),
                               ("/movements", "post", "Movement"), ("/batch", "post", "Batch")):
        assert spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"] \
            == {"$ref": f"#/components/schemas/{name}"}
    # Each documented example is a request the API takes (the times made recent).
    examples = {path: ops["post"]["requestBody"]["content"]["application/json"]["example"]
                for path, ops in spec["paths"].items() if "post" in ops}
    recent = json.loads(json.dumps(examples).replace("2026-11-20T08:", at(0)[:14]))
    issue_id = recent["/issues"]["id"]
    for path in ("/issues", "/issues/{issue_id}/events", "/movements", "/batch"):
        answer = post(client, path.replace("{issue_id}", issue_id), recent[path], token)
        assert answer.status_code == 201, (path, answer.get_json())


# ---- the wall follows ---------------------------------------------------------------------

@pytest.fixture
def wall_clock(monkeypatch, tmp_path):
    """The shared cache in files of its own, fresh followers, and the snapshot instant under
    the test's control."""
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CACHE_KEY_PREFIX", f"floorlink-test-{uuid.uuid4().hex[:8]}:")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(screens, "_states", {})
    clock = {"as_of": screens.snapshot_instant(timezones.utc_now(), 10)}
    monkeypatch.setattr(screens, "snapshot_instant", lambda now, refresh_s: clock["as_of"])
    server = Flask("api-wall-test")
    cache.init_app(server)
    with server.app_context():
        yield clock


def test_a_posted_event_is_on_the_wall_at_the_next_refresh_without_a_reload(
        client, token, plant, db_url, wall_clock, monkeypatch):
    loads = []
    full_load = WallState._load
    monkeypatch.setattr(WallState, "_load", lambda self, *a: loads.append(1) or full_load(self, *a))
    raised_at = site(wall_clock["as_of"] - timedelta(minutes=20))

    def board() -> dict:
        wall_clock["as_of"] += timedelta(seconds=10)
        return {row["id"]: row for row in screens.overview_for_screen(db_url)["board"]}

    assert board() == {}
    post(client, "/issues", issue_body(raised_at=raised_at), token)
    assert list(board()) == ["ANDON-1"]
    post(client, "/issues/ANDON-1/events", {"kind": "acknowledged", "actor": "QA-02",
                                            "at": site(wall_clock["as_of"])}, token)
    post(client, "/issues/ANDON-1/events", {"kind": "reassigned", "to_department_code": "PRD",
                                            "at": site(wall_clock["as_of"])}, token)
    row = board()["ANDON-1"]
    assert (row["contact"], row["owner_department_code"]) == ("QA-02", "PRD")
    assert row["acknowledged_ms"] is not None
    post(client, "/issues/ANDON-1/events", {"kind": "resolved", "at": site(wall_clock["as_of"])},
         token)
    assert board() == {}
    assert loads == [1]
    with plant.connect() as conn:
        assert store.bulk_version(conn) == 0


# ---- 20 clients at once against a real server ---------------------------------------------

class Sender:
    """One client on its own keep-alive connection, sending every write with an
    Idempotency-Key and sending it again until it gets an answer (as an andon box does)."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.retries = 0

    def send(self, path: str, body: dict, key: str) -> tuple[int, bytes]:
        data = json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": key,
                   "Content-Type": "application/json"}
        for _ in range(20):
            try:
                self.conn.request("POST", f"/api/v1{path}", body=data, headers=headers)
                reply = self.conn.getresponse()
                answer = reply.status, reply.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.retries += 1
                continue
            if answer[0] == 503 or (answer[0] == 409 and b'"field":null' in answer[1]):
                self.retries += 1
                continue
            return answer
        raise AssertionError(f"{path}: no answer after 20 tries")


def test_twenty_concurrent_clients_lose_and_duplicate_nothing(plant, db_url, tmp_path):
    sources = [tokens.create(plant, f"andon-{n}")[1] for n in range(2)]
    server = AppServer(db_url, tmp_path).start()
    failures: list[str] = []

    def client_run(number: int) -> None:
        sender = Sender(server.port, sources[number % 2])
        try:
            for n in range(3):
                issue_id = f"C{number:02d}-{n}"
                requests = [
                    ("/issues", issue_body(issue_id, raised_at=at(n * 10))),
                    (f"/issues/{issue_id}/events", {"kind": "acknowledged", "at": at(n * 10 + 1)}),
                    (f"/issues/{issue_id}/events", {"kind": "commented", "at": at(n * 10 + 2),
                                                   "note": f"client {number}"}),
                    ("/movements", move_body(f"C{number:02d}-M{n}", lot=f"LOT-{n}", qty=1)),
                    ("/batch", batch(
                        {"type": "event", "issue_id": issue_id, "kind": "resolved", "at": at(n * 10 + 3)},
                        {"type": "event", "issue_id": issue_id, "kind": "closed", "at": at(n * 10 + 4)},
                        {"type": "movement", **move_body(f"C{number:02d}-B{n}", lot=f"LOT-{n}",
                                                         qty=2, from_location_code="L2-LS",
                                                         to_location_code="L2-ST2")})),
                ]
                for step, (path, body) in enumerate(requests):
                    key = f"{issue_id}-{step}"
                    status, answer = sender.send(path, body, key)
                    if status not in (200, 201):
                        failures.append(f"{path}: {status} {answer[:200]!r}")
                    if (number + step) % 3 == 0:
                        # The answer was lost on the way: the same request again.
                        if sender.send(path, body, key) != (status, answer):
                            failures.append(f"{path}: a retry got another answer")
        except Exception as exc:  # noqa: BLE001 - reported below with the client's number
            failures.append(f"client {number}: {exc!r}")

    try:
        threads = [threading.Thread(target=client_run, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        server.stop()
    assert failures == []
    with plant.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Issue)
                            .where(Issue.status == "closed")).scalar() == 60
        kinds = conn.execute(select(IssueEvent.kind, func.count()).group_by(IssueEvent.kind)).all()
        assert dict(kinds) == {"raised": 60, "acknowledged": 60, "commented": 60, "resolved": 60,
                               "closed": 60}
        assert dict(conn.execute(select(IssueEvent.source, func.count())
                                 .group_by(IssueEvent.source)).all()) == {"andon-0": 150, "andon-1": 150}
        assert conn.execute(select(func.count()).select_from(Movement)).scalar() == 120
        stock = {(lot, location): qty for lot, location, qty in conn.execute(
            select(LotStock.lot, LotStock.location_code, LotStock.qty))}
    assert stock == {**{(f"LOT-{n}", "WH-RM"): -20.0 for n in range(3)},
                     **{(f"LOT-{n}", "L2-LS"): -20.0 for n in range(3)},
                     **{(f"LOT-{n}", "L2-ST2"): 40.0 for n in range(3)}}


def test_writers_of_one_lot_at_once_all_get_through_with_exact_balances(client, token, plant):
    """Balances of a lot are recomputed by each writer; on PostgreSQL writers of one lot take
    turns (data.store), so none fails and none leaves a stale balance behind."""
    answers: list[int] = []

    def writer(number: int) -> None:
        for n in range(25):
            there = (number + n) % 3
            answers.append(post(client, "/movements", move_body(
                f"HOT-{number}-{n}", lot="HOT", qty=1, at=at(n),
                from_location_code="WH-RM" if there else "L2-LS",
                to_location_code="L2-LS" if there else "L2-ST2"), token).status_code)

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [201] * 200
    with plant.connect() as conn:
        stock = dict(conn.execute(select(LotStock.location_code, LotStock.qty)).all())
    # Of each writer's 25 moves, those with (number + n) % 3 == 0 go on to the station.
    onward = sum((number + n) % 3 == 0 for number in range(8) for n in range(25))
    assert stock == {"WH-RM": -(200.0 - onward), "L2-LS": 200.0 - 2 * onward, "L2-ST2": float(onward)}
