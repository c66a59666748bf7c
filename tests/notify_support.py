"""A small plant with an escalation policy, for the notifier's tests: three departments, one
issue type told to two others, people with handles on every platform, one station per line."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from data import db, store
from data.models import Department, Location, Person, SlaRule
from data.notify import outbox, policy

# Monday 30 Nov 2026, 10:00 at the site (Asia/Shanghai).
T0 = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)

REFERENCE = {
    Department: [{"code": "PRD", "name_zh": "生产部", "name_en": "Production"},
                 {"code": "QA", "name_zh": "质量部", "name_en": "Quality"},
                 {"code": "WH", "name_zh": "仓储部", "name_en": "Warehouse"}],
    Person: [{"id": "QA-1", "name": "林娜", "department_code": "QA", "im_handle": "linna;mobile:13800000001"},
             {"id": "QA-2", "name": "高翔", "department_code": "QA", "im_handle": "gaoxiang"},
             {"id": "QA-9", "name": "罗红", "department_code": "QA", "im_handle": "feishu:ou_qa9"},
             {"id": "PRD-1", "name": "张伟", "department_code": "PRD", "im_handle": "zhangwei"},
             {"id": "PRD-9", "name": "王芳", "department_code": "PRD", "im_handle": "wangfang"},
             {"id": "WH-1", "name": "马超", "department_code": "WH", "im_handle": "dingtalk:machao"},
             {"id": "WH-9", "name": "朱琳", "department_code": "WH", "im_handle": "zhulin"},
             {"id": "BOSS", "name": "厂长", "department_code": "PRD", "im_handle": "boss"}],
    SlaRule: [{"issue_type": "quality_anomaly", "name_zh": "质量异常", "name_en": "Quality anomaly",
               "owner_department_code": "QA", "notify_department_codes": "PRD;WH",
               "ack_minutes": 10, "resolve_minutes": 240},
              {"issue_type": "material_shortage", "name_zh": "物料短缺", "name_en": "Material shortage",
               "owner_department_code": "WH", "notify_department_codes": "",
               "ack_minutes": 15, "resolve_minutes": 120}],
    Location: [{"code": "L1-ST1", "name": "L1 工位 1", "kind": "line_side", "line": "L1"},
               {"code": "L2-ST1", "name": "L2 工位 1", "kind": "line_side", "line": "L2"}],
}


def policy_text(channels: dict[str, str] | None = None, *, quiet: str | None = None, extra: str = "") -> str:
    """The test plant's policy. `channels` gives a channel's kind, address and secret by code
    (e.g. {"qa": 'kind: wecom, url: "http://..."'}); the rest are webhooks nowhere that answers."""
    specs = {code: f'kind: webhook, url: "http://127.0.0.1:9/{code}", secret: s3cret'
             for code in ("qa", "prd", "wh", "mgr", "plant")}
    specs.update(channels or {})
    options = {"qa": f', quiet_hours: "{quiet}"' if quiet else "", "mgr": ", language: zh+en",
               "plant": ", language: en"}
    listed = "\n".join(f"  - {{code: {code}, {spec}{options.get(code, '')}}}" for code, spec in specs.items())
    return f"""
language: zh
channels:
{listed}
departments:
  QA: {{channel: qa, manager_channel: mgr}}
  PRD: {{channel: prd, manager_channel: mgr}}
  WH: {{channel: wh, manager_channel: mgr}}
plant_channel: plant
roster:
  - {{department: QA, role: on_duty, from: "08:00", to: "20:00", people: [QA-1]}}
  - {{department: QA, role: on_duty, from: "20:00", to: "08:00", people: [QA-2]}}
  - {{department: QA, role: lead, people: [QA-2]}}
  - {{department: QA, role: manager, people: [QA-9]}}
  - {{department: PRD, role: on_duty, people: [PRD-1]}}
  - {{department: PRD, role: manager, people: [PRD-9]}}
  - {{department: WH, role: on_duty, people: [WH-1]}}
  - {{department: WH, role: manager, people: [WH-9]}}
  - {{role: plant_manager, people: [BOSS]}}
ladder:
  - {{level: 0, when: raised, tell: [holder, notify], mention: on_duty}}
  - {{level: 1, when: ack_limit, tell: [holder], mention: lead}}
  - {{level: 2, when: resolve_share, share: 0.5, tell: [holder_manager], mention: manager}}
  - {{level: 3, when: after_level, after_minutes: 60, tell: [plant], mention: plant_manager,
     repeat_minutes: 60, repeats: 2}}
{extra}"""


def small_plant(engine, *, text: str | None = None, imported_at: datetime = T0 - timedelta(days=1)):
    """The reference rows and the policy in force since `imported_at`."""
    with engine.begin() as conn:
        for model, rows in REFERENCE.items():
            store.upsert_rows(conn, model, rows)
    return policy.store(engine, text or policy_text(), "test-policy.yaml", "test", imported_at)


def raise_issue(engine, issue_id: str, at: datetime, *, issue_type: str = "quality_anomaly",
                severity: str = "P2", location: str = "L2-ST1", title: str = "焊点虚焊") -> None:
    with db.session_scope(engine) as session:
        store.raise_issue(session, issue_id=issue_id, issue_type=issue_type, title=title,
                          severity=severity, at=at, location_code=location, raised_by="tester")


@pytest.fixture(autouse=True)
def listening(monkeypatch):
    """This process's writes owe messages, as the app's and the simulator's do; the
    listener's memory of the database starts empty."""
    monkeypatch.setattr(store, "EVENT_LISTENERS", [])
    monkeypatch.setattr(outbox, "_known", {})
    outbox.listen()
