"""The benchmark's other ways to compute the wall's figures, each checked against the project.

- `read_tables`: every row the figures depend on, read from the database into numpy
  columns (strings dictionary-encoded, instants as epoch microseconds).
- `PandasEngine`: the figures from those columns with numpy and pandas, by full scans.
- `DuckEngine`: the same tables held in DuckDB, the figures recomputed by its SQL.
- `sql_parts`: the figures by plain aggregate SQL in the database itself.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger, Float, Integer, Select, and_, case, cast, extract, func, literal, null, or_, select,
    type_coerce, union_all,
)
from sqlalchemy.engine import Connection

from bench import figures as fig
from bench.figures import DepartmentFigures, Instants, NEVER, Parts, WindowFigures
from data.models import (
    Department, Issue, IssueEvent, Location, Movement, ProductionPlan, SlaRule, UtcDateTime,
)

FETCH_ROWS = 200_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# ---- reading the tables -----------------------------------------------------------------

class Dictionary:
    """One code per distinct string across every table, so codes compare across tables."""

    def __init__(self):
        self.values: list[str] = []
        self.index: dict[str, int] = {}
        self._decoder = np.array([None], dtype=object)

    def code(self, value: str) -> int:
        """The code of `value`, or -2 when no row has it."""
        return self.index.get(value, -2)

    def encode(self, column) -> np.ndarray:
        """Codes of a column of strings; None is -1."""
        codes, uniques = pd.factorize(np.asarray(column, dtype=object), use_na_sentinel=True)
        mapping = np.fromiter((self._add(u) for u in uniques), dtype=np.int64, count=len(uniques))
        return np.where(codes >= 0, mapping[np.maximum(codes, 0)] if len(mapping) else -1, -1)

    def _add(self, value: str) -> int:
        code = self.index.get(value)
        if code is None:
            code = self.index[value] = len(self.values)
            self.values.append(value)
        return code

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Strings of codes (-1 is None); the table is rebuilt only when strings were added."""
        if len(self._decoder) != len(self.values) + 1:
            self._decoder = np.array(self.values + [None], dtype=object)
        return self._decoder[np.where(codes >= 0, codes, len(self.values))]

    def lookup(self, mapping: dict[str, object], default, dtype) -> np.ndarray:
        """An array indexed by code holding mapping[string] (default elsewhere)."""
        out = np.full(len(self.values) + 1, default, dtype=dtype)
        for value, item in mapping.items():
            code = self.index.get(value)
            if code is not None:
                out[code] = item
        return out


def epoch_us(conn: Connection, column):
    """An instant column as epoch microseconds (BIGINT), exact on both databases."""
    if conn.dialect.name == "postgresql":
        return cast(extract("epoch", column) * 1_000_000, BigInteger)
    return (cast(func.strftime("%s", column), Integer) * 1_000_000
            + cast(func.substr(column, 21, 6), Integer))


@dataclass
class Tables:
    """The rows every figure depends on, as columns (see `read_tables`)."""
    strings: Dictionary
    issues: dict[str, np.ndarray]
    events: dict[str, np.ndarray]
    movements: dict[str, np.ndarray]
    plan: dict[str, np.ndarray]
    rules: dict[str, tuple[float, float]]
    locations: dict[str, tuple[str, str | None, float | None]]
    departments: list[str]

    def rows(self) -> int:
        return sum(len(next(iter(t.values()))) for t in (self.issues, self.events, self.movements))

    def merge(self, delta: "Tables") -> None:
        """Bring the tables up to date with re-read issues (their events with them) and new
        movements: what a tick changes."""
        changed = delta.issues["id"]
        if len(changed):
            keep = ~np.isin(self.issues["id"], changed)
            self.issues = {k: np.concatenate([v[keep], delta.issues[k]]) for k, v in self.issues.items()}
            keep = ~np.isin(self.events["issue_id"], changed)
            self.events = {k: np.concatenate([v[keep], delta.events[k]]) for k, v in self.events.items()}
        self.movements = {k: np.concatenate([v, delta.movements[k]]) for k, v in self.movements.items()}


def _fetch(conn: Connection, stmt: Select, kinds: dict[str, str], strings: Dictionary) -> dict:
    """Run `stmt` on the driver's own cursor (SQLAlchemy's Row objects cost more than the
    database for millions of rows) and turn each chunk into typed columns."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    if compiled.positional:
        params = tuple(params[name] for name in compiled.positiontup)
    driver = conn.connection.driver_connection
    # PostgreSQL: a server-side cursor, so millions of rows never sit in memory at once.
    cursor = driver.cursor(name="bench_read") if conn.dialect.name == "postgresql" else driver.cursor()
    cursor.execute(str(compiled), params)
    parts: dict[str, list] = {name: [] for name in kinds}
    while True:
        rows = cursor.fetchmany(FETCH_ROWS)
        if not rows:
            break
        for (name, kind), values in zip(kinds.items(), zip(*rows)):
            if kind == "str":
                parts[name].append(strings.encode(values))
            elif kind == "us":
                parts[name].append(np.fromiter((NEVER if v is None else v for v in values),
                                               dtype=np.int64, count=len(values)))
            elif kind == "float":
                parts[name].append(np.array(values, dtype=np.float64))
            else:
                parts[name].append(np.array(values, dtype=np.int64))
    cursor.close()
    empty = {"str": np.int64, "us": np.int64, "float": np.float64, "int": np.int64}
    return {name: np.concatenate(chunks) if chunks else np.zeros(0, dtype=empty[kinds[name]])
            for name, chunks in parts.items()}


def read_tables(conn: Connection, strings: Dictionary | None = None, *,
                issue_ids: list[str] | None = None, movement_ids: list[str] | None = None) -> Tables:
    """Every row the figures depend on; or, given ids, just those issues (with all their
    events) and movements."""
    strings = strings or Dictionary()
    us = lambda column: epoch_us(conn, column)  # noqa: E731 - a short alias reads better here
    issues = select(Issue.id, Issue.issue_type, Issue.severity, Issue.location_code,
                    Issue.owner_department_code, us(Issue.raised_at).label("raised_at"),
                    us(Issue.acknowledged_at).label("acknowledged_at"),
                    us(Issue.resolved_at).label("resolved_at"), us(Issue.closed_at).label("closed_at"),
                    Issue.status)
    events = select(IssueEvent.id, IssueEvent.issue_id, us(IssueEvent.at).label("at"),
                    IssueEvent.department_code)
    movements = select(us(Movement.at).label("at"), Movement.lot, Movement.material_code,
                       Movement.qty, Movement.from_location_code, Movement.to_location_code)
    plan = select(ProductionPlan.line, us(ProductionPlan.shift_start).label("shift_start"),
                  us(ProductionPlan.shift_end).label("shift_end"), ProductionPlan.planned_qty,
                  ProductionPlan.actual_qty)
    if issue_ids is not None:
        issues = issues.where(Issue.id.in_(issue_ids))
        events = events.where(IssueEvent.issue_id.in_(issue_ids))
        movements = movements.where(Movement.id.in_(movement_ids or []))
    issue_kinds = {"id": "str", "issue_type": "str", "severity": "str", "location_code": "str",
                   "owner_department_code": "str", "raised_at": "us", "acknowledged_at": "us",
                   "resolved_at": "us", "closed_at": "us", "status": "str"}
    return Tables(
        strings=strings,
        issues=_fetch(conn, issues, issue_kinds, strings),
        events=_fetch(conn, events, {"id": "int", "issue_id": "str", "at": "us",
                                     "department_code": "str"}, strings),
        movements=_fetch(conn, movements, {"at": "us", "lot": "str", "material_code": "str",
                                           "qty": "float", "from_location_code": "str",
                                           "to_location_code": "str"}, strings),
        plan=_fetch(conn, plan, {"line": "str", "shift_start": "us", "shift_end": "us",
                                 "planned_qty": "float", "actual_qty": "float"}, strings),
        rules={r.issue_type: (r.ack_minutes, r.resolve_minutes) for r in conn.execute(
            select(SlaRule.issue_type, SlaRule.ack_minutes, SlaRule.resolve_minutes))},
        locations={r.code: (r.kind, r.line, r.max_dwell_minutes) for r in conn.execute(
            select(Location.code, Location.kind, Location.line, Location.max_dwell_minutes))},
        departments=sorted(conn.execute(select(Department.code)).scalars()),
    )


# ---- numpy and pandas over the columns ---------------------------------------------------

@dataclass
class _Flows:
    """Every move as +qty into its destination and -qty out of its origin (stock locations
    only), each flow numbered by its (lot, material, location) group once, up front."""
    group: np.ndarray
    at: np.ndarray
    qty: np.ndarray
    into: np.ndarray
    group_lot: np.ndarray
    group_material: np.ndarray
    group_location: np.ndarray


class PandasEngine:
    """The figures by full scans over columns held in memory."""

    def __init__(self, tables: Tables):
        self.tables = t = tables
        s = t.strings
        issues = t.issues
        self.id = issues["id"]
        self.raised, self.ack = issues["raised_at"], issues["acknowledged_at"]
        self.resolved, self.closed = issues["resolved_at"], issues["closed_at"]
        self.live = issues["status"] != s.code("cancelled")
        kind = issues["issue_type"]
        self.ack_minutes = s.lookup({k: v[0] for k, v in t.rules.items()}, np.nan, np.float64)[kind]
        self.resolve_minutes = s.lookup({k: v[1] for k, v in t.rules.items()}, np.nan, np.float64)[kind]
        self.ack_limit = np.rint(self.ack_minutes * 60_000_000).astype(np.int64)
        self.resolve_limit = np.rint(self.resolve_minutes * 60_000_000).astype(np.int64)
        self.department = s.lookup({d: n for n, d in enumerate(t.departments)}, -1, np.int64)[
            issues["owner_department_code"]]
        row_of = np.full(len(s.values) + 1, -1, dtype=np.int64)
        row_of[self.id] = np.arange(len(self.id))
        events = t.events
        self.event_issue = row_of[events["issue_id"]]
        self.event_at, self.event_id = events["at"], events["id"]
        self.event_department = events["department_code"]
        self.flows = self._flows(t)

    @staticmethod
    def _flows(t: Tables) -> _Flows:
        s, moves = t.strings, t.movements
        stock = {code: kind in fig.STOCK_KINDS for code, (kind, _, _) in t.locations.items()}
        is_stock = s.lookup(stock, False, bool)
        locations = sorted(t.locations)
        location_local = s.lookup({c: n for n, c in enumerate(locations)}, -1, np.int64)
        materials = np.unique(moves["material_code"])
        material_local = np.full(len(s.values) + 1, -1, dtype=np.int64)
        material_local[materials] = np.arange(len(materials))
        width = len(locations) * max(1, len(materials))
        into = is_stock[moves["to_location_code"]]
        out = is_stock[moves["from_location_code"]]
        pair = moves["lot"] * width + material_local[moves["material_code"]] * len(locations)
        keys = np.concatenate([pair[into] + location_local[moves["to_location_code"][into]],
                               pair[out] + location_local[moves["from_location_code"][out]]])
        group, uniques = pd.factorize(keys)
        lot, rest = np.divmod(uniques, width)
        material, location = np.divmod(rest, len(locations))
        return _Flows(
            group=group, at=np.concatenate([moves["at"][into], moves["at"][out]]),
            qty=np.concatenate([moves["qty"][into], -moves["qty"][out]]),
            into=np.concatenate([np.ones(into.sum(), bool), np.zeros(out.sum(), bool)]),
            group_lot=lot, group_material=materials[material] if len(materials) else material,
            group_location=np.array(locations, dtype=object)[location])

    def hot_bytes(self) -> int:
        """The bytes one computation scans: the memory-bandwidth floor's array size."""
        arrays = (self.raised, self.ack, self.resolved, self.closed, self.live, self.ack_limit,
                  self.resolve_limit, self.department, self.event_issue, self.event_at,
                  self.event_department, self.flows.group, self.flows.at, self.flows.qty,
                  self.flows.into)
        return int(sum(a.nbytes for a in arrays))

    def _finished(self, at: int) -> np.ndarray:
        """Resolved by at, or closed by then without a resolution."""
        return (self.resolved <= at) | (self.closed <= at)

    def _open(self, at: int) -> np.ndarray:
        return self.live & (self.raised <= at) & ~self._finished(at)

    def _overdue(self, open_mask: np.ndarray, at: int) -> np.ndarray:
        waited = at - self.raised
        late = ((self.ack > at) & (waited > self.ack_limit)) | (waited > self.resolve_limit)
        return open_mask & late

    def _window(self, mask: np.ndarray, at: int) -> tuple[int, int, int, float | None, int]:
        raised, ack = self.raised[mask], self.ack[mask]
        limit = self.ack_limit[mask]
        done = ack <= at
        elapsed = np.where(done, ack - raised, at - raised)
        met = int((done & (elapsed <= limit)).sum())
        breached = int((elapsed > limit).sum())
        median = fig.quantile_median(fig.minutes(ack[done], raised[done]))
        return int(mask.sum()), met, breached, median, int(self._finished(at)[mask].sum())

    def _window_figures(self, mask: np.ndarray, at: int) -> WindowFigures:
        n, met, breached, median, resolved = self._window(mask, at)
        return WindowFigures(median, fig.compliance(met, breached), fig.rate(resolved, n))

    def _ping_pong(self, chosen: np.ndarray, at: int) -> np.ndarray:
        """Issue rows among `chosen` that went back to a department they had left by at."""
        pick = chosen[np.maximum(self.event_issue, 0)] & (self.event_issue >= 0) \
            & (self.event_at <= at) & (self.event_department >= 0)
        issue, when = self.event_issue[pick], self.event_at[pick]
        eid, dept = self.event_id[pick], self.event_department[pick]
        order = np.lexsort((eid, when, issue))
        issue, dept = issue[order], dept[order]
        first = np.ones(len(issue), bool)
        first[1:] = (issue[1:] != issue[:-1]) | (dept[1:] != dept[:-1])
        held = np.stack([issue[first], dept[first]], axis=1)
        if len(held) == 0:
            return np.zeros(0, dtype=np.int64)
        pairs, counts = np.unique(held, axis=0, return_counts=True)
        return np.unique(pairs[counts > 1, 0])

    def _stagnant(self, at: int) -> list[tuple]:
        f = self.flows
        known = f.at <= at
        sums = np.bincount(f.group[known], weights=f.qty[known], minlength=len(f.group_lot))
        positive = sums > fig.QTY_EPSILON
        pick = known & f.into & positive[f.group]
        last_in = np.full(len(f.group_lot), np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(last_in, f.group[pick], f.at[pick])
        groups = np.nonzero(positive)[0]
        limits = {c: (np.nan if d is None else d) for c, (_, _, d) in self.tables.locations.items()}
        limit = np.array([limits[c] for c in f.group_location[groups]], dtype=np.float64)
        dwell = fig.minutes(np.full(len(groups), at), last_in[groups])
        stuck = (sums[groups] > 0) & ~np.isnan(limit) & (dwell > limit)
        s = self.tables.strings
        rows = [(lot, material, location, float(qty), float(d), float(lim)) for lot, material, location, qty, d, lim in zip(
            s.decode(f.group_lot[groups][stuck]), s.decode(f.group_material[groups][stuck]),
            f.group_location[groups][stuck], sums[groups][stuck], dwell[stuck], limit[stuck])]
        rows.sort(key=lambda r: (-r[4], r[2], r[0], r[1]))
        return rows

    def _plan(self, moments: Instants, during: int) -> float | None:
        plan = self.tables.plan
        at = moments.now
        start, end = plan["shift_start"], plan["shift_end"]
        window = (start >= moments.plan_since) & (start < at)
        lines = self.tables.strings.decode(plan["line"])
        order = sorted(np.nonzero(window)[0], key=lambda n: (start[n], lines[n]))
        rows = [n for n in order if start[n] <= during < end[n] and not np.isnan(plan["actual_qty"][n])]
        if not rows:
            return None
        rows = np.array(rows)
        elapsed = ((at - start[rows]) * 1000).astype(np.float64) / ((end[rows] - start[rows]) * 1000).astype(np.float64)
        due = float(pd.Series(plan["planned_qty"][rows] * np.minimum(elapsed, 1.0)).sum())
        made = float(pd.Series(plan["actual_qty"][rows]).sum())
        return made / due if due > 0 else None

    def parts(self, moments: Instants) -> Parts:
        m = moments
        at = m.now
        population = self.live & (self.raised >= min(m.trend_start, m.week_start)) & (self.raised < at)
        open_now, open_before = self._open(at), self._open(m.day_before)
        overdue_now = self._overdue(open_now, at)
        week = population & (self.raised >= m.week_start)
        returned = np.zeros(len(self.id), bool)
        returned[self._ping_pong(week | open_now, at)] = True
        ping_pong = np.flatnonzero(returned & week)
        departments = {}
        count = len(self.tables.departments)
        raised_by = np.bincount(self.department[week & (self.department >= 0)], minlength=count)
        open_by = np.bincount(self.department[open_now & (self.department >= 0)], minlength=count)
        overdue_by = np.bincount(self.department[overdue_now & (self.department >= 0)], minlength=count)
        ping_pong_by = np.bincount(self.department[ping_pong], minlength=count) if len(ping_pong) \
            else np.zeros(count, dtype=np.int64)
        for n, code in enumerate(self.tables.departments):
            figures = self._window_figures(week & (self.department == n), at)
            departments[code] = DepartmentFigures(
                int(raised_by[n]), int(open_by[n]), int(overdue_by[n]), figures.median_response_min,
                figures.response_sla_compliance, int(ping_pong_by[n]))
        trend = population & (self.raised >= m.trend_start)
        day = np.searchsorted(np.array(m.day_starts), self.raised[trend], side="right") - 1
        acked = self.ack[trend] <= at
        response = np.where(acked, fig.minutes(np.where(acked, self.ack[trend], 0), self.raised[trend]), np.nan)
        trend_medians = [fig.groupby_median(response[day == d]) for d in range(fig.TREND_DAYS)]
        s = self.tables.strings
        rows = np.nonzero(open_now)[0]
        lines = {c: line for c, (_, line, _) in self.tables.locations.items()}
        ids, severity = s.decode(self.id[rows]), s.decode(self.tables.issues["severity"][rows])
        kinds, owners = s.decode(self.tables.issues["issue_type"][rows]), s.decode(
            self.tables.issues["owner_department_code"][rows])
        location = s.decode(self.tables.issues["location_code"][rows])
        board = sorted(
            ((ids[k], severity[k], kinds[k], owners[k], location[k], lines.get(location[k]),
              int(self.raised[r]), int(self.ack[r]) if self.ack[r] <= at else None,
              float(self.ack_minutes[r]), float(self.resolve_minutes[r]), bool(returned[r]))
             for k, r in enumerate(rows)), key=lambda b: (b[6], b[0]))
        return Parts(
            open_now=int(open_now.sum()), open_before=int(open_before.sum()),
            overdue_now=int(overdue_now.sum()),
            overdue_before=int(self._overdue(open_before, m.day_before).sum()),
            today=self._window_figures(population & (self.raised >= m.today), at),
            yesterday=self._window_figures(
                population & (self.raised >= m.yesterday) & (self.raised < m.day_before), m.day_before),
            plan_now=self._plan(m, at), plan_before=self._plan(m, m.day_before),
            board=board, departments=departments, stagnant=self._stagnant(at), trend=trend_medians,
            population=int(population.sum()),
            empty_database=len(self.id) == 0 and len(self.tables.movements["at"]) == 0)


# ---- DuckDB ------------------------------------------------------------------------------

_MINUTES = "CAST((ack - raised) * 1000 AS DOUBLE) / 60000000000.0::DOUBLE"
_QUANTILE_MEDIAN = ("CASE WHEN len(m) = 0 THEN NULL WHEN len(m) % 2 = 1 THEN m[len(m) // 2 + 1] "
                    "ELSE m[len(m) // 2 + 1] - (m[len(m) // 2 + 1] - m[len(m) // 2]) * 0.5 END")
_GROUPBY_MEDIAN = ("CASE WHEN len(m) = 0 THEN NULL WHEN len(m) % 2 = 1 THEN m[len(m) // 2 + 1] "
                   "ELSE (m[len(m) // 2] + m[len(m) // 2 + 1]) / 2 END")

# An issue is finished once resolved, or once closed without a resolution.
_DUCK_OPEN = """
SELECT owner,
  count(*) FILTER (WHERE raised <= $now AND resolved > $now AND closed > $now),
  count(*) FILTER (WHERE raised <= $now AND resolved > $now AND closed > $now
                   AND ((ack > $now AND $now - raised > ack_limit) OR $now - raised > resolve_limit)),
  count(*) FILTER (WHERE raised <= $before AND resolved > $before AND closed > $before),
  count(*) FILTER (WHERE raised <= $before AND resolved > $before AND closed > $before
                   AND ((ack > $before AND $before - raised > ack_limit) OR $before - raised > resolve_limit))
FROM issues JOIN rules USING (issue_type)
WHERE status <> 'cancelled' AND raised <= $now AND resolved > least($now, $before)
  AND closed > least($now, $before)
GROUP BY owner
"""
# The window figures of the issues raised in [$since, $until) at $at: today and each
# department's week now, yesterday up to this time of day as known 24 hours ago.
_DUCK_WINDOWS = f"""
WITH pop AS (
  SELECT issues.*, ack_limit FROM issues JOIN rules USING (issue_type)
  WHERE status <> 'cancelled' AND raised >= $since AND raised < $until),
groups AS (
  SELECT 'today' AS grp, * FROM pop WHERE raised >= $today
  UNION ALL SELECT 'yesterday', * FROM pop WHERE raised >= $yesterday AND raised < $today
  UNION ALL SELECT 'week:' || owner, * FROM pop WHERE raised >= $week),
agg AS (
  SELECT grp, count(*) AS n,
    count(*) FILTER (WHERE ack <= $at AND ack - raised <= ack_limit) AS met,
    count(*) FILTER (WHERE CASE WHEN ack <= $at THEN ack - raised ELSE $at - raised END > ack_limit)
      AS breached,
    count(*) FILTER (WHERE resolved <= $at OR closed <= $at) AS resolved,
    list_sort(list(CASE WHEN ack <= $at THEN {_MINUTES} END) FILTER (WHERE ack <= $at)) AS m
  FROM groups GROUP BY grp)
SELECT grp, n, met, breached, resolved, {_QUANTILE_MEDIAN} FROM agg
"""
# The issues among `chosen` (id, owner) that went back to a department they had left by $now.
_DUCK_RETURNED = """
held AS (SELECT issue_id, department_code AS d,
                lag(department_code) OVER (PARTITION BY issue_id ORDER BY at_us, event_id) AS prev
         FROM events WHERE issue_id IN (SELECT id FROM chosen) AND at_us <= $now
           AND department_code IS NOT NULL),
returned AS (SELECT DISTINCT issue_id FROM held WHERE prev IS NULL OR d <> prev
             GROUP BY issue_id, d HAVING count(*) > 1)
"""
_DUCK_PING_PONG = f"""
WITH chosen AS (SELECT id, owner FROM issues
                WHERE status <> 'cancelled' AND raised >= $week AND raised < $now),
{_DUCK_RETURNED}
SELECT owner, count(*) FROM returned JOIN chosen ON chosen.id = returned.issue_id GROUP BY owner
"""
_DUCK_BOARD = f"""
WITH chosen AS (
  SELECT id, severity, issue_type, owner, location_code, locations.line, raised,
         CASE WHEN ack <= $now THEN ack END AS ack, ack_minutes, resolve_minutes
  FROM issues JOIN rules USING (issue_type) LEFT JOIN locations ON locations.code = issues.location_code
  WHERE status <> 'cancelled' AND raised <= $now AND resolved > $now AND closed > $now),
{_DUCK_RETURNED}
SELECT chosen.*, id IN (SELECT issue_id FROM returned) FROM chosen
ORDER BY raised, id
"""
_DUCK_STAGNANT = """
WITH flows AS (
  SELECT lot, material_code, to_location_code AS location, qty, at_us AS in_at FROM movements
  WHERE at_us <= $now
  UNION ALL
  SELECT lot, material_code, from_location_code, -qty, NULL FROM movements WHERE at_us <= $now),
positions AS (
  SELECT lot, material_code, location, sum(qty) AS qty, max(in_at) AS last_in
  FROM flows WHERE location IN (SELECT code FROM locations WHERE is_stock AND max_dwell IS NOT NULL)
  GROUP BY lot, material_code, location HAVING sum(qty) > $epsilon)
SELECT lot, material_code, location, qty,
       CAST(($now - last_in) * 1000 AS DOUBLE) / 60000000000.0::DOUBLE AS dwell, max_dwell
FROM positions JOIN locations ON locations.code = positions.location
WHERE qty > 0 AND CAST(($now - last_in) * 1000 AS DOUBLE) / 60000000000.0::DOUBLE > max_dwell
ORDER BY dwell DESC, location, lot, material_code
"""
_DUCK_TREND = f"""
WITH days AS (SELECT unnest(range(len($starts) - 1)) AS day,
                     unnest($starts[1:len($starts) - 1]) AS low, unnest($starts[2:]) AS high),
agg AS (
  SELECT day, list_sort(list(CASE WHEN ack <= $now THEN {_MINUTES} END) FILTER (WHERE ack <= $now)) AS m
  FROM issues JOIN days ON raised >= low AND raised < high
  WHERE status <> 'cancelled' AND raised >= $trend AND raised < $now
  GROUP BY day)
SELECT day, {_GROUPBY_MEDIAN} FROM agg
"""
_DUCK_PLAN = """
SELECT sum(actual_qty),
       sum(planned_qty * least(1.0, CAST(($now - shift_start) * 1000 AS DOUBLE)
                                    / CAST((shift_end - shift_start) * 1000 AS DOUBLE)))
FROM plan
WHERE shift_start >= $since AND shift_start < $now AND shift_start <= $during
  AND shift_end > $during AND actual_qty IS NOT NULL
"""
_DUCK_POPULATION = """
SELECT count(*) FROM issues
WHERE status <> 'cancelled' AND raised >= $since AND raised < $now
"""
_DUCK_EMPTY = "SELECT NOT EXISTS (SELECT 1 FROM issues) AND NOT EXISTS (SELECT 1 FROM movements)"


class DuckEngine:
    """The tables loaded into an in-memory DuckDB once; the figures by its SQL."""

    def __init__(self, tables: Tables):
        import duckdb

        self.con = duckdb.connect(config={"threads": os.cpu_count() or 1})
        self.departments = list(tables.departments)
        self.con.register("rules_frame", pd.DataFrame({
            "issue_type": pd.Series(list(tables.rules), dtype=object),
            "ack_minutes": [v[0] for v in tables.rules.values()],
            "resolve_minutes": [v[1] for v in tables.rules.values()]}))
        self.con.execute("""CREATE TABLE rules AS SELECT issue_type::VARCHAR AS issue_type,
            ack_minutes, resolve_minutes,
            CAST(round(ack_minutes * 60000000) AS BIGINT) AS ack_limit,
            CAST(round(resolve_minutes * 60000000) AS BIGINT) AS resolve_limit FROM rules_frame""")
        codes = list(tables.locations)
        self.con.register("locations_frame", pd.DataFrame({
            "code": pd.Series(codes, dtype=object),
            "line": pd.Series([tables.locations[c][1] for c in codes], dtype=object),
            "is_stock": [tables.locations[c][0] in fig.STOCK_KINDS for c in codes],
            "max_dwell": [np.nan if tables.locations[c][2] is None else tables.locations[c][2]
                          for c in codes]}))
        self.con.execute("""CREATE TABLE locations AS SELECT code::VARCHAR AS code,
            line::VARCHAR AS line, is_stock, CASE WHEN isnan(max_dwell) THEN NULL ELSE max_dwell END
            AS max_dwell FROM locations_frame""")
        self.con.execute("CREATE TABLE issues (id VARCHAR, issue_type VARCHAR, severity VARCHAR, "
                         "location_code VARCHAR, owner VARCHAR, raised BIGINT, ack BIGINT, "
                         "resolved BIGINT, closed BIGINT, status VARCHAR)")
        self.con.execute("CREATE TABLE events (event_id BIGINT, issue_id VARCHAR, at_us BIGINT, "
                         "department_code VARCHAR)")
        self.con.execute("CREATE TABLE movements (at_us BIGINT, lot VARCHAR, material_code VARCHAR, "
                         "qty DOUBLE, from_location_code VARCHAR, to_location_code VARCHAR)")
        self.con.execute("CREATE TABLE plan (line VARCHAR, shift_start BIGINT, shift_end BIGINT, "
                         "planned_qty DOUBLE, actual_qty DOUBLE)")
        self._insert(tables)

    @staticmethod
    def _frame(strings: Dictionary, columns: dict, names: dict[str, str]) -> pd.DataFrame:
        """Columns renamed for DuckDB, dictionary codes back to strings."""
        out = {}
        for source, target in names.items():
            values = columns[source]
            out[target] = pd.Series(strings.decode(values), dtype=object) \
                if _STRING_COLUMNS.get(source, False) and target != "event_id" else values
        return pd.DataFrame(out)

    def _insert(self, t: Tables) -> None:
        s = t.strings
        loads = (
            ("issues", self._frame(s, t.issues, {
                "id": "id", "issue_type": "issue_type", "severity": "severity",
                "location_code": "location_code", "owner_department_code": "owner",
                "raised_at": "raised", "acknowledged_at": "ack", "resolved_at": "resolved",
                "closed_at": "closed", "status": "status"})),
            ("events", self._frame(s, t.events, {"id": "event_id", "issue_id": "issue_id",
                                                 "at": "at_us", "department_code": "department_code"})),
            ("movements", self._frame(s, t.movements, {
                "at": "at_us", "lot": "lot", "material_code": "material_code", "qty": "qty",
                "from_location_code": "from_location_code", "to_location_code": "to_location_code"})),
            ("plan", self._frame(s, t.plan, {"line": "line", "shift_start": "shift_start",
                                             "shift_end": "shift_end", "planned_qty": "planned_qty",
                                             "actual_qty": "actual_qty"})),
        )
        for table, frame in loads:
            if len(frame):
                self.con.register("load_frame", frame)
                self.con.execute(f"INSERT INTO {table} SELECT * FROM load_frame")
                self.con.unregister("load_frame")
        self.con.execute("UPDATE plan SET actual_qty = NULL WHERE isnan(actual_qty)")

    def merge(self, delta: Tables) -> None:
        ids = delta.strings.decode(delta.issues["id"]).tolist()
        if ids:
            self.con.execute("DELETE FROM issues WHERE list_contains($ids, id)", {"ids": ids})
            self.con.execute("DELETE FROM events WHERE list_contains($ids, issue_id)", {"ids": ids})
        delta = Tables(delta.strings, delta.issues, delta.events, delta.movements,
                       {k: v[:0] for k, v in delta.plan.items()}, delta.rules, delta.locations,
                       delta.departments)
        self._insert(delta)

    def parts(self, moments: Instants) -> Parts:
        m = moments
        q = self.con.execute
        since = min(m.trend_start, m.week_start)
        open_rows = q(_DUCK_OPEN, {"now": m.now, "before": m.day_before}).fetchall()
        windows = {r[0]: r[1:] for r in q(_DUCK_WINDOWS, {
            "at": m.now, "until": m.now, "since": since, "today": m.today, "yesterday": NEVER,
            "week": m.week_start}).fetchall()}
        windows.update({r[0]: r[1:] for r in q(_DUCK_WINDOWS, {
            "at": m.day_before, "until": m.day_before, "since": m.yesterday, "today": NEVER,
            "yesterday": m.yesterday, "week": NEVER}).fetchall()})
        ping_pong = dict(q(_DUCK_PING_PONG, {"now": m.now, "week": m.week_start}).fetchall())
        board = [tuple(r) for r in q(_DUCK_BOARD, {"now": m.now}).fetchall()]
        stagnant = [tuple(r) for r in q(_DUCK_STAGNANT, {
            "now": m.now, "epsilon": fig.QTY_EPSILON}).fetchall()]
        trend = dict(q(_DUCK_TREND, {"now": m.now, "trend": m.trend_start,
                                     "starts": list(m.day_starts)}).fetchall())

        def plan(during: int) -> float | None:
            made, due = q(_DUCK_PLAN, {"now": m.now, "since": m.plan_since, "during": during}).fetchone()
            return made / due if due is not None and due > 0 else None

        return _parts_from_rows(
            m, self.departments, open_rows, windows, ping_pong, board, stagnant,
            [trend.get(day) for day in range(fig.TREND_DAYS)], plan(m.now), plan(m.day_before),
            q(_DUCK_POPULATION, {"now": m.now, "since": since}).fetchone()[0],
            q(_DUCK_EMPTY).fetchone()[0])


# Columns that hold dictionary codes of strings ("id" is a string for issues only: events
# rename theirs to event_id).
_STRING_COLUMNS = dict.fromkeys(
    ("id", "issue_type", "severity", "location_code", "owner_department_code", "status",
     "issue_id", "department_code", "lot", "material_code", "from_location_code",
     "to_location_code", "line"), True)


def _window_from_row(row) -> WindowFigures:
    if row is None:
        return WindowFigures(None, None, None)
    n, met, breached, resolved, median = row
    return WindowFigures(median, fig.compliance(met, breached), fig.rate(resolved, n))


def _parts_from_rows(m: Instants, departments: list[str], open_rows, windows: dict, ping_pong: dict,
                     board: list, stagnant: list, trend: list, plan_now, plan_before,
                     population: int, empty_database: bool) -> Parts:
    """Parts from the rows the SQL variants return (same shapes for DuckDB and the database)."""
    open_by = {r[0]: r[1:] for r in open_rows}
    by_department = {}
    for code in departments:
        counts = open_by.get(code, (0, 0, 0, 0))
        week = windows.get(f"week:{code}")
        figures = _window_from_row(week)
        by_department[code] = DepartmentFigures(
            int(week[0]) if week else 0, int(counts[0]), int(counts[1]),
            figures.median_response_min, figures.response_sla_compliance,
            int(ping_pong.get(code, 0)))
    totals = [sum(int(r[n]) for r in open_rows) for n in range(1, 5)]
    board = sorted(board, key=lambda b: (b[6], b[0]))
    stagnant = sorted(((r[0], r[1], r[2], float(r[3]), float(r[4]), float(r[5])) for r in stagnant),
                      key=lambda r: (-r[4], r[2], r[0], r[1]))
    return Parts(
        open_now=totals[0], overdue_now=totals[1], open_before=totals[2], overdue_before=totals[3],
        today=_window_from_row(windows.get("today")),
        yesterday=_window_from_row(windows.get("yesterday")),
        plan_now=plan_now, plan_before=plan_before, board=board, departments=by_department,
        stagnant=stagnant, trend=trend, population=int(population),
        empty_database=bool(empty_database))


# ---- plain aggregate SQL in the database -----------------------------------------------

def _least(conn: Connection, *values):
    return (func.least if conn.dialect.name == "postgresql" else func.min)(*values)


def _median(ranked, style: str):
    """Median of ranked.c.v per ranked.c.grp from row numbers: exact, no percentile function."""
    low = func.max(case((ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.v)))
    high = func.max(case((ranked.c.rn == ranked.c.n // 2 + 1, ranked.c.v)))
    if style == "quantile":
        value = case((func.max(ranked.c.n) % 2 == 1, low), else_=high - (high - low) * literal(0.5, Float))
    else:
        value = case((func.max(ranked.c.n) % 2 == 1, low), else_=(low + high) / literal(2.0, Float))
    return select(ranked.c.grp, value.label("median")).group_by(ranked.c.grp)


def _ranked(values):
    return select(values.c.grp, values.c.v,
                  func.row_number().over(partition_by=values.c.grp, order_by=values.c.v).label("rn"),
                  func.count().over(partition_by=values.c.grp).label("n")) \
        .where(values.c.v.is_not(None)).subquery()


def sql_parts(conn: Connection, moments: Instants) -> Parts:
    """The figures by aggregate queries in the database: nothing kept between calls."""
    m = moments
    at, before = m.as_of, _instant(m.day_before)
    us = lambda column: epoch_us(conn, column)  # noqa: E731
    raised_us = us(Issue.raised_at)
    ack_limit = SlaRule.ack_minutes * 60_000_000
    resolve_limit = SlaRule.resolve_minutes * 60_000_000
    departments = sorted(conn.execute(select(Department.code)).scalars())

    def open_half(when, not_resolved_then, *columns):
        """Issues open at `when`: not resolved then, nor closed then without a resolution."""
        return (select(*columns).select_from(Issue)
                .join(SlaRule, SlaRule.issue_type == Issue.issue_type)
                .outerjoin(Location, Location.code == Issue.location_code)
                .where(Issue.raised_at <= when, Issue.status != "cancelled", not_resolved_then,
                       or_(Issue.closed_at.is_(None), Issue.closed_at > when)))

    def open_counts(when, when_us):
        overdue = case((or_(and_(or_(Issue.acknowledged_at.is_(None), Issue.acknowledged_at > when),
                                 when_us - raised_us > ack_limit),
                            when_us - raised_us > resolve_limit), 1), else_=0)
        halves = union_all(*(open_half(when, half, Issue.owner_department_code.label("owner"),
                                       overdue.label("overdue"))
                             for half in (Issue.resolved_at.is_(None), Issue.resolved_at > when))).subquery()
        return {r.owner: (r.n, r.overdue) for r in conn.execute(
            select(halves.c.owner, func.count().label("n"), func.sum(halves.c.overdue).label("overdue"))
            .group_by(halves.c.owner))}

    now_counts, before_counts = open_counts(at, m.now), open_counts(before, m.day_before)
    open_rows = [(code, *now_counts.get(code, (0, 0)), *before_counts.get(code, (0, 0)))
                 for code in set(now_counts) | set(before_counts)]

    since = _instant(min(m.trend_start, m.week_start))

    def response(when, when_us):
        """Whether acknowledged by `when`, the response in minutes, the time waited (us)."""
        acked = Issue.acknowledged_at <= when
        minutes = case((acked, cast((us(Issue.acknowledged_at) - raised_us) * 1000, Float)
                        / literal(60e9, Float)))
        return acked, minutes, case((acked, us(Issue.acknowledged_at) - raised_us),
                                    else_=when_us - raised_us)

    acked, minutes, _ = response(at, m.now)
    population = (Issue.status != "cancelled", Issue.raised_at >= since, Issue.raised_at < at)
    today, yesterday = _instant(m.today), _instant(m.yesterday)
    week_start = _instant(m.week_start)

    def windows_by(grp, where, when, when_us):
        done, minutes, elapsed = response(when, when_us)
        finished = or_(Issue.resolved_at <= when, Issue.closed_at <= when)
        values = (select(grp.label("grp"), minutes.label("v"),
                         case((and_(done, elapsed <= ack_limit), 1), else_=0).label("met"),
                         case((elapsed > ack_limit, 1), else_=0).label("breached"),
                         case((finished, 1), else_=0).label("resolved"))
                  .select_from(Issue).join(SlaRule, SlaRule.issue_type == Issue.issue_type)
                  .where(*population, where)).subquery()
        counts = {r.grp: [r.n, r.met, r.breached, r.resolved] for r in conn.execute(
            select(values.c.grp, func.count().label("n"), func.sum(values.c.met).label("met"),
                   func.sum(values.c.breached).label("breached"),
                   func.sum(values.c.resolved).label("resolved")).group_by(values.c.grp))}
        medians = dict(conn.execute(_median(_ranked(values), "quantile")).all())
        return {g: (*(int(x) for x in c), medians.get(g)) for g, c in counts.items()}

    # Today as known now; yesterday up to this time of day, as known 24 hours ago.
    windows = windows_by(case((Issue.raised_at >= today, literal("today"))),
                         Issue.raised_at >= today, at, m.now)
    windows.update(windows_by(case((Issue.raised_at < before, literal("yesterday"))),
                              and_(Issue.raised_at >= yesterday, Issue.raised_at < before),
                              before, m.day_before))
    windows.update({f"week:{g}": v for g, v in windows_by(
        Issue.owner_department_code, Issue.raised_at >= week_start, at, m.now).items()})

    def returned_among(chosen_ids):
        """The issues among `chosen_ids` that went back to a department they had left by at."""
        held = select(IssueEvent.issue_id, IssueEvent.department_code.label("d"), func.lag(
            IssueEvent.department_code).over(partition_by=IssueEvent.issue_id,
                                             order_by=(IssueEvent.at, IssueEvent.id)).label("prev")) \
            .where(IssueEvent.issue_id.in_(chosen_ids), IssueEvent.at <= at,
                   IssueEvent.department_code.is_not(None)).subquery()
        return select(held.c.issue_id).where(or_(held.c.prev.is_(None), held.c.d != held.c.prev)) \
            .group_by(held.c.issue_id, held.c.d).having(func.count() > 1).distinct().subquery()

    week = select(Issue.id, Issue.owner_department_code.label("owner")) \
        .where(*population, Issue.raised_at >= week_start).subquery()
    returned = returned_among(select(week.c.id))
    ping_pong = dict(conn.execute(
        select(week.c.owner, func.count()).join(returned, returned.c.issue_id == week.c.id)
        .group_by(week.c.owner)).all())

    board_columns = (Issue.id, Issue.severity, Issue.issue_type, Issue.owner_department_code,
                     Issue.location_code, Location.line, raised_us.label("raised"),
                     case((acked, us(Issue.acknowledged_at))).label("ack"),
                     SlaRule.ack_minutes, SlaRule.resolve_minutes)
    open_ids = select(Issue.id).where(
        Issue.raised_at <= at, Issue.status != "cancelled",
        or_(Issue.resolved_at.is_(None), Issue.resolved_at > at),
        or_(Issue.closed_at.is_(None), Issue.closed_at > at))
    gone_back = set(conn.execute(select(returned_among(open_ids).c.issue_id)).scalars())
    board = [(*r, r[0] in gone_back) for r in conn.execute(union_all(*(
        open_half(at, half, *board_columns)
        for half in (Issue.resolved_at.is_(None), Issue.resolved_at > at))))]

    def counted(value, otherwise):
        return case((Movement.at <= at, value), else_=otherwise)

    flows = union_all(
        select(Movement.lot, Movement.material_code, Movement.to_location_code.label("location"),
               counted(Movement.qty, 0).label("qty"),
               type_coerce(counted(Movement.at, null()), UtcDateTime).label("in_at")),
        select(Movement.lot, Movement.material_code, Movement.from_location_code,
               counted(-Movement.qty, 0), type_coerce(null(), UtcDateTime)),
    ).subquery()
    qty = func.sum(flows.c.qty)
    positions = (select(flows.c.lot, flows.c.material_code, flows.c.location, qty.label("qty"),
                        func.max(flows.c.in_at).label("last_in"), Location.max_dwell_minutes)
                 .join(Location, Location.code == flows.c.location)
                 .where(Location.kind.in_(fig.STOCK_KINDS), Location.max_dwell_minutes.is_not(None))
                 .group_by(flows.c.lot, flows.c.material_code, flows.c.location,
                           Location.max_dwell_minutes)
                 .having(qty > fig.QTY_EPSILON)).subquery()
    dwell = cast((m.now - us(positions.c.last_in)) * 1000, Float) / literal(60e9, Float)
    stagnant = [tuple(r) for r in conn.execute(
        select(positions.c.lot, positions.c.material_code, positions.c.location, positions.c.qty,
               dwell, positions.c.max_dwell_minutes)
        .where(positions.c.qty > 0, dwell > positions.c.max_dwell_minutes))]

    bounds = [_instant(u) for u in m.day_starts]
    day = case(*[(Issue.raised_at < bound, number) for number, bound in enumerate(bounds[1:])])
    trend_values = select(day.label("grp"), minutes.label("v")) \
        .where(*population, Issue.raised_at >= bounds[0]).subquery()
    trend = dict(conn.execute(_median(_ranked(trend_values), "groupby")).all())

    def plan(during):
        elapsed = cast((m.now - us(ProductionPlan.shift_start)) * 1000, Float) \
            / cast((us(ProductionPlan.shift_end) - us(ProductionPlan.shift_start)) * 1000, Float)
        made, due = conn.execute(
            select(func.sum(ProductionPlan.actual_qty),
                   func.sum(ProductionPlan.planned_qty * _least(conn, literal(1.0, Float), elapsed)))
            .where(ProductionPlan.shift_start >= _instant(m.plan_since), ProductionPlan.shift_start < at,
                   ProductionPlan.shift_start <= during, ProductionPlan.shift_end > during,
                   ProductionPlan.actual_qty.is_not(None))).one()
        return made / due if due is not None and due > 0 else None

    size = conn.execute(select(func.count()).select_from(Issue).where(*population)).scalar()
    empty = conn.execute(select(~select(Issue.id).exists() & ~select(Movement.id).exists())).scalar()
    return _parts_from_rows(m, departments, open_rows, windows, ping_pong, board, stagnant,
                            [trend.get(n) for n in range(fig.TREND_DAYS)], plan(at), plan(before),
                            size, empty)


def _instant(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)
