"""The live simulator's material: lots arrive along the plant's recent inbound routes and
move on along its recent onward routes, each location keeping its usual stay, the whole
plant faster or slower to make the configured moves per hour. A lot never moves more than it
has where it is; now and then one is left on hold, so the wall shows stagnant material that
clears again. Moves are written through data.store, last in a step."""
from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection, Engine

from data import db, queries, store
from data.demo import pace
from data.demo.observed import Habits, ObservedPlant, Route
from data.demo.reference import LIVE_ID_PREFIX

# A lot left longer than its location allows is on hold; holds end after about this long.
HOLD_RELEASE_H = 24.0
NEW_HOLD_SHARE = 0.02
# Material is moved in slices this long (a long catch-up too).
MOVE_CHUNK = timedelta(minutes=15)


@dataclass
class _Lot:
    """What is left of a lot at one stock location, since when, and how long it may stay."""
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


class LiveMaterial:
    """Moves the plant's material through explicit instants, keeping its stock in memory
    between steps and reading it afresh whenever a step may have left it untrue."""

    def __init__(self, engine: Engine, *, seed: int, moves_per_hour: float, tz):
        self.engine = engine
        self.seed = seed
        self.moves_per_hour = moves_per_hour
        self.tz = tz
        self._stock: _Stock | None = None
        self._held: set[tuple[str, str]] = set()
        self._released: set[tuple[str, str]] = set()

    def forget_stock(self) -> None:
        """Read the stock afresh on the next step."""
        self._stock = None

    def take_stock(self, conn: Connection, start: datetime) -> _Stock:
        """The lots on hand at `start`: kept from the last step, or read afresh. Until
        `keep_stock` it is not trusted again: a step that fails before its moves are written
        leaves none of them behind, and the next step reads the stock anew."""
        stock = self._stock if self._stock is not None else self._load_stock(conn, start)
        self._stock = None
        return stock

    def keep_stock(self, stock: _Stock) -> None:
        """This step's moves are written: its stock is the plant's."""
        self._stock = stock

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

    def move(self, plant: ObservedPlant, habits: Habits, stock: _Stock, start: datetime,
             now: datetime, counts: Counter) -> None:
        """Material arrives along the plant's recent inbound routes and every lot moves on
        along its recent onward routes, each location keeping its usual stay; the whole
        plant runs faster or slower to make the configured moves per hour."""
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
                for _ in range(pace.poisson(rng, arrivals)):
                    events.append((chunk + (chunk_end - chunk) * (1 - rng.random()), route, None))
            for lot in stock.lots():
                routes = habits.onward.get((lot.material, lot.location))
                if not routes or lot.location not in dwell_h or self._held_at(lot, chunk):
                    continue
                mean = sum(r.moves * r.qty for r in routes) / sum(r.moves for r in routes)
                per_hour = max(1.0, lot.qty / mean) * speed / dwell_h[lot.location]
                for _ in range(pace.poisson(rng, per_hour * hours)):
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

    def _move(self, rng: random.Random, plant: ObservedPlant, stock: _Stock, route: Route,
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
        return {"id": f"{LIVE_ID_PREFIX}M{number}", "at": at, "material_code": route.material,
                "lot": name, "qty": qty, "from_location_code": route.source,
                "to_location_code": route.destination, "order_ref": None}


def _amount(value: float, scale: float) -> float:
    """Whole units for things counted in the tens or more, one decimal below that."""
    return float(max(1, round(value))) if scale >= 10 else round(max(0.1, value), 1)
