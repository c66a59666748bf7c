"""Reading a file into rows of cells, streamed, with every size capped before it can hurt.

A file becomes a `Sheet`: its column names and its non-empty rows in blocks of BLOCK_ROWS,
column by column, each row with the row number a spreadsheet shows (the header is row 1) and
the problems of its cells that no column check could see (a NUL character, a cell over
MAX_CELL_CHARS, an Excel error cell, a formula without the value Excel saved). A block at a
time is held: memory does not grow with the file (bounds in docs/import.md, "Limits").

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
from operator import itemgetter
from pathlib import Path
from typing import Callable, Iterator, Sequence

import openpyxl
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet._reader import FORMULA_TAG, WorkSheetParser

from data.ingest.fields import MAX_CELL_CHARS, Problem, show
from data.ingest.problems import ImportRejected, refuse

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

# Rows read, checked and converted together (a Block): enough that a column of a block is
# converted at the speed of the language's own loops, few enough to hold lightly.
BLOCK_ROWS = 4096

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
class Block:
    """Consecutive non-empty rows of a sheet (at most BLOCK_ROWS), column by column: an import
    converts a column of a block at once, each distinct value once, which is what makes a large
    file quick."""
    numbers: Sequence[int]
    """The row number of each row, as a spreadsheet shows it."""
    columns: dict[str, list]
    """The cells of each wanted column, trimmed; None for an empty cell."""
    problems: dict[int, list[Problem]]
    """The problems of cells no column check sees, by index of their row in the block."""
    text_only: bool = True
    """Every cell is text or None (a CSV): a cell is known by its value alone."""

    def record(self, k: int) -> dict[str, object]:
        """The cells of row `k` of the block, by column."""
        return {name: cells[k] for name, cells in self.columns.items()}

    def rows(self) -> Iterator[Row]:
        problems = self.problems
        for k, number in enumerate(self.numbers):
            yield number, self.record(k), list(problems.get(k, ()))


@dataclass
class Sheet:
    """A file's column names and its non-empty rows, in blocks."""
    file: str
    sheet: str | None
    columns: tuple[str, ...]
    blocks: Iterator[Block]
    read_fraction: Callable[[], float | None] = field(default=lambda: None)
    """How much of the file has been read (0..1), for progress; None when unknown."""

    @property
    def rows(self) -> Iterator[Row]:
        """The non-empty rows one at a time: (row number, cells by column, problems)."""
        for block in self.blocks:
            yield from block.rows()


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
            binary = _Watched(gzip.GzipFile(fileobj=raw) if raw.peek(2)[:2] == b"\x1f\x8b" else raw)
            size = path.stat().st_size or 1
            yield _csv_sheet(file, binary, options, lambda: min(raw.tell() / size, 1.0), wanted)
    else:
        raise refuse(file, "not a .csv, .csv.gz or .xlsx file")


# ---- CSV --------------------------------------------------------------------------------

class _Watched(io.BufferedIOBase):
    """The file's bytes, noting whether a NUL byte or a byte beyond ASCII has been read: most
    files have neither, and then no cell needs looking at for them."""

    def __init__(self, stream):
        super().__init__()
        self.stream, self.nul, self.ascii = stream, False, True

    def readable(self) -> bool:
        return True

    def _seen(self, data: bytes) -> bytes:
        if self.ascii and not data.isascii():
            self.ascii = False
        if not self.nul and b"\x00" in data:
            self.nul = True
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._seen(self.stream.read(size))

    def read1(self, size: int = -1) -> bytes:
        return self._seen(self.stream.read1(size))


def _csv_sheet(file: str, binary, options: ReadOptions, read_fraction: Callable[[], float],
               wanted: frozenset[str] | None) -> Sheet:
    encoding = options.encoding or "utf-8-sig"
    text = io.TextIOWrapper(binary, encoding=encoding, errors="strict", newline="")
    reader = csv.reader(text, delimiter=options.delimiter, strict=True)
    chunks = _csv_chunks(file, reader, options, binary)
    header = next(chunks, None)
    if header is None:
        raise refuse(file, "the file is empty; its first row must name the columns")
    names = _header(file, None, header[1][0])
    if options.delimiter == "," and len([n for n in names if n]) == 1:
        only = next(n for n in names if n)
        for separator, said in ((";", "';'"), ("\t", "a tab"), ("|", "'|'")):
            if separator in only:
                raise refuse(file, f"the header is one column {show(only)}: the file seems "
                                   f"separated by {said}, not by commas; a mapping with "
                                   f"`file: {{delimiter: {separator!r}}}` reads it (docs/import.md)",
                             row=1)
    return Sheet(file, None, tuple(n for n in names if n is not None),
                 _blocks(file, None, names, chunks, wanted, options.encoding is None, text_only=True,
                         ascii_only=lambda: binary.ascii),
                 read_fraction)


Chunk = tuple[Sequence[int], list[list], dict[int, list[tuple[int, str]]]]


def _csv_chunks(file: str, reader, options: ReadOptions, binary: _Watched) -> Iterator[Chunk]:
    """The file's records: the header alone, then BLOCK_ROWS at a time, each chunk as (record
    numbers, cells of each record, {index in the chunk: [(position, reason)] of cells holding a
    NUL character}). A record that cannot be read stops reading after the records before it."""
    number = 0
    ended = 0  # the physical line on which the last whole record ended
    size = 1
    while True:
        # One record more than MAX_ROWS is read, to know that there are too many.
        limit = min(size, MAX_ROWS + 1 - number)
        records: list[list] = []
        append = records.append
        stop = None
        try:
            for cells in reader:
                append(cells)
                ended = reader.line_num
                if len(records) == limit:
                    break
        except UnicodeDecodeError as exc:
            stop = _not_text(file, exc, options)
        except csv.Error as exc:
            stop = _not_csv(file, str(exc), number + len(records) + 1, ended + 1, reader.line_num)
        if number + len(records) > MAX_ROWS:
            records.pop()
            stop = refuse(file, f"more than {MAX_ROWS:,} rows; split the file", row=MAX_ROWS + 1)
        if records:
            bad: dict[int, list[tuple[int, str]]] = {}
            if binary.nul and "\x00" in "".join(map("".join, records)):
                for k, cells in enumerate(records):
                    if any("\x00" in c for c in cells):
                        cells = records[k] = [c.replace("\x00", "\ufffd") for c in cells]
                        bad[k] = [(i, "contains a NUL character") for i, c in enumerate(cells) if "\ufffd" in c]
            yield range(number + 1, number + 1 + len(records)), records, bad
            number += len(records)
        if stop is not None:
            raise stop
        if not records:
            return
        size = BLOCK_ROWS


def _not_text(file: str, exc: UnicodeDecodeError, options: ReadOptions) -> ImportRejected:
    encoding = options.encoding or "UTF-8"
    hint = ("; if it is GBK/GB18030 (the 'CSV' of Chinese Excel), name the encoding in a "
            "mapping: `file: {encoding: gb18030}`, or save it as 'CSV UTF-8' or .xlsx"
            if options.encoding is None else "")
    return refuse(file, f"not {encoding} text: byte 0x{exc.object[exc.start]:02x} cannot be "
                        f"read{hint}")


def _not_csv(file: str, message: str, row: int, start: int, line: int) -> ImportRejected:
    """Why record `row`, which starts on physical line `start`, cannot be read (at `line`)."""
    if "unexpected end of data" in message:
        reason = (f"an unclosed quote: the quoted cell that starts in row {row} (line "
                  f"{start}) runs to the end of the file")
    elif "expected after" in message:
        reason = (f"a quote closes a cell but the cell goes on (line {line}): a quote "
                  "inside a quoted cell must be doubled (\"\"), or an earlier quote was never closed")
    elif "field larger than field limit" in message:
        reason = (f"a cell longer than {CSV_FIELD_LIMIT:,} characters (a cell may hold "
                  f"{MAX_CELL_CHARS:,}); an unclosed quote from line {start}?")
    else:
        reason = f"not readable as CSV (line {line}): {message}"
    return refuse(file, reason, row=row)


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

        def chunks() -> Iterator[Chunk]:
            numbers: list[int] = []
            records: list[list] = []
            bad: dict[int, list[tuple[int, str]]] = {}
            try:
                for number, cells, cells_bad in lines:
                    if cells_bad:
                        bad[len(records)] = cells_bad
                    numbers.append(number)
                    records.append(cells)
                    reached[0] = number
                    if len(records) == BLOCK_ROWS:
                        yield numbers, records, bad
                        numbers, records, bad = [], [], {}
            except ImportRejected:
                if records:  # the rows before the one that stops reading are read first
                    yield numbers, records, bad
                raise
            if records:
                yield numbers, records, bad

        yield Sheet(file, name, tuple(n for n in names if n is not None),
                    _blocks(file, name, names, chunks(), wanted, False, text_only=False),
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


def _blocks(file: str, sheet: str | None, names: list[str | None], chunks: Iterator[Chunk],
            wanted: frozenset[str] | None, check_mojibake: bool, text_only: bool,
            ascii_only: Callable[[], bool] = lambda: False) -> Iterator[Block]:
    """The chunks of records as blocks of the named (and wanted) columns, trimmed; blank rows
    skipped. `ascii_only()`: whether every byte read so far was ASCII (no mojibake to look for)."""
    positions = [(i, n) for i, n in enumerate(names)
                 if n is not None and (wanted is None or n in wanted)]
    unnamed = [i for i, n in enumerate(names) if n is None]
    for numbers, records, bad in chunks:
        block = _block(file, sheet, names, positions, unnamed, numbers, records, bad,
                       check_mojibake, text_only, ascii_only)
        if block.numbers:
            yield block


def _block(file: str, sheet: str | None, names: list[str | None],
           positions: list[tuple[int, str]], unnamed: list[int], numbers: Sequence[int],
           records: list[list], bad: dict[int, list[tuple[int, str]]], check_mojibake: bool,
           text_only: bool, ascii_only: Callable[[], bool]) -> Block:
    """One chunk of records, column by column. A row's problems come in the order of its
    cells: unreadable cells, cells too long, values in columns without a name."""
    width = len(names)

    def column(position: int) -> str:
        return names[position] if position < width and names[position] else get_column_letter(position + 1)

    unreadable = {k: [Problem(column(position), None, reason) for position, reason in cells]
                  for k, cells in bad.items()}
    lengths = set(map(len, records))
    padded = min(lengths) < width
    if padded:
        records = [cells if len(cells) >= width else [*cells, *[None] * (width - len(cells))]
                   for cells in records]
    unnamed_values: dict[int, list[Problem]] = {}
    if unnamed or max(lengths) > width:
        for k, cells in enumerate(records):
            for position in (*unnamed, *range(width, len(cells))):
                value = plain(cells[position])
                if value is not None:
                    unnamed_values.setdefault(k, []).append(Problem(
                        get_column_letter(position + 1), value,
                        f"a value ({show(value)}) in a column without a name in the header"))
    too_long: dict[int, list[Problem]] = {}
    suspects = []
    columns: dict[str, list] = {}
    plain_text = text_only and not padded
    for position, name in positions:
        cells = list(map(itemgetter(position), records))
        if plain_text:
            cells = list(map(str.strip, cells))
            longest = max(map(len, cells))
            if "" in cells:
                cells = [c or None for c in cells]
        else:
            cells = [(c.strip() or None) if c.__class__ is str else c for c in cells]
            longest = max((len(c) for c in cells if c.__class__ is str), default=0)
        if longest > MAX_CELL_CHARS:
            for k, c in enumerate(cells):
                if c.__class__ is str and len(c) > MAX_CELL_CHARS:
                    too_long.setdefault(k, []).append(Problem(
                        name, None, f"longer than {MAX_CELL_CHARS:,} characters ({len(c):,})"))
                    cells[k] = None
        if (check_mojibake and not ascii_only()
                and not "".join(filter(None, cells)).isascii()):  # a CSV: text or None
            for k, c in enumerate(cells):
                if c.__class__ is str and not c.isascii():
                    guess = gbk_guess(c)
                    if guess:
                        suspects.append((k, position, c, guess))
                        break
        columns[name] = cells
    if suspects:
        k, position, value, guess = min(suspects)
        raise refuse(file, f"{show(value)} looks like GBK/GB18030 text read as UTF-8 (as GBK it "
                           f"reads {show(guess)}); name the encoding in a mapping: `file: "
                           "{encoding: gb18030}` (or `encoding: utf-8` to import it as it is)",
                     row=numbers[k], column=names[position], sheet=sheet)
    problems: dict[int, list[Problem]] = {}
    for found in (unreadable, too_long, unnamed_values):
        for k, listed in found.items():
            problems.setdefault(k, []).extend(listed)
    blank = _blank_rows(columns, records, problems)
    if blank:
        kept = [k for k in range(len(records)) if k not in blank]
        numbers = [numbers[k] for k in kept]
        columns = {name: [cells[k] for k in kept] for name, cells in columns.items()}
        problems = {i: problems[k] for i, k in enumerate(kept) if k in problems}
    return Block(numbers, columns, problems, text_only)


def _blank_rows(columns: dict[str, list], records: list[list],
                problems: dict[int, list[Problem]]) -> set[int]:
    """The rows without a problem whose every cell is empty (not only the wanted ones)."""
    candidates = None
    for cells in columns.values():
        if None not in cells:
            return set()
        candidates = ([k for k, c in enumerate(cells) if c is None] if candidates is None
                      else [k for k in candidates if cells[k] is None])
        if not candidates:
            return set()
    if candidates is None:
        candidates = range(len(records))
    return {k for k in candidates
            if k not in problems and all(plain(cell) is None for cell in records[k])}
