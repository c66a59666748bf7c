"""Benchmark workloads: seeded plants of a chosen size, written straight into a database.

W-S is the demo plant of data.demo. W-M and W-L are generated column-wise with numpy and
bulk-loaded (COPY on PostgreSQL, large executemany transactions on SQLite): the life-cycle
functions of data.store write a few thousand rows a second, a workload has tens of millions.
The rules of the contract hold all the same: events in time order from raised_at on, each
event's department the holder after it, every owner the final holder, acknowledged before
resolved, and every lot moving supplier -> receiving -> iqc -> warehouse -> line side ->
consumption, so no stock location goes negative. A plant raises about 1,000 issues and
writes about 50,000 movements a day, so each table spans the days its size takes.

    python -m bench.workloads W-M --url URL [--scale F] [--seed S] [--end ISO]
"""
from __future__ import annotations

import argparse
import json
import random
import sqlite3
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from datetime import datetime, timedelta, timezone
from typing import Iterator

import numpy as np
import psycopg
from psycopg import sql as pgsql
from sqlalchemy import (
    Column, Float, MetaData, String, Table, Text, delete, func, insert, inspect, select,
)
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine, make_url

from data import db, store, timezones
from data.demo import history as demo
from data.demo import issue_history, pace, reference, simulator
from data.models import (
    Department, Issue, IssueEvent, Location, LotStock, Material, Movement, Person, ProductionPlan,
    SlaRule,
)

ISSUES_PER_DAY = 1_000
MOVEMENTS_PER_DAY = 50_000
# 10:00 at the site on a weekday: a day shift running, today's issues on the wall.
DEFAULT_END = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
DEFAULT_SEED = 7
HISTORY_TABLES = (IssueEvent, Issue, Movement, LotStock, ProductionPlan)
# Rows generated and written per chunk: bounds the memory of a load, whatever its size.
ISSUES_PER_CHUNK = 100_000
LOTS_PER_CHUNK = 100_000


@dataclass(frozen=True)
class Workload:
    name: str
    issues: int
    issue_events: int
    movements: int
    description: str

    @property
    def is_demo(self) -> bool:
        return self.issues == 0


WORKLOADS = {
    "W-S": Workload("W-S", 0, 0, 0, "the demo plant: 90 days of data.demo history"),
    "W-M": Workload("W-M", 1_000_000, 5_000_000, 10_000_000,
                    "1e6 issues over ~1,000 days, 5e6 events, 1e7 movements over ~200 days"),
    "W-L": Workload("W-L", 10_000_000, 50_000_000, 50_000_000,
                    "1e7 issues over ~10,000 days, 5e7 events, 5e7 movements over ~1,000 days"),
}
DEMO_DAYS = 90

# The marker of a loaded workload: a benchmark finding it reuses the data instead of
# building it again (W-L takes long).
_marker_metadata = MetaData()
MARKER = Table(
    "bench_workload", _marker_metadata,
    Column("name", String(16), primary_key=True),
    Column("scale", Float, nullable=False),
    Column("seed", String(32), nullable=False),
    Column("end_at", String(40), nullable=False),
    Column("rows", Text, nullable=False),
    Column("load_s", Float, nullable=False),
)


# ---- the plant's reference data ---------------------------------------------------------

@dataclass
class Plant:
    """The reference tables as arrays the generators index into."""
    departments: list[str]
    people: list[str]
    people_department: np.ndarray      # department index of each person
    types: list[str]
    type_names: list[str]
    type_weights: np.ndarray
    type_owner: np.ndarray             # department index
    type_partner: np.ndarray           # department index the issue type is handed to, or -1
    ack_minutes: np.ndarray
    resolve_minutes: np.ndarray
    type_locations: list[list[str]]    # where each type of issue is raised
    materials: list[str]
    material_supplier: list[str]
    material_warehouse: list[str]
    receiving: str
    iqc: str
    line_sides: list[str]
    consumption: list[str]             # the consumption location of each line side
    lines: list[str]

    def people_of(self, department: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random person of each department (index into `people`)."""
        order = np.argsort(self.people_department, kind="stable")
        counts = np.bincount(self.people_department, minlength=len(self.departments))
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        pick = (rng.random(len(department)) * counts[department]).astype(np.int64)
        return order[starts[department] + pick]


def read_plant(conn: Connection) -> Plant:
    """The plant as its reference tables describe it; generated rows only use these keys."""
    departments = sorted(conn.execute(select(Department.code)).scalars())
    dept_index = {code: n for n, code in enumerate(departments)}
    people = conn.execute(select(Person.id, Person.department_code).order_by(Person.id)).all()
    rules = conn.execute(select(SlaRule.__table__).order_by(SlaRule.issue_type)).all()
    locations = conn.execute(
        select(Location.code, Location.kind, Location.line).order_by(Location.code)).all()
    by_kind: dict[str, list] = {}
    for location in locations:
        by_kind.setdefault(location.kind, []).append(location)
    materials = conn.execute(
        select(Material.code).where(Material.category != reference.PRODUCT_CATEGORY)
        .order_by(Material.code)).scalars().all()
    for kind in ("supplier", "receiving", "iqc", "warehouse", "line_side", "consumption"):
        if kind not in by_kind:
            raise ValueError(f"the plant has no location of kind {kind!r}; load reference data first")
    line_sides = [l for l in by_kind["line_side"] if l.line]
    use_of_line = {l.line: l.code for l in by_kind["consumption"] if l.line}
    line_sides = [l for l in line_sides if l.line in use_of_line]
    stations = [l.code for l in by_kind.get("wip", []) if l.line]

    def partner(rule) -> int:
        told = [d for d in (rule.notify_department_codes or "").split(";")
                if d and d != rule.owner_department_code and d in dept_index]
        return dept_index[told[0]] if told else -1

    suppliers = [l.code for l in by_kind["supplier"]]
    warehouses = [l.code for l in by_kind["warehouse"]]
    return Plant(
        departments=departments,
        people=[p.id for p in people],
        people_department=np.array([dept_index[p.department_code] for p in people], dtype=np.int64),
        types=[r.issue_type for r in rules],
        type_names=[r.name_zh for r in rules],
        type_weights=np.array([issue_history.TYPE_WEIGHTS.get(r.issue_type, 10) for r in rules],
                              dtype=float),
        type_owner=np.array([dept_index[r.owner_department_code] for r in rules]),
        type_partner=np.array([partner(r) for r in rules]),
        ack_minutes=np.array([r.ack_minutes for r in rules], dtype=float),
        resolve_minutes=np.array([r.resolve_minutes for r in rules], dtype=float),
        type_locations=[[l.code for l in line_sides] if r.issue_type == "material_shortage"
                        else stations or [l.code for l in line_sides] for r in rules],
        materials=list(materials),
        material_supplier=[suppliers[n % len(suppliers)] for n in range(len(materials))],
        material_warehouse=[warehouses[n % len(warehouses)] for n in range(len(materials))],
        receiving=by_kind["receiving"][0].code, iqc=by_kind["iqc"][0].code,
        line_sides=[l.code for l in line_sides],
        consumption=[use_of_line[l.line] for l in line_sides],
        lines=sorted({l.line for l in line_sides}),
    )


# ---- instants as the databases store them -----------------------------------------------

def instants_text(seconds: np.ndarray) -> list[str]:
    """UTC epoch seconds as 'YYYY-MM-DD HH:MM:SS.000000', the text SQLAlchemy stores in
    SQLite (compared as text there, so it must be exactly this) and PostgreSQL parses.

    Days and times of day are formatted once each and stitched bytewise: formatting ten
    million instants one by one would take longer than writing them."""
    seconds = np.asarray(seconds, dtype=np.int64)
    if len(seconds) == 0:
        return []
    day, clock = np.divmod(seconds, 86_400)
    days, day_index = np.unique(day, return_inverse=True)
    day_text = np.datetime_as_string(days.astype("datetime64[D]")).astype("S10")
    clock_text = _clock_text()
    out = np.empty((len(seconds), 26), dtype=np.uint8)
    out[:, :10] = day_text.view(np.uint8).reshape(-1, 10)[day_index]
    out[:, 10] = ord(" ")
    out[:, 11:19] = clock_text.view(np.uint8).reshape(-1, 8)[clock]
    out[:, 19:] = np.frombuffer(b".000000", dtype=np.uint8)
    return out.view("S26").ravel().astype("U26").tolist()


@lru_cache(maxsize=1)
def _clock_text() -> np.ndarray:
    """'HH:MM:SS' of every second of a day."""
    text = np.datetime_as_string(np.arange(86_400).astype("datetime64[s]")).astype("S19")
    return text.view(np.uint8).reshape(-1, 19)[:, 11:].copy().view("S8").ravel()


def _epoch(instant: datetime) -> int:
    return int(instant.timestamp())


# ---- issues and their events ------------------------------------------------------------

KIND_RAISED, KIND_REASSIGNED, KIND_ESCALATED, KIND_ACKNOWLEDGED = 0, 1, 2, 3
KIND_COMMENTED, KIND_RESOLVED, KIND_CLOSED = 4, 5, 6
KIND_NAMES = np.array(["raised", "reassigned", "escalated", "acknowledged", "commented",
                       "resolved", "closed"], dtype=object)
# The life of an issue as slots; a slot is an event it may have. Ties in time keep this order.
SLOT_KINDS = np.array([KIND_RAISED, KIND_REASSIGNED, KIND_REASSIGNED, KIND_REASSIGNED,
                       KIND_REASSIGNED, KIND_ESCALATED, KIND_ACKNOWLEDGED, KIND_COMMENTED,
                       KIND_COMMENTED, KIND_ESCALATED, KIND_RESOLVED, KIND_CLOSED])
S_RAISED, S_R1, S_R2, S_R3, S_R4, S_ESC_ACK, S_ACK, S_C1, S_C2, S_ESC_RES, S_RES, S_CLOSED = range(12)
SEVERITIES = np.array(["P1", "P2", "P3", "P4"], dtype=object)
SEVERITY_WEIGHTS = np.array([0.07, 0.25, 0.45, 0.23])
SEVERITY_PACE = np.array([pace.SEVERITY_PACE[s] for s in SEVERITIES])
COMMENTS = np.array(issue_history.COMMENTS, dtype=object)
PING_PONG_SHARE, HAND_OFF_SHARE, SECOND_ROUND_SHARE = 0.06, 0.06, 0.3
CANCELLED_SHARE = 0.01
# Issues waiting days for a spare part or a supplier: the long tail of the open set.
WAITING_SHARE = 0.03


def _lognormal(rng: np.random.Generator, median, sigma: float, size) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(size))


def issue_chunk(plant: Plant, rng: np.random.Generator, first_number: int, raised: np.ndarray,
                end: int, prefix: str, night_offset_s: int) -> tuple[dict, dict]:
    """Issues raised at `raised` (epoch seconds, ascending) and their events up to `end`,
    as columns. The pace is the simulator's: a median response of a quarter of an hour,
    nights slower, tight limits answered faster, some issues passed back and forth."""
    n = len(raised)
    kind = rng.choice(len(plant.types), n, p=plant.type_weights / plant.type_weights.sum())
    severity = rng.choice(4, n, p=SEVERITY_WEIGHTS)
    owner, partner = plant.type_owner[kind], plant.type_partner[kind]
    ack_limit, resolve_limit = plant.ack_minutes[kind], plant.resolve_minutes[kind]
    hour = ((raised + night_offset_s) % 86_400) // 3_600
    night = (hour < pace.DAY_START.hour) | (hour >= pace.NIGHT_START.hour)
    cancelled = rng.random(n) < CANCELLED_SHARE
    ping_pong = ~cancelled & (partner >= 0) & (rng.random(n) < PING_PONG_SHARE)
    second_round = ping_pong & (rng.random(n) < SECOND_ROUND_SHARE)
    hand_off = ~cancelled & ~ping_pong & (partner >= 0) & (rng.random(n) < HAND_OFF_SHARE)

    minutes = np.full((n, 12), np.nan)
    target = np.full((n, 12), -1, dtype=np.int64)
    minutes[:, S_RAISED], target[:, S_RAISED] = 0.0, owner
    gaps = np.cumsum(_lognormal(rng, 12.0, 0.6, (n, 4)), axis=1)
    handed = np.zeros(n)
    for slot, (mask, to) in zip((S_R1, S_R2, S_R3, S_R4),
                                ((ping_pong | hand_off, partner), (ping_pong, owner),
                                 (second_round, partner), (second_round, owner))):
        step = slot - S_R1
        minutes[mask, slot], target[mask, slot] = gaps[mask, step], to[mask]
        handed[mask] = gaps[mask, step]
    median = (pace.RESPONSE_MEDIAN_MIN * (ack_limit / 20) ** 0.6 * SEVERITY_PACE[severity]
              * np.where(night, pace.NIGHT_PACE, pace.DAY_PACE))
    ack = np.maximum(0.5, _lognormal(rng, median, 0.6, n)) + handed
    working = _lognormal(rng, resolve_limit * pace.WORKING_SHARE, 0.6, n)
    working *= np.where(rng.random(n) < pace.HARD_SHARE, rng.uniform(3, 8, n), 1.0)
    working *= np.where(rng.random(n) < WAITING_SHARE, rng.uniform(10, 30, n), 1.0)
    resolved = ack + np.maximum(2.0, working)
    live = ~cancelled
    minutes[live, S_ACK] = ack[live]
    minutes[live, S_RES] = resolved[live]
    late_ack = live & (ack > ack_limit)
    minutes[late_ack, S_ESC_ACK] = ack_limit[late_ack]
    late_resolve = live & (resolved > resolve_limit)
    minutes[late_resolve, S_ESC_RES] = resolve_limit[late_resolve]
    comments = rng.choice(3, n, p=[0.7, 0.2, 0.1])
    for slot, needed in ((S_C1, 1), (S_C2, 2)):
        mask = live & (comments >= needed)
        minutes[mask, slot] = rng.uniform(ack[mask], resolved[mask])
    closing = live & (rng.random(n) < pace.CLOSE_SHARE)
    minutes[closing, S_CLOSED] = resolved[closing] + np.maximum(2.0, _lognormal(
        rng, 90.0, 0.8, int(closing.sum())))
    # A duplicate report: cancelled within the hour, sometimes after an acknowledgement.
    cancel_at = rng.uniform(3, 60, n)
    minutes[cancelled, S_CLOSED] = cancel_at[cancelled]
    acked_first = cancelled & (rng.random(n) < 0.5)
    minutes[acked_first, S_ACK] = cancel_at[acked_first] / 2

    present = ~np.isnan(minutes)
    seconds = np.where(present, np.rint(np.nan_to_num(minutes) * 60), 0).astype(np.int64)
    seconds[:, 1:] = np.maximum(seconds[:, 1:], 1)
    # Events in time order (the slot order breaks ties), then strictly one second apart at
    # least, so "in order" never depends on how a database sorts equal instants.
    never = np.iinfo(np.int64).max // 64
    order = np.argsort(np.where(present, seconds * 16 + np.arange(12), never), axis=1,
                       kind="stable")
    present = np.take_along_axis(present, order, axis=1)
    seconds = np.take_along_axis(seconds, order, axis=1)
    steps = np.arange(12)
    seconds = np.maximum.accumulate(seconds - steps, axis=1) + steps
    slot = order
    at = raised[:, None] + seconds
    kept = present & (at <= end)
    # The holder after each event: the last department it was handed to (raised included).
    handed_to = np.take_along_axis(target, order, axis=1)
    last_hand = np.maximum.accumulate(np.where(handed_to >= 0, steps, 0), axis=1)
    holder = np.take_along_axis(handed_to, last_hand, axis=1)

    def stamp(wanted_slot: int) -> np.ndarray:
        hit = kept & (slot == wanted_slot)
        return np.where(hit.any(axis=1), (at * hit).sum(axis=1), -1)

    last_kept = kept.sum(axis=1) - 1
    final_holder = holder[np.arange(n), last_kept]
    acknowledged_at, resolved_at, closed_at = stamp(S_ACK), stamp(S_RES), stamp(S_CLOSED)
    status = np.full(n, "open", dtype=object)
    status[acknowledged_at >= 0] = "acknowledged"
    status[resolved_at >= 0] = "resolved"
    status[closed_at >= 0] = "closed"
    status[(closed_at >= 0) & cancelled] = "cancelled"

    ids = [f"{prefix}I{number:09d}" for number in range(first_number, first_number + n)]
    raiser = rng.integers(0, len(plant.people), n)
    location = np.full(n, None, dtype=object)
    for type_number, pool in enumerate(plant.type_locations):
        of_type = kind == type_number
        if pool:
            location[of_type] = np.array(pool, dtype=object)[rng.integers(0, len(pool), int(of_type.sum()))]
    names = np.array(plant.type_names, dtype=object)[kind]
    people = np.array(plant.people, dtype=object)

    def optional_text(values: np.ndarray) -> list:
        text = instants_text(np.where(values >= 0, values, 0))
        return [t if v >= 0 else None for t, v in zip(text, values.tolist())]

    issues = {
        "id": ids, "issue_type": np.array(plant.types, dtype=object)[kind].tolist(),
        "title": [f"{name} · {loc or ''}" for name, loc in zip(names, location)],
        "severity": SEVERITIES[severity].tolist(), "location_code": location.tolist(),
        "raised_by": people[raiser].tolist(), "raised_at": instants_text(raised),
        "owner_department_code": np.array(plant.departments, dtype=object)[final_holder].tolist(),
        "acknowledged_at": optional_text(acknowledged_at), "resolved_at": optional_text(resolved_at),
        "closed_at": optional_text(closed_at), "status": status.tolist(),
    }

    rows, cols = np.nonzero(kept)
    event_kind = SLOT_KINDS[slot[rows, cols]]
    event_holder = holder[rows, cols]
    by_holder = np.isin(event_kind, (KIND_ACKNOWLEDGED, KIND_REASSIGNED, KIND_COMMENTED,
                                     KIND_RESOLVED))
    by_raiser = np.isin(event_kind, (KIND_RAISED, KIND_CLOSED))
    actor = np.full(len(rows), None, dtype=object)
    actor[by_holder] = people[plant.people_of(event_holder[by_holder], rng)]
    actor[by_raiser] = people[raiser[rows[by_raiser]]]
    note = np.full(len(rows), None, dtype=object)
    commented = event_kind == KIND_COMMENTED
    note[commented] = COMMENTS[rng.integers(0, len(COMMENTS), int(commented.sum()))]
    events = {
        "issue_id": np.array(ids, dtype=object)[rows].tolist(),
        "at": instants_text(at[rows, cols]),
        "kind": KIND_NAMES[event_kind].tolist(),
        "department_code": np.array(plant.departments, dtype=object)[event_holder].tolist(),
        "actor": actor.tolist(), "note": note.tolist(),
    }
    return issues, events


# ---- lots and their movements -----------------------------------------------------------

MAX_PORTIONS = 4
PORTION_WEIGHTS = np.array([0.2, 0.3, 0.3, 0.2])
SPLIT_USE_SHARE = 0.5
# Each lot: three moves to the warehouse, then per portion one to the line side and one or
# two into consumption.
MOVES_PER_LOT = 3 + float((np.arange(1, MAX_PORTIONS + 1) * PORTION_WEIGHTS).sum()) * (2 + SPLIT_USE_SHARE)
STUCK_AT_IQC_SHARE = 0.004
LEFT_AT_LINE_SIDE_SHARE = 0.005
HOUR = 3_600


def lot_chunk(plant: Plant, rng: np.random.Generator, first_lot: int, arrivals: np.ndarray,
              end: int, prefix: str, *, seconds_only: bool = False):
    """The moves of lots arriving at `arrivals` (epoch seconds) up to `end`, as columns:
    received, inspected, stored, then drawn to the line sides in portions and used up.
    A few lots wait at IQC for a day or more, and a few portions are left at the line side:
    the stagnant material the wall shows. `seconds_only` gives just the instants (sorted by lot)."""
    n = len(arrivals)
    material = rng.integers(0, len(plant.materials), n)
    portions = rng.choice(np.arange(1, MAX_PORTIONS + 1), n, p=PORTION_WEIGHTS)
    portion_qty = rng.integers(5, 50, (n, MAX_PORTIONS)).astype(np.float64) * 10
    has_portion = np.arange(MAX_PORTIONS)[None, :] < portions[:, None]
    portion_qty *= has_portion
    lot_qty = portion_qty.sum(axis=1)
    line = rng.integers(0, len(plant.line_sides), (n, MAX_PORTIONS))

    def hours(low: float, high: float, size) -> np.ndarray:
        return np.rint(rng.uniform(low, high, size) * HOUR).astype(np.int64)

    into_iqc = arrivals + hours(0.3, 2.5, n)
    into_warehouse = into_iqc + hours(2, 12, n)
    stuck = rng.random(n) < STUCK_AT_IQC_SHARE
    into_warehouse[stuck] += hours(26, 70, int(stuck.sum()))
    first_draw = into_warehouse + np.rint(_lognormal(rng, 40.0, 0.3, n) * HOUR).astype(np.int64)
    drawn = first_draw[:, None] + np.cumsum(
        np.concatenate([np.zeros((n, 1), dtype=np.int64), hours(8, 16, (n, MAX_PORTIONS - 1))],
                       axis=1), axis=1)
    split = rng.random((n, MAX_PORTIONS)) < SPLIT_USE_SHARE
    first_use = np.rint(portion_qty * rng.uniform(0.4, 0.6, (n, MAX_PORTIONS)))
    used_at = drawn + hours(2, 6, (n, MAX_PORTIONS))
    finished_at = drawn + hours(8, 11.5, (n, MAX_PORTIONS))
    left = rng.random((n, MAX_PORTIONS)) < LEFT_AT_LINE_SIDE_SHARE
    finished_at[left] += hours(14, 60, int(left.sum()))

    supplier = np.array(plant.material_supplier, dtype=object)[material]
    warehouse = np.array(plant.material_warehouse, dtype=object)[material]
    line_side = np.array(plant.line_sides, dtype=object)[line]
    use = np.array(plant.consumption, dtype=object)[line]
    width = 3 + 3 * MAX_PORTIONS
    at = np.zeros((n, width), dtype=np.int64)
    qty = np.zeros((n, width))
    source = np.empty((n, width), dtype=object)
    destination = np.empty((n, width), dtype=object)
    present = np.zeros((n, width), dtype=bool)
    for slot, (when, amount, src, dst) in enumerate((
            (arrivals, lot_qty, supplier, plant.receiving),
            (into_iqc, lot_qty, plant.receiving, plant.iqc),
            (into_warehouse, lot_qty, plant.iqc, warehouse))):
        at[:, slot], qty[:, slot], source[:, slot], destination[:, slot] = when, amount, src, dst
        present[:, slot] = True
    for p in range(MAX_PORTIONS):
        base = 3 + 3 * p
        two = split[:, p]
        at[:, base], qty[:, base] = drawn[:, p], portion_qty[:, p]
        source[:, base], destination[:, base] = warehouse, line_side[:, p]
        at[:, base + 1], qty[:, base + 1] = used_at[:, p], first_use[:, p]
        at[:, base + 2] = finished_at[:, p]
        qty[:, base + 2] = portion_qty[:, p] - np.where(two, first_use[:, p], 0)
        for offset in (1, 2):
            source[:, base + offset], destination[:, base + offset] = line_side[:, p], use[:, p]
        present[:, base] = present[:, base + 2] = has_portion[:, p]
        present[:, base + 1] = has_portion[:, p] & two
    present &= at <= end
    rows, cols = np.nonzero(present)
    moved_at = at[rows, cols]
    if seconds_only:
        return moved_at
    order = np.lexsort((cols, rows, moved_at))
    rows, cols, moved_at = rows[order], cols[order], moved_at[order]
    lots = np.array([f"{prefix}L{number:09d}" for number in range(first_lot, first_lot + n)],
                    dtype=object)
    return {
        "at": instants_text(moved_at),
        "material_code": np.array(plant.materials, dtype=object)[material[rows]].tolist(),
        "lot": lots[rows].tolist(),
        "qty": qty[rows, cols].tolist(),
        "from_location_code": source[rows, cols].tolist(),
        "to_location_code": destination[rows, cols].tolist(),
    }


def arrival_window_s(plant: Plant, moves: int) -> int:
    """How long before `end` lots start arriving, at the daily pace, so that about `moves`
    of their moves fall at or before `end` (moves after it are cut off).

    A lot arriving W seconds before `end` keeps its moves whose delay is at most W, so the
    window solves pace * mean(sum over a lot's moves of max(0, W - delay)) = moves,
    estimated on a sample of lots."""
    sample_lots = 20_000
    delays = np.sort(lot_chunk(plant, np.random.default_rng(0), 1, np.zeros(sample_lots, dtype=np.int64),
                               np.iinfo(np.int64).max, "", seconds_only=True).astype(np.float64))
    lots_per_s = MOVEMENTS_PER_DAY / MOVES_PER_LOT / 86_400

    def kept(window: float) -> float:
        return lots_per_s * float(np.clip(window - delays, 0, None).sum()) / sample_lots

    low, high = 0.0, moves / (lots_per_s * MOVES_PER_LOT) + float(delays[-1])
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if kept(middle) < moves else (low, middle)
    return int(high)


# ---- bulk loading -----------------------------------------------------------------------

class _Loader:
    """Writes column chunks into one table after another, as fast as the database takes them."""

    def write(self, model, columns: dict) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _SqliteLoader(_Loader):
    """One connection with journaling and syncing off while it loads (a crash mid-load
    leaves a database to throw away, which a benchmark can afford), WAL again afterwards.
    No ANALYZE: the app never runs one, so the planner sees what it sees in a plant."""

    def __init__(self, url: str):
        self.conn = sqlite3.connect(make_url(url).database, isolation_level=None)
        journal = self.conn.execute("PRAGMA journal_mode=OFF").fetchone()[0]
        if journal.lower() != "off":
            raise RuntimeError(f"{url}: another connection keeps the journal in {journal} mode; "
                               "close it before loading")
        for pragma in ("synchronous=OFF", "foreign_keys=OFF", "cache_size=-524288",
                       "temp_store=MEMORY"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.indexes: list[tuple[str, str]] = []

    def drop_indexes(self, tables: list[str]) -> None:
        """Secondary indexes are rebuilt once after the load: cheaper than row by row."""
        for table in tables:
            for name, ddl in self.conn.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                    "AND sql IS NOT NULL", (table,)).fetchall():
                self.indexes.append((name, ddl))
                self.conn.execute(f'DROP INDEX "{name}"')

    def write(self, model, columns: dict) -> int:
        quote = sqlite_dialect.dialect().identifier_preparer.quote
        stmt = (f"INSERT INTO {quote(model.__tablename__)} "
                f"({', '.join(quote(c) for c in columns)}) VALUES ({', '.join('?' * len(columns))})")
        self.conn.execute("BEGIN")
        self.conn.executemany(stmt, zip(*columns.values()))
        self.conn.execute("COMMIT")
        return len(next(iter(columns.values())))

    def finish(self) -> None:
        for _name, ddl in self.indexes:
            self.conn.execute(ddl)

    def close(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.close()


class _PostgresLoader(_Loader):
    """COPY per chunk. As superuser the foreign-key triggers are skipped during the load
    (the generator only uses keys of the reference tables); indexes other than primary
    and unique keys are rebuilt once at the end, then the tables are vacuumed and analysed,
    as autovacuum would after a bulk load."""

    def __init__(self, url: str):
        conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.conn = psycopg.connect(conninfo)
        superuser = self.conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        if superuser:
            self.conn.execute("SET session_replication_role = replica")
        self.conn.execute("SET maintenance_work_mem = '1GB'")
        self.conn.commit()
        self.indexes: list[tuple[str, str]] = []
        self.tables: list[str] = []

    def drop_indexes(self, tables: list[str]) -> None:
        self.tables = tables
        for table in tables:
            for name, ddl in self.conn.execute(
                    "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
                    "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
                    "WHERE t.relname = %s AND t.relnamespace = 'public'::regnamespace "
                    "AND NOT x.indisprimary AND NOT x.indisunique", (table,)).fetchall():
                self.indexes.append((name, ddl))
                self.conn.execute(pgsql.SQL("DROP INDEX {}").format(pgsql.Identifier(name)))
        self.conn.commit()

    def write(self, model, columns: dict) -> int:
        stmt = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
            pgsql.Identifier(model.__tablename__),
            pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns))
        with self.conn.cursor() as cur, cur.copy(stmt) as copy:
            for row in zip(*columns.values()):
                copy.write_row(row)
        self.conn.commit()
        return len(next(iter(columns.values())))

    def finish(self) -> None:
        for _name, ddl in self.indexes:
            self.conn.execute(ddl)
        self.conn.commit()
        self.conn.autocommit = True
        for table in self.tables:
            self.conn.execute(pgsql.SQL("VACUUM ANALYZE {}").format(pgsql.Identifier(table)))

    def close(self) -> None:
        self.conn.close()


def _loader(url: str) -> _Loader:
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return _SqliteLoader(url)
    if backend == "postgresql":
        return _PostgresLoader(url)
    raise ValueError(f"workloads load into SQLite or PostgreSQL, not {backend}")


# ---- building a workload ----------------------------------------------------------------

def _forget_history(engine: Engine) -> None:
    """Every issue, event, movement and plan row goes, and what refers to them (the outbox,
    the ladder's steps, photos): a workload is the whole history."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(model.__tablename__ for model in HISTORY_TABLES)
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        else:
            for model in HISTORY_TABLES:
                conn.execute(delete(model))


def _reference_plant(engine: Engine, seed: int, end: datetime) -> None:
    """The demo plant's departments, rules, people, locations and materials, no history."""
    _forget_history(engine)
    demo.build_demo_plant(engine, days=1, seed=seed, end=end)
    _forget_history(engine)


def _production_plan(plant: Plant, start: datetime, end: datetime, seed: int) -> list[dict]:
    """Two shifts a day per line over the history; the running shift reports its output so far."""
    rng = random.Random(f"{seed}:plan")
    tz = timezones.site_zone()
    shift = timedelta(hours=12)
    day = start.astimezone(tz).date()
    rows = []
    while True:
        for hour in (pace.DAY_START, pace.NIGHT_START):
            begin = datetime.combine(day, hour, tzinfo=tz).astimezone(timezone.utc)
            if begin >= end:
                return rows
            for line in plant.lines:
                planned = round(800 * rng.uniform(0.95, 1.05), -1)
                made = planned * min(1.03, rng.lognormvariate(np.log(0.93), 0.04))
                share = min(1.0, (end - begin) / shift)
                rows.append({"line": line, "shift_start": begin, "shift_end": begin + shift,
                             "planned_qty": float(planned), "actual_qty": float(round(made * share))})
        day += timedelta(days=1)


def _spread(total: int, per_chunk: int) -> Iterator[tuple[int, int]]:
    for first in range(0, total, per_chunk):
        yield first, min(per_chunk, total - first)


def generate(engine: Engine, url: str, workload: Workload, *, scale: float, seed: int,
             end: datetime, progress=None) -> dict[str, int]:
    """Write a generated workload (W-M, W-L) into the migrated, reference-loaded database."""
    with engine.connect() as conn:
        plant = read_plant(conn)
    prefix = workload.name.replace("-", "") + "-"
    end_s = _epoch(end)
    night_offset_s = int(end.astimezone(timezones.site_zone()).utcoffset().total_seconds())
    n_issues = max(1, round(workload.issues * scale))
    issue_span_s = int(n_issues / ISSUES_PER_DAY * 86_400)
    n_moves = max(1, round(workload.movements * scale))
    # Lots arrive at the pace that moves MOVEMENTS_PER_DAY, from early enough that the moves
    # cut off at `end` (a lot still on its way) are made up by lots that came in before.
    move_span_s = arrival_window_s(plant, n_moves)
    n_lots = max(1, round(move_span_s / 86_400 * MOVEMENTS_PER_DAY / MOVES_PER_LOT))
    issue_start = end - timedelta(seconds=issue_span_s)
    rows = {"issues": 0, "issue_events": 0, "movements": 0, "production_plan": 0}

    plan = _production_plan(plant, min(issue_start, end - timedelta(seconds=move_span_s)), end, seed)
    with engine.begin() as conn:
        store.upsert_rows(conn, ProductionPlan, plan)
    rows["production_plan"] = len(plan)
    # SQLite leaves WAL only when no other connection is open.
    engine.dispose()

    loader = _loader(url)
    try:
        loader.drop_indexes(["issues", "issue_events", "movements"])
        rng = np.random.default_rng([seed, 1])
        chunks = max(1, -(-n_issues // ISSUES_PER_CHUNK))
        for number, (first, size) in enumerate(_spread(n_issues, ISSUES_PER_CHUNK)):
            low = end_s - issue_span_s + issue_span_s * number // chunks
            high = end_s - issue_span_s + issue_span_s * (number + 1) // chunks
            raised = np.sort(rng.integers(low, max(low + 1, high), size))
            issues, events = issue_chunk(plant, rng, first + 1, raised, end_s, prefix, night_offset_s)
            rows["issues"] += loader.write(Issue, issues)
            rows["issue_events"] += loader.write(IssueEvent, events)
            if progress:
                progress(rows)
        rng = np.random.default_rng([seed, 2])
        chunks = max(1, -(-n_lots // LOTS_PER_CHUNK))
        for number, (first, size) in enumerate(_spread(n_lots, LOTS_PER_CHUNK)):
            low = end_s - move_span_s + move_span_s * number // chunks
            high = end_s - move_span_s + move_span_s * (number + 1) // chunks
            arrivals = np.sort(rng.integers(low, max(low + 1, high), size))
            moves = lot_chunk(plant, rng, first + 1, arrivals, end_s, prefix)
            count = len(moves["at"])
            moves = {"id": [f"{prefix}M{n:010d}" for n in range(rows["movements"] + 1,
                                                                  rows["movements"] + count + 1)],
                     **moves}
            rows["movements"] += loader.write(Movement, moves)
            if progress:
                progress(rows)
        loader.finish()
    finally:
        loader.close()
    # The moves went in by COPY, past data.store: their running balances are built once here.
    with engine.begin() as conn:
        store.rebuild_lot_stock(conn)
    return rows


def _table_rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {model.__tablename__: conn.execute(select(func.count()).select_from(model)).scalar()
                for model in (Department, Person, SlaRule, Location, Material, Issue, IssueEvent,
                              Movement, ProductionPlan)}


def loaded(engine: Engine, workload: str, *, scale: float, seed: int, end: datetime) -> dict | None:
    """The marker of this very workload in the database, or None."""
    if not inspect(engine).has_table(MARKER.name):
        return None
    with engine.connect() as conn:
        row = conn.execute(select(MARKER).where(MARKER.c.name == workload)).mappings().first()
    if row is None or row["scale"] != scale or row["seed"] != str(seed) \
            or row["end_at"] != end.isoformat():
        return None
    return dict(row)


def forget_ticks(engine: Engine, end: datetime) -> int:
    """Remove the issues and moves that earlier runs' ticks raised after `end` (the
    acknowledgements, hand-offs and resolutions they gave built issues stay), so a run on
    reused data counts the windows of the workload as built, not of every run before it.
    Returns the rows removed."""
    tick_issues = select(Issue.id).where(Issue.raised_at > end, Issue.id.startswith("TICK-"))
    tick_moves = (Movement.at > end) & Movement.id.startswith("TICK-")
    with engine.begin() as conn:
        lots = conn.execute(select(Movement.lot).where(tick_moves).distinct()).scalars().all()
        removed = conn.execute(delete(IssueEvent).where(IssueEvent.issue_id.in_(tick_issues))).rowcount
        removed += conn.execute(delete(Issue).where(Issue.id.in_(tick_issues))).rowcount
        removed += conn.execute(delete(Movement).where(tick_moves)).rowcount
        store.refresh_lot_stock(conn, lots)
        store.bump_bulk_version(conn)
    return removed


def resume_instant(engine: Engine, end: datetime) -> datetime:
    """Where a benchmark on reused data starts: after anything earlier ticks wrote."""
    with engine.connect() as conn:
        newest = simulator.newest_instant(conn)
    if newest is None or newest <= end:
        return end
    return newest.replace(second=0, microsecond=0) + timedelta(minutes=1)


def build(url: str, name: str, *, scale: float = 1.0, seed: int = DEFAULT_SEED,
          end: datetime = DEFAULT_END, progress=None) -> dict:
    """Load workload `name` into the database at `url`, replacing its history.

    Returns the rows per table and the load time in seconds."""
    workload = WORKLOADS[name]
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    engine = db.make_engine(url)
    try:
        started = time.perf_counter()
        db.upgrade_schema(engine)
        _marker_metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(delete(MARKER))
        if workload.is_demo:
            _forget_history(engine)
            demo.build_demo_plant(engine, days=max(1, round(DEMO_DAYS * scale)), seed=seed, end=end)
        else:
            _reference_plant(engine, seed, end)
            generate(engine, url, workload, scale=scale, seed=seed, end=end, progress=progress)
        load_s = time.perf_counter() - started
        rows = _table_rows(engine)
        with engine.begin() as conn:
            conn.execute(insert(MARKER).values(name=name, scale=scale, seed=str(seed),
                                               end_at=end.isoformat(), rows=json.dumps(rows),
                                               load_s=load_s))
        return {"rows": rows, "load_s": load_s}
    finally:
        engine.dispose()


def database_size_bytes(url: str) -> int:
    """The size of the database on disk (SQLite file and WAL, or PostgreSQL's database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return sum(p.stat().st_size for p in Path(parsed.database).parent.glob(
            Path(parsed.database).name + "*"))
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.pg_database_size(func.current_database()))).scalar()
    finally:
        engine.dispose()


# ---- the live tick ----------------------------------------------------------------------

TICK_ROWS = 1_000
TICK_SPAN = timedelta(seconds=60)
TICK_RAISED, TICK_ACKNOWLEDGED, TICK_REASSIGNED, TICK_RESOLVED = 40, 40, 10, 40


def tick(conn_or_engine, now: datetime, rng: random.Random) -> dict:
    """About 1,000 rows arriving or changing in the minute up to `now`, written through
    data.store as a live plant writes them: new issues, late acknowledgements, hand-offs,
    resolutions, and lots moving along their path.

    Instants are whole seconds, each after the issue's last event. Returns the counts per
    change, the rows written, and the ids of the issues and movements touched (so a copy
    held in memory can be brought up to date)."""
    now = now.astimezone(timezone.utc).replace(microsecond=0)
    window_start = now - TICK_SPAN + timedelta(seconds=1)
    stamp = int(now.timestamp())
    counts = dict.fromkeys(("raised", "acknowledged", "reassigned", "resolved", "movements"), 0)
    issue_ids: list[str] = []
    movement_ids: list[str] = []
    rows = 0

    def instant_after(last: datetime) -> datetime | None:
        earliest = max(window_start, last + timedelta(seconds=1))
        if earliest > now:
            return None
        return earliest + timedelta(seconds=rng.randint(0, int((now - earliest).total_seconds())))

    with db.session_scope(conn_or_engine) as session:
        plant = read_plant(session.connection())
        unresolved = session.execute(
            select(Issue.id, Issue.status, Issue.owner_department_code)
            .where(Issue.resolved_at.is_(None), Issue.status != "cancelled", Issue.raised_at <= now)
            .order_by(Issue.id)).all()
        last_at = dict(session.execute(
            select(IssueEvent.issue_id, func.max(IssueEvent.at))
            .where(IssueEvent.issue_id.in_([i.id for i in unresolved]))
            .group_by(IssueEvent.issue_id)).all()) if unresolved else {}
        rng.shuffle(unresolved)
        plan = {"acknowledged": TICK_ACKNOWLEDGED, "reassigned": TICK_REASSIGNED,
                "resolved": TICK_RESOLVED}
        for issue in unresolved:
            wanted = [k for k, left in plan.items() if left > 0
                      and (k != "acknowledged" or issue.status == "open")]
            if not wanted:
                continue
            change = rng.choice(wanted)
            at = instant_after(last_at.get(issue.id, window_start))
            if at is None:
                continue
            actor = rng.choice(plant.people)
            if change == "acknowledged":
                store.acknowledge(session, issue.id, at, actor)
                rows += 2
            elif change == "reassigned":
                others = [d for d in plant.departments if d != issue.owner_department_code]
                store.reassign(session, issue.id, at, rng.choice(others), actor)
                rows += 2
            else:
                store.resolve(session, issue.id, at, actor)
                rows += 2 if issue.status == "acknowledged" else 3
            plan[change] -= 1
            counts[change] += 1
            issue_ids.append(issue.id)
        for number in range(TICK_RAISED):
            issue_type = rng.choice(plant.types)
            kind = plant.types.index(issue_type)
            pool = plant.type_locations[kind]
            issue_id = f"TICK-{stamp}-{number:03d}"
            store.raise_issue(session, issue_id=issue_id, issue_type=issue_type,
                              title=f"{plant.type_names[kind]} · {stamp}", severity=rng.choice(
                                  SEVERITIES.tolist()), at=window_start + timedelta(
                                  seconds=rng.randint(0, int(TICK_SPAN.total_seconds()) - 1)),
                              location_code=rng.choice(pool) if pool else None,
                              raised_by=rng.choice(plant.people))
            counts["raised"] += 1
            issue_ids.append(issue_id)
            rows += 2
        session.flush()
        moves = _tick_moves(plant, rng, stamp, window_start, TICK_ROWS - rows)
        store.record_movements(session, moves)
        counts["movements"] = len(moves)
        movement_ids = [m["id"] for m in moves]
        rows += len(moves)
    return {**counts, "rows": rows, "issue_ids": issue_ids, "movement_ids": movement_ids}


def _tick_moves(plant: Plant, rng: random.Random, stamp: int, window_start: datetime,
                wanted: int) -> list[dict]:
    """New lots on their path inside the window, each move a second or more after the last;
    some stop at receiving, IQC or the warehouse, as lots that have just come in do."""
    moves: list[dict] = []
    lot_number = 0
    span = int(TICK_SPAN.total_seconds())
    while len(moves) < wanted:
        lot_number += 1
        material = rng.randrange(len(plant.materials))
        line = rng.randrange(len(plant.line_sides))
        path = [plant.material_supplier[material], plant.receiving, plant.iqc,
                plant.material_warehouse[material], plant.line_sides[line], plant.consumption[line]]
        steps = min(wanted - len(moves), rng.choice((1, 2, 3, 5, 5, 5)))
        qty = float(rng.randrange(50, 500, 10))
        at = window_start + timedelta(seconds=rng.randint(0, span - 1 - steps))
        for step in range(steps):
            moves.append({"id": f"TICK-{stamp}-M{len(moves):04d}", "at": at,
                          "material_code": plant.materials[material],
                          "lot": f"TICK-{stamp}-L{lot_number:03d}", "qty": qty,
                          "from_location_code": path[step], "to_location_code": path[step + 1],
                          "order_ref": None})
            at += timedelta(seconds=1)
    return moves


# ---- command line -----------------------------------------------------------------------

def _parse_end(text: str) -> datetime:
    return timezones.parse_instant(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workloads", description=__doc__.split("\n")[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the database to fill")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="share of the full size, e.g. 0.01 (the daily pace stays, the span shrinks)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--end", type=_parse_end, default=DEFAULT_END,
                        help="ISO instant the history ends at (site-local without an offset)")
    args = parser.parse_args(argv)

    def progress(rows: dict) -> None:
        print("  " + ", ".join(f"{k} {v:,}" for k, v in rows.items() if v), flush=True)

    result = build(args.url, args.workload, scale=args.scale, seed=args.seed, end=args.end,
                   progress=progress)
    print(f"{args.workload} (scale {args.scale:g}, seed {args.seed}, end {args.end.isoformat()})")
    for table, count in result["rows"].items():
        print(f"  {table:<16} {count:>12,}")
    size = database_size_bytes(args.url)
    print(f"  loaded in {result['load_s']:.1f} s; database size {size / 2**20:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
