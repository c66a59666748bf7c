"""The material flow of the demo plant's history: each purchased lot from its supplier to
receiving, IQC and the warehouse, then shift by shift to the line sides and into
consumption; each shift's product from the line to finished goods and on to a customer; some
scrap. Lots wait less in the warehouse as the wall is adopted; a supplier's outage delays its
lots; a few lots are held at IQC and a few lot tails are left at the line side."""
from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from data.demo import pace
from data.demo.plan_history import NIGHT_PLAN_SHARE, SHIFT, shift_label, shift_starts
from data.demo.reference import (
    CUSTOMERS, HISTORY_ID_PREFIX, LINES, RAW_MATERIALS, STATIONS, STOCK_LOCATIONS, RawMaterial,
    station_code,
)
from data.demo.timeline import Timeline

# Lots held at IQC for a decision, rejected in part, and lots whose tail is left at the line.
IQC_HOLD_SHARE, IQC_REJECT_SHARE, REMNANT_SHARE = 0.04, 0.03, 0.15
# Days a lot waits in the warehouse before the lines draw on it, before and after the wall:
# less stock for the same output is the material turnover the article reports.
WAREHOUSE_DAYS_BEFORE, WAREHOUSE_DAYS_AFTER = 4.5, 3.2
# Lots delivered this long before the history starts fill its warehouses.
OPENING_LEAD = timedelta(days=12)
OPENING_REF = "OPENING 期初库存"


def _hours(value: float) -> timedelta:
    return timedelta(hours=value)


def _move(at: datetime, material: str, lot: str, qty: float, source: str, destination: str,
          order: str | None = None) -> dict:
    return {"at": at.replace(microsecond=0), "material_code": material, "lot": lot,
            "qty": float(qty), "from_location_code": source, "to_location_code": destination,
            "order_ref": order}


class MaterialHistory:
    """Every move over a timeline, for its shifts (plan_history.PlanHistory.shifts)."""

    def __init__(self, timeline: Timeline):
        self.timeline = timeline
        self.start, self.end, self.tz = timeline.start, timeline.end, timeline.tz

    def movements(self, shifts: list[dict]) -> list[dict]:
        """Every move up to the end, numbered in time order."""
        moves = self._raw_material_moves(self.timeline.rng("material"))
        moves += self._product_moves(self.timeline.rng("product"), shifts)
        moves = [m for m in moves if m["at"] <= self.end]
        moves.sort(key=lambda m: (m["at"], m["lot"], m["from_location_code"],
                                  m["to_location_code"]))
        return [{"id": f"{HISTORY_ID_PREFIX}M{n:07d}", **move}
                for n, move in enumerate(moves, start=1)]

    def _raw_material_moves(self, rng: random.Random) -> list[dict]:
        """Lots from twelve days before the history on; what was in stock at its start is
        booked as opening stock, so the history begins with full warehouses."""
        moves, forced = [], {"iqc": 2, "line_side": 2}
        for material in RAW_MATERIALS:
            daily = {line.code: material.usage[line.code] * line.planned_per_shift
                     * (1 + NIGHT_PLAN_SHARE) * line.attainment
                     for line in LINES if line.code in material.usage}
            arrival = self.start - OPENING_LEAD + timedelta(days=rng.uniform(0, material.lot_days))
            number = 0
            while arrival < self.end:
                number += 1
                interval = material.lot_days * rng.uniform(0.85, 1.15)
                qty = math.ceil(sum(daily.values()) * interval * rng.uniform(1.0, 1.08))
                lot = f"{material.code[2:]}-{arrival.astimezone(self.tz):%y%m%d}-{number:03d}"
                lot_moves = self._lot_moves(rng, material, lot, qty, arrival, daily, forced)
                moves += self._opened(lot_moves, material.supplier)
                arrival += timedelta(days=interval)
        return moves

    def _opened(self, lot_moves: list[dict], supplier: str) -> list[dict]:
        """A lot's moves from the start of the history, with its stock then as opening stock."""
        before = [m for m in lot_moves if m["at"] < self.start]
        if not before:
            return lot_moves
        balance: dict[str, float] = {}
        for move in before:
            into, out_of = move["to_location_code"], move["from_location_code"]
            balance[into] = balance.get(into, 0) + move["qty"]
            balance[out_of] = balance.get(out_of, 0) - move["qty"]
        opening = [_move(self.start, before[0]["material_code"], before[0]["lot"], qty, supplier,
                         location, OPENING_REF)
                   for location, qty in sorted(balance.items())
                   if qty > 0 and location in STOCK_LOCATIONS]
        return opening + [m for m in lot_moves if m["at"] >= self.start]

    def _lot_moves(self, rng: random.Random, material: RawMaterial, lot: str, qty: int,
                   arrival: datetime, daily: dict, forced: dict) -> list[dict]:
        """One lot's path: supplier, receiving, IQC, warehouse, then shift by shift to the
        line sides until it is used up."""
        outage = self.timeline.outage_at(arrival, material.supplier)
        if outage is not None:
            arrival = outage.end + _hours(rng.uniform(0, 8))
        adoption = self.timeline.progress(max(arrival, self.start))
        slow = 1.6 - 0.6 * adoption     # receiving and IQC also speed up with the wall
        into_iqc = arrival + _hours(rng.uniform(0.3, 2.5) * slow)
        into_warehouse = into_iqc + _hours(rng.uniform(2, 12) * slow)
        if forced["iqc"] and self.end - _hours(60) <= into_iqc <= self.end - _hours(26):
            forced["iqc"] -= 1
            into_warehouse = self.end + _hours(rng.uniform(2, 24))
        elif rng.random() < IQC_HOLD_SHARE:
            into_warehouse += _hours(rng.uniform(26, 70))
        code = material.code
        moves = [
            _move(arrival, code, lot, qty, material.supplier, "RCV-01",
                  f"PO{arrival.astimezone(self.tz):%y%m%d}-{code[2:]}"),
            _move(into_iqc, code, lot, qty, "RCV-01", "IQC-01"),
        ]
        if rng.random() < IQC_REJECT_SHARE:
            rejected = max(1, round(qty * rng.uniform(0.05, 0.2)))
            moves.append(_move(into_warehouse - timedelta(minutes=5), code, lot, rejected,
                               "IQC-01", "SCR-01"))
            qty -= rejected
        moves.append(_move(into_warehouse, code, lot, qty, "IQC-01", material.warehouse))
        waits = WAREHOUSE_DAYS_BEFORE + (WAREHOUSE_DAYS_AFTER - WAREHOUSE_DAYS_BEFORE) * adoption
        first_draw = into_warehouse + timedelta(days=pace.lognormal(rng, waits, 0.25))
        remaining = qty
        for shift in shift_starts(first_draw + SHIFT, self.end + SHIFT, self.tz):
            for line in sorted(daily):
                portion = min(remaining, max(1, round(daily[line] / 2 * rng.uniform(0.9, 1.1))))
                remaining -= portion
                moves += self._portion_moves(rng, material, lot, line, portion, shift,
                                             remaining == 0, forced)
                if remaining == 0:
                    return moves
        return moves

    def _portion_moves(self, rng: random.Random, material: RawMaterial, lot: str, line: str,
                       portion: int, shift: datetime, last: bool, forced: dict) -> list[dict]:
        """A shift's portion: kitted to the line side, used in two goes; the tail of a lot
        is sometimes left behind, the line-side material the wall calls stagnant."""
        line_side, use = f"{line}-LS", f"{line}-USE"
        delivered = shift - timedelta(minutes=rng.uniform(15, 90))
        order = f"WO-{line}-{shift_label(shift, self.tz)}"
        moves = [_move(delivered, material.code, lot, portion, material.warehouse, line_side,
                       order)]
        rest = portion
        if portion >= 2:
            used = round(portion * rng.uniform(0.4, 0.6))
            moves.append(_move(shift + _hours(rng.uniform(2, 6)), material.code, lot, used,
                               line_side, use, order))
            rest -= used
        finished = shift + _hours(rng.uniform(8, 11.5))
        recent = self.end - _hours(48) <= delivered <= self.end - _hours(14)
        if last and forced["line_side"] and recent:
            forced["line_side"] -= 1
            finished = self.end + _hours(rng.uniform(1, 24))
        elif last and rng.random() < REMNANT_SHARE:
            finished = shift + _hours(rng.uniform(14, 60))
        moves.append(_move(finished, material.code, lot, rest, line_side, use, order))
        return moves

    def _product_moves(self, rng: random.Random, shifts: list[dict]) -> list[dict]:
        """A product lot per line and shift: made at the last station in three batches,
        defects scrapped, the rest to finished goods and shipped within a day or so."""
        moves = []
        for shift in shifts:
            line, begin, made = shift["line"], shift["shift_start"], shift["made"]
            if begin < self.start or made < 3:
                continue
            label = shift_label(begin, self.tz)
            lot, order = f"{line.code}-{label}", f"WO-{line.code}-{label}"
            station = station_code(line.code, STATIONS[-1][0])
            batch = made // 3
            for at, qty in ((begin + _hours(4), batch), (begin + _hours(8), batch),
                            (begin + SHIFT - timedelta(minutes=10), made - 2 * batch)):
                moves.append(_move(at, line.product, lot, qty, f"{line.code}-USE", station, order))
            finish = begin + SHIFT
            scrapped = round(made * rng.uniform(0.005, 0.025))
            if scrapped:
                moves.append(_move(finish + timedelta(minutes=15), line.product, lot, scrapped,
                                   station, "SCR-01", order))
            moves.append(_move(finish + timedelta(minutes=rng.uniform(30, 120)), line.product, lot,
                               made - scrapped, station, "FG-01", order))
            moves.append(_move(finish + _hours(rng.uniform(6, 30)), line.product, lot,
                               made - scrapped, "FG-01", rng.choice(CUSTOMERS)[0],
                               f"SO-{label}-{line.code}"))
        return moves

