"""Writes: idempotent upserts for bulk sources, and the issue life cycle for live ones.

Every source (import, demo plant, live simulator, and later the andon page and the ingest
API) writes through here, so the rules of the contract hold whoever writes.
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Iterable, Mapping, Sequence

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from data import lifecycle, queries, timezones
from data.lifecycle import LifecycleError
from data.models import (
    DataVersion, Issue, IssueEvent, Location, LotStock, Movement, ProductionPlan, SlaRule,
)

BULK_VERSION = "bulk"
# The column that says when a row was written, per table that incremental readers follow.
_WRITTEN_AT = {"issues": "updated_at", "issue_events": "recorded_at", "movements": "recorded_at",
               "production_plan": "updated_at"}

# Rows sent per round trip; bounds the memory of one batch.
_BATCH_ROWS = 5000
# Lots whose balances are recomputed per statement.
_LOTS_PER_REFRESH = 500


def natural_key(model) -> list[str]:
    """The columns that say two rows are the same row (the natural key of the contract)."""
    if model is IssueEvent:
        return ["issue_id", "at", "kind", "department_code"]
    if model.__tablename__ == "production_plan":
        return ["line", "shift_start"]
    return [c.name for c in sa_inspect(model).primary_key]


def upsert_rows(conn: Connection, model, rows: Sequence[Mapping], *, statistics: bool = True) -> None:
    """Bulk write (import, demo plant): insert rows, a row whose key exists replaces it, so
    re-importing writes once. Raises the bulk version: incremental readers reload.
    `statistics=False`: a batch of a longer write, whose last batch refreshes them."""
    if not rows:
        return
    _upsert(conn, model, rows)
    bump_bulk_version(conn)
    if statistics:
        _refresh_statistics(conn, model)


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


def _upsert(conn: Connection, model, rows: Sequence[Mapping]) -> None:
    if model is Movement:
        lots = _lots_touched(conn, rows)
        _take_turns_on_lots(conn, lots)
    rekinded = model is Location and _location_kinds_change(conn, rows)
    _write(conn, model, rows)
    if model is Movement:
        refresh_lot_stock(conn, lots)
    if rekinded:
        rebuild_lot_stock(conn)


def _write(conn: Connection, model, rows: Sequence[Mapping]) -> None:
    written_at = _WRITTEN_AT.get(model.__tablename__)
    if written_at:
        now = timezones.utc_now()
        rows = [{**r, written_at: now} for r in rows]
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
    issue = session.get(Issue, issue_id)
    if issue is None:
        raise LifecycleError(f"issue {issue_id!r} does not exist")
    return issue


def _event(session: Session, issue: Issue, at: datetime, kind: str, actor: str | None,
           note: str | None = None, department_code: str | None = None) -> None:
    """Record a life-cycle event; every change to an issue goes through here. The event
    names the department holding the issue (`department_code`: another, for an event dated
    when another held it). The session's `info["source"]`, when a writer sets it, names who
    sent the event."""
    lifecycle.check_not_before(issue.id, kind, at, "raised", issue.raised_at)
    issue.updated_at = timezones.utc_now()
    session.add(IssueEvent(issue_id=issue.id, at=at, kind=kind,
                           department_code=department_code or issue.owner_department_code,
                           actor=actor, note=note, source=session.info.get("source")))


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
