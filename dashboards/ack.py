"""The phone page an acknowledgement link opens, /ack/<token>: the issue (number, type, place,
owner, status, how long it has waited against its limit, the step the link was sent for) and
Acknowledge / Reassign / Resolve with a note, for whoever holds the link, signed in or not.

The link is the key (data/notify/links.py): a forged or damaged one is refused (403), an
expired one too (410), and one used before says what it was used for instead of acting
again. The form carries a value derived from the link (so that only a POST from the page
acts, never a GET) and the version of the issue it showed: an issue that moved on since is
not changed, the page says what happened. Who acts: the person signed in, recorded as
`user:<name>`; anyone else names themselves (a person of the owning department, picked, or
typed where it has none), recorded as `link:<channel>` (docs/security.md).
"""
from __future__ import annotations

import flask

from dashboards import _forms
from data import floor, timezones
from data.lifecycle import LifecycleError
from data.notify import links
from data.words import t

bp = flask.Blueprint("ack", __name__)

_forms.template("ack", """{% extends "base" %}
{% from "card" import card with context %}
{% from "who" import who_field with context %}
{% block main %}
{% if refused %}
<h1>FloorLink</h1>
{% for line in refused %}<p class="floor-refused" role="alert" lang="{{ line[0] }}">{{ line[1] }}</p>{% endfor %}
{% else %}
<h1>{{ t('ack_title').format(id=issue.id) }}</h1>
{{ card(issue) }}
<p class="floor-sent-for">{{ t('ack_sent_for').format(step=claim.step, channel=claim.channel_code) }}</p>
{% if heading or lines %}<div class="floor-notice {{ notice_class }}" role="status">{% if heading %}<p>{{ t(heading) }}</p>{% endif %}
{% for line in lines %}<p>{{ line }}</p>{% endfor %}
{% if again %}<p>{{ t('ack_send_again') }}</p>{% endif %}</div>{% endif %}
{% if errors %}<div class="floor-notice bad" role="alert">{% for e in errors %}<p>{{ e }}</p>{% endfor %}</div>{% endif %}
{% if form %}
<form method="post" class="floor-form">
<input type="hidden" name="form" value="{{ form.check }}">
<input type="hidden" name="shown" value="{{ issue.version }}">
{{ who_field(form.who) }}
<label>{{ t('floor_note') }}<textarea name="note" rows="2" maxlength="{{ form.note_max }}">{{ form.note }}</textarea></label>
{% if issue.allows('acknowledged') %}
<button class="floor-button primary" name="action" value="acknowledged">{{ t('ack_action_acknowledged') }}</button>
{% endif %}
{% if issue.allows('reassigned') %}
<fieldset class="floor-choice"><label>{{ t('ack_to_department') }}<select name="to">
<option value="">{{ t('floor_who_pick') }}</option>
{% for d in form.departments %}<option value="{{ d.code }}"{% if d.code == form.to %} selected{% endif %}>{{ names(d) }}</option>{% endfor %}
</select></label>
<button class="floor-button" name="action" value="reassigned">{{ t('ack_action_reassigned') }}</button></fieldset>
{% endif %}
{% if issue.allows('resolved') %}
<fieldset class="floor-choice"><label>{{ t('ack_cause') }}<input name="cause" maxlength="{{ form.note_max }}" value="{{ form.cause }}"></label>
<button class="floor-button" name="action" value="resolved">{{ t('ack_action_resolved') }}</button></fieldset>
{% endif %}
</form>
{% endif %}
{% endif %}
{% endblock %}""")


def _database() -> str:
    return flask.current_app.config["FLOORLINK_DATABASE_URL"]


@bp.route("/ack/<token>", methods=["GET", "POST"])
def ack_page(token: str):
    lang = _forms.page_lang()
    now = timezones.utc_now()
    try:
        claim = links.read_token(token, now)
    except links.LinkExpired as expired:
        at = timezones.to_site(expired.claim.expires_at).strftime("%Y-%m-%d %H:%M")
        return _refused(lang, 410, "ack_expired", at=at)
    except links.LinkInvalid:
        return _refused(lang, 403, "ack_invalid")
    url = _database()
    issue = floor.card(url, claim.issue_id)
    if issue is None:
        return _refused(lang, 404, "ack_missing", id=claim.issue_id)
    spent = links.spent(url, claim)
    if spent is not None:
        return _page(lang, claim, issue, heading="ack_used", lines=[_forms.said(spent.use, lang)],
                     status=409 if flask.request.method == "POST" else 200)
    if flask.request.method == "POST":
        return _post(lang, token, claim, issue, now)
    return _offer(lang, token, claim, issue)


def _offer(lang: str, token: str, claim: links.Claim, issue: floor.IssueCard, *, status: int = 200,
           errors: tuple[str, ...] = (), sent=None, heading: str | None = None,
           lines: list[str] | None = None, again: bool = False):
    """The page with its form, or, when nothing may be done any more, what was done last."""
    url = _database()
    last = floor.last_happened(url, issue.id, issue.status)
    if not any(issue.allows(action) for action in floor.ACTIONS):
        return _page(lang, claim, issue, status=status, heading=heading or "ack_nothing_to_do",
                     lines=lines if lines is not None else [_forms.said(last, lang)] if last else [])
    sent = sent or {}
    form = {
        "check": links.form_value(token),
        "who": _forms.who(floor.people(url, issue.owner.code), sent.get("who", "")),
        "note": sent.get("note", ""), "cause": sent.get("cause", ""), "to": sent.get("to", ""),
        "note_max": floor.NOTE_MAX_CHARS,
        "departments": [d for d in floor.departments(url) if d.code != issue.owner.code],
    }
    if lines is None and last is not None:
        lines = [_forms.said(last, lang)]
    return _page(lang, claim, issue, status=status, form=form, errors=errors, heading=heading,
                 lines=lines or [], again=again)


def _post(lang: str, token: str, claim: links.Claim, issue: floor.IssueCard, now):
    sent = flask.request.form
    if not links.form_ok(token, sent.get("form", "")):
        return _offer(lang, token, claim, issue, status=400, errors=(t("ack_form_refused", lang),))
    url = _database()
    action = sent.get("action", "")
    who = _forms.who(floor.people(url, issue.owner.code), sent.get("who", ""))
    person = _forms.read_who(who, sent.get("who", ""))
    note = _forms.read_note(sent.get("note", ""))
    cause = _forms.read_note(sent.get("cause", ""))
    to = next((d for d in floor.departments(url) if d.code == sent.get("to")), None)
    errors = []
    if action not in floor.ACTIONS:
        errors.append(t("ack_choose_action", lang))
    if person is None:
        errors.append(t("floor_need_who", lang))
    if _forms.note_too_long(note) or _forms.note_too_long(cause):
        errors.append(t("floor_note_too_long", lang).format(n=floor.NOTE_MAX_CHARS))
    if action == "reassigned" and (to is None or to.code == issue.owner.code):
        errors.append(t("ack_need_department", lang))
    if action == "resolved" and cause is None:
        errors.append(t("ack_need_cause", lang))
    if errors:
        return _offer(lang, token, claim, issue, status=400, errors=tuple(errors), sent=sent)
    actor, actor_shown = person
    try:
        result = links.act(url, claim, action, shown_version=sent.get("shown", ""),
                           signed_in_as=who.signed_in, actor=actor, actor_shown=actor_shown, at=now,
                           note=note, cause=cause if action == "resolved" else None,
                           to_department=to if action == "reassigned" else None)
    except LifecycleError:
        result = floor.Outcome(False)
    fresh = floor.card(url, claim.issue_id)
    if isinstance(result, links.Spent):
        return _page(lang, claim, fresh or issue, status=409, heading="ack_used",
                     lines=[_forms.said(result.use, lang)])
    if result.missing or fresh is None:
        return _refused(lang, 404, "ack_missing", id=claim.issue_id)
    lines = [_forms.said(h, lang) for h in result.happened]
    if result.done:
        return _page(lang, claim, fresh, heading="ack_done", lines=lines, notice_class="ok")
    if result.stale:
        return _offer(lang, token, claim, fresh, status=409, heading="ack_stale", lines=lines, again=True)
    return _page(lang, claim, fresh, status=409, heading="ack_not_allowed", lines=lines)


def _page(lang: str, claim: links.Claim, issue: floor.IssueCard, *, status: int = 200,
          heading: str | None = None, lines: list[str] | None = None, form=None,
          errors: tuple[str, ...] = (), again: bool = False, notice_class: str = ""):
    return _forms.render("ack", lang, t("ack_title", lang).format(id=issue.id), status=status,
                         page_class="floor-phone", refused=None, claim=claim, issue=issue,
                         heading=heading, lines=lines or [], form=form, errors=errors, again=again,
                         notice_class=notice_class)


def _refused(lang: str, status: int, word: str, **fields):
    """A link that opens nothing, said in both languages: the phone may be anyone's."""
    order = ("zh", "en") if lang == "zh" else ("en", "zh")
    return _forms.render("ack", lang, "FloorLink", status=status, page_class="floor-phone",
                         refused=[(code, t(word, code).format(**fields)) for code in order])
