"""Import of one file: a canonical table, in its own columns or the user's through a mapping,
or an event log into issues and their events. Every row checked; all or nothing written.

A file goes through these steps, each a module of its own:

1. read (data/ingest/reading.py): the header and the non-empty rows, streamed, each with the
   row number the user sees (the header is row 1) and the problems of cells no column check
   sees (NUL, oversized, Excel errors, formulas without a saved value);
2. map (data/ingest/mapping.py, with `--mapping`): the user's columns, codes and date formats
   to canonical names and raw values;
3. check (data/ingest/fields.py, the rulebook the ingest API shares): every value, every row,
   no key twice in the file; for an event log, each case's rows become an issue and its
   events (data/ingest/event_log.py);
4. write: batches of idempotent upserts (data.store.upsert_many) inside one transaction,
   which commits only when no problem was found (or, with `skip_invalid`, with the good rows
   while the bad ones go to a rejects file).

Every problem is collected (the first SHOWN_PROBLEMS listed, all counted), not only the first.
"""
from __future__ import annotations

import csv
import queue
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from data import exports, store, timezones
from data.ingest import event_log, fields, reading
from data.ingest.fields import FORMATS, Problem, Rules
from data.ingest.mapping import EVENT_LOG, LOG_DECIDES, ColumnRule, Mapping, MappingError, load
from data.ingest.problems import SHOWN_PROBLEMS, FileProblem, ImportRejected, refuse
from data.ingest.progress import Progress
from data.lifecycle import LifecycleError
from data.models import CANONICAL_TABLES, Issue

__all__ = ["FORMATS", "ImportRejected", "ImportResult", "MappingError", "TABLES", "import_file"]

TABLES = (*FORMATS, EVENT_LOG)
# Rows held before a batch is written; bounds the memory of an import whatever its size.
_BATCH_ROWS = 10_000
# Distinct cells of one column of an event log whose reading is kept; bounds that memory.
_MEMO_CELLS = 32_768
_EVENT_COLUMNS = ("issue_id", "at", "kind", "department_code", "actor", "note")
_ISSUE_COLUMNS = tuple(f.name for f in FORMATS["issues"].fields)
# The key column of each table a mapping may add rows to.
_KEY = {"departments": "code", "locations": "code", "materials": "code",
        "sla_rules": "issue_type", "people": "id"}
# Tables in the order their rows must be written (a row refers only to earlier tables).
_WRITE_ORDER = ("departments", "locations", "materials", "people", "sla_rules", "issues",
                "issue_events", "movements", "production_plan")


@dataclass(frozen=True)
class ImportResult:
    table: str
    rows: int
    closed_without_resolution: int = 0
    """Issues closed without resolved_at: the KPIs count them finished at closed_at."""
    skipped: int = 0
    """Rows left out with `skip_invalid`, written with their reasons to `rejects_file`."""
    rejects_file: str | None = None
    future: int = field(default=0, compare=False)
    """Instants ahead of the clock (imported, but worth a look)."""
    sheet: str | None = field(default=None, compare=False)
    """The XLSX sheet read."""
    created: dict = field(default_factory=dict)
    """Rows a mapping's `creates` added, by table."""
    summary: dict = field(default_factory=dict)
    """An event log's counts (event_log.SUMMARY_WORDS)."""


def import_file(engine: Engine, table: str, path: Path, mapping: Path | None = None, *,
                skip_invalid: bool = False, rejects: Path | None = None,
                progress: Progress | None = None, account: str | None = None) -> ImportResult:
    """Import `path` into `table` (or, for `event_log`, into issues and issue_events). The
    events written are recorded by `import:<file name> (<account>)`; `account` is who runs
    the import, by default this process's account on the machine.

    Raises ImportRejected (every problem, nothing written) or MappingError (the mapping's key).
    """
    path = Path(path)
    file = path.name
    if table not in TABLES:
        raise refuse(file, f"unknown table {table!r}; the tables are {', '.join(TABLES)}")
    loaded = load(mapping, table) if mapping is not None else None
    if table == EVENT_LOG and loaded is None:
        raise refuse(file, "an event log needs a mapping (--mapping M.yaml) that says which "
                           "columns are the case, the time and the state (docs/mappings/README.md)")
    try:
        rules = Rules(zone=loaded.zone() if loaded else None)
    except fields.SettingError as exc:
        raise refuse(file, str(exc)) from None
    run = (_LogImport if table == EVENT_LOG else _TableImport)(
        engine, table, path, loaded, rules, skip_invalid, rejects, progress or Progress(enabled=False),
        store.import_writer(file, account or store.os_account()))
    return run.go()


def default_rejects(path: Path) -> Path:
    """Where `--skip-invalid` writes the bad rows by default: beside the working directory,
    named after the file (the input's own folder may be read-only)."""
    name = path.name
    for suffix in (".gz", ".csv", ".xlsx", ".txt"):
        name = name.removesuffix(suffix)
    return Path.cwd() / f"{name}.rejects.csv"


class _Writer:
    """Writes an import's batches in its transaction. On PostgreSQL, whose work happens in a
    process of its own, on a thread of its own, while the next batch is read and checked:
    the database works on the second core meanwhile. One batch waits at most, so memory stays
    bounded; a failed write fails the import at its next batch, or at the end, and the thread
    has stopped before the transaction ends. SQLite works inside this process, under the
    interpreter's lock: there a second thread would only wait for the first, so it writes
    in turn."""

    def __init__(self, conn: Connection, recorded_by: str):
        self.conn, self.recorded_by = conn, recorded_by
        self.batches: queue.Queue = queue.Queue(maxsize=1)
        self.failure: BaseException | None = None
        self.thread = (threading.Thread(target=self._run, name="import-writer", daemon=True)
                       if conn.dialect.name == "postgresql" else None)

    def __enter__(self) -> "_Writer":
        if self.thread is not None:
            self.thread.start()
        return self

    def __exit__(self, kind, error, trace) -> None:
        if self.thread is None:
            return
        self.batches.put(None)
        self.thread.join()
        if error is None and self.failure is not None:
            raise self.failure

    def write(self, batch: list[tuple]) -> None:
        """(model, columns, rows, statistics) per table, in the order they are written."""
        if self.thread is None:
            self._write(batch)
            return
        if self.failure is not None:
            raise self.failure
        self.batches.put(batch)

    def _write(self, batch: list[tuple]) -> None:
        for model, columns, rows, statistics in batch:
            store.upsert_many(self.conn, model, columns, rows, statistics=statistics,
                              recorded_by=self.recorded_by)

    def _run(self) -> None:
        while (batch := self.batches.get()) is not None:
            if self.failure is not None:
                continue
            try:
                self._write(batch)
            except BaseException as exc:  # noqa: BLE001 - raised again in the importing thread
                self.failure = exc


class _Growing(set):
    """Keys that exist, growing by the rows a mapping creates for each new code it meets."""

    def __init__(self, existing: Iterable, make: Callable[[str], None]):
        super().__init__(existing)
        self.make = make

    def __contains__(self, code) -> bool:
        if not set.__contains__(self, code):
            self.make(code)
            self.add(code)
        return True


def _existing(conn: Connection, table: str) -> set | dict:
    """The keys already in `table`; for issues, with when each was raised (events cannot precede it)."""
    if table == "issues":
        return dict(conn.execute(select(Issue.id, Issue.raised_at)).all())
    (key,) = CANONICAL_TABLES[table].__table__.primary_key.columns
    return set(conn.scalars(select(key)))


class _Import:
    """What every import does: references, created rows, problems, rejects, batched writes."""

    def __init__(self, engine: Engine, table: str, path: Path, mapping: Mapping | None,
                 rules: Rules, skip_invalid: bool, rejects: Path | None, progress: Progress,
                 recorded_by: str):
        self.engine, self.table, self.path, self.file = engine, table, path, path.name
        self.recorded_by = recorded_by
        self.mapping, self.rules, self.progress = mapping, rules, progress
        self.skip_invalid = skip_invalid
        self.rejects_path = (rejects or default_rejects(path)) if skip_invalid else None
        self.rejects_writer = self.rejects_handle = None
        self.problems: list[FileProblem] = []
        self.problem_count = 0
        self.skipped = 0
        self.sheet_name: str | None = None
        self.pending: dict[str, list[tuple]] = {t: [] for t in _WRITE_ORDER}
        self.pending_columns: dict[str, tuple[str, ...]] = {}
        self.pending_rows = 0
        self.written: dict[str, int] = {t: 0 for t in _WRITE_ORDER}
        self.writer: _Writer | None = None
        self.now = timezones.utc_now()
        self.future = 0

    # -- references and the rows a mapping creates --

    def targets(self) -> set[str]:
        raise NotImplementedError

    def load_references(self) -> None:
        creates = self.mapping.creates if self.mapping else []
        targets = self.targets() | {c.table for c in creates}
        for c in creates:
            targets |= {f.refers_to for f in FORMATS[c.table].fields if f.refers_to}
        with self.engine.connect() as conn:
            self.rules.known = {t: _existing(conn, t) for t in targets}
        for c in creates:
            for n, row in enumerate(c.rows):
                self.create(c.table, row, f"creates.{c.table}.rows[{n}]")
            if c.each is not None:
                self.rules.known[c.table] = _Growing(
                    self.rules.known[c.table],
                    lambda code, c=c: self.create(c.table, self.each_row(c, code), f"creates.{c.table}.each"))

    def each_row(self, creates, code: str) -> dict:
        value = next((r.seen[code] for r in self.mapping.rules() if code in r.seen), code)
        row = {_KEY[creates.table]: code}
        for column, template in creates.each.items():
            row[column] = template.format(code=code, value=value) if isinstance(template, str) else template
        return row

    def create(self, table: str, row: dict, key: str) -> None:
        values, problems = fields.check_row(table, row, self.rules, columns=[f.name for f in FORMATS[table].fields])
        if problems:
            p = problems[0]
            raise MappingError(self.mapping.file, key, f"makes a {table} row that is refused: "
                                                       f"{p.field}: {p.reason}")
        if table in self.rules.known:
            self.rules.known[table].add(values[_KEY[table]])
        self.add_row(table, values)

    # -- problems --

    def problem(self, row: int | None, column: str | None, value: object, reason: str) -> None:
        self.problem_count += 1
        if len(self.problems) < SHOWN_PROBLEMS:
            self.problems.append(FileProblem(self.file, row, column, value, reason, self.sheet_name))
        if not self.skip_invalid:
            self.pending = {t: [] for t in _WRITE_ORDER}

    def reject(self, number: int, record: dict, columns: tuple[str, ...], reasons: list[str]) -> None:
        """Keep a bad row for the rejects file (with `skip_invalid`)."""
        self.skipped += 1
        if not self.skip_invalid:
            return
        if self.rejects_writer is None:
            self.rejects_handle = self.rejects_path.open("w", encoding="utf-8-sig", newline="")
            self.rejects_writer = csv.writer(self.rejects_handle)
            self.rejects_writer.writerow(exports.neutralised_row(["row", "problems", *columns]))
        # Opened in a spreadsheet to be corrected: a cell that would run as a formula does not.
        self.rejects_writer.writerow(exports.neutralised_row(
            [number, "; ".join(reasons), *("" if record.get(c) is None else record.get(c) for c in columns)]))

    # -- writing --

    def add_row(self, table: str, values: dict) -> None:
        """A checked row (values by column; every row of a table has the same columns)."""
        if self.problem_count and not self.skip_invalid:
            return
        columns = self.pending_columns.setdefault(table, tuple(values))
        self.pending[table].append(tuple([values[c] for c in columns]))
        self.pending_rows += 1
        if self.pending_rows >= _BATCH_ROWS and self.writer is not None:
            self.flush(final=False)

    def add_rows(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """Checked rows as tuples in the order of `columns`."""
        if self.problem_count and not self.skip_invalid:
            return
        self.pending_columns.setdefault(table, columns)
        self.pending[table] += rows
        self.pending_rows += len(rows)
        if self.pending_rows >= _BATCH_ROWS and self.writer is not None:
            self.flush(final=False)

    def flush(self, final: bool) -> None:
        batch = []
        for table in _WRITE_ORDER:
            rows = self.pending[table]
            if rows or (final and self.written[table]):
                batch.append((CANONICAL_TABLES[table], self.pending_columns[table], rows, final))
                self.written[table] += len(rows)
                self.pending[table] = []
        self.pending_rows = 0
        if batch:
            self.writer.write(batch)

    def note_future(self, values: Iterable) -> None:
        for value in values:
            if isinstance(value, datetime) and fields.future(value, self.now):
                self.future += 1

    # -- the run --

    def go(self) -> ImportResult:
        self.load_references()
        options = self.mapping.read if self.mapping else reading.ReadOptions()
        try:
            wanted = self.mapping.sources() if self.mapping else None
            with reading.open_sheet(self.path, options, wanted) as sheet:
                self.sheet_name = sheet.sheet
                self.check_header(sheet)
                with (self.engine.connect() as conn, store.bulk_writing(conn), conn.begin(),
                      _Writer(conn, self.recorded_by) as self.writer):
                    self.flush(final=False)
                    count = 0
                    for block in sheet.blocks:
                        self.block(block, sheet.columns)
                        count += len(block.numbers)
                        self.progress.update(count, sheet.read_fraction())
                    self.end()
                    if self.problem_count and not self.skip_invalid:
                        raise ImportRejected(self.problems, self.problem_count)
                    self.flush(final=True)
        except ImportRejected as exc:
            if exc.sheet is None and self.sheet_name is not None:
                raise ImportRejected([FileProblem(p.file, p.row, p.column, p.value, p.reason,
                                                  self.sheet_name) for p in exc.problems],
                                     exc.total) from None
            raise
        finally:
            self.progress.done()
            if self.rejects_handle is not None:
                self.rejects_handle.close()
        return self.result()

    def check_header(self, sheet: reading.Sheet) -> None:
        if self.mapping is None:
            return
        missing = self.mapping.missing_columns(sheet.columns)
        if missing:
            problems = [FileProblem(self.file, 1, column, None,
                                    f"no such column in the file (mapping key {key}); its columns "
                                    f"are {', '.join(sheet.columns)}", self.sheet_name)
                        for key, column in missing]
            raise ImportRejected(problems)

    def block(self, block: reading.Block, columns: tuple[str, ...]) -> None:
        for number, record, problems in block.rows():
            self.row(number, record, problems, columns)

    def row(self, number: int, record: dict, problems: list[Problem], columns: tuple[str, ...]) -> None:
        raise NotImplementedError

    def end(self) -> None:
        """After the last row."""

    def result(self) -> ImportResult:
        raise NotImplementedError


class _TableImport(_Import):
    """One canonical table, from its own columns or through a mapping."""

    def __init__(self, *args):
        super().__init__(*args)
        self.format = FORMATS[self.table]
        self.keys = fields.key_of(self.table)
        self.first_row_of_key: dict[int, int] = {}
        self.rows = 0
        self.closed_without_resolution = 0

    def targets(self) -> set[str]:
        return {f.refers_to for f in self.format.fields if f.refers_to}

    def check_header(self, sheet: reading.Sheet) -> None:
        super().check_header(sheet)
        names = [f.name for f in self.format.fields]
        if self.mapping is not None:
            present = self.mapping.columns
            for f in self.format.fields:
                if f.required and f.name not in present:
                    raise MappingError(self.mapping.file, f"columns.{f.name}",
                                       f"required for {self.table}; map it to a column or give a value")
            self.present = list(present)
            return
        for name in sheet.columns:
            if name not in names:
                raise refuse(self.file, f"unknown column for {self.table}; the columns are "
                                        f"{', '.join(names)}", row=1, column=name, sheet=self.sheet_name)
        for f in self.format.fields:
            if f.required and f.name not in sheet.columns:
                raise refuse(self.file, "this required column is missing from the header",
                             row=1, column=f.name, sheet=self.sheet_name)
        self.present = list(sheet.columns)

    def row(self, number: int, record: dict, problems: list[Problem], columns: tuple[str, ...]) -> None:
        unreadable = {p.field for p in problems}
        found = list(problems)
        if self.mapping is not None:
            raw, mapped = self.mapping.translate(record)
            unreadable |= {p.field for p in mapped}
            unreadable |= {name for name, rule in self.mapping.columns.items()
                           if set(rule.sources()) & {p.field for p in problems}}
            found += [p._replace(field=self.mapping.source_of(p.field)) for p in mapped]
        else:
            raw = record
        values, checked = fields.check_row(self.table, raw, self.rules, columns=self.present)
        for p in checked:
            if p.field not in unreadable:
                found.append(p._replace(field=self.mapping.source_of(p.field) if self.mapping and p.field else p.field))
        if not found:
            key = hash(tuple(values[k] for k in self.keys))
            first = self.first_row_of_key.setdefault(key, number)
            if first != number:
                found.append(Problem(None, None, f"the same {', '.join(self.keys)} as row {first}; "
                                                 "each row needs its own"))
        if found:
            for p in found:
                self.problem(number, p.field, p.value, p.reason)
            self.reject(number, record, columns, [f"{p.field or 'row'}: {p.reason}" for p in found])
            return
        self.note_future(values.values())
        if (values.get("closed_at") is not None and values.get("resolved_at") is None
                and values.get("status") != "cancelled"):
            self.closed_without_resolution += 1
        self.rows += 1
        self.add_row(self.table, values)

    def result(self) -> ImportResult:
        created = {t: n for t, n in self.written.items() if n and t != self.table}
        return ImportResult(self.table, self.rows, self.closed_without_resolution, self.skipped,
                            str(self.rejects_path) if self.skipped else None, self.future,
                            self.sheet_name, created)


class _LogImport(_Import):
    """An event log: each case's rows, read in the log's order, become an issue and its events.

    A block's columns are converted a column at a time, each distinct cell once (a log repeats
    its cases, times, states and groups); its rows are then taken in the file's order, so that
    problems, rejects and the rows a mapping creates come in the order of the file."""

    def __init__(self, *args):
        super().__init__(*args)
        self.log = self.mapping.event_log
        self.summary = event_log.Summary()
        self.case: str | None = None
        self.case_rows: list[event_log.LogRow] = []
        self.case_cells: list[tuple[reading.Block, int]] = []
        self.done: set[str] = set()
        self.issues = 0
        self.department = fields.Field("department_code", refers_to="departments")
        self.departments_seen: set[str] = set()
        self.columns: tuple[str, ...] = ()
        self.converted: dict[str, dict] = {}
        self.unusable: dict[str, set] = {}
        log, ids = self.log, fields.LENGTHS["issues"]["id"]
        actors = fields.LENGTHS["issue_events"]["actor"]
        # What each row gives, in the order a row's problems are listed.
        self.reads = (
            ("case", log.case, lambda rule, record: self.text(rule, record, True, ids)),
            ("at", log.at, lambda rule, record: self.instant(rule, record, True)),
            ("opened_at", log.opened_at, self.instant),
            ("order", log.order, self.number),
            ("state", log.state, self.meaning),
            ("department", log.department, self.text),
            ("actor", log.actor, lambda rule, record: self.text(rule, record, False, actors)),
            ("cause", log.cause, self.text),
        )

    def targets(self) -> set[str]:
        return {"departments", "sla_rules", "locations"}

    def check_header(self, sheet: reading.Sheet) -> None:
        super().check_header(sheet)
        self.columns = sheet.columns
        # The cells the issue's own columns are read from (those of the case's last update).
        self.issue_sources = {name for rule in self.mapping.columns.values() for name in rule.sources()
                              if name in sheet.columns}
        for f in FORMATS["issues"].fields:
            if f.required and f.name not in LOG_DECIDES and f.name not in self.mapping.columns:
                raise MappingError(self.mapping.file, f"columns.{f.name}",
                                   "required for issues; map it to a column or give a value")

    def named(self, rule: ColumnRule) -> str:
        return rule.column or rule.key

    # -- one cell (or the cells a template names) to a value, or the Problem it has --

    def text(self, rule: ColumnRule, record: dict, required: bool = False,
             length: int | None = None) -> str | Problem | None:
        raw = rule.raw(record, self.mapping.empty)
        if raw is None:
            return Problem(self.named(rule), None, "a value is required") if required else None
        if raw.__class__ is str:
            value = raw  # read as text: NUL and length already checked by the reader
        else:
            try:
                value = fields.text(raw)
            except fields.CellError as exc:
                return Problem(self.named(rule), raw, str(exc))
        if length is not None and len(value) > length:
            return Problem(self.named(rule), raw, f"longer than {length} characters ({len(value)})")
        return value

    def instant(self, rule: ColumnRule, record: dict, required: bool = False) -> datetime | Problem | None:
        try:
            raw = self.mapping.instant(rule, record)
            if raw is None:
                return Problem(self.named(rule), None, "a value is required") if required else None
            return fields.instant(raw, self.rules)
        except fields.CellError as exc:
            return Problem(self.named(rule), record.get(rule.column), str(exc))

    def number(self, rule: ColumnRule, record: dict) -> float | Problem | None:
        raw = rule.raw(record, self.mapping.empty)
        try:
            return None if raw is None else fields.number(raw)
        except fields.CellError as exc:
            return Problem(self.named(rule), raw, str(exc))

    def meaning(self, rule: ColumnRule, record: dict) -> str | Problem:
        state = self.text(rule, record, required=True)
        if state.__class__ is Problem:
            return state
        meaning = self.log.states.get(state)
        if meaning is None:
            return Problem(self.named(rule), state, f"{state!r} is not in the mapping's "
                                                    "event_log.states; map it (to ignore, if it means nothing)")
        return meaning

    def converted_column(self, name: str, rule: ColumnRule | None, read,
                         block: reading.Block) -> tuple[list, bool]:
        """read(rule, cells) of every row of the block, each distinct cell (or combination of
        the cells a template names) read once; and whether any of them is a Problem."""
        n = len(block.numbers)
        if rule is None:
            return [None] * n, False
        sources = rule.sources()
        cells = [block.columns.get(source) or [None] * n for source in sources]
        if len(cells) == 1:
            keys = cells[0] if block.text_only else [(c.__class__, c) for c in cells[0]]
        else:  # a template's cells, or none (a fixed value)
            keys = (list(zip(*cells)) if block.text_only else
                    [tuple((c.__class__, c) for c in row) for row in zip(*cells)]) if cells else [()] * n
        memo = self.converted.setdefault(name, {})
        unusable = self.unusable.setdefault(name, set())
        if len(memo) > _MEMO_CELLS:
            memo.clear()
            unusable.clear()
        distinct = set(keys)
        missing = distinct.difference(memo)
        if missing and (rule.rewrite is not None or rule.values):
            # In the file's order: the mapping notes the text each code it makes came from.
            missing = [key for key in dict.fromkeys(keys) if key in missing]
        for key in missing:
            parts = (key,) if len(sources) == 1 else key
            if not block.text_only:
                parts = [cell for _, cell in parts]
            value = memo[key] = read(rule, dict(zip(sources, parts)))
            if value.__class__ is Problem:
                unusable.add(key)
        return list(map(memo.__getitem__, keys)), not unusable.isdisjoint(distinct)

    # -- the rows --

    def block(self, block: reading.Block, columns: tuple[str, ...]) -> None:
        checked = set(block.problems)
        values = []
        for name, rule, read in self.reads:
            column, unusable = self.converted_column(name, rule, read, block)
            if unusable:
                checked.update(k for k, v in enumerate(column) if v.__class__ is Problem)
            values.append(column)
        seen = self.departments_seen
        append_row, append_cell = self.case_rows.append, self.case_cells.append
        LogRow = event_log.LogRow
        for k, number, case, at, opened, order, meaning, department, actor, cause in zip(
                range(len(block.numbers)), block.numbers, *values):
            if k in checked or (department is not None and department not in seen):
                self.checked_row(block, k, (case, at, opened, order, meaning, department, actor, cause))
                append_row, append_cell = self.case_rows.append, self.case_cells.append
                continue
            if case != self.case:
                self.next_case(case, number)
                append_row, append_cell = self.case_rows.append, self.case_cells.append
            append_row(LogRow(number, order, at, meaning, department, actor, cause, opened))
            append_cell((block, k))

    def checked_row(self, block: reading.Block, k: int, values: tuple) -> None:
        """A row with a problem, or a department not met before (which a mapping may create)."""
        number = block.numbers[k]
        found = list(block.problems.get(k, ()))
        values = list(values)
        for i in range(len(values)):
            if values[i].__class__ is Problem:
                found.append(values[i])
                values[i] = None
            if i == 5 and values[5] is not None and values[5] not in self.departments_seen:
                try:
                    values[5] = fields.check_value("issue_events", self.department, values[5], self.rules)
                    self.departments_seen.add(values[5])
                except fields.CellError as exc:
                    found.append(Problem(self.named(self.log.department), values[5], str(exc)))
        case, at, opened, order, meaning, department, actor, cause = values
        if case is not None and case != self.case:
            self.next_case(case, number)
        if found:
            for p in found:
                self.problem(number, p.field, p.value, p.reason)
            self.reject(number, block.record(k), self.columns, [f"{p.field}: {p.reason}" for p in found])
            return
        self.case_rows.append(event_log.LogRow(number, order, at, meaning, department, actor, cause, opened))
        self.case_cells.append((block, k))

    def next_case(self, case: str, number: int) -> None:
        self.end()
        if case in self.done:
            raise refuse(self.file, f"the rows of case {case!r} are not together: it appeared "
                                    "earlier in the file; sort the log by case (any order within "
                                    "a case) and import it again", row=number,
                         column=self.named(self.log.case), sheet=self.sheet_name)
        self.case = case
        self.done.add(case)

    def end(self) -> None:
        """The case read so far becomes an issue and its events."""
        rows, cells, case = self.case_rows, self.case_cells, self.case
        self.case_rows, self.case_cells = [], []
        if not rows:
            return
        found: list[Problem] = []
        try:
            events, state = event_log.derive(case, rows, self.log.no_department, self.summary)
        except (ValueError, LifecycleError) as exc:
            events, state = [], None
            found.append(Problem(self.named(self.log.case), case, f"case {case}: {exc}"))
        last = max(rows, key=event_log.log_order)
        number = last.number
        if state is not None:
            block, k = cells[rows.index(last)]
            raw, mapped = self.mapping.translate({name: block.columns[name][k] for name in self.issue_sources})
            found += [p._replace(field=self.mapping.source_of(p.field)) for p in mapped]
            raw.update(id=case, raised_at=events[0]["at"], owner_department_code=state.owner_department_code,
                       acknowledged_at=state.acknowledged_at, resolved_at=state.resolved_at,
                       closed_at=state.closed_at, status=state.status, cause=state.cause)
            values, checked = fields.check_row("issues", raw, self.rules, columns=_ISSUE_COLUMNS)
            found += [p._replace(field=self.mapping.source_of(p.field) if p.field else p.field)
                      for p in checked if p.field not in {m.field for m in mapped}]
        if found:
            for p in found:
                self.problem(number, p.field, p.value, f"case {case}: {p.reason}"
                             if not p.reason.startswith("case ") else p.reason)
            for block, k in cells:
                self.reject(block.numbers[k], block.record(k), self.columns,
                            [f"case {case}: {p.field}: {p.reason}" for p in found])
            return
        self.issues += 1
        self.add_row("issues", values)
        # Events are made of values checked above (instants, departments, texts), in time order.
        if fields.future(events[-1]["at"], self.now):
            self.future += sum(fields.future(e["at"], self.now) for e in events)
        self.add_rows("issue_events", _EVENT_COLUMNS,
                      [(case, e["at"], e["kind"], e["department_code"], e["actor"], e["note"]) for e in events])

    def result(self) -> ImportResult:
        summary = dict(self.summary)
        created = {t: n for t, n in self.written.items() if n and t not in ("issues", "issue_events")}
        return ImportResult(EVENT_LOG, self.issues, summary.get("closed_without_resolution", 0),
                            self.skipped, str(self.rejects_path) if self.skipped else None,
                            self.future, self.sheet_name, created, summary)


def summary_lines(path: Path, result: ImportResult) -> list[str]:
    """What the import command prints after an import."""
    sheet = f" (sheet {result.sheet!r})" if result.sheet else ""
    if result.table == EVENT_LOG:
        lines = [f"{path}{sheet}: {result.rows} issues and "
                 f"{result.summary.get('events', 0)} events imported from the event log"]
        lines += [f"  {result.summary[name]:>9,}  {words}"
                  for name, words in event_log.SUMMARY_WORDS.items()
                  if name not in ("cases", "events") and result.summary.get(name)]
    else:
        lines = [f"{path}{sheet}: {result.rows} rows imported into {result.table}"]
        if result.closed_without_resolution:
            lines.append(f"{result.closed_without_resolution} of them closed without resolved_at: "
                         "counted as finished at closed_at (docs/kpis.md)")
    for table, count in result.created.items():
        lines.append(f"{count} rows of {table} written by the mapping's creates")
    if result.skipped:
        lines.append(f"{result.skipped} bad rows skipped, written with their reasons to "
                     f"{result.rejects_file}")
    if result.future:
        lines.append(f"warning: {result.future} times lie ahead of this computer's clock; "
                     "check the file's dates and time zone")
    return lines
