"""Existing databases as sources (docs/existing-databases.md): `check-source` finds each kind of
problem a source can hold, on SQLite and PostgreSQL, and passes a clean one; the worked ERP
example's views give the wall and `kpis` the figures computed by hand from its sample rows,
read-only, and the wall follows the ERP's changes through the views' stamps."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, exc, make_url, text

from data import db, timezones
from data.demo.history import build_demo_plant
from data.ingest import importer, source_check
from data.wall import material_snapshot, overview_from_frames, overview_snapshot
from data.wall.follower import WallState
from tools.databases import PG_ADMIN_URL, throwaway_postgres

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "erp-postgresql"
AT_TEN = timezones.parse_instant("2026-11-20T10:00")
SITE = ZoneInfo("Asia/Shanghai")


def run(*args: str, url: str) -> subprocess.CompletedProcess:
    """`python app.py ...` on `url`, as a user runs it."""
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, text=True, capture_output=True,
                          env={**os.environ, "DATABASE_URL": url}, timeout=120)


def check_source(*args: str, url: str):
    """`python app.py check-source ...` on `url`, in this process."""
    from app import cli

    return CliRunner().invoke(cli, ["check-source", *args], env={"DATABASE_URL": url})


def found(report: source_check.Report) -> set[tuple]:
    return {(f.table, f.column, f.problem, f.count) for f in report.findings}


# ---- a source with one of each problem -----------------------------------------------------

# Each table of the source: its columns with their PostgreSQL types (on SQLite the columns
# have no type, so every value is kept as written), then its rows.
BAD_SOURCE = {
    "departments": ({"code": "TEXT", "name_zh": "TEXT", "name_en": "TEXT"}, [
        ("QA", "质量部", "Quality"), ("PRD", "生产部", "Production")]),
    "sla_rules": ({"issue_type": "TEXT", "name_zh": "TEXT", "name_en": "TEXT",
                   "owner_department_code": "TEXT", "notify_department_codes": "TEXT",
                   "ack_minutes": "DOUBLE PRECISION", "resolve_minutes": "DOUBLE PRECISION"}, [
        ("quality_anomaly", "质量异常", "Quality anomaly", "QA", "PRD", 10, 240),
        ("forever", "永久", "Forever", "QA", "", 10, 999999999),
        ("backwards", "倒置", "Backwards", "QA", "", 30, 20),
        ("orphan", "无主", "Orphan", "XX", "", 10, 20)]),
    "locations": ({"code": "TEXT", "name": "TEXT", "kind": "TEXT", "line": "TEXT",
                   "max_dwell_minutes": "DOUBLE PRECISION"}, [
        ("WH1", "原料仓", "warehouse", None, 600), ("L1-SIDE", "L1 线边", "line_side", "L1", 240),
        ("MOON", "月球", "orbit", None, None)]),
    "materials": ({"code": "TEXT", "name": "TEXT", "unit": "TEXT"}, [("M1", "钢板", "kg")]),
    "issues": ({"id": "TEXT", "issue_type": "TEXT", "title": "TEXT", "severity": "TEXT",
                "location_code": "TEXT", "raised_by": "TEXT", "raised_at": "TIMESTAMP",
                "owner_department_code": "TEXT", "acknowledged_at": "TIMESTAMP",
                "resolved_at": "TIMESTAMP", "closed_at": "TIMESTAMP", "status": "TEXT",
                "cause": "TEXT", "updated_at": "TIMESTAMP"}, [
        ("I1", "quality_anomaly", "划伤", "P2", "WH1", None, "2026-11-20 00:00:00", "QA",
         "2026-11-20 00:05:00", "2026-11-20 01:00:00", "2026-11-20 02:00:00", "closed", None,
         "2026-11-20 02:00:00"),
        ("I2", "quality_anomaly", "year 3026", "P2", None, None, "3026-01-01 00:00:00", "QA",
         None, None, None, "open", None, "2026-11-20 00:00:00"),
        ("I3", "quality_anomaly", "resolved first", "P2", None, None, "2026-11-20 02:00:00", "QA",
         None, "2026-11-20 01:00:00", None, "resolved", None, "2026-11-20 02:00:00"),
        ("I4", "quality_anomaly", "acknowledged first", "P2", None, None, "2026-11-20 02:00:00",
         "QA", "2026-11-20 01:59:00", None, None, "acknowledged", None, "2026-11-20 02:00:00"),
        ("I5", "nope", "no rule", "P2", None, None, "2026-11-20 00:00:00", "QA", None, None, None,
         "open", None, "2026-11-20 00:00:00"),
        ("I6", "quality_anomaly", "nowhere", "P2", "NOWHERE", None, "2026-11-20 00:00:00", "QA",
         None, None, None, "open", None, "2026-11-20 00:00:00"),
        ("I7", "quality_anomaly", "nobody", "P2", None, None, "2026-11-20 00:00:00", "XX", None,
         None, None, "open", None, "2026-11-20 00:00:00"),
        ("I8", "quality_anomaly", "lost", "P2", None, None, "2026-11-20 00:00:00", "QA", None, None,
         None, "lost", None, "2026-11-20 00:00:00"),
        ("I9", "quality_anomaly", "P9", "P9", None, None, "2026-11-20 00:00:00", "QA", None, None,
         None, "open", None, "2026-11-20 00:00:00"),
        ("I10", "quality_anomaly", "resolved when?", "P2", None, None, "2026-11-20 00:00:00", "QA",
         "2026-11-20 00:01:00", None, None, "resolved", None, "2026-11-20 00:00:00"),
        ("I11", "quality_anomaly", None, "P2", None, None, "2026-11-20 00:00:00", "QA", None, None,
         None, "open", None, "2026-11-20 00:00:00"),
        ("I12", "quality_anomaly", "no stamp", "P2", None, None, "2026-11-20 00:00:00", "QA", None,
         None, None, "open", None, None),
        ("I13", "quality_anomaly", "twice", "P2", None, None, "2026-11-20 00:00:00", "QA", None,
         None, None, "open", None, "2026-11-20 00:00:00"),
        ("I13", "quality_anomaly", "twice", "P2", None, None, "2026-11-20 00:00:00", "QA", None,
         None, None, "open", None, "2026-11-20 00:00:00")]),
    "issue_events": ({"id": "BIGINT", "issue_id": "TEXT", "at": "TIMESTAMP", "kind": "TEXT",
                      "department_code": "TEXT", "actor": "TEXT", "note": "TEXT",
                      "recorded_at": "TIMESTAMP"}, [
        (1, "I1", "2026-11-20 00:00:00", "raised", "QA", None, None, "2026-11-20 00:00:00"),
        (2, "I1", "2026-11-20 00:10:00", "teleported", "QA", None, None, "2026-11-20 00:10:00"),
        (3, "I404", "2026-11-20 00:10:00", "commented", "QA", None, None, "2026-11-20 00:10:00"),
        (4, "I1", "2026-11-19 23:00:00", "commented", "QA", None, None, "2026-11-20 00:10:00"),
        (5, "I1", "2026-11-20 00:20:00", "reassigned", "XX", None, None, "2026-11-20 00:20:00"),
        (3000000000, "I1", "2026-11-20 00:30:00", "commented", "QA", None, None, "2026-11-20 00:30:00")]),
    "movements": ({"id": "TEXT", "at": "TIMESTAMP", "material_code": "TEXT", "lot": "TEXT",
                   "qty": "DOUBLE PRECISION", "from_location_code": "TEXT",
                   "to_location_code": "TEXT", "order_ref": "TEXT", "recorded_at": "TIMESTAMP"}, [
        ("MV1", "2026-11-19 00:00:00", "M1", "LOT1", 100, "WH1", "L1-SIDE", None, "2026-11-19 00:00:00"),
        ("MV2", "2026-11-19 01:00:00", "M1", "LOT1", 0, "WH1", "L1-SIDE", None, "2026-11-19 01:00:00"),
        ("MV3", "2026-11-19 02:00:00", "M1", "LOT1", 1e308, "WH1", "L1-SIDE", None, "2026-11-19 02:00:00"),
        ("MV4", "2026-11-19 03:00:00", "M1", "LOT1", 5, "WH1", "WH1", None, "2026-11-19 03:00:00"),
        ("MV5", "2026-11-19 04:00:00", "M404", "LOT1", 5, "WH1", "L1-SIDE", None, "2026-11-19 04:00:00"),
        ("MV6", "2026-11-19 05:00:00", "M1", "LOT1", 5, "WH1", "NOWHERE", None, "2026-11-19 05:00:00"),
        ("MV7", "1999-12-31 00:00:00", "M1", "LOT1", 5, "WH1", "L1-SIDE", None, "2026-11-19 06:00:00"),
        # exactly PLAUSIBLE_FROM (2000-01-01 site time) is taken, exactly PLAUSIBLE_UNTIL is not
        ("MV8", "1999-12-31 16:00:00", "M1", "LOT1", 5, "WH1", "L1-SIDE", None, "2026-11-19 07:00:00"),
        ("MV9", "2099-12-31 16:00:00", "M1", "LOT1", 5, "WH1", "L1-SIDE", None, "2026-11-19 08:00:00")]),
    # actual_qty is a text column on PostgreSQL too: a quantity typed as text.
    "production_plan": ({"line": "TEXT", "shift_start": "TIMESTAMP", "shift_end": "TIMESTAMP",
                         "planned_qty": "DOUBLE PRECISION", "actual_qty": "TEXT"}, [
        ("L1", "2026-11-20 00:00:00", "2026-11-20 08:00:00", 400, 380),
        ("L1", "2026-11-20 08:00:00", "2026-11-20 07:00:00", 400, None),
        ("L4", "2026-11-20 00:00:00", "2026-11-20 00:00:00", 400, None),
        ("L2", "2026-11-20 00:00:00", "2026-11-20 08:00:00", -5, "lots"),
        ("L3", "2026-11-20 00:00:00", "2026-11-20 08:00:00", 1e12, None)]),
    # last_in_at is a text column on PostgreSQL too: a time typed as text.
    "lot_stock": ({"lot": "TEXT", "material_code": "TEXT", "location_code": "TEXT",
                   "qty": "DOUBLE PRECISION", "last_in_at": "TEXT"}, [
        ("LOT1", "M1", "L1-SIDE", 100, "2026-11-19 00:00:00"),
        ("LOT2", "M1", "WH1", 5, "yesterday")]),
    "data_versions": ({"name": "TEXT", "version": "BIGINT"}, [("bulk", 1)]),
    "alembic_version": ({"version_num": "TEXT"}, [("0000",)]),
}

EVERY_PROBLEM = {
    ("people", None, "missing_table", None),
    ("sla_rules", "resolve_minutes", "limit_too_long", 1),
    ("sla_rules", "resolve_minutes", "resolve_before_ack", 1),
    ("sla_rules", "owner_department_code", "unknown_code", 1),
    ("locations", "kind", "not_one_of", 1),
    ("materials", "category", "missing_column", None),
    ("issues", "raised_at", "after_plausible", 1),
    ("issues", "resolved_at", "before_raised", 1),
    ("issues", "acknowledged_at", "before_raised", 1),
    ("issues", "issue_type", "unknown_code", 1),
    ("issues", "location_code", "unknown_code", 1),
    ("issues", "owner_department_code", "unknown_code", 1),
    ("issues", "status", "not_one_of", 1),
    ("issues", "severity", "not_one_of", 1),
    ("issues", "resolved_at", "status_without_time", 1),
    ("issues", "title", "empty", 1),
    ("issues", "updated_at", "no_stamp", 1),
    ("issues", "id", "repeated_key", 1),
    ("issue_events", "kind", "not_one_of", 1),
    ("issue_events", "issue_id", "unknown_code", 1),
    ("issue_events", "department_code", "unknown_code", 1),
    ("issue_events", "at", "before_issue_raised", 1),
    ("issue_events", "id", "integer_range", 1),
    ("movements", "qty", "not_positive", 1),
    ("movements", "qty", "too_large", 1),
    ("movements", "to_location_code", "same_place", 1),
    ("movements", "material_code", "unknown_code", 1),
    ("movements", "to_location_code", "unknown_code", 1),
    ("movements", "at", "before_plausible", 1),
    ("movements", "at", "after_plausible", 1),
    ("production_plan", "updated_at", "missing_stamp", None),
    ("production_plan", "shift_end", "shift_end_not_after_start", 2),
    ("production_plan", "planned_qty", "negative", 1),
    ("production_plan", "planned_qty", "too_large", 1),
    ("production_plan", "actual_qty", "not_a_number", 1),
    ("lot_stock", "last_in_at", "not_a_time", 1),
    ("alembic_version", "version_num", "schema_revision", 1),
}
# PostgreSQL also says which declared types FloorLink cannot compare.
DECLARED_ON_POSTGRESQL = {
    ("production_plan", "actual_qty", "wrong_type_number", None),
    ("lot_stock", "last_in_at", "wrong_type_time", None),
}


@pytest.fixture(params=["sqlite", "postgresql"])
def bad_source(request, tmp_path):
    """The URL of a source holding one of each problem, in plain tables without constraints
    (the way views present a source)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'source.sqlite'}"
        _fill(url, sqlite=True)
        yield url
        return
    with throwaway_postgres("floorlink_source") as url:
        _fill(url, sqlite=False)
        yield url


def _fill(url: str, *, sqlite: bool) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for name, (columns, rows) in BAD_SOURCE.items():
            declared = ", ".join(c if sqlite else f"{c} {kind}" for c, kind in columns.items())
            conn.execute(text(f"CREATE TABLE {name} ({declared})"))
            names = list(columns)
            conn.execute(text(f"INSERT INTO {name} ({', '.join(names)}) "
                              f"VALUES ({', '.join(':' + c for c in names)})"),
                         [dict(zip(names, row)) for row in rows])
    engine.dispose()


def test_one_of_each_problem_is_found_and_counted(bad_source):
    report = source_check.check_url(bad_source)
    declared = DECLARED_ON_POSTGRESQL if bad_source.startswith("postgresql") else set()
    assert found(report) == EVERY_PROBLEM | declared
    examples = {(f.table, f.column, f.problem): f.examples for f in report.findings}
    assert examples["issues", "raised_at", "after_plausible"] == (
        source_check.Example("I2", "raised_at", "3026-01-01 00:00:00"),)
    assert examples["movements", "qty", "too_large"] == (source_check.Example("MV3", "qty", "1e+308"),)
    assert examples["sla_rules", "resolve_minutes", "limit_too_long"] == (
        source_check.Example("forever", "resolve_minutes", "999999999"),)
    assert examples["issue_events", "issue_id", "unknown_code"] == (
        source_check.Example("3", "issue_id", "I404"),)
    assert examples["issues", "id", "repeated_key"] == (source_check.Example("I13", "id", "2"),)
    assert examples["production_plan", "actual_qty", "not_a_number"] == (
        source_check.Example("L2 / 2026-11-20 00:00:00", "actual_qty", "lots"),)
    reasons = {f.problem: f.reason for f in report.findings}
    assert reasons["after_plausible"] == ("not before PLAUSIBLE_UNTIL (2100-01-01) "
                                          "不早于 PLAUSIBLE_UNTIL（2100-01-01）")
    assert reasons["unknown_code"].startswith("no such code in ")


def test_values_and_types_floorlink_cannot_compare(tmp_path):
    """SQLite keeps any value in any column; PostgreSQL keeps the types it was given. Either way
    the wall compares codes as text, instants as UTC times and ids as integers."""
    sqlite_url = f"sqlite:///{tmp_path / 'source.sqlite'}"
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE departments (code, name_zh, name_en)"))
        conn.execute(text("INSERT INTO departments VALUES (42, '四十二', 'Forty-two'), "
                          "('QA', '质量部', 'Quality')"))
        conn.execute(text("CREATE TABLE data_versions (name, version)"))
        conn.execute(text("INSERT INTO data_versions VALUES ('bulk', 'one')"))
        conn.execute(text("CREATE TABLE production_plan (line, shift_start, shift_end, planned_qty, "
                          "actual_qty, updated_at)"))
        conn.execute(text("INSERT INTO production_plan VALUES (:line, :start, :end, 1, 1, :end)"), [
            {"line": "L1", "start": "2026-11-20T00:00:00", "end": "2026-11-20 08:00:00"},
            {"line": "L2", "start": "2026-11-20 00:00:00", "end": "2026-11-20 08:00:00+08:00"}])
    engine.dispose()
    assert {
        ("departments", "code", "not_text", 1), ("data_versions", "version", "not_an_integer", 1),
        ("production_plan", "shift_start", "not_a_time", 1),
        ("production_plan", "shift_end", "not_a_time", 1),
    } <= found(source_check.check_url(sqlite_url))

    with throwaway_postgres("floorlink_source") as url:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE departments (code integer, name_zh text, name_en text)"))
            conn.execute(text("CREATE TABLE data_versions (name text, version text)"))
            conn.execute(text("CREATE TABLE production_plan (line text, shift_start date, shift_end "
                              "timestamptz, planned_qty text, actual_qty real, updated_at timestamp)"))
            conn.execute(text("INSERT INTO production_plan VALUES "
                              "('L1', '2026-11-20', '3026-11-20 08:00:00+00', '400', 1, '2026-11-20 08:00')"))
        engine.dispose()
        assert {
            ("departments", "code", "wrong_type_text", None),
            ("data_versions", "version", "wrong_type_integer", None),
            ("production_plan", "shift_start", "wrong_type_time", None),
            ("production_plan", "shift_end", "wrong_type_time", None),
            ("production_plan", "planned_qty", "wrong_type_number", None),
            # a time with a zone is still compared as the instant it is
            ("production_plan", "shift_end", "after_plausible", 1),
        } <= found(source_check.check_url(url))


def test_the_command_prints_each_table_and_exits_1(tmp_path):
    url = f"sqlite:///{tmp_path / 'source.sqlite'}"
    _fill(url, sqlite=True)
    printed = check_source("--url", url, url="sqlite:///elsewhere.sqlite")
    assert printed.exit_code == 1, printed.output
    lines = printed.stdout.splitlines()
    assert "departments: ok 无问题" in lines and "people:" in lines
    at = lines.index("movements:")
    assert "  qty: above 1e+09, not a real quantity 超过 1e+09，不是真实数量 (rows 行数: 1)" in lines[at:]
    assert "      MV3: qty = 1e+308" in lines[at:]
    assert lines[-1] == f"problems found 发现问题: {len(EVERY_PROBLEM)}"
    as_json = check_source("--json", url=url)
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["clean"] is False and report["problems"] == len(EVERY_PROBLEM)
    assert set(report["tables"]) == set(source_check.TABLES)
    (qty,) = [p for p in report["tables"]["movements"] if p["problem"] == "not_positive"]
    assert qty["count"] == 1 and qty["examples"] == [
        {"key": "MV2", "column": "qty", "value": "0", "reason": "not greater than 0 不大于 0"}]


def test_a_demo_plant_is_clean(engine):
    build_demo_plant(engine, days=2, end=AT_TEN)
    report = source_check.check_url(engine.url.render_as_string(hide_password=False))
    assert report.clean, source_check.format_text(report)


def test_a_source_that_is_not_there_is_one_line(tmp_path):
    missing = check_source(url=f"sqlite:///{tmp_path / 'nothing.sqlite'}")
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    assert missing.stderr.strip() == f"Error: no SQLite database file at {tmp_path / 'nothing.sqlite'}"
    assert not (tmp_path / "nothing.sqlite").exists()


def test_the_columns_checked_are_the_contract_s():
    """The contract's columns, as the importer takes them, plus what the wall reads beyond it."""
    beyond = {"issues": {"updated_at"}, "issue_events": {"id", "recorded_at"},
              "movements": {"recorded_at"}, "production_plan": {"updated_at"}}
    for name, table_format in importer.FORMATS.items():
        checked = {c.name: c for c in source_check.TABLES[name].columns}
        assert set(checked) - beyond.get(name, set()) == {f.name for f in table_format.fields}, name
        for f in table_format.fields:
            assert checked[f.name].required == f.required, (name, f.name)
            if not f.listed:
                assert checked[f.name].refers_to == f.refers_to, (name, f.name)


# ---- the worked example: an ERP on PostgreSQL, read through views --------------------------

@contextmanager
def _erp_example():
    """The example's ERP (schema, sample rows, views, a read-only login) in a throwaway
    database: (the administrator's URL, FloorLink's URL as docs/existing-databases.md gives it)."""
    reader = f"floorlink_reader_{uuid.uuid4().hex[:8]}"
    made = False
    try:
        with throwaway_postgres("floorlink_erp") as url:
            made = True
            for name in ("schema.sql", "sample-data.sql", "views.sql", "reader.sql"):
                sql = (EXAMPLE / name).read_text(encoding="utf-8")
                _execute(url, sql.replace("floorlink_reader", reader))
            parsed = make_url(url)
            as_reader = parsed.set(username=reader, password="change-me" if parsed.password else None)
            yield url, (as_reader.render_as_string(hide_password=False)
                        + "?options=-csearch_path%3Dfloorlink_views")
    finally:
        if made:  # the login outlives its database: drop it once the database is gone
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP ROLE IF EXISTS "{reader}"'))
            admin.dispose()


def _execute(url: str, sql: str) -> None:
    """A whole SQL file, as psql would run it (the driver's own parameters left alone)."""
    engine = create_engine(url)
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute(sql)
        raw.commit()
    finally:
        raw.close()
        engine.dispose()


def _sap_now() -> tuple[str, str, datetime]:
    """Now as SAP writes it (site date and time, to the second), and as the instant it is."""
    now = datetime.now(SITE).replace(microsecond=0)
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S"), now


def test_the_erp_example_gives_the_figures_of_its_sample_rows():
    with _erp_example() as (admin_url, url):
        kpis = run("kpis", "--json", "--since", "2026-11-20T00:00", "--as-of", "2026-11-20T10:00",
                   url=url)
        assert kpis.returncode == 0, kpis.stderr
        report = json.loads(kpis.stdout)
        assert report["overall"] == {
            "raised": 4, "response_median_min": 13.0, "response_p90_min": 18.6,
            "resolution_median_min": 60.0, "resolution_p90_min": 60.0,
            "response_sla_met": 1, "response_sla_breached": 2, "response_sla_compliance": 0.3333,
            "resolution_sla_met": 1, "resolution_sla_breached": 0, "resolution_sla_compliance": 1.0,
            "resolution_rate": 0.25, "open": 3, "overdue": 1, "handoffs_mean": 0.5,
            "ping_pong_issues": 1}
        qa = report["by_department"]["QA"]
        assert (qa["raised"], qa["response_sla_compliance"], qa["handoffs_mean"], qa["open"]) \
            == (2, 0.5, 1.0, 1)
        assert report["by_department"]["MNT"]["response_median_min"] == 20.0
        assert report["material"] == {
            "stagnant_lots": 1, "turnover": 0.0531,
            "on_hand": [{"location": "1000-0001", "material": "100001", "qty": 200.0},
                        {"location": "1000-0001", "material": "100002", "qty": 900.0},
                        {"location": "1000-0002", "material": "100001", "qty": 30.0},
                        {"location": "1000-0003", "material": "100001", "qty": 200.0},
                        {"location": "SCRAP", "material": "100001", "qty": 10.0}]}
        assert report["plan_attainment"] == 0.95

        checked = check_source(url=url)
        assert checked.exit_code == 0, checked.output
        assert checked.stdout.splitlines()[-1] == "no problems found 未发现问题"

        engine = db.get_engine(url)
        db.check_schema(engine)  # `serve` accepts the views
        with engine.connect() as conn:
            overview = overview_snapshot(conn, AT_TEN)
            material = material_snapshot(conn, AT_TEN)
        tiles = {name: tile["value"] for name, tile in overview["tiles"].items()}
        assert tiles == {"open": 3, "overdue": 1, "median_response_min": 13.0,
                         "response_sla_compliance": pytest.approx(1 / 3), "resolution_rate": 0.25,
                         "plan_attainment": 0.9}
        board = {row["id"]: row for row in overview["board"]}
        assert set(board) == {"200000002", "200000003", "200000004"}
        assert board["200000002"]["contact"] == "李四" and board["200000003"]["ping_pong"]
        scores = {row["department_code"]: row for row in overview["scoreboard"]}
        assert (scores["QA"]["raised"], scores["QA"]["median_response_min"]) == (3, 5.5)
        assert scores["MNT"]["response_sla_compliance"] == 0.5
        assert [(lot["lot"], lot["location_code"], lot["dwell_min"]) for lot in overview["stagnant"]] \
            == [("B1", "1000-0003", 1500.0)]
        assert overview["data_errors"]["count"] == 0 and overview["failed_panels"] == []
        assert [(s["kind"], s["lots"]) for s in material["stages"] if s["lots"]] == [
            ("iqc", 1), ("warehouse", 2), ("line_side", 1)]

        # The login writes nothing, not even a table of its own.
        with engine.connect() as conn, pytest.raises(exc.DBAPIError, match="read-only transaction"):
            conn.execute(text("CREATE TEMPORARY TABLE scratch (n integer)"))


def test_the_wall_follows_the_erp_through_the_views():
    """A notification entered and one put in process in the ERP reach a wall that is already
    following, by the stamps the views give (their entry and change times)."""
    with _erp_example() as (admin_url, url):
        state = WallState()
        engine = db.get_engine(url)

        def board() -> dict:
            now = timezones.utc_now()
            with engine.connect() as conn:
                return {row["id"]: row for row in overview_from_frames(state.frames(conn, now), now)["board"]}

        assert set(board()) == {"200000002", "200000003", "200000004"}
        day, clock, entered = _sap_now()
        _execute(admin_url, f"""
            INSERT INTO erp.qmel (qmnum, qmart, qmtxt, priok, qmdat, mzeit, erdat, erzeit, ernam,
                                  aedat, arbpl, objnr)
            VALUES ('000200000008', 'Z3', 'L1 钢板缺料', '2', '{day}', '{clock}', '{day}', '{clock}',
                    'WANGWU', '{day}', '10000004', 'QM000200000008');
            INSERT INTO erp.jcds (objnr, stat, chgnr, usnam, udate, utime, inact)
            VALUES ('QM000200000004', 'I0070', '001', 'ZHAOLIU', '{day}', '{clock}', '');""")
        followed = board()
        assert set(followed) == {"200000002", "200000003", "200000004", "200000008"}
        assert followed["200000008"]["raised_ms"] == int(entered.timestamp() * 1000)
        assert followed["200000004"]["acknowledged_ms"] == int(entered.timestamp() * 1000)
        assert followed["200000004"]["contact"] == "赵六"


def test_a_view_that_fails_on_a_row_is_named_and_the_rest_still_checked():
    with _erp_example() as (admin_url, url):
        _execute(admin_url, """
            INSERT INTO erp.qmel (qmnum, qmart, qmtxt, priok, qmdat, mzeit, erdat, erzeit, ernam,
                                  aedat, arbpl, objnr)
            VALUES ('000200000009', 'Q1', '日期录错', '', '20261350', '080000', '20261120', '080000',
                    'WANGWU', '20261120', '10000001', 'QM000200000009');""")
        report = source_check.check_url(url)
        by_table = {f.table: f for f in report.findings}
        assert set(by_table) == {"issues", "issue_events"}
        assert by_table["issues"].problem == "unreadable"
        assert "date/time field value out of range" in by_table["issues"].reason


def test_writing_commands_on_a_read_only_source_end_in_one_line(tmp_path):
    """A source read through views cannot take the demo plant, an import or a token: each
    command says so in one line and leaves the source as it was."""
    listing = tmp_path / "issues.csv"
    listing.write_text("id,issue_type,title,severity,raised_at,owner_department_code,status\n"
                       "X-1,quality_anomaly,t,P1,2026-11-20T09:00:00+08:00,QA,open\n", encoding="utf-8")
    with _erp_example() as (_admin, reader):
        before = check_source(url=reader)
        for args in (["demo"], ["import", "issues", str(listing)]):
            done = run(*args, url=reader)
            assert done.returncode == 1, args
            assert "Traceback" not in done.stderr
            assert done.stderr.startswith("Error: the database refused: cannot ")
            assert "FloorLink may only read this database" in done.stderr
        assert check_source(url=reader).output == before.output
