"""KPIs through the database, on SQLite and PostgreSQL, against hand-computed values.

The site is Asia/Shanghai (UTC+8). T0 is 2026-11-20 10:00 site time; most scenarios are
computed at AS_OF = T0 + 2 h.
"""
import json
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from sqlalchemy import select

from data import db, kpis, queries, store, timezones
from data.reports import kpi_report
from data.models import Department, Issue, Location, LotStock, Material, Movement, ProductionPlan, SlaRule

UTC = timezone.utc
T0 = timezones.parse_instant("2026-11-20T10:00:00+08:00")
AS_OF = T0 + timedelta(hours=2)
SINCE, UNTIL = T0 - timedelta(hours=2), T0 + timedelta(hours=22)
SITE = timezones.zone("Asia/Shanghai")

CONTRACT_ISSUE_KEYS = [
    "raised", "response_median_min", "response_p90_min",
    "resolution_median_min", "resolution_p90_min",
    "response_sla_met", "response_sla_breached", "response_sla_compliance",
    "resolution_sla_met", "resolution_sla_breached", "resolution_sla_compliance",
    "resolution_rate", "open", "overdue", "handoffs_mean", "ping_pong_issues",
]


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def local(text: str) -> datetime:
    return timezones.parse_instant(text, SITE)


@pytest.fixture
def plant(engine):
    """Departments (MNT owns nothing), two SLA rules, locations of every stock role."""
    with engine.begin() as conn:
        store.upsert_rows(conn, Department, [
            {"code": code, "name_zh": zh, "name_en": en} for code, zh, en in [
                ("MNT", "设备部", "Maintenance"), ("PRD", "生产部", "Production"),
                ("QA", "质量部", "Quality"), ("WH", "仓储部", "Warehouse")]])
        store.upsert_rows(conn, SlaRule, [
            {"issue_type": "quality_anomaly", "name_zh": "质量异常", "name_en": "Quality anomaly",
             "owner_department_code": "QA", "notify_department_codes": "PRD",
             "ack_minutes": 10, "resolve_minutes": 240},
            {"issue_type": "material_shortage", "name_zh": "物料短缺", "name_en": "Material shortage",
             "owner_department_code": "WH", "notify_department_codes": "PRD",
             "ack_minutes": 20, "resolve_minutes": 120}])
        store.upsert_rows(conn, Location, [
            {"code": code, "name": code, "kind": kind, "line": line, "max_dwell_minutes": dwell}
            for code, kind, line, dwell in [
                ("SUP", "supplier", None, None), ("RCV", "receiving", None, None),
                ("IQC", "iqc", None, None), ("WH1", "warehouse", None, 1440),
                ("LS1", "line_side", "L1", 240), ("LS2", "line_side", "L2", 240),
                ("CON1", "consumption", "L1", None)]])
        store.upsert_rows(conn, Material, [
            {"code": "M-001", "name": "支架", "unit": "pcs", "category": "metal"},
            {"code": "M-002", "name": "螺钉", "unit": "pcs", "category": "fastener"}])
    return engine


def raise_(s, issue_id, issue_type, at, **kw):
    store.raise_issue(s, issue_id=issue_id, issue_type=issue_type, title=issue_id,
                      severity="P2", at=at, **kw)


@pytest.fixture
def sla_plant(plant):
    """Issues on both sides of every SLA boundary (offsets in minutes from T0):

    Q1 quality  raised 0,    ack 10 (exactly at limit), resolved 60
    Q2 quality  raised 5,    ack 30 (25 > 10),          resolved 200 (after as_of)
    Q3 shortage raised -30,  never acknowledged
    Q4 quality  raised 115,  ack 123 (after as_of)
    Q5 quality  raised 1,    cancelled
    Q6 shortage raised -60,  ack -40 (exactly 20),      resolved 60 (exactly 120)
    Q7 shortage raised 180 (in the window, after as_of)
    Q8 quality  raised a day earlier, outside the window, still open
    Q9 quality  raised a day earlier, resolved the same day
    """
    with db.session_scope(plant) as s:
        raise_(s, "Q1", "quality_anomaly", minutes(0), location_code="LS1")
        raise_(s, "Q2", "quality_anomaly", minutes(5), location_code="LS2")
        raise_(s, "Q3", "material_shortage", minutes(-30), location_code="LS1")
        raise_(s, "Q4", "quality_anomaly", minutes(115))
        raise_(s, "Q6", "material_shortage", minutes(-60), location_code="WH1")
        raise_(s, "Q7", "material_shortage", minutes(180))
        raise_(s, "Q8", "quality_anomaly", minutes(-1440), location_code="LS1")
        raise_(s, "Q9", "quality_anomaly", minutes(-1440))
    with db.session_scope(plant) as s:
        store.acknowledge(s, "Q1", minutes(10))
        store.resolve(s, "Q1", minutes(60))
        store.acknowledge(s, "Q2", minutes(30))
        store.resolve(s, "Q2", minutes(200))
        store.acknowledge(s, "Q4", minutes(123))
        store.acknowledge(s, "Q6", minutes(-40))
        store.resolve(s, "Q6", minutes(60))
        store.resolve(s, "Q9", minutes(-1410))
    with plant.begin() as conn:
        store.upsert_rows(conn, Issue, [{
            "id": "Q5", "issue_type": "quality_anomaly", "title": "Q5", "severity": "P3",
            "raised_at": minutes(1), "owner_department_code": "QA", "status": "cancelled"}])
    return plant


def test_population_excludes_cancelled_and_other_windows(sla_plant):
    with sla_plant.connect() as conn:
        population = queries.issue_population(conn, SINCE, UNTIL)
    assert sorted(population["id"]) == ["Q1", "Q2", "Q3", "Q4", "Q6", "Q7"]
    q1 = population.set_index("id").loc["Q1"]
    assert (q1["ack_minutes"], q1["resolve_minutes"], q1["line"]) == (10.0, 240.0, "L1")
    for column in ("raised_at", "acknowledged_at", "resolved_at", "closed_at"):
        assert str(population[column].dtype) == "datetime64[ns, UTC]"


def test_sla_outcomes_at_the_boundaries(sla_plant):
    with sla_plant.connect() as conn:
        population = queries.issue_population(conn, SINCE, UNTIL).set_index("id", drop=False)
    response = kpis.response_sla_outcomes(population, AS_OF)
    resolution = kpis.resolution_sla_outcomes(population, AS_OF)
    assert response.to_dict() == {"Q1": "met", "Q2": "breached", "Q3": "breached",
                                  "Q4": "pending", "Q6": "met", "Q7": "pending"}
    assert resolution.to_dict() == {"Q1": "met", "Q2": "pending", "Q3": "breached",
                                    "Q4": "pending", "Q6": "met", "Q7": "pending"}
    # After Q4's acknowledgement (8 minutes, within 10) it is met.
    assert kpis.response_sla_outcomes(population, minutes(123))["Q4"] == "met"
    # Unacknowledged exactly at the limit is still pending; a moment later it is breached.
    q3 = population.loc[["Q3"]]
    assert kpis.response_sla_outcomes(q3, minutes(-10))["Q3"] == "pending"
    assert kpis.response_sla_outcomes(q3, minutes(-9.99))["Q3"] == "breached"


def test_issue_kpis_by_hand(sla_plant):
    with sla_plant.connect() as conn:
        population = queries.issue_population(conn, SINCE, UNTIL)
        events = queries.holder_events(conn, SINCE, UNTIL, AS_OF)
        open_now = queries.open_issues(conn, AS_OF)
    result = kpis.issue_kpis(population, events, open_now, AS_OF)
    assert result == {
        "raised": 6,
        # acknowledged by as_of: Q1 10, Q2 25, Q6 20 -> p90 at rank 1.8: 20 + 0.8 * 5
        "response_median_min": 20.0, "response_p90_min": pytest.approx(24.0),
        # resolved by as_of: Q1 60, Q6 120 -> p90: 60 + 0.9 * 60
        "resolution_median_min": 90.0, "resolution_p90_min": pytest.approx(114.0),
        "response_sla_met": 2, "response_sla_breached": 2, "response_sla_compliance": 0.5,
        "resolution_sla_met": 2, "resolution_sla_breached": 1,
        "resolution_sla_compliance": pytest.approx(2 / 3),
        "resolution_rate": pytest.approx(2 / 6),
        # open: Q2 (resolved after as_of), Q3, Q4, and Q8 from outside the window
        "open": 4,
        # overdue: Q3 (unacknowledged 150 > 20 and unresolved 150 > 120), Q8 (a day)
        "overdue": 2,
        "handoffs_mean": 0.0, "ping_pong_issues": 0,
    }
    assert list(result) == CONTRACT_ISSUE_KEYS


def test_open_issues_at_an_earlier_instant(sla_plant):
    with sla_plant.connect() as conn:
        before = queries.open_issues(conn, minutes(-35))
        after = queries.open_issues(conn, minutes(300))
    # 35 minutes before T0: Q6 raised at -60 and Q8 are open; Q9 is long resolved.
    assert sorted(before["id"]) == ["Q6", "Q8"]
    # Later, Q2 is resolved and Q7 has been raised.
    assert sorted(after["id"]) == ["Q3", "Q4", "Q7", "Q8"]


@pytest.fixture
def closed_plant(plant):
    """Issues closed without resolved_at, as an import may bring them (minutes from T0):

    R1 quality  raised 0, ack 5, resolved 30, closed 40 (the usual way)
    R2 shortage raised 0, ack 5, resolved 130 (past its 120), closed 140
    C1 shortage raised 0, never acknowledged, closed 150 without resolved_at (past its 120)
    C2 quality  raised 0, ack 5, closed 60 without resolved_at (within its 240)
    """
    def issue(issue_id, issue_type, acknowledged, resolved, closed):
        return {"id": issue_id, "issue_type": issue_type, "title": issue_id, "severity": "P2",
                "raised_at": minutes(0), "owner_department_code": "WH",
                "acknowledged_at": acknowledged and minutes(acknowledged),
                "resolved_at": resolved and minutes(resolved), "closed_at": minutes(closed),
                "status": "closed"}

    with plant.begin() as conn:
        store.upsert_rows(conn, Issue, [issue("R1", "quality_anomaly", 5, 30, 40),
                                        issue("R2", "material_shortage", 5, 130, 140),
                                        issue("C1", "material_shortage", None, None, 150),
                                        issue("C2", "quality_anomaly", 5, None, 60)])
    return plant


# At each instant: open, overdue, resolution SLA outcomes of R1, R2, C1, C2, resolution rate,
# resolution median and p90. Before its closed_at an issue closed without resolved_at is as
# any unresolved one; from it, finished: not open, never overdue, resolved in the rate,
# neither met nor breached, in no resolution time. R2, closed after a late resolution, stays
# breached.
CLOSED_CASES = {
    59: (["C1", "C2", "R2"], ["C1"], ["met", "pending", "pending", "pending"], 1 / 4, (30.0, 30.0)),
    60: (["C1", "R2"], ["C1"], ["met", "pending", "pending", "pending"], 2 / 4, (30.0, 30.0)),
    61: (["C1", "R2"], ["C1"], ["met", "pending", "pending", "pending"], 2 / 4, (30.0, 30.0)),
    149: (["C1"], ["C1"], ["met", "breached", "breached", "pending"], 3 / 4, (80.0, 120.0)),
    150: ([], [], ["met", "breached", "pending", "pending"], 1.0, (80.0, 120.0)),
    151: ([], [], ["met", "breached", "pending", "pending"], 1.0, (80.0, 120.0)),
}


@pytest.mark.parametrize("offset", list(CLOSED_CASES))
def test_closed_without_resolution_is_finished_at_closed_at(closed_plant, offset):
    as_of = minutes(offset)
    with closed_plant.connect() as conn:
        population = queries.issue_population(conn, SINCE, UNTIL).set_index("id", drop=False)
        open_now = queries.open_issues(conn, as_of).set_index("id", drop=False)
    opened, overdue, resolution, rate, resolution_times = CLOSED_CASES[offset]
    assert sorted(open_now.index[kpis.open_mask(open_now, as_of)]) == opened
    assert sorted(open_now.index[kpis.overdue_mask(open_now, as_of)]) == overdue
    assert kpis.resolution_sla_outcomes(population, as_of)[["R1", "R2", "C1", "C2"]].tolist() \
        == resolution
    assert kpis.resolution_rate(population, as_of) == pytest.approx(rate)
    result = kpis.issue_kpis(population, pd.DataFrame(columns=list(queries.EVENT_COLUMNS)),
                             open_now, as_of)
    assert (result["resolution_median_min"], result["resolution_p90_min"]) == \
        pytest.approx(resolution_times)
    # The response SLA is unchanged: C1 waited past its 20 minutes unacknowledged.
    assert (result["response_sla_met"], result["response_sla_breached"]) == (3, 1)


def test_open_and_overdue_at_their_edges():
    """Limits 10 and 60 minutes, at AS_OF (minutes before it):

    A raised at AS_OF: open            B cancelled: not open
    C unacknowledged for exactly 10    D unacknowledged for 10 and a second: overdue
    E acknowledged exactly at AS_OF, raised 30 before: acknowledged, not overdue
    F acknowledged, raised exactly 60 before    G 60 and a second before: overdue
    H raised a second after AS_OF: not open
    """
    second = timedelta(seconds=1)
    rows = [("A", AS_OF, None, "open"), ("B", AS_OF - timedelta(minutes=100), None, "cancelled"),
            ("C", AS_OF - timedelta(minutes=10), None, "open"),
            ("D", AS_OF - timedelta(minutes=10) - second, None, "open"),
            ("E", AS_OF - timedelta(minutes=30), AS_OF, "acknowledged"),
            ("F", AS_OF - timedelta(minutes=60), AS_OF - timedelta(minutes=55), "acknowledged"),
            ("G", AS_OF - timedelta(minutes=60) - second, AS_OF - timedelta(minutes=55), "acknowledged"),
            ("H", AS_OF + second, None, "open")]
    issues = pd.DataFrame(rows, columns=["id", "raised_at", "acknowledged_at", "status"]).assign(
        resolved_at=None, closed_at=None, ack_minutes=10.0, resolve_minutes=60.0)
    for column in ("raised_at", "acknowledged_at", "resolved_at", "closed_at"):
        issues[column] = pd.to_datetime(issues[column], utc=True)
    issues = issues.set_index("id", drop=False)
    assert list(issues.index[kpis.open_mask(issues, AS_OF)]) == ["A", "C", "D", "E", "F", "G"]
    assert list(issues.index[kpis.overdue_mask(issues, AS_OF)]) == ["D", "G"]


def test_by_department_counts_open_and_overdue_whatever_their_window(sla_plant):
    report = kpi_report.kpi_report(sla_plant, since=SINCE, until=UNTIL, as_of=AS_OF)
    by_department = report["by_department"]
    assert list(by_department) == ["MNT", "PRD", "QA", "WH"]
    qa, wh = by_department["QA"], by_department["WH"]
    assert (qa["raised"], qa["response_sla_met"], qa["response_sla_breached"]) == (3, 1, 1)
    assert (qa["open"], qa["overdue"]) == (3, 1)   # Q2, Q4 and Q8; Q8 is overdue
    assert (wh["raised"], wh["response_sla_compliance"], wh["resolution_rate"]) == (3, 0.5, 0.3333)
    assert (wh["open"], wh["overdue"]) == (1, 1)   # Q3
    assert by_department["MNT"] == {
        key: (0 if key in ("raised", "response_sla_met", "response_sla_breached",
                           "resolution_sla_met", "resolution_sla_breached", "open", "overdue",
                           "ping_pong_issues") else None)
        for key in CONTRACT_ISSUE_KEYS}


def test_scope_filters(sla_plant):
    with sla_plant.connect() as conn:
        on_line = queries.issue_population(conn, SINCE, UNTIL, line="L1")
        quality = queries.issue_population(conn, SINCE, UNTIL, department="QA")
        open_line = queries.open_issues(conn, AS_OF, line="L1", department="QA")
        events = queries.holder_events(conn, SINCE, UNTIL, AS_OF, department="WH")
    assert sorted(on_line["id"]) == ["Q1", "Q3"]
    assert sorted(quality["id"]) == ["Q1", "Q2", "Q4"]
    assert list(open_line["id"]) == ["Q8"]
    # Q7's raise is after as_of; Q3 raised only; Q6 raised, acknowledged, resolved.
    assert events.groupby("issue_id")["kind"].apply(list).to_dict() == {
        "Q3": ["raised"], "Q6": ["raised", "acknowledged", "resolved"]}
    assert str(events["at"].dtype) == "datetime64[ns, UTC]"


@pytest.fixture
def handoff_plant(plant):
    """A: PRD -> QA -> PRD (ping-pong)       B: PRD -> QA, then acknowledged by QA
    C: QA -> PRD, back to QA after as_of     D: QA, never handed off
    E: PRD -> QA and QA -> PRD at the same instant (event order decides: ping-pong)"""
    with db.session_scope(plant) as s:
        for issue_id, owner in [("A", "PRD"), ("B", "PRD"), ("C", "QA"), ("D", "QA"),
                                ("E", "PRD")]:
            raise_(s, issue_id, "quality_anomaly", minutes(0), owner_department_code=owner)
    with db.session_scope(plant) as s:
        store.reassign(s, "A", minutes(5), "QA")
        store.reassign(s, "B", minutes(5), "QA")
        store.reassign(s, "C", minutes(10), "PRD")
        store.reassign(s, "E", minutes(5), "QA")
    with db.session_scope(plant) as s:
        store.reassign(s, "A", minutes(9), "PRD")
        store.acknowledge(s, "B", minutes(7))
        store.reassign(s, "C", minutes(200), "QA")
        store.reassign(s, "E", minutes(5), "PRD")
    return plant


def test_handoffs_and_ping_pong(handoff_plant):
    with handoff_plant.connect() as conn:
        population = queries.issue_population(conn, SINCE, UNTIL)
        events = queries.holder_events(conn, SINCE, UNTIL, AS_OF)
        late_events = queries.holder_events(conn, SINCE, UNTIL, minutes(300))
    counts = kpis.handoff_counts(population, events, AS_OF)
    assert counts.to_dict() == {"A": 2, "B": 1, "C": 1, "D": 0, "E": 2}
    assert kpis.ping_pong_issue_ids(events, AS_OF) == {"A", "E"}
    held = kpis.holding_sequences(events, AS_OF)
    assert held.groupby("issue_id")["department_code"].apply(list).to_dict() == {
        "A": ["PRD", "QA", "PRD"], "B": ["PRD", "QA"], "C": ["QA", "PRD"], "D": ["QA"],
        "E": ["PRD", "QA", "PRD"]}
    overall = kpis.issue_kpis(population, events, population, AS_OF)
    assert (overall["handoffs_mean"], overall["ping_pong_issues"]) == (pytest.approx(6 / 5), 2)
    # Once C is handed back to QA it is ping-pong too.
    later = kpis.issue_kpis(population, late_events, population, minutes(300))
    assert (later["handoffs_mean"], later["ping_pong_issues"]) == (pytest.approx(7 / 5), 3)
    # By current owner: A and E are PRD's, B, C and D are QA's.
    by_department = kpis.issue_kpis_by_department(population, events, population, AS_OF,
                                                  ["PRD", "QA"])
    assert (by_department["PRD"]["handoffs_mean"], by_department["PRD"]["ping_pong_issues"]) \
        == (2.0, 2)
    assert (by_department["QA"]["handoffs_mean"], by_department["QA"]["ping_pong_issues"]) \
        == (pytest.approx(2 / 3), 0)


def move(number, at, lot, qty, origin, destination, material="M-001"):
    return {"id": f"MV-{number}", "at": at, "material_code": material, "lot": lot, "qty": qty,
            "from_location_code": origin, "to_location_code": destination}


@pytest.fixture
def stock_plant(plant):
    """Lot A (100) received 71 h before T0, split over WH1 and LS1, partly consumed; lot B
    waits in IQC (no dwell limit); lots C and D of M-002 on LS1, D exactly at its limit."""
    with db.session_scope(plant) as s:
        store.record_movements(s, [
            move(1, minutes(-72 * 60), "A", 100, "SUP", "RCV"),
            move(2, minutes(-71 * 60), "A", 100, "RCV", "WH1"),
            move(3, minutes(-48 * 60), "B", 50, "SUP", "RCV"),
            move(4, minutes(-47 * 60), "B", 50, "RCV", "IQC"),
            move(5, minutes(-600), "A", 30, "WH1", "LS1"),
            move(6, minutes(-60), "A", 20, "WH1", "LS1"),
            move(7, minutes(-30), "A", 45, "LS1", "CON1"),
            move(8, minutes(-360), "C", 12, "SUP", "LS1", "M-002"),
            move(9, minutes(-120), "D", 8, "SUP", "LS1", "M-002"),
            move(10, minutes(180), "A", 50, "WH1", "LS1"),
        ])
    return plant


def test_on_hand_lots_and_stagnation(stock_plant):
    with stock_plant.connect() as conn:
        stock = queries.stock_on_hand(conn, AS_OF)
        lots = queries.lot_positions(conn, AS_OF)
        everywhere = queries.stock_on_hand(conn, AS_OF, kinds=None)
        line_lots = queries.lot_positions(conn, AS_OF, line="L1")
    assert [tuple(r) for r in stock[["location_code", "material_code", "qty"]].itertuples(
        index=False)] == [("IQC", "M-001", 50.0), ("LS1", "M-001", 5.0),
                          ("LS1", "M-002", 20.0), ("WH1", "M-001", 50.0)]
    # Outside the plant's stock: the supplier is owed, consumption has used the material up.
    outside = everywhere[everywhere["location_kind"].isin(["supplier", "consumption"])]
    assert outside.set_index(["location_code", "material_code"])["qty"].to_dict() == {
        ("CON1", "M-001"): 45.0, ("SUP", "M-001"): -150.0, ("SUP", "M-002"): -20.0}
    lots = lots.set_index(["lot", "location_code"])
    assert lots["qty"].to_dict() == {("A", "LS1"): 5.0, ("A", "WH1"): 50.0, ("B", "IQC"): 50.0,
                                     ("C", "LS1"): 12.0, ("D", "LS1"): 8.0}
    assert lots.loc[("A", "LS1"), "last_in_at"] == minutes(-60)
    assert str(lots["last_in_at"].dtype) == "datetime64[ns, UTC]"
    dwell = kpis.dwell_minutes(lots, AS_OF)
    assert dwell.to_dict() == {("A", "LS1"): 180.0, ("A", "WH1"): 73 * 60.0,
                               ("B", "IQC"): 49 * 60.0, ("C", "LS1"): 480.0, ("D", "LS1"): 240.0}
    stagnant = kpis.stagnant_lots(lots.reset_index(), AS_OF)
    # A@WH1 4380 > 1440 and C@LS1 480 > 240; D sits exactly 240; IQC has no limit.
    assert list(zip(stagnant["lot"], stagnant["location_code"])) == [("A", "WH1"), ("C", "LS1")]
    assert sorted(line_lots["lot"]) == ["A", "C", "D"]


def test_report_material_section(stock_plant):
    report = kpi_report.kpi_report(stock_plant, since=SINCE, until=UNTIL, as_of=AS_OF)
    assert report["material"]["stagnant_lots"] == 2
    assert report["material"]["on_hand"] == [
        {"location": "IQC", "material": "M-001", "qty": 50.0},
        {"location": "LS1", "material": "M-001", "qty": 5.0},
        {"location": "LS1", "material": "M-002", "qty": 20.0},
        {"location": "WH1", "material": "M-001", "qty": 50.0}]


def _kept_balances(conn) -> dict:
    rows = conn.execute(select(LotStock.lot, LotStock.location_code, LotStock.qty)).all()
    return {(lot, location): qty for lot, location, qty in rows}


def test_running_lot_balances_follow_every_write(stock_plant):
    """lot_stock is what the moves sum to, whoever wrote them and however often."""
    with stock_plant.begin() as conn:
        # Every move recorded so far, move 10 (booked 3 h ahead) included.
        assert _kept_balances(conn) == {("A", "LS1"): 55.0, ("B", "IQC"): 50.0,
                                        ("C", "LS1"): 12.0, ("D", "LS1"): 8.0}
        # A re-imported move that changes its lot moves the balance with it.
        store.upsert_rows(conn, Movement, [move(8, minutes(-360), "E", 12, "SUP", "LS1", "M-002")])
        assert ("C", "LS1") not in _kept_balances(conn)
        assert _kept_balances(conn)[("E", "LS1")] == 12.0
        # A location that stops being stock takes its balances out.
        store.upsert_rows(conn, Location, [{"code": "IQC", "name": "IQC", "kind": "consumption",
                                            "line": None, "max_dwell_minutes": None}])
        assert ("B", "IQC") not in _kept_balances(conn)
        store.rebuild_lot_stock(conn)
        assert _kept_balances(conn) == {("A", "LS1"): 55.0, ("D", "LS1"): 8.0, ("E", "LS1"): 12.0}


def test_lot_positions_in_the_past_come_from_the_moves(stock_plant):
    """Two days before AS_OF lot A sat whole in WH1 and B had just reached IQC."""
    with stock_plant.connect() as conn:
        lots = queries.lot_positions(conn, minutes(-46 * 60)).set_index(["lot", "location_code"])
    assert lots["qty"].to_dict() == {("A", "WH1"): 100.0, ("B", "IQC"): 50.0}
    assert lots.loc[("B", "IQC"), "last_in_at"] == minutes(-47 * 60)


@pytest.fixture
def turnover_plant(plant):
    """Two site days, 2026-11-16 and 11-17: WH1 opens with 100.
    day 1: 40 WH1 -> LS1 (no change), 30 consumed                  -> ends at 70
    day 2: 10 received at 00:00 sharp, 50 received, 20 consumed    -> ends at 110
    5 consumed at 11-18 00:00 sharp belongs to the next period."""
    with db.session_scope(plant) as s:
        store.record_movements(s, [
            move(1, local("2026-11-15T10:00:00"), "A", 100, "SUP", "WH1"),
            move(2, local("2026-11-15T11:00:00"), "B", 500, "SUP", "RCV"),
            move(3, local("2026-11-16T09:00:00"), "A", 40, "WH1", "LS1"),
            move(4, local("2026-11-16T14:00:00"), "A", 30, "LS1", "CON1"),
            move(5, local("2026-11-17T00:00:00"), "B", 10, "RCV", "WH1"),
            move(6, local("2026-11-17T08:00:00"), "B", 50, "RCV", "WH1"),
            move(7, local("2026-11-17T15:00:00"), "A", 10, "LS1", "CON1"),
            move(8, local("2026-11-17T15:00:00"), "B", 10, "WH1", "CON1"),
            move(9, local("2026-11-18T00:00:00"), "B", 5, "WH1", "CON1"),
        ])
    return plant


def test_day_ends_are_site_midnights():
    since, until = local("2026-11-16T10:00:00"), local("2026-11-18T06:00:00")
    assert kpis.day_ends(since, until, SITE) == [
        datetime(2026, 11, 16, 16, tzinfo=UTC), datetime(2026, 11, 17, 16, tzinfo=UTC), until]
    assert kpis.day_ends(until, since, SITE) == []


def test_turnover_by_hand(turnover_plant):
    since, until = local("2026-11-16T00:00:00"), local("2026-11-18T00:00:00")
    with turnover_plant.connect() as conn:
        consumed = queries.consumed(conn, since, until)
        levels = queries.stock_at_day_ends(conn, since, kpis.day_ends(since, until, SITE))
    assert consumed["qty"].sum() == 50.0
    assert levels["qty"].tolist() == [70.0, 110.0]
    assert kpis.turnover(consumed, levels) == pytest.approx(50 / 90)
    report = kpi_report.kpi_report(turnover_plant, since=since, until=until, as_of=until)
    assert report["material"]["turnover"] == 0.5556
    # At 12:00 on day 2 the period so far is day 1 (70) and the half day (130), 30 consumed.
    midday = local("2026-11-17T12:00:00")
    report = kpi_report.kpi_report(turnover_plant, since=since, until=until, as_of=midday)
    assert report["material"]["turnover"] == pytest.approx(30 / 100)


def test_turnover_without_stock_is_none(plant):
    since, until = local("2026-11-16T00:00:00"), local("2026-11-18T00:00:00")
    report = kpi_report.kpi_report(plant, since=since, until=until, as_of=until)
    assert report["material"]["turnover"] is None


def test_plan_attainment(plant):
    def shift(line, start, hours, planned, actual):
        begin = local(start)
        return {"line": line, "shift_start": begin, "shift_end": begin + timedelta(hours=hours),
                "planned_qty": planned, "actual_qty": actual}

    with plant.begin() as conn:
        store.upsert_rows(conn, ProductionPlan, [
            shift("L1", "2026-11-15T08:00:00", 12, 100, 0),      # before the window
            shift("L1", "2026-11-16T08:00:00", 12, 100, 90),
            shift("L1", "2026-11-16T20:00:00", 12, 100, 80),
            shift("L1", "2026-11-17T08:00:00", 12, 100, None),   # nothing reported
            shift("L2", "2026-11-16T08:00:00", 12, 50, 55),
            shift("L1", "2026-11-17T20:00:00", 12, 100, 40),     # not over at as_of
        ])
    since, until = local("2026-11-16T00:00:00"), local("2026-11-18T00:00:00")
    as_of = local("2026-11-17T22:00:00")
    with plant.connect() as conn:
        plan = queries.production_plan(conn, since, until)
        line_plan = queries.production_plan(conn, since, until, line="L1")
    assert len(plan) == 5
    assert kpis.plan_attainment(plan, as_of) == pytest.approx(225 / 250)
    assert kpis.plan_attainment(line_plan, as_of) == pytest.approx(170 / 200)
    assert kpis.plan_attainment(plan.iloc[0:0], as_of) is None
    report = kpi_report.kpi_report(plant, since=since, until=until, as_of=as_of)
    assert report["plan_attainment"] == 0.9


def test_naive_file_times_are_site_local(plant):
    naive = timezones.parse_instant("2026-11-20T10:00:00")
    offset = timezones.parse_instant("2026-11-20T02:00:00+00:00")
    assert naive == offset == T0
    with db.session_scope(plant) as s:
        raise_(s, "N1", "quality_anomaly", naive)
        raise_(s, "N2", "quality_anomaly", timezones.parse_instant("2026-11-20T11:00:00"))
    with db.session_scope(plant) as s:
        store.acknowledge(s, "N1", timezones.parse_instant("2026-11-20T02:12:00+00:00"))
    # The window [10:00, 11:00) site time holds N1 (raised at its start), not N2 (at its end).
    since = timezones.parse_instant("2026-11-20T10:00:00+08:00")
    until = timezones.parse_instant("2026-11-20T03:00:00Z")
    as_of = timezones.parse_instant("2026-11-20T12:00:00")
    report = kpi_report.kpi_report(plant, since=since, until=until, as_of=as_of)
    assert (report["since"], report["until"], report["as_of"]) == (
        "2026-11-20T10:00:00+08:00", "2026-11-20T11:00:00+08:00", "2026-11-20T12:00:00+08:00")
    assert report["overall"]["raised"] == 1
    assert report["overall"]["response_median_min"] == 12.0
    assert report["overall"]["open"] == 2


def test_report_json_matches_the_contract(sla_plant):
    report = kpi_report.kpi_report(sla_plant, since=SINCE, until=UNTIL, as_of=AS_OF)
    assert json.loads(json.dumps(report)) == report
    assert set(report) == {"as_of", "since", "until", "overall", "by_department", "material",
                           "plan_attainment"}
    assert list(report["overall"]) == CONTRACT_ISSUE_KEYS
    assert all(list(values) == CONTRACT_ISSUE_KEYS for values in report["by_department"].values())
    assert set(report["material"]) == {"stagnant_lots", "on_hand", "turnover"}
    overall = report["overall"]
    assert overall["response_p90_min"] == 24.0
    assert overall["resolution_sla_compliance"] == 0.6667
    assert overall["resolution_rate"] == 0.3333
    counts = ("raised", "response_sla_met", "response_sla_breached", "resolution_sla_met",
              "resolution_sla_breached", "open", "overdue", "ping_pong_issues")
    assert all(type(overall[key]) is int for key in counts)
    assert report["material"] == {"stagnant_lots": 0, "on_hand": [], "turnover": None}
    assert report["plan_attainment"] is None


def test_format_text_shows_every_department_and_kpi(sla_plant):
    report = kpi_report.kpi_report(sla_plant, since=SINCE, until=UNTIL, as_of=AS_OF)
    text = kpi_report.format_text(report)
    header = next(line for line in text.splitlines() if line.startswith("KPI"))
    assert header.split() == ["KPI", "overall", "全厂", "MNT", "PRD", "QA", "WH"]
    compliance = next(line for line in text.splitlines()
                      if line.startswith("resolution SLA compliance"))
    assert compliance.split()[-5:] == ["0.6667", "-", "-", "1", "0.5"]
    assert "2026-11-20T12:00:00+08:00" in text


def test_loaders_return_typed_empty_frames(plant):
    with plant.connect() as conn:
        frames = [queries.issue_population(conn, SINCE, UNTIL), queries.open_issues(conn, AS_OF),
                  queries.lot_positions(conn, AS_OF), queries.production_plan(conn, SINCE, UNTIL)]
        events = queries.holder_events(conn, SINCE, UNTIL, AS_OF)
    assert all(frame.empty for frame in frames + [events])
    assert str(frames[0]["acknowledged_at"].dtype) == "datetime64[ns, UTC]"
    assert str(frames[2]["last_in_at"].dtype) == "datetime64[ns, UTC]"
    assert list(events.columns) == ["issue_id", "event_id", "at", "kind", "department_code"]
    result = kpis.issue_kpis(frames[0], events, frames[1], AS_OF)
    assert (result["raised"], result["response_sla_compliance"], result["handoffs_mean"]) \
        == (0, None, None)
    assert isinstance(kpis.stagnant_lots(frames[2], AS_OF), pd.DataFrame)
