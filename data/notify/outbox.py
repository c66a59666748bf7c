"""Steps owed -> ladder steps taken, escalation events and deliveries, in one transaction.

Two doors owe messages, both idempotent on the same keys, so either may come first and
nothing is owed twice: `listen` adds a listener to the one write path (data.store), which owes
an issue's first step in the transaction that raises it and a ping-pong notice in the one that
passes it back, all just before that transaction writes; `sweep`, run by the notifier every tick, owes every step whose time has come
for every open issue, whoever wrote it (an import, an outside writer, the ingest API).

A step is taken once (notify_steps: issue, step); its messages are owed once per channel
(notify_outbox.key: issue, step, channel). When several steps are owed at once (the notifier
was stopped, an old open issue was imported), all are taken but only the highest is told:
people hear where the issue stands, not its history. Steps that fell due before the policy in
force was imported are taken without a word: a new policy does not page about the past.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Sequence

from sqlalchemy import event as sa_event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from data import db, store, timezones, words
from data.models import (
    Delivery, Department, Issue, IssueEvent, Location, NotifySilence, NotifyStep, Person, SlaRule,
)
from data.notify import ladder, links, messages, policy as policies
from data.notify.ladder import IssueClock, Owed, Silence
from data.notify.messages import Mention, Message
from data.notify.policy import Policy
from data.reports import schedule

log = logging.getLogger(__name__)

# Who records the escalation events (issue_events.source) and whom they name as actor.
NOTIFIER = "notify:ladder"
ACTOR = "FloorLink"
# A ping-pong notice's level, below every rung: it is news, not an escalation.
PING_PONG_LEVEL = 0


@dataclass(frozen=True)
class Plant:
    """The names and people a message needs, read once per sweep."""
    departments: dict[str, tuple[str, str]]
    rules: dict[str, SlaRule]
    locations: dict[str, tuple[str, str | None]]
    people: dict[str, tuple[str, str | None]]


def load_plant(conn: Connection) -> Plant:
    return Plant(
        departments={r.code: (r.name_zh, r.name_en) for r in conn.execute(select(Department.__table__))},
        rules={r.issue_type: r for r in conn.execute(select(SlaRule.__table__))},
        locations={r.code: (r.name, r.line) for r in conn.execute(select(
            Location.code, Location.name, Location.line))},
        people={r.id: (r.name, r.im_handle) for r in conn.execute(select(
            Person.id, Person.name, Person.im_handle))})


def active_silences(conn: Connection, as_of: datetime) -> list[Silence]:
    """The silences not yet over at `as_of` (one that ended cannot move a step any more)."""
    return [Silence(r.starts_at, r.ends_at, r.department_code, r.line, r.location_code, r.issue_type)
            for r in conn.execute(select(NotifySilence).where(NotifySilence.ends_at > as_of)).scalars()]


def clock_of(issue, rule, location_line: str | None) -> IssueClock:
    finished = issue.resolved_at or issue.closed_at
    if finished is None and issue.status in ("resolved", "closed", "cancelled"):
        finished = issue.raised_at
    return IssueClock(id=issue.id, issue_type=issue.issue_type, severity=issue.severity,
                      raised_at=issue.raised_at, ack_minutes=rule.ack_minutes,
                      resolve_minutes=rule.resolve_minutes, holder=issue.owner_department_code,
                      acknowledged_at=issue.acknowledged_at, finished_at=finished,
                      line=location_line, location_code=issue.location_code)


# ---- the listener: a raise and a return, told in their own transaction ----------------
# What the listener reads of the database, kept this long per process and database: a raise
# costs no read of its own (an API batch stays a few statements), and a policy, a silence or
# a person changed reaches the listener within this time. The sweep reads them every tick.
KNOWN_FOR_S = 10.0
_known: dict[str, tuple] = {}
# session.info keys: the events to tell before the session writes, and whether the session
# already calls _owe_pending before it flushes.
_PENDING, _LISTENING = "notify: events to tell", "notify: listening"


def listen() -> None:
    """Owe messages in the transaction of every raise and every hand-back written through
    data.store in this process (idempotent)."""
    if _on_event not in store.EVENT_LISTENERS:
        store.EVENT_LISTENERS.append(_on_event)


def _on_event(session: Session, issue: Issue, event: IssueEvent) -> None:
    """Note the event; its messages are owed once the session has written it, all at once,
    and written before the transaction commits (the session flushes until nothing is left)."""
    if event.kind not in ("raised", "reassigned"):
        return
    if not session.info.get(_LISTENING):
        sa_event.listen(session, "after_flush_postexec", _owe_pending)
        session.info[_LISTENING] = True
    session.info.setdefault(_PENDING, []).append((issue, event))


def _known_now(conn: Connection, as_of: datetime) -> tuple[Policy, Plant | None, list[Silence]]:
    key = str(conn.engine.url)
    known = _known.get(key)
    if known is None or time.monotonic() - known[0] >= KNOWN_FOR_S:
        policy = policies.in_force(conn)
        known = (time.monotonic(), policy, load_plant(conn) if policy.id else None,
                 active_silences(conn, as_of) if policy.id else [])
        _known[key] = known
    return known[1:]


def _owe_pending(session: Session, _context) -> None:
    pending = session.info.pop(_PENDING, [])
    if not pending:
        return
    # Whatever goes wrong here, the writer's transaction goes on: the sweep owes it later.
    try:
        conn = session.connection()
        # The write's own instant (data.store stamps it): the listener reads no clock of its own.
        policy, plant, silences = _known_now(conn, pending[0][0].updated_at or pending[0][1].at)
        if not policy.id:
            return
        for issue, event in pending:
            as_of = issue.updated_at or event.at
            if event.kind == "raised":
                _take(session, policy, plant, issue, set(), silences, as_of, only_if_told=True)
            else:
                holders = _holders_until(conn, event)
                if ladder.returned_to_earlier_holder(holders):
                    _owe_ping_pong(session, policy, plant, issue, holders[-2], event.at, as_of,
                                   only_if_told=True)
    except (policies.PolicyError, LookupError, ValueError, TypeError) as exc:
        log.warning("messages left to the next sweep: %s", exc)


def _holders_until(conn: Connection, event: IssueEvent) -> list[str]:
    """The department holding the issue after each of its events, up to `event` (written)."""
    return [department for department, at, event_id in conn.execute(
        select(IssueEvent.department_code, IssueEvent.at, IssueEvent.id)
        .where(IssueEvent.issue_id == event.issue_id).order_by(IssueEvent.at, IssueEvent.id))
        if (at, event_id) <= (event.at, event.id)]


# ---- the sweep: every step whose time has come -------------------------------------------
@dataclass
class SweepCount:
    issues: int = 0
    steps: int = 0
    deliveries: int = 0
    ping_pongs: int = 0
    skipped: list = field(default_factory=list)


def sweep(engine: Engine, as_of: datetime) -> SweepCount:
    """Take every step owed at `as_of` by every open issue, each issue in a transaction of its
    own (one that fails is left to the next sweep, the others go on)."""
    count = SweepCount()
    with engine.connect() as conn:
        policy = policies.in_force(conn)
        if not policy.id:
            return count
        plant = load_plant(conn)
        silences = active_silences(conn, as_of)
        open_issues = conn.execute(select(Issue.__table__).where(
            Issue.resolved_at.is_(None), Issue.status.not_in(("resolved", "closed", "cancelled")),
            Issue.raised_at <= as_of)).all()
        taken: dict[str, set[str]] = {}
        for issue_id, step in conn.execute(
                select(NotifyStep.issue_id, NotifyStep.step).join(Issue, Issue.id == NotifyStep.issue_id)
                .where(Issue.resolved_at.is_(None), Issue.status.not_in(("resolved", "closed", "cancelled")))):
            taken.setdefault(issue_id, set()).add(step)
        returns = _unannounced_returns(conn, policy, as_of, taken)
    count.issues = len(open_issues)
    for issue in open_issues:
        rule = plant.rules.get(issue.issue_type)
        if rule is None:
            continue
        clock = clock_of(issue, rule, plant.locations.get(issue.location_code, (None, None))[1])
        steps = policy.ladder_for(issue.issue_type, issue.severity)
        owed = [o for o in ladder.owed_steps(clock, steps, silences, as_of)
                if o.key not in taken.get(issue.id, ())]
        if not owed:
            continue
        try:
            with db.session_scope(engine) as session:
                store.record_as(session, NOTIFIER)
                row = session.get(Issue, issue.id)
                count.deliveries += _take(session, policy, plant, row, taken.get(issue.id, set()),
                                          silences, as_of)
                count.steps += len(owed)
        except (IntegrityError, store.LifecycleError) as exc:
            count.skipped.append((issue.id, str(exc).splitlines()[0]))
    for issue_id, left_by, at in returns:
        try:
            with db.session_scope(engine) as session:
                store.record_as(session, NOTIFIER)
                count.deliveries += _owe_ping_pong(session, policy, plant, session.get(Issue, issue_id),
                                                   left_by, at, as_of)
                count.ping_pongs += 1
        except IntegrityError as exc:
            count.skipped.append((issue_id, str(exc).splitlines()[0]))
    return count


def _unannounced_returns(conn: Connection, policy: Policy, as_of: datetime,
                         taken: dict[str, set[str]]) -> list[tuple[str, str, datetime]]:
    """Hand-backs of open issues in the last day that no notice was owed for yet (written by
    a writer without the listener): (issue, the department that passed it back, when)."""
    since = max(as_of - timedelta(days=1), policy.since or as_of - timedelta(days=1))
    rows = conn.execute(
        select(IssueEvent.issue_id, IssueEvent.at, IssueEvent.kind, IssueEvent.department_code)
        .join(Issue, Issue.id == IssueEvent.issue_id)
        .where(Issue.resolved_at.is_(None), Issue.status.not_in(("resolved", "closed", "cancelled")),
               IssueEvent.issue_id.in_(
                   select(IssueEvent.issue_id).where(IssueEvent.kind == "reassigned",
                                                     IssueEvent.at > since, IssueEvent.at <= as_of)))
        .order_by(IssueEvent.issue_id, IssueEvent.at, IssueEvent.id)).all()
    returns, holders = [], {}
    for row in rows:
        sequence = holders.setdefault(row.issue_id, [])
        sequence.append(row.department_code)
        if (row.kind == "reassigned" and since < row.at <= as_of
                and ladder.returned_to_earlier_holder(sequence)
                and _ping_pong_key(row.at) not in taken.get(row.issue_id, ())):
            returns.append((row.issue_id, sequence[-2], row.at))
    return returns


# ---- taking steps ----------------------------------------------------------------------
def _take(session: Session, policy: Policy, plant: Plant, issue: Issue, taken: set[str],
          silences: Sequence[Silence], as_of: datetime, only_if_told: bool = False) -> int:
    """Take the steps `issue` owes at `as_of` and not taken yet; tell the highest. Returns the
    deliveries owed. `only_if_told`: take nothing when nobody would be told (the listener
    leaves such steps to the sweep, so a raise writes nothing more than itself)."""
    rule = plant.rules.get(issue.issue_type)
    if rule is None:
        return 0
    clock = clock_of(issue, rule, plant.locations.get(issue.location_code, (None, None))[1])
    owed = [o for o in ladder.owed_steps(clock, policy.ladder_for(issue.issue_type, issue.severity),
                                         silences, as_of) if o.key not in taken]
    if not owed:
        return 0
    top = owed[-1]
    if only_if_told and not told(policy, plant, issue, top.step.tell, top.step.mention, as_of):
        return 0
    for o in owed:
        session.add(NotifyStep(issue_id=issue.id, step=o.key, level=o.level, due_at=o.due_at, taken_at=as_of))
    if policy.since is not None and top.due_at < policy.since:
        return 0
    event = "issue.raised" if top.step.when == "raised" and top.level == 0 else "issue.escalated"
    if event == "issue.escalated":
        store.record_as(session, NOTIFIER)
        store.escalate(session, issue.id, as_of, actor=ACTOR,
                       note=_escalation_note(top, clock, policy.language, plant))
    return _owe(session, policy, plant, issue, top.key, top.level, top.step.tell, top.step.mention,
                event, top.due_at, as_of)


def _ping_pong_key(at: datetime) -> str:
    return f"PP@{round(at.timestamp() * 1000)}"


def _owe_ping_pong(session: Session, policy: Policy, plant: Plant, issue: Issue, left_by: str,
                   at: datetime, as_of: datetime, only_if_told: bool = False) -> int:
    """Tell the managers of both departments that the issue came back (ping-pong)."""
    if only_if_told and not told(policy, plant, issue, policy.ping_pong_tell, "manager", as_of, (left_by,)):
        return 0
    key = _ping_pong_key(at)
    session.add(NotifyStep(issue_id=issue.id, step=key, level=PING_PONG_LEVEL, due_at=at, taken_at=as_of))
    return _owe(session, policy, plant, issue, key, PING_PONG_LEVEL, policy.ping_pong_tell, "manager",
                "issue.ping_pong", at, as_of, also_departments=(left_by,))


def told(policy: Policy, plant: Plant, issue: Issue, tell: Iterable[str], mention: str | None,
         at: datetime, also_departments: Sequence[str] = ()) -> dict[str, tuple[str, ...]]:
    """The channels a step tells, each with the people it @-mentions (ids), at `at`."""
    channels: dict[str, list[str]] = {}

    def add(channel: str | None, department: str | None) -> None:
        if channel is None or channel not in policy.channels or policy.channels[channel].unset:
            return
        people = channels.setdefault(channel, [])
        if mention == "plant_manager":
            people.extend(policy.on_duty(None, "plant_manager", at))
        elif mention is not None and department is not None:
            people.extend(policy.on_duty(department, mention, at))

    rule = plant.rules.get(issue.issue_type)
    for holder in (issue.owner_department_code, *also_departments):
        for target in tell:
            if target == "holder":
                add(policy.department_channels.get(holder), holder)
            elif target == "holder_manager":
                add(policy.manager_channels.get(holder, policy.department_channels.get(holder)), holder)
            elif target == "notify" and rule is not None and holder == issue.owner_department_code:
                for department in filter(None, (rule.notify_department_codes or "").split(";")):
                    add(policy.department_channels.get(department.strip()), department.strip())
            elif target == "plant":
                add(policy.plant_channel, None)
            elif target.startswith("channel:"):
                add(target.split(":", 1)[1], holder)
    return {channel: tuple(dict.fromkeys(people)) for channel, people in channels.items()}


def _owe(session: Session, policy: Policy, plant: Plant, issue: Issue, step_key: str, level: int,
         tell: Sequence[str], mention: str | None, event: str, due_at: datetime, as_of: datetime,
         also_departments: Sequence[str] = ()) -> int:
    expires = links.default_expiry(as_of)
    owed = 0
    for code, people in told(policy, plant, issue, tell, mention, as_of, also_departments).items():
        channel = policy.channels[code]
        key = f"{issue.id}|{step_key}|{code}"
        link = links.link_url(links.make_token(issue.id, step_key, code, expires))
        message = compose(plant, issue, event=event, event_id=key, level=level, lang=channel.language,
                          link=link, due_at=due_at, as_of=as_of,
                          mentions=tuple(Mention(plant.people[p][0], messages.parse_handles(plant.people[p][1]))
                                         for p in people if p in plant.people),
                          left_by=also_departments[0] if also_departments else None)
        leaves = policies.quiet_until(channel, as_of, issue.severity, policy.zone)
        session.add(Delivery(key=key, issue_id=issue.id, step=step_key, level=level, channel_code=code,
                             created_at=as_of, deliver_after=leaves, message=message.to_json(),
                             status="pending", attempts=0, next_attempt_at=leaves))
        owed += 1
    return owed


# ---- the scheduled weekly pack -------------------------------------------------------------
# Quiet hours hold a report's message like any below P1.
WEEKLY_SEVERITY = "P4"


def owe_weekly(engine: Engine, pack: dict, as_of: datetime) -> int:
    """Owe the message that the week's pack is ready (data/reports/schedule.py) to the policy's
    plant channel, once per week and channel (key "weekly|<week>|<channel>"): the week, its
    headline figures against last week's and the link to its review page. Returns the
    deliveries owed (0 without a plant channel, or when owed already)."""
    with engine.connect() as conn:
        policy = policies.in_force(conn)
    owed = 0
    for code in filter(None, (policy.plant_channel,)):
        channel = policy.channels.get(code)
        if channel is None or channel.unset:
            continue
        key = f"weekly|{pack['week']}|{code}"
        leaves = policies.quiet_until(channel, as_of, WEEKLY_SEVERITY, policy.zone)
        message = compose_weekly(pack, event_id=key, lang=channel.language, as_of=as_of)
        try:
            with db.session_scope(engine) as session:
                session.add(Delivery(key=key, issue_id=None, step=pack["week"], level=0, channel_code=code,
                                     created_at=as_of, deliver_after=leaves, message=message.to_json(),
                                     status="pending", attempts=0, next_attempt_at=leaves))
        except IntegrityError:
            continue
        owed += 1
    return owed


def compose_weekly(pack: dict, *, event_id: str, lang: str, as_of: datetime) -> Message:
    """The message about a week's pack, in the channel's language ("zh+en": both)."""
    languages = ("zh", "en") if lang == "zh+en" else (lang,)
    lines = []
    for one in languages:
        for row in schedule.headline(pack):
            value, last = schedule.format_headline(row, one)
            lines.append(words.t("notify_weekly_line", one).format(
                name=words.bilingual_name(row, one), value=value, last=last))
    return Message(event="report.weekly", event_id=event_id, issue_ids=(), level=0,
                   severity=WEEKLY_SEVERITY, lang=lang,
                   title=" / ".join(words.t("notify_weekly", one).format(week=pack["week"]) for one in languages),
                   lines=tuple(lines), link=schedule.review_link(pack["week"]),
                   link_text=" / ".join(words.t("notify_weekly_link", one) for one in languages),
                   at=timezones.to_utc(as_of).isoformat())


# ---- what a message says ---------------------------------------------------------------
def _word(key: str, lang: str) -> str:
    return words.t(f"notify_{key.replace('issue.', '')}", lang)


def _escalation_note(owed: Owed, clock: IssueClock, lang: str, plant: Plant) -> str:
    """What the escalation event says, in the site's language."""
    lang = "zh" if lang != "en" else "en"
    step = owed.step
    if step.when == "ack_limit":
        why = _word("note_ack", lang).format(limit=words.format_minutes(clock.ack_minutes, lang))
    elif step.when == "resolve_share":
        why = _word("note_resolve", lang).format(share=words.format_percent(step.share, lang),
                                                 limit=words.format_minutes(clock.resolve_minutes, lang))
    elif step.when == "after_level":
        why = _word("note_after", lang).format(minutes=words.format_minutes(step.after_minutes, lang))
    else:
        why = _word("note_raised", lang)
    repeat = owed.key.partition("#")[2]
    return f"L{owed.level} · {why}" + (f" · {_word('repeat', lang).format(n=repeat)}" if repeat else "")


def compose(plant: Plant, issue: Issue, *, event: str, event_id: str, level: int, lang: str,
            link: str | None, due_at: datetime, as_of: datetime, mentions: tuple[Mention, ...] = (),
            left_by: str | None = None) -> Message:
    """The message of one step for one channel, in the channel's language ("zh+en": both)."""
    languages = ("zh", "en") if lang == "zh+en" else (lang,)
    rule = plant.rules.get(issue.issue_type)
    acknowledged = issue.acknowledged_at is not None and issue.acknowledged_at <= as_of
    limit_minutes = (rule.resolve_minutes if acknowledged else rule.ack_minutes) if rule else None
    waited = (as_of - issue.raised_at).total_seconds() / 60
    titles, lines = [], []
    for one in languages:
        kind = words.bilingual_name({"name_zh": rule.name_zh, "name_en": rule.name_en}, one) if rule else issue.issue_type
        head = f"[{issue.severity}] L{level} {_word(event, one)}" if event != "issue.ping_pong" \
            else f"[{issue.severity}] {_word(event, one)}"
        titles.append(f"{head} · {issue.id} · {kind}")
        place = plant.locations.get(issue.location_code, (issue.location_code or "—", None))[0]
        owner = words.bilingual_name(dict(zip(("name_zh", "name_en"), plant.departments.get(
            issue.owner_department_code, (issue.owner_department_code,) * 2))), one)
        lines.append(issue.title)
        lines.append(f"{_word('place', one)}: {place} · {_word('owner', one)}: {owner}")
        if limit_minutes is not None:
            limit_word = _word("limit_resolve" if acknowledged else "limit_ack", one)
            left = limit_minutes - waited
            state = (f"{_word('over', one)} {words.format_duration(-left, one)}" if left < 0
                     else f"{_word('left', one)} {words.format_duration(left, one)}")
            lines.append(f"{_word('waited', one)} {words.format_duration(waited, one)} / "
                         f"{limit_word} {words.format_minutes(limit_minutes, one)} ({state})")
        if left_by is not None:
            names = {c: words.bilingual_name(dict(zip(("name_zh", "name_en"), plant.departments.get(c, (c, c)))), one)
                     for c in (left_by, issue.owner_department_code)}
            lines.append(_word("back_from", one).format(left=names[left_by], holder=names[issue.owner_department_code]))
    return Message(event=event, event_id=event_id, issue_ids=(issue.id,), level=level,
                   severity=issue.severity, lang=lang, title=" / ".join(titles), lines=tuple(lines),
                   link=link, link_text=" / ".join(_word("link", one) for one in languages),
                   mentions=mentions, at=due_at.isoformat())
