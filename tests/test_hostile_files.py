"""Hostile and careless files: each refused with the message that points the right way, and the
database unchanged after each, on SQLite and PostgreSQL; memory bounded while streaming."""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select

from data.ingest import importer
from data.models import Base
from tests.test_import import MOVEMENT_HEADER, movement, seed

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEPT_HEADER = "code,name_zh,name_en\n"


def counts(engine) -> dict:
    with engine.connect() as conn:
        return {t.name: conn.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def csv_file(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def moves(*rows) -> str:
    return ",".join(MOVEMENT_HEADER) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)


def xlsx(tmp_path: Path, name: str, build) -> Path:
    workbook = openpyxl.Workbook()
    build(workbook)
    path = tmp_path / name
    workbook.save(path)
    return path


def hidden_first(workbook):
    hidden = workbook.active
    hidden.title = "old"
    hidden.append(["code", "name_zh", "name_en"])
    hidden.append(["OLD", "x", "x"])
    shown = workbook.create_sheet("部门")
    shown.append(["code", "name_zh", "name_en"])
    shown.append(["NEW", "新", "New"])
    shown.append(["BAD", "x", "#N/A"])
    shown["C3"].data_type = "e"
    hidden.sheet_state = "hidden"
    workbook.active = 1


def only_an_error_cell(workbook):
    workbook.active.append(["code", "name_zh", "name_en"])
    workbook.active.append(["OK", "好", "ok"])
    workbook.active["B3"] = "#N/A"
    workbook.active["B3"].data_type = "e"


def formula_without_value(workbook):
    workbook.active.append(["code", "name_zh", "name_en"])
    workbook.active.append(["F1", "=A2&\"x\"", "x"])


# (name, table, file maker, expected text in the message)
CASES = [
    ("year 3026", "movements", lambda p: csv_file(p, "m.csv", moves(movement(1, at="3026-01-01 08:00"))),
     "row 2, column at: 3026-01-01 08:00:00 is outside the plausible range PLAUSIBLE_FROM 2000-01-01"),
    ("year 1000", "movements", lambda p: csv_file(p, "m.csv", moves(movement(1, at="1000-01-01 08:00"))),
     "row 2, column at: 1000-01-01 08:00:00 is outside the plausible range"),
    ("year 0001", "movements", lambda p: csv_file(p, "m.csv", moves(movement(1, at="0001-01-01 00:00"))),
     "row 2, column at: 0001-01-01 00:00:00 is outside the plausible range"),
    ("year 9999", "movements", lambda p: csv_file(p, "m.csv", moves(movement(1, at="9999-12-31 23:59"))),
     "row 2, column at: 9999-12-31 23:59:00 is outside the plausible range"),
    ("qty 1e308", "movements", lambda p: csv_file(p, "m.csv", moves(movement(1, qty="1e308"))),
     "row 2, column qty: more than 1,000,000,000: '1e308'"),
    ("qty inf", "movements", lambda p: csv_file(p, "m.csv", moves(movement(1, qty="Infinity"))),
     "row 2, column qty: not a number: 'Infinity'"),
    ("limit 999999999", "sla_rules", lambda p: csv_file(
        p, "s.csv", "issue_type,name_zh,name_en,owner_department_code,ack_minutes,resolve_minutes\n"
                    "leak,泄漏,Leak,QA,10,999999999\n"),
     "row 2, column resolve_minutes: more than MAX_LIMIT_MINUTES (525600): '999999999'"),
    ("NUL byte", "departments", lambda p: csv_file(p, "d.csv", DEPT_HEADER + "A\x00B,x,x\n"),
     "row 2, column code: contains a NUL character"),
    ("long cell", "departments", lambda p: csv_file(p, "d.csv", DEPT_HEADER + "X,x," + "y" * 140_000 + "\n"),
     "row 2, column name_en: longer than 131,072 characters (140,000)"),
    ("unclosed quote", "departments", lambda p: csv_file(p, "d.csv", DEPT_HEADER + "A,a,a\nB,\"b,b\nC,c,c\n"),
     "row 3: an unclosed quote: the quoted cell that starts in row 3 (line 3) runs to the end of the file"),
    ("semicolons", "departments", lambda p: csv_file(p, "d.csv", "code;name_zh;name_en\nA;a;a\n"),
     "row 1: the header is one column 'code;name_zh;name_en': the file seems separated by ';'"),
    ("GBK not UTF-8", "departments", lambda p: csv_file(p, "d.csv", (DEPT_HEADER + "PRD,生产部,P\n").encode("gbk")),
     "d.csv: not UTF-8 text: byte 0xc9 cannot be read; if it is GBK/GB18030"),
    ("GBK valid as UTF-8", "departments", lambda p: csv_file(p, "d.csv", (DEPT_HEADER + "LL,卢露,Lu\n").encode("gbk")),
     "row 2, column name_zh: '¬¶' looks like GBK/GB18030 text read as UTF-8 (as GBK it reads '卢露')"),
    ("hidden sheet, error cell", "departments", lambda p: xlsx(p, "d.xlsx", hidden_first),
     "d.xlsx sheet '部门' row 3, column name_en: an Excel error value (#N/A)"),
    ("a row of one error cell is no blank row", "departments", lambda p: xlsx(p, "d.xlsx", only_an_error_cell),
     "d.xlsx sheet 'Sheet' row 3, column name_zh: an Excel error value (#N/A)"),
    ("GBK before an unclosed quote", "departments", lambda p: csv_file(
        p, "d.csv", (DEPT_HEADER + "LL,卢露,Lu\nB,\"b,b\nC,c,c\n").encode("gbk")),
     "d.csv row 2, column name_zh: '¬¶' looks like GBK/GB18030 text read as UTF-8"),
    ("formula without value", "departments", lambda p: xlsx(p, "d.xlsx", formula_without_value),
     "row 2, column name_zh: a formula (=A2&\"x\") with no value saved by Excel"),
    ("not xlsx", "departments", lambda p: csv_file(p, "d.xlsx", b"PK\x03\x04 broken"),
     "d.xlsx: not a readable XLSX workbook"),
    ("every problem listed", "movements", lambda p: csv_file(p, "m.csv", moves(
        *[movement(n, qty="x") for n in range(150)])),
     "... and 50 more problems (150 in all; the first 100 are listed)"),
]


@pytest.mark.parametrize("name, table, make, expected", CASES, ids=[c[0] for c in CASES])
def test_hostile_file_is_refused_and_nothing_changes(engine, tmp_path, name, table, make, expected):
    seed(engine)
    before = counts(engine)
    with pytest.raises(importer.ImportRejected) as caught:
        importer.import_file(engine, table, make(tmp_path))
    assert expected in str(caught.value)
    assert counts(engine) == before


def test_invalid_site_tz_is_one_clear_line(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("SITE_TZ", "Mars/Olympus")
    path = csv_file(tmp_path, "d.csv", DEPT_HEADER + "A,a,a\n")
    with pytest.raises(importer.ImportRejected, match=r"^d.csv: SITE_TZ 'Mars/Olympus' is not an IANA time zone"):
        importer.import_file(engine, "departments", path)


def test_a_local_time_in_a_daylight_saving_gap_is_refused(engine, tmp_path, monkeypatch):
    """Europe/Berlin puts its clocks forward at 02:00 on 2026-03-29: 02:30 never happens."""
    seed(engine)
    monkeypatch.setenv("SITE_TZ", "Europe/Berlin")
    path = csv_file(tmp_path, "m.csv", moves(movement(1, at="2026-03-29 02:30"), movement(2, at="2026-03-29 03:30")))
    with pytest.raises(importer.ImportRejected) as caught:
        importer.import_file(engine, "movements", path)
    assert str(caught.value) == ("m.csv row 2, column at: 2026-03-29 02:30:00 does not exist in "
                                 "Europe/Berlin (the clocks were put forward over it)")


def test_a_zip_bomb_is_refused_by_its_declared_size(engine, tmp_path):
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", b"<sst>" + b"a" * (40 * 1024 * 1024) + b"</sst>")
    assert path.stat().st_size < 200_000
    with pytest.raises(importer.ImportRejected, match="shared text is 40 MB, more than the 32 MB"):
        importer.import_file(engine, "departments", path)


def test_skip_invalid_imports_the_good_rows_and_writes_the_bad_ones(engine, tmp_path):
    seed(engine)
    path = csv_file(tmp_path, "m.csv", moves(movement(1), movement(2, qty="-3"), movement(3)))
    rejects = tmp_path / "m.rejects.csv"
    result = importer.import_file(engine, "movements", path, skip_invalid=True, rejects=rejects)
    assert (result.rows, result.skipped, result.rejects_file) == (2, 1, str(rejects))
    lines = rejects.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "row,problems," + ",".join(MOVEMENT_HEADER)
    assert lines[1].startswith("3,qty: must be greater than 0: '-3',MV-2,")


def test_two_concurrent_imports_into_the_same_lots(engine, tmp_path):
    """Both succeed (the lots' balances are recomputed in turns), none dies with a
    UniqueViolation, and the balance is the sum of both files."""
    seed(engine)
    files = [csv_file(tmp_path, f"m{k}.csv", moves(*[movement(f"{k}-{n}", lot=f"LOT-{n % 20}")
                                                     for n in range(400)])) for k in range(2)]
    errors = []

    def run(path):
        try:
            importer.import_file(engine, "movements", path)
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    from data.models import LotStock
    with engine.connect() as conn:
        assert conn.scalar(select(func.sum(LotStock.qty)).where(LotStock.location_code == "LS1")) == 800 * 5


# The peak of this process's own memory (VmHWM): ru_maxrss would also count the memory of
# the test process it was forked from, which exec leaves in the figure.
MEMORY_PROBE = """
import sys
from data import db
from data.ingest import importer
engine = db.get_engine(sys.argv[1]); db.upgrade_schema(engine)
try:
    importer.import_file(engine, "movements", sys.argv[2])
except importer.ImportRejected as exc:
    print(exc.row, exc.reason)
print(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:')) // 1024)
"""


def test_a_large_csv_with_a_bad_last_row_streams_in_bounded_memory(tmp_path):
    """100,000 movements with a bad last row: refused at that row, and the
    process's peak stays under 300 MB (the stated bound: 200 MB plus 100 bytes a row)."""
    path = tmp_path / "big.csv.gz"
    with gzip.open(path, "wt", newline="") as handle:
        handle.write(",".join(MOVEMENT_HEADER) + "\n")
        for n in range(100_000):
            handle.write(f"MV-{n},2026-11-20 08:00,M-001,LOT-{n % 1000},5,WH1,LS1,WO-{n}\n")
        handle.write("MV-x,2026-11-20 08:00,M-001,LOT-1,-1,WH1,LS1,\n")
    url = f"sqlite:///{tmp_path / 'big.sqlite'}"
    from data import db
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    seed(engine)
    engine.dispose()
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, url, str(path)], cwd=PROJECT_ROOT,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    refused, peak_mb = done.stdout.splitlines()
    assert refused.startswith("100002 must be greater than 0")
    assert int(peak_mb) < 300


LOG_PROBE = """
import sys
from pathlib import Path
from data import db
from data.ingest import importer
engine = db.get_engine(sys.argv[1]); db.upgrade_schema(engine)
result = importer.import_file(engine, "event_log", Path(sys.argv[2]), Path(sys.argv[3]))
print(result.rows, next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:')) // 1024)
"""


def event_log_file(path: Path, cases: int) -> Path:
    """Six updates a case, times spread over a month, 40 teams."""
    from tests.test_event_log import LOG_HEADER

    states = ("New", "Working", "Working", "Done", "Closed", "Working")
    with gzip.open(path, "wt", newline="") as handle:
        handle.write(",".join(LOG_HEADER) + "\n")
        for case in range(cases):
            day, start = 1 + case % 28, (case * 7) % 600
            for step, state in enumerate(states):
                minute = start + step * 5
                handle.write(f"T{case},{step},{day}/3/2026 {8 + minute // 60:02d}:{minute % 60:02d},{state},"
                             f"Team {case % 40},u{case % 300},{'high' if case % 3 else 'low'}\n")
    return path


def test_an_event_log_ten_times_longer_needs_little_more_memory(tmp_path):
    """An event log is read block by block and case by case: 180,000 updates need less than
    30 MB more than 18,000 (the cases seen, to refuse one that comes back, and caches of a
    bounded size), where holding the log would need hundreds."""
    from tests.test_event_log import LOG_MAPPING

    mapping = tmp_path / "log.yaml"
    mapping.write_text(LOG_MAPPING, encoding="utf-8")
    peaks = []
    for cases in (3_000, 30_000):
        url = f"sqlite:///{tmp_path / f'log-{cases}.sqlite'}"
        done = subprocess.run([sys.executable, "-c", LOG_PROBE, url,
                               str(event_log_file(tmp_path / f"log-{cases}.csv.gz", cases)), str(mapping)],
                              cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        issues, peak = map(int, done.stdout.split())
        assert issues == cases
        peaks.append(peak)
    assert peaks[1] - peaks[0] < 30, peaks


@pytest.mark.parametrize("block_rows", [2, 4096])
def test_a_csv_of_more_rows_than_the_cap_is_refused_at_the_first_row_too_many(engine, tmp_path, monkeypatch, block_rows):
    """MAX_ROWS counts the records of the file, the header among them, wherever a block ends."""
    from data.ingest import reading

    monkeypatch.setattr(reading, "BLOCK_ROWS", block_rows)
    monkeypatch.setattr(reading, "MAX_ROWS", 4)
    rows = "".join(f"D{n},x,x\n" for n in range(3))
    assert importer.import_file(engine, "departments", csv_file(tmp_path, "d.csv", DEPT_HEADER + rows)).rows == 3
    with pytest.raises(importer.ImportRejected) as caught:
        importer.import_file(engine, "departments", csv_file(tmp_path, "d.csv", DEPT_HEADER + rows + "D3,x,x\n"))
    assert str(caught.value) == "d.csv row 5: more than 4 rows; split the file"
