"""The frame of the demo plant's history: its window and seed, how far the wall's adoption
has come at each instant, and the supplier outages that the issue story and the material
flow both follow."""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from data.demo import pace
from data.demo.reference import SUPPLIERS


@dataclass(frozen=True)
class SupplierOutage:
    """A supplier that stops delivering for a while: its lots arrive late, lines run short."""
    supplier: str
    start: datetime
    end: datetime


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


class Timeline:
    """`[start, end)` in the site's zone `tz`; every generator draws from its own named
    random stream of the seed, so one part of the story does not shift another."""

    def __init__(self, seed: int, start: datetime, end: datetime, tz):
        self.seed, self.start, self.end, self.tz = seed, start, end, tz
        self.minutes = (end - start).total_seconds() / 60
        self.outages = self._outages(random.Random(f"{seed}:episodes"))

    def rng(self, part: str) -> random.Random:
        return random.Random(f"{self.seed}:{part}")

    def at(self, minute: float) -> datetime:
        return self.start + pace.minutes(minute)

    def progress(self, at: datetime) -> float:
        """How far the wall's adoption has come: 0 before, 1 once it is daily work."""
        return _smoothstep(((at - self.start) / (self.end - self.start) - 0.15) / 0.7)

    def is_night(self, at: datetime) -> bool:
        return pace.is_night(at, self.tz)

    def _outages(self, rng: random.Random) -> list[SupplierOutage]:
        days = (self.end - self.start).days
        outages = []
        for _ in range(max(1, round(days / 15))):
            begin = self.start + timedelta(days=rng.uniform(1, max(1.5, days - 3)))
            length = timedelta(days=rng.uniform(1.5, 3))
            supplier = rng.choice(SUPPLIERS)[0]
            outages.append(SupplierOutage(supplier, begin, min(begin + length, self.end)))
        return sorted(outages, key=lambda o: o.start)

    def outage_at(self, at: datetime, supplier: str | None = None) -> SupplierOutage | None:
        """The outage under way at `at` (of `supplier`, when given), if any."""
        return next((o for o in self.outages if o.start <= at < o.end
                     and supplier in (None, o.supplier)), None)
