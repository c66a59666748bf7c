"""A small plant for the floor's pages (tests/test_ack_links.py, tests/test_andon.py,
tests/test_phone_browser.py): three departments, two of them with people and one without
(its actor is typed), two issue types, stations on two lines and a warehouse on none."""
from __future__ import annotations

from datetime import datetime, timedelta

from data import db, store, timezones
from data.models import Department, Location, Person, SlaRule

DEPARTMENTS = [{"code": "MNT", "name_zh": "设备维修部", "name_en": "Maintenance"},
               {"code": "PRD", "name_zh": "生产部", "name_en": "Production"},
               {"code": "QA", "name_zh": "质量部", "name_en": "Quality"}]
PEOPLE = [{"id": "MNT-01", "name": "张三", "department_code": "MNT", "im_handle": "zhangsan"},
          {"id": "MNT-02", "name": "李四", "department_code": "MNT", "im_handle": None},
          {"id": "PRD-01", "name": "王芳", "department_code": "PRD", "im_handle": None}]
RULES = [{"issue_type": "equipment_failure", "name_zh": "设备故障", "name_en": "Equipment failure",
          "owner_department_code": "MNT", "notify_department_codes": "PRD", "ack_minutes": 10,
          "resolve_minutes": 240},
         {"issue_type": "quality_anomaly", "name_zh": "质量异常", "name_en": "Quality anomaly",
          "owner_department_code": "QA", "notify_department_codes": "", "ack_minutes": 10,
          "resolve_minutes": 240}]
STATIONS = [("L1-ST1", "L1 工位 1 上料", "L1"), ("L1-ST2", "L1 工位 2 装配", "L1"),
            ("L2-ST1", "L2 工位 1 上料", "L2")]
LOCATIONS = [*({"code": code, "name": name, "kind": "wip", "line": line, "max_dwell_minutes": None}
               for code, name, line in STATIONS),
             {"code": "WH-01", "name": "原料仓", "kind": "warehouse", "line": None, "max_dwell_minutes": None}]


def build(url: str) -> None:
    """The plant's reference rows in the (migrated, empty) database at `url`."""
    with db.get_engine(url).begin() as conn:
        for model, rows in ((Department, DEPARTMENTS), (Person, PEOPLE), (SlaRule, RULES),
                            (Location, LOCATIONS)):
            store.upsert_rows(conn, model, rows)


def raise_one(url: str, issue_id: str, *, minutes_ago: float = 30, issue_type: str = "equipment_failure",
              title: str = "L1-ST1 伺服报警停机", location_code: str = "L1-ST1",
              at: datetime | None = None) -> None:
    """An open issue raised `minutes_ago` (past its 10-minute response limit by default)."""
    with db.session_scope(db.get_engine(url)) as session:
        store.record_as(session, store.SIMULATOR)
        store.raise_issue(session, issue_id=issue_id, issue_type=issue_type, title=title, severity="P1",
                          at=at or timezones.utc_now() - timedelta(minutes=minutes_ago),
                          location_code=location_code, raised_by="PRD-01")
