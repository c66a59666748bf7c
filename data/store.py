"""Writes: idempotent upserts for bulk sources, and the issue life cycle for live ones.

Every source (import, demo plant, live simulator, the ingest API, and later the andon page)
writes through here, so the rules of the contract hold whoever writes; each names itself, and
every event it writes keeps who recorded it (record_as, `recorded_by`).
"""
from __future__ import annotations

import getpass
import hashlib
import os
import re
import zlib
from contextlib import contextmanager
from datetime import datetime, timezone
from itertools import chain
from operator import itemgetter
from typing import Iterable, Iterator, Mapping, Sequence

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from data import lifecycle, queries, timezones
from data.lifecycle import LifecycleError
from data.models import (
    DataVersion, Issue, IssueEvent, Location, LotStock, Movement, ProductionPlan, SlaRule,
    UtcDateTime,
)

BULK_VERSION = "bulk"
# The column that says when a row was written, per table that incremental readers follow.
_WRITTEN_AT = {"issues": "updated_at", "issue_events": "recorded_at", "movements": "recorded_at",
               "production_plan": "updated_at"}
# The column that says who wrote a row, per table that keeps it (docs/security.md).
_RECORDED_BY = {"issue_events": "source"}

# Who recorded an event (issue_events.source), at most RECORDED_BY_CHARS characters: an
# ingest API token's source as it is (letters, digits, '.', '_', '-': never a colon), every
# other writer as `kind:name`, so no two writers read alike.
RECORDED_BY_CHARS = 64
DEMO_PLANT = "demo:plant"
SIMULATOR = "demo:simulator"
_API_SOURCE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")

# Rows sent per round trip; bounds the memory of one batch.
_BATCH_ROWS = 5000
# Rows of one INSERT statement on SQLite, and the variables a statement may hold on any
# SQLite (999 before version 3.32).
_SQLITE_ROWS_PER_INSERT = 100
_SQLITE_VARIABLES = 999
# Lots whose balances are recomputed per statement.
_LOTS_PER_REFRESH = 500


def natural_key(model) -> list[str]:
    """The columns that say two rows are the same row (the natural key of the contract)."""
    if model is IssueEvent:
        return ["issue_id", "at", "kind", "department_code"]
    if model.__tablename__ == "production_plan":
        return ["line", "shift_start"]
    return [c.name for c in sa_inspect(model).primary_key]


def upsert_rows(conn: Connection, model, rows: Sequence[Mapping], *, statistics: bool = True,
                recorded_by: str | None = None) -> None:
    """Bulk write (import, demo plant): insert rows, a row whose key exists replaces it, so
    re-importing writes once. Raises the bulk version: incremental readers reload.
    `statistics=False`: a batch of a longer write, whose last batch refreshes them.
    `recorded_by`: who writes, kept on the rows of the tables that keep it (events)."""
    if not rows:
        return
    _check_writer(recorded_by)
    _upsert(conn, model, rows, recorded_by)
    bump_bulk_version(conn)
    if statistics:
        _refresh_statistics(conn, model)


@contextmanager
def bulk_writing(conn: Connection) -> Iterator[None]:
    """Settings of a connection for a long write, around its transaction (SQLite takes them
    only outside one), undone after it. On SQLite every INSERT keeps a journal of its own (an
    upsert or a trigger could abort it halfway): kept in memory rather than in a temporary
    file, an import's writes take a tenth less."""
    if conn.dialect.name != "sqlite":
        yield
        return
    dbapi = conn.connection.driver_connection
    before = dbapi.execute("PRAGMA temp_store").fetchone()[0]
    dbapi.execute("PRAGMA temp_store = MEMORY")
    try:
        yield
    finally:
        dbapi.execute(f"PRAGMA temp_store = {int(before)}")


def upsert_many(conn: Connection, model, columns: Sequence[str], rows: Sequence[tuple], *,
                statistics: bool = True, recorded_by: str | None = None) -> None:
    """upsert_rows for a long write (an import's batches, inside its transaction): the rows
    as tuples in the order of `columns` (without the written-at stamp, which is added), the
    same rule (a row whose key exists replaces it), written the quickest way each database
    has: on PostgreSQL COPY into a staging table and one INSERT ... ON CONFLICT from it, on
    SQLite many rows a statement. Movements and locations, whose writes move lot balances,
    go through upsert_rows. `statistics` with no rows refreshes them alone; `recorded_by` as
    for upsert_rows."""
    if rows:
        _check_writer(recorded_by)
        if model is Movement or model is Location:
            _upsert(conn, model, [dict(zip(columns, row)) for row in rows])
        else:
            _write_many(conn, model, tuple(columns), rows, recorded_by)
        bump_bulk_version(conn)
    if statistics:
        _refresh_statistics(conn, model)


def _write_many(conn: Connection, model, columns: tuple[str, ...], rows: Sequence[tuple],
                recorded_by: str | None) -> None:
    table = model.__table__
    # Instants go to SQLite as the text it holds them in, to PostgreSQL as they are (aware).
    as_stored = _sqlite_instants if conn.dialect.name == "sqlite" else _aware
    instants = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, UtcDateTime)]
    written_at = _WRITTEN_AT.get(table.name)
    if written_at:
        columns += (written_at,)
        instants.append(len(columns) - 1)
    writer = _RECORDED_BY.get(table.name) if recorded_by else None
    if writer:
        columns += (writer,)
    keys = natural_key(model)
    updatable = [c for c in columns if c not in keys and c != "id"]
    # A column left out takes its default on insert, and keeps its value on update.
    defaults = [c for c in table.c if c.name not in columns and c.default is not None]
    if instants or defaults or writer:
        cells = list(zip(*rows))
        if written_at:
            cells.append([timezones.utc_now()] * len(rows))
        if writer:
            cells.append([recorded_by] * len(rows))
        for i in instants:
            cells[i] = as_stored(cells[i])
        for column in defaults:
            if not column.default.is_scalar:
                raise NotImplementedError(f"a default computed per row ({column}) is not written in bulk")
            columns += (column.name,)
            cells.append([column.default.arg] * len(rows))
        rows = list(zip(*cells))
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(map(quote, columns))
    upsert = (f"ON CONFLICT ({', '.join(map(quote, keys))}) " +
              ("DO UPDATE SET " + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in updatable)
               if updatable else "DO NOTHING"))
    if conn.dialect.name == "sqlite":
        # Many rows a statement: SQLite's work for each statement (a journal of its own, since
        # an upsert or a trigger could abort it) is shared by them, which halves the writing.
        per = max(1, min(_SQLITE_ROWS_PER_INSERT, _SQLITE_VARIABLES // len(columns)))
        insert = f"INSERT INTO {quote(table.name)} ({names}) VALUES "
        values = f"({', '.join('?' * len(columns))})"
        whole = len(rows) - len(rows) % per
        if whole:
            conn.exec_driver_sql(f"{insert}{', '.join([values] * per)} {upsert}",
                                 [tuple(chain.from_iterable(rows[i:i + per])) for i in range(0, whole, per)])
        if whole < len(rows):
            conn.exec_driver_sql(f"{insert}{', '.join([values] * (len(rows) - whole))} {upsert}",
                                 tuple(chain.from_iterable(rows[whole:])))
    elif conn.dialect.name == "postgresql":
        if updatable:  # one INSERT may not update a row twice: the last of a key wins, as in turn
            rows = _last_of_each_key(rows, [columns.index(k) for k in keys])
        # Staged in binary with the instants as timestamptz (aware, whatever their offset),
        # stored as the tables hold them: UTC without an offset.
        at = {columns[i] for i in instants}
        stage = f"fl_stage_{table.name}_{zlib.crc32(names.encode()):08x}"
        staged = ", ".join(f"{quote(c)}::timestamptz AS {quote(c)}" if c in at else quote(c) for c in columns)
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {quote(stage)} ON COMMIT DROP AS "
                             f"SELECT {staged} FROM {quote(table.name)} WITH NO DATA")
        with conn.connection.driver_connection.cursor() as cursor:
            types = [oid for (oid,) in cursor.execute(
                "SELECT atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum", (stage,))]
            with cursor.copy(f"COPY {quote(stage)} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
        unstaged = ", ".join(f"{quote(c)} AT TIME ZONE 'UTC'" if c in at else quote(c) for c in columns)
        conn.exec_driver_sql(f"INSERT INTO {quote(table.name)} ({names}) "
                             f"SELECT {unstaged} FROM {quote(stage)} {upsert}")
        conn.exec_driver_sql(f"TRUNCATE {quote(stage)}")
    else:
        raise NotImplementedError(f"upsert is not implemented for {conn.dialect.name}")


def _naive_utc(value: datetime | None) -> datetime | None:
    """An instant as the database holds it (models.UtcDateTime): naive UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} given to the database; pass an aware instant")
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _aware(values: Sequence[datetime | None]) -> Sequence[datetime | None]:
    """The instants as they are, once none is naive (models.UtcDateTime refuses those too)."""
    for value in values:
        if value is not None and value.tzinfo is None:
            _naive_utc(value)
    return values


def _sqlite_instants(values: Sequence[datetime | None]) -> list[str | None]:
    """Instants as SQLite holds them: the text SQLAlchemy writes for UtcDateTime. An import's
    are UTC already, their text is their ISO form without the offset, and an issue's
    instants are its events' instants: each is written out once."""
    texts = _SQLITE_TEXTS
    if len(texts) > _SQLITE_TEXTS_KEPT:
        texts.clear()
    out = []
    for value in values:
        text = texts.get(value)
        if text is None:
            if value is None:
                out.append(None)
                continue
            text = texts[value] = (value.isoformat(" ", "microseconds")[:26]
                                   if value.tzinfo is timezone.utc else _sqlite_instant(value))
        out.append(text)
    return out


_SQLITE_TEXTS: dict[datetime, str] = {}
_SQLITE_TEXTS_KEPT = 65_536


def _sqlite_instant(value: datetime | None) -> str | None:
    value = _naive_utc(value)
    return None if value is None else value.isoformat(" ", "microseconds")


def _last_of_each_key(rows: Sequence[tuple], positions: list[int]) -> Sequence[tuple]:
    """The rows, each key once, with the values of its last row, where its first row was
    (keys holding an empty value never meet: the database does not compare them)."""
    key = itemgetter(*positions)
    keys = [k if len(positions) > 1 else (k,) for k in map(key, rows)]
    if len(set(keys)) == len(keys):
        return rows
    kept: dict = {}
    for k, row in zip(keys, rows):
        kept[object() if None in k else k] = row
    return list(kept.values())


def _refresh_statistics(conn: Connection, model) -> None:
    """Planner statistics after a bulk write on PostgreSQL, so that reads of the newest rows
    use their indexes at once, not when autovacuum comes round (or never, where it is off)."""
    if conn.dialect.name != "postgresql":
        return
    tables = [model.__table__] + ([LotStock.__table__] if model is Movement else [])
    for table in tables:
        conn.execute(text(f'ANALYZE "{table.name}"'))


def report_production(conn: Connection, shifts: Sequence[Mapping]) -> None:
    """Live production figures (planned and actual per line and shift). Readers re-read the
    plan's window after one, so unlike a bulk write this makes none reload."""
    if shifts:
        _upsert(conn, ProductionPlan, shifts)


def bump_bulk_version(conn: Connection) -> None:
    updated = conn.execute(update(DataVersion).where(DataVersion.name == BULK_VERSION)
                           .values(version=DataVersion.version + 1))
    if updated.rowcount == 0:
        conn.execute(insert(DataVersion).values(name=BULK_VERSION, version=1))


def bulk_version(conn: Connection) -> int:
    return conn.execute(select(DataVersion.version).where(DataVersion.name == BULK_VERSION)).scalar() or 0


def rebuild_lot_stock(conn: Connection) -> None:
    """Recompute every running lot balance from the movements: after a load that bypassed
    this module (a bulk COPY, a view over another system's tables) or a deletion."""
    conn.execute(delete(LotStock))
    _insert_balances(conn, None)


def refresh_lot_stock(conn: Connection, lots: Iterable[str]) -> None:
    """Recompute the running balances of `lots` from their movements (a lot has a handful)."""
    lots = sorted(set(lots))
    for start in range(0, len(lots), _LOTS_PER_REFRESH):
        chunk = lots[start:start + _LOTS_PER_REFRESH]
        conn.execute(delete(LotStock).where(LotStock.lot.in_(chunk)))
        _insert_balances(conn, chunk)


def _insert_balances(conn: Connection, lots: list[str] | None) -> None:
    balances = queries.moved_balances(lots=lots)
    conn.execute(insert(LotStock).from_select(
        ["lot", "material_code", "location_code", "qty", "last_in_at"], balances))


def _lots_touched(conn: Connection, rows: Sequence[Mapping]) -> set[str]:
    """The lots of the moves being written, and the lots those ids had before, if any."""
    lots = {r["lot"] for r in rows}
    ids = [r["id"] for r in rows]
    for start in range(0, len(ids), _BATCH_ROWS):
        lots.update(conn.execute(select(Movement.lot).where(
            Movement.id.in_(ids[start:start + _BATCH_ROWS]))).scalars().all())
    return lots


def _take_turns_on_lots(conn: Connection, lots: Iterable[str]) -> None:
    """On PostgreSQL, writers of the same lots take turns until they commit: two that
    recomputed one lot's balances at once would each miss the other's rows (a duplicate
    balance, or a stale one left behind). A writer of a few lots locks each (in one order, so
    no two writers wait on each other) under a shared lock of all lots; a writer of many (an
    import) takes that lock alone, since each lock takes room in the server's lock table.
    SQLite lets one writer in at a time anyway."""
    if conn.dialect.name != "postgresql":
        return
    keys = sorted({_lock_key(lot) for lot in lots})
    if len(keys) > _LOTS_LOCKED_ONE_BY_ONE:
        conn.execute(text("SELECT pg_advisory_xact_lock(:all)"), {"all": _ALL_LOTS})
        return
    conn.execute(text("SELECT pg_advisory_xact_lock_shared(:all)"), {"all": _ALL_LOTS})
    conn.execute(text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) "
                      "WITH ORDINALITY AS t(k, n) ORDER BY n"), {"keys": keys})


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


# Lots a writer locks one by one; a writer of more locks them all at once.
_LOTS_LOCKED_ONE_BY_ONE = 64
_ALL_LOTS = _lock_key("lot_stock: every lot")


def _location_kinds_change(conn: Connection, rows: Sequence[Mapping]) -> bool:
    if not rows or "kind" not in rows[0]:
        return False
    kinds = dict(conn.execute(select(Location.code, Location.kind)).all())
    return any(r["code"] in kinds and kinds[r["code"]] != r["kind"] for r in rows)


def _upsert(conn: Connection, model, rows: Sequence[Mapping], recorded_by: str | None = None) -> None:
    if model is Movement:
        lots = _lots_touched(conn, rows)
        _take_turns_on_lots(conn, lots)
    rekinded = model is Location and _location_kinds_change(conn, rows)
    _write(conn, model, rows, recorded_by)
    if model is Movement:
        refresh_lot_stock(conn, lots)
    if rekinded:
        rebuild_lot_stock(conn)


def _write(conn: Connection, model, rows: Sequence[Mapping], recorded_by: str | None) -> None:
    written_at = _WRITTEN_AT.get(model.__tablename__)
    if written_at:
        now = timezones.utc_now()
        rows = [{**r, written_at: now} for r in rows]
    writer = _RECORDED_BY.get(model.__tablename__)
    if writer and recorded_by:
        rows = [{**r, writer: recorded_by} for r in rows]
    dialect = conn.dialect.name
    if dialect == "postgresql":
        dialect_insert = postgresql.insert
    elif dialect == "sqlite":
        dialect_insert = sqlite.insert
    else:
        raise NotImplementedError(f"upsert is not implemented for {dialect}")
    keys = natural_key(model)
    stmt = dialect_insert(model.__table__)
    updatable = [c for c in rows[0] if c not in keys and c != "id"]
    if updatable:
        stmt = stmt.on_conflict_do_update(index_elements=keys,
                                          set_={c: stmt.excluded[c] for c in updatable})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    # One statement, executed over batches of rows: SQLAlchemy compiles it once.
    for start in range(0, len(rows), _BATCH_ROWS):
        conn.execute(stmt, [dict(r) for r in rows[start:start + _BATCH_ROWS]])


def _issue(session: Session, issue_id: str) -> Issue:
    """The issue, also one raised in this session and not written yet: a writer of many
    events writes them all at once, without a round trip per new issue."""
    issue = session.info.get(_RAISED, {}).get(issue_id)
    if issue is None or issue not in session:
        issue = session.get(Issue, issue_id)
    if issue is None:
        raise LifecycleError(f"issue {issue_id!r} does not exist")
    return issue


# session.info key: the issues raised in the session, by id.
_RAISED = "raised issues"


def api_writer(source: str) -> str:
    """An ingest API token's source, as the API's answers name it (docs/api.md)."""
    if not _API_SOURCE.fullmatch(source):
        raise ValueError(f"{source!r} is not an API source name")
    return source


def import_writer(file_name: str, account: str) -> str:
    """`import:<file name> (<account>)`: the file imported and the machine's account that ran
    the command; a long file name is cut to fit."""
    account = _fitted(_printable(account), RECORDED_BY_CHARS // 2)
    room = RECORDED_BY_CHARS - len("import:") - len(f" ({account})")
    return f"import:{_fitted(_printable(file_name), room)} ({account})"


def user_writer(name: str) -> str:
    """`user:<name>`: a person signed in (the andon and phone pages)."""
    if not name or _UNPRINTABLE.search(name):
        raise ValueError(f"{name!r} is not a user name")
    return _fitted(f"user:{name}", RECORDED_BY_CHARS)


def os_account() -> str:
    """The account on this machine that runs the process (an import names it)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def writer_shown(recorded_by: str) -> str:
    """Who recorded an event as a page names it: every writer as `kind:name`, an API
    token's source as `api:<source>`."""
    return f"api:{recorded_by}" if _API_SOURCE.fullmatch(recorded_by) else recorded_by


def record_as(session: Session, writer: str) -> None:
    """Every event the session writes from now on is recorded by `writer` (api_writer,
    import_writer, user_writer, DEMO_PLANT, SIMULATOR)."""
    _check_writer(writer)
    session.info["source"] = writer


def _check_writer(writer: str | None) -> None:
    if writer is not None and not 0 < len(writer) <= RECORDED_BY_CHARS:
        raise ValueError(f"who recorded an event is 1 to {RECORDED_BY_CHARS} characters: {writer!r}")


def _printable(text: str) -> str:
    """Control and direction characters as U+FFFD: a name read back on a page stays in its place."""
    return _UNPRINTABLE.sub("\ufffd", text)


def _fitted(text: str, room: int) -> str:
    return text if len(text) <= room else text[:room - 1] + "…"


def _event(session: Session, issue: Issue, at: datetime, kind: str, actor: str | None,
           note: str | None = None, department_code: str | None = None) -> None:
    """Record a life-cycle event; every change to an issue goes through here. The event
    names the department holding the issue (`department_code`: another, for an event dated
    when another held it). Who recorded it is the session's writer (record_as)."""
    lifecycle.check_not_before(issue.id, kind, at, "raised", issue.raised_at)
    issue.updated_at = timezones.utc_now()
    event = IssueEvent(issue_id=issue.id, at=at, kind=kind,
                       department_code=department_code or issue.owner_department_code,
                       actor=actor, note=note, source=session.info.get("source"))
    session.add(event)
    for listener in EVENT_LISTENERS:
        listener(session, issue, event)


# Called as listener(session, issue, event) for every life-cycle event written here, inside
# the event's transaction: data.notify.outbox owes the messages an event causes there, so a
# raise and its push commit together or not at all (data.notify.outbox.listen adds it).
EVENT_LISTENERS: list = []


def raise_issue(session: Session, *, issue_id: str, issue_type: str, title: str, severity: str,
                at: datetime, location_code: str | None = None, raised_by: str | None = None,
                owner_department_code: str | None = None) -> Issue:
    """A new open issue, owned by its SLA rule's department unless another is named."""
    rule = session.get(SlaRule, issue_type)
    if rule is None:
        raise LifecycleError(f"issue {issue_id}: unknown issue_type {issue_type!r}")
    issue = Issue(id=issue_id, issue_type=issue_type, title=title, severity=severity,
                  location_code=location_code, raised_by=raised_by, raised_at=at,
                  owner_department_code=owner_department_code or rule.owner_department_code,
                  status=lifecycle.next_status(issue_id, None, "raised"))
    session.add(issue)
    session.info.setdefault(_RAISED, {})[issue_id] = issue
    _event(session, issue, at, "raised", raised_by)
    return issue


def acknowledge(session: Session, issue_id: str, at: datetime, actor: str | None = None) -> Issue:
    issue = _issue(session, issue_id)
    issue.status = lifecycle.next_status(issue_id, issue.status, "acknowledged")
    issue.acknowledged_at = at
    _event(session, issue, at, "acknowledged", actor)
    return issue


def reassign(session: Session, issue_id: str, at: datetime, to_department_code: str,
             actor: str | None = None, note: str | None = None) -> Issue:
    """Hand the issue to another department; the hand-off is recorded for buck-passing analysis."""
    issue = _issue(session, issue_id)
    lifecycle.check(issue_id, issue.status, "reassigned")
    if to_department_code == issue.owner_department_code:
        raise LifecycleError(f"issue {issue_id} is already held by {to_department_code}")
    issue.owner_department_code = to_department_code
    _event(session, issue, at, "reassigned", actor, note)
    return issue


def escalate(session: Session, issue_id: str, at: datetime, actor: str | None = None,
             note: str | None = None) -> Issue:
    issue = _issue(session, issue_id)
    lifecycle.check(issue_id, issue.status, "escalated")
    _event(session, issue, at, "escalated", actor, note)
    return issue


def resolve(session: Session, issue_id: str, at: datetime, actor: str | None = None,
            cause: str | None = None) -> Issue:
    issue = _issue(session, issue_id)
    status = lifecycle.next_status(issue_id, issue.status, "resolved")
    if issue.acknowledged_at is None:
        issue.acknowledged_at = at
        _event(session, issue, at, "acknowledged", actor)
    issue.resolved_at = at
    issue.status = status
    if cause:
        issue.cause = cause
    _event(session, issue, at, "resolved", actor, cause)
    return issue


def close(session: Session, issue_id: str, at: datetime, actor: str | None = None) -> Issue:
    issue = _issue(session, issue_id)
    issue.status = lifecycle.next_status(issue_id, issue.status, "closed")
    issue.closed_at = at
    _event(session, issue, at, "closed", actor)
    return issue


def cancel(session: Session, issue_id: str, at: datetime, actor: str | None = None,
           note: str | None = None) -> Issue:
    """Withdraw an issue raised in error: the contract records it as a `closed` event that
    leaves the issue cancelled, out of every KPI."""
    issue = _issue(session, issue_id)
    issue.status = lifecycle.next_status(issue_id, issue.status, "closed", cancelling=True)
    issue.closed_at = at
    _event(session, issue, at, "closed", actor, note)
    return issue


def comment(session: Session, issue_id: str, at: datetime, actor: str | None = None,
            note: str | None = None, department_code: str | None = None) -> Issue:
    """A remark that changes nothing; it may come late, dated when `department_code` (default:
    the department holding the issue now) held it, so the hand-off sequence stays true."""
    issue = _issue(session, issue_id)
    lifecycle.check(issue_id, issue.status, "commented")
    _event(session, issue, at, "commented", actor, note, department_code)
    return issue


def reopen(session: Session, issue_id: str, at: datetime, actor: str | None = None,
           note: str | None = None) -> Issue:
    """Back to work: the resolution and closing are cleared, the first acknowledgement and
    the cause found so far are kept (as data.lifecycle.state_from_events does)."""
    issue = _issue(session, issue_id)
    issue.status = lifecycle.next_status(issue_id, issue.status, "reopened",
                                         acknowledged=issue.acknowledged_at is not None)
    issue.resolved_at = issue.closed_at = None
    _event(session, issue, at, "reopened", actor, note)
    return issue


def record_movements(session: Session, movements: Iterable[Mapping]) -> None:
    """Live material moves, each with a unique id; a repeated id is the same movement,
    written once. Unlike a bulk write, incremental readers follow these row by row."""
    _upsert(session.connection(), Movement, list(movements))
