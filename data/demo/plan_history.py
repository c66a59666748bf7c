"""The production plan of the demo plant's history: each line's two 12-hour shifts a day
(08:00-20:00 and 20:00-08:00 site time), planned and made, the running shift with its
actual so far. The material flow draws on the same shifts."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterator

from data import timezones
from data.demo import pace
from data.demo.reference import LINES
from data.demo.timeline import Timeline

SHIFT = timedelta(hours=12)
# The night shift plans a little less than the day shift.
NIGHT_PLAN_SHARE = 0.9


def shift_starts(since: datetime, until: datetime, tz) -> Iterator[datetime]:
    """The 08:00 and 20:00 (site time) shift starts whose shift overlaps [since, until)."""
    day = since.astimezone(tz).date() - timedelta(days=1)
    while True:
        for hour in (pace.DAY_START, pace.NIGHT_START):
            begin = datetime.combine(day, hour, tzinfo=tz).astimezone(timezones.UTC)
            if begin >= until:
                return
            if begin + SHIFT > since:
                yield begin
        day += timedelta(days=1)


def shift_label(begin: datetime, tz) -> str:
    """The shift's site-local date and D (day) or N (night), as work orders name it."""
    local = begin.astimezone(tz)
    return f"{local:%y%m%d}{'N' if pace.is_night(begin, tz) else 'D'}"


class PlanHistory:
    """Each line's shifts over a timeline."""

    def __init__(self, timeline: Timeline):
        self.timeline = timeline

    def shifts(self) -> list[dict]:
        """Each line's shifts over the history, with what the whole shift will have made."""
        timeline = self.timeline
        rng = timeline.rng("plan")
        rows = []
        for begin in shift_starts(timeline.start, timeline.end, timeline.tz):
            for line in LINES:
                share = NIGHT_PLAN_SHARE if timeline.is_night(begin) else 1.0
                planned = round(line.planned_per_shift * share * rng.uniform(0.95, 1.05), -1)
                made = round(min(planned * 1.03,
                                 planned * pace.lognormal(rng, line.attainment, 0.04)))
                rows.append({"line": line, "shift_start": begin, "planned_qty": planned,
                             "made": made})
        return rows

    def production_plan(self, shifts: list[dict]) -> list[dict]:
        """Planned vs actual per line and shift; the running shift reports its actual so far."""
        end = self.timeline.end
        rows = []
        for shift in shifts:
            begin = shift["shift_start"]
            actual = shift["made"] * min(1.0, (end - begin) / SHIFT)
            rows.append({"line": shift["line"].code, "shift_start": begin,
                         "shift_end": begin + SHIFT, "planned_qty": float(shift["planned_qty"]),
                         "actual_qty": float(round(actual))})
        return rows
