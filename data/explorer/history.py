"""The plant's recent history in memory, so that the explorer answers a window by masks over
frames instead of reading and computing everything again at every minute and filter.

Per process and database: the issues raised in the last EXPLORER_HISTORY_DAYS and every issue
still unfinished when they begin (so every issue open at an instant since then), cancelled
ones left out as rows.load leaves them out; all their events; the plan's shifts from the
earliest of them on; and each issue's holding intervals. It is loaded once, then followed at
most every FOLLOW_EVERY_S by the stamps the wall follows (data/wall/follower.py): issues
written after the watermark less FOLLOW_OVERLAP_S by `updated_at`, events by `recorded_at`,
plan rows by `updated_at`, each replacing the row of its key; a new `queries.data_version`
(a bulk writer, another program deleting rows or changing a table that is not followed)
reloads it in full. A follow builds a new Snapshot in a thread of its own (new rows merged
into the sorted frames in place of a sort); views go on with the one they have meanwhile.

`rows` answers what rows.load answers for a window that starts inside the history: the
same frames, in the same order; `cut` answers the same, each frame taken when first asked for
(a view's first panel need not take all the events). `intervals` answers what holding.holding_intervals answers:
an issue's hops depend on its own events, so they are computed once (at the end of time) and
again only for issues that got new events or changed; a view at as_of takes the stored hops
of the issues with nothing after as_of, fills their open hop up to as_of, and recomputes the
others.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Select, or_, select, union_all
from sqlalchemy.engine import Connection

from data import db, kpis, queries, settings, timezones
from data.analysis import holding
from data.explorer import rows
from data.explorer.state import NO_VALUE
from data.models import Issue, IssueEvent, ProductionPlan

# The most often the history reads what was written since its last read.
FOLLOW_EVERY_S = 5.0
# The instant the stored hops are computed at: after every plausible row.
END_OF_TIME = datetime(2200, 1, 1, tzinfo=timezone.utc)
_NAT = holding.NAT
ISSUE_KEY, EVENT_KEY = ["raised_at", "id"], ["issue_id", "at", "event_id"]
PLAN_KEY = ["shift_start", "line"]
# The frame column each of the explorer's filters keeps values of (rows.FILTER_COLUMNS).
FILTER_FIELDS = {"department": "owner_department_code", "line": "line",
                 "location": "location_code", "issue_type": "issue_type",
                 "severity": "severity", "cause": "cause"}


def _events() -> Select:
    return select(IssueEvent.issue_id, IssueEvent.id.label("event_id"), IssueEvent.at,
                  IssueEvent.kind, IssueEvent.department_code)


def _kept_halves(stmt: Select, start: datetime) -> list[Select]:
    """`stmt` kept to the history's issues, not cancelled: raised since `start`, or raised
    before and not finished before it (three disjoint parts, each on an index)."""
    stmt = stmt.where(Issue.status != "cancelled")
    older = stmt.where(Issue.raised_at < start, or_(Issue.closed_at.is_(None), Issue.closed_at >= start))
    return [stmt.where(Issue.raised_at >= start), older.where(Issue.resolved_at.is_(None)),
            older.where(Issue.resolved_at >= start)]


def _kept(issues: pd.DataFrame, start: pd.Timestamp) -> np.ndarray:
    """Which issue rows belong in the history (as _kept_halves reads them), cancelled ones
    left out."""
    raised = issues["raised_at"]
    unfinished = (issues["resolved_at"].isna() | (issues["resolved_at"] >= start)) \
        & (issues["closed_at"].isna() | (issues["closed_at"] >= start))
    return ((issues["status"] != "cancelled") & ((raised >= start) | unfinished)).to_numpy(dtype=bool)


class Snapshot:
    """The history as one read left it: never changed, so a reader never sees half a follow.
    `left_out`: the rows left out as implausible, by table and key."""

    def __init__(self, start: pd.Timestamp, issues: pd.DataFrame, events: pd.DataFrame,
                 plan: pd.DataFrame, plan_since: pd.Timestamp, hops: pd.DataFrame,
                 left_out: dict[tuple[str, str], queries.LeftOut]):
        """`issues` sorted by ISSUE_KEY, `events` (of those issues only) by EVENT_KEY."""
        self.start, self.issues, self.plan, self.plan_since = start, issues, plan, plan_since
        self.events, self.hops, self.left_out = events, hops, left_out
        # Per issue (by position in `ids`): its stamps, its last event, its first hop's start.
        self.ids = pd.Index(issues["id"].to_numpy(dtype=object))
        self.event_code = self.ids.get_indexer(self.events["issue_id"].to_numpy(dtype=object))
        self.event_ns = holding.nanoseconds(self.events["at"])
        self.last_event_ns = np.full(len(self.ids), _NAT, dtype=np.int64)
        np.maximum.at(self.last_event_ns, self.event_code, self.event_ns)
        # Events come by issue id, then time: an issue's first row is its first event, and
        # the issues' order of first rows is the id order holding_intervals keeps.
        first = np.flatnonzero(np.r_[True, self.event_code[1:] != self.event_code[:-1]]) \
            if len(self.events) else np.zeros(0, dtype=np.int64)
        self.first_event_row = np.full(len(self.ids), -1, dtype=np.int64)
        self.first_event_row[self.event_code[first]] = first
        self.first_event_ns = np.full(len(self.ids), np.iinfo(np.int64).max, dtype=np.int64)
        self.first_event_ns[self.event_code[first]] = self.event_ns[first]
        self.lines = issues["line"].to_numpy(dtype=object)
        self.handoff_event = (self.events["kind"] == kpis.HANDOFF_KIND).to_numpy(dtype=bool)
        self.given = {name: {n: issues_or_events[n].notna().to_numpy(dtype=bool)
                             for n, kind in columns.items() if kind == "str"}
                      for name, issues_or_events, columns in (
                          ("issues", issues, rows.ISSUE_COLUMNS),
                          ("events", self.events, queries.EVENT_COLUMNS),
                          ("plan", plan, queries.PLAN_COLUMNS))}
        self.hop_code = self.ids.get_indexer(hops["issue_id"].to_numpy(dtype=object))
        self.hop_number = hops["hop"].to_numpy()
        self.first_taken_ns = np.full(len(self.ids), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(self.first_taken_ns, self.hop_code, holding.nanoseconds(hops["taken_at"]))
        self.issue_ns = {c: holding.nanoseconds(issues[c])
                         for c in ("raised_at", "resolved_at", "closed_at")}
        self.plan_ns = (holding.nanoseconds(plan["shift_start"]), holding.nanoseconds(plan["shift_end"]))

    def covers(self, since: datetime) -> bool:
        """Whether a window starting at `since` starts inside the history."""
        return kpis.instant(since) >= self.start

    def rows(self, since: datetime, until: datetime, as_of: datetime,
             filters: Mapping[str, Sequence[str]] | None = None, *,
             lazy: bool = False) -> rows.Rows:
        """rows.load's answer, by masks over the history (the window must start inside it);
        `lazy`: without its events (None), which its `cut` takes when they are first read."""
        cut = self.cut(since, until, as_of, filters)
        return rows.Rows(cut.issues, cut.open_now, None if lazy else cut.events, cut.shifts,
                         cut.left_out, known=cut.known, cut=cut)

    def cut(self, since: datetime, until: datetime, as_of: datetime,
            filters: Mapping[str, Sequence[str]] | None = None) -> "Cut":
        """What `rows` answers, each frame taken when first asked for (the window must start
        inside the history)."""
        if not since < until:
            raise ValueError(f"the window's since ({since.isoformat()}) must be before its until "
                             f"({until.isoformat()})")
        if not self.covers(since):
            raise ValueError(f"{since.isoformat()} is before the history ({self.start})")
        issues, ns = self.issues, self.issue_ns
        s, u, a = (kpis.instant(x).as_unit("ns").value for x in (since, until, as_of))
        chosen = np.ones(len(issues), dtype=bool)
        for name, values in (filters or {}).items():
            if name not in FILTER_FIELDS:
                raise ValueError(f"unknown filter {name!r}; the filters are {', '.join(FILTER_FIELDS)}")
            if values:
                column = issues[FILTER_FIELDS[name]]
                keep = column.isin(sorted({str(v) for v in values if v != NO_VALUE})).to_numpy(dtype=bool)
                if NO_VALUE in values:
                    keep = keep | column.isna().to_numpy(dtype=bool)
                chosen &= keep
        raised = ns["raised_at"]
        in_window = chosen & (raised >= s) & (raised < u)

        def after(column: str) -> np.ndarray:
            return (ns[column] == _NAT) | (ns[column] > a)

        open_now = chosen & (raised <= a) & after("resolved_at") & after("closed_at")
        known = in_window | open_now
        in_events = known[self.event_code] & (self.event_ns <= a)
        bound = min(raised[known].min(), s) if known.any() else s
        start, end = self.plan_ns
        in_plan = (start <= a) & (end > bound)
        return Cut(self, in_window, open_now, in_events, in_plan,
                   self._left_out_of(filters or {}, s, u, a, known))

    def _cut(self, name: str, chosen: np.ndarray, typed_as: np.ndarray | None = None) -> pd.DataFrame:
        """The chosen rows of a frame (a mask, or positions in order), typed as
        queries._frame types them when read alone (or as the rows of the mask `typed_as` are):
        text is pandas' string type, except a column without any value, which stays object."""
        frame = {"issues": self.issues, "events": self.events, "plan": self.plan}[name]
        cut = (frame[chosen] if chosen.dtype == bool else frame.take(chosen)).reset_index(drop=True)
        return self._typed(name, cut, chosen if typed_as is None else typed_as)

    def _typed(self, name: str, cut: pd.DataFrame, chosen: np.ndarray) -> pd.DataFrame:
        given = self.given[name]
        if not len(cut):
            return cut.astype({n: "str" for n in given})
        blank = {n for n, there in given.items() if not there[chosen].any()}
        filled = {n: "str" for n in given if n not in blank and cut[n].dtype == object}
        if not (blank or filled):
            return cut
        return cut.astype(filled).assign(**{n: np.full(len(cut), None, dtype=object) for n in blank})

    def _left_out_of(self, filters: Mapping[str, Sequence[str]], s: int, u: int, a: int,
                     known: np.ndarray) -> list[queries.LeftOut]:
        """The rows left out that rows.load would have read: issues by the values they were
        read with, events of the issues shown up to as_of."""
        def ns(value) -> int | None:
            return None if value is None else pd.Timestamp(value).as_unit("ns").value

        def passes(row: dict) -> bool:
            for name, values in filters.items():
                value = row.get(FILTER_FIELDS[name])
                if values and not (value in values or (value is None and NO_VALUE in values)):
                    return False
            return True

        found = []
        for left in self.left_out.values():
            row = left.row
            if left.table == queries.EVENTS.table:
                at, code = ns(row.get("at")), self.ids.get_indexer([row.get("issue_id")])[0]
                if code >= 0 and known[code] and at is not None and at <= a:
                    found.append(left)
                continue
            raised, resolved, closed = (ns(row.get(c)) for c in ("raised_at", "resolved_at", "closed_at"))
            if raised is None or row.get("status") == "cancelled" or not passes(row):
                continue
            open_then = raised <= a and (resolved is None or resolved > a) and (closed is None or closed > a)
            if s <= raised < u or open_then:
                found.append(left)
        return found

    def intervals(self, known: pd.DataFrame, events: pd.DataFrame, as_of: datetime,
                  shifts: pd.DataFrame) -> pd.DataFrame:
        """holding.holding_intervals(known, events, as_of, shifts) for rows this snapshot
        answered (`rows`): the stored hops of the issues nothing happened to after as_of, their
        open hop held up to as_of; computed again for the others. `events` may be a function
        that takes the events of the issues at given positions of the snapshot (Cut.events_of),
        so that only those computed again are taken."""
        return self.placed_intervals(known, events, as_of, shifts)[0]

    def placed_intervals(self, known: pd.DataFrame, events, as_of: datetime, shifts: pd.DataFrame,
                         code: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray | None]:
        """`intervals`, and the position in the snapshot of each hop's issue (None when the
        hops were computed without the snapshot). `code`: the positions of `known`'s issues
        in the snapshot, when the caller has them."""
        a = kpis.instant(as_of).as_unit("ns").value
        if code is None:
            code = self.ids.get_indexer(known["id"].to_numpy(dtype=object))
        if (code < 0).any() or not len(known):
            return holding.holding_intervals(
                known, events(code[code >= 0]) if callable(events) else events, as_of, shifts), None
        ns = self.issue_ns
        lines = known["line"].to_numpy(dtype=object)
        lost = set(self.plan["line"].dropna()) - set(shifts["line"].dropna())
        lost_line = (pd.Series(lines, dtype=object).isin(lost).to_numpy(dtype=bool) if lost
                     else np.zeros(len(known), dtype=bool))

        def after(column: str) -> np.ndarray:
            return (ns[column][code] != _NAT) & (ns[column][code] > a)

        # A stored hop counts the shifts from its issue's first hop on; the rows' shifts
        # reach back to the earliest issue raised, so an issue with an event before that is
        # computed again.
        touched = ((self.last_event_ns[code] > a) | after("resolved_at") | after("closed_at")
                   | (ns["raised_at"][code] > a) | lost_line
                   | (self.first_taken_ns[code] < ns["raised_at"][code].min()))
        stale = known[touched]
        stored = np.zeros(len(self.ids), dtype=bool)
        stored[code[~touched]] = True
        # holding_intervals' order: the issues with events by then in the order their events
        # come, then the others in `known`'s order; each issue's hops in order.
        place = np.zeros(len(self.ids), dtype=np.int64)
        place[code] = len(self.events) + np.arange(len(code))
        eventful = self.first_event_ns <= a
        place[eventful] = self.first_event_row[eventful]
        rows_kept = np.flatnonzero(stored[self.hop_code])
        if not len(stale):
            rows_kept = rows_kept[np.lexsort((self.hop_number[rows_kept], place[self.hop_code[rows_kept]]))]
            return self._filled(self.hops.take(rows_kept).reset_index(drop=True),
                                self.lines[self.hop_code[rows_kept]], a, shifts), self.hop_code[rows_kept]
        kept = self._filled(self.hops.take(rows_kept).reset_index(drop=True),
                            self.lines[self.hop_code[rows_kept]], a, shifts)
        stale_events = events(code[touched]) if callable(events) else \
            events[events["issue_id"].isin(stale["id"]).to_numpy(dtype=bool)]
        again = holding.holding_intervals(stale, stale_events, as_of, shifts)
        both = pd.concat([kept, again], ignore_index=True)
        codes = np.concatenate((self.hop_code[rows_kept],
                                self.ids.get_indexer(again["issue_id"].to_numpy(dtype=object))))
        order = np.lexsort((both["hop"].to_numpy(), place[codes]))
        return both.take(order).reset_index(drop=True), codes[order]

    @staticmethod
    def _filled(hops: pd.DataFrame, lines: np.ndarray, as_of_ns: int, shifts: pd.DataFrame) -> pd.DataFrame:
        """Stored hops (of issues on `lines`, a frame of their own) with their open hop held
        up to as_of."""
        held = hops["let_go_at"].isna().to_numpy(dtype=bool)
        if not held.any():
            return hops
        taken = holding.nanoseconds(hops["taken_at"][held])
        until = np.full(len(taken), as_of_ns, dtype=np.int64)
        minutes = hops["held_min"].to_numpy(dtype="float64", copy=True)
        minutes[held] = (until - taken) / holding.NS_PER_MINUTE
        worked = hops["held_work_min"].to_numpy(dtype="float64", copy=True)
        worked[held] = holding._held_work_minutes(taken, until, lines[held], shifts)
        hops["held_min"], hops["held_work_min"] = minutes, worked
        return hops


class Cut:
    """One window of a snapshot (Snapshot.cut): rows.load's frames, each taken from the
    snapshot when first asked for, so a view pays only for the frames its panels read."""

    def __init__(self, snapshot: Snapshot, in_window: np.ndarray, open_now: np.ndarray,
                 in_events: np.ndarray, in_plan: np.ndarray, left_out: list[queries.LeftOut]):
        self.snapshot, self.left_out = snapshot, left_out
        self.in_window, self.open_now_mask, self.in_events, self.in_plan = \
            in_window, open_now, in_events, in_plan

    @cached_property
    def known_codes(self) -> np.ndarray:
        """The positions in the snapshot of `known`'s issues."""
        return np.concatenate((np.flatnonzero(self.in_window),
                               np.flatnonzero(self.open_now_mask & ~self.in_window)))

    @cached_property
    def known(self) -> pd.DataFrame:
        """The window's issues, then the other open ones, as the view puts them together."""
        return self.snapshot._cut("issues", self.known_codes)

    @cached_property
    def issues(self) -> pd.DataFrame:
        """The window's issues: the first rows of `known`, typed as if taken alone."""
        window = self.known.iloc[:int(self.in_window.sum())]
        if len(window) == len(self.known):
            return window
        return self.snapshot._typed("issues", window, self.in_window)

    @cached_property
    def open_now(self) -> pd.DataFrame:
        return self.snapshot._cut("issues", self.open_now_mask)

    @cached_property
    def events(self) -> pd.DataFrame:
        return self.snapshot._cut("events", self.in_events)

    @cached_property
    def shifts(self) -> pd.DataFrame:
        return self.snapshot._cut("plan", self.in_plan)

    @cached_property
    def open_events(self) -> pd.DataFrame:
        """The events of the issues open at as_of (`open_now`), as `events` has them."""
        return self.events_of(np.flatnonzero(self.open_now_mask))

    @cached_property
    def handoff_events(self) -> pd.DataFrame:
        """The hand-off events (kpis.HANDOFF_KIND) of `events`, as `events` has them."""
        return self.snapshot._cut("events", self.in_events & self.snapshot.handoff_event,
                                  typed_as=self.in_events)

    def events_of(self, codes: np.ndarray) -> pd.DataFrame:
        """The events of the issues at positions `codes` of the snapshot, as `events` has them."""
        mine = np.zeros(len(self.snapshot.ids), dtype=bool)
        mine[codes] = True
        chosen = np.flatnonzero(self.in_events & mine[self.snapshot.event_code])
        return self.snapshot._cut("events", chosen, typed_as=self.in_events)

    def intervals(self, known: pd.DataFrame, as_of: datetime, shifts: pd.DataFrame,
                  since: datetime | None = None, until: datetime | None = None):
        """Snapshot.intervals of these rows (`known` is this cut's), taking only the events of
        the issues computed again; with since and until, also which hops are of the cut's
        window's issues (`issues`) raised in [since, until)."""
        hops, codes = self.snapshot.placed_intervals(known, self.events_of, as_of, shifts,
                                                     self.known_codes)
        if since is None:
            return hops
        if codes is None:
            return hops, None
        raised = self.snapshot.issue_ns["raised_at"][codes]
        s, u = (kpis.instant(x).as_unit("ns").value for x in (since, until))
        return hops, self.in_window[codes] & (raised >= s) & (raised < u)


class History:
    """One database's recent history, kept up to date (module docstring)."""

    def __init__(self, database_url: str):
        self.url = database_url
        self.snapshot: Snapshot | None = None
        self.loads = 0
        self._lock = threading.Lock()
        self._version: int | None = None
        self._watermark: datetime | None = None
        self._checked = -np.inf
        self._following = False

    def current(self) -> Snapshot:
        """The snapshot: loaded the first time (the caller waits), then brought up to date in
        a thread of its own when FOLLOW_EVERY_S have passed since the last look, while every
        caller goes on with the snapshot it has."""
        with self._lock:
            if self.snapshot is None:
                self._refresh()
                return self.snapshot
            if self._following or time.monotonic() - self._checked < FOLLOW_EVERY_S:
                return self.snapshot
            self._following = True
        threading.Thread(target=self.refresh, name="explorer-history", daemon=True).start()
        return self.snapshot

    def refresh(self) -> Snapshot:
        """Look now: a full load after a bulk write (or the first time), else a follow."""
        with self._lock:
            try:
                self._refresh()
            finally:
                self._following = False
            return self.snapshot

    def _refresh(self) -> None:
        with db.get_engine(self.url).connect() as conn:
            version = queries.data_version(conn)
            if version != self._version or self.snapshot is None:
                self._load(conn, version)
            else:
                self._follow(conn)
        self._checked = time.monotonic()

    def _load(self, conn: Connection, version: int) -> None:
        watermark = timezones.utc_now()
        days = settings.get_int("EXPLORER_HISTORY_DAYS")
        start = pd.Timestamp(watermark - timedelta(days=days)).floor("D")
        left_out: list[queries.LeftOut] = []
        issues = queries._frame(conn, union_all(*_kept_halves(rows._issues(), start)),
                                rows.ISSUE_COLUMNS, ISSUE_KEY, source=queries.ISSUES,
                                left_out=left_out)
        events = queries._frame(
            conn, union_all(*_kept_halves(_events().join(Issue, Issue.id == IssueEvent.issue_id),
                                          start)),
            queries.EVENT_COLUMNS, EVENT_KEY, source=queries.EVENTS, left_out=left_out)
        events = events[events["issue_id"].isin(issues["id"]).to_numpy(dtype=bool)].reset_index(drop=True)
        plan_since, plan = _plan(conn, issues, start)
        self.snapshot = Snapshot(start, issues, events, plan, plan_since,
                                 _hops_of(issues, events, plan), _by_key(left_out))
        self._version, self._watermark = version, watermark
        self.loads += 1

    def _follow(self, conn: Connection) -> None:
        """Read what was stamped after the watermark less the overlap, replacing by key."""
        watermark = timezones.utc_now()
        since = self._watermark - timedelta(seconds=settings.get_int("FOLLOW_OVERLAP_S"))
        old = self.snapshot
        left_out: list[queries.LeftOut] = []
        written = queries._frame(conn, rows._issues().where(Issue.updated_at > since),
                                 rows.ISSUE_COLUMNS, source=queries.ISSUES, left_out=left_out)
        new_events = queries._frame(conn, _events().where(IssueEvent.recorded_at > since),
                                    queries.EVENT_COLUMNS, source=queries.EVENTS, left_out=left_out)
        plan_written = conn.execute(select(ProductionPlan.line).where(
            ProductionPlan.updated_at > since).limit(1)).first() is not None
        kept = written[_kept(written, old.start)]
        arriving = set(kept["id"][old.ids.get_indexer(kept["id"].to_numpy(dtype=object)) < 0])
        if arriving:
            # An issue new to the history (raised, reopened, no longer cancelled): all its events.
            new_events = pd.concat([new_events, queries._by_keys(
                conn, _events(), IssueEvent.issue_id, arriving, queries.EVENT_COLUMNS,
                queries.EVENTS, left_out)], ignore_index=True).drop_duplicates("event_id")
        self._watermark = watermark
        if not (len(written) or len(new_events) or plan_written or left_out):
            return
        read = {(queries.ISSUES.table, str(key)) for key in written["id"]} \
            | {(queries.EVENTS.table, str(key)) for key in new_events["event_id"]}
        lefts = {key: left for key, left in old.left_out.items() if key not in read}
        lefts.update(_by_key(left_out))
        replaced = set(written["id"]) | {left.key for left in left_out if left.table == queries.ISSUES.table}
        issues = _merged(_without(old.issues, "id", replaced), kept, ISSUE_KEY)
        new_events = new_events[new_events["issue_id"].isin(issues["id"]).to_numpy(dtype=bool)]
        gone = replaced - set(kept["id"])
        events = _without(_without(old.events, "event_id", set(new_events["event_id"])), "issue_id", gone)
        events = _merged(events, new_events, EVENT_KEY)
        plan, plan_since, hops = old.plan, old.plan_since, old.hops
        if plan_written or (len(kept) and kept["raised_at"].min() < plan_since):
            plan_since, plan = _plan(conn, issues, old.start)
            hops = _hops_of(issues, events, plan)
        else:
            changed = replaced | set(new_events["issue_id"])
            again = issues[issues["id"].isin(changed).to_numpy(dtype=bool)]
            fresh = _hops_of(again, events[events["issue_id"].isin(changed).to_numpy(dtype=bool)], plan)
            hops = pd.concat([hops[~hops["issue_id"].isin(changed).to_numpy(dtype=bool)], fresh],
                             ignore_index=True)
        self.snapshot = Snapshot(old.start, issues.reset_index(drop=True), events, plan,
                                 plan_since, hops, lefts)


def _without(frame: pd.DataFrame, column: str, keys: set) -> pd.DataFrame:
    """`frame` without the rows whose `column` is one of `keys` (few), in its order."""
    if not keys:
        return frame
    return frame[~frame[column].isin(keys).to_numpy(dtype=bool)].reset_index(drop=True)


def _merged(old: pd.DataFrame, new: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """`old` (sorted by `key`) with the rows of `new` (a few) put in their places, as sorting
    them all would."""
    if not len(new):
        return old
    if len(new) * 20 > len(old):
        return pd.concat([old, new.astype(old.dtypes.to_dict())],
                         ignore_index=True).sort_values(key, ignore_index=True)
    new = new.astype(old.dtypes.to_dict()).sort_values(key, ignore_index=True)
    first, *rest = (_sortable(old[k]) for k in key)
    new_first, *new_rest = (_sortable(new[k]) for k in key)
    places = []
    for i, value in enumerate(new_first):
        low, high = np.searchsorted(first, value, "left"), np.searchsorted(first, value, "right")
        mine = tuple(r[i] for r in new_rest)
        place = low
        while place < high and tuple(r[place] for r in rest) < mine:
            place += 1
        places.append(place)
    order = np.insert(np.arange(len(old)), places, len(old) + np.arange(len(new)))
    return pd.concat([old, new], ignore_index=True).take(order).reset_index(drop=True)


def _sortable(values: pd.Series) -> np.ndarray:
    """A key column as values that compare as sort_values orders them."""
    return holding.nanoseconds(values) if values.dtype.kind == "M" else values.to_numpy(dtype=object)


def _plan(conn: Connection, issues: pd.DataFrame, start: pd.Timestamp) -> tuple[pd.Timestamp, pd.DataFrame]:
    """The plan's shifts from the earliest of the issues (or the start) on."""
    since = min(issues["raised_at"].min(), start) if len(issues) else start
    return since, rows.shifts(conn, since.to_pydatetime(), END_OF_TIME)


def _hops_of(issues: pd.DataFrame, events: pd.DataFrame, plan: pd.DataFrame) -> pd.DataFrame:
    return holding.holding_intervals(issues, events, END_OF_TIME, plan)


def _by_key(left_out: list[queries.LeftOut]) -> dict[tuple[str, str], queries.LeftOut]:
    return {(left.table, left.key): left for left in left_out}


_histories: dict[str, History] = {}
_guard = threading.Lock()


def snapshot_for(database_url: str) -> Snapshot:
    """This process's history of a database, brought up to date."""
    with _guard:
        history = _histories.setdefault(database_url, History(database_url))
    return history.current()


def forget(database_url: str | None = None) -> None:
    """Drop the histories kept (of one database, or all), so the next ask loads anew."""
    with _guard:
        if database_url is None:
            _histories.clear()
        else:
            _histories.pop(database_url, None)
