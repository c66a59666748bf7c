"""The escalation policy: channels, who is on duty in which shift, the ladders. Written by the
plant as one YAML document (docs/notify.md, data/demo/escalation.yaml), checked whole
against the database's departments, people and issue types, and stored as written (comments
kept) in notify_policies: the newest row is in force, `export` gives it back byte for byte.
"""
from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Mapping, Sequence

import yaml
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from data import timezones
from data.models import Department, NotifyPolicy, Person, SlaRule, SEVERITIES

CHANNEL_KINDS = ("wecom", "feishu", "dingtalk", "webhook", "email")
# Messages a robot takes per minute before the platform throttles it (docs/notify.md):
# WeCom and DingTalk 20 (DingTalk then blocks for 10 minutes), Feishu 100.
PER_MINUTE = {"wecom": 20, "dingtalk": 20, "feishu": 100, "webhook": 600, "email": 60}
LANGUAGES = ("zh", "en", "zh+en")
ROLES = ("on_duty", "lead", "manager", "plant_manager")
WHEN = ("raised", "ack_limit", "resolve_share", "after_level")
# Whom a step tells: the department holding the issue (at its raise: its owner), the
# departments its rule names to be told (notify_department_codes), the holding department's
# manager channel, the plant's channel; or one channel by its code ("channel:<code>").
TELL = ("holder", "notify", "holder_manager", "plant")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# More messages than this due on one channel at once go as one message with a count.
BURST_OVER = 3

_ENV = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*)")
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


class PolicyError(ValueError):
    """A policy that cannot be used; `problems` names each field ("ladder[2].when: ...")."""

    def __init__(self, source: str, problems: Sequence[str]):
        self.source, self.problems = source, list(problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True)
class Channel:
    """One place messages go. `url` and `secret` are resolved: an `env:NAME` in the document
    is read from the environment of the process that loads it (None when unset)."""
    code: str
    kind: str
    url: str | None = None
    secret: str | None = None
    to: tuple[str, ...] = ()
    per_minute: int = 20
    # Site-time window in which messages below P1 wait for its end; None: none.
    quiet_hours: tuple[time, time] | None = None
    language: str = "zh"
    # The `env:NAME` references that were not set when loaded: the channel is left out
    # until they are (a policy may name robots whose keys only the plant's server holds).
    unset: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One rung: when it falls due, whom it tells and whom it @-mentions, how often it repeats.
    A step at `ack_limit` is owed while the issue is unacknowledged; every other while it is
    unresolved."""
    level: int
    when: str
    tell: tuple[str, ...]
    mention: str | None = None
    share: float = 0.5
    after_minutes: float = 0.0
    repeat_minutes: float | None = None
    repeats: int = 0


@dataclass(frozen=True)
class RosterEntry:
    role: str
    people: tuple[str, ...]
    department: str | None = None
    starts: time | None = None
    ends: time | None = None
    days: tuple[int, ...] = ()

    def covers(self, local: datetime) -> bool:
        """Whether the shift holds at the site-time instant `local`; a shift that ends past
        midnight belongs to the day it started on."""
        if self.starts is None:
            return not self.days or local.weekday() in self.days
        clock = local.time()
        if self.starts < self.ends:
            inside, day = self.starts <= clock < self.ends, local.weekday()
        else:
            inside = clock >= self.starts or clock < self.ends
            day = local.weekday() if clock >= self.starts else (local.weekday() - 1) % 7
        return inside and (not self.days or day in self.days)


@dataclass(frozen=True)
class Ladder:
    steps: tuple[Step, ...]
    issue_types: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()

    def matches(self, issue_type: str, severity: str) -> bool:
        return ((not self.issue_types or issue_type in self.issue_types)
                and (not self.severities or severity in self.severities))


@dataclass(frozen=True)
class Policy:
    channels: dict[str, Channel]
    department_channels: dict[str, str]
    manager_channels: dict[str, str]
    plant_channel: str | None
    roster: tuple[RosterEntry, ...]
    ladders: tuple[Ladder, ...]
    default_ladder: tuple[Step, ...]
    ping_pong_tell: tuple[str, ...] = ("holder_manager",)
    language: str = "zh"
    burst_over: int = BURST_OVER
    # Which stored policy this is (notify_policies.id); 0: not stored.
    id: int = 0
    # When it was imported: steps due before it are taken without a word.
    since: datetime | None = None
    zone: tzinfo = field(default=None, compare=False)

    def ladder_for(self, issue_type: str, severity: str) -> tuple[Step, ...]:
        """The first ladder that names the issue's type and severity, else the default one."""
        return next((ladder.steps for ladder in self.ladders if ladder.matches(issue_type, severity)),
                    self.default_ladder)

    def on_duty(self, department: str | None, role: str, at: datetime) -> tuple[str, ...]:
        """The people (ids) holding `role` for `department` at the instant `at`: the shift's
        roster entries that cover its site time."""
        local = at.astimezone(self.zone)
        return tuple(dict.fromkeys(person for entry in self.roster
                                   if entry.role == role and entry.department == department
                                   and entry.covers(local) for person in entry.people))


EMPTY = Policy(channels={}, department_channels={}, manager_channels={}, plant_channel=None,
               roster=(), ladders=(), default_ladder=(), zone=None)


def parse(text: str, source: str, *, known: Mapping[str, set] | None = None,
          zone: tzinfo | None = None, environ: Mapping[str, str] | None = None) -> Policy:
    """The policy a YAML document states, or a PolicyError listing every problem found.
    `known` holds the codes that exist ("departments", "people", "issue_types"); None: not
    checked against a database."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(source, [f"not YAML: {exc}"]) from None
    reader = _Reader(known, os.environ if environ is None else environ)
    policy = reader.policy(document if document is not None else {})
    if reader.problems:
        raise PolicyError(source, reader.problems)
    return Policy(**{**policy.__dict__, "zone": zone or timezones.site_zone()})


class _Reader:
    """Walks the document once, collecting every problem with the path of its field."""

    def __init__(self, known: Mapping[str, set] | None, environ: Mapping[str, str]):
        self.known, self.environ, self.problems = known, environ, []

    def problem(self, path: str, reason: str) -> None:
        self.problems.append(f"{path}: {reason}")

    def mapping(self, value, path: str, allowed: Sequence[str]) -> dict:
        if not isinstance(value, dict):
            self.problem(path, "must be a mapping of keys to values")
            return {}
        for key in value:
            if key not in allowed:
                self.problem(f"{path}.{key}" if path else str(key),
                             f"unknown key (known: {', '.join(allowed)})")
        return value

    def listing(self, value, path: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(path, "must be a list")
            return []
        return value

    def code(self, value, path: str, kind: str | None) -> str | None:
        if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
            self.problem(path, f"must be a code, not {value!r}")
            return None
        value = str(value).strip()
        if kind and self.known is not None and value not in self.known[kind]:
            self.problem(path, f"{value!r} is not in {kind}")
        return value

    def codes(self, value, path: str, kind: str | None) -> tuple[str, ...]:
        values = value if isinstance(value, list) else [value]
        return tuple(c for n, v in enumerate(values)
                     if (c := self.code(v, f"{path}[{n}]" if isinstance(value, list) else path, kind)))

    def number(self, value, path: str, *, low: float, high: float | None = None,
               whole: bool = False) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and value != int(value)):
            self.problem(path, f"must be a {'whole ' if whole else ''}number, not {value!r}")
            return None
        if value < low or (high is not None and value > high):
            self.problem(path, f"must be from {low} to {high}" if high is not None else f"must be at least {low}")
            return None
        return value

    def clock(self, value, path: str) -> time | None:
        match = _CLOCK.fullmatch(str(value)) if isinstance(value, str) else None
        if not match:
            self.problem(path, f"must be a time of day as HH:MM (quoted), not {value!r}")
            return None
        return time(int(match[1]), int(match[2]))

    def choice(self, value, path: str, choices: Sequence[str]) -> str | None:
        if value not in choices:
            self.problem(path, f"{value!r} is not one of {', '.join(choices)}")
            return None
        return value

    def secret(self, value, path: str, unset: list) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem(path, "must be text")
            return None
        match = _ENV.fullmatch(value.strip())
        if not match:
            return value.strip()
        if match[1] not in self.environ:
            unset.append(match[1])
            return None
        return self.environ[match[1]]

    # ---- the document ----------------------------------------------------------------
    def policy(self, document) -> Policy:
        doc = self.mapping(document, "", ("language", "channels", "departments", "plant_channel",
                                          "roster", "ladder", "ladders", "ping_pong", "burst_over"))
        language = self.choice(doc.get("language", "zh"), "language", LANGUAGES) or "zh"
        channels = {}
        for n, entry in enumerate(self.listing(doc.get("channels"), "channels")):
            channel = self.channel(entry, f"channels[{n}]", language)
            if channel is None:
                continue
            if channel.code in channels:
                self.problem(f"channels[{n}].code", f"{channel.code!r} is named twice")
            channels[channel.code] = channel
        department_channels, manager_channels = {}, {}
        departments = self.mapping(doc.get("departments") or {}, "departments", list(doc.get("departments") or {}))
        for code, entry in departments.items():
            path = f"departments.{code}"
            self.code(code, path, "departments")
            entry = self.mapping(entry, path, ("channel", "manager_channel"))
            if "channel" in entry:
                department_channels[str(code)] = self.channel_code(entry["channel"], f"{path}.channel", channels)
            if "manager_channel" in entry:
                manager_channels[str(code)] = self.channel_code(entry["manager_channel"],
                                                                f"{path}.manager_channel", channels)
        plant = doc.get("plant_channel")
        plant_channel = self.channel_code(plant, "plant_channel", channels) if plant is not None else None
        roster = tuple(e for n, entry in enumerate(self.listing(doc.get("roster"), "roster"))
                       if (e := self.roster_entry(entry, f"roster[{n}]")))
        default_ladder = self.ladder(doc.get("ladder"), "ladder", channels)
        if "ladder" not in doc:
            self.problem("ladder", "is missing: the default ladder every issue climbs")
        ladders = []
        for n, entry in enumerate(self.listing(doc.get("ladders"), "ladders")):
            path = f"ladders[{n}]"
            entry = self.mapping(entry, path, ("issue_type", "severity", "ladder"))
            ladders.append(Ladder(
                steps=self.ladder(entry.get("ladder"), f"{path}.ladder", channels),
                issue_types=self.codes(entry["issue_type"], f"{path}.issue_type", "issue_types")
                if "issue_type" in entry else (),
                severities=tuple(s for k, s in enumerate(entry.get("severity") if isinstance(
                    entry.get("severity"), list) else [entry["severity"]] if "severity" in entry else [])
                    if self.choice(s, f"{path}.severity[{k}]", SEVERITIES))))
        ping_pong = self.mapping(doc.get("ping_pong") or {"tell": ["holder_manager"]}, "ping_pong", ("tell",))
        ping_pong_tell = self.tell(ping_pong.get("tell"), "ping_pong.tell", channels)
        burst_over = doc.get("burst_over", BURST_OVER)
        burst_over = int(self.number(burst_over, "burst_over", low=1, high=100, whole=True) or BURST_OVER)
        self.check_channels_reached(channels, department_channels, manager_channels, plant_channel)
        return Policy(channels=channels, department_channels=department_channels,
                      manager_channels=manager_channels, plant_channel=plant_channel, roster=roster,
                      ladders=tuple(ladders), default_ladder=default_ladder,
                      ping_pong_tell=ping_pong_tell, language=language, burst_over=burst_over)

    def channel(self, entry, path: str, language: str) -> Channel | None:
        entry = self.mapping(entry, path, ("code", "kind", "url", "secret", "to", "per_minute",
                                           "quiet_hours", "language"))
        code = self.code(entry.get("code"), f"{path}.code", None)
        kind = self.choice(entry.get("kind"), f"{path}.kind", CHANNEL_KINDS)
        if code is None or kind is None:
            return None
        unset: list[str] = []
        url = self.secret(entry.get("url"), f"{path}.url", unset)
        secret = self.secret(entry.get("secret"), f"{path}.secret", unset)
        to = tuple(str(a).strip() for a in self.listing(entry.get("to"), f"{path}.to"))
        if kind == "email":
            if not self.environ.get("SMTP_HOST"):
                unset.append("SMTP_HOST")
            if not to:
                self.problem(f"{path}.to", "an email channel needs its recipients")
            for n, address in enumerate(to):
                if not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
                    self.problem(f"{path}.to[{n}]", f"{address!r} is not an e-mail address")
        elif "url" not in entry:
            self.problem(f"{path}.url", f"a {kind} channel needs its robot's URL (or env:NAME)")
        elif url is not None and not re.match(r"https?://", url):
            self.problem(f"{path}.url", "must start with https:// or http://")
        per_minute = entry.get("per_minute", PER_MINUTE[kind])
        per_minute = self.number(per_minute, f"{path}.per_minute", low=1, high=PER_MINUTE[kind] * 10, whole=True)
        quiet = None
        if entry.get("quiet_hours") is not None:
            text = entry["quiet_hours"]
            parts = text.split("-") if isinstance(text, str) else []
            if len(parts) != 2:
                self.problem(f"{path}.quiet_hours", f"must be HH:MM-HH:MM, not {text!r}")
            else:
                starts = self.clock(parts[0].strip(), f"{path}.quiet_hours")
                ends = self.clock(parts[1].strip(), f"{path}.quiet_hours")
                if starts is not None and ends is not None:
                    if starts == ends:
                        self.problem(f"{path}.quiet_hours", "starts and ends at the same time")
                    quiet = (starts, ends)
        return Channel(code=code, kind=kind, url=url, secret=secret, to=to,
                       per_minute=int(per_minute or PER_MINUTE[kind]), quiet_hours=quiet,
                       language=self.choice(entry.get("language", language), f"{path}.language",
                                            LANGUAGES) or language,
                       unset=tuple(unset))

    def channel_code(self, value, path: str, channels: Mapping[str, Channel]) -> str | None:
        code = self.code(value, path, None)
        if code is not None and code not in channels:
            self.problem(path, f"{code!r} is not a channel of this policy")
        return code

    def roster_entry(self, entry, path: str) -> RosterEntry | None:
        entry = self.mapping(entry, path, ("department", "role", "people", "from", "to", "days"))
        role = self.choice(entry.get("role"), f"{path}.role", ROLES)
        department = self.code(entry["department"], f"{path}.department", "departments") \
            if "department" in entry else None
        if role and role != "plant_manager" and department is None:
            self.problem(f"{path}.department", f"a {role} belongs to a department")
        people = self.codes(entry.get("people") or [], f"{path}.people", "people")
        if not people:
            self.problem(f"{path}.people", "names nobody")
        starts = ends = None
        if "from" in entry or "to" in entry:
            starts = self.clock(entry.get("from"), f"{path}.from")
            ends = self.clock(entry.get("to"), f"{path}.to")
            if starts is not None and starts == ends:
                self.problem(f"{path}.to", "a shift ends when it starts: leave out from and to for all day")
        days = []
        for n, day in enumerate(self.listing(entry.get("days"), f"{path}.days")):
            if self.choice(day, f"{path}.days[{n}]", WEEKDAYS):
                days.append(WEEKDAYS.index(day))
        if role is None:
            return None
        return RosterEntry(role=role, people=people, department=department, starts=starts,
                           ends=ends, days=tuple(days))

    def tell(self, value, path: str, channels: Mapping[str, Channel]) -> tuple[str, ...]:
        told = []
        for n, target in enumerate(self.listing(value, path)):
            where = f"{path}[{n}]"
            if isinstance(target, str) and target.startswith("channel:"):
                self.channel_code(target.split(":", 1)[1], where, channels)
                told.append(target)
            elif self.choice(target, where, TELL + ("channel:<code>",)):
                told.append(target)
        if not told:
            self.problem(path, "tells nobody")
        return tuple(told)

    def ladder(self, value, path: str, channels: Mapping[str, Channel]) -> tuple[Step, ...]:
        steps, last_level = [], None
        for n, entry in enumerate(self.listing(value, path)):
            where = f"{path}[{n}]"
            entry = self.mapping(entry, where, ("level", "when", "tell", "mention", "share",
                                                "after_minutes", "repeat_minutes", "repeats"))
            level = self.number(entry.get("level"), f"{where}.level", low=0, high=9, whole=True)
            when = self.choice(entry.get("when"), f"{where}.when", WHEN)
            if when == "after_level" and n == 0:
                self.problem(f"{where}.when", "after_level needs a step before it")
            mention = entry.get("mention")
            if mention is not None:
                mention = self.choice(mention, f"{where}.mention", ROLES)
            share = self.number(entry.get("share", 0.5), f"{where}.share", low=0.01, high=10)
            after = self.number(entry.get("after_minutes", 0), f"{where}.after_minutes", low=0)
            repeat = entry.get("repeat_minutes")
            repeat = self.number(repeat, f"{where}.repeat_minutes", low=1) if repeat is not None else None
            repeats = self.number(entry.get("repeats", 0), f"{where}.repeats", low=0, high=100, whole=True)
            if repeats and repeat is None:
                self.problem(f"{where}.repeat_minutes", "repeats need repeat_minutes")
            if level is not None and last_level is not None and level <= last_level:
                self.problem(f"{where}.level", "levels climb: each is above the one before")
            last_level = level if level is not None else last_level
            tell = self.tell(entry.get("tell"), f"{where}.tell", channels)
            if level is None or when is None:
                continue
            steps.append(Step(level=int(level), when=when, tell=tell, mention=mention,
                              share=share or 0.5, after_minutes=after or 0.0,
                              repeat_minutes=repeat, repeats=int(repeats or 0)))
        return tuple(steps)

    def check_channels_reached(self, channels, department_channels, manager_channels, plant) -> None:
        used = {*department_channels.values(), *manager_channels.values(), plant}
        for code in channels:
            if code not in used:
                self.problem(f"channels.{code}", "is not the channel of any department nor the plant's")


def known_codes(conn: Connection) -> dict[str, set]:
    """The codes a policy may name, as the database holds them."""
    return {"departments": set(conn.scalars(select(Department.code))),
            "people": set(conn.scalars(select(Person.id))),
            "issue_types": set(conn.scalars(select(SlaRule.issue_type)))}


def check(engine: Engine, text: str, source: str) -> Policy:
    """The policy, checked against the database; PolicyError otherwise."""
    with engine.connect() as conn:
        return parse(text, source, known=known_codes(conn))


def store(engine: Engine, text: str, source: str, imported_by: str, now: datetime) -> Policy:
    """Check the document whole and, only if it holds, make it the policy in force."""
    policy = check(engine, text, source)
    with engine.begin() as conn:
        row = conn.execute(NotifyPolicy.__table__.insert().values(
            imported_at=now, imported_by=imported_by, source=source[:200], document=text))
    return Policy(**{**policy.__dict__, "id": row.inserted_primary_key[0], "since": now})


def stored(conn: Connection):
    """The policy row in force (the newest), or None when none was imported."""
    return conn.execute(select(NotifyPolicy.__table__).order_by(NotifyPolicy.id.desc()).limit(1)).first()


def in_force(conn: Connection) -> Policy:
    """The policy in force, parsed once per stored row; EMPTY when none was imported."""
    row = stored(conn)
    if row is None:
        return EMPTY
    return _parsed(row.id, row.document, row.source, row.imported_at)


@functools.lru_cache(maxsize=4)
def _parsed(policy_id: int, text: str, source: str, imported_at: datetime) -> Policy:
    policy = parse(text, source)
    return Policy(**{**policy.__dict__, "id": policy_id, "since": imported_at})


def described(policy: Policy) -> str:
    """One line per channel and ladder, for `python app.py notify policy check`; secrets are
    never shown, only whether they are set."""
    lines = [f"language {policy.language}; {len(policy.channels)} channel(s), "
             f"{len(policy.roster)} roster entr(ies), {1 + len(policy.ladders)} ladder(s)"]
    for channel in policy.channels.values():
        state = "unset: " + ", ".join(channel.unset) if channel.unset else "set"
        quiet = (f", quiet {channel.quiet_hours[0]:%H:%M}-{channel.quiet_hours[1]:%H:%M}"
                 if channel.quiet_hours else "")
        lines.append(f"  channel {channel.code}: {channel.kind}, {channel.per_minute}/min, "
                     f"address {state}{quiet}")
    for name, steps in (("default", policy.default_ladder),
                        *((f"{'/'.join(l.issue_types) or '*'} {'/'.join(l.severities) or '*'}", l.steps)
                          for l in policy.ladders)):
        lines.append(f"  ladder {name}: " + " -> ".join(f"L{s.level} {s.when}" for s in steps))
    return "\n".join(lines)


def shown_json(policy: Policy) -> str:
    """The policy's shape without its secrets, for logs and the audit trail."""
    return json.dumps({"channels": {c.code: c.kind for c in policy.channels.values()},
                       "ladders": 1 + len(policy.ladders), "roster": len(policy.roster)})


def quiet_until(channel: Channel, at: datetime, severity: str, zone: tzinfo) -> datetime:
    """When a message written at `at` may leave: the end of the channel's quiet hours if `at`
    falls in them and the issue is not P1 (a line stop calls at night too), else `at`."""
    if channel.quiet_hours is None or severity == "P1":
        return at
    starts, ends = channel.quiet_hours
    local = at.astimezone(zone)
    clock = local.time()
    inside = starts <= clock < ends if starts < ends else (clock >= starts or clock < ends)
    if not inside:
        return at
    end = datetime.combine(local.date(), ends, tzinfo=zone)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), ends, tzinfo=zone)
    return timezones.to_utc(end)
