"""The explorer's loader on SQLite and PostgreSQL: the window's issues, the issues open at
as_of, their events up to as_of and the shifts, under every filter (a list of values each,
none meaning every value, "-" meaning no value), against a plant whose answer is written out
by hand."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from data import store
from data.explorer import rows
from data.models import Department, Issue, IssueEvent, Location, ProductionPlan, SlaRule

UTC = timezone.utc
T0 = datetime(2026, 11, 20, tzinfo=UTC)
SINCE, UNTIL, AS_OF = T0, T0 + timedelta(hours=24), T0 + timedelta(hours=48)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


# id: (owner, type, severity, location, raised, acknowledged, resolved, closed, status, cause)
ISSUES = {
    "A": ("QA", "quality_anomaly", "P1", "L1-ST1", h(1), h(1.2), h(3), None, "resolved", "毛刺"),
    "B": ("MNT", "equipment_failure", "P2", "L2-ST1", h(2), None, None, None, "open", None),
    "C": ("QA", "quality_anomaly", "P3", "WH", h(5), h(5.5), h(6), h(7), "closed", "a|b%c"),
    "D": ("MNT", "equipment_failure", "P2", "L1-ST1", h(-240), h(-239), None, None, "acknowledged", None),
    "E": ("QA", "quality_anomaly", "P1", "L1-ST1", h(-72), h(-71), h(-48), None, "resolved", "毛刺"),
    "F": ("QA", "quality_anomaly", "P4", "L1-ST1", h(4), None, None, h(4.5), "cancelled", None),
    "G": ("MNT", "equipment_failure", "P1", "L2-ST1", h(30), None, None, None, "open", "O'Brien"),
    "H": ("QA", "quality_anomaly", "P2", None, h(-120), h(-119), h(50), None, "resolved", None),
    "I": ("QA", "quality_anomaly", "P3", "WH", h(-120), None, None, h(-96), "closed", None),
    "J": ("MNT", "equipment_failure", "P4", "L2-ST1", h(6), h(7), h(49), None, "resolved", "O'Brien"),
    "K": ("QA", "quality_anomaly", "P2", "L1-ST1", h(24), None, None, None, "open", None),
}
# id: [(hours, kind, department)]
EVENTS = {
    "A": [(1, "raised", "QA"), (1.5, "reassigned", "PRD"), (2, "reassigned", "QA"), (3, "resolved", "QA")],
    "B": [(2, "raised", "MNT")],
    "C": [(5, "raised", "QA"), (6, "resolved", "QA"), (7, "closed", "QA")],
    "D": [(-240, "raised", "MNT"), (-239, "acknowledged", "MNT")],
    "E": [(-72, "raised", "QA"), (-48, "resolved", "QA")],
    "F": [(4, "raised", "QA"), (4.5, "closed", "QA")],
    "G": [(30, "raised", "MNT")],
    "H": [(-120, "raised", "QA"), (50, "resolved", "QA")],
    "I": [(-120, "raised", "QA"), (-96, "closed", "QA")],
    "J": [(6, "raised", "MNT"), (7, "acknowledged", "MNT"), (49, "resolved", "MNT")],
    "K": [(24, "raised", "QA")],
}


@pytest.fixture
def plant(engine):
    with engine.begin() as conn:
        store.upsert_rows(conn, Department, [{"code": c, "name_zh": c, "name_en": c} for c in ("QA", "MNT", "PRD")])
        store.upsert_rows(conn, SlaRule, [
            {"issue_type": "quality_anomaly", "name_zh": "质量异常", "name_en": "Quality anomaly",
             "owner_department_code": "QA", "notify_department_codes": "", "ack_minutes": 10,
             "resolve_minutes": 240},
            {"issue_type": "equipment_failure", "name_zh": "设备故障", "name_en": "Equipment failure",
             "owner_department_code": "MNT", "notify_department_codes": "", "ack_minutes": 10,
             "resolve_minutes": 240}])
        store.upsert_rows(conn, Location, [
            {"code": "L1-ST1", "name": "L1 工位 1", "kind": "wip", "line": "L1", "max_dwell_minutes": None},
            {"code": "L2-ST1", "name": "L2 工位 1", "kind": "wip", "line": "L2", "max_dwell_minutes": None},
            {"code": "WH", "name": "仓库", "kind": "warehouse", "line": None, "max_dwell_minutes": None}])
        store.upsert_rows(conn, Issue, [{
            "id": key, "owner_department_code": owner, "issue_type": kind, "severity": severity,
            "location_code": location, "raised_at": raised, "acknowledged_at": ack, "resolved_at": resolved,
            "closed_at": closed, "status": status, "cause": cause, "title": f"issue {key}",
            "raised_by": None} for key, (owner, kind, severity, location, raised, ack, resolved, closed,
                                         status, cause) in ISSUES.items()])
        store.upsert_rows(conn, IssueEvent, [
            {"issue_id": key, "at": h(hours), "kind": kind, "department_code": department, "actor": None,
             "note": None} for key, events in EVENTS.items() for hours, kind, department in events])
        store.upsert_rows(conn, ProductionPlan, [
            {"line": "L1", "shift_start": h(-300), "shift_end": h(-290), "planned_qty": 1, "actual_qty": None},
            {"line": "L1", "shift_start": h(-244), "shift_end": h(-236), "planned_qty": 1, "actual_qty": None},
            {"line": "L2", "shift_start": h(40), "shift_end": h(52), "planned_qty": 1, "actual_qty": None},
            {"line": "L1", "shift_start": h(44), "shift_end": h(56), "planned_qty": 1, "actual_qty": None},
            {"line": "L1", "shift_start": h(60), "shift_end": h(70), "planned_qty": 1, "actual_qty": None}])
    return engine


def load(engine, **filters):
    with engine.connect() as conn:
        return rows.load(conn, SINCE, UNTIL, AS_OF, filters)


def ids(frame, column: str = "id") -> set[str]:
    return set(frame[column])


def test_the_window_the_open_issues_and_their_events(plant):
    loaded = load(plant)
    # F is cancelled; D, E, H, I are older; G and K were raised after the window.
    assert ids(loaded.issues) == {"A", "B", "C", "J"}
    # Open at as_of: B and G never finished; D unresolved; H and J resolved after as_of; K
    # raised at the window's end. I was closed without a resolution, C resolved and closed.
    assert ids(loaded.open_now) == {"B", "D", "G", "H", "J", "K"}
    assert ids(loaded.events, "issue_id") == ids(loaded.issues) | ids(loaded.open_now)
    assert loaded.events["at"].max() <= AS_OF
    assert len(loaded.events) == 4 + 1 + 3 + 2 + 1 + 1 + 2 + 1
    assert loaded.issues["cause"].fillna("").tolist() == ["毛刺", "", "a|b%c", "O'Brien"]
    assert list(loaded.issues.columns) == list(rows.ISSUE_COLUMNS)
    assert str(loaded.issues["raised_at"].dtype) == "datetime64[ns, UTC]"


def test_the_shifts_cover_the_earliest_issue_to_as_of(plant):
    loaded = load(plant)
    # D was raised at -240 h: the shift from -244 h overlaps; the one ending at -290 h and the
    # one starting after as_of do not.
    assert sorted(loaded.shifts["shift_start"]) == [h(-244), h(40), h(44)]


@pytest.mark.parametrize("filters, window, open_now", [
    ({"department": ["QA"]}, {"A", "C"}, {"H", "K"}),
    ({"department": ["QA", "MNT"]}, {"A", "B", "C", "J"}, {"B", "D", "G", "H", "J", "K"}),
    ({"line": ["L1"]}, {"A"}, {"D", "K"}),
    ({"line": ["-"]}, {"C"}, {"H"}),
    ({"line": ["L2", "-"]}, {"B", "C", "J"}, {"B", "G", "H", "J"}),
    ({"location": ["WH"]}, {"C"}, set()),
    ({"location": ["-"]}, set(), {"H"}),
    ({"issue_type": ["equipment_failure"]}, {"B", "J"}, {"B", "D", "G", "J"}),
    ({"severity": ["P1", "P2"]}, {"A", "B"}, {"B", "D", "G", "H", "K"}),
    ({"cause": ["a|b%c"]}, {"C"}, set()),
    ({"cause": ["O'Brien"]}, {"J"}, {"G", "J"}),
    ({"cause": ["-"]}, {"B"}, {"B", "D", "H", "K"}),
    ({"department": ["MNT"], "line": ["L2"], "severity": ["P4"]}, {"J"}, {"J"}),
    ({"department": []}, {"A", "B", "C", "J"}, {"B", "D", "G", "H", "J", "K"}),
    ({"department": ["nobody"]}, set(), set()),
])
def test_every_filter_keeps_its_values(plant, filters, window, open_now):
    loaded = load(plant, **filters)
    assert ids(loaded.issues) == window
    assert ids(loaded.open_now) == open_now
    assert ids(loaded.events, "issue_id") == window | open_now


def test_an_unknown_filter_or_an_empty_window_is_refused_by_name(plant):
    with pytest.raises(ValueError, match="unknown filter 'colour'"):
        load(plant, colour=["red"])
    with plant.connect() as conn, pytest.raises(ValueError, match="since .* must be before its until"):
        rows.load(conn, UNTIL, SINCE, AS_OF)


def test_a_row_that_cannot_be_real_is_left_out_and_counted(plant):
    with plant.begin() as conn:
        conn.execute(Issue.__table__.update().where(Issue.id == "A").values(closed_at=datetime(3026, 1, 1, tzinfo=UTC)))
    loaded = load(plant)
    assert ids(loaded.issues) == {"B", "C", "J"}
    assert [(left.key, left.column) for left in loaded.left_out] == [("A", "closed_at")]
    assert "A" not in ids(loaded.events, "issue_id")


def test_this_shift_is_the_one_under_way_or_the_last_one_started(plant):
    with plant.connect() as conn:
        assert rows.shift_at(conn, h(45)) == (h(44), h(56))
        assert rows.shift_at(conn, h(45), ["L2"]) == (h(40), h(52))
        assert rows.shift_at(conn, h(58)) == (h(44), h(56))
        assert rows.shift_at(conn, h(-400)) is None


def test_the_reference_and_the_causes_of_a_span(plant):
    with plant.connect() as conn:
        reference = rows.reference(conn)
        causes = rows.causes(conn, h(-100), UNTIL)
    assert sorted(reference["departments"]) == ["MNT", "PRD", "QA"]
    assert reference["lines"] == ["L1", "L2"]
    assert reference["locations"]["WH"] == {"name": "仓库", "line": None}
    assert reference["issue_types"]["quality_anomaly"]["resolve_minutes"] == 240
    # E (-72 h) and A both say 毛刺; then the others once each, by name.
    assert causes == ["毛刺", "O'Brien", "a|b%c"]
