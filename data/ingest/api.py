"""The live ingest API: JSON over HTTP for andon boxes, MES and scripts (docs/api.md).

A request is checked field by field before the database is touched, then written in one
transaction through data.store, the followed path: the wall reads the new rows on its next
refresh, and no worker reloads its frames. The life cycle (data/lifecycle.py) decides which
events an issue may take; a batch is written whole or not at all; a request sent again
with the same Idempotency-Key gets the first answer and writes nothing.

No answer carries a stack trace or SQL: an unexpected failure answers a plain 500 and is
logged with its traceback.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterator

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from data import db, store, timezones
from data.ingest import fields, tokens
from data.lifecycle import LifecycleError
from data.models import (
    SEVERITIES, ApiAnswer, Department, Issue, IssueEvent, Location, Material, Movement, SlaRule,
)

log = logging.getLogger(__name__)

bp = Blueprint("ingest_api", __name__, url_prefix="/api/v1")

MAX_BODY_BYTES = 1024 * 1024
MAX_ITEMS = 1000
# Errors listed in one answer; the rest are counted.
MAX_ERRORS = 100
# How long an answer is kept for a retry with the same Idempotency-Key.
KEEP_ANSWERS = timedelta(hours=24)
# How far ahead of the server's clock a sender's clock may run.
CLOCK_SLACK = timedelta(minutes=5)
# The longest note or cause a request may carry.
MAX_NOTE = 2000
# Transactions that meet a concurrent writer (a lock, a deadlock, a key written meanwhile)
# are tried again, this often and for this long in all.
ATTEMPTS = 6
RETRY_FOR_S = 20.0
# On PostgreSQL a write waits this long for a lock, then starts over: a row stamped for the
# wall commits well within FOLLOW_OVERLAP_S.
LOCK_TIMEOUT = "5s"
_SET_LOCK_TIMEOUT = f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03"}   # serialization, deadlock, lock timeout
_PURGE_EVERY = timedelta(minutes=10)
_KEY = re.compile(r"[\x21-\x7e]{1,200}")


# ---- the fields of each kind of item ------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """One field of a request body: how it is checked and how the OpenAPI document shows it."""
    name: str
    kind: str                       # "text", "code", "instant", "quantity" or "choice"
    about: str
    required: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    refers_to: type | None = None   # the model whose key a code must be


def _length(column) -> int:
    return column.type.length


def _key(model: type):
    return model.__table__.primary_key.columns[0]


def _code(name: str, model: type, about: str, required: bool = False) -> Field:
    return Field(name, "code", about, required, _length(_key(model)), refers_to=model)


INSTANT_ABOUT = ("ISO 8601; without an offset it is the site's local time (SITE_TZ); "
                 "default: when the request arrives")

ISSUE_FIELDS = (
    Field("id", "text", "The issue's id, unique in the plant (e.g. the andon call's number).",
          True, _length(Issue.id)),
    _code("issue_type", SlaRule, "An issue type of the SLA rules.", True),
    Field("title", "text", "What is wrong, as the wall shows it.", True, _length(Issue.title)),
    Field("severity", "choice", "P1 (stops the line) to P4.", True, choices=SEVERITIES),
    Field("raised_at", "instant", f"When it was raised. {INSTANT_ABOUT}."),
    _code("location_code", Location, "Where it happened."),
    Field("raised_by", "text", "Who raised it.", max_length=_length(Issue.raised_by)),
    _code("owner_department_code", Department,
          "The department that holds it; default: the SLA rule's owner."),
)

# The events an issue can take, as the contract names them, and `cancelled`: the contract's
# `closed` event that withdraws an issue raised in error.
EVENT_KINDS = ("acknowledged", "reassigned", "escalated", "commented", "resolved", "reopened",
               "closed", "cancelled")
EVENT_FIELDS = (
    Field("kind", "choice", "What happened.", True, choices=EVENT_KINDS),
    Field("at", "instant", f"When it happened. {INSTANT_ABOUT}."),
    Field("actor", "text", "Who did it.", max_length=_length(IssueEvent.actor)),
    Field("note", "text", "Words that go with it: required for `commented`; taken by "
          "`reassigned`, `escalated`, `reopened` and `cancelled`.", max_length=MAX_NOTE),
    _code("to_department_code", Department, "The department it goes to: `reassigned` only, "
          "and required there."),
    Field("cause", "text", "The cause found: `resolved` only.", max_length=MAX_NOTE),
)
ISSUE_ID = Field("issue_id", "text", "The issue the event happens to.", True, _length(Issue.id))
# The fields each kind takes besides kind, at and actor, and those it needs.
_EVENT_TAKES = {"acknowledged": (), "reassigned": ("to_department_code", "note"),
                "escalated": ("note",), "commented": ("note",), "resolved": ("cause",),
                "reopened": ("note",), "closed": (), "cancelled": ("note",)}
_EVENT_NEEDS = {"reassigned": "to_department_code", "commented": "note"}
# Kinds that an issue may take twice in the same status: the same instant twice is refused
# (an event is one row per issue, instant, kind and holding department).
_REPEATABLE = ("reassigned", "escalated", "commented")

MOVEMENT_FIELDS = (
    Field("id", "text", "The movement's id, unique in the plant (e.g. the material document "
          "and line).", True, _length(Movement.id)),
    Field("at", "instant", f"When the material moved. {INSTANT_ABOUT}."),
    _code("material_code", Material, "The material moved.", True),
    Field("lot", "text", "The lot moved.", True, _length(Movement.lot)),
    Field("qty", "quantity", "How much, in the material's unit: more than 0, at most "
          f"{fields.MAX_QTY:,.0f}.", True),
    _code("from_location_code", Location, "Where it came from.", True),
    _code("to_location_code", Location, "Where it went (another location).", True),
    Field("order_ref", "text", "The order it moved for.", max_length=_length(Movement.order_ref)),
)

ITEM_FIELDS = {"issue": ISSUE_FIELDS, "event": (ISSUE_ID, *EVENT_FIELDS),
               "movement": MOVEMENT_FIELDS}


# ---- answers ------------------------------------------------------------------------------

class Refused(Exception):
    """A request answered with a 4xx or 503: nothing it asked for was written."""

    def __init__(self, status: int, problems: list[dict], headers: dict | None = None):
        super().__init__(problems[0]["reason"] if problems else str(status))
        self.status, self.problems, self.headers = status, problems, headers or {}


def problem(field: str | None, reason: str) -> dict:
    return {"field": field, "reason": reason}


def _json(body: dict) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _answer(status: int, body: dict, headers: dict | None = None) -> Response:
    return Response(_json(body), status, headers, mimetype="application/json")


def _errors(status: int, problems: list[dict], headers: dict | None = None) -> Response:
    body = {"errors": problems[:MAX_ERRORS]}
    if len(problems) > MAX_ERRORS:
        body["more_errors"] = len(problems) - MAX_ERRORS
    return _answer(status, body, headers)


@bp.errorhandler(Refused)
def _refused(exc: Refused) -> Response:
    return _errors(exc.status, exc.problems, exc.headers)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    return _errors(exc.code or 500, [problem(None, exc.name)])


def routing_error(exc: HTTPException):
    """An address under /api/v1/ that matches no route at all (an id holding a newline)
    answers JSON as every other answer of the API, never an HTML page. Registered on the
    app, since the blueprint's handlers see only the requests routed to it."""
    if not request.path.startswith(bp.url_prefix + "/"):
        return exc
    return _http_error(exc)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    log.exception("ingest API: %s %s failed", request.method, request.path)
    return _errors(500, [problem(None, "internal error: the request was not written; the "
                                       "server logged the cause")])


def _site_iso(instant: datetime | None) -> str | None:
    return None if instant is None else timezones.to_site(instant).isoformat()


# ---- reading a request --------------------------------------------------------------------

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="floorlink"'}


def _bearer() -> str:
    """The token the request carries; whether it is one is checked in its transaction."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Refused(401, [problem("Authorization", "missing: send 'Authorization: Bearer "
                                                     "<token>' (python app.py token create)")],
                      _CHALLENGE)
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(401, [problem("Authorization", "not a bearer token: send 'Authorization: "
                                                     "Bearer <token>'")], _CHALLENGE)
    return token.strip()


def _caller(engine: Engine, token: str, now: datetime) -> tokens.Caller:
    """The token's caller, checked before the request's transaction: its use is recorded
    whatever the request's outcome."""
    caller = tokens.authenticate(engine, token, now)
    if caller is None:
        raise Refused(401, [problem("Authorization", "unknown or revoked token")], _CHALLENGE)
    g.api_caller = caller       # the rate limits count a valid token on its own (data/auth/limits.py)
    return caller


def _body() -> tuple[object, str]:
    """The JSON body, and its fingerprint with the method and path (for idempotent retries)."""
    too_large = Refused(413, [problem("body", f"larger than {MAX_BODY_BYTES:,} bytes: send "
                                              f"fewer items per request (at most {MAX_ITEMS})")])
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise too_large
    raw = request.stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise too_large
    try:
        parsed = json.loads(raw.decode("utf-8-sig"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise Refused(400, [problem("body", "not UTF-8 text")]) from None
    except RecursionError:
        raise Refused(400, [problem("body", "JSON nested too deeply")]) from None
    except ValueError as exc:
        raise Refused(400, [problem("body", f"not JSON: {exc}")]) from None
    if not isinstance(parsed, dict):
        raise Refused(422, [problem("body", "must be a JSON object")])
    canonical = json.dumps(parsed, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    fingerprint = hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()
    return parsed, fingerprint


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise Refused(422, [problem("Idempotency-Key", "1 to 200 visible ASCII characters, "
                                                       "e.g. a UUID")])
    return key


# ---- checking fields ----------------------------------------------------------------------

@dataclass(frozen=True)
class Arrival:
    """When a request arrived, and the rules its values are checked by, read once for it."""
    at: datetime
    rules: fields.Rules


@dataclass
class Item:
    """One thing to write, checked: its type, where its fields are named in errors
    ("" for a single request, "items[3]." in a batch) and its values."""
    type: str
    where: str
    values: dict


def _checked(raw: object, spec: tuple[Field, ...], where: str, arrival: Arrival,
             problems: list[dict]) -> dict:
    """The item's values, checked against `spec`; each problem found is added to `problems`."""
    if not isinstance(raw, dict):
        problems.append(problem(where.rstrip(".") or "body", "must be a JSON object"))
        return {}
    by_name = {f.name: f for f in spec}
    for name in raw:
        if name not in by_name:
            problems.append(problem(f"{where}{name}", "unknown field; the fields are "
                                                      f"{', '.join(by_name)}"))
    values = {}
    for f in spec:
        value = raw.get(f.name)
        if value is None or value == "":
            if f.required:
                problems.append(problem(f"{where}{f.name}", "required"))
            continue
        try:
            values[f.name] = _value(f, value, arrival)
        except ValueError as exc:
            problems.append(problem(f"{where}{f.name}", str(exc)))
    return values


def _value(f: Field, value: object, arrival: Arrival) -> object:
    """A JSON value checked by the rulebook imports use too (data/ingest/fields.py), with
    JSON's types: text must be a string, a quantity a number."""
    if f.kind == "quantity":
        if isinstance(value, (str, bool)):
            raise ValueError(f"must be a number, not {_json_type(value)}")
        return fields.quantity(value, arrival.rules)
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_json_type(value)}")
    fields.text(value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text (a lone surrogate)") from None
    if f.kind == "instant":
        return _instant(value, arrival)
    if f.kind == "choice" and value not in f.choices:
        raise ValueError(f"{value!r} is not one of {', '.join(f.choices)}")
    if f.max_length is not None and len(value) > f.max_length:
        raise ValueError(f"longer than {f.max_length} characters ({len(value)})")
    return value


def _json_type(value: object) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _instant(value: str, arrival: Arrival) -> datetime:
    parsed = fields.instant_text(value)
    if parsed is None:
        raise ValueError("not an ISO 8601 date and time such as 2026-11-20T08:00 (site time) "
                         f"or 2026-11-20T08:00+08:00: {fields.show(value)}")
    instant = arrival.rules.instant(parsed)
    if fields.future(instant, arrival.at, CLOCK_SLACK):
        raise ValueError(f"{value} is more than {CLOCK_SLACK.seconds // 60} minutes ahead of "
                         f"the server's clock ({_site_iso(arrival.at)})")
    return instant


def _event_fits_its_kind(values: dict, where: str, problems: list[dict]) -> None:
    kind = values.get("kind")
    if kind is None:
        return
    takes = _EVENT_TAKES[kind]
    for name in ("note", "to_department_code", "cause"):
        if name in values and name not in takes:
            problems.append(problem(f"{where}{name}", f"not taken by {kind} events"))
    needed = _EVENT_NEEDS.get(kind)
    if needed and needed not in values and not any(p["field"] == f"{where}{needed}" for p in problems):
        problems.append(problem(f"{where}{needed}", f"required for {kind} events"))


def _check_item(type_: str, raw: object, where: str, arrival: Arrival,
                problems: list[dict]) -> Item:
    values = _checked(raw, ITEM_FIELDS[type_], where, arrival, problems)
    if type_ == "event":
        _event_fits_its_kind(values, where, problems)
    if type_ == "movement" and values.get("from_location_code") is not None \
            and values.get("from_location_code") == values.get("to_location_code"):
        problems.append(problem(f"{where}to_location_code", "the same as from_location_code"))
    for name in ("raised_at", "at"):
        if name in [f.name for f in ITEM_FIELDS[type_]]:
            values.setdefault(name, arrival.at)
    return Item(type_, where, values)


def _batch_items(body: dict, arrival: Arrival) -> list[Item]:
    problems: list[dict] = []
    for name in body:
        if name != "items":
            problems.append(problem(name, "unknown field; the body is {\"items\": [...]}"))
    raw_items = body.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        problems.append(problem("items", "required: a list of 1 to "
                                         f"{MAX_ITEMS} items"))
        raise Refused(422, problems)
    if len(raw_items) > MAX_ITEMS:
        raise Refused(422, [problem("items", f"{len(raw_items)} items; at most {MAX_ITEMS} "
                                             "per request")])
    items = []
    for number, raw in enumerate(raw_items):
        where = f"items[{number}]."
        if not isinstance(raw, dict):
            problems.append(problem(f"items[{number}]", "must be a JSON object"))
            continue
        type_ = raw.get("type")
        if type_ not in ITEM_FIELDS:
            problems.append(problem(f"{where}type", f"required: one of {', '.join(ITEM_FIELDS)}"))
            continue
        items.append(_check_item(type_, {k: v for k, v in raw.items() if k != "type"}, where,
                                 arrival, problems))
    _no_repeated_ids(items, problems)
    if problems:
        raise Refused(422, problems)
    return items


def _no_repeated_ids(items: list[Item], problems: list[dict]) -> None:
    first: dict[tuple[str, str], str] = {}
    for item in items:
        if item.type in ("issue", "movement") and "id" in item.values:
            key = (item.type, item.values["id"])
            if key in first:
                problems.append(problem(f"{item.where}id", f"the same {item.type} id as "
                                                           f"{first[key]}id"))
            first.setdefault(key, item.where)


def _single(type_: str, body: dict, arrival: Arrival, **from_path: str) -> list[Item]:
    problems = [problem(name, "given in the path; leave it out of the body")
                for name in from_path if name in body]
    item = _check_item(type_, {**body, **from_path}, "", arrival, problems)
    if problems:
        raise Refused(422, problems)
    return [item]


# ---- writing ------------------------------------------------------------------------------

def _engine():
    return db.get_engine(current_app.config["FLOORLINK_DATABASE_URL"])


@contextmanager
def _transaction(engine: Engine) -> Iterator[Session]:
    """One request's transaction, from checking its token to its last write."""
    with db.session_scope(engine) as session:
        conn = session.connection()
        if conn.dialect.name == "sqlite":
            # The write lock first, waited for in the busy timeout: what the checks read is
            # then what the writes build on, and no upgrade from reading to writing fails.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql(_SET_LOCK_TIMEOUT)
        yield session


def _transient(exc: DBAPIError) -> bool:
    """A failure that another writer caused and that the same transaction, tried again, does
    not meet: a key written meanwhile, a lock, a deadlock."""
    if isinstance(exc, IntegrityError):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate in _TRANSIENT_SQLSTATES or (
        isinstance(exc, OperationalError) and "database is locked" in str(exc.orig))


def _with_retries(attempt: Callable[[], Response]) -> Response:
    started, number = time.monotonic(), 0
    while True:
        number += 1
        try:
            return attempt()
        except DBAPIError as exc:
            transient = _transient(exc)
            if not (transient and number < ATTEMPTS and time.monotonic() - started < RETRY_FOR_S):
                raise _refusal(exc, transient, number)
            time.sleep(random.uniform(0, 0.01 * 2 ** number))


def _refusal(exc: DBAPIError, transient: bool, attempts: int) -> Exception:
    """What a database failure answers: a conflict or a busy database is sent again by the
    sender; anything else stays itself, an unexpected failure (500)."""
    if isinstance(exc, IntegrityError):
        log.warning("ingest API: %s %s still conflicts after %d attempts: %s",
                    request.method, request.path, attempts, exc.orig)
        return Refused(409, [problem(None, "conflicts with writes made at the same time; "
                                           "send it again")])
    if transient or isinstance(exc, OperationalError) or exc.connection_invalidated:
        log.warning("ingest API: %s %s: the database did not take the write: %s",
                    request.method, request.path, exc.orig)
        return Refused(503, [problem(None, "the database is busy or not answering; send it "
                                           "again")], {"Retry-After": "1"})
    return exc


class _Replay(Exception):
    """The request's Idempotency-Key holds the answer of the same request: its transaction
    is rolled back and that answer sent again."""

    def __init__(self, response: Response):
        super().__init__("answered before")
        self.response = response


def _write(token: str, items: list[Item], fingerprint: str, key: str | None,
           received: datetime, *, batch: bool) -> Response:
    engine = _engine()

    def attempt() -> Response:
        caller = _caller(engine, token, received)
        with _transaction(engine) as session:
            # The events written are recorded by the token's source.
            store.record_as(session, store.api_writer(caller.source))
            try:
                results = _Writer(session, items, batch).write()
            except Refused:
                if key is not None:
                    _replay_if_answered(session, caller.source, key, fingerprint, received)
                raise
            status = 201 if any(r.get("written", True) for r in results) else 200
            body = _json({"items": results} if batch else results[0])
            if key is not None and not _keep_answer(session, caller.source, key, fingerprint,
                                                    status, body, received):
                _replay_if_answered(session, caller.source, key, fingerprint, received)
                raise Refused(409, [problem(None, "conflicts with writes made at the same "
                                                  "time; send it again")])
            return Response(body, status, mimetype="application/json")

    try:
        response = _with_retries(attempt)
    except _Replay as replay:
        response = replay.response
    _purge_expired_answers(engine, received)
    return response


_ANSWERS = ApiAnswer.__table__
_answer_inserts: dict[str, object] = {}


def _answer_insert(dialect: str):
    """The answer stored under its key, replacing only an expired one; RETURNING says whether
    it was stored. Built once per dialect."""
    if dialect not in _answer_inserts:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(_ANSWERS)
        _answer_inserts[dialect] = stmt.on_conflict_do_update(
            index_elements=[_ANSWERS.c.source, _ANSWERS.c.key],
            set_={name: stmt.excluded[name] for name in ("fingerprint", "status", "body",
                                                         "created_at")},
            where=_ANSWERS.c.created_at < bindparam("expired_before", type_=_ANSWERS.c.created_at.type),
        ).returning(_ANSWERS.c.key)
    return _answer_inserts[dialect]


def _keep_answer(session: Session, source: str, key: str, fingerprint: str, status: int,
                 body: str, received: datetime) -> bool:
    """Store the answer under the key as the transaction's last write (the session writes
    its pending rows before it); False when the key holds a live answer. Two requests with
    one key at once: the second waits here until the first commits, finds its answer and is
    rolled back, so only one of them writes."""
    stored = session.execute(_answer_insert(session.bind.dialect.name), {
        "source": source, "key": key, "fingerprint": fingerprint, "status": status,
        "body": body, "created_at": received, "expired_before": received - KEEP_ANSWERS})
    return stored.first() is not None


def _replay_if_answered(session: Session, source: str, key: str, fingerprint: str,
                        received: datetime) -> None:
    """Raise the answer kept under the key (_Replay), or a 422 if it answered another request;
    return when the key holds no live answer."""
    stored = session.execute(select(_ANSWERS.c.fingerprint, _ANSWERS.c.status, _ANSWERS.c.body,
                                    _ANSWERS.c.created_at)
                             .where(_ANSWERS.c.source == source, _ANSWERS.c.key == key,
                                    _ANSWERS.c.created_at >= received - KEEP_ANSWERS)).first()
    if stored is None:
        return
    if stored.fingerprint != fingerprint:
        raise Refused(422, [problem("Idempotency-Key", f"already used at "
                                    f"{_site_iso(stored.created_at)} for another request; a new "
                                    "request needs a new key")])
    raise _Replay(Response(stored.body, stored.status, {"Idempotent-Replayed": "true"},
                           mimetype="application/json"))


_purged: dict[object, datetime] = {}
_purge_lock = threading.Lock()


def _purge_expired_answers(engine: Engine, now: datetime) -> None:
    """Forget answers older than KEEP_ANSWERS, at most every ten minutes per process."""
    with _purge_lock:
        last = _purged.get(engine.url)
        if last is not None and now - last < _PURGE_EVERY:
            return
        _purged[engine.url] = now
    try:
        with engine.begin() as conn:
            conn.execute(delete(ApiAnswer).where(ApiAnswer.created_at < now - KEEP_ANSWERS))
    except DBAPIError as exc:
        log.warning("ingest API: old idempotency answers not purged: %s", exc.orig)


class _Writer:
    """Writes a request's items in order in one transaction, or refuses the whole request."""

    def __init__(self, session: Session, items: list[Item], batch: bool):
        self.session, self.items, self.batch = session, items, batch
        self.issues: dict[str, Issue] = {}
        self.reference: dict[type, list] = {}
        # Per issue: its events' (kind, at, holding department), to place new ones after them.
        self.events: dict[str, list[tuple[str, datetime, str | None]]] = {}

    def write(self) -> list[dict]:
        """The items' results, each item taken in its order. Issues and events reach the
        database together when the request's answer is stored, a statement per table and
        kind of change, not one per item; movements are written here, all in one upsert."""
        self._check_references()
        moves = self._new_moves()
        results = []
        for item in self.items:
            if item.type == "issue":
                results.append(self._raise(item))
            elif item.type == "event":
                results.append(self._event(item))
            else:
                results.append({"type": "movement", "id": item.values["id"],
                                "at": _site_iso(item.values["at"]),
                                "written": item.values["id"] in moves})
        if moves:
            store.record_movements(self.session, moves.values())
        return results

    def _of_type(self, type_: str) -> Iterator[Item]:
        return (item for item in self.items if item.type == type_)

    def _check_references(self) -> None:
        """Every code names a row that exists, every event an issue that exists or that an
        earlier item raises; the issues written to are locked until the transaction ends."""
        problems = []
        wanted: dict[type, set[str]] = {}
        for item in self.items:
            for f in ITEM_FIELDS[item.type]:
                if f.refers_to is not None and f.name in item.values:
                    wanted.setdefault(f.refers_to, set()).add(item.values[f.name])
        # Whole rows, held until the request ends: the store finds them in the session
        # instead of asking the database again.
        self.reference = {model: self.session.scalars(_REFERENCE_ROWS[model], {"codes": sorted(codes)}).all()
                          for model, codes in wanted.items()}
        known = {model: {getattr(row, _key(model).name) for row in rows}
                 for model, rows in self.reference.items()}
        issue_ids = sorted({item.values["id"] for item in self._of_type("issue")}
                           | {item.values["issue_id"] for item in self._of_type("event")})
        if issue_ids:
            self._lock_issues(issue_ids)
        raised = set()
        for item in self.items:
            for f in ITEM_FIELDS[item.type]:
                value = item.values.get(f.name)
                if f.refers_to is not None and value is not None and value not in known[f.refers_to]:
                    problems.append(problem(f"{item.where}{f.name}",
                                            f"unknown {_NOUNS[f.refers_to]} {value!r}"))
            if item.type == "issue":
                raised.add(item.values["id"])
            elif item.type == "event":
                issue_id = item.values["issue_id"]
                if issue_id not in self.issues and issue_id not in raised:
                    problems.append(problem(f"{item.where}issue_id", f"no issue {issue_id!r}" + (
                        ": raise it first, in an earlier item or request" if self.batch else "")))
        if problems:
            single_path = not self.batch and self.items[0].type == "event" and \
                all(p["field"] == "issue_id" for p in problems)
            raise Refused(404 if single_path else 422, problems)

    def _lock_issues(self, issue_ids: list[str]) -> None:
        """The issues the request names that exist, locked until the request ends (in one
        order, by id, so that two requests never wait on each other), then the events of
        those it adds events to. Two statements: on PostgreSQL a statement that waited for a
        lock sees the locked row as the writer before it left it, but any other table as it
        was when the statement began, so events read with the lock could miss the ones that
        writer added."""
        self.issues = {issue.id: issue for issue in self.session.scalars(_ISSUES_LOCKED,
                                                                         {"ids": issue_ids})}
        followed = sorted({item.values["issue_id"] for item in self._of_type("event")}
                          & self.issues.keys())
        if followed:
            for issue_id, kind, at, department in self.session.execute(_EVENTS_OF,
                                                                       {"ids": followed}):
                self.events.setdefault(issue_id, []).append((kind, at, department))

    def _new_moves(self) -> dict[str, dict]:
        """The movements to write: one already recorded with the same values is not written
        again; one recorded with other values is a conflict."""
        moves = {item.values["id"]: item for item in self._of_type("movement")}
        if not moves:
            return {}
        new = {}
        recorded = {m.id: m for m in self.session.scalars(select(Movement).where(Movement.id.in_(list(moves))))}
        for move_id, item in moves.items():
            row = {f.name: item.values.get(f.name) for f in MOVEMENT_FIELDS}
            if move_id not in recorded:
                new[move_id] = row
            elif any(getattr(recorded[move_id], name) != value for name, value in row.items()):
                raise Refused(409, [problem(f"{item.where}id", f"movement {move_id!r} is already "
                                            "recorded with other values")])
        return new

    def _raise(self, item: Item) -> dict:
        values = item.values
        if values["id"] in self.issues:
            raise Refused(409, [problem(f"{item.where}id", f"issue {values['id']!r} already "
                                        "exists (a retry of a raise that was written?)")])
        issue = store.raise_issue(
            self.session, issue_id=values["id"], issue_type=values["issue_type"],
            title=values["title"], severity=values["severity"], at=values["raised_at"],
            location_code=values.get("location_code"), raised_by=values.get("raised_by"),
            owner_department_code=values.get("owner_department_code"))
        self.issues[issue.id] = issue
        self.events[issue.id] = [("raised", issue.raised_at, issue.owner_department_code)]
        return {"type": "issue", "id": issue.id, "status": issue.status,
                "owner_department_code": issue.owner_department_code,
                "raised_at": _site_iso(issue.raised_at)}

    def _event(self, item: Item) -> dict:
        values, where = item.values, item.where
        issue = self.issues[values["issue_id"]]
        kind, at = values["kind"], values["at"]
        events = self.events[issue.id] = _life_so_far(issue, self.events.get(issue.id, []))
        # The life cycle's order: a comment not before the issue was raised, any other event
        # not before the latest one that was not a comment.
        if kind == "commented":
            steps = [e for e in events if e[0] == "raised"]
        else:
            steps = [e for e in events if e[0] != "commented"]
        last = max(steps, key=lambda e: e[1], default=None)
        if last is not None and at < last[1]:
            before = "it was raised" if last[0] == "raised" else f"its {last[0]} event"
            raise Refused(409, [problem(f"{where}at", f"{_site_iso(at)} is before {before} "
                                        f"({_site_iso(last[1])}): send events in the order "
                                        "they happened")])
        if kind == "reassigned" and values["to_department_code"] == issue.owner_department_code:
            raise Refused(409, [problem(f"{where}to_department_code",
                                        f"issue {issue.id} is already held by "
                                        f"{issue.owner_department_code}")])
        if kind == "commented":
            # A late comment names the department that held the issue when it was made.
            holder = sorted((e for e in events if e[1] <= at), key=lambda e: e[1])[-1][2]
        else:
            holder = values.get("to_department_code", issue.owner_department_code)
        if kind in _REPEATABLE and (kind, at, holder) in events:
            raise Refused(409, [problem(f"{where}at", f"a {kind} event of issue {issue.id} at "
                                        f"{_site_iso(at)} is already recorded")])
        try:
            _RECORD[kind](self.session, issue.id, at, {**values, "holder": holder})
        except LifecycleError as exc:
            raise Refused(409, [problem(f"{where}kind", str(exc))]) from None
        events.append(("closed" if kind == "cancelled" else kind, at, holder))
        return {"type": "event", "issue_id": issue.id, "kind": kind, "at": _site_iso(at),
                "status": issue.status, "owner_department_code": issue.owner_department_code}


def _life_so_far(issue: Issue, events: list[tuple[str, datetime, str | None]]) -> list:
    """The issue's events as the order checks read them. An issue written without events (an
    issues file imported alone) has the instants of its life cycle in its row, held by its
    owner (no hand-off is recorded). One whose events lack its raise (an events file without
    it) was raised at its row's raised_at, held by the department its first event names,
    or by its owner when that event handed it over."""
    if not events:
        return [(kind, at, issue.owner_department_code) for kind, at in (
            ("raised", issue.raised_at), ("acknowledged", issue.acknowledged_at),
            ("resolved", issue.resolved_at), ("closed", issue.closed_at)) if at is not None]
    if all(kind != "raised" for kind, _, _ in events):
        first = min(events, key=lambda e: e[1])
        holder = issue.owner_department_code if first[0] == "reassigned" else first[2]
        return [("raised", issue.raised_at, holder), *events]
    return events


# The statements of every request, built once: building and keying one costs more than
# running it.
_REFERENCE_ROWS = {model: select(model).where(_key(model).in_(bindparam("codes", expanding=True)))
                   for model in (SlaRule, Location, Department, Material)}
_ISSUES_LOCKED = (select(Issue).where(Issue.id.in_(bindparam("ids", expanding=True)))
                  .order_by(Issue.id).with_for_update())
_EVENTS_OF = (select(IssueEvent.issue_id, IssueEvent.kind, IssueEvent.at, IssueEvent.department_code)
              .where(IssueEvent.issue_id.in_(bindparam("ids", expanding=True)))
              .order_by(IssueEvent.issue_id, IssueEvent.at, IssueEvent.id))

_RECORD: dict[str, Callable[[Session, str, datetime, dict], Issue]] = {
    "acknowledged": lambda s, i, at, v: store.acknowledge(s, i, at, v.get("actor")),
    "reassigned": lambda s, i, at, v: store.reassign(s, i, at, v["to_department_code"],
                                                     v.get("actor"), v.get("note")),
    "escalated": lambda s, i, at, v: store.escalate(s, i, at, v.get("actor"), v.get("note")),
    "commented": lambda s, i, at, v: store.comment(s, i, at, v.get("actor"), v["note"], v["holder"]),
    "resolved": lambda s, i, at, v: store.resolve(s, i, at, v.get("actor"), v.get("cause")),
    "reopened": lambda s, i, at, v: store.reopen(s, i, at, v.get("actor"), v.get("note")),
    "closed": lambda s, i, at, v: store.close(s, i, at, v.get("actor")),
    "cancelled": lambda s, i, at, v: store.cancel(s, i, at, v.get("actor"), v.get("note")),
}
_NOUNS = {SlaRule: "issue type", Location: "location", Department: "department",
          Material: "material"}


# ---- the endpoints ------------------------------------------------------------------------

def _request() -> tuple[str, str | None, dict, str, Arrival]:
    """The token, the idempotency key, the body and its fingerprint, and when it arrived."""
    arrival = Arrival(timezones.utc_now(), fields.Rules())
    token = _bearer()
    key = _idempotency_key()
    body, fingerprint = _body()
    return token, key, body, fingerprint, arrival


@bp.post("/issues")
def post_issue() -> Response:
    token, key, body, fingerprint, arrival = _request()
    return _write(token, _single("issue", body, arrival), fingerprint, key, arrival.at, batch=False)


@bp.post("/issues/<issue_id>/events")
def post_event(issue_id: str) -> Response:
    token, key, body, fingerprint, arrival = _request()
    return _write(token, _single("event", body, arrival, issue_id=issue_id), fingerprint, key,
                  arrival.at, batch=False)


@bp.post("/movements")
def post_movement() -> Response:
    token, key, body, fingerprint, arrival = _request()
    return _write(token, _single("movement", body, arrival), fingerprint, key, arrival.at,
                  batch=False)


@bp.post("/batch")
def post_batch() -> Response:
    token, key, body, fingerprint, arrival = _request()
    return _write(token, _batch_items(body, arrival), fingerprint, key, arrival.at, batch=True)


@bp.get("/issues/<issue_id>")
def get_issue(issue_id: str) -> Response:
    """An issue as the database holds it now, with its events: what a sender checks after a
    write whose answer it did not get."""
    token, now = _bearer(), timezones.utc_now()
    try:
        _value(ISSUE_ID, issue_id, Arrival(now, fields.Rules()))
    except ValueError as exc:
        raise Refused(422, [problem("issue_id", str(exc))]) from None
    _caller(_engine(), token, now)
    with _transaction(_engine()) as session:
        issue = session.get(Issue, issue_id)
        if issue is None:
            raise Refused(404, [problem("issue_id", f"no issue {issue_id!r}")])
        events = session.scalars(select(IssueEvent).where(IssueEvent.issue_id == issue_id)
                                 .order_by(IssueEvent.at, IssueEvent.id)).all()
        body = {
            **{name: getattr(issue, name) for name in _ISSUE_TEXT},
            **{name: _site_iso(getattr(issue, name)) for name in _ISSUE_INSTANTS},
            "events": [{"kind": e.kind, "at": _site_iso(e.at), "department_code": e.department_code,
                        "actor": e.actor, "note": e.note, "source": e.source} for e in events]}
    return _answer(200, body)


_ISSUE_TEXT = ("id", "issue_type", "title", "severity", "status", "owner_department_code",
               "location_code", "raised_by", "cause")
_ISSUE_INSTANTS = ("raised_at", "acknowledged_at", "resolved_at", "closed_at")


@bp.get("/openapi.json")
def openapi_document() -> Response:
    return _answer(200, openapi())


@bp.route("/", defaults={"rest": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def no_such_endpoint(rest: str) -> Response:
    """Everything under /api/v1/ answers JSON, also a path or method that is not served."""
    adapter = current_app.url_map.bind("localhost")
    allowed = []
    for method in ("GET", "POST"):
        try:
            endpoint, _ = adapter.match(request.path, method=method)
        except HTTPException:
            continue
        if endpoint != request.endpoint:
            allowed.append(method)
    if allowed:
        raise Refused(405, [problem(None, f"{request.method} is not served here; use "
                                          f"{' or '.join(allowed)}")], {"Allow": ", ".join(allowed)})
    raise Refused(404, [problem(None, f"no endpoint {request.method} {request.path}; the "
                                      f"endpoints: {bp.url_prefix}/openapi.json")])


# ---- the OpenAPI description --------------------------------------------------------------

EXAMPLES = {
    "issue": {"id": "ANDON-L2-0001", "issue_type": "quality_anomaly", "title": "毛刺超标 burrs",
              "severity": "P2", "raised_at": "2026-11-20T08:00:00", "location_code": "L2-ST2",
              "raised_by": "PRD-01"},
    "event": {"kind": "acknowledged", "at": "2026-11-20T08:06:00+08:00", "actor": "QA-02"},
    "movement": {"id": "MD-4900001-0001", "at": "2026-11-20T08:10:00", "material_code": "M-3002",
                 "lot": "LOT-3002-1120", "qty": 200, "from_location_code": "WH-RM",
                 "to_location_code": "L2-LS", "order_ref": "MO-1120-02"},
}
EXAMPLES["batch"] = {"items": [
    {"type": "issue", **{**EXAMPLES["issue"], "id": "ANDON-L2-0002"}},
    {"type": "event", "issue_id": "ANDON-L2-0002", **EXAMPLES["event"]},
    {"type": "event", "issue_id": "ANDON-L2-0002", "kind": "resolved",
     "at": "2026-11-20T08:40:00", "actor": "QA-02", "cause": "刀具磨损 worn cutter"},
    {"type": "movement", **{**EXAMPLES["movement"], "id": "MD-4900001-0002"}},
]}

_RESULTS = {
    "issue": {"type": "object", "properties": {
        "type": {"const": "issue"}, "id": {"type": "string"}, "status": {"type": "string"},
        "owner_department_code": {"type": "string"}, "raised_at": {"type": "string"}}},
    "event": {"type": "object", "properties": {
        "type": {"const": "event"}, "issue_id": {"type": "string"},
        "kind": {"type": "string", "enum": list(EVENT_KINDS)}, "at": {"type": "string"},
        "status": {"type": "string", "description": "The issue's status after the event."},
        "owner_department_code": {"type": "string"}}},
    "movement": {"type": "object", "properties": {
        "type": {"const": "movement"}, "id": {"type": "string"}, "at": {"type": "string"},
        "written": {"type": "boolean", "description": "false: already recorded with the same "
                                                      "values, not written again"}}},
}


def _field_schema(f: Field) -> dict:
    if f.kind == "quantity":
        schema = {"type": "number", "exclusiveMinimum": 0, "maximum": fields.MAX_QTY}
    elif f.kind == "choice":
        schema = {"type": "string", "enum": list(f.choices)}
    elif f.kind == "instant":
        schema = {"type": "string", "examples": ["2026-11-20T08:00:00",
                                                 "2026-11-20T08:00:00+08:00"]}
    else:
        schema = {"type": "string", "minLength": 1, "maxLength": f.max_length}
    return {**schema, "description": f.about}


def _object_schema(fields: tuple[Field, ...], **extra: dict) -> dict:
    return {"type": "object", "additionalProperties": False,
            "required": [*extra, *(f.name for f in fields if f.required)],
            "properties": {**extra, **{f.name: _field_schema(f) for f in fields}}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: dict, example: dict | None = None) -> dict:
    content = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"application/json": content}


_REFUSALS = {
    "400": "The body is not JSON (or not UTF-8).",
    "401": "No token, or an unknown or revoked one.",
    "409": "The issue's life cycle or a row already recorded does not allow it; nothing written.",
    "413": f"The body is larger than {MAX_BODY_BYTES:,} bytes.",
    "422": "A field is missing, unknown or wrong (each named with the reason), or the "
           "Idempotency-Key was used for another request; nothing written.",
    "503": "The database is busy or not answering; send the same request again (Retry-After).",
}


def _write_operation(summary: str, schema: str, example: dict, result: dict, *,
                     parameters: tuple = ()) -> dict:
    responses = {"201": {"description": "Written.", "content": _json_content(result)},
                 "200": {"description": "Already recorded with the same values: nothing "
                                        "written.", "content": _json_content(result)}}
    responses.update({code: {"description": about, "content": _json_content(_ref("Errors"))}
                      for code, about in _REFUSALS.items()})
    return {"summary": summary, "parameters": [*parameters, _ref_parameter("IdempotencyKey")],
            "requestBody": {"required": True, "content": _json_content(_ref(schema), example)},
            "responses": responses}


def _ref_parameter(name: str) -> dict:
    return {"$ref": f"#/components/parameters/{name}"}


def openapi() -> dict:
    """The OpenAPI 3.1 description of every endpoint, built from the same fields the
    requests are checked against."""
    issue_path = {"name": "issue_id", "in": "path", "required": True,
                  "schema": {"type": "string", "maxLength": ISSUE_ID.max_length}}
    batch_items = {"oneOf": [_ref("BatchIssue"), _ref("BatchEvent"), _ref("BatchMovement")],
                   "discriminator": {"propertyName": "type"}}
    found = {"description": "The issue and its events.", "content": _json_content({
        "type": "object", "properties": {
            **{name: {"type": ["string", "null"]} for name in (*_ISSUE_TEXT, *_ISSUE_INSTANTS)},
            "events": {"type": "array", "items": {"type": "object"}}}})}
    errors = {name: {"description": about, "content": _json_content(_ref("Errors"))}
              for name, about in _REFUSALS.items() if name in ("401", "422")}
    return {
        "openapi": "3.1.0",
        "info": {"title": "FloorLink ingest API", "version": "1",
                 "description": "Raise issues, add their events and record material movements "
                                "from andon boxes, MES and scripts. Times are ISO 8601; without "
                                "an offset they are the site's local time. docs/api.md."},
        "servers": [{"url": bp.url_prefix}],
        "security": [{"bearer": []}],
        "paths": {
            "/issues": {"post": _write_operation("Raise an issue", "Issue", EXAMPLES["issue"],
                                                 _RESULTS["issue"])},
            "/issues/{issue_id}": {"get": {
                "summary": "An issue and its events", "parameters": [issue_path],
                "responses": {"200": found, **errors, "404": {
                    "description": "No such issue.", "content": _json_content(_ref("Errors"))}}}},
            "/issues/{issue_id}/events": {"post": _write_operation(
                "Add an event to an issue", "Event", EXAMPLES["event"], _RESULTS["event"],
                parameters=(issue_path,))},
            "/movements": {"post": _write_operation(
                "Record a material movement", "Movement", EXAMPLES["movement"],
                _RESULTS["movement"])},
            "/batch": {"post": _write_operation(
                f"Write up to {MAX_ITEMS} items in order, all or none", "Batch",
                EXAMPLES["batch"], {"type": "object", "properties": {"items": {
                    "type": "array", "items": {"oneOf": list(_RESULTS.values())}}}})},
            "/openapi.json": {"get": {"summary": "This description", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1",
                                                            "content": _json_content({"type": "object"})}}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "python app.py token create --source NAME"}},
            "parameters": {"IdempotencyKey": {
                "name": "Idempotency-Key", "in": "header", "required": False,
                "schema": {"type": "string", "pattern": _KEY.pattern},
                "description": f"Sent again with the same request, it gets the first answer "
                               f"and writes nothing, for {KEEP_ANSWERS.total_seconds() / 3600:g} "
                               "hours. Only written answers (200, 201) are kept."}},
            "schemas": {
                "Issue": _object_schema(ISSUE_FIELDS),
                "Event": _object_schema(EVENT_FIELDS),
                "Movement": _object_schema(MOVEMENT_FIELDS),
                "BatchIssue": _object_schema(ISSUE_FIELDS, type={"const": "issue"}),
                "BatchEvent": _object_schema((ISSUE_ID, *EVENT_FIELDS), type={"const": "event"}),
                "BatchMovement": _object_schema(MOVEMENT_FIELDS, type={"const": "movement"}),
                "Batch": {"type": "object", "additionalProperties": False, "required": ["items"],
                          "properties": {"items": {"type": "array", "minItems": 1,
                                                   "maxItems": MAX_ITEMS, "items": batch_items}}},
                "Errors": {"type": "object", "required": ["errors"], "properties": {
                    "errors": {"type": "array", "items": {
                        "type": "object", "required": ["field", "reason"], "properties": {
                            "field": {"type": ["string", "null"],
                                      "description": "e.g. items[3].at; null: the request as a whole"},
                            "reason": {"type": "string"}}}},
                    "more_errors": {"type": "integer",
                                    "description": f"Errors beyond the first {MAX_ERRORS}."}}},
            },
        },
    }
