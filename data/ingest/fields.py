"""The one rulebook of field checks: what a value of each canonical column may be.

Every door in (a file import, a mapped file, an event log, the ingest API) hands a row as a
dict of raw values (text, numbers, date/time values) to `check_row` and gets back the values
as the table stores them and every problem found, each as (field, value, reason). Nothing
here reads a file or the database: the caller says which keys exist (`Rules.known`), in which
zone naive times are local (`Rules.zone`) and which bounds hold (`data.queries.plausible`).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Callable, Mapping, NamedTuple, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from data import queries, settings, store, timezones
from data.models import (
    CANONICAL_TABLES, EVENT_KINDS, ISSUE_STATUSES, LOCATION_KINDS, SEVERITIES,
)

UTC = timezone.utc
# The largest quantity a movement or a plan may carry: more than any plant moves at once, and
# far from where sums of floats lose whole units.
MAX_QTY = 1e9
# The longest text any cell may hold, whatever its column (notes and causes included).
MAX_CELL_CHARS = 128 * 1024


class Problem(NamedTuple):
    """One thing wrong with one value: the column (None for the row as a whole), the value as
    given, and why."""
    field: str | None
    value: object
    reason: str


class CellError(ValueError):
    """A value that cannot become a value of its column; the caller adds where it was."""


class SettingError(ValueError):
    """A setting (SITE_TZ, PLAUSIBLE_*) that cannot be used as it is."""


def show(value: object) -> str:
    """A value as the user would recognise it in a message: text quoted, dates and numbers bare."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return str(value)


def zone_named(name: str, what: str = "SITE_TZ") -> ZoneInfo:
    """The IANA zone `name`, or a SettingError that says which setting or key is wrong."""
    try:
        return timezones.zone(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise SettingError(f"{what} {name!r} is not an IANA time zone (such as Asia/Shanghai "
                           "or Europe/Berlin)") from None


@dataclass
class Rules:
    """What a row is checked against: the keys that exist, the zone of naive times, the bounds."""
    known: dict[str, set | dict] = field(default_factory=dict)
    zone: tzinfo | None = None
    """Where a time without an offset is local: the source's zone, by default the site's."""
    bounds: queries.Bounds | None = None
    site_zone: tzinfo | None = None
    _local: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.site_zone is None:
            self.site_zone = zone_named(settings.get("SITE_TZ"))
        if self.zone is None:
            self.zone = self.site_zone
        if self.bounds is None:
            try:
                self.bounds = queries.plausible()
            except ValueError as exc:
                raise SettingError(str(exc)) from None

    def shown(self, instant: datetime) -> str:
        return instant.astimezone(self.site_zone).isoformat(sep=" ")

    def instant(self, value: datetime) -> datetime:
        """An aware UTC instant within the bounds; a naive value is local time of `zone`."""
        if value.tzinfo is None:
            cached = self._local.get(value)
            if cached is None:
                cached = self._localise(value)
                if len(self._local) > 200_000:
                    self._local.clear()
                self._local[value] = cached
            if isinstance(cached, CellError):
                raise CellError(str(cached))
            instant = cached
        else:
            try:
                instant = value.astimezone(UTC)
            except OverflowError:
                raise self._outside(value) from None
        if not self.bounds.earliest <= instant < self.bounds.until:
            raise self._outside(value)
        return instant

    def _localise(self, value: datetime) -> datetime | CellError:
        try:
            instant = value.replace(tzinfo=self.zone).astimezone(UTC)
            back = instant.astimezone(self.zone).replace(tzinfo=None)
        except OverflowError:
            return self._outside(value)
        if back != value:
            return CellError(f"{value.isoformat(sep=' ')} does not exist in {self.zone} "
                             "(the clocks were put forward over it)")
        return instant

    def _outside(self, value: datetime) -> CellError:
        earliest, until = self.bounds.settings[:2]
        return CellError(f"{value.isoformat(sep=' ')} is outside the plausible range "
                         f"PLAUSIBLE_FROM {earliest} to PLAUSIBLE_UNTIL {until}")


def text(value: object) -> str:
    """Text as written; a number (a code typed as 1001 in Excel) is its plain digits."""
    if isinstance(value, str):
        if "\x00" in value:
            raise CellError("contains a NUL character")
        if len(value) > MAX_CELL_CHARS:
            raise CellError(f"longer than {MAX_CELL_CHARS:,} characters ({len(value):,})")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    raise CellError(f"not text: {show(value)} (format the column as Text)")


def number(value: object) -> float:
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            result = float(value)
        except (ValueError, OverflowError):
            result = math.nan
        if math.isfinite(result):
            return result
    raise CellError(f"not a number: {show(value)}")


def _ranged(low: float | None, high: Callable[[Rules], tuple[float, str]],
            low_open: bool) -> Callable[[object, Rules], float]:
    def parse(value: object, rules: Rules) -> float:
        result = number(value)
        if low_open and result <= low:
            raise CellError(f"must be greater than {low:g}: {show(value)}")
        if not low_open and result < low:
            raise CellError(f"must not be negative: {show(value)}")
        limit, name = high(rules)
        if result > limit:
            raise CellError(f"more than {name}: {show(value)}")
        return result
    return parse


def _max_qty(rules: Rules) -> tuple[float, str]:
    return MAX_QTY, f"{MAX_QTY:,.0f}"


def _max_minutes(rules: Rules) -> tuple[float, str]:
    limit = rules.bounds.max_limit_minutes
    return limit, f"MAX_LIMIT_MINUTES ({rules.bounds.settings[2]})"


quantity = _ranged(0, _max_qty, low_open=True)
count = _ranged(0, _max_qty, low_open=False)
minutes = _ranged(0, _max_minutes, low_open=True)


def one_of(choices: Sequence[str]) -> Callable[[object], str]:
    def parse(value: object) -> str:
        result = text(value)
        if result not in choices:
            raise CellError(f"{result!r} is not one of {', '.join(choices)}")
        return result
    return parse


# A date and a time of day at least: a bare date is no instant.
_ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def instant_text(value: str) -> datetime | None:
    """ISO 8601 text with a date and a time of day, or None."""
    if _ISO_DATE_TIME.match(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def instant(value: object, rules: Rules) -> datetime:
    """A date/time value (an XLSX cell, a mapped format), or ISO 8601 text; naive is `rules.zone`."""
    if isinstance(value, str):
        value = instant_text(value) or value
    if isinstance(value, datetime):
        return rules.instant(value)
    raise CellError(f"not a date/time: {show(value)}")


@dataclass(frozen=True)
class Field:
    """One column of a canonical table and how a raw value becomes a stored value."""
    name: str
    parse: Callable = text
    required: bool = True
    refers_to: str | None = None
    """The canonical table whose key the value must be (it must exist: `Rules.known`)."""
    listed: bool = False
    """A `;`-separated list of codes, stored normalised as 'A;B'."""
    uses_rules: bool = False
    """`parse` takes (value, rules): instants and bounded numbers."""


RowCheck = Callable[[dict, Rules], "Problem | None"]


def _sla_resolve_after_ack(row: dict, rules: Rules) -> Problem | None:
    if row["resolve_minutes"] < row["ack_minutes"]:
        return Problem("resolve_minutes", row["resolve_minutes"],
                       f"{row['resolve_minutes']:g} is less than ack_minutes {row['ack_minutes']:g}")
    return None


def _issue_times_after_raised(row: dict, rules: Rules) -> Problem | None:
    for name in ("acknowledged_at", "resolved_at", "closed_at"):
        at = row.get(name)
        if at is not None and at < row["raised_at"]:
            return Problem(name, at, f"{rules.shown(at)} is before raised_at "
                                     f"{rules.shown(row['raised_at'])}")
    return None


def _finished_status_has_its_time(row: dict, rules: Rules) -> Problem | None:
    """A resolved or closed issue without the instant it became so would count as open
    (and soon overdue) for ever: the KPIs go by the instants, not by the status."""
    for status, column in (("resolved", "resolved_at"), ("closed", "closed_at")):
        if row["status"] == status and row.get(column) is None:
            return Problem(column, None, f"status {status!r} needs {column}, the instant it was {status}")
    return None


def _event_after_raised(row: dict, rules: Rules) -> Problem | None:
    raised_at = rules.known["issues"][row["issue_id"]]
    if row["at"] < raised_at:
        return Problem("at", row["at"], f"{rules.shown(row['at'])} is before issue "
                                        f"{row['issue_id']} was raised ({rules.shown(raised_at)})")
    return None


def _movement_between_two_places(row: dict, rules: Rules) -> Problem | None:
    if row["from_location_code"] == row["to_location_code"]:
        return Problem("to_location_code", row["to_location_code"],
                       f"the same as from_location_code ({row['from_location_code']!r})")
    return None


def _shift_ends_after_start(row: dict, rules: Rules) -> Problem | None:
    if row["shift_end"] <= row["shift_start"]:
        return Problem("shift_end", row["shift_end"], f"{rules.shown(row['shift_end'])} is not "
                                                      f"after shift_start {rules.shown(row['shift_start'])}")
    return None


@dataclass(frozen=True)
class TableFormat:
    """The columns of one canonical table and the checks of a whole row."""
    fields: tuple[Field, ...]
    row_checks: tuple[RowCheck, ...] = ()

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


def _at(name: str, required: bool = True) -> Field:
    return Field(name, instant, required, uses_rules=True)


FORMATS: dict[str, TableFormat] = {
    "departments": TableFormat((Field("code"), Field("name_zh"), Field("name_en"))),
    "people": TableFormat((
        Field("id"), Field("name"), Field("department_code", refers_to="departments"),
        Field("im_handle", required=False))),
    "sla_rules": TableFormat((
        Field("issue_type"), Field("name_zh"), Field("name_en"),
        Field("owner_department_code", refers_to="departments"),
        Field("notify_department_codes", required=False, refers_to="departments", listed=True),
        Field("ack_minutes", minutes, uses_rules=True),
        Field("resolve_minutes", minutes, uses_rules=True)),
        (_sla_resolve_after_ack,)),
    "locations": TableFormat((
        Field("code"), Field("name"), Field("kind", one_of(LOCATION_KINDS)),
        Field("line", required=False),
        Field("max_dwell_minutes", minutes, required=False, uses_rules=True))),
    "materials": TableFormat((Field("code"), Field("name"), Field("unit"), Field("category"))),
    "issues": TableFormat((
        Field("id"), Field("issue_type", refers_to="sla_rules"), Field("title"),
        Field("severity", one_of(SEVERITIES)),
        Field("location_code", required=False, refers_to="locations"),
        Field("raised_by", required=False), _at("raised_at"),
        Field("owner_department_code", refers_to="departments"),
        _at("acknowledged_at", False), _at("resolved_at", False), _at("closed_at", False),
        Field("status", one_of(ISSUE_STATUSES)), Field("cause", required=False)),
        (_issue_times_after_raised, _finished_status_has_its_time)),
    # department_code is required: an event without it could not be recognised on re-import,
    # since it is part of the event's key.
    "issue_events": TableFormat((
        Field("issue_id", refers_to="issues"), _at("at"),
        Field("kind", one_of(EVENT_KINDS)), Field("department_code", refers_to="departments"),
        Field("actor", required=False), Field("note", required=False)),
        (_event_after_raised,)),
    "movements": TableFormat((
        Field("id"), _at("at"), Field("material_code", refers_to="materials"),
        Field("lot"), Field("qty", quantity, uses_rules=True),
        Field("from_location_code", refers_to="locations"),
        Field("to_location_code", refers_to="locations"), Field("order_ref", required=False)),
        (_movement_between_two_places,)),
    "production_plan": TableFormat((
        Field("line"), _at("shift_start"), _at("shift_end"),
        Field("planned_qty", count, uses_rules=True),
        Field("actual_qty", count, required=False, uses_rules=True)),
        (_shift_ends_after_start,)),
}

NOUNS = {"departments": "department", "sla_rules": "issue type", "locations": "location",
         "materials": "material", "issues": "issue"}


def _lengths(table: str) -> dict[str, int | None]:
    columns = CANONICAL_TABLES[table].__table__.columns
    return {f.name: getattr(columns[f.name].type, "length", None) for f in FORMATS[table].fields}


LENGTHS = {table: _lengths(table) for table in FORMATS}


def check_value(table: str, f: Field, raw: object, rules: Rules) -> object:
    """The stored value of one column, or CellError. None (or '' for a code list) when empty."""
    if raw is None or raw == "":
        if f.required:
            raise CellError("a value is required")
        return "" if f.listed else None
    value = f.parse(raw, rules) if f.uses_rules else f.parse(raw)
    if f.refers_to:
        codes = (list(dict.fromkeys(c.strip() for c in value.split(";") if c.strip()))
                 if f.listed else [value])
        known = rules.known.get(f.refers_to, ())
        for code in codes:
            if code not in known:
                raise CellError(f"unknown {NOUNS[f.refers_to]} {code!r} (not in {f.refers_to}; "
                                f"import {f.refers_to} first)")
        if f.listed:
            value = ";".join(codes)
    max_length = LENGTHS[table][f.name]
    if isinstance(value, str) and max_length is not None and len(value) > max_length:
        raise CellError(f"longer than {max_length} characters ({len(value)})")
    return value


def check_row(table: str, row: Mapping[str, object], rules: Rules,
              columns: Sequence[str] | None = None) -> tuple[dict, list[Problem]]:
    """The row's values as `table` stores them, and every problem found in it.

    `row`: raw values by column name (missing and None are empty). `columns`: the columns the
    source has (default: the row's keys); an optional column it lacks is left out of the
    values, so that a re-import leaves the stored value alone. Whole-row checks run when the
    columns they need are good.
    """
    table_format = FORMATS[table]
    present = row.keys() if columns is None else columns
    values: dict[str, object] = {}
    problems: list[Problem] = []
    for f in table_format.fields:
        if not f.required and f.name not in present:
            continue
        raw = row.get(f.name)
        try:
            values[f.name] = check_value(table, f, raw, rules)
        except CellError as exc:
            problems.append(Problem(f.name, raw, str(exc)))
    if not problems:
        for check in table_format.row_checks:
            problem = check(values, rules)
            if problem:
                problems.append(problem)
    return values, problems


def key_of(table: str) -> list[str]:
    """The columns that say two rows of `table` are the same row."""
    return store.natural_key(CANONICAL_TABLES[table])


def future(instant: datetime, now: datetime, slack: timedelta = timedelta(minutes=5)) -> bool:
    """Whether an instant lies ahead of the clock (beyond a writer's clock drift)."""
    return instant > now + slack
