"""One view of the explorer: its rows, read once and shared by every panel of the page, the
issues behind each mark of its charts, each chart, and the issue list.

The rows are the issues raised over the view's longer span (the window, and at least the
four weeks before its end, which the control chart and the week over week comparison look
back over) and the issues open at as_of, under the view's filters. Its marks (a clicked
hand-off, a heatmap cell, ...) narrow every panel to the issues behind them, one after the
other. Which issues are behind a mark is decided against the chart the mark was drawn on:
the window's issues for the hand-offs, time held, Pareto and heatmaps; the two weeks to
as_of for the week over week comparison; the weeks and days of the span for the share
unresolved and the control chart; the issues open at as_of for their ageing.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from datetime import date, datetime, tzinfo
from functools import cached_property
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from data import db, kpis
from data.analysis import ageing, breakdown, change, control, handoffs, holding
from data.explorer import figures, grid, history, rows
from data.explorer.state import NO_VALUE, Mark, Window
from data.words import t

# Hops from this one on are one group in the time held (3: "hop 3 and later").
LAST_HOP_GROUP = 3
# The longest hops drawn as points in each box of the time held.
LONGEST_PER_BOX = 3
PANELS = ("flow", "matrix", "pairs", "held", "pareto", "ageing", "unresolved", "heat_raised",
          "heat_response", "xmr", "wow")
# The issue list's columns, in order: the frame's column and the word of its head.
LIST_COLUMNS = (("id", "explorer_col_id"), ("raised", "explorer_col_raised"),
                ("type", "explorer_col_type"), ("severity", "explorer_col_severity"),
                ("title", "explorer_col_title"), ("department", "explorer_col_department"),
                ("holder", "explorer_col_holder"), ("location", "explorer_col_location"),
                ("line", "explorer_col_line"), ("status", "explorer_col_status"),
                ("response_min", "explorer_col_response"),
                ("resolution_min", "explorer_col_resolution"),
                ("handoffs", "explorer_col_handoffs"), ("returns", "explorer_col_returns"),
                ("cause", "explorer_col_cause"))
NUMBER_COLUMNS = ("response_min", "resolution_min", "handoffs", "returns")


def _is(values: pd.Series, code: str) -> np.ndarray:
    """Where a column holds `code` (NO_VALUE: where it holds nothing)."""
    if code == NO_VALUE:
        return values.isna().to_numpy(dtype=bool)
    return (values.astype(object) == code).fillna(False).to_numpy(dtype=bool)


def _department_codes(values: pd.Series) -> np.ndarray:
    """Department codes, NO_VALUE where there is none."""
    codes = values.to_numpy(dtype=object)
    return np.where(pd.isna(codes), NO_VALUE, codes).astype(object)


def _newest_first(issues: pd.DataFrame) -> np.ndarray:
    """The order of issues by raised_at, newest first, ties by id: from the order they come in
    when they come by raised_at and id (as the rows are read), else sorted here."""
    raised = holding.nanoseconds(issues["raised_at"])
    step = np.diff(raised)
    ids = issues["id"].to_numpy(dtype=object)
    ties = np.flatnonzero(step == 0)
    if (step >= 0).all() and (ids[ties] < ids[ties + 1]).all():
        return np.argsort(-raised, kind="stable")
    return np.lexsort((pd.Index(ids).argsort().argsort(), -raised))


class Frames:
    """The rows a view works on: `history` (raised over the span, not cancelled), the open
    issues at as_of, their events, and the shifts. `events` may be given as a function that
    takes them, called when a panel first reads them."""

    def __init__(self, history: pd.DataFrame, open_now: pd.DataFrame,
                 events: pd.DataFrame | Callable[[], pd.DataFrame], shifts: pd.DataFrame,
                 known: pd.DataFrame | None = None, cut: "history.Cut | None" = None):
        """`known`: history, then the open issues not in it (View.known), when the reader has
        it at hand; `cut`: the history's cut these rows are, which takes the open issues'
        events and the hand-offs without taking all the events."""
        self.history, self.open_now, self.shifts, self.known = history, open_now, shifts, known
        self._events, self.cut = events, cut

    @cached_property
    def events(self) -> pd.DataFrame:
        return self._events() if callable(self._events) else self._events

    def only(self, ids: set[str]) -> "Frames":
        return Frames(self.history[self.history["id"].isin(ids)].reset_index(drop=True),
                      self.open_now[self.open_now["id"].isin(ids)].reset_index(drop=True),
                      lambda: self.events[self.events["issue_id"].isin(ids)].reset_index(drop=True),
                      self.shifts)


def computed_hops(known: pd.DataFrame, frames: Frames, window: Window) -> pd.DataFrame:
    """holding.holding_intervals over a view's rows at its window's as_of."""
    return holding.holding_intervals(known, frames.events, window.as_of, frames.shifts)


class View:
    """A window's frames narrowed by its marks, and everything drawn from them."""

    def __init__(self, window: Window, frames: Frames, reference: dict, tz: tzinfo,
                 parent: "View | None" = None, left_out: int = 0,
                 hops: Callable[[pd.DataFrame, Frames, Window], pd.DataFrame | tuple] = computed_hops):
        """`hops`: what computed_hops answers, perhaps from hops kept before
        (history.Cut.intervals), perhaps with a mask of the hops of the window's issues."""
        self.window, self.frames, self.reference, self.tz = window, frames, reference, tz
        self.parent, self.left_out, self._hops = parent, left_out, hops
        self._drawn: dict = {}
        self._lock = threading.Lock()

    # ---- the issues ----------------------------------------------------------------------

    @cached_property
    def population(self) -> pd.DataFrame:
        """The window's issues: raised in [since, until), not cancelled."""
        raised = pd.to_datetime(self.frames.history["raised_at"], utc=True)
        inside = (raised >= self.window.since) & (raised < self.window.until)
        return self.frames.history[inside.to_numpy(dtype=bool)].reset_index(drop=True)

    @cached_property
    def known(self) -> pd.DataFrame:
        """Every issue of the view: the span's and the open ones, each once."""
        if self.frames.known is not None:
            return self.frames.known
        history, open_now = self.frames.history, self.frames.open_now
        extra = open_now[~open_now["id"].isin(history["id"])]
        return pd.concat([history, extra], ignore_index=True) if len(extra) else history

    @cached_property
    def intervals(self) -> pd.DataFrame:
        """The holding intervals of every issue of the view (an issue's hops depend on its
        own events only, so a narrowed view keeps its parent's)."""
        return self._placed_intervals[0]

    @cached_property
    def _placed_intervals(self) -> tuple[pd.DataFrame, np.ndarray | None]:
        """The intervals, and which of them are of the window's issues when `hops` says."""
        if self.parent is not None:
            mine = self.parent.intervals["issue_id"].isin(self.known["id"])
            return self.parent.intervals[mine.to_numpy(dtype=bool)].reset_index(drop=True), None
        found = self._hops(self.known, self.frames, self.window)
        return found if isinstance(found, tuple) else (found, None)

    @cached_property
    def window_intervals(self) -> pd.DataFrame:
        mine = self._placed_intervals[1]
        if mine is None:
            mine = self.intervals["issue_id"].isin(self.population["id"]).to_numpy(dtype=bool)
        return self.intervals[mine].reset_index(drop=True)

    @cached_property
    def open_ages(self) -> pd.DataFrame:
        return ageing.open_ages(self.frames.open_now, self.open_events, self.window.as_of)

    @cached_property
    def open_events(self) -> pd.DataFrame:
        """The events of the issues open at as_of: all that their ageing reads."""
        if self.frames.cut is not None:
            return self.frames.cut.open_events
        events = self.frames.events
        return events[events["issue_id"].isin(self.frames.open_now["id"]).to_numpy(dtype=bool)]

    @cached_property
    def handoff_events(self) -> pd.DataFrame:
        """The hand-off events: all that kpis.handoff_counts counts."""
        if self.frames.cut is not None:
            return self.frames.cut.handoff_events
        events = self.frames.events
        return events[(events["kind"] == kpis.HANDOFF_KIND).to_numpy(dtype=bool)]

    def _weeks_population(self) -> pd.DataFrame:
        last_start, _, at = change.weeks(self.window.as_of, self.tz)
        raised = pd.to_datetime(self.frames.history["raised_at"], utc=True)
        return self.frames.history[((raised >= last_start) & (raised < at)).to_numpy(dtype=bool)]

    # ---- marks ----------------------------------------------------------------------------

    def ids_behind(self, mark: Mark) -> set[str]:
        """The issues behind a mark, on the chart it was drawn on (module docstring); a mark
        whose key names nothing of this view has none."""
        kind, key = mark.kind, mark.key
        if kind == "issue":
            return set(self.known["id"]) & {key[0]}
        if kind in ("dim", "week"):
            dimension, value = key
            if dimension not in breakdown.DIMENSIONS:
                return set()
            frame = self.population if kind == "dim" else self._weeks_population()
            return set(frame["id"][_is(frame[breakdown.DIMENSIONS[dimension]], value)])
        if kind == "flow":
            return set(handoffs.flow_issue_ids(self.window_intervals, key[0], key[1]))
        if kind == "node":
            hops = self.window_intervals
            nodes = [handoffs.node(d, h) for d, h in zip(hops["department_code"], hops["hop"])]
            return {issue for issue, n in zip(hops["issue_id"], nodes) if n == key[0]}
        if kind == "matrix":
            passed = handoffs.handoffs(self.window_intervals)
            chosen = _is(passed["from_department"], key[0]) & _is(passed["to_department"], key[1])
            return set(passed["issue_id"][chosen])
        if kind == "pair":
            pairs = handoffs.ping_pong_pairs(self.window_intervals)
            first, second = sorted(key)
            chosen = pairs[(pairs["department_a"] == first) & (pairs["department_b"] == second)]
            return {issue for ids in chosen["issue_ids"] for issue in ids}
        if kind == "held":
            hops = self.held_hops
            try:
                group = int(key[1])
            except ValueError:
                return set()
            chosen = _is(hops["department"], key[0]) & (hops["hop_group"] == group).to_numpy()
            return set(hops["issue_id"][chosen])
        if kind == "ageing":
            ages = self.open_ages
            try:
                bucket = int(key[0])
            except ValueError:
                return set()
            chosen = (ages["bucket"] == bucket).to_numpy() & _is(ages["holder"], key[1])
            return set(ages["issue_id"][chosen])
        if kind == "unresolved":
            return self._unresolved_ids(key[0], key[1])
        if kind == "hour":
            try:
                weekday, hour = int(key[0]) - 1, int(key[1])
            except ValueError:
                return set()
            local = pd.to_datetime(self.population["raised_at"], utc=True).dt.tz_convert(self.tz)
            chosen = (local.dt.day_of_week == weekday) & (local.dt.hour == hour)
            return set(self.population["id"][chosen.to_numpy(dtype=bool)])
        if kind == "day":
            history = self.frames.history
            local = pd.to_datetime(history["raised_at"], utc=True).dt.tz_convert(self.tz)
            chosen = (local.dt.date.astype(str) == key[0]).to_numpy(dtype=bool)
            return set(history["id"][chosen])
        raise ValueError(f"unknown mark {mark.kind!r}")

    def _unresolved_ids(self, week: str, hours: str) -> set[str]:
        """The span's issues raised in the site-local week starting `week` still unresolved
        (neither resolved nor closed) `hours` after being raised, as of as_of."""
        try:
            monday, after = date.fromisoformat(week), pd.Timedelta(hours=float(hours))
        except ValueError:
            return set()
        history = self.frames.history
        local = pd.to_datetime(history["raised_at"], utc=True).dt.tz_convert(self.tz)
        in_week = ((local.dt.date >= monday) & (local.dt.date < monday + pd.Timedelta(days=7).to_pytimedelta()))
        at = kpis.instant(self.window.as_of)
        never = pd.Timestamp.max.tz_localize("UTC")
        finished = pd.concat([
            pd.to_datetime(history[column], utc=True).where(
                pd.to_datetime(history[column], utc=True) <= at, never).fillna(never)
            for column in ("resolved_at", "closed_at")], axis=1).min(axis=1)
        waiting = finished > pd.to_datetime(history["raised_at"], utc=True) + after
        return set(history["id"][(in_week & waiting).to_numpy(dtype=bool)])

    def narrowed(self, mark: Mark) -> "View":
        ids = self.ids_behind(mark)
        return View(self.window, self.frames.only(ids), self.reference, self.tz, parent=self,
                    left_out=self.left_out)

    # ---- what the charts draw ------------------------------------------------------------

    @cached_property
    def held_hops(self) -> pd.DataFrame:
        """The window's hops that were let go by as_of, with their hop group and minutes."""
        hops = self.window_intervals
        done = hops[hops["let_go_at"].notna()]
        return pd.DataFrame({
            "issue_id": done["issue_id"].to_numpy(dtype=object),
            "department": _department_codes(done["department_code"]),
            "hop_group": np.minimum(done["hop"].to_numpy(dtype="int64"), LAST_HOP_GROUP),
            "minutes": done["held_min"].to_numpy(dtype="float64"),
        })

    def held_boxes(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
        """Per department and hop group: count and the 10th, 25th, 50th, 75th and 90th
        percentiles of the minutes held (linear, as kpis.median_p90); the longest hops of
        each; and each department's resolution limit (the median resolve_minutes of the
        window's issues whose hops it held)."""
        hops = self.held_hops
        if hops.empty:
            return (pd.DataFrame(columns=["department", "hop", "p10", "q1", "median", "q3", "p90", "count"]),
                    pd.DataFrame(columns=["issue_id", "department", "hop", "minutes"]),
                    pd.Series(dtype="float64"))
        grouped = hops.groupby(["department", "hop_group"], sort=True)["minutes"]
        boxes = grouped.quantile([0.1, 0.25, 0.5, 0.75, 0.9]).unstack()
        boxes.columns = ["p10", "q1", "median", "q3", "p90"]
        boxes["count"] = grouped.size()
        boxes = boxes.reset_index().rename(columns={"hop_group": "hop"})
        # Only hops as long as their box's LONGEST_PER_BOX-th can be among its longest.
        least = grouped.nlargest(LONGEST_PER_BOX).groupby(level=[0, 1]).min().rename("least")
        candidates = hops.join(least, on=["department", "hop_group"])
        candidates = candidates[candidates["minutes"] >= candidates["least"]].drop(columns="least")
        longest = (candidates.sort_values(["minutes", "issue_id"], ascending=[False, True], kind="stable")
                   .groupby(["department", "hop_group"], sort=False).head(LONGEST_PER_BOX)
                   .rename(columns={"hop_group": "hop"}))
        place = pd.Index(self.population["id"].to_numpy(dtype=object)).get_indexer(
            hops["issue_id"].to_numpy(dtype=object))
        limit = self.population["resolve_minutes"].to_numpy(dtype="float64")[place]
        limits = (hops.assign(limit=np.where(place >= 0, limit, np.nan))
                  .groupby("department")["limit"].median())
        return boxes, longest, limits

    def figure(self, panel: str, lang: str, *, by: str = "issue_type",
               countermeasures: Sequence[date] = ()) -> dict:
        """One panel's figure (PANELS), drawn once per language and choice."""
        key = (panel, lang, by if panel in ("pareto", "wow") else None,
               tuple(countermeasures) if panel == "xmr" else None)
        with self._lock:
            if key not in self._drawn:
                self._drawn[key] = self._draw(panel, figures.Names(self.reference, lang), by,
                                              countermeasures)
            return self._drawn[key]

    def _draw(self, panel: str, names: figures.Names, by: str,
              countermeasures: Sequence[date]) -> dict:
        as_of = self.window.as_of
        if panel == "flow":
            return figures.handoff_flow(handoffs.handoff_flow(self.window_intervals), names)
        if panel == "matrix":
            return figures.handoff_matrix(handoffs.handoff_matrix(self.window_intervals), names)
        if panel == "pairs":
            return figures.ping_pong_pairs(handoffs.ping_pong_pairs(self.window_intervals), names)
        if panel == "held":
            return figures.time_held(*self.held_boxes(), names)
        if panel == "pareto":
            return figures.pareto(breakdown.pareto(self.population, by), by, names)
        if panel == "ageing":
            return figures.ageing(ageing.ageing(self.frames.open_now, self.open_events, as_of),
                                  names)
        if panel == "unresolved":
            return figures.unresolved_after(
                ageing.unresolved_after(self.frames.history, as_of, tz=self.tz), names)
        if panel in ("heat_raised", "heat_response"):
            return figures.heatmap(ageing.heatmap(self.population, as_of, self.tz), names,
                                   "raised" if panel == "heat_raised" else "response_median_min")
        if panel == "xmr":
            daily = control.daily_response_median(self.frames.history, as_of, self.tz)
            return figures.control_chart(control.xmr(daily, countermeasures), countermeasures, names)
        if panel == "wow":
            return figures.week_over_week(
                change.week_over_week(self.frames.history, as_of, by, self.tz), by, names)
        raise ValueError(f"unknown panel {panel!r}; the panels are {', '.join(PANELS)}")

    # ---- the issue list -------------------------------------------------------------------

    def issue_list(self, show: Mark | None, lang: str) -> pd.DataFrame:
        """The issues behind `show` (none: the window's issues), one row each with the
        list's columns (LIST_COLUMNS), as the grid shows and exports them: the newest first."""
        return self._list_rows(self.list_issues(show), lang)

    def list_issues(self, show: Mark | None) -> pd.DataFrame:
        """The issues of the list (issue_list), in its order: the newest first."""
        key = ("list", show)
        with self._lock:
            if key not in self._drawn:
                issues = self.population if show is None else self.known[
                    self.known["id"].isin(self.ids_behind(show)).to_numpy(dtype=bool)]
                self._drawn[key] = issues.take(_newest_first(issues)).reset_index(drop=True)
            return self._drawn[key]

    def list_page(self, show: Mark | None, lang: str, sort_model=None, filter_model=None,
                  start: int = 0, end: int = 100) -> tuple[pd.DataFrame, int]:
        """Rows start to end of the list as the grid shows it (grid.apply over issue_list),
        and how many rows it shows in all: only the columns the grid sorts and filters by are
        taken for the whole list; only the page's rows get all their columns."""
        issues = self.list_issues(show)
        needed = grid.columns_used(sort_model, filter_model)
        unknown = needed - {name for name, _ in LIST_COLUMNS}
        if unknown:
            raise ValueError(f"the list has no column {sorted(unknown)[0]!r} to sort or filter by")
        if needed:
            whole = pd.DataFrame({name: self._list_column(show, lang, name)
                                  for name, _ in LIST_COLUMNS if name in needed})
            shown = grid.positions(whole, sort_model, filter_model)
        else:
            shown = np.arange(len(issues))
        return self._list_rows(issues.take(shown[max(start, 0):max(end, 0)]), lang), len(shown)

    def _list_column(self, show: Mark | None, lang: str, name: str) -> np.ndarray:
        """One column of the whole list, taken once per view."""
        key = ("list column", show, lang, name)
        with self._lock:
            found = self._drawn.get(key)
        if found is None:
            found = self._list_rows(self.list_issues(show), lang, (name,))[name].to_numpy()
            with self._lock:
                self._drawn[key] = found
        return found

    def _list_rows(self, issues: pd.DataFrame, lang: str,
                   columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The list's rows of `issues` (each row its issue's alone), all columns or those named."""
        wanted = [name for name, _ in LIST_COLUMNS if columns is None or name in columns]
        names = figures.Names(self.reference, lang)
        as_of = self.window.as_of
        statuses = {code: t(f"status_{code}", lang) for code in STATUSES}

        def hops() -> pd.DataFrame:
            if "hops" not in found:
                mine = self.intervals["issue_id"].isin(issues["id"]).to_numpy(dtype=bool)
                found["hops"] = self.intervals[mine]
            return found["hops"]

        def named(values, dimension: str, missing) -> np.ndarray:
            codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
            word = statuses.get if dimension == "status" else (lambda v: names.value(dimension, v))
            words = np.array([word(v) for v in uniques] + [missing], dtype=object)
            return words[codes]

        def text(values: pd.Series) -> np.ndarray:
            return values.astype(object).where(values.notna(), None).to_numpy(dtype=object)

        def raised() -> np.ndarray:
            local = pd.to_datetime(issues["raised_at"], utc=True).dt.tz_convert(self.tz).dt.tz_localize(None)
            stamps = np.datetime_as_string(local.to_numpy(dtype="datetime64[ns]"), unit="m")
            # "YYYY-MM-DDTHH:MM" with a space for the T, in place over the characters.
            if len(stamps):
                stamps.view(np.uint32).reshape(len(stamps), -1)[:, 10] = ord(" ")
            return stamps.astype(object)

        def holder() -> np.ndarray:
            held = hops()[hops()["let_go_at"].isna()].drop_duplicates("issue_id", keep="last") \
                .set_index("issue_id")["department_code"]
            return named(issues["id"].map(held), "department", "")

        def returns() -> np.ndarray:
            counted = hops().groupby("issue_id")["returned"].sum()
            return counted.reindex(issues["id"]).fillna(0).to_numpy(dtype="int64")

        found: dict = {}
        make = {
            "id": lambda: issues["id"].to_numpy(dtype=object),
            "raised": raised,
            "type": lambda: named(issues["issue_type"], "issue_type", None),
            "severity": lambda: text(issues["severity"]),
            "title": lambda: text(issues["title"]),
            "department": lambda: named(issues["owner_department_code"], "department", None),
            "holder": holder,
            "location": lambda: named(issues["location_code"], "location", None),
            "line": lambda: text(issues["line"]),
            "status": lambda: named(status_at(issues, as_of), "status", None).tolist(),
            "response_min": lambda: kpis.response_minutes(issues, as_of).round(1).to_numpy(dtype="float64"),
            "resolution_min": lambda: kpis.resolution_minutes(issues, as_of).round(1).to_numpy(dtype="float64"),
            "handoffs": lambda: kpis.handoff_counts(issues, self.handoff_events, as_of)
            .reindex(issues["id"]).to_numpy(dtype="int64"),
            "returns": returns,
            "cause": lambda: text(issues["cause"]),
        }
        return pd.DataFrame({name: make[name]() for name in wanted})


STATUSES = ("open", "acknowledged", "resolved", "closed")


def status_at(issues: pd.DataFrame, as_of: datetime) -> np.ndarray:
    """Each issue's state at as_of from its stamps, as a manager reading back then saw it:
    closed once closed (resolved first or not), resolved, acknowledged, else open."""
    at = kpis.instant(as_of)

    def by_then(column: str) -> np.ndarray:
        return (pd.to_datetime(issues[column], utc=True) <= at).fillna(False).to_numpy(dtype=bool)

    resolved, closed, acknowledged = (by_then(c) for c in ("resolved_at", "closed_at", "acknowledged_at"))
    return np.select([closed, resolved, acknowledged], ["closed", "resolved", "acknowledged"], "open")


# ---- one view per window, filters and marks, shared by the page's panels -------------------

# The plant's names and codes when the database cannot be read: the page still comes up.
NO_REFERENCE = {"departments": {}, "issue_types": {}, "locations": {}, "lines": [], "severities": []}

CACHE_VIEWS = 8
CACHE_S = 60.0
_views: "OrderedDict[tuple, tuple[float, View]]" = OrderedDict()
_building: dict[tuple, threading.Lock] = {}
_guard = threading.Lock()


def view_for(database_url: str, window: Window, filters: dict[str, tuple[str, ...]],
             marks: Sequence[Mark], tz: tzinfo) -> View:
    """The view of a window under filters and marks, built at most once a minute however
    many panels ask (one builder at a time per view; the others wait for it): cut from the
    recent history in memory (data.explorer.history) when its span starts inside it, else
    read from the database."""
    key = (database_url, window, tuple(sorted(filters.items())), tuple(marks), str(tz))
    with _guard:
        cached = _views.get(key)
        if cached and time.monotonic() - cached[0] < CACHE_S:
            _views.move_to_end(key)
            return cached[1]
        lock = _building.setdefault(key, threading.Lock())
    with lock:
        with _guard:
            cached = _views.get(key)
            if cached and time.monotonic() - cached[0] < CACHE_S:
                return cached[1]
        view = _build(database_url, window, filters, marks, tz)
        with _guard:
            _views[key] = (time.monotonic(), view)
            _views.move_to_end(key)
            while len(_views) > CACHE_VIEWS:
                _views.popitem(last=False)
            _building.pop(key, None)
        return view


def _build(database_url: str, window: Window, filters: dict, marks: Sequence[Mark],
           tz: tzinfo) -> View:
    recent = history.snapshot_for(database_url)
    if recent.covers(window.history_since):
        loaded = recent.rows(window.history_since, window.as_of, window.as_of, filters, lazy=True)
        cut = loaded.cut
        frames = Frames(loaded.issues, loaded.open_now, lambda: cut.events, loaded.shifts,
                        loaded.known, cut)
        view = View(window, frames, reference_for(database_url), tz, left_out=len(loaded.left_out),
                    hops=lambda known, frames, at: cut.intervals(known, at.as_of, frames.shifts,
                                                                 at.since, at.until))
    else:
        with db.get_engine(database_url).connect() as conn:
            loaded = rows.load(conn, window.history_since, window.as_of, window.as_of, filters)
            reference = reference_for(database_url, conn)
        view = View(window, Frames(loaded.issues, loaded.open_now, loaded.events, loaded.shifts),
                    reference, tz, left_out=len(loaded.left_out))
    for mark in marks:
        view = view.narrowed(mark)
    return view


_references: dict[str, tuple[float, dict]] = {}


def reference_for(database_url: str, conn=None) -> dict:
    """The plant's names and codes (rows.reference), read at most once a minute."""
    cached = _references.get(database_url)
    if cached and time.monotonic() - cached[0] < CACHE_S:
        return cached[1]
    if conn is None:
        with db.get_engine(database_url).connect() as own:
            reference = rows.reference(own)
    else:
        reference = rows.reference(conn)
    _references[database_url] = (time.monotonic(), reference)
    return reference


def shift_finder(database_url: str, lines: Sequence[str]) -> Callable[[datetime], tuple | None]:
    """What state.resolve asks to find "this shift": the plan's shift at an instant."""
    def shift_at(as_of: datetime):
        with db.get_engine(database_url).connect() as conn:
            return rows.shift_at(conn, as_of, lines)
    return shift_at


def causes_for(database_url: str, window: Window) -> list[str]:
    """The causes recorded over a window's span, most frequent first: the cause filter's
    choices."""
    with db.get_engine(database_url).connect() as conn:
        return rows.causes(conn, window.history_since, window.as_of)
