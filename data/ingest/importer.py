"""Import of one canonical table from a CSV or XLSX file: every row checked, then all or none written.

A file goes through these steps, each a function of its own:

1. read (`_open_sheet`): the header and the non-empty rows, cells as the file holds them, each
   row with the number the user sees in a spreadsheet (the header is row 1);
2. check (`_checked_rows`): the header against the table's format, then every cell (required,
   text, number, enumeration, instant, reference), every row (times in order, no repeated key);
3. write: one transaction of idempotent upserts (data.store.upsert_rows).

Mapping files (the user's own column names, codes and date formats) will be a step between 1
and 2: a function from the user's `_Sheet` to a `_Sheet` of canonical column names and values,
so the checks stay the same for every file. Until then only canonical files are accepted.
"""
from __future__ import annotations

import csv
import math
import re
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Callable, Iterator, Sequence

import openpyxl
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from data import store, timezones
from data.models import (
    CANONICAL_TABLES, EVENT_KINDS, ISSUE_STATUSES, LOCATION_KINDS, SEVERITIES, Issue,
)


class ImportRejected(ValueError):
    """Why a file was refused and where; nothing from the file was written."""

    def __init__(self, file: str, row: int | None, column: str | None, reason: str):
        self.file, self.row, self.column, self.reason = file, row, column, reason
        where = file + (f" row {row}" if row is not None else "")
        where += f", column {column}" if column is not None else ""
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class ImportResult:
    table: str
    rows: int


class _CellError(ValueError):
    """A cell that cannot become a value of its column; the caller adds file, row and column."""


def _show(value: object) -> str:
    """A cell as the user would recognise it in a message: text quoted, dates and numbers bare."""
    return repr(value) if isinstance(value, str) else str(value)


def _text(value: object) -> str:
    """Text as written; a number cell (a code typed as 1001 in Excel) is its plain digits."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise _CellError(f"not text: {_show(value)} (format the column as Text)")


def _number(value: object) -> float:
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
    raise _CellError(f"not a number: {_show(value)}")


def _positive(value: object) -> float:
    number = _number(value)
    if number <= 0:
        raise _CellError(f"must be greater than 0: {_show(value)}")
    return number


def _not_negative(value: object) -> float:
    number = _number(value)
    if number < 0:
        raise _CellError(f"must not be negative: {_show(value)}")
    return number


def _one_of(choices: Sequence[str]) -> Callable[[object], str]:
    def parse(value: object) -> str:
        text = _text(value)
        if text not in choices:
            raise _CellError(f"{text!r} is not one of {', '.join(choices)}")
        return text
    return parse


# A date and a time of day at least: a bare date is no instant.
_ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _instant(value: object) -> datetime:
    """An Excel date/time cell, or ISO 8601 text; naive results are made site-local later."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE_TIME.match(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise _CellError(f"not a date/time: {_show(value)}")


@dataclass(frozen=True)
class Field:
    """One column of an import file and how its cells become values of the table."""
    name: str
    parse: Callable[[object], object] = _text
    required: bool = True
    refers_to: str | None = None
    """The canonical table whose key the value must be (it must already be in the database)."""
    listed: bool = False
    """A `;`-separated list of codes, stored normalised as 'A;B'."""


@dataclass(frozen=True)
class _Context:
    known: dict[str, set | dict]
    site_tz: tzinfo

    def local(self, instant: datetime) -> str:
        return instant.astimezone(self.site_tz).isoformat(sep=" ")


Problem = tuple[str, str]
"""(column, reason) of a row that is inconsistent as a whole."""


def _sla_resolve_after_ack(row: dict, ctx: _Context) -> Problem | None:
    if row["resolve_minutes"] < row["ack_minutes"]:
        return ("resolve_minutes", f"{row['resolve_minutes']:g} is less than ack_minutes "
                                   f"{row['ack_minutes']:g}")
    return None


def _issue_times_after_raised(row: dict, ctx: _Context) -> Problem | None:
    for name in ("acknowledged_at", "resolved_at", "closed_at"):
        at = row.get(name)
        if at is not None and at < row["raised_at"]:
            return (name, f"{ctx.local(at)} is before raised_at {ctx.local(row['raised_at'])}")
    return None


def _event_after_raised(row: dict, ctx: _Context) -> Problem | None:
    raised_at = ctx.known["issues"][row["issue_id"]]
    if row["at"] < raised_at:
        return ("at", f"{ctx.local(row['at'])} is before issue {row['issue_id']} was raised "
                      f"({ctx.local(raised_at)})")
    return None


def _movement_between_two_places(row: dict, ctx: _Context) -> Problem | None:
    if row["from_location_code"] == row["to_location_code"]:
        return ("to_location_code", f"the same as from_location_code ({row['from_location_code']!r})")
    return None


def _shift_ends_after_start(row: dict, ctx: _Context) -> Problem | None:
    if row["shift_end"] <= row["shift_start"]:
        return ("shift_end", f"{ctx.local(row['shift_end'])} is not after shift_start "
                             f"{ctx.local(row['shift_start'])}")
    return None


@dataclass(frozen=True)
class TableFormat:
    """The columns of one canonical table's import file and the checks of a whole row."""
    fields: tuple[Field, ...]
    row_checks: tuple[Callable[[dict, _Context], Problem | None], ...] = ()


FORMATS: dict[str, TableFormat] = {
    "departments": TableFormat((Field("code"), Field("name_zh"), Field("name_en"))),
    "people": TableFormat((
        Field("id"), Field("name"), Field("department_code", refers_to="departments"),
        Field("im_handle", required=False))),
    "sla_rules": TableFormat((
        Field("issue_type"), Field("name_zh"), Field("name_en"),
        Field("owner_department_code", refers_to="departments"),
        Field("notify_department_codes", required=False, refers_to="departments", listed=True),
        Field("ack_minutes", _positive), Field("resolve_minutes", _positive)),
        (_sla_resolve_after_ack,)),
    "locations": TableFormat((
        Field("code"), Field("name"), Field("kind", _one_of(LOCATION_KINDS)),
        Field("line", required=False), Field("max_dwell_minutes", _positive, required=False))),
    "materials": TableFormat((Field("code"), Field("name"), Field("unit"), Field("category"))),
    "issues": TableFormat((
        Field("id"), Field("issue_type", refers_to="sla_rules"), Field("title"),
        Field("severity", _one_of(SEVERITIES)),
        Field("location_code", required=False, refers_to="locations"),
        Field("raised_by", required=False), Field("raised_at", _instant),
        Field("owner_department_code", refers_to="departments"),
        Field("acknowledged_at", _instant, required=False),
        Field("resolved_at", _instant, required=False),
        Field("closed_at", _instant, required=False),
        Field("status", _one_of(ISSUE_STATUSES)), Field("cause", required=False)),
        (_issue_times_after_raised,)),
    # department_code is required: an event without it could not be recognised on re-import,
    # since it is part of the event's key.
    "issue_events": TableFormat((
        Field("issue_id", refers_to="issues"), Field("at", _instant),
        Field("kind", _one_of(EVENT_KINDS)), Field("department_code", refers_to="departments"),
        Field("actor", required=False), Field("note", required=False)),
        (_event_after_raised,)),
    "movements": TableFormat((
        Field("id"), Field("at", _instant), Field("material_code", refers_to="materials"),
        Field("lot"), Field("qty", _positive),
        Field("from_location_code", refers_to="locations"),
        Field("to_location_code", refers_to="locations"), Field("order_ref", required=False)),
        (_movement_between_two_places,)),
    "production_plan": TableFormat((
        Field("line"), Field("shift_start", _instant), Field("shift_end", _instant),
        Field("planned_qty", _not_negative), Field("actual_qty", _not_negative, required=False)),
        (_shift_ends_after_start,)),
}

_NOUNS = {"departments": "department", "sla_rules": "issue type", "locations": "location",
          "materials": "material", "issues": "issue"}


def import_file(engine: Engine, table: str, path: Path) -> ImportResult:
    """Check every row of the file, then upsert them all in one transaction, or raise ImportRejected.

    The first problem found is reported (file, row, column, reason) and nothing is written.
    """
    path = Path(path)
    file = path.name
    if table not in FORMATS:
        raise ImportRejected(file, None, None,
                             f"unknown table {table!r}; the tables are {', '.join(FORMATS)}")
    table_format = FORMATS[table]
    model = CANONICAL_TABLES[table]
    targets = {f.refers_to for f in table_format.fields if f.refers_to}
    # Read what the references need in a transaction of its own: holding one open while the
    # file is read would keep other writers (the simulator) waiting on SQLite.
    with engine.connect() as conn:
        ctx = _Context({target: _existing(conn, target) for target in targets},
                       timezones.site_zone())
    with _open_sheet(path, file) as sheet:
        rows = list(_checked_rows(sheet, table, table_format, ctx))
    with engine.begin() as conn:
        store.upsert_rows(conn, model, rows)
    return ImportResult(table, len(rows))


def _existing(conn: Connection, table: str) -> set | dict:
    """The keys already in `table`; for issues, with when each was raised (events cannot precede it)."""
    if table == "issues":
        return dict(conn.execute(select(Issue.id, Issue.raised_at)).all())
    (key,) = CANONICAL_TABLES[table].__table__.primary_key.columns
    return set(conn.scalars(select(key)))


@dataclass
class _Sheet:
    """A file's column names and its non-empty rows, each with the row number the user sees."""
    file: str
    columns: tuple[str, ...]
    rows: Iterator[tuple[int, dict[str, object]]]


@contextmanager
def _open_sheet(path: Path, file: str) -> Iterator[_Sheet]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield _sheet(file, _csv_lines(handle, file))
    elif suffix == ".xlsx":
        try:
            # Formulas stay text ('=1+1' is imported as written): nothing in a file is evaluated.
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=False)
        except (zipfile.BadZipFile, InvalidFileException, KeyError):
            raise ImportRejected(file, None, None, "not a readable XLSX workbook") from None
        try:
            sheet = workbook.worksheets[0]
            # Some writers record a wrong sheet size; reading to the end does not trust it.
            sheet.reset_dimensions()
            yield _sheet(file, enumerate(sheet.iter_rows(values_only=True), start=1))
        finally:
            workbook.close()
    else:
        raise ImportRejected(file, None, None, "not a .csv or .xlsx file")


def _csv_lines(handle, file: str) -> Iterator[tuple[int, list[str]]]:
    number = 0
    try:
        for number, cells in enumerate(csv.reader(handle), start=1):
            yield number, cells
    except UnicodeDecodeError:
        raise ImportRejected(file, None, None,
                             "not UTF-8 text; save it as 'CSV UTF-8' or as .xlsx") from None
    except csv.Error as exc:
        raise ImportRejected(file, number + 1, None, f"not readable as CSV: {exc}") from None


def _plain(cell: object) -> object:
    """A cell without surrounding spaces; an empty or blank cell is None."""
    if isinstance(cell, str):
        cell = cell.strip()
        return cell or None
    return cell


def _sheet(file: str, lines: Iterator[tuple[int, Sequence]]) -> _Sheet:
    first = next(lines, None)
    if first is None:
        raise ImportRejected(file, None, None, "the file is empty; its first row must name the columns")
    names = [None if name is None else str(name) for name in map(_plain, first[1])]
    for position, name in enumerate(names):
        if name is not None and name in names[:position]:
            raise ImportRejected(file, 1, name, "the column appears twice in the header")
    return _Sheet(file, tuple(n for n in names if n is not None), _records(file, names, lines))


def _records(file: str, names: list[str | None],
             lines: Iterator[tuple[int, Sequence]]) -> Iterator[tuple[int, dict[str, object]]]:
    width = len(names)
    for number, cells in lines:
        values = [_plain(cell) for cell in cells]
        if all(value is None for value in values):
            continue
        for position, value in enumerate(values):
            if value is not None and (position >= width or names[position] is None):
                raise ImportRejected(file, number, get_column_letter(position + 1),
                                     f"a value ({_show(value)}) in a column without a name in the header")
        yield number, {name: value for name, value in zip(names, values) if name is not None}


def _checked_rows(sheet: _Sheet, table: str, table_format: TableFormat,
                  ctx: _Context) -> Iterator[dict[str, object]]:
    """The rows as the table stores them; the first problem found raises ImportRejected."""
    file = sheet.file
    by_name = {f.name: f for f in table_format.fields}
    for name in sheet.columns:
        if name not in by_name:
            raise ImportRejected(file, 1, name, f"unknown column for {table}; the columns are "
                                                f"{', '.join(by_name)}")
    for f in table_format.fields:
        if f.required and f.name not in sheet.columns:
            raise ImportRejected(file, 1, f.name, "this required column is missing from the header")
    model_columns = CANONICAL_TABLES[table].__table__.columns
    present = [(f, getattr(model_columns[f.name].type, "length", None))
               for f in table_format.fields if f.name in sheet.columns]
    key_columns = store.natural_key(CANONICAL_TABLES[table])
    first_row_of_key: dict[tuple, int] = {}
    for number, record in sheet.rows:
        row = {}
        for f, max_length in present:
            try:
                row[f.name] = _value(f, record.get(f.name), max_length, ctx)
            except _CellError as exc:
                raise ImportRejected(file, number, f.name, str(exc)) from None
        for check in table_format.row_checks:
            problem = check(row, ctx)
            if problem:
                raise ImportRejected(file, number, *problem)
        key = tuple(row[k] for k in key_columns)
        if key in first_row_of_key:
            raise ImportRejected(file, number, None, f"the same {', '.join(key_columns)} as row "
                                                     f"{first_row_of_key[key]}; each row needs its own")
        first_row_of_key[key] = number
        yield row


def _value(f: Field, cell: object, max_length: int | None, ctx: _Context) -> object:
    if cell is None:
        if f.required:
            raise _CellError("a value is required")
        return "" if f.listed else None
    value = f.parse(cell)
    if f.refers_to:
        codes = list(dict.fromkeys(c.strip() for c in value.split(";") if c.strip())) if f.listed else [value]
        for code in codes:
            if code not in ctx.known[f.refers_to]:
                raise _CellError(f"unknown {_NOUNS[f.refers_to]} {code!r} (not in {f.refers_to}; "
                                 f"import {f.refers_to} first)")
        if f.listed:
            value = ";".join(codes)
    if isinstance(value, datetime):
        value = timezones.to_utc(value, ctx.site_tz)
    if isinstance(value, str) and max_length is not None and len(value) > max_length:
        raise _CellError(f"longer than {max_length} characters ({len(value)})")
    return value
