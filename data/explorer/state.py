"""The explorer's view as it lives in the address: window, instant, filters, marks, the
break-down dimension, the issues listed and the countermeasure dates. The address is the
only state, so a pasted link shows the same view and the browser's back and forward move
through views.

    /explorer?window=7d&at=2026-11-23T08:00&dept=MNT&dept=QA&mark=hour:6|2&by=location

A value the explorer cannot use is left out and named in a notice (a `Notice`, worded by
the page in its language); it never stops the page.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Callable, Iterable
from urllib.parse import parse_qs, unquote, urlencode

from data import timezones

PRESETS = ("today", "shift", "7d", "30d", "custom")
DEFAULT_PRESET = "7d"
PRESET_DAYS = {"7d": 7, "30d": 30}
# The filters, each with its key in the address; they are also the break-down dimensions
# (data.analysis.breakdown.DIMENSIONS).
FILTER_KEYS = {"department": "dept", "line": "line", "location": "loc", "issue_type": "type",
               "severity": "sev", "cause": "cause"}
DIMENSIONS = tuple(FILTER_KEYS)
DEFAULT_BY = "issue_type"
# In a filter or a mark, the issues without a value (no line, no cause recorded).
NO_VALUE = "-"
# The marks a chart can be clicked on, with the number of parts each key has:
#   dim       dimension | value                  a value of a dimension in the window (Pareto)
#   week      dimension | value                  the same over the two weeks to the instant
#                                                (week over week)
#   flow      source node | target node          a link of the hand-off flow (QA·2 | PRD·3)
#   node      node                               a node of the hand-off flow
#   matrix    from department | to department    a cell of the hand-off matrix
#   pair      department | department            a ping-pong pair
#   held      department | hop                   a box of time held (hop 3 stands for 3 and later)
#   ageing    bucket | holder                    a bar of the open issues' ageing
#   unresolved week start | hours                a week's share still unresolved after t hours
#   hour      weekday (1 Monday .. 7) | hour     a cell of the hour-of-day x weekday heatmaps
#   day       date                               a day of the control chart
#   issue     issue id                           one issue
MARK_PARTS = {"dim": 2, "week": 2, "flow": 2, "node": 1, "matrix": 2, "pair": 2, "held": 2, "ageing": 2,
              "unresolved": 2, "hour": 2, "day": 1, "issue": 1}
PART_SEPARATOR = "|"
KEY_ORDER = ("lang", "window", "since", "until", "at", *FILTER_KEYS.values(), "mark", "by",
             "show", "cm")
# A value from the address is shown back in a notice, cut to this many characters.
SHOWN_CHARS = 32
# The longest window the explorer computes, and the most values a filter or list takes.
MAX_DAYS = 400
MAX_VALUES = 200


@dataclass(frozen=True)
class Notice:
    """Something the address asked for and did not get: a word of data.words and the values
    it is written with."""
    word: str
    values: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Mark:
    """A clicked mark of a chart: what kind and its key (MARK_PARTS)."""
    kind: str
    key: tuple[str, ...]

    def token(self) -> str:
        return self.kind + ":" + PART_SEPARATOR.join(
            part.replace("%", "%25").replace(PART_SEPARATOR, "%7C") for part in self.key)

    @classmethod
    def parse(cls, token: str) -> "Mark":
        kind, colon, rest = token.partition(":")
        if not colon or kind not in MARK_PARTS:
            raise ValueError(token)
        key = tuple(unquote(part) for part in rest.split(PART_SEPARATOR)) if rest else ()
        if len(key) != MARK_PARTS[kind] or not all(part.strip() for part in key):
            raise ValueError(token)
        return cls(kind, key)


@dataclass(frozen=True)
class State:
    lang: str = "zh"
    window: str = DEFAULT_PRESET
    since: datetime | None = None
    until: datetime | None = None
    at: datetime | None = None
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    marks: tuple[Mark, ...] = ()
    by: str = DEFAULT_BY
    show: Mark | None = None
    countermeasures: tuple[date, ...] = ()

    def values(self, name: str) -> tuple[str, ...]:
        """The values a filter keeps (none: every value)."""
        return dict(self.filters).get(name, ())

    def with_values(self, name: str, values: Iterable[str]) -> "State":
        """The state with a filter's values replaced (an empty list removes the filter)."""
        kept = tuple(dict.fromkeys(v for v in values if v))
        others = {k: v for k, v in self.filters if k != name}
        if kept:
            others[name] = kept
        return replace(self, filters=tuple((k, others[k]) for k in FILTER_KEYS if k in others))


def shown(value: str) -> str:
    """A value from the address as a notice shows it back: cut to SHOWN_CHARS."""
    return value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS - 1] + "…"


def _pairs(query) -> list[tuple[str, str]]:
    """The address's parameters in order: from the search text (`?a=1&a=2`), or from a
    mapping of a key to a value or a list of values (as Dash hands a page its parameters)."""
    if isinstance(query, str):
        parsed = parse_qs(query.lstrip("?"), keep_blank_values=True)
    else:
        parsed = {k: v if isinstance(v, (list, tuple)) else [v] for k, v in (query or {}).items()}
    return [(key, str(value)) for key, values in parsed.items() for value in values]


def local_text(instant: datetime, tz: tzinfo) -> str:
    """An instant as the address writes it: site time to the minute, without an offset."""
    return instant.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def parse(query, tz: tzinfo) -> tuple[State, list[Notice]]:
    """The state an address asks for, and a notice for each value it could not use."""
    notices: list[Notice] = []
    given: dict[str, list[str]] = {}
    for key, value in _pairs(query):
        given.setdefault(key, []).append(value)

    def bad(key: str, value: str, word: str = "explorer_param_invalid", **values) -> None:
        notices.append(Notice(word, {"param": key, "value": shown(value), **values}))

    def last(key: str) -> str | None:
        values = [v.strip() for v in given.get(key, ()) if v.strip()]
        return values[-1] if values else None

    for key in given:
        if key not in KEY_ORDER:
            bad(key, ",".join(given[key]), "explorer_param_unknown")

    lang = last("lang") or "zh"
    if lang not in ("zh", "en"):
        bad("lang", lang)
        lang = "zh"
    window = last("window") or DEFAULT_PRESET
    if window not in PRESETS:
        bad("window", window, "explorer_param_choice", choices=", ".join(PRESETS))
        window = DEFAULT_PRESET

    def instant(key: str) -> datetime | None:
        text = last(key)
        if text is None:
            return None
        try:
            return timezones.parse_instant(text, tz)
        except ValueError:
            bad(key, text, "explorer_param_time")
            return None

    since, until, at = instant("since"), instant("until"), instant("at")

    filters = []
    for name, key in FILTER_KEYS.items():
        values = tuple(dict.fromkeys(v.strip() for v in given.get(key, ()) if v.strip()))
        if len(values) > MAX_VALUES:
            bad(key, f"{len(values)}", "explorer_param_too_many", most=MAX_VALUES)
            values = values[:MAX_VALUES]
        if values:
            filters.append((name, values))

    def mark(text: str) -> Mark | None:
        try:
            return Mark.parse(text)
        except ValueError:
            bad("mark" if text in given.get("mark", ()) else "show", text, "explorer_param_mark")
            return None

    marks = tuple(dict.fromkeys(m for m in (mark(t.strip()) for t in given.get("mark", ()) if t.strip())
                                if m is not None))
    show_text = last("show")
    show = mark(show_text) if show_text else None

    by = last("by") or DEFAULT_BY
    if by not in DIMENSIONS:
        bad("by", by, "explorer_param_choice", choices=", ".join(DIMENSIONS))
        by = DEFAULT_BY

    countermeasures = []
    for text in (part.strip() for value in given.get("cm", ()) for part in value.split(",")):
        if not text:
            continue
        try:
            countermeasures.append(date.fromisoformat(text))
        except ValueError:
            bad("cm", text, "explorer_param_date")
    return State(lang=lang, window=window, since=since, until=until, at=at,
                 filters=tuple(filters), marks=marks, by=by, show=show,
                 countermeasures=tuple(sorted(set(countermeasures)))), notices


def to_query(state: State, tz: tzinfo) -> str:
    """The address's search text of a state ("" for the default view); parse gives the
    state back."""
    pairs: list[tuple[str, str]] = []
    if state.lang != "zh":
        pairs.append(("lang", state.lang))
    if state.window != DEFAULT_PRESET:
        pairs.append(("window", state.window))
    for key, value in (("since", state.since), ("until", state.until), ("at", state.at)):
        if value is not None:
            pairs.append((key, local_text(value, tz)))
    for name, values in state.filters:
        pairs.extend((FILTER_KEYS[name], v) for v in values)
    pairs.extend(("mark", m.token()) for m in state.marks)
    if state.by != DEFAULT_BY:
        pairs.append(("by", state.by))
    if state.show is not None:
        pairs.append(("show", state.show.token()))
    if state.countermeasures:
        pairs.append(("cm", ",".join(d.isoformat() for d in state.countermeasures)))
    return "?" + urlencode(pairs, safe=":|·,") if pairs else ""


@dataclass(frozen=True)
class Window:
    """The instants a view is computed for: the issues raised in [since, until), as known
    at `as_of`; `history_since` starts the longer span the control chart and the week over
    week comparison look back over."""
    since: datetime
    until: datetime
    as_of: datetime
    preset: str
    history_since: datetime


# The control chart looks back at least this far, so that its limits rest on enough days;
# the week over week comparison needs two whole weeks.
HISTORY_DAYS = 28


def floor_minute(instant: datetime) -> datetime:
    return instant.replace(second=0, microsecond=0)


def resolve(state: State, now: datetime, tz: tzinfo,
            shift_at: Callable[[datetime], tuple[datetime, datetime] | None] | None = None,
            ) -> tuple[Window, list[Notice]]:
    """The window a state asks for at `now` (its instant `at`, else now to the minute).
    Presets end at the instant; "shift" is the production plan's shift under way at the
    instant (`shift_at`), else its last one; a custom window ends at the instant at the
    latest, since an issue raised later is not known then."""
    notices: list[Notice] = []
    now = floor_minute(now)
    as_of = state.at or now
    if as_of > now:
        notices.append(Notice("explorer_at_future", {"value": local_text(as_of, tz)}))
        as_of = now
    preset = state.window
    since = until = None
    if preset == "custom":
        since, until = state.since, state.until
        if since is None or until is None:
            notices.append(Notice("explorer_custom_incomplete"))
            preset = DEFAULT_PRESET
        else:
            if until > as_of:
                until = as_of
            if since >= until:
                notices.append(Notice("explorer_custom_empty", {
                    "since": local_text(since, tz), "until": local_text(until, tz)}))
                preset = DEFAULT_PRESET
            elif until - since > timedelta(days=MAX_DAYS):
                notices.append(Notice("explorer_custom_too_long", {"days": MAX_DAYS}))
                since = until - timedelta(days=MAX_DAYS)
    if preset == "shift":
        shift = shift_at(as_of) if shift_at else None
        if shift is None:
            notices.append(Notice("explorer_no_shift"))
            preset = "today"
        else:
            since, until = shift[0], min(shift[1], as_of)
            if since >= until:
                notices.append(Notice("explorer_no_shift"))
                preset = "today"
    if preset == "today":
        local = as_of.astimezone(tz)
        since = datetime.combine(local.date(), datetime.min.time(), tzinfo=tz).astimezone(as_of.tzinfo)
        until = as_of
    if preset in PRESET_DAYS:
        since, until = as_of - timedelta(days=PRESET_DAYS[preset]), as_of
    history = min(since, until - timedelta(days=HISTORY_DAYS))
    return Window(since, until, as_of, preset, history), notices
