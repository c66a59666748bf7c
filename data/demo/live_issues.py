"""The live simulator's issues: new ones raised like the plant's recent ones, each given the
rest of its life when first seen (handed on, sometimes straight back; acknowledged at the
live pace; resolved; closed), every change through data.store. Escalations are the
notifier's (data/notify): the ladder of the plant's policy, as for real data.

Arrivals and lives are drawn from the seed, the hour and the issue id, never from what came
before, so a step that failed and is retried draws the same and writes nothing twice.
"""
from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection, Engine

from data import db, lifecycle, store
from data.demo import pace
from data.demo.observed import Habits, ObservedPlant, ObservedRule
from data.demo.reference import LIVE_ID_PREFIX
from data.models import Issue, IssueEvent

log = logging.getLogger("floorlink.simulator")

HANDOFF_SHARE, PING_PONG_SHARE = 0.12, 0.35
# Resolved issues older than this stay unverified (never closed).
CLOSE_WINDOW = timedelta(days=2)


@dataclass
class _Action:
    """A change planned for an issue: its kind, when, and to whom or why."""
    at: datetime
    kind: str
    department: str | None = None
    note: str | None = None


class LiveIssues:
    """Raises and advances the plant's issues through explicit instants."""

    def __init__(self, engine: Engine, *, seed: int, issues_per_hour: float, tz):
        self.engine = engine
        self.seed = seed
        self.issues_per_hour = issues_per_hour
        self.tz = tz
        self._plans: dict[str, list[_Action]] = {}

    def _arrivals(self, start: datetime, now: datetime) -> list[tuple[datetime, str]]:
        """New issues in (start, now]: drawn hour by hour, so a retried step draws the same."""
        arrivals = []
        hour = start.replace(minute=0, second=0, microsecond=0)
        while hour < now:
            rng = random.Random(f"{self.seed}:raise:{hour.isoformat()}")
            count = pace.poisson(rng, self.issues_per_hour * pace.arrival_weight(hour, self.tz))
            offsets = sorted(rng.randrange(3600) for _ in range(count))
            label = hour.astimezone(self.tz).strftime("%y%m%d%H")
            for number, offset in enumerate(offsets, start=1):
                at = hour + timedelta(seconds=offset)
                if start < at <= now:
                    arrivals.append((at, f"{LIVE_ID_PREFIX}{label}-{number:03d}"))
            hour += timedelta(hours=1)
        return arrivals

    def raise_issues(self, plant: ObservedPlant, habits: Habits, start: datetime, now: datetime,
                     counts: Counter) -> None:
        """New issues in (start, now], each like a recent one."""
        if not plant.rules:
            return
        for at, issue_id in self._arrivals(start, now):
            rng = random.Random(f"{self.seed}:{issue_id}:raised")
            issue_type, severity, title, location, raised_by = self._issue_like(rng, plant, habits)
            with db.session_scope(self.engine) as session:
                if session.get(Issue, issue_id) is not None:
                    continue
                store.record_as(session, store.SIMULATOR)
                store.raise_issue(session, issue_id=issue_id, issue_type=issue_type, title=title,
                                  severity=severity, at=at, location_code=location,
                                  raised_by=raised_by)
            counts["raised"] += 1

    @staticmethod
    def _issue_like(rng: random.Random, plant: ObservedPlant, habits: Habits) -> tuple:
        """Type, severity, title, location and raiser of a new issue, like a recent one."""
        usable = [t for t in habits.templates if t.issue_type in plant.rules]
        if usable:
            like = rng.choice(usable)
            return like.issue_type, like.severity, like.title, like.location_code, like.raised_by
        issue_type = rng.choice(sorted(plant.rules))
        return issue_type, "P3", issue_type, None, None

    def _active_issues(self, conn: Connection, start: datetime) -> tuple[list, dict]:
        issues = conn.execute(
            select(Issue.id, Issue.issue_type, Issue.severity, Issue.raised_at, Issue.status,
                   Issue.acknowledged_at, Issue.resolved_at, Issue.owner_department_code)
            .where(or_(Issue.status.in_(lifecycle.ACTIVE),
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

    def advance(self, plant: ObservedPlant, habits: Habits, start: datetime, now: datetime,
                counts: Counter) -> None:
        """Every change owed by `now` to the issues still being worked on or recently resolved."""
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
                self._plans[issue.id] = self._plan(issue, rule, habits, max(last, start))
            plan = self._plans[issue.id]
            due = [a for a in plan if a.at <= now and (a.at, a.kind) not in done]
            for action in sorted(due, key=lambda a: (a.at, a.kind)):
                if self._apply(issue.id, action, plant, habits):
                    counts[action.kind] += 1

    def _plan(self, issue, rule: ObservedRule, habits: Habits, after: datetime) -> list[_Action]:
        """The rest of an issue's life after `after`, drawn from the seed and the issue id."""
        rng = random.Random(f"{self.seed}:{issue.id}")
        at = max(after, issue.raised_at).replace(microsecond=0)
        plan = []
        if issue.status == "open":
            holder = issue.owner_department_code
            partners = [d for d in habits.partners.get(issue.issue_type, rule.notify)
                        if d != holder]
            if partners and rng.random() < HANDOFF_SHARE:
                at += pace.minutes(pace.lognormal(rng, 8, 0.6)) + timedelta(seconds=1)
                plan.append(_Action(at, "reassigned", rng.choice(partners)))
                if rng.random() < PING_PONG_SHARE:
                    at += pace.minutes(pace.lognormal(rng, 8, 0.6)) + timedelta(seconds=1)
                    plan.append(_Action(at, "reassigned", holder))
            median = pace.response_median_min(rule.ack_minutes, issue.severity,
                                              pace.is_night(issue.raised_at, self.tz))
            raised = issue.raised_at.replace(microsecond=0)
            answered = raised + pace.minutes(pace.lognormal(rng, median, 0.6))
            at = max(answered, at + pace.minutes(rng.uniform(0.5, 5)) + timedelta(seconds=1))
            plan.append(_Action(at, "acknowledged"))
        if issue.status in lifecycle.ACTIVE:
            working = pace.lognormal(rng, pace.WORKING_SHARE * rule.resolve_minutes, 0.6)
            if rng.random() < pace.HARD_SHARE:
                working *= rng.uniform(3, 8)
            begun = (issue.acknowledged_at or at).replace(microsecond=0)
            at = max(at + timedelta(seconds=1), begun + pace.minutes(max(2.0, working)))
            plan.append(_Action(at, "resolved"))
        if rng.random() < pace.CLOSE_SHARE:
            plan.append(_Action(at + pace.minutes(max(2.0, pace.lognormal(rng, 90, 0.8))),
                                "closed"))
        return plan

    def _apply(self, issue_id: str, action: _Action, plant: ObservedPlant, habits: Habits) -> bool:
        """One life-cycle step in its own transaction; False when the issue moved on without it."""
        rng = random.Random(f"{self.seed}:{issue_id}:{action.at.isoformat()}:{action.kind}")
        try:
            with db.session_scope(self.engine) as session:
                store.record_as(session, store.SIMULATOR)
                issue = session.get(Issue, issue_id)
                actor = plant.actor(rng, issue.owner_department_code)
                if action.kind == "reassigned":
                    store.reassign(session, issue_id, action.at, action.department, actor=actor)
                elif action.kind == "acknowledged":
                    store.acknowledge(session, issue_id, action.at, actor=actor)
                elif action.kind == "resolved":
                    store.resolve(session, issue_id, action.at, actor=actor,
                                  cause=self._cause(rng, issue.issue_type, habits))
                elif action.kind == "closed":
                    store.close(session, issue_id, action.at, actor=issue.raised_by)
        except store.LifecycleError as exc:
            log.debug("skipped %s of %s: %s", action.kind, issue_id, exc)
            return False
        return True

    @staticmethod
    def _cause(rng: random.Random, issue_type: str, habits: Habits) -> str | None:
        causes = [t.cause for t in habits.templates if t.issue_type == issue_type and t.cause]
        return rng.choice(causes) if causes else None
