"""The frame of the floor's plain pages (the andon at a station, the phone page of an
acknowledgement link): server-drawn HTML forms that work without JavaScript, for a phone or a
tablet. Not Dash pages: they are Flask blueprints (app.py registers them), their style and
script are files under assets/forms/, which Dash keeps out of its own pages.

Every value reaches the page through Jinja2 with autoescaping: text from data stays text.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import flask
import jinja2

from data import cache, timezones
from data.auth import web
from data.floor import ACTOR_MAX_CHARS, Happened, IssueCard, Named, NOTE_MAX_CHARS, Someone
from data.words import LANGUAGE_NAMES, format_duration, language, t

BASE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{% if reload_to %}<meta http-equiv="refresh" content="{{ reload_s }};url={{ reload_to }}">{% endif %}
<title>FloorLink · {{ title }}</title>
<link rel="stylesheet" href="/assets/forms/forms.css?v={{ build }}">
<script src="/assets/forms/countdown.js?v={{ build }}" defer></script>
</head>
<body class="floor-page {{ page_class }}" data-words="{{ clock_words }}">
<header class="floor-head"><span class="floor-brand">FloorLink · {{ t('app_title') }}</span>
{% block head_links %}{% endblock %}
<a class="floor-lang" href="{{ other_lang_url }}" lang="{{ other_lang }}">{{ other_lang_name }}</a></header>
<main class="floor-main">{% block main %}{% endblock %}</main>
</body></html>
"""

# An issue as both pages show it: number, type, title, place, owner, status, its clock.
CARD = """{% macro card(c) %}
<section class="floor-card">
<p class="floor-card-head"><span class="sev sev-{{ c.severity }}">{{ c.severity }}</span>
<span class="floor-id">{{ c.id }}</span><span class="floor-status status-{{ c.status }}">{{ t('status_' ~ c.status) }}</span></p>
<p class="floor-title">{{ c.title }}</p>
<dl class="floor-facts">
<dt>{{ t('issue_type') }}</dt><dd>{{ names(c.issue_type) }}</dd>
<dt>{{ t('issue_location') }}</dt><dd>{{ c.location_name or c.location_code or t('no_value') }}{% if c.line %} · {{ c.line }}{% endif %}</dd>
<dt>{{ t('floor_owner') }}</dt><dd>{{ names(c.owner) }}</dd>
{% if c.active %}{% set k = clock(c) %}
<dt>{{ t('floor_clock') }}</dt><dd><span class="floor-waited" data-since="{{ k.since_ms }}">{{ k.waited }}</span>
· <span class="floor-limit">{{ k.limit }}</span> · <span class="floor-countdown{% if k.overdue %} overdue{% endif %}" data-due="{{ k.due_ms }}">{{ k.left }}</span></dd>
{% endif %}
</dl>
</section>
{% endmacro %}"""

# Who is acting: the person signed in, else a pick of the owning department's people, else typed.
WHO = """{% macro who_field(who) %}
{% if who.signed_in %}<p class="floor-who">{{ t('signed_in_as') }} <strong>{{ who.signed_in }}</strong></p>
{% elif who.people %}<label>{{ t('floor_who') }}<select name="who" required>
<option value="">{{ t('floor_who_pick') }}</option>
{% for p in who.people %}<option value="{{ p.id }}"{% if p.id == who.chosen %} selected{% endif %}>{{ p.name }}</option>{% endfor %}
</select></label>
{% else %}<label>{{ t('floor_who') }}<input name="who" maxlength="{{ who.max }}" value="{{ who.chosen }}" required autocomplete="name"></label>
{% endif %}
{% endmacro %}"""

_templates: dict[str, str] = {"base": BASE, "card": CARD, "who": WHO}
_env = jinja2.Environment(loader=jinja2.DictLoader(_templates), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def template(name: str, text: str) -> None:
    """Make a page's template known by `name`: it may extend "base", and import the macros
    of "card" and "who" `with context`."""
    _templates[name] = text


def page_lang() -> str:
    """The page's language: ?lang=, else Chinese (a link opened from a message carries none)."""
    return language(flask.request.args.get("lang"))


def other_lang_url(lang: str) -> str:
    """This page's address in the other language, with its query kept."""
    args = {**flask.request.args.to_dict(), **(flask.request.view_args or {}),
            "lang": "en" if lang == "zh" else "zh"}
    return flask.url_for(flask.request.endpoint, **args)


def render(name: str, lang: str, title: str, *, status: int = 200, page_class: str = "",
           reload_to: str | None = None, reload_s: int = 0, **context) -> flask.Response:
    other = "en" if lang == "zh" else "zh"
    html = _env.get_template(name).render(
        lang=lang, title=title, page_class=page_class, reload_to=reload_to, reload_s=reload_s,
        build=cache.BUILD_ID, clock_words=json.dumps(clock_words(lang), ensure_ascii=False),
        other_lang=other, other_lang_name=LANGUAGE_NAMES[other],
        other_lang_url=other_lang_url(lang), t=lambda key: t(key, lang),
        names=lambda named: _name(named, lang), clock=lambda c: clock(c, lang),
        said=lambda happened: said(happened, lang), **context)
    response = flask.Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _name(named: Named | None, lang: str) -> str:
    if named is None:
        return t("no_value", lang)
    return (named.name_en if lang == "en" else named.name_zh) or named.name_zh or named.name_en or named.code


def clock_words(lang: str) -> dict[str, str]:
    """The words assets/forms/countdown.js writes a clock with, in the wall's duration format."""
    return {key: t(key, lang) for key in ("floor_waited", "floor_left", "floor_over", "duration_dh",
                                          "duration_hm", "duration_ms")}


@dataclass(frozen=True)
class Clock:
    """An issue's clock as the page is drawn: how long it has waited, the limit in force
    (response until acknowledged, then resolution), and what is left of it or by how much it
    has passed; the instants in epoch ms, from which the page's script counts on."""
    waited: str
    limit: str
    left: str
    overdue: bool
    since_ms: int
    due_ms: int


def clock(c: IssueCard, lang: str, now: datetime | None = None) -> Clock:
    now = now or timezones.utc_now()
    which, due = c.limit()
    left = (due - now).total_seconds() / 60
    return Clock(
        waited=t("floor_waited", lang).format(duration=format_duration((now - c.raised_at).total_seconds() / 60, lang)),
        limit=t(f"floor_limit_{which}", lang).format(
            duration=format_duration((due - c.raised_at).total_seconds() / 60, lang)),
        left=t("floor_over" if left < 0 else "floor_left", lang).format(duration=format_duration(abs(left), lang)),
        overdue=left < 0, since_ms=int(c.raised_at.timestamp() * 1000), due_ms=int(due.timestamp() * 1000))


def at_text(at: datetime) -> str:
    """A time the floor reads at a glance: 09:12 today, else 11-20 09:12 (site time)."""
    local, today = timezones.to_site(at), timezones.to_site(timezones.utc_now()).date()
    return local.strftime("%H:%M" if local.date() == today else "%m-%d %H:%M")


def said(happened: Happened, lang: str) -> str:
    """One event as a sentence: 已由 张三 于 09:12 确认 / Acknowledged by 张三 at 09:12."""
    return t(f"done_{happened.kind}", lang).format(
        who=happened.who, at=at_text(happened.at), to=_name(happened.department, lang),
        note=happened.note or "")


@dataclass(frozen=True)
class Who:
    """What the page shows to say who acts (`signed_in`, else a pick of `people`, else a text
    field), with what the form sent back."""
    signed_in: str | None
    people: tuple[Someone, ...]
    chosen: str = ""
    max: int = ACTOR_MAX_CHARS


def signed_in_name() -> str | None:
    """The name of the person signed in (here or by the plant's identity provider), if any."""
    caller = flask.g.get("floorlink_caller")
    return caller.name if caller is not None and caller.kind in ("person", "proxy") else None


def who(people: list[Someone], chosen: str = "") -> Who:
    return Who(signed_in_name(), tuple(people), chosen)


def read_who(field: Who, sent: str) -> tuple[str, str] | None:
    """The actor to record and the name to show for what the form sent; None when it names
    nobody (empty, or a pick that is not one of the people offered)."""
    if field.signed_in:
        return field.signed_in, field.signed_in
    sent = sent.strip()
    if field.people:
        chosen = next((p for p in field.people if p.id == sent), None)
        return (chosen.id, chosen.name) if chosen else None
    if not sent or len(sent) > ACTOR_MAX_CHARS or any(ch < " " or ch == "\x7f" for ch in sent):
        return None
    return sent, sent


def read_note(sent: str) -> str | None:
    """A note as typed (a NUL, which no database keeps, as U+FFFD); None when empty."""
    note = sent.replace("\x00", "\ufffd").strip()
    return note or None


def note_too_long(note: str | None) -> bool:
    return note is not None and len(note) > NOTE_MAX_CHARS


def csrf_token() -> str:
    return web._csrf_token()


def csrf_ok() -> bool:
    return web._csrf_ok()
