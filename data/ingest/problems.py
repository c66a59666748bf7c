"""What was wrong with a file, where: the problems an import collects and the refusal it raises."""
from __future__ import annotations

from dataclasses import dataclass

from data.ingest.fields import show

# Problems listed in a refusal; the rest are counted.
SHOWN_PROBLEMS = 100


@dataclass(frozen=True)
class FileProblem:
    """One problem of a file: the row as a spreadsheet shows it (the header is row 1; None for
    the file as a whole), the column, the value as read and the reason."""
    file: str
    row: int | None
    column: str | None
    value: object
    reason: str
    sheet: str | None = None

    def __str__(self) -> str:
        where = self.file + (f" sheet {self.sheet!r}" if self.sheet else "")
        where += f" row {self.row}" if self.row is not None else ""
        where += f", column {self.column}" if self.column is not None else ""
        return f"{where}: {self.reason}"

    def row_reason(self) -> str:
        """The reason with the value, for a rejects file (file and row are its own columns)."""
        value = "" if self.value is None else f" (value {show(self.value)})"
        return f"{self.column or 'row'}: {self.reason}" + ("" if self.value is None or
                                                          show(self.value) in self.reason else value)


class ImportRejected(ValueError):
    """Why a file was refused and where; nothing from the file was written.

    `problems`: the first SHOWN_PROBLEMS problems found; `total`: how many there were. The
    first problem's file, row, column and reason are attributes of their own.
    """

    def __init__(self, problems: list[FileProblem], total: int | None = None):
        self.problems = problems[:SHOWN_PROBLEMS]
        self.total = len(problems) if total is None else total
        first = problems[0]
        self.file, self.row, self.column, self.reason = first.file, first.row, first.column, first.reason
        self.sheet = first.sheet
        lines = [str(p) for p in self.problems]
        if self.total > len(self.problems):
            lines.append(f"... and {self.total - len(self.problems):,} more problems "
                         f"({self.total:,} in all; the first {len(self.problems)} are listed)")
        elif self.total > 1:
            lines.append(f"{self.total:,} problems in all")
        super().__init__("\n".join(lines))


def refuse(file: str, reason: str, row: int | None = None, column: str | None = None,
           value: object = None, sheet: str | None = None) -> ImportRejected:
    """A refusal of one problem (the file as a whole, or the first that stops reading)."""
    return ImportRejected([FileProblem(file, row, column, value, reason, sheet)])
