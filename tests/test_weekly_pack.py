"""The weekly review pack: its figures are the `kpis` report's for each week's window, its
deltas go the right way, a frozen pack stays as it was built, the action register carries
decisions from week to week, and no pack is built on sources that are behind."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from data import db, store, theme
from data.analysis import control
from data.demo import build_demo_plant, reference
from data.models import Department, Location, SlaRule
from data.reports import actions, kpi_report, weekly

SITE = ZoneInfo("Asia/Shanghai")
W48_SINCE = datetime(2026, 11, 23, tzinfo=SITE)
W48_UNTIL = datetime(2026, 11, 30, tzinfo=SITE)
AS_OF = W48_UNTIL + timedelta(hours=6)
TOP_KEYS = {"schema", "week", "since", "until", "as_of", "built_at", "tz", "kpis", "departments",
            "star", "worst_breaches", "longest_open", "ping_pong", "pareto", "escalations",
            "material", "plan", "actions", "daily", "markers"}


@pytest.fixture
def demo(engine):
    build_demo_plant(engine, days=42, seed=7, end=AS_OF)
    return engine


def test_weeks_are_iso_weeks_in_site_time():
    assert weekly.week_window("2026-W48") == (W48_SINCE, W48_UNTIL)
    assert weekly.week_window("2026-W01")[0] == datetime(2025, 12, 29, tzinfo=SITE)
    assert weekly.week_window("2020-W53")[1] == datetime(2021, 1, 4, tzinfo=SITE)
    # Monday 00:30 in Shanghai is still Sunday in UTC: the week is the site's.
    assert weekly.last_complete_week(datetime(2026, 11, 30, 0, 30, tzinfo=SITE)) == "2026-W48"
    assert weekly.last_complete_week(datetime(2026, 11, 29, 23, 59, tzinfo=SITE)) == "2026-W47"
    assert weekly.shifted("2026-W01", -1) == "2025-W52"
    for bad in ("2026-48", "2026-W5", "2026-W54", "W48", "", None):
        with pytest.raises(ValueError, match="week"):
            weekly.week_window(bad)
    with pytest.raises(ValueError, match=r"'2026-W54' does not exist: 2026 has 53"):
        weekly.parse_week("2026-W54")


def _report(engine, week: str, weeks_back: int) -> dict:
    since, until = weekly.week_window(week)
    return kpi_report.kpi_report(engine, since=since, until=until,
                                 as_of=AS_OF - timedelta(weeks=weeks_back))


def test_every_figure_equals_the_kpis_report_of_its_week(demo, db_url, monkeypatch):
    pack = weekly.build_pack(demo, "2026-W48", as_of=AS_OF)
    assert set(pack) == TOP_KEYS
    assert json.loads(json.dumps(pack, allow_nan=False)) == pack
    assert (pack["since"], pack["until"], pack["tz"]) == (
        "2026-11-23T00:00:00+08:00", "2026-11-30T00:00:00+08:00", "Asia/Shanghai")
    reports = {k: _report(demo, weekly.shifted("2026-W48", -k), k) for k in range(5)}
    for row in pack["kpis"]:
        values = [weekly.figure(reports[k], row["key"]) for k in (4, 3, 2, 1, 0)]
        assert [w["value"] for w in row["weeks"]] == values, row["key"]
        assert (row["this"], row["last"]) == (values[-1], values[-2]), row["key"]
        before = [v for v in values[:-1] if v is not None]
        assert row["avg4"] == pytest.approx(sum(before) / len(before), abs=0.005), row["key"]
        if row["this"] is not None and row["last"] is not None:
            assert row["delta"] == pytest.approx(row["this"] - row["last"], abs=0.005)
    assert {r["key"] for r in pack["kpis"]} == set(weekly.KPI_KEYS)
    assert pack["kpis"][0]["this"] == reports[0]["overall"]["raised"] > 100

    # The department table is the report's by_department, ranked.
    for row in pack["departments"]:
        theirs = reports[0]["by_department"][row["code"]]
        assert (row["raised"], row["response_median_min"], row["response_sla_compliance"],
                row["resolution_rate"], row["ping_pong"]) == (
            theirs["raised"], theirs["response_median_min"], theirs["response_sla_compliance"],
            theirs["resolution_rate"], theirs["ping_pong_issues"])
    ranked = [r for r in pack["departments"] if r["rank"] is not None]
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    assert [r["response_sla_compliance"] for r in ranked] == sorted(
        (r["response_sla_compliance"] for r in ranked), reverse=True)
    contenders = [r for r in pack["departments"] if r["raised"] >= 5
                  and r["response_sla_compliance"] is not None
                  and theme.level("response_sla_compliance", r["response_sla_compliance"]) != theme.BAD]
    fastest = min(contenders, key=lambda r: r["response_median_min"])
    assert (pack["star"]["code"], pack["star"]["response_median_min"]) == (
        fastest["code"], fastest["response_median_min"])
    assert fastest["name_en"] in pack["star"]["name_en"] and pack["star"]["why_zh"]
    assert pack["material"]["turnover"] == reports[0]["material"]["turnover"]
    assert len(pack["material"]["stagnant"]) == min(10, reports[0]["material"]["stagnant_lots"])
    assert sum(p["this"] for p in pack["pareto"]["types"]) == reports[0]["overall"]["raised"]

    # The daily series is the control chart's: the median response per day matches
    # data.analysis.control's own reading of it.
    with demo.connect() as conn:
        from data import queries
        history = queries.issue_population(conn, weekly.week_window("2026-W44")[0], W48_UNTIL)
    theirs = control.daily_response_median(history, AS_OF, SITE)
    ours = {d["date"]: d["value"] for d in pack["daily"]["response_median_min"]}
    assert len(ours) == 35
    assert all(ours[day.isoformat()] == pytest.approx(value, abs=0.005)
               for day, value in theirs.items())

    # ... and the command line's `kpis --json` says the same for the week.
    import app

    monkeypatch.setenv("DATABASE_URL", db_url)
    result = CliRunner().invoke(app.cli, ["kpis", "--json", "--since", pack["since"],
                                          "--until", pack["until"], "--as-of", pack["as_of"]])
    assert result.exit_code == 0, result.output
    overall = json.loads(result.output)["overall"]
    assert all(row["this"] == overall[row["key"]] for row in pack["kpis"]
               if row["key"] in overall)


def _small_plant(engine) -> None:
    """Equipment failures (acknowledge within 10 minutes): in W47 one answered in 5 minutes
    and one in 25; in W48 one in 5. Every one resolved within the hour."""
    with engine.begin() as conn:
        store.upsert_rows(conn, Department, reference.tables()[Department])
        store.upsert_rows(conn, SlaRule, reference.tables()[SlaRule])
        store.upsert_rows(conn, Location, reference.tables()[Location])
    with db.session_scope(engine) as session:
        for issue_id, raised, answered in (("W47-A", W48_SINCE - timedelta(days=3), 5),
                                           ("W47-B", W48_SINCE - timedelta(days=2), 25),
                                           ("W48-C", W48_UNTIL - timedelta(hours=3), 5)):
            store.raise_issue(session, issue_id=issue_id, issue_type="equipment_failure",
                              title=f"failure {issue_id}", severity="P2", at=raised)
            store.acknowledge(session, issue_id, raised + timedelta(minutes=answered))
            store.resolve(session, issue_id, raised + timedelta(minutes=50))


def test_deltas_and_whether_they_are_good_by_hand(engine):
    _small_plant(engine)
    pack = weekly.build_pack(engine, "2026-W48", as_of=AS_OF)
    rows = {row["key"]: row for row in pack["kpis"]}
    median = rows["response_median_min"]
    assert (median["this"], median["last"], median["avg4"], median["delta"], median["good"]) == (
        5.0, 15.0, 15.0, -10.0, True)
    compliance = rows["response_sla_compliance"]
    assert (compliance["this"], compliance["last"], compliance["delta"], compliance["good"],
            compliance["better"]) == (1.0, 0.5, 0.5, True, "higher")
    raised = rows["raised"]
    assert (raised["this"], raised["last"], raised["avg4"], raised["delta"], raised["good"]) == (
        1, 2, 0.5, -1, True)
    # No change is neither good nor bad; a figure without last week's value has no delta.
    assert (rows["resolution_rate"]["delta"], rows["resolution_rate"]["good"]) == (0.0, None)
    assert rows["open"]["good"] is None
    # Worse is not good: a compliance down from 0.9 to 0.8.
    worse = weekly._kpi_row(weekly.KPIS[5], [None, None, None, 0.9, 0.8], None, [],
                            [date(2026, 10, 26) + timedelta(weeks=k) for k in range(5)])
    assert (worse["delta"], worse["good"], worse["avg4"]) == (-0.1, False, 0.9)
    assert pack["worst_breaches"] == []      # W47-B breached, but in W47


def test_a_frozen_pack_keeps_its_figures_after_later_writes(engine):
    _small_plant(engine)
    first = weekly.freeze(engine, "2026-W48", as_of=AS_OF, built_by="cli:test")
    assert weekly.frozen(engine, "2026-W48") == first
    with db.session_scope(engine) as session:
        store.raise_issue(session, issue_id="LATE", issue_type="equipment_failure",
                          title="written after the freeze", severity="P1",
                          at=W48_UNTIL - timedelta(hours=1))
    rebuilt = weekly.build_pack(engine, "2026-W48", as_of=AS_OF)
    assert rebuilt["kpis"][0]["this"] == 2
    kept = weekly.frozen(engine, "2026-W48")
    assert kept == first and kept["kpis"][0]["this"] == 1
    # Freezing again keeps the first pack, and builds nothing (not even a pack it would refuse).
    assert weekly.freeze(engine, "2026-W48", as_of=AS_OF, built_by="cli:other") == first
    assert weekly.freeze(engine, "2026-W48", as_of=W48_SINCE, built_by="cli:other") == first
    assert weekly.frozen(engine, "2026-W47") is None


def test_the_action_register_carries_over_until_closed(engine):
    _small_plant(engine)
    made = datetime(2026, 11, 18, 10, tzinfo=SITE)
    common = dict(owner="王工", department_code="MNT", created_by="manager", now=made)
    late = actions.create(engine, problem="L2 故障响应慢", about="response_median_min",
                          countermeasure="值班表", due=date(2026, 11, 25), opened_week="2026-W47",
                          **common)
    later = actions.create(engine, problem="issues", about="W47-A, W47-B",
                           countermeasure="spare parts", due="2026-12-10", opened_week="2026-W47",
                           **common)
    done = actions.create(engine, problem="done", about=["W47-B"], countermeasure="done it",
                          due=date(2026, 11, 20), opened_week="2026-W47", status="done", **common)
    assert later["about_issues"] == ["W47-A", "W47-B"] and later["about_kpi"] is None
    assert late["about_kpi"] == "response_median_min"

    carried = {a["id"]: a for a in actions.carried(engine, "2026-W48")}
    assert set(carried) == {late["id"], later["id"], done["id"]}
    assert (carried[late["id"]]["overdue"], carried[later["id"]]["overdue"],
            carried[done["id"]]["overdue"]) == (True, False, False)
    assert actions.carried(engine, "2026-W46") == []

    pack = weekly.build_pack(engine, "2026-W48", as_of=AS_OF)
    assert [a["id"] for a in pack["actions"] if a["overdue"]] == [late["id"]]
    assert pack["markers"] == [{"date": "2026-11-18", "action_id": late["id"],
                                "kpi": "response_median_min"}]

    closed = actions.update(engine, late["id"], status="verified", evidence="median 15 -> 5 min",
                            updated_by="manager", now=W48_UNTIL + timedelta(hours=9),
                            week="2026-W48")
    assert closed["closed_week"] == "2026-W48"
    assert closed["status_history"][-1]["from"] == "open"
    assert closed["status_history"][-1]["to"] == "verified"
    assert late["id"] in {a["id"] for a in actions.carried(engine, "2026-W48")}
    assert late["id"] not in {a["id"] for a in actions.carried(engine, "2026-W49")}
    assert later["id"] in {a["id"] for a in actions.carried(engine, "2026-W49")}


@pytest.mark.parametrize("field, changes, message", [
    ("due", {"due": "next friday"}, "due: must be a date"),
    ("department_code", {"department_code": "NOPE"}, "department_code: no department 'NOPE'"),
    ("about", {"about": "no-such-issue"}, "about: neither a KPI key nor known issues"),
    ("status", {"status": "closed"}, "status: 'closed' is not one of"),
    ("owner", {"owner": "  "}, "owner: must not be empty"),
    ("evidence", {"status": "verified"}, "evidence: a verified action says"),
    ("opened_week", {"opened_week": "2026-W60"}, "opened_week: week '2026-W60'"),
])
def test_every_action_input_is_checked_by_name(engine, field, changes, message):
    _small_plant(engine)
    values = dict(problem="p", about="overdue", countermeasure="c", owner="o",
                  department_code="MNT", due=date(2026, 12, 1), opened_week="2026-W48",
                  created_by="manager", now=AS_OF)
    with pytest.raises(actions.ActionError, match=message) as caught:
        actions.create(engine, **{**values, **changes})
    assert caught.value.field == field
    made = actions.create(engine, **values)
    if field != "opened_week":
        with pytest.raises(actions.ActionError, match=message):
            actions.update(engine, made["id"], updated_by="m", now=AS_OF, week="2026-W48", **changes)
    assert actions.get(engine, made["id"])["status"] == "open"


def test_no_pack_on_sources_that_are_behind(engine, monkeypatch):
    _small_plant(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM issue_events WHERE issue_id = 'W48-C'"))
        conn.execute(text("DELETE FROM issues WHERE id = 'W48-C'"))
    # The newest record is W47-B's resolution, 9 days less 50 minutes before the week's end.
    with pytest.raises(weekly.SourcesBehind,
                       match=r"behind for week 2026-W48: .* 215\.2 hours before the week's end"):
        weekly.build_pack(engine, "2026-W48", as_of=W48_UNTIL + timedelta(hours=5))
    with pytest.raises(weekly.SourcesBehind):
        weekly.freeze(engine, "2026-W48", as_of=W48_UNTIL + timedelta(hours=5, minutes=59),
                      built_by="t")
    assert weekly.frozen(engine, "2026-W48") is None
    # A record at the week's end minus the grace is fresh enough; a minute older is not.
    with db.session_scope(engine) as session:
        store.raise_issue(session, issue_id="EDGE", issue_type="equipment_failure", title="edge",
                          severity="P3", at=W48_UNTIL - timedelta(hours=6, minutes=1))
    with pytest.raises(weekly.SourcesBehind, match=r"6\.0 hours before"):
        weekly.build_pack(engine, "2026-W48", as_of=W48_UNTIL + timedelta(hours=5))
    with engine.begin() as conn:
        conn.execute(text("UPDATE issues SET raised_at = :at WHERE id = 'EDGE'"),
                     {"at": (W48_UNTIL - timedelta(hours=6)).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)})
        conn.execute(text("DELETE FROM issue_events WHERE issue_id = 'EDGE'"))
    weekly.build_pack(engine, "2026-W48", as_of=W48_UNTIL + timedelta(hours=5))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM issues WHERE id = 'EDGE'"))
    # Past the grace, the week is built as the sources have it.
    assert weekly.build_pack(engine, "2026-W48", as_of=W48_UNTIL + timedelta(hours=6))["kpis"][0][
        "this"] == 0
    monkeypatch.setenv("WEEKLY_GRACE_HOURS", "200")
    weekly.build_pack(engine, "2026-W47", as_of=AS_OF)     # fresh within 200 hours of its end
    with pytest.raises(weekly.WeekNotOver, match="not over"):
        weekly.build_pack(engine, "2026-W49", as_of=AS_OF)


def test_the_command_writes_the_pack_and_reuses_a_frozen_one(engine, db_url, monkeypatch, tmp_path):
    import app

    _small_plant(engine)
    monkeypatch.setenv("DATABASE_URL", db_url)
    out = tmp_path / "w48.json"
    args = ["report", "weekly", "--week", "2026-W48", "--as-of", AS_OF.isoformat(), "--out", str(out)]
    result = CliRunner().invoke(app.cli, [*args, "--freeze"])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written == weekly.frozen(engine, "2026-W48")
    result = CliRunner().invoke(app.cli, [*args[:4], "--as-of", (AS_OF + timedelta(days=3)).isoformat(),
                                          "--out", str(out)])
    assert json.loads(out.read_text(encoding="utf-8"))["as_of"] == written["as_of"]
    result = CliRunner().invoke(app.cli, ["report", "weekly", "--week", "2026-W61", "--out", str(out)])
    assert result.exit_code != 0 and "'2026-W61'" in result.output


def test_the_star_and_the_ranking_follow_their_rules(monkeypatch):
    def row(code, raised, median, compliance, rate=1.0):
        return {"code": code, "name_zh": code, "name_en": code, "raised": raised,
                "response_median_min": median, "response_sla_compliance": compliance,
                "resolution_rate": rate, "ping_pong": 0, "rank": None}

    rows = [row("BIG", 40, 9.0, 0.95), row("FAST", 6, 4.0, 0.8), row("FEW", 4, 1.0, 1.0),
            row("RED", 30, 2.0, 0.5), row("TIE", 6, 4.0, 0.8)]
    star = weekly._star(rows)
    assert (star["code"], star["tied_with"], star["min_issues"]) == ("FAST", ["TIE"], 5)
    assert "4 min" in star["why_en"] and "80%" in star["why_en"] and "4 分" in star["why_zh"]
    monkeypatch.setenv("STAR_MIN_ISSUES", "10")
    assert weekly._star(rows)["code"] == "BIG"
    report = {"by_department": {r["code"]: {**r, "ping_pong_issues": 0} for r in rows}}
    report["by_department"]["NONE"] = {"raised": 0, "response_median_min": None,
                                       "response_sla_compliance": None, "resolution_rate": None,
                                       "ping_pong_issues": 0}
    names = type("Names", (), {"department": staticmethod(lambda code: (code, code))})()
    ranked = weekly._departments(report, names)
    assert [(r["code"], r["rank"]) for r in ranked] == [
        ("FEW", 1), ("BIG", 2), ("FAST", 3), ("TIE", 4), ("RED", 5), ("NONE", None)]
