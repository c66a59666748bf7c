"""Files a person opens in a spreadsheet: the explorer's CSV and XLSX, an import's rejects.

Text from data may hold what a spreadsheet runs as a formula: `=HYPERLINK(...)` sends a click
to any address, `@SUM(...)`, `+cmd|' /C calc'!A0` and `-2+3` are formulas too, and Excel
takes a tab or a carriage return before them as nothing (OWASP "CSV injection"). Every writer
here passes each cell through `neutralised`: such text gets a leading apostrophe in a CSV and
is a text cell with Excel's quote prefix in a workbook, never a formula. Numbers stay numbers,
negative ones included, and so does text that is only a number ("-3").
"""
from __future__ import annotations

import io
import math
import re
from typing import Iterable

import pandas as pd

# Text a spreadsheet reads as a formula: after any leading white space, = + - or @; or a
# tab or carriage return first, which some spreadsheets drop before reading the rest.
_FORMULA = re.compile(r"\s*[=+\-@]|[\t\r]")
# Text that is a plain decimal number, which a spreadsheet reads as that number.
_PLAIN_NUMBER = re.compile(r" *[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)? *")
# What XML 1.0, and so a workbook, cannot hold (openpyxl refuses a cell holding them).
_NOT_IN_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def runs_as_formula(value: object) -> bool:
    """Whether a spreadsheet would run this cell as a formula."""
    return (isinstance(value, str) and _FORMULA.match(value) is not None
            and _PLAIN_NUMBER.fullmatch(value) is None)


def neutralised(value: object) -> object:
    """The cell as a CSV holds it: text that would run as a formula, behind an apostrophe
    (what a person types in a spreadsheet to keep text text); anything else as it is."""
    return "'" + value if runs_as_formula(value) else value


def neutralised_row(cells: Iterable[object]) -> list[object]:
    return [neutralised(cell) for cell in cells]


def csv_bytes(table: pd.DataFrame) -> bytes:
    """UTF-8 with a byte order mark, so a spreadsheet on a Chinese desktop reads the names;
    the text cells neutralised, the numeric columns as they are."""
    safe = table.copy()
    safe.columns = neutralised_row(table.columns)
    for name in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[name]):
            safe[name] = safe[name].map(neutralised)
    # Lines end in CR LF (RFC 4180), so a cell holding either is quoted, not split.
    return safe.to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


def xlsx_bytes(table: pd.DataFrame) -> bytes:
    """The table as a workbook: numbers as numbers, every text a text cell, and one that
    would run as a formula with the quote prefix, so editing it keeps it text."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append([_xml_text(name) for name in table.columns])
    for row in table.itertuples(index=False):
        sheet.append([None if isinstance(v, float) and math.isnan(v) else _xml_text(v) for v in row])
    for cells in sheet.iter_rows():
        for cell in cells:
            if isinstance(cell.value, str):
                cell.data_type = "s"
                if runs_as_formula(cell.value):
                    cell.quotePrefix = True
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xml_text(value: object) -> object:
    """A text with the control characters a workbook cannot hold shown as U+FFFD."""
    return _NOT_IN_XML.sub("\ufffd", value) if isinstance(value, str) else value
