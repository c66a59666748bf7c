"""The live plant: keeps a loaded plant moving so the wall has something to show.

Each step advances the floor from the previous step to an explicit instant: new issues are
raised, handed on (sometimes straight back), acknowledged, escalated when overdue, resolved
and closed, material moves lot by lot along the routes the plant used recently, and the
running shift reports its output. Everything goes through data.store in short
transactions. The pace is the end of the demo plant's story: a median response of about a
quarter of an hour, nights slower than days.

The plant is read from the database (rules, people, locations, recent issues and moves),
so the simulator runs on any plant loaded in. A step that fails is retried whole on the
next tick: issue ids and their life-cycle instants are derived from the seed, so a retried
step does not write anything twice.
"""
from __future__ import annotations

import logging
import math
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection, Engine

from data import db, queries, settings, store, timezones
from data.models import Issue, IssueEvent, Location, Movement, Person, ProductionPlan, SlaRule

log = logging.getLogger("floorlink.simulator")

ID_PREFIX = "SIM-"

# The pace of a plant that works from the wall (the end of the demo plant's story).
RESPONSE_MEDIAN_MIN = 15.0
DAY_START, NIGHT_START = time(8), time(20)
DAY_PACE, NIGHT_PACE = 0.8, 1.6
DAY_WEIGHT, NIGHT_WEIGHT = 1.3, 0.7
SEVERITY_PACE = {"P1": 0.5, "P2": 0.75, "P3": 1.0, "P4": 1.4}
# Work after acknowledging, as a share of the resolve limit; some issues wait much longer.
WORKING_SHARE = 0.35
HARD_SHARE = 0.1
HANDOFF_SHARE, PING_PONG_SHARE = 0.12, 0.35
CLOSE_SHARE = 0.9
# A lot left longer than its location allows is on hold; holds end after about this long.
HOLD_RELEASE_H = 24.0
NEW_HOLD_SHARE = 0.02

# What the simulator learns the plant's habits from, and how far back it catches up.
RECENT = timedelta(days=7)
CATCH_UP_LIMIT = timedelta(hours=24)
# Resolved issues older than this stay unverified (never closed).
CLOSE_WINDOW = timedelta(days=2)
# Habits are re-read this often; material is moved in slices this long (a long catch-up too).
HABITS_REFRESH = timedelta(hours=1)
MOVE_CHUNK = timedelta(minutes=15)
COUNT_KEYS = ("raised", "acknowledged", "reassigned", "escalated", "resolved", "closed",
              "movements", "plan_rows")


def response_median_min(ack_minutes: float, severity: str, night: bool,
                        base: float = RESPONSE_MEDIAN_MIN) -> float:
    """The median response for an issue: in proportion to its limit (a plant that works from
    the wall answers most issues inside their limits), faster for severe ones, slower at night."""
    return (base * (ack_minutes / 20) * SEVERITY_PACE.get(severity, 1.0)
            * (NIGHT_PACE if night else DAY_PACE))


def escalation_note(limit: str, minutes: float) -> str:
    if limit == "ack":
        return f"超过响应时限 {minutes:g} 分钟，升级至部门负责人"
    return f"超过解决时限 {minutes:g} 分钟，升级至厂长"


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(sigma * rng.gauss(0.0, 1.0))


def is_night(at: datetime, tz) -> bool:
    return not DAY_START <= at.astimezone(tz).time() < NIGHT_START


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def _minutes(value: float) -> timedelta:
    return timedelta(seconds=round(value * 60))


@dataclass(frozen=True)
class _Rule:
    notify: tuple[str, ...]
    ack_minutes: float
    resolve_minutes: float


@dataclass
class _Plant:
    """The plant as the database describes it now."""
    rules: dict[str, _Rule]
    people: dict[str, list[str]]
    locations: dict[str, tuple[str, float | None]]     # code -> (kind, max_dwell_minutes)
    lines: list                                       # latest shift begun, per line

    def actor(self, rng: random.Random, department: str) -> str | None:
        people = self.people.get(department)
        return rng.choice(people) if people else None


@dataclass(frozen=True)
class _Route:
    material: str
    source: str
    destination: str
    moves: int
    qty: float          # mean quantity per move


@dataclass
class _Habits:
    """What the plant did in its recent past: the simulator does more of the same."""
    loaded_for: datetime
    templates: list                                   # recent issues to raise alike
    partners: dict[str, list[str]]                    # issue type -> departments it went to
    sources: list[_Route]                             # moves that bring material in
    onward: dict[tuple[str, str], list[_Route]]       # (material, location) -> routes out
    window_hours: float
    moves_per_hour: float
    dwell_hours: dict[str, float]                     # mean stay of material at each location


def _load_plant(conn: Connection, now: datetime) -> _Plant:
    rules = {r.issue_type: _Rule(tuple(filter(None, (r.notify_department_codes or "").split(";"))),
                                 r.ack_minutes, r.resolve_minutes)
             for r in conn.execute(select(SlaRule.__table__).order_by(SlaRule.issue_type))}
    people: dict[str, list[str]] = {}
    for person in conn.execute(select(Person.id, Person.department_code).order_by(Person.id)):
        people.setdefault(person.department_code, []).append(person.id)
    locations = {r.code: (r.kind, r.max_dwell_minutes) for r in conn.execute(
        select(Location.code, Location.kind, Location.max_dwell_minutes))}
    latest = (select(ProductionPlan.line, func.max(ProductionPlan.shift_start).label("shift_start"))
              .where(ProductionPlan.shift_start <= now)
              .group_by(ProductionPlan.line).subquery())
    lines = conn.execute(
        select(ProductionPlan.line, ProductionPlan.shift_start, ProductionPlan.shift_end,
               ProductionPlan.planned_qty)
        .join(latest, and_(latest.c.line == ProductionPlan.line,
                           latest.c.shift_start == ProductionPlan.shift_start))
        .order_by(ProductionPlan.line)).all()
    return _Plant(rules, people, locations, lines)


def _load_habits(conn: Connection, plant: _Plant, until: datetime) -> _Habits:
    since = until - RECENT
    templates = conn.execute(
        select(Issue.issue_type, Issue.severity, Issue.title, Issue.location_code, Issue.raised_by,
               Issue.cause)
        .where(Issue.raised_at > since, Issue.raised_at <= until, Issue.status != "cancelled")
        .order_by(Issue.raised_at.desc(), Issue.id).limit(2000)).all()
    partners: dict[str, list[str]] = {}
    handed = conn.execute(
        select(Issue.issue_type, IssueEvent.department_code, func.count().label("n"))
        .join(Issue, Issue.id == IssueEvent.issue_id)
        .where(IssueEvent.kind == "reassigned", IssueEvent.at > since, IssueEvent.at <= until)
        .group_by(Issue.issue_type, IssueEvent.department_code)
        .order_by(Issue.issue_type, IssueEvent.department_code))
    for row in handed:
        if row.department_code:
            partners.setdefault(row.issue_type, []).extend([row.department_code] * row.n)
    recent = (Movement.at > since, Movement.at <= until)
    first = conn.execute(select(func.min(Movement.at)).where(*recent)).scalar()
    hours = max(1.0, (until - first) / timedelta(hours=1)) if first else 1.0
    routes = [_Route(r.material_code, r.from_location_code, r.to_location_code, r.moves,
                     float(r.qty))
              for r in conn.execute(
                  select(Movement.material_code, Movement.from_location_code,
                         Movement.to_location_code, func.count().label("moves"),
                         func.avg(Movement.qty).label("qty"))
                  .where(*recent)
                  .group_by(Movement.material_code, Movement.from_location_code,
                            Movement.to_location_code)
                  .order_by(Movement.material_code, Movement.from_location_code,
                            Movement.to_location_code))
              if r.from_location_code in plant.locations and r.to_location_code in plant.locations]
    sources, onward = [], {}
    for route in routes:
        if plant.locations[route.source][0] in queries.STOCK_KINDS:
            onward.setdefault((route.material, route.source), []).append(route)
        else:
            sources.append(route)
    return _Habits(until, templates, partners, sources, onward, hours,
                   sum(r.moves for r in routes) / hours, _dwell_hours(conn, since, until))


def _dwell_hours(conn: Connection, since: datetime, until: datetime) -> dict[str, float]:
    """Mean stay per location of the material that left it recently (quantity-weighted,
    from the lot's last move in), so each location keeps its usual pace."""
    arrived: dict[tuple[str, str, str], datetime] = {}
    stayed: dict[str, float] = {}
    moved: dict[str, float] = {}
    for move in conn.execute(
            select(Movement.at, Movement.lot, Movement.material_code, Movement.from_location_code,
                   Movement.to_location_code, Movement.qty)
            .where(Movement.at > since - RECENT, Movement.at <= until)
            .order_by(Movement.at, Movement.id)):
        came = arrived.get((move.lot, move.material_code, move.from_location_code))
        if came is not None and move.at > since:
            source = move.from_location_code
            hours = (move.at - came) / timedelta(hours=1)
            stayed[source] = stayed.get(source, 0.0) + move.qty * hours
            moved[source] = moved.get(source, 0.0) + move.qty
        arrived[(move.lot, move.material_code, move.to_location_code)] = move.at
    return {location: stayed[location] / moved[location]
            for location in sorted(moved) if moved[location] > 0 and stayed[location] > 0}


def newest_instant(conn: Connection) -> datetime | None:
    """The newest thing the plant has recorded: the simulator carries on from there."""
    instants = [conn.execute(select(func.max(column))).scalar()
                for column in (Issue.raised_at, IssueEvent.at, Movement.at)]
    instants = [i for i in instants if i is not None]
    return max(instants) if instants else None


@dataclass
class _Action:
    at: datetime
    kind: str
    department: str | None = None
    note: str | None = None


@dataclass
class _Lot:
    lot: str
    material: str
    location: str
    qty: float
    last_in: datetime
    max_dwell: float | None = None

    def overstayed(self, at: datetime) -> bool:
        return (self.max_dwell is not None
                and (at - self.last_in) > timedelta(minutes=self.max_dwell))


@dataclass
class _Stock:
    """Lots on hand at the plant's stock locations, by material and location."""
    places: dict[tuple[str, str], dict[str, _Lot]] = field(default_factory=dict)

    def lots(self) -> list[_Lot]:
        """Every lot with something left, in a fixed order."""
        lots = (lot for place in self.places.values() for lot in place.values() if lot.qty > 0)
        return sorted(lots, key=lambda lot: (lot.location, lot.material, lot.lot))

    def holds(self, lot: str, material: str, location: str) -> bool:
        return lot in self.places.get((material, location), {})

    def add(self, lot: str, material: str, location: str, qty: float, at: datetime,
            max_dwell: float | None) -> None:
        place = self.places.setdefault((material, location), {})
        if lot in place:
            place[lot].qty += qty
            place[lot].last_in = at
        else:
            place[lot] = _Lot(lot, material, location, qty, at, max_dwell)


class LiveSimulator:
    """Advances a plant through explicit instants; deterministic for a seed and a sequence
    of instants on the same database."""

    def __init__(self, engine: Engine, *, seed: int, issues_per_hour: float,
                 moves_per_hour: float):
        self.engine = engine
        self.seed = seed
        self.issues_per_hour = issues_per_hour
        self.moves_per_hour = moves_per_hour
        self.tz = timezones.site_zone()
        self._last: datetime | None = None
        self._plans: dict[str, list[_Action]] = {}
        self._habits: _Habits | None = None
        self._stock: _Stock | None = None
        self._held: set[tuple[str, str]] = set()
        self._released: set[tuple[str, str]] = set()

    def step(self, now: datetime) -> dict[str, int]:
        """Advance the plant from the previous step (first: its newest record) to `now`."""
        if now.tzinfo is None:
            raise ValueError(f"naive now {now!r}; pass an aware instant")
        now = now.astimezone(timezones.UTC)
        counts = Counter(dict.fromkeys(COUNT_KEYS, 0))
        with self.engine.connect() as conn:
            if self._last is None:
                newest = newest_instant(conn)
                self._last = now if newest is None else max(newest, now - CATCH_UP_LIMIT)
            start = self._last
            if now <= start:
                return dict(counts)
            plant = _load_plant(conn, now)
            if self._habits is None or start - self._habits.loaded_for >= HABITS_REFRESH:
                self._habits = _load_habits(conn, plant, start)
                self._stock = None
            stock = self._stock if self._stock is not None else self._load_stock(conn, start)
        # The stock in memory is trusted again only once this step's moves are written;
        # they are written last, so a failed step leaves none of them behind.
        self._stock = None
        self._raise_issues(plant, start, now, counts)
        self._advance_issues(plant, start, now, counts)
        self._report_production(plant, start, now, counts)
        self._move_material(plant, stock, start, now, counts)
        self._stock = stock
        self._last = now
        return dict(counts)

    # -- issues --

    def _arrivals(self, start: datetime, now: datetime) -> list[tuple[datetime, str]]:
        """New issues in (start, now]: drawn hour by hour, so a retried step draws the same."""
        arrivals = []
        hour = start.replace(minute=0, second=0, microsecond=0)
        while hour < now:
            rng = random.Random(f"{self.seed}:raise:{hour.isoformat()}")
            weight = NIGHT_WEIGHT if is_night(hour, self.tz) else DAY_WEIGHT
            count = _poisson(rng, self.issues_per_hour * weight)
            offsets = sorted(rng.randrange(3600) for _ in range(count))
            label = hour.astimezone(self.tz).strftime("%y%m%d%H")
            for number, offset in enumerate(offsets, start=1):
                at = hour + timedelta(seconds=offset)
                if start < at <= now:
                    arrivals.append((at, f"{ID_PREFIX}{label}-{number:03d}"))
            hour += timedelta(hours=1)
        return arrivals

    def _raise_issues(self, plant: _Plant, start: datetime, now: datetime, counts: Counter) -> None:
        if not plant.rules:
            return
        for at, issue_id in self._arrivals(start, now):
            rng = random.Random(f"{self.seed}:{issue_id}:raised")
            issue_type, severity, title, location, raised_by = self._issue_like(rng, plant)
            with db.session_scope(self.engine) as session:
                if session.get(Issue, issue_id) is not None:
                    continue
                store.raise_issue(session, issue_id=issue_id, issue_type=issue_type, title=title,
                                  severity=severity, at=at, location_code=location,
                                  raised_by=raised_by)
            counts["raised"] += 1

    def _issue_like(self, rng: random.Random, plant: _Plant) -> tuple:
        """Type, severity, title, location and raiser of a new issue, like a recent one."""
        usable = [t for t in self._habits.templates if t.issue_type in plant.rules]
        if usable:
            like = rng.choice(usable)
            return like.issue_type, like.severity, like.title, like.location_code, like.raised_by
        issue_type = rng.choice(sorted(plant.rules))
        return issue_type, "P3", issue_type, None, None

    def _active_issues(self, conn: Connection, start: datetime) -> tuple[list, dict]:
        issues = conn.execute(
            select(Issue.id, Issue.issue_type, Issue.severity, Issue.raised_at, Issue.status,
                   Issue.acknowledged_at, Issue.resolved_at, Issue.owner_department_code)
            .where(or_(Issue.status.in_(("open", "acknowledged")),
                       and_(Issue.status == "resolved", Issue.resolved_at >= start - CLOSE_WINDOW)))
            .order_by(Issue.raised_at, Issue.id)).all()
        events: dict[str, list] = {issue.id: [] for issue in issues}
        ids = list(events)
        for chunk in range(0, len(ids), 500):
            for event in conn.execute(
                    select(IssueEvent.issue_id, IssueEvent.at, IssueEvent.kind)
                    .where(IssueEvent.issue_id.in_(ids[chunk:chunk + 500]))):
                events[event.issue_id].append((event.at, event.kind))
        return issues, events

    def _advance_issues(self, plant: _Plant, start: datetime, now: datetime,
                        counts: Counter) -> None:
        with self.engine.connect() as conn:
            issues, events = self._active_issues(conn, start)
        self._plans = {i.id: self._plans[i.id] for i in issues if i.id in self._plans}
        for issue in issues:
            rule = plant.rules.get(issue.issue_type)
            if rule is None:
                continue
            done = set(events[issue.id])
            if issue.id not in self._plans:
                last = max((at for at, _ in done), default=issue.raised_at)
                self._plans[issue.id] = self._plan(issue, rule, plant, max(last, start))
            plan = self._plans[issue.id]
            due = [a for a in plan if a.at <= now and (a.at, a.kind) not in done]
            due += self._escalations(issue, rule, plan, done, start, now)
            for action in sorted(due, key=lambda a: (a.at, a.kind)):
                if self._apply(issue.id, action, plant):
                    counts[action.kind] += 1

    def _plan(self, issue, rule: _Rule, plant: _Plant, after: datetime) -> list[_Action]:
        """The rest of an issue's life after `after`, drawn from the seed and the issue id."""
        rng = random.Random(f"{self.seed}:{issue.id}")
        at = max(after, issue.raised_at).replace(microsecond=0)
        plan = []
        if issue.status == "open":
            holder = issue.owner_department_code
            partners = [d for d in self._habits.partners.get(issue.issue_type, rule.notify)
                        if d != holder]
            if partners and rng.random() < HANDOFF_SHARE:
                at += _minutes(lognormal(rng, 8, 0.6)) + timedelta(seconds=1)
                plan.append(_Action(at, "reassigned", rng.choice(partners)))
                if rng.random() < PING_PONG_SHARE:
                    at += _minutes(lognormal(rng, 8, 0.6)) + timedelta(seconds=1)
                    plan.append(_Action(at, "reassigned", holder))
            median = response_median_min(rule.ack_minutes, issue.severity,
                                         is_night(issue.raised_at, self.tz))
            raised = issue.raised_at.replace(microsecond=0)
            answered = raised + _minutes(lognormal(rng, median, 0.6))
            at = max(answered, at + _minutes(rng.uniform(0.5, 5)) + timedelta(seconds=1))
            plan.append(_Action(at, "acknowledged"))
        if issue.status in ("open", "acknowledged"):
            working = lognormal(rng, WORKING_SHARE * rule.resolve_minutes, 0.6)
            if rng.random() < HARD_SHARE:
                working *= rng.uniform(3, 8)
            begun = (issue.acknowledged_at or at).replace(microsecond=0)
            at = max(at + timedelta(seconds=1), begun + _minutes(max(2.0, working)))
            plan.append(_Action(at, "resolved"))
        if rng.random() < CLOSE_SHARE:
            plan.append(_Action(at + _minutes(max(2.0, lognormal(rng, 90, 0.8))), "closed"))
        return plan

    def _escalations(self, issue, rule: _Rule, plan: list[_Action], done: set, start: datetime,
                     now: datetime) -> list[_Action]:
        """Escalations owed by now: one when the response limit passes unanswered, one when
        the resolve limit passes unresolved; an overdue issue found late is escalated at once."""
        def when(kind: str) -> datetime | None:
            happened = [at for at, k in done if k == kind]
            planned = [a.at for a in plan if a.kind == kind]
            return min(happened + planned, default=None)

        deadlines = []
        for limit, minutes, finished in (("ack", rule.ack_minutes, when("acknowledged")),
                                         ("resolve", rule.resolve_minutes, when("resolved"))):
            deadline = issue.raised_at + timedelta(minutes=minutes)
            if deadline <= now and (finished is None or finished > deadline):
                deadlines.append((deadline, escalation_note(limit, minutes)))
        escalated = sum(1 for _, kind in done if kind == "escalated")
        return [_Action(max(deadline, start + timedelta(seconds=n)), "escalated", note=note)
                for n, (deadline, note) in enumerate(deadlines[escalated:])]

    def _apply(self, issue_id: str, action: _Action, plant: _Plant) -> bool:
        """One life-cycle step in its own transaction; False when the issue moved on without it."""
        rng = random.Random(f"{self.seed}:{issue_id}:{action.at.isoformat()}:{action.kind}")
        try:
            with db.session_scope(self.engine) as session:
                issue = session.get(Issue, issue_id)
                actor = plant.actor(rng, issue.owner_department_code)
                if action.kind == "reassigned":
                    store.reassign(session, issue_id, action.at, action.department, actor=actor)
                elif action.kind == "acknowledged":
                    store.acknowledge(session, issue_id, action.at, actor=actor)
                elif action.kind == "escalated":
                    store.escalate(session, issue_id, action.at, note=action.note)
                elif action.kind == "resolved":
                    store.resolve(session, issue_id, action.at, actor=actor,
                                  cause=self._cause(rng, issue.issue_type))
                elif action.kind == "closed":
                    store.close(session, issue_id, action.at, actor=issue.raised_by)
        except store.LifecycleError as exc:
            log.debug("skipped %s of %s: %s", action.kind, issue_id, exc)
            return False
        return True

    def _cause(self, rng: random.Random, issue_type: str) -> str | None:
        causes = [t.cause for t in self._habits.templates if t.issue_type == issue_type and t.cause]
        return rng.choice(causes) if causes else None

    # -- material --

    def _load_stock(self, conn: Connection, start: datetime) -> _Stock:
        stock = _Stock()
        for row in queries.lot_positions(conn, start).itertuples(index=False):
            dwell = None if math.isnan(row.max_dwell_minutes) else float(row.max_dwell_minutes)
            stock.add(row.lot, row.material_code, row.location_code, float(row.qty),
                      row.last_in_at.to_pydatetime(), dwell)
        present = {(lot.lot, lot.location) for lot in stock.lots()}
        self._held &= present
        self._released &= present
        return stock

    def _move_material(self, plant: _Plant, stock: _Stock, start: datetime, now: datetime,
                       counts: Counter) -> None:
        """Material arrives along the plant's recent inbound routes and every lot moves on
        along its recent onward routes, each location keeping its usual stay; the whole
        plant runs faster or slower to make the configured moves per hour."""
        habits = self._habits
        if not habits.moves_per_hour:
            return
        speed = self.moves_per_hour / habits.moves_per_hour
        dwell_h = habits.dwell_hours
        rng = random.Random(f"{self.seed}:moves:{start.isoformat()}:{now.isoformat()}")
        rows: list[dict] = []
        chunk = start
        while chunk < now:
            chunk_end = min(now, chunk + MOVE_CHUNK)
            hours = (chunk_end - chunk) / timedelta(hours=1)
            self._release_holds(rng, stock, chunk, hours)
            events = []
            for route in habits.sources:
                arrivals = route.moves / habits.window_hours * speed * hours
                for _ in range(_poisson(rng, arrivals)):
                    events.append((chunk + (chunk_end - chunk) * (1 - rng.random()), route, None))
            for lot in stock.lots():
                routes = habits.onward.get((lot.material, lot.location))
                if not routes or lot.location not in dwell_h or self._held_at(lot, chunk):
                    continue
                mean = sum(r.moves * r.qty for r in routes) / sum(r.moves for r in routes)
                per_hour = max(1.0, lot.qty / mean) * speed / dwell_h[lot.location]
                for _ in range(_poisson(rng, per_hour * hours)):
                    route = rng.choices(routes, weights=[r.moves for r in routes])[0]
                    events.append((chunk + (chunk_end - chunk) * (1 - rng.random()), route, lot))
            events.sort(key=lambda event: event[0])
            for at, route, lot in events:
                move = self._move(rng, plant, stock, route, lot, at,
                                  f"{now:%y%m%d%H%M%S%f}-{len(rows):05d}")
                if move is not None:
                    rows.append(move)
            chunk = chunk_end
        if rows:
            with db.session_scope(self.engine) as session:
                store.record_movements(session, rows)
        counts["movements"] += len(rows)

    def _held_at(self, lot: _Lot, at: datetime) -> bool:
        """On hold: put aside by this simulator, or found left too long and not released yet."""
        key = (lot.lot, lot.location)
        return key in self._held or (key not in self._released and lot.overstayed(at))

    def _release_holds(self, rng: random.Random, stock: _Stock, at: datetime,
                       hours: float) -> None:
        """Lots on hold are released now and then, so stagnant material shows on the wall
        and clears again."""
        release = 1 - math.exp(-hours / HOLD_RELEASE_H)
        for key in sorted(self._held):
            if rng.random() < release:
                self._held.discard(key)
                self._released.add(key)
        for lot in stock.lots():
            key = (lot.lot, lot.location)
            if key not in self._released and lot.overstayed(at) and rng.random() < release:
                self._released.add(key)

    def _move(self, rng: random.Random, plant: _Plant, stock: _Stock, route: _Route,
              lot: _Lot | None, at: datetime, number: str) -> dict | None:
        """One move: a new lot from outside, or part of a lot (all of it when little is left),
        never more than the lot has where it is."""
        if lot is None:
            qty = _amount(route.qty * rng.uniform(0.8, 1.2), route.qty)
            name = f"LT{at.astimezone(self.tz):%y%m%d%H%M%S}-{number[-5:]}"
            if stock.holds(name, route.material, route.destination):
                return None
        else:
            if lot.qty <= 0 or self._held_at(lot, at):
                return None
            qty = min(lot.qty, _amount(route.qty * rng.uniform(0.8, 1.2), lot.qty))
            if lot.qty - qty < 1e-6 or route.qty >= 0.9 * lot.qty:
                qty = lot.qty
            lot.qty -= qty
            name = lot.lot
        kind, max_dwell = plant.locations[route.destination]
        if kind in queries.STOCK_KINDS:
            stock.add(name, route.material, route.destination, qty, at, max_dwell)
            if max_dwell is not None and rng.random() < NEW_HOLD_SHARE:
                self._held.add((name, route.destination))
        return {"id": f"{ID_PREFIX}M{number}", "at": at, "material_code": route.material,
                "lot": name, "qty": qty, "from_location_code": route.source,
                "to_location_code": route.destination, "order_ref": None}

    # -- production --

    def _report_production(self, plant: _Plant, start: datetime, now: datetime,
                           counts: Counter) -> None:
        """The running shift's actual so far; a shift that ends is closed and the next opened
        with the same plan as the same shift a day earlier."""
        if not plant.lines:
            return
        with self.engine.connect() as conn:
            attainment = self._attainment(conn, start)
            rows = []
            for line in plant.lines:
                begin, finish, planned = line.shift_start, line.shift_end, line.planned_qty
                length = finish - begin
                while begin < now:
                    if finish > start:
                        rows.append(self._shift_row(line.line, begin, finish, planned,
                                                    attainment.get(line.line, 0.9), now))
                    begin, finish = finish, finish + length
                    earlier = conn.execute(
                        select(ProductionPlan.planned_qty).where(
                            ProductionPlan.line == line.line,
                            ProductionPlan.shift_start == begin - timedelta(days=1))).scalar()
                    planned = planned if earlier is None else earlier
        if rows:
            with self.engine.begin() as conn:
                store.report_production(conn, rows)
        counts["plan_rows"] += len(rows)

    def _shift_row(self, line: str, begin: datetime, finish: datetime, planned: float,
                   attainment: float, now: datetime) -> dict:
        rng = random.Random(f"{self.seed}:{line}:{begin.isoformat()}")
        made = planned * min(1.03, lognormal(rng, attainment, 0.04))
        elapsed = min(1.0, (now - begin) / (finish - begin))
        return {"line": line, "shift_start": begin, "shift_end": finish,
                "planned_qty": float(planned), "actual_qty": float(round(made * elapsed))}

    @staticmethod
    def _attainment(conn: Connection, start: datetime) -> dict[str, float]:
        """Each line's attainment over its recent finished shifts: the live plant keeps it."""
        rows = conn.execute(
            select(ProductionPlan.line, func.sum(ProductionPlan.actual_qty),
                   func.sum(ProductionPlan.planned_qty))
            .where(ProductionPlan.shift_end <= start, ProductionPlan.shift_start > start - RECENT,
                   ProductionPlan.actual_qty.is_not(None))
            .group_by(ProductionPlan.line)).all()
        return {line: actual / planned for line, actual, planned in rows if planned}


def _amount(value: float, scale: float) -> float:
    """Whole units for things counted in the tens or more, one decimal below that."""
    return float(max(1, round(value))) if scale >= 10 else round(max(0.1, value), 1)


class SimulatorThread(threading.Thread):
    """Steps the simulator every tick until stopped; a failed step is logged and retried."""

    def __init__(self, simulator: LiveSimulator, tick_s: float):
        super().__init__(name="floorlink-simulator", daemon=True)
        self.simulator = simulator
        self.tick_s = tick_s
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                counts = self.simulator.step(timezones.utc_now())
                log.debug("simulator step: %s", counts)
            except Exception:  # noqa: BLE001 - the database may be busy; the next tick retries
                log.exception("simulator step failed; retrying on the next tick")
            self._stopping.wait(self.tick_s)

    def stop(self) -> None:
        self._stopping.set()


def start_background(engine: Engine) -> SimulatorThread:
    """Run the live simulator in a daemon thread with the configured rates and tick."""
    simulator = LiveSimulator(engine, seed=settings.get_int("DEMO_SEED"),
                              issues_per_hour=settings.get_float("SIMULATOR_ISSUES_PER_HOUR"),
                              moves_per_hour=settings.get_float("SIMULATOR_MOVES_PER_HOUR"))
    thread = SimulatorThread(simulator, settings.get_float("SIMULATOR_TICK_S"))
    thread.start()
    return thread
