"""Reading a file into rows of cells, streamed, with every size capped before it can hurt.

A file becomes a `Sheet`: its column names and an iterator of its non-empty rows, each with
the row number a spreadsheet shows (the header is row 1) and the problems of its cells that
no column check could see (a NUL character, a cell over MAX_CELL_CHARS, an Excel error cell,
a formula without the value Excel saved). Rows are read one at a time: memory does not grow
with the file (bounds in docs/import.md, "Limits").

- CSV, plain or gzip-compressed (`.csv.gz`, or gzip bytes under any name), in the encoding
  the mapping names (default UTF-8 with or without BOM; GBK text that happens to be valid
  UTF-8 is refused with a hint), with the mapping's separator.
- XLSX: the sheet the mapping names, else the sheet shown when the workbook opens (never a
  hidden one); the value Excel saved for a formula; declared part sizes checked before
  anything is unpacked.
"""
from __future__ import annotations

import csv
import gzip
import io
import unicodedata
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import openpyxl
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet._reader import FORMULA_TAG, WorkSheetParser

from data.ingest.fields import MAX_CELL_CHARS, Problem, show
from data.ingest.problems import refuse

# A CSV cell longer than this stops reading (the row is named, the column cannot be);
# between MAX_CELL_CHARS and this, the cell is a problem of its row and column.
CSV_FIELD_LIMIT = 8 * MAX_CELL_CHARS
# Rows of one file; Excel's own limit is 1,048,576.
MAX_ROWS = 50_000_000
MAX_XLSX_ROWS = 1_048_576
# What an XLSX may unpack to, by the sizes its parts declare (read before unpacking).
MAX_XLSX_UNPACKED = 512 * 1024 * 1024
# The shared strings are held in memory whole by every XLSX reader: their part is capped.
MAX_SHARED_STRINGS = 32 * 1024 * 1024

csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file, from a mapping's `file` block."""
    encoding: str | None = None
    """None: UTF-8 with or without BOM, and text that reads like GBK mojibake is refused."""
    delimiter: str = ","
    sheet: str | None = None


Row = tuple[int, dict[str, object], list[Problem]]


@dataclass
class Sheet:
    """A file's column names and its non-empty rows: (row number, cells by column, problems)."""
    file: str
    sheet: str | None
    columns: tuple[str, ...]
    rows: Iterator[Row]
    read_fraction: Callable[[], float | None] = field(default=lambda: None)
    """How much of the file has been read (0..1), for progress; None when unknown."""


def is_csv(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".csv", ".csv.gz", ".txt.gz", ".gz"))


@contextmanager
def open_sheet(path: Path, options: ReadOptions = ReadOptions(),
               wanted: frozenset[str] | None = None) -> Iterator[Sheet]:
    """The file's sheet; `wanted`: the only columns whose cells are read (default: all)."""
    file = path.name
    name = file.lower()
    if name.endswith(".xlsx"):
        with _xlsx_sheet(path, file, options, wanted) as sheet:
            yield sheet
    elif is_csv(path):
        with path.open("rb") as raw:
            binary = gzip.GzipFile(fileobj=raw) if raw.peek(2)[:2] == b"\x1f\x8b" else raw
            size = path.stat().st_size or 1
            yield _csv_sheet(file, binary, options, lambda: min(raw.tell() / size, 1.0), wanted)
    else:
        raise refuse(file, "not a .csv, .csv.gz or .xlsx file")


# ---- CSV --------------------------------------------------------------------------------

class _Lines:
    """The text's lines for csv.reader, noting NUL characters and the physical line reached."""

    def __init__(self, text: io.TextIOBase):
        self.text, self.line, self.nul = text, 0, False

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.text.readline()
        if not line:
            raise StopIteration
        self.line += 1
        if "\x00" in line:
            self.nul = True
        return line


def _csv_sheet(file: str, binary, options: ReadOptions, read_fraction: Callable[[], float],
               wanted: frozenset[str] | None) -> Sheet:
    encoding = options.encoding or "utf-8-sig"
    text = io.TextIOWrapper(binary, encoding=encoding, errors="strict", newline="")
    lines = _Lines(text)
    reader = csv.reader(lines, delimiter=options.delimiter, strict=True)
    records = _csv_records(file, reader, lines, options)
    header = next(records, None)
    if header is None:
        raise refuse(file, "the file is empty; its first row must name the columns")
    names = _header(file, None, header[1])
    if options.delimiter == "," and len([n for n in names if n]) == 1:
        only = next(n for n in names if n)
        for separator, said in ((";", "';'"), ("\t", "a tab"), ("|", "'|'")):
            if separator in only:
                raise refuse(file, f"the header is one column {show(only)}: the file seems "
                                   f"separated by {said}, not by commas; a mapping with "
                                   f"`file: {{delimiter: {separator!r}}}` reads it (docs/import.md)",
                             row=1)
    return Sheet(file, None, tuple(n for n in names if n is not None),
                 _rows(file, None, names, _csv_cells(records), wanted, options.encoding is None),
                 read_fraction)


def _csv_records(file: str, reader, lines: _Lines,
                 options: ReadOptions) -> Iterator[tuple[int, list[str], int]]:
    """(record number, cells, first physical line) of each record."""
    number = 0
    start = 1
    try:
        for number, cells in enumerate(reader, start=1):
            if number > MAX_ROWS:
                raise refuse(file, f"more than {MAX_ROWS:,} rows; split the file", row=number)
            if lines.nul:
                lines.nul = False
                cells = [c.replace("\x00", "\ufffd") if "\x00" in c else c for c in cells]
                yield number, cells, -start
            else:
                yield number, cells, start
            start = lines.line + 1
    except UnicodeDecodeError as exc:
        encoding = options.encoding or "UTF-8"
        hint = ("; if it is GBK/GB18030 (the 'CSV' of Chinese Excel), name the encoding in a "
                "mapping: `file: {encoding: gb18030}`, or save it as 'CSV UTF-8' or .xlsx"
                if options.encoding is None else "")
        raise refuse(file, f"not {encoding} text: byte 0x{exc.object[exc.start]:02x} cannot be "
                           f"read{hint}") from None
    except csv.Error as exc:
        message = str(exc)
        row = number + 1
        if "unexpected end of data" in message:
            reason = (f"an unclosed quote: the quoted cell that starts in row {row} (line "
                      f"{start}) runs to the end of the file")
        elif "expected after" in message:
            reason = (f"a quote closes a cell but the cell goes on (line {lines.line}): a quote "
                      "inside a quoted cell must be doubled (\"\"), or an earlier quote was never closed")
        elif "field larger than field limit" in message:
            reason = (f"a cell longer than {CSV_FIELD_LIMIT:,} characters (a cell may hold "
                      f"{MAX_CELL_CHARS:,}); an unclosed quote from line {start}?")
        else:
            reason = f"not readable as CSV (line {lines.line}): {message}"
        raise refuse(file, reason, row=row) from None


def _csv_cells(records) -> Iterator[tuple[int, list, list[tuple[int, str]]]]:
    """Cells of each record, with the (position, reason) of cells holding a NUL character."""
    for number, cells, start in records:
        bad = ([(i, "contains a NUL character") for i, c in enumerate(cells) if "\ufffd" in c]
               if start < 0 else [])
        yield number, cells, bad


def gbk_guess(cell: str) -> str | None:
    """The text a cell would be if its UTF-8 bytes were GBK, when that is the likelier reading:
    GBK Chinese whose bytes happen to be valid UTF-8 reads as a run of Latin-1 symbols and
    letters of several scripts ('卢露' as '¬¶'); real accented names ('Müller') do not."""
    odd = [c for c in cell if ord(c) > 127]
    if len(odd) < 2 or any(ord(c) > 0x7FF for c in odd):
        return None
    try:
        decoded = cell.encode("utf-8").decode("gb18030")
    except UnicodeDecodeError:
        return None
    if sum("\u4e00" <= c <= "\u9fff" for c in decoded) * 2 < len(odd):
        return None
    scripts = {unicodedata.name(c, "?").split()[0] for c in odd if unicodedata.category(c).startswith("L")}
    symbols = any(not unicodedata.category(c).startswith("L") for c in odd)
    return decoded if symbols or len(scripts) > 1 else None


# ---- XLSX -------------------------------------------------------------------------------

class _SavedValues(WorkSheetParser):
    """Cells with the value Excel saved for each formula; a formula saved without one is
    marked as such (data_only reading alone would make it an empty cell)."""

    def parse_cell(self, element):
        cell = super().parse_cell(element)
        if cell["value"] is None and element.find(FORMULA_TAG) is not None:
            cell["data_type"] = "formula"
            cell["value"] = "=" + (element.findtext(FORMULA_TAG) or "")
        return cell


def _check_parts(path: Path, file: str) -> None:
    """Refuse a workbook whose parts declare more than the caps, before unpacking any."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        raise refuse(file, "not a readable XLSX workbook") from None
    total = sum(p.file_size for p in parts)
    if total > MAX_XLSX_UNPACKED:
        raise refuse(file, f"the workbook unpacks to {total / 2**20:,.0f} MB (by the sizes its "
                           f"parts declare), more than the {MAX_XLSX_UNPACKED // 2**20} MB an "
                           "import reads; split it or save it as CSV")
    for part in parts:
        if part.filename.lower().endswith("sharedstrings.xml") and part.file_size > MAX_SHARED_STRINGS:
            raise refuse(file, f"the workbook's shared text is {part.file_size / 2**20:,.0f} MB, "
                               f"more than the {MAX_SHARED_STRINGS // 2**20} MB an import holds "
                               "in memory; save it as CSV")


@contextmanager
def _xlsx_sheet(path: Path, file: str, options: ReadOptions,
                wanted: frozenset[str] | None) -> Iterator[Sheet]:
    _check_parts(path, file)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError):
        raise refuse(file, "not a readable XLSX workbook") from None
    try:
        worksheet = _chosen(workbook, file, options.sheet)
        name = worksheet.title
        lines = _xlsx_lines(workbook, worksheet, file, name)
        header = next(lines, None)
        if header is None:
            raise refuse(file, "the sheet is empty; its first row must name the columns", sheet=name)
        names = _header(file, name, header[1])
        total = worksheet.max_row if isinstance(worksheet.max_row, int) and worksheet.max_row > 1 else None
        reached = [1]

        def counted():
            for item in lines:
                reached[0] = item[0]
                yield item

        yield Sheet(file, name, tuple(n for n in names if n is not None),
                    _rows(file, name, names, counted(), wanted, False),
                    lambda: min(reached[0] / total, 1.0) if total else None)
    finally:
        workbook.close()


def _chosen(workbook, file: str, wanted: str | None):
    visible = [s for s in workbook.worksheets if s.sheet_state == "visible"]
    if wanted is not None:
        if wanted in workbook.sheetnames:
            return workbook[wanted]
        raise refuse(file, f"no sheet {wanted!r} (the mapping's file.sheet); the sheets are "
                           f"{', '.join(map(repr, workbook.sheetnames))}")
    if not visible:
        raise refuse(file, "every sheet of the workbook is hidden; name one in a mapping "
                           "(`file: {sheet: NAME}`)")
    active = workbook.active
    return active if active is not None and active.sheet_state == "visible" else visible[0]


def _xlsx_lines(workbook, worksheet, file: str, name: str) -> Iterator[tuple[int, list, list]]:
    """(row number, cells, [(position, reason)]) of each row of the sheet, as Excel numbers it."""
    with worksheet._get_source() as source, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser = _SavedValues(source, workbook.shared_strings, data_only=True,
                              epoch=workbook.epoch, date_formats=workbook._date_formats,
                              timedelta_formats=workbook._timedelta_formats)
        for number, cells in parser.parse():
            if number > MAX_XLSX_ROWS:
                raise refuse(file, f"more than {MAX_XLSX_ROWS:,} rows (Excel's own limit)",
                             row=number, sheet=name)
            width = max((c["column"] for c in cells), default=0)
            values: list = [None] * width
            bad: list[tuple[int, str]] = []
            for cell in cells:
                position, value = cell["column"] - 1, cell["value"]
                kind = cell["data_type"]
                if kind == "e":
                    bad.append((position, f"an Excel error value ({value}): correct the "
                                          "formula or clear the cell"))
                elif kind == "formula":
                    bad.append((position, f"a formula ({value[:40]}) with no value saved by "
                                          "Excel: open the file in Excel and save it, or paste "
                                          "the values"))
                elif isinstance(value, str) and len(value) > MAX_CELL_CHARS:
                    bad.append((position, f"longer than {MAX_CELL_CHARS:,} characters ({len(value):,})"))
                elif isinstance(value, str) and "\x00" in value:
                    bad.append((position, "contains a NUL character"))
                else:
                    values[position] = value
                    continue
                values[position] = None
            yield number, values, bad


# ---- both -------------------------------------------------------------------------------

def plain(cell: object) -> object:
    """A cell without surrounding spaces; an empty or blank cell is None."""
    if isinstance(cell, str):
        cell = cell.strip()
        return cell or None
    return cell


def _header(file: str, sheet: str | None, cells: Sequence) -> list[str | None]:
    names = [None if name is None else str(name) for name in map(plain, cells)]
    for position, name in enumerate(names):
        if name is not None and name in names[:position]:
            raise refuse(file, "the column appears twice in the header", row=1, column=name, sheet=sheet)
    return names


def _rows(file: str, sheet: str | None, names: list[str | None],
          lines: Iterator[tuple[int, Sequence, list[tuple[int, str]]]],
          wanted: frozenset[str] | None, check_mojibake: bool) -> Iterator[Row]:
    """Records of the named (and wanted) columns, trimmed; blank rows skipped."""
    width = len(names)
    positions = [(i, n) for i, n in enumerate(names)
                 if n is not None and (wanted is None or n in wanted)]
    unnamed = [i for i, n in enumerate(names) if n is None]

    def column(position: int) -> str:
        return names[position] if position < width and names[position] else get_column_letter(position + 1)

    for number, cells, bad in lines:
        problems = [Problem(column(position), None, reason) for position, reason in bad] if bad else []
        count = len(cells)
        record = {}
        filled = False
        for position, name in positions:
            value = cells[position] if position < count else None
            if value.__class__ is str:
                value = value.strip() or None
                if value is not None:
                    if len(value) > MAX_CELL_CHARS:
                        problems.append(Problem(name, None, f"longer than {MAX_CELL_CHARS:,} "
                                                            f"characters ({len(value):,})"))
                        value = None
                    elif check_mojibake and not value.isascii():
                        guess = gbk_guess(value)
                        if guess:
                            raise refuse(file, f"{show(value)} looks like GBK/GB18030 text read as "
                                               f"UTF-8 (as GBK it reads {show(guess)}); name the "
                                               "encoding in a mapping: `file: {encoding: gb18030}` "
                                               "(or `encoding: utf-8` to import it as it is)",
                                         row=number, column=name, sheet=sheet)
                    else:
                        filled = True
            elif value is not None:
                filled = True
            record[name] = value
        if unnamed or count > width:
            for position in (*unnamed, *range(width, count)):
                value = plain(cells[position]) if position < count else None
                if value is not None:
                    problems.append(Problem(get_column_letter(position + 1), value,
                                            f"a value ({show(value)}) in a column without a name "
                                            "in the header"))
        if not filled and not problems and not any(plain(cell) is not None for cell in cells):
            continue
        yield number, record, problems
