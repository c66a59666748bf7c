"""The review page's reads and writes (dashboards/review.py), by database URL: the pack a week
is shown with, the weeks there is something to show, the action register as it stands and the
changes a manager makes to it during the meeting, and the pack as a file.

A week is shown from its frozen pack when it has one. Otherwise the pack is built as of the
week's end plus WEEKLY_GRACE_HOURS (the moment from which check_fresh builds it from what the
sources hold), or as of now while that moment has not come: so every look at a past week
shows the same figures, computed once and kept in the cache a while. A week not over, or one
the sources have not caught up with, is refused with the reason, never shown as empty figures.

The figures are the pack's; the action register is read as it stands, because the meeting
changes it while the pack is on the screen, and the files written from the page carry it so.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from data import cache, db, queries, timezones
from data.models import Issue
from data.reports import actions, render, weekly

# How long a pack built for the page is kept: a past week's figures do not change, and a
# file asked for from the page is rendered from the pack the page shows.
PACK_KEPT_S = 15 * 60
EXPORTS = {"pdf": ".pdf", "xlsx": ".xlsx", "html": ".html"}
NOT_OVER, BEHIND = "not_over", "behind"


@dataclass(frozen=True)
class Shown:
    """What the page shows of a week: its pack (None when refused), whether the pack is the
    frozen one, the instant it is of, and why it was refused (NOT_OVER, BEHIND) with the
    refusal's own words."""
    week: str
    pack: dict | None
    frozen: bool
    as_of: datetime
    refused: str | None = None
    reason: str = ""


def as_of_for(week: str, now: datetime) -> datetime:
    """The instant an unfrozen week is built as of: its end plus the grace, or now before then."""
    _, until = weekly.week_window(week)
    return min(now, until + weekly.grace())


def shown(database_url: str, week: str, now: datetime, as_of: datetime | None = None) -> Shown:
    """The pack of `week` for the page: frozen, else built as of `as_of` (as_of_for by
    default), else refused."""
    engine = db.get_engine(database_url)
    kept = weekly.frozen(engine, week)
    if kept is not None:
        return Shown(week, kept, True, datetime.fromisoformat(kept["as_of"]))
    at = as_of or as_of_for(week, now)
    try:
        pack = cache.cached(cache.cache_key("review-pack", database_url, week, at.isoformat()),
                            lambda: weekly.build_pack(engine, week, as_of=at), timeout_s=PACK_KEPT_S)
    except weekly.WeekNotOver as exc:
        return Shown(week, None, False, at, NOT_OVER, str(exc))
    except weekly.SourcesBehind as exc:
        return Shown(week, None, False, at, BEHIND, str(exc))
    return Shown(week, pack, False, at)


def weeks(database_url: str, now: datetime) -> list[str]:
    """The weeks there is something to show, oldest first: from the week of the first issue
    raised (or the oldest frozen pack) to the week now is in."""
    engine = db.get_engine(database_url)
    with engine.connect() as conn:
        first = conn.execute(select(func.min(Issue.raised_at)).where(
            Issue.raised_at >= queries.plausible().earliest, Issue.raised_at <= now)).scalar()
    current = weekly.week_of(timezones.to_site(now).date())
    start = current if first is None else weekly.week_of(timezones.to_site(first).date())
    found = []
    while start <= current and len(found) < 520:
        found.append(start)
        start = weekly.shifted(start, 1)
    return found


def register(database_url: str, week: str) -> list[dict]:
    """The action register carried into `week`, as it stands."""
    return actions.carried(db.get_engine(database_url), week)


def departments(database_url: str) -> list[dict]:
    """The plant's departments (code, name_zh, name_en), for the owner's department of an action."""
    with db.get_engine(database_url).connect() as conn:
        return queries.departments(conn).to_dict("records")


def open_action(database_url: str, week: str, by: str, now: datetime, **fields) -> dict:
    """A new action in the review of `week` (actions.create), opened by `by`."""
    return actions.create(db.get_engine(database_url), opened_week=week, created_by=by, now=now,
                          **fields)


def change_action(database_url: str, action_id: int, week: str, by: str, now: datetime,
                  **changes) -> dict:
    """An action's status or evidence changed in the review of `week` (actions.update)."""
    return actions.update(db.get_engine(database_url), action_id, updated_by=by, now=now,
                          week=week, **changes)


def with_register(pack: dict, database_url: str) -> dict:
    """The pack with the action register as it stands, as the page shows it."""
    return {**pack, "actions": register(database_url, pack["week"])}


def export(database_url: str, week: str, kind: str, lang: str, now: datetime,
           as_of: datetime | None = None) -> tuple[bytes, str]:
    """The week's pack as the page shows it, as a file of `kind` (pdf, xlsx, html) in `lang`,
    and the file's name; ValueError when the week has no pack to show."""
    suffix = EXPORTS[kind]
    seen = shown(database_url, week, now, as_of)
    if seen.pack is None:
        raise ValueError(seen.reason)
    content = render.document(with_register(seen.pack, database_url), suffix, lang)
    return content, f"floorlink-review-{week}-{lang}{suffix}"


def due_default(week: str) -> date:
    """The due date offered for a new action: the Friday after the meeting, which is held the
    Monday after the week reviewed."""
    _, until = weekly.week_window(week)
    return until.date() + timedelta(days=4)
