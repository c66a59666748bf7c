"""The plant as the live simulator finds it in the database: its rules, people, locations and
running shifts (`ObservedPlant`), and what it did in its recent past (`Habits`): the issues
it raised, where it handed them, the routes its material took and how long material stayed
at each location. The simulator does more of the same, so it runs on any plant loaded in."""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from data import queries
from data.models import Issue, IssueEvent, Location, Movement, Person, ProductionPlan, SlaRule

# What the simulator learns the plant's habits from.
RECENT = timedelta(days=7)


@dataclass(frozen=True)
class ObservedRule:
    """An issue type's SLA rule: who is told, and the response and resolve limits."""
    notify: tuple[str, ...]
    ack_minutes: float
    resolve_minutes: float


@dataclass
class ObservedPlant:
    """The plant as the database describes it now."""
    rules: dict[str, ObservedRule]
    people: dict[str, list[str]]
    locations: dict[str, tuple[str, float | None]]     # code -> (kind, max_dwell_minutes)
    lines: list                                       # latest shift begun, per line

    def actor(self, rng: random.Random, department: str) -> str | None:
        people = self.people.get(department)
        return rng.choice(people) if people else None


@dataclass(frozen=True)
class Route:
    material: str
    source: str
    destination: str
    moves: int
    qty: float          # mean quantity per move


@dataclass
class Habits:
    """What the plant did in its recent past: the simulator does more of the same."""
    loaded_for: datetime
    templates: list                                   # recent issues to raise alike
    partners: dict[str, list[str]]                    # issue type -> departments it went to
    sources: list[Route]                              # moves that bring material in
    onward: dict[tuple[str, str], list[Route]]        # (material, location) -> routes out
    window_hours: float
    moves_per_hour: float
    dwell_hours: dict[str, float]                     # mean stay of material at each location


def load_plant(conn: Connection, now: datetime) -> ObservedPlant:
    """The plant now: its rules, people by department, locations, and each line's latest
    shift begun by `now`."""
    rules = {r.issue_type: ObservedRule(tuple(filter(None, (r.notify_department_codes or "").split(";"))),
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
    return ObservedPlant(rules, people, locations, lines)


def load_habits(conn: Connection, plant: ObservedPlant, until: datetime) -> Habits:
    """The plant's habits over the week before `until`."""
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
    routes = [Route(r.material_code, r.from_location_code, r.to_location_code, r.moves,
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
    return Habits(until, templates, partners, sources, onward, hours,
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
