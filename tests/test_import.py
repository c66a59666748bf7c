"""Import of canonical files: real CSV (with and without BOM) and XLSX files on both databases."""
from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import create_engine, func, select

from data import store
from data.ingest import importer
from data.models import (
    CANONICAL_TABLES, Department, Issue, IssueEvent, Location, Material, Movement, Person,
    ProductionPlan, SlaRule,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
UTC = timezone.utc


def write(tmp_path: Path, table: str, header: list, rows: list[list], fmt: str = "csv") -> Path:
    """A file as a user would save it: CSV (UTF-8, `csv-bom` with a BOM as Excel writes it) or XLSX."""
    if fmt == "xlsx":
        path = tmp_path / f"{table}.xlsx"
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        for line in [header, *rows]:
            sheet.append(line)
        for cells in sheet.iter_rows():
            for cell in cells:  # typed as '=1+1 in Excel: text, not a formula
                if cell.data_type == "f":
                    cell.data_type = "s"
        workbook.save(path)
        return path
    path = tmp_path / f"{table}.csv"
    with path.open("w", encoding="utf-8-sig" if fmt == "csv-bom" else "utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar()


def seed(engine) -> None:
    """Reference data and one issue raised at 08:00 site time (00:00 UTC)."""
    with engine.begin() as conn:
        store.upsert_rows(conn, Department, [
            {"code": "PRD", "name_zh": "生产部", "name_en": "Production"},
            {"code": "QA", "name_zh": "质量部", "name_en": "Quality"},
            {"code": "WH", "name_zh": "仓库", "name_en": "Warehouse"}])
        store.upsert_rows(conn, SlaRule, [
            {"issue_type": "quality_anomaly", "name_zh": "质量异常", "name_en": "Quality anomaly",
             "owner_department_code": "QA", "notify_department_codes": "PRD",
             "ack_minutes": 10, "resolve_minutes": 240}])
        store.upsert_rows(conn, Location, [
            {"code": "WH1", "name": "Main store", "kind": "warehouse"},
            {"code": "LS1", "name": "Line 1 side", "kind": "line_side", "line": "L1"}])
        store.upsert_rows(conn, Material, [
            {"code": "M-001", "name": "Bracket", "unit": "pcs", "category": "metal"}])
        store.upsert_rows(conn, Issue, [
            {"id": "Q-1", "issue_type": "quality_anomaly", "title": "burr", "severity": "P2",
             "raised_at": datetime(2026, 11, 20, 0, 0, tzinfo=UTC),
             "owner_department_code": "QA", "status": "open"}])


MOVEMENT_HEADER = ["id", "at", "material_code", "lot", "qty", "from_location_code",
                   "to_location_code", "order_ref"]


def movement(n: int, at: object = "2026-11-20 08:00", **changes) -> list:
    row = {"id": f"MV-{n}", "at": at, "material_code": "M-001", "lot": "LOT-1", "qty": "5",
           "from_location_code": "WH1", "to_location_code": "LS1", "order_ref": ""}
    return list({**row, **changes}.values())


@pytest.mark.parametrize("fmt", ["csv", "csv-bom", "xlsx"])
def test_every_table_imports_from_each_format(engine, tmp_path, fmt):
    def load(table, header, rows):
        return importer.import_file(engine, table, write(tmp_path, table, header, rows, fmt))

    assert load("departments", ["code", "name_zh", "name_en"],
                [["PRD", "生产部", "Production"], ["QA", "质量部", "Quality"],
                 ["WH", "仓库", "Warehouse"]]) == importer.ImportResult("departments", 3)
    load("people", ["id", "name", "department_code", "im_handle"],
         [["u1", "张伟", "PRD", "@zhang"], ["u2", "李娜", "QA", ""]])
    load("sla_rules", ["issue_type", "name_zh", "name_en", "owner_department_code",
                       "notify_department_codes", "ack_minutes", "resolve_minutes"],
         [["quality_anomaly", "质量异常", "Quality anomaly", "QA", " PRD ; WH;PRD", "10", "240"],
          ["shortage", "缺料", "Material shortage", "WH", "", "20", "120"]])
    load("locations", ["code", "name", "kind", "line", "max_dwell_minutes"],
         [["WH1", "Main store", "warehouse", "", ""], ["LS1", "Line 1 side", "line_side", "L1", "240"]])
    load("materials", ["code", "name", "unit", "category"], [["M-001", "Bracket", "pcs", "metal"]])
    load("issues", ["id", "issue_type", "title", "severity", "location_code", "raised_by",
                    "raised_at", "owner_department_code", "acknowledged_at", "resolved_at",
                    "closed_at", "status", "cause"],
         [["Q-1", "quality_anomaly", "=1+1", "P2", "LS1", "u1", "2026-11-20 08:00", "QA",
           "2026-11-20T08:07:30", "", "", "acknowledged", "<b>burr</b>"]])
    load("issue_events", ["issue_id", "at", "kind", "department_code", "actor", "note"],
         [["Q-1", "2026-11-20 08:00", "raised", "QA", "u1", ""],
          ["Q-1", "2026-11-20 08:07:30", "acknowledged", "QA", "u2", "on it"]])
    load("movements", MOVEMENT_HEADER, [movement(1, qty="12.5", order_ref="WO-7")])
    load("production_plan", ["line", "shift_start", "shift_end", "planned_qty", "actual_qty"],
         [["L1", "2026-11-20 08:00", "2026-11-20 20:00", "500", ""]])

    with engine.connect() as conn:
        assert conn.execute(select(Person.id, Person.im_handle).order_by(Person.id)).all() == [
            ("u1", "@zhang"), ("u2", None)]
        assert conn.execute(select(SlaRule.issue_type, SlaRule.notify_department_codes)
                            .order_by(SlaRule.issue_type)).all() == [
            ("quality_anomaly", "PRD;WH"), ("shortage", "")]
        assert conn.execute(select(Location.code, Location.line, Location.max_dwell_minutes)
                            .order_by(Location.code)).all() == [("LS1", "L1", 240.0), ("WH1", None, None)]
        issue = conn.execute(select(Issue)).one()
        assert issue.title == "=1+1"
        assert issue.cause == "<b>burr</b>"
        assert issue.raised_at == datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
        assert issue.acknowledged_at == datetime(2026, 11, 20, 0, 7, 30, tzinfo=UTC)
        assert issue.resolved_at is None
        assert conn.execute(select(IssueEvent.kind, IssueEvent.department_code, IssueEvent.note)
                            .order_by(IssueEvent.at)).all() == [
            ("raised", "QA", None), ("acknowledged", "QA", "on it")]
        assert conn.execute(select(Movement.qty, Movement.order_ref)).one() == (12.5, "WO-7")
        plan = conn.execute(select(ProductionPlan)).one()
        assert (plan.shift_start, plan.shift_end, plan.planned_qty, plan.actual_qty) == (
            datetime(2026, 11, 20, 0, 0, tzinfo=UTC), datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
            500.0, None)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_bad_row_names_file_row_and_column_and_nothing_is_written(engine, tmp_path, fmt):
    seed(engine)
    header = ["id", "issue_type", "title", "severity", "raised_at", "owner_department_code", "status"]
    good = [[f"Q-{n}", "quality_anomaly", "burr", "P3", "2026-11-20 09:00", "QA", "open"]
            for n in range(2, 5)]
    bad = ["Q-9", "quality_anomaly", "burr", "P3", "2026-13-01 08:00", "QA", "open"]
    path = write(tmp_path, "issues", header, [*good, bad], fmt)
    with pytest.raises(importer.ImportRejected) as caught:
        importer.import_file(engine, "issues", path)
    suffix = "xlsx" if fmt == "xlsx" else "csv"
    sheet = " sheet 'Sheet'" if fmt == "xlsx" else ""
    assert str(caught.value) == (f"issues.{suffix}{sheet} row 5, column raised_at: "
                                 "not a date/time: '2026-13-01 08:00'")
    assert (caught.value.file, caught.value.row, caught.value.column) == (
        f"issues.{suffix}", 5, "raised_at")
    assert count(engine, Issue) == 1  # the seeded one only


def test_a_bad_last_row_of_a_long_file_writes_no_batch(engine, tmp_path):
    seed(engine)
    rows = [movement(n) for n in range(2500)] + [movement(2500, qty="-1")]
    path = write(tmp_path, "movements", MOVEMENT_HEADER, rows)
    with pytest.raises(importer.ImportRejected, match=r"row 2502, column qty: must be greater than 0"):
        importer.import_file(engine, "movements", path)
    assert count(engine, Movement) == 0


def test_a_missing_department_is_rejected_with_its_row(engine, tmp_path):
    seed(engine)
    path = write(tmp_path, "people", ["id", "name", "department_code"],
                 [["u1", "张伟", "PRD"], ["u2", "李娜", "XX"], ["u3", "王芳", "QA"]])
    with pytest.raises(importer.ImportRejected) as caught:
        importer.import_file(engine, "people", path)
    assert str(caught.value) == ("people.csv row 3, column department_code: unknown department "
                                 "'XX' (not in departments; import departments first)")
    assert count(engine, Person) == 0


@pytest.mark.parametrize("table, header, rows, row, column, reason", [
    ("departments", ["code", "name_zh", "name_en"], [["", "生产部", "Production"]],
     2, "code", "a value is required"),
    ("departments", ["code", "name_zh", "name_en"], [["D" * 33, "x", "x"]],
     2, "code", "longer than 32 characters (33)"),
    ("movements", MOVEMENT_HEADER, [movement(1, qty="0")], 2, "qty", "must be greater than 0: '0'"),
    ("movements", MOVEMENT_HEADER, [movement(1, qty="abc")], 2, "qty", "not a number: 'abc'"),
    ("movements", MOVEMENT_HEADER, [movement(1, qty="nan")], 2, "qty", "not a number: 'nan'"),
    ("movements", MOVEMENT_HEADER, [movement(1, to_location_code="WH1")], 2, "to_location_code",
     "the same as from_location_code ('WH1')"),
    ("movements", MOVEMENT_HEADER, [movement(1, material_code="M-404")], 2, "material_code",
     "unknown material 'M-404'"),
    ("movements", MOVEMENT_HEADER, [movement(1), movement(2), movement(1, lot="LOT-2")], 4, None,
     "the same id as row 2; each row needs its own"),
    ("locations", ["code", "name", "kind"], [["X1", "shelf", "shelf"]], 2, "kind",
     "'shelf' is not one of supplier, receiving, iqc"),
    ("locations", ["code", "name", "kind", "max_dwell_minutes"], [["X1", "x", "wip", "-5"]], 2,
     "max_dwell_minutes", "must be greater than 0: '-5'"),
    ("issues", ["id", "issue_type", "title", "severity", "raised_at", "owner_department_code", "status"],
     [["Q-2", "quality_anomaly", "t", "P5", "2026-11-20 08:00", "QA", "open"]], 2, "severity",
     "'P5' is not one of P1, P2, P3, P4"),
    ("issues", ["id", "issue_type", "title", "severity", "raised_at", "owner_department_code", "status"],
     [["Q-2", "quality_anomaly", "t", "P1", "2026-11-20 08:00", "QA", "done"]], 2, "status",
     "'done' is not one of open, acknowledged"),
    ("issues", ["id", "issue_type", "title", "severity", "raised_at", "owner_department_code", "status"],
     [["Q-2", "leak", "t", "P1", "2026-11-20 08:00", "QA", "open"]], 2, "issue_type",
     "unknown issue type 'leak' (not in sla_rules"),
    ("issues", ["id", "issue_type", "title", "severity", "raised_at", "owner_department_code",
                "resolved_at", "status"],
     [["Q-2", "quality_anomaly", "t", "P1", "2026-11-20 08:00", "QA", "2026-11-20 07:59", "resolved"]],
     2, "resolved_at", "2026-11-20 07:59:00+08:00 is before raised_at 2026-11-20 08:00:00+08:00"),
    ("issues", ["id", "issue_type", "title", "severity", "raised_at", "owner_department_code",
                "closed_at", "status"],
     [["Q-2", "quality_anomaly", "t", "P1", "2026-11-20 08:00", "QA", "", "closed"]],
     2, "closed_at", "status 'closed' needs closed_at, the instant it was closed"),
    ("issues", ["id", "issue_type", "title", "severity", "raised_at", "owner_department_code", "status"],
     [["Q-2", "quality_anomaly", "t", "P1", "2026-11-20 08:00", "QA", "resolved"]],
     2, "resolved_at", "status 'resolved' needs resolved_at, the instant it was resolved"),
    ("issues", ["id", "issue_type", "title", "severity", "raised_at", "owner_department_code", "status"],
     [["Q-2", "quality_anomaly", "t", "p1", "2026-11-20 08:00", "QA", "open"]], 2, "severity",
     "'p1' is not one of P1, P2, P3, P4"),
    ("movements", MOVEMENT_HEADER, [movement(1, qty="1,000")], 2, "qty", "not a number: '1,000'"),
    ("movements", MOVEMENT_HEADER, [movement(1, qty="inf")], 2, "qty", "not a number: 'inf'"),
    ("movements", MOVEMENT_HEADER, [movement(1, at="20/11/2026 08:00")], 2, "at",
     "not a date/time: '20/11/2026 08:00'"),
    ("issue_events", ["issue_id", "at", "kind", "department_code"],
     [["Q-1", "2026-11-20 08:05", "moved", "QA"]], 2, "kind", "'moved' is not one of raised"),
    ("issue_events", ["issue_id", "at", "kind", "department_code"],
     [["Q-404", "2026-11-20 08:05", "commented", "QA"]], 2, "issue_id", "unknown issue 'Q-404'"),
    ("issue_events", ["issue_id", "at", "kind", "department_code"],
     [["Q-1", "2026-11-20 07:55", "commented", "QA"]], 2, "at",
     "2026-11-20 07:55:00+08:00 is before issue Q-1 was raised (2026-11-20 08:00:00+08:00)"),
    ("issue_events", ["issue_id", "at", "kind", "department_code"],
     [["Q-1", "2026-11-20 08:05", "commented", ""]], 2, "department_code", "a value is required"),
    ("sla_rules", ["issue_type", "name_zh", "name_en", "owner_department_code",
                   "notify_department_codes", "ack_minutes", "resolve_minutes"],
     [["leak", "泄漏", "Leak", "QA", "PRD;XX", "10", "60"]], 2, "notify_department_codes",
     "unknown department 'XX'"),
    ("sla_rules", ["issue_type", "name_zh", "name_en", "owner_department_code",
                   "ack_minutes", "resolve_minutes"],
     [["leak", "泄漏", "Leak", "QA", "60", "30"]], 2, "resolve_minutes",
     "30 is less than ack_minutes 60"),
    ("production_plan", ["line", "shift_start", "shift_end", "planned_qty"],
     [["L1", "2026-11-20 08:00", "2026-11-20 08:00", "500"]], 2, "shift_end",
     "2026-11-20 08:00:00+08:00 is not after shift_start 2026-11-20 08:00:00+08:00"),
    ("production_plan", ["line", "shift_start", "shift_end", "planned_qty"],
     [["L1", "2026-11-20", "2026-11-21", "500"]], 2, "shift_start", "not a date/time: '2026-11-20'"),
])
def test_each_rule_names_its_row_and_column(engine, tmp_path, table, header, rows, row, column, reason):
    seed(engine)
    model = CANONICAL_TABLES[table]
    before = count(engine, model)
    with pytest.raises(importer.ImportRejected) as caught:
        importer.import_file(engine, table, write(tmp_path, table, header, rows))
    assert (caught.value.row, caught.value.column) == (row, column)
    assert reason in caught.value.reason
    assert count(engine, model) == before


def test_unknown_table_and_columns_are_errors(engine, tmp_path):
    path = write(tmp_path, "departments", ["code", "name_zh", "name_en"], [["PRD", "生产部", "Production"]])
    with pytest.raises(importer.ImportRejected, match=r"^departments.csv: unknown table 'department'; "
                                                      r"the tables are departments, people,"):
        importer.import_file(engine, "department", path)

    path = write(tmp_path, "departments", ["code", "name_zh", "name_en", "nmae"], [["PRD", "a", "b", "c"]])
    with pytest.raises(importer.ImportRejected, match=r"^departments.csv row 1, column nmae: unknown "
                                                      r"column for departments; the columns are "
                                                      r"code, name_zh, name_en$"):
        importer.import_file(engine, "departments", path)

    path = write(tmp_path, "departments", ["code", "name_zh"], [["PRD", "生产部"]])
    with pytest.raises(importer.ImportRejected, match=r"^departments.csv row 1, column name_en: this "
                                                      r"required column is missing"):
        importer.import_file(engine, "departments", path)

    path = write(tmp_path, "departments", ["code", "name_zh", "name_en", "code"], [["PRD", "a", "b", "c"]])
    with pytest.raises(importer.ImportRejected, match=r"row 1, column code: the column appears twice"):
        importer.import_file(engine, "departments", path)

    path = write(tmp_path, "departments", ["code", "name_zh", "name_en"], [["PRD", "a", "b", "", "extra"]])
    with pytest.raises(importer.ImportRejected, match=r"row 2, column E: a value \('extra'\) in a "
                                                      r"column without a name"):
        importer.import_file(engine, "departments", path)
    assert count(engine, Department) == 0


def test_importing_twice_writes_once_and_updates_values(engine, tmp_path):
    seed(engine)
    plan_header = ["line", "shift_start", "shift_end", "planned_qty", "actual_qty"]
    event_header = ["issue_id", "at", "kind", "department_code", "note"]
    for actual, note in (("480", "first"), ("495", "second")):
        importer.import_file(engine, "movements", write(tmp_path, "movements", MOVEMENT_HEADER,
                                                        [movement(1), movement(2)]))
        importer.import_file(engine, "production_plan", write(
            tmp_path, "production_plan", plan_header,
            [["L1", "2026-11-20 08:00", "2026-11-20 20:00", "500", actual]]))
        importer.import_file(engine, "issue_events", write(
            tmp_path, "issue_events", event_header,
            [["Q-1", "2026-11-20 08:00", "raised", "QA", note],
             ["Q-1", "2026-11-20 08:03", "reassigned", "PRD", note]]))
    assert count(engine, Movement) == 2
    assert count(engine, IssueEvent) == 2
    with engine.connect() as conn:
        assert conn.execute(select(ProductionPlan.actual_qty)).all() == [(495.0,)]
        assert set(conn.scalars(select(IssueEvent.note))) == {"second"}


def test_naive_times_are_site_local_and_offsets_are_honoured(engine, tmp_path, monkeypatch):
    seed(engine)
    rows = [movement(1, at="2026-11-20 08:00"),            # Asia/Shanghai, UTC+8
            movement(2, at="2026-11-20T08:00:00+09:00"),
            movement(3, at="2026-11-20T08:00:00Z"),
            movement(4, at="2026-11-20 08:00:30.250")]
    importer.import_file(engine, "movements", write(tmp_path, "movements", MOVEMENT_HEADER, rows))
    monkeypatch.setenv("SITE_TZ", "Europe/Berlin")          # UTC+1 in November
    importer.import_file(engine, "movements", write(tmp_path, "movements", MOVEMENT_HEADER,
                                                    [movement(5, at="2026-11-20 08:00")]))
    with engine.connect() as conn:
        assert conn.execute(select(Movement.id, Movement.at).order_by(Movement.id)).all() == [
            ("MV-1", datetime(2026, 11, 20, 0, 0, tzinfo=UTC)),
            ("MV-2", datetime(2026, 11, 19, 23, 0, tzinfo=UTC)),
            ("MV-3", datetime(2026, 11, 20, 8, 0, tzinfo=UTC)),
            ("MV-4", datetime(2026, 11, 20, 0, 0, 30, 250000, tzinfo=UTC)),
            ("MV-5", datetime(2026, 11, 20, 7, 0, tzinfo=UTC))]


def test_excel_cells_keep_their_meaning(engine, tmp_path):
    """Date/time cells are site-local instants; a number cell in a text column is its digits."""
    seed(engine)
    rows = [movement(1, at=datetime(2026, 11, 20, 8, 0), lot=1001, qty=7),
            movement(2, at="2026-11-20T10:00:00+08:00", lot="=A2&B2", qty=2.5)]
    path = write(tmp_path, "movements", MOVEMENT_HEADER, rows, "xlsx")
    importer.import_file(engine, "movements", path)
    with engine.connect() as conn:
        assert conn.execute(select(Movement.at, Movement.lot, Movement.qty).order_by(Movement.id)).all() == [
            (datetime(2026, 11, 20, 0, 0, tzinfo=UTC), "1001", 7.0),
            (datetime(2026, 11, 20, 2, 0, tzinfo=UTC), "=A2&B2", 2.5)]

    path = write(tmp_path, "movements", MOVEMENT_HEADER, [movement(3, at=46000.5)], "xlsx")
    with pytest.raises(importer.ImportRejected, match=r"row 2, column at: not a date/time: 46000.5$"):
        importer.import_file(engine, "movements", path)


def test_blank_lines_are_skipped_but_counted_as_rows(engine, tmp_path):
    seed(engine)
    path = tmp_path / "movements.csv"
    lines = [",".join(MOVEMENT_HEADER), ",".join(movement(1)), "", ",,,,,,,",
             ",".join(movement(2, qty="x"))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(importer.ImportRejected, match=r"movements.csv row 5, column qty"):
        importer.import_file(engine, "movements", path)


def test_files_that_are_not_utf8_csv_or_xlsx_are_refused(engine, tmp_path):
    gbk = tmp_path / "departments.csv"
    gbk.write_bytes("code,name_zh,name_en\nPRD,生产部,Production\n".encode("gbk"))
    with pytest.raises(importer.ImportRejected, match=r"^departments.csv: not UTF-8 text"):
        importer.import_file(engine, "departments", gbk)

    fake = tmp_path / "departments.xlsx"
    fake.write_text("code,name_zh,name_en\n", encoding="utf-8")
    with pytest.raises(importer.ImportRejected, match=r"^departments.xlsx: not a readable XLSX workbook$"):
        importer.import_file(engine, "departments", fake)

    with pytest.raises(importer.ImportRejected, match=r"^departments.txt: not a .csv, .csv.gz or .xlsx file$"):
        importer.import_file(engine, "departments", tmp_path / "departments.txt")

    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(importer.ImportRejected, match=r"^empty.csv: the file is empty"):
        importer.import_file(engine, "departments", empty)


def test_docs_describe_every_column_of_every_table():
    """docs/import.md has a section per table whose table lists each column and whether it is required."""
    text = (PROJECT_ROOT / "docs" / "import.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^### `(\w+)`\n(.*?)(?=^### |^## |\Z)", text, re.M | re.S))
    assert set(sections) == set(importer.FORMATS)
    for table, table_format in importer.FORMATS.items():
        documented = dict(re.findall(r"^\| `(\w+)` \| (required|optional) \|", sections[table], re.M))
        assert documented == {f.name: "required" if f.required else "optional"
                              for f in table_format.fields}, table


def test_command_line_import(tmp_path):
    database = tmp_path / "cli.sqlite"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}

    def run(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "app.py", "import", "departments", str(path)],
                              cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)

    good = write(tmp_path, "departments", ["code", "name_zh", "name_en"],
                 [["PRD", "生产部", "Production"], ["QA", "质量部", "Quality"]])
    done = run(good)
    assert done.returncode == 0, done.stderr
    assert "2 rows imported into departments" in done.stdout

    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = write(bad_dir, "departments", ["code", "name_zh", "name_en"],
                [["WH", "仓库", "Warehouse"], ["", "计划部", "Planning"]])
    failed = run(bad)
    assert failed.returncode == 1
    assert "error: departments.csv row 3, column code: a value is required" in failed.stderr

    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        assert conn.execute(select(Department.code, Department.name_en)
                            .order_by(Department.code)).all() == [("PRD", "Production"), ("QA", "Quality")]
    engine.dispose()


ISSUE_HEADER = ["id", "issue_type", "title", "severity", "raised_at", "owner_department_code",
                "acknowledged_at", "resolved_at", "closed_at", "status"]


def test_issues_closed_without_resolution_are_counted(engine, tmp_path):
    seed(engine)
    rows = [["C-1", "quality_anomaly", "t", "P2", "2026-11-20 08:00", "QA", "", "", "2026-11-20 09:00", "closed"],
            ["C-2", "quality_anomaly", "t", "P2", "2026-11-20 08:00", "QA", "2026-11-20 08:05", "",
             "2026-11-20 09:00", "closed"],
            ["C-3", "quality_anomaly", "t", "P2", "2026-11-20 08:00", "QA", "", "2026-11-20 08:30",
             "2026-11-20 09:00", "closed"],
            ["C-4", "quality_anomaly", "t", "P2", "2026-11-20 08:00", "QA", "", "", "2026-11-20 08:10", "cancelled"],
            ["C-5", "quality_anomaly", "t", "P2", "2026-11-20 08:00", "QA", "", "", "", "open"]]
    result = importer.import_file(engine, "issues", write(tmp_path, "issues", ISSUE_HEADER, rows))
    # C-1 and C-2; C-3 was resolved, C-4 cancelled, C-5 is open.
    assert result == importer.ImportResult("issues", 5, closed_without_resolution=2)


def test_cells_are_trimmed_of_surrounding_spaces(engine, tmp_path):
    seed(engine)
    importer.import_file(engine, "people", write(
        tmp_path, "people", [" id ", "name ", " department_code", "im_handle"],
        [["  u1 ", " 张伟\t", " PRD  ", "   "]]))
    importer.import_file(engine, "movements", write(
        tmp_path, "movements", MOVEMENT_HEADER,
        [movement(1, at=" 2026-11-20 08:00 ", qty=" 12.5 ", lot=" LOT-7 ", from_location_code=" WH1")]))
    with engine.connect() as conn:
        assert conn.execute(select(Person.id, Person.name, Person.department_code,
                                   Person.im_handle)).one() == ("u1", "张伟", "PRD", None)
        assert conn.execute(select(Movement.at, Movement.qty, Movement.lot,
                                   Movement.from_location_code)).one() == (
            datetime(2026, 11, 20, 0, 0, tzinfo=UTC), 12.5, "LOT-7", "WH1")


def test_resolve_limit_may_equal_the_acknowledge_limit(engine, tmp_path):
    seed(engine)
    header = ["issue_type", "name_zh", "name_en", "owner_department_code", "ack_minutes",
              "resolve_minutes"]
    importer.import_file(engine, "sla_rules", write(
        tmp_path, "sla_rules", header, [["leak", "泄漏", "Leak", "QA", "30", "30"]]))
    with engine.connect() as conn:
        assert conn.execute(select(SlaRule.ack_minutes, SlaRule.resolve_minutes)
                            .where(SlaRule.issue_type == "leak")).one() == (30, 30)


def test_numbers_in_exponent_form_are_accepted(engine, tmp_path):
    seed(engine)
    importer.import_file(engine, "movements", write(
        tmp_path, "movements", MOVEMENT_HEADER, [movement(1, qty="1e3")]))
    with engine.connect() as conn:
        assert conn.execute(select(Movement.qty)).scalar() == 1000.0


def test_a_column_left_out_keeps_the_stored_values(engine, tmp_path):
    seed(engine)
    header = ["id", "name", "department_code", "im_handle"]
    importer.import_file(engine, "people", write(tmp_path, "people", header,
                                                 [["u1", "张伟", "PRD", "@zhang"]]))
    importer.import_file(engine, "people", write(tmp_path, "people", header[:3],
                                                 [["u1", "张伟伟", "QA"]]))
    with engine.connect() as conn:
        assert conn.execute(select(Person.name, Person.department_code, Person.im_handle)).one() \
            == ("张伟伟", "QA", "@zhang")


def test_a_local_time_that_occurs_twice_is_the_first(engine, tmp_path, monkeypatch):
    """Europe/Berlin turns its clocks back at 03:00 on 2026-10-25: 02:30 happens at +02:00, then at +01:00."""
    seed(engine)
    monkeypatch.setenv("SITE_TZ", "Europe/Berlin")
    importer.import_file(engine, "movements", write(
        tmp_path, "movements", MOVEMENT_HEADER, [movement(1, at="2026-10-25 02:30")]))
    with engine.connect() as conn:
        assert conn.execute(select(Movement.at)).scalar() == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_xlsx_reads_the_first_sheet_and_refuses_a_date_cell_as_text(engine, tmp_path):
    seed(engine)
    path = tmp_path / "departments.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.append(["code", "name_zh", "name_en"])
    workbook.active.append(["ENG", "工程部", "Engineering"])
    other = workbook.create_sheet("notes")
    other.append(["code", "name_zh", "name_en"])
    other.append(["XX", "x", "x"])
    workbook.save(path)
    assert importer.import_file(engine, "departments", path).rows == 1
    with engine.connect() as conn:
        assert set(conn.scalars(select(Department.code))) == {"PRD", "QA", "WH", "ENG"}

    path = write(tmp_path, "departments", ["code", "name_zh", "name_en"],
                 [[datetime(2026, 11, 20), "x", "x"]], "xlsx")
    with pytest.raises(importer.ImportRejected, match=r"row 2, column code: not text: "
                                                      r"2026-11-20 00:00:00 \(format the column as Text\)$"):
        importer.import_file(engine, "departments", path)


def test_command_line_says_how_many_issues_were_closed_without_resolution(tmp_path):
    from data import db

    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    seed(engine)
    engine.dispose()
    rows = [["C-1", "quality_anomaly", "t", "P2", "2026-11-20 08:00", "QA", "", "", "2026-11-20 09:00", "closed"],
            ["C-2", "quality_anomaly", "t", "P2", "2026-11-20 08:00", "QA", "", "", "", "open"]]
    path = write(tmp_path, "issues", ISSUE_HEADER, rows)
    done = subprocess.run([sys.executable, "app.py", "import", "issues", str(path)],
                          cwd=PROJECT_ROOT, env={**os.environ, "DATABASE_URL": url},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == [
        f"{path}: 2 rows imported into issues",
        "1 of them closed without resolved_at: counted as finished at closed_at (docs/kpis.md)"]


def test_bulk_writes_store_what_row_by_row_writes_store(engine):
    """store.upsert_many (an import's batches: COPY on PostgreSQL, many rows a statement on
    SQLite) stores the very values upsert_rows stores, instants to the microsecond as the
    database holds them; a column left out takes its default and, on a key already stored,
    keeps its value; of two rows with one key in a batch the last wins."""
    from datetime import timedelta

    seed(engine)
    instants = [datetime(2026, 11, 20, 0, 0, tzinfo=UTC), datetime(2026, 11, 20, 0, 0, 0, 123456, tzinfo=UTC),
                datetime(2026, 11, 20, 9, 30, 5, 7, tzinfo=timezone(timedelta(hours=9))), None]
    columns = ("id", "issue_type", "title", "severity", "raised_at", "owner_department_code",
               "acknowledged_at", "resolved_at", "status", "cause")

    def issue(key: str, n: int) -> tuple:
        return (key, "quality_anomaly", f"t{n}", "P2", instants[n % 3], "QA", instants[(n + 1) % 4],
                instants[(n + 2) % 4], "acknowledged", f"c{n}")

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # a server whose clock zone is not UTC
            conn.exec_driver_sql("SET LOCAL TIME ZONE 'Asia/Shanghai'")
        store.upsert_rows(conn, Issue, [dict(zip(columns, issue(f"A{n}", n))) for n in range(4)])
        store.upsert_many(conn, Issue, columns, [issue(f"B{n}", n) for n in range(4)])
        store.upsert_rows(conn, SlaRule, [{"issue_type": "a", "name_zh": "甲", "name_en": "A",
                                           "owner_department_code": "QA", "ack_minutes": 5, "resolve_minutes": 9}])
        store.upsert_many(conn, SlaRule, ("issue_type", "name_zh", "name_en", "owner_department_code",
                                          "ack_minutes", "resolve_minutes"),
                          [("b", "甲", "A", "QA", 5, 9), ("b", "乙", "B", "QA", 6, 9)])
    stored = "SELECT title, severity, raised_at, acknowledged_at, resolved_at, status, cause FROM issues WHERE id = '{}'"
    with engine.connect() as conn:
        for n in range(4):
            assert conn.exec_driver_sql(stored.format(f"A{n}")).one() == conn.exec_driver_sql(stored.format(f"B{n}")).one()
        assert conn.execute(select(Issue.acknowledged_at).where(Issue.id == "B1")).scalar() == datetime(
            2026, 11, 20, 0, 30, 5, 7, tzinfo=UTC)
        assert None not in conn.execute(select(Issue.updated_at).where(Issue.id.like("B%"))).scalars().all()
        assert conn.execute(select(SlaRule.issue_type, SlaRule.name_zh, SlaRule.ack_minutes,
                                   SlaRule.notify_department_codes).where(SlaRule.issue_type.in_(["a", "b"]))
                            .order_by(SlaRule.issue_type)).all() == [("a", "甲", 5.0, ""), ("b", "乙", 6.0, "")]

    with engine.begin() as conn:
        store.upsert_rows(conn, SlaRule, [{"issue_type": "b", "name_zh": "乙", "name_en": "B",
                                           "owner_department_code": "QA", "notify_department_codes": "PRD",
                                           "ack_minutes": 6, "resolve_minutes": 9}])
        store.upsert_many(conn, SlaRule, ("issue_type", "name_zh", "name_en", "owner_department_code",
                                          "ack_minutes", "resolve_minutes"), [("b", "丙", "C", "QA", 7, 9)])
        store.upsert_many(conn, Issue, ("id", "issue_type", "title", "severity", "raised_at",
                                        "owner_department_code", "status"),
                          [("B0", "quality_anomaly", "again", "P3", instants[0], "QA", "open")])
    with engine.connect() as conn:
        assert conn.execute(select(SlaRule.name_zh, SlaRule.ack_minutes, SlaRule.notify_department_codes)
                            .where(SlaRule.issue_type == "b")).one() == ("丙", 7.0, "PRD")
        assert conn.execute(select(Issue.title, Issue.status, Issue.cause).where(Issue.id == "B0")).one() == (
            "again", "open", "c0")


def test_an_import_leaves_its_connection_as_it_found_it(engine, tmp_path):
    """The settings an import gives its connection (SQLite: statement journals in memory) are
    undone when it ends, whether it succeeds or is refused."""
    def temp_store() -> int:
        with engine.connect() as conn:
            return conn.exec_driver_sql("PRAGMA temp_store").scalar() if engine.dialect.name == "sqlite" else 0

    before = temp_store()
    good = write(tmp_path, "departments", ["code", "name_zh", "name_en"], [["PRD", "生产部", "Production"]])
    importer.import_file(engine, "departments", good)
    assert temp_store() == before
    bad = write(tmp_path, "departments", ["code", "name_zh", "name_en"], [["", "生产部", "Production"]])
    with pytest.raises(importer.ImportRejected):
        importer.import_file(engine, "departments", bad)
    assert temp_store() == before


def test_bulk_writes_refuse_a_naive_instant(engine):
    seed(engine)
    with pytest.raises(ValueError, match="naive datetime"), engine.begin() as conn:
        store.upsert_many(conn, Issue, ("id", "issue_type", "title", "severity", "raised_at",
                                        "owner_department_code", "status"),
                          [("N1", "quality_anomaly", "t", "P2", datetime(2026, 11, 20, 8, 0), "QA", "open")])
    assert count(engine, Issue) == 1
