"""The weekly review pack on schedule: every week, at WEEKLY_PACK_AT (site time, "mon 07:30"),
the pack of the week before is frozen and written into WEEKLY_PACK_DIR as
`<week>/floorlink-<week>-{zh,en}.{pdf,xlsx,html}`, and the plant is told where to read it.

The one sender runs it (data/notify/sender.py), so two web workers never build it twice; the
files being there is what says the week is done, so a sender that stopped half way builds the
rest on its next try, and a folder emptied by hand is written again from the frozen pack. The
telling is the caller's (`tell`): the reports know nothing of the notifier. Only the last
complete week is built: a week missed whole (the sender stopped for a week) is not caught up;
`python app.py report weekly --week W --freeze` writes it by hand. docs/review.md ("Scheduled").
"""
from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Callable

from sqlalchemy.engine import Engine

from data import settings
from data.reports import render, weekly

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LANGUAGES = ("zh", "en")
EXTENSIONS = (".pdf", ".xlsx", ".html")
# Who froze a pack built on schedule (weekly_packs.built_by).
BUILT_BY = "FloorLink schedule"
# The figures a message about the pack gives, with last week's.
HEADLINE = ("raised", "response_median_min", "response_sla_compliance")
_AT = re.compile(r"^\s*([a-z]{3})\s+([01]?\d|2[0-3]):([0-5]\d)\s*$")


def parse_at(value: str) -> tuple[int, time]:
    """WEEKLY_PACK_AT ("mon 07:30") as (days after the week's end, time of day)."""
    found = _AT.match((value or "").lower())
    if not found or found[1] not in WEEKDAYS:
        raise ValueError(f"setting WEEKLY_PACK_AT must be a day and a time such as 'mon 07:30', "
                         f"got {value!r}")
    return WEEKDAYS.index(found[1]), time(int(found[2]), int(found[3]))


def due_week(now: datetime, at_setting: str) -> str | None:
    """The last complete week once its time (`at_setting`, in the week after it) has passed;
    None before."""
    day, clock = parse_at(at_setting)
    week = weekly.last_complete_week(now)
    _, until = weekly.week_window(week)
    due = datetime.combine(until.date() + timedelta(days=day), clock, tzinfo=until.tzinfo)
    return week if now >= due else None


def folder() -> Path | None:
    value = settings.get("WEEKLY_PACK_DIR").strip()
    return Path(value) if value else None


def files(root: Path, week: str) -> list[tuple[Path, str]]:
    """The week's files under `root`, each with its language."""
    return [(root / week / f"floorlink-{week}-{lang}{ext}", lang)
            for lang in LANGUAGES for ext in EXTENSIONS]


def pending(now: datetime) -> str | None:
    """The week whose pack is due at `now` and not all written yet; None when the schedule is
    off (WEEKLY_PACK_DIR empty), not due, or done. Cheap: the sender asks every tick."""
    root = folder()
    if root is None:
        return None
    week = due_week(now, settings.get("WEEKLY_PACK_AT"))
    if week is None or all(path.is_file() for path, _ in files(root, week)):
        return None
    return week


def headline(pack: dict) -> list[dict]:
    """The KPI rows of HEADLINE, in that order."""
    rows = {row["key"]: row for row in pack.get("kpis", [])}
    return [rows[key] for key in HEADLINE if key in rows]


def build_scheduled(engine: Engine, now: datetime,
                    tell: Callable[[Engine, dict, datetime], int] | None = None) -> str | None:
    """Freeze and write the pack that is due at `now` when its files are not all there, then
    `tell(engine, pack, now)` (which owes its messages once, whatever is asked again). Returns
    the week written, or None. Refused as the pack is (weekly.SourcesBehind) while the sources
    are behind: the caller tries again later."""
    week = pending(now)
    if week is None:
        return None
    pack = weekly.freeze(engine, week, as_of=now, built_by=BUILT_BY)
    root = folder()
    (root / week).mkdir(parents=True, exist_ok=True)
    for path, lang in files(root, week):
        if not path.is_file():
            render.write(pack, path, lang)
    if tell is not None:
        tell(engine, pack, now)
    return week


def review_link(week: str) -> str:
    """The review page of the week, where the message points."""
    return f"{settings.public_url()}/review?week={week}"


def format_headline(row: dict, lang: str) -> tuple[str, str]:
    """A headline KPI's value and last week's, as the pack shows them."""
    return (render.kpi_value(row.get("this"), row["unit"], lang),
            render.kpi_value(row.get("last"), row["unit"], lang))

