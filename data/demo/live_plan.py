"""The live simulator's production: the running shift reports its actual so far; a shift
that ends is closed and the next opened with the plan of the same shift a day earlier, each
line keeping its recent attainment. Written through data.store as live reports."""
from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from data import store
from data.demo import pace
from data.demo.observed import RECENT, ObservedPlant
from data.models import ProductionPlan


class LivePlan:
    """Keeps each line's shifts reported through explicit instants."""

    def __init__(self, engine: Engine, *, seed: int):
        self.engine = engine
        self.seed = seed

    def report(self, plant: ObservedPlant, start: datetime, now: datetime,
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
        made = planned * min(1.03, pace.lognormal(rng, attainment, 0.04))
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
