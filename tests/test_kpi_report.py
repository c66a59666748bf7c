"""The `kpis` report's figures by department come from one grouped pass; held here to the
reference rules (kpis.issue_kpis_by_department, department by department) over the report's
whole JSON, on generated plants of many departments written through the one write path:
departments without issues, departments holding only issues raised before the window and still
open, hand-offs back and forth, issues closed without a resolution, cancelled, reopened."""
from __future__ import annotations

import json
import random
import unicodedata
from datetime import datetime, timedelta, timezone

import pytest

from data import db, kpis, store
from data.demo import reference
from data.models import Department, Issue, Location, SlaRule
from data.reports import kpi_report

SINCE = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)
UNTIL = SINCE + timedelta(days=3)
WORKING = [f"D{n:03d}" for n in range(60)]
EMPTY = [f"E{n:02d}" for n in range(10)]
ONLY_OPEN = [f"O{n:02d}" for n in range(10)]


def minutes(value: float) -> datetime:
    return SINCE + timedelta(minutes=value)


def write_plant(engine, seed: int, count: int = 250) -> None:
    """`count` issues over WORKING departments, a few open ones of ONLY_OPEN raised before
    the window, nothing for EMPTY. Steps fall on the SLA limits and on either side of them."""
    rng = random.Random(seed)
    rules = reference.SLA_RULES
    with engine.begin() as conn:
        store.upsert_rows(conn, Department, [
            {"code": code, "name_zh": code, "name_en": code}
            for code in (*WORKING, *EMPTY, *ONLY_OPEN, *{r.owner for r in rules})])
        store.upsert_rows(conn, SlaRule, reference.tables()[SlaRule])
        store.upsert_rows(conn, Location, reference.tables()[Location])
    with db.session_scope(engine) as session:
        for number, owner in enumerate(ONLY_OPEN):
            rule = rules[number % len(rules)]
            store.raise_issue(session, issue_id=f"OPEN-{number}", issue_type=rule.issue_type,
                              title="before the window", severity="P2",
                              at=SINCE - timedelta(hours=rng.choice([1, 30])),
                              owner_department_code=owner)
            if number % 2:
                store.acknowledge(session, f"OPEN-{number}", SINCE - timedelta(minutes=30))
        for number in range(count):
            rule = rng.choice(rules)
            issue_id = f"GEN-{number:04d}"
            raised = rng.uniform(0, 3 * 24 * 60 - 600)
            holder = rng.choice(WORKING)
            store.raise_issue(session, issue_id=issue_id, issue_type=rule.issue_type,
                              title="generated", severity=rng.choice(["P1", "P2", "P3"]),
                              at=minutes(raised), owner_department_code=holder)
            minute = raised
            for _ in range(rng.choice([0, 0, 1, 2, 3])):
                minute += rng.choice([1, 4, 9])
                # Back to a department it had before, now and then: ping-pong.
                holder = rng.choice([d for d in WORKING[:8] if d != holder])
                store.reassign(session, issue_id, minutes(minute), holder)
            ending = rng.choice(["open", "ack", "resolved", "resolved", "closed", "cancelled",
                                 "reopened"])
            if ending == "cancelled":
                store.cancel(session, issue_id, minutes(minute + 2))
                continue
            if ending != "open":
                minute = max(minute, raised + rng.choice(
                    [rule.ack_minutes - 1, rule.ack_minutes, rule.ack_minutes + 1]))
                store.acknowledge(session, issue_id, minutes(minute))
            if ending in ("resolved", "reopened"):
                minute = max(minute + 1, raised + rng.choice(
                    [rule.resolve_minutes - 1, rule.resolve_minutes, rule.resolve_minutes + 2]))
                store.resolve(session, issue_id, minutes(minute))
            if ending == "reopened":
                store.reopen(session, issue_id, minutes(minute + 3))
                store.resolve(session, issue_id, minutes(minute + 20))
            if ending == "closed":
                store.resolve(session, issue_id, minutes(minute + 5))
                store.close(session, issue_id, minutes(minute + rng.choice([6, 30])))
    # Closed without a resolution, as an import may bring them: finished, in no resolution SLA.
    with engine.begin() as conn:
        store.upsert_rows(conn, Issue, [
            {"id": f"SHUT-{number}", "issue_type": rules[number % len(rules)].issue_type,
             "title": "closed unresolved", "severity": "P3", "location_code": None,
             "raised_by": None, "raised_at": minutes(60 * number + 7),
             "owner_department_code": WORKING[number], "acknowledged_at": None,
             "resolved_at": None, "closed_at": minutes(60 * number + 7 + 5 * number),
             "status": "closed", "cause": None}
            for number in range(12)])


def both_paths(engine, as_of: datetime) -> tuple[dict, dict]:
    grouped = kpi_report.kpi_report(engine, since=SINCE, until=UNTIL, as_of=as_of)
    reference_report = kpi_report.kpi_report(engine, since=SINCE, until=UNTIL, as_of=as_of,
                                             by_department=kpis.issue_kpis_by_department)
    return grouped, reference_report


@pytest.mark.parametrize("seed", [1, 2])
def test_grouped_figures_equal_the_reference_for_every_department(engine, seed):
    write_plant(engine, seed)
    for as_of in (minutes(24 * 60), UNTIL, UNTIL + timedelta(days=2)):
        grouped, reference_report = both_paths(engine, as_of)
        assert json.dumps(grouped, sort_keys=True) == json.dumps(reference_report, sort_keys=True)
        figures = grouped["by_department"]
        everyone = {*WORKING, *EMPTY, *ONLY_OPEN, *{r.owner for r in reference.SLA_RULES}}
        assert set(figures) == everyone
        # The plant has what the comparison must cover, so equal figures mean something.
        assert all(figures[code]["raised"] == 0 and figures[code]["open"] == 0
                   and figures[code]["response_median_min"] is None for code in EMPTY)
        assert all(figures[code]["raised"] == 0 and figures[code]["open"] == 1
                   for code in ONLY_OPEN)
        assert sum(figures[code]["overdue"] for code in ONLY_OPEN) > 0
        assert sum(f["ping_pong_issues"] for f in figures.values()) > 0
        assert sum(f["response_sla_breached"] for f in figures.values()) > 0
        assert sum(f["raised"] for f in figures.values()) == grouped["overall"]["raised"]
    assert sum(f["resolution_sla_met"] for f in figures.values()) > 0


def test_a_plant_without_issues_gives_every_department_nothing(engine):
    with engine.begin() as conn:
        store.upsert_rows(conn, Department, [{"code": code, "name_zh": code, "name_en": code}
                                             for code in EMPTY])
    grouped, reference_report = both_paths(engine, UNTIL)
    assert grouped == reference_report
    assert set(grouped["by_department"]) == set(EMPTY)
    assert grouped["by_department"]["E03"] == grouped["overall"] == {
        **dict.fromkeys(kpis.ISSUE_KPI_KEYS, None), "raised": 0, "response_sla_met": 0,
        "response_sla_breached": 0, "resolution_sla_met": 0, "resolution_sla_breached": 0,
        "open": 0, "overdue": 0, "ping_pong_issues": 0}


def display_width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in line)


def test_text_table_lines_up_every_department_under_chinese_labels(engine):
    write_plant(engine, 3, count=60)
    text = kpi_report.format_text(kpi_report.kpi_report(engine, since=SINCE, until=UNTIL,
                                                        as_of=UNTIL))
    lines = text.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("KPI"))
    table = lines[start:start + 2 + len(kpis.ISSUE_KPI_KEYS)]
    assert any(not line.isascii() for line in table)
    # The figures are right-aligned, so every line of the table ends in the same column.
    assert {display_width(line) for line in table} == {display_width(table[1])}
