"""The live plant: keeps a loaded plant moving so the wall has something to show.

Each step advances the floor from the previous step to an explicit instant: new issues are
raised, handed on (sometimes straight back), acknowledged, resolved and closed
(live_issues.py; the notifier escalates them by the plant's policy, data/notify); the
running shift reports its output (live_plan.py); material moves lot by lot along the routes
the plant used recently (live_material.py). Everything
goes through data.store in short transactions. The pace is the end of the demo plant's
story (pace.py): a median response of about a quarter of an hour, nights slower than days.

The plant is read from the database (observed.py), so the simulator runs on any plant
loaded in. A step that fails is retried whole on the next tick: issue ids and their
life-cycle instants are derived from the seed, so a retried step does not write anything
twice. This module keeps the simulator's clock: where a step starts, how far it catches up,
when the plant's habits are read again, and the thread that steps it with the wall clock.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from data import settings, timezones
from data.demo import observed
from data.demo.live_issues import LiveIssues
from data.demo.live_material import LiveMaterial
from data.demo.live_plan import LivePlan
from data.models import Issue, IssueEvent, Movement

log = logging.getLogger("floorlink.simulator")

# How far back the first step catches up, and how often the plant's habits are read again.
CATCH_UP_LIMIT = timedelta(hours=24)
HABITS_REFRESH = timedelta(hours=1)
COUNT_KEYS = ("raised", "acknowledged", "reassigned", "resolved", "closed",
              "movements", "plan_rows")


def newest_instant(conn: Connection) -> datetime | None:
    """The newest thing the plant has recorded: the simulator carries on from there."""
    instants = [conn.execute(select(func.max(column))).scalar()
                for column in (Issue.raised_at, IssueEvent.at, Movement.at)]
    instants = [i for i in instants if i is not None]
    return max(instants) if instants else None


class LiveSimulator:
    """Advances a plant through explicit instants; deterministic for a seed and a sequence
    of instants on the same database."""

    def __init__(self, engine: Engine, *, seed: int, issues_per_hour: float,
                 moves_per_hour: float):
        self.engine = engine
        tz = timezones.site_zone()
        self.issues = LiveIssues(engine, seed=seed, issues_per_hour=issues_per_hour, tz=tz)
        self.plan = LivePlan(engine, seed=seed)
        self.material = LiveMaterial(engine, seed=seed, moves_per_hour=moves_per_hour, tz=tz)
        self._last: datetime | None = None
        self._habits: observed.Habits | None = None

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
            plant = observed.load_plant(conn, now)
            if self._habits is None or start - self._habits.loaded_for >= HABITS_REFRESH:
                self._habits = observed.load_habits(conn, plant, start)
                self.material.forget_stock()
            stock = self.material.take_stock(conn, start)
        habits = self._habits
        self.issues.raise_issues(plant, habits, start, now, counts)
        self.issues.advance(plant, habits, start, now, counts)
        self.plan.report(plant, start, now, counts)
        self.material.move(plant, habits, stock, start, now, counts)
        self.material.keep_stock(stock)
        self._last = now
        return dict(counts)


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
