"""The weekly review's action register: what the meeting decided, who does it by when, and
whether the figures have moved since.

An action is opened in a review week and carried into every later week's pack until it is
closed: verified (the figures it is about show the change; `evidence` says where) or dropped.
Done means the countermeasure is in place and waits for its verification: it is still carried,
never overdue. An action is overdue in a week when it is due before the week's end and neither
done nor verified. `about` is either one KPI key of the pack (its start is marked on that KPI's
control chart) or the ids of the issues it is about, comma separated. Every change of status is
kept with who made it and when.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine

from data import db, timezones
from data.models import ACTION_STATUSES, Department, Issue, ReviewAction
from data.reports import weekly

CLOSED = ("verified", "dropped")
# Figures-backed states: neither can be overdue.
NOT_OVERDUE = ("done", "verified")
TEXT_LIMITS = {"problem": 2000, "countermeasure": 2000, "evidence": 4000, "owner": 100,
               "created_by": 100, "updated_by": 100}
EDITABLE = ("problem", "about", "countermeasure", "owner", "department_code", "due", "status",
            "evidence")
ISSUE_SEPARATORS = re.compile(r"[,\s]+")


class ActionError(ValueError):
    """A value the register cannot take; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def _text(field: str, value, *, required: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ActionError(field, f"must be text, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise ActionError(field, "must not be empty")
    if len(value) > TEXT_LIMITS[field]:
        raise ActionError(field, f"is {len(value)} characters long, at most {TEXT_LIMITS[field]}")
    return value


def _due(value) -> date:
    if isinstance(value, datetime):
        raise ActionError("due", f"must be a date, not a time: {value!r}")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ActionError("due", f"must be a date such as 2026-12-04, got {value!r}")


def _status(value) -> str:
    if value not in ACTION_STATUSES:
        raise ActionError("status", f"{value!r} is not one of {', '.join(ACTION_STATUSES)}")
    return value


def _week(field: str, value) -> str:
    try:
        weekly.parse_week(value)
    except ValueError as exc:
        raise ActionError(field, str(exc)) from None
    return value


def _about(session, value) -> str:
    """A KPI key of the pack, or existing issue ids (a list or comma separated)."""
    if isinstance(value, (list, tuple)):
        ids = [str(v).strip() for v in value if str(v).strip()]
    elif isinstance(value, str):
        if value.strip() in weekly.KPI_KEYS:
            return value.strip()
        ids = [part for part in ISSUE_SEPARATORS.split(value.strip()) if part]
    else:
        raise ActionError("about", f"must be a KPI key or issue ids, got {type(value).__name__}")
    if not ids:
        raise ActionError("about", f"must name a KPI ({', '.join(weekly.KPI_KEYS)}) or issue ids")
    ids = list(dict.fromkeys(ids))
    known = set(session.scalars(select(Issue.id).where(Issue.id.in_(ids))))
    missing = [i for i in ids if i not in known]
    if missing:
        raise ActionError("about", f"neither a KPI key nor known issues: {', '.join(missing[:5])}")
    text = ",".join(ids)
    if len(text) > 400:
        raise ActionError("about", "names too many issues (at most 400 characters)")
    return text


def _department(session, value) -> str:
    if not isinstance(value, str) or session.get(Department, value) is None:
        raise ActionError("department_code", f"no department {value!r}")
    return value


def _checked(session, field: str, value):
    if field in ("problem", "countermeasure", "owner"):
        return _text(field, value)
    if field == "evidence":
        return _text(field, value, required=False)
    if field == "about":
        return _about(session, value)
    if field == "department_code":
        return _department(session, value)
    if field == "due":
        return _due(value)
    return _status(value)


def as_dict(row: ReviewAction) -> dict:
    """An action as plain JSON data: dates as YYYY-MM-DD, instants in site time; `about_kpi`
    the KPI key or None, `about_issues` the issue ids (empty for a KPI)."""
    kpi = row.about if row.about in weekly.KPI_KEYS else None
    return {
        "id": row.id, "problem": row.problem, "about": row.about, "about_kpi": kpi,
        "about_issues": [] if kpi else row.about.split(","),
        "countermeasure": row.countermeasure, "owner": row.owner,
        "department_code": row.department_code, "due": row.due.isoformat(), "status": row.status,
        "evidence": row.evidence, "opened_week": row.opened_week, "closed_week": row.closed_week,
        "created_at": timezones.to_site(row.created_at).isoformat(), "created_by": row.created_by,
        "updated_at": timezones.to_site(row.updated_at).isoformat(), "updated_by": row.updated_by,
        "status_history": json.loads(row.status_history),
    }


def _change(row: ReviewAction, status: str, week: str, by: str, now: datetime) -> None:
    """Record a change of status; closing stamps the week, reopening clears it."""
    history = json.loads(row.status_history)
    history.append({"at": timezones.to_site(now).isoformat(), "by": by, "from": row.status,
                    "to": status, "week": week})
    row.status_history = json.dumps(history, ensure_ascii=False)
    row.closed_week = week if status in CLOSED else None
    row.status = status


def _verified_has_evidence(row: ReviewAction) -> None:
    if row.status == "verified" and not row.evidence:
        raise ActionError("evidence", "a verified action says what shows it worked")


def create(engine: Engine, *, problem: str, about, countermeasure: str, owner: str,
           department_code: str, due, opened_week: str, created_by: str, now: datetime,
           status: str = "open", evidence: str = "") -> dict:
    """Open an action in the review of `opened_week`; returns it as `as_dict`."""
    week = _week("opened_week", opened_week)
    by = _text("created_by", created_by)
    with db.session_scope(engine) as session:
        values = {field: _checked(session, field, value) for field, value in (
            ("problem", problem), ("about", about), ("countermeasure", countermeasure),
            ("owner", owner), ("department_code", department_code), ("due", due),
            ("status", status), ("evidence", evidence))}
        row = ReviewAction(**values, opened_week=week, created_at=now, created_by=by,
                           updated_at=now, updated_by=by, status_history="[]")
        row.closed_week = week if row.status in CLOSED else None
        _verified_has_evidence(row)
        session.add(row)
        session.flush()
        return as_dict(row)


def update(engine: Engine, action_id: int, *, updated_by: str, now: datetime, week: str,
           **changes) -> dict:
    """Change an action in the review of `week` (EDITABLE fields); a change of status is kept
    in its history, and closing it (verified, dropped) stamps `week` as its closed_week."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ActionError(unknown[0], f"cannot be changed; editable: {', '.join(EDITABLE)}")
    week = _week("week", week)
    by = _text("updated_by", updated_by)
    with db.session_scope(engine) as session:
        row = session.get(ReviewAction, action_id)
        if row is None:
            raise ActionError("id", f"no action {action_id!r}")
        checked = {field: _checked(session, field, value) for field, value in changes.items()}
        status = checked.pop("status", row.status)
        for field, value in checked.items():
            setattr(row, field, value)
        if status != row.status:
            _change(row, status, week, by, now)
        _verified_has_evidence(row)
        row.updated_at, row.updated_by = now, by
        session.flush()
        return as_dict(row)


def get(engine: Engine, action_id: int) -> dict | None:
    with db.session_scope(engine) as session:
        row = session.get(ReviewAction, action_id)
        return None if row is None else as_dict(row)


def carried(engine: Engine, week: str) -> list[dict]:
    """The actions opened in or before `week` and not closed before it, oldest first, each
    with `overdue`: due before the week's end and neither done nor verified."""
    _, until = weekly.week_window(week)
    end = until.date()
    with db.session_scope(engine) as session:
        rows = session.scalars(
            select(ReviewAction).where(ReviewAction.opened_week <= week)
            .where((ReviewAction.closed_week.is_(None)) | (ReviewAction.closed_week >= week))
            .order_by(ReviewAction.id)).all()
        return [{**as_dict(row), "overdue": row.due < end and row.status not in NOT_OVERDUE}
                for row in rows]


def markers(engine: Engine, week: str, since: date) -> list[dict]:
    """Where a countermeasure started on a KPI's chart: each action about a KPI opened in or
    before `week` and not dropped, on the site date it was opened (from `since` on)."""
    _, until = weekly.week_window(week)
    with db.session_scope(engine) as session:
        rows = session.scalars(
            select(ReviewAction).where(ReviewAction.opened_week <= week)
            .where(ReviewAction.status != "dropped").order_by(ReviewAction.id)).all()
        found = []
        for row in rows:
            kpi = as_dict(row)["about_kpi"]
            day = timezones.to_site(row.created_at).date()
            if kpi and since <= day < until.date():
                found.append({"date": day.isoformat(), "action_id": row.id, "kpi": kpi})
        return found
