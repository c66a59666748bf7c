"""Mapping files: a plant's own CSV/XLSX (Chinese headers, codes, day-first and Excel dates,
`?` empties, GBK, several sheets) into canonical tables, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from data.ingest import importer
from data.models import Department, Issue
from tests.test_import import seed

UTC = timezone.utc
MAPPING = """
table: issues
file: {encoding: %s}
empty: ["?"]
date_formats: ["d/m/yyyy HH:MM", excel, iso]
columns:
  id: 单号
  issue_type: {column: 类型, values: {质量异常: quality_anomaly}}
  title: {template: "{工位} {描述}"}
  severity: {column: 等级, values: {一级: P1, 二级: P2}}
  raised_at: 发起时间
  owner_department_code: {column: 部门, rewrite: ['^(\\w+)部$', '\\1']}
  acknowledged_at: 响应时间
  status: {value: open}
"""
HEADER = "单号,类型,工位,描述,等级,发起时间,部门,响应时间\n"
ROWS = ("Q-2,质量异常,L1,毛刺,一级,2/11/2026 08:05,QA部,?\n"
        "Q-3,质量异常,L2,划伤,二级,2026-11-02T09:00:00+09:00,QA部,2/11/2026 08:30\n")


def write_mapping(tmp_path: Path, encoding: str = "utf-8") -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING % encoding, encoding="utf-8")
    return path


def stored(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(select(Issue.id, Issue.title, Issue.severity, Issue.raised_at,
                                   Issue.acknowledged_at).where(Issue.id != "Q-1").order_by(Issue.id)).all()


EXPECTED = [("Q-2", "L1 毛刺", "P1", datetime(2026, 11, 2, 0, 5, tzinfo=UTC), None),
            ("Q-3", "L2 划伤", "P2", datetime(2026, 11, 2, 0, 0, tzinfo=UTC),
             datetime(2026, 11, 2, 0, 30, tzinfo=UTC))]


@pytest.mark.parametrize("encoding, bom", [("utf-8", True), ("gb18030", False), ("gbk", False)])
def test_chinese_headers_codes_day_first_dates_offsets_and_empties(engine, tmp_path, encoding, bom):
    seed(engine)
    path = tmp_path / "异常.csv"
    path.write_bytes((HEADER + ROWS).encode("utf-8-sig" if bom else encoding))
    result = importer.import_file(engine, "issues", path, write_mapping(tmp_path, encoding))
    assert result.rows == 2
    assert stored(engine) == EXPECTED


def test_gbk_without_the_encoding_is_a_clear_error(engine, tmp_path):
    seed(engine)
    path = tmp_path / "异常.csv"
    path.write_bytes((HEADER + ROWS).encode("gbk"))
    with pytest.raises(importer.ImportRejected, match="not UTF-8 text: .*encoding: gb18030"):
        importer.import_file(engine, "issues", path, _without_encoding(tmp_path))
    assert stored(engine) == []


def _without_encoding(tmp_path: Path) -> Path:
    path = tmp_path / "plain.yaml"
    path.write_text((MAPPING % "utf-8").replace("file: {encoding: utf-8}\n", ""), encoding="utf-8")
    return path


def test_xlsx_named_sheet_excel_serial_dates_and_duplicates(engine, tmp_path):
    seed(engine)
    workbook = openpyxl.Workbook()
    workbook.active.title = "说明"
    workbook.active.append(["这是说明页"])
    sheet = workbook.create_sheet("异常")
    sheet.append(HEADER.strip().split(","))
    sheet.append(["Q-2", "质量异常", "L1", "毛刺", "一级", 46328.25, "QA部", None])
    sheet.append(["Q-2", "质量异常", "L1", "毛刺", "一级", 46328.25, "QA部", None])
    path = tmp_path / "异常.xlsx"
    workbook.save(path)
    mapping = tmp_path / "m.yaml"
    mapping.write_text((MAPPING % "utf-8").replace("file: {encoding: utf-8}", "file: {sheet: 异常}"),
                       encoding="utf-8")
    with pytest.raises(importer.ImportRejected) as caught:
        importer.import_file(engine, "issues", path, mapping)
    assert str(caught.value) == "异常.xlsx sheet '异常' row 3: the same id as row 2; each row needs its own"
    sheet.delete_rows(3)
    workbook.save(path)
    importer.import_file(engine, "issues", path, mapping)
    assert stored(engine)[0][3] == datetime(2026, 11, 1, 22, 0, tzinfo=UTC)  # 2026-11-02 06:00 site time


@pytest.mark.parametrize("text, key, reason", [
    ("table: issues\ncolumns: {id: {column: a, value: b}}\n", "columns.id", "give exactly one of"),
    ("table: issues\ndate_formats: ['yyyy/dd']\n", "date_formats[0]", "needs a year"),
    ("table: issues\ntime_zone: Mars/Base\n", "time_zone", "not an IANA time zone"),
    ("table: issues\ncolumns: {nmae: a}\n", "columns.nmae", "issues has no column 'nmae'"),
    ("table: issues\nfile: {encoding: klingon}\n", "file.encoding", "unknown encoding"),
    ("table: departments\n", "table", "this mapping is for 'departments', not 'issues'"),
    ("table: issues\ncolumns: {id: 单号}\n", "columns.issue_type", "required for issues"),
])
def test_a_mapping_error_names_its_key(engine, tmp_path, text, key, reason):
    seed(engine)
    mapping = tmp_path / "bad.yaml"
    mapping.write_text(text, encoding="utf-8")
    path = tmp_path / "异常.csv"
    path.write_bytes((HEADER + ROWS).encode("utf-8"))
    with pytest.raises(importer.MappingError) as caught:
        importer.import_file(engine, "issues", path, mapping)
    assert caught.value.key == key and reason in caught.value.reason


def test_creates_each_department_a_file_names(engine, tmp_path):
    mapping = tmp_path / "d.yaml"
    mapping.write_text("table: people\ncolumns: {id: 工号, name: 姓名, department_code: {column: 部门, "
                       "rewrite: ['^部门(\\d+)$', 'D\\1']}}\ncreates:\n  departments:\n"
                       "    each: {name_zh: '{value}', name_en: 'Department {code}'}\n", encoding="utf-8")
    path = tmp_path / "人员.csv"
    path.write_text("工号,姓名,部门\nu1,张伟,部门7\nu2,李娜,部门7\n", encoding="utf-8")
    result = importer.import_file(engine, "people", path, mapping)
    assert (result.rows, result.created) == (2, {"departments": 1})
    with engine.connect() as conn:
        assert conn.execute(select(Department.code, Department.name_zh, Department.name_en)).all() == [
            ("D7", "部门7", "Department D7")]
