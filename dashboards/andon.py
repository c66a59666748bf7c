"""The andon for the floor: a tablet or phone at a station raises an issue in two taps (what is
wrong, then Raise, with an optional severity, note and photo), sees the station's open issues
counting down, and acknowledges one that nobody has taken yet.

    /andon                      the stations (every location on a line), by line
    /andon/<location>           a station's page; it reloads itself every REFRESH_S
    /andon/<location>/ack       acknowledge one of its issues (POST)
    /andon/qr                   one QR code per station, printed on A4 and stuck at the station
    /andon/photo/<id>           a photo taken when an issue was raised

Plain server-drawn forms (dashboards/_forms.py) behind the `operator` door; the photos open
for viewers. Who raised or acknowledged: the person signed in, recorded as `user:<name>`;
with sign-in off, the station itself, `andon:<location>` (docs/security.md).
"""
from __future__ import annotations

from urllib.parse import quote

import flask
import segno
from markupsafe import Markup
from werkzeug.exceptions import RequestEntityTooLarge

from dashboards import _forms
from data import floor, settings, store, timezones
from data.lifecycle import LifecycleError
from data.words import t

bp = flask.Blueprint("andon", __name__)

DEFAULT_SEVERITY = "P2"
# Room in a raise's request for its fields and the multipart framing beside the photo.
_FORM_ROOM_BYTES = 64 * 1024

_forms.template("andon_list", """{% extends "base" %}
{% block head_links %}<a class="floor-link" href="{{ qr_url }}">{{ t('andon_qr_link') }}</a>{% endblock %}
{% block main %}
<h1>{{ t('andon_title') }}</h1>
{% if unknown %}<p class="floor-notice bad" role="alert">{{ unknown }}</p>{% endif %}
<p class="floor-lead">{{ t('andon_stations') }}</p>
{% for line, stations in lines %}
<section class="floor-line"><h2>{{ t('andon_line').format(line=line) }}</h2>
<div class="floor-grid">{% for s in stations %}<a class="floor-tile" href="{{ s.url }}"><span>{{ s.name }}</span><small>{{ s.code }}</small></a>{% endfor %}</div>
</section>
{% else %}<p class="floor-notice">{{ t('andon_no_stations') }}</p>
{% endfor %}
{% endblock %}""")

_forms.template("andon_station", """{% extends "base" %}
{% from "card" import card with context %}
{% from "who" import who_field with context %}
{% block head_links %}<a class="floor-link" href="{{ all_url }}">{{ t('andon_all_stations') }}</a>{% endblock %}
{% block main %}
<h1 class="floor-station">{{ station.name }} <small>{{ t('andon_line').format(line=station.line) }} · {{ station.code }}</small></h1>
{% if notice %}<p class="floor-notice ok" role="status">{{ notice }}</p>{% endif %}
{% if errors %}<div class="floor-notice bad" role="alert">{% for e in errors %}<p>{{ e }}</p>{% endfor %}</div>{% endif %}
{% if view == "confirm" %}
<form method="post" enctype="multipart/form-data" class="floor-form floor-raise" action="{{ raise_url }}">
<h2>{{ t('andon_confirm').format(type=names(chosen)) }}</h2>
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="issue_type" value="{{ chosen.code }}">
<fieldset class="floor-severity"><legend>{{ t('andon_severity') }}</legend>
{% for s in severities %}<label class="sev-choice"><input type="radio" name="severity" value="{{ s }}"{% if s == severity %} checked{% endif %}><span class="sev sev-{{ s }}">{{ t('andon_severity_' ~ s) }}</span></label>{% endfor %}
</fieldset>
<label>{{ t('andon_note') }}<textarea name="note" rows="2" maxlength="{{ note_max }}">{{ note }}</textarea></label>
<label>{{ t('andon_photo') }}<input type="file" name="photo" accept="image/jpeg,image/png" capture="environment"></label>
<button class="floor-button primary big" type="submit">{{ t('andon_raise') }}</button>
<a class="floor-cancel" href="{{ station_url }}">{{ t('andon_cancel') }}</a>
</form>
{% elif view == "take" %}
<h2>{{ t('andon_take_title').format(id=taken.id) }}</h2>
{{ card(taken) }}
{% if lines %}<div class="floor-notice" role="status">{% for line in lines %}<p>{{ line }}</p>{% endfor %}</div>{% endif %}
{% if who %}
<form method="post" class="floor-form" action="{{ ack_url }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="issue_id" value="{{ taken.id }}">
<input type="hidden" name="shown" value="{{ taken.version }}">
{{ who_field(who) }}
<label>{{ t('floor_note') }}<textarea name="note" rows="2" maxlength="{{ note_max }}">{{ note }}</textarea></label>
<button class="floor-button primary big" type="submit">{{ t('ack_action_acknowledged') }}</button>
</form>
{% endif %}
<a class="floor-cancel" href="{{ station_url }}">{{ t('andon_cancel') }}</a>
{% else %}
<div class="floor-columns">
<section class="floor-types"><h2>{{ t('andon_choose_type') }}</h2>
<div class="floor-grid">{% for it in types %}<a class="floor-tile type" href="{{ it.url }}">{{ names(it.named) }}</a>{% endfor %}</div>
</section>
<section class="floor-open"><h2>{{ t('andon_open') }}</h2>
{% for c in open %}{% set k = clock(c) %}
<div class="floor-row{% if k.overdue %} overdue{% endif %}">
<p class="floor-row-head"><span class="sev sev-{{ c.severity }}">{{ c.severity }}</span> <span class="floor-id">{{ c.id }}</span>
<span class="floor-status status-{{ c.status }}">{{ t('status_' ~ c.status) }}</span></p>
<p class="floor-title">{{ names(c.issue_type) }} · {{ c.title }}</p>
<p class="floor-times"><span class="floor-countdown{% if k.overdue %} overdue{% endif %}" data-due="{{ k.due_ms }}">{{ k.left }}</span>
· <span class="floor-waited" data-since="{{ k.since_ms }}">{{ k.waited }}</span> · {{ names(c.owner) }}</p>
{% for p in c.photo_ids %}<a class="floor-photo" href="{{ photo_url(p) }}">{{ t('floor_photo').format(n=loop.index) }}</a> {% endfor %}
{% if c.allows('acknowledged') %}<a class="floor-button take" href="{{ take_url(c.id) }}">{{ t('andon_take') }}</a>{% endif %}
</div>
{% else %}<p class="floor-quiet">{{ t('andon_none_open') }}</p>
{% endfor %}
</section>
</div>
{% endif %}
{% endblock %}""")

_forms.template("andon_qr", """{% extends "base" %}
{% block main %}
<h1>{{ t('andon_qr_title') }}</h1>
<div class="qr-sheet">
{% for s in stations %}
<figure class="qr-card">{{ s.svg }}
<figcaption><strong>{{ s.name }}</strong><span>{{ t('andon_line').format(line=s.line) }} · {{ s.code }}</span>
<span class="qr-url">{{ s.url }}</span><small>{{ t('andon_qr_hint') }}</small></figcaption></figure>
{% endfor %}
</div>
{% endblock %}""")


def _database() -> str:
    return flask.current_app.config["FLOORLINK_DATABASE_URL"]


def _writer(station: floor.Station) -> str:
    """Who records the station's writes: the person signed in, else the station."""
    name = _forms.signed_in_name()
    if name:
        return store.user_writer(name)
    writer = f"andon:{station.code}"
    return writer if len(writer) <= store.RECORDED_BY_CHARS else writer[:store.RECORDED_BY_CHARS - 1] + "…"


@bp.get("/andon")
def stations():
    return _stations(_forms.page_lang())


def _stations(lang: str, *, unknown: str = "", status: int = 200):
    lines: dict[str, list[dict]] = {}
    for s in floor.stations(_database()):
        lines.setdefault(s.line, []).append(
            {"name": s.name, "code": s.code,
             "url": flask.url_for("andon.station", location_code=s.code, lang=lang)})
    return _forms.render("andon_list", lang, t("andon_title", lang), status=status, page_class="floor-andon",
                         lines=list(lines.items()), unknown=unknown,
                         qr_url=flask.url_for("andon.qr_codes", lang=lang))


@bp.route("/andon/<location_code>", methods=["GET", "POST"])
def station(location_code: str):
    lang = _forms.page_lang()
    url = _database()
    place = floor.station(url, location_code)
    if place is None:
        return _unknown(lang, location_code)
    if flask.request.method == "POST":
        return _raise(lang, place)
    args = flask.request.args
    if "type" in args:
        chosen = next((it for it in floor.issue_types(url) if it.code == args["type"]), None)
        if chosen is not None:
            return _confirm(lang, place, chosen)
        return _station(lang, place, errors=(t("andon_unknown_type", lang),), status=404)
    if "take" in args:
        return _take(lang, place, args["take"])
    notice = ""
    if args.get("raised"):
        notice = t("andon_raised", lang).format(id=args["raised"])
    elif args.get("acknowledged"):
        notice = t("andon_acknowledged", lang).format(id=args["acknowledged"])
    return _station(lang, place, notice=notice)


def _station(lang: str, place: floor.Station, *, notice: str = "", errors: tuple[str, ...] = (),
             status: int = 200):
    """The station's page: what may be raised, and what is open here. It reloads itself
    (without its notice) every REFRESH_S: an acknowledgement elsewhere shows within one."""
    url = _database()
    here = flask.url_for("andon.station", location_code=place.code, lang=lang)
    types = [{"named": it, "url": flask.url_for("andon.station", location_code=place.code, type=it.code, lang=lang)}
             for it in floor.issue_types(url)]
    return _forms.render(
        "andon_station", lang, place.name, status=status, page_class="floor-andon", reload_to=here,
        reload_s=settings.get_int("REFRESH_S"), view="station", station=place, notice=notice,
        errors=errors, types=types, open=floor.open_at(url, place.code), **_links(lang, place))


def _links(lang: str, place: floor.Station) -> dict:
    return {
        "all_url": flask.url_for("andon.stations", lang=lang),
        "station_url": flask.url_for("andon.station", location_code=place.code, lang=lang),
        "take_url": lambda issue_id: flask.url_for("andon.station", location_code=place.code,
                                                   take=issue_id, lang=lang),
        "photo_url": lambda photo_id: flask.url_for("andon.photo", photo_id=photo_id),
    }


def _confirm(lang: str, place: floor.Station, chosen: floor.Named, *, severity: str = DEFAULT_SEVERITY,
             note: str = "", errors: tuple[str, ...] = (), status: int = 200):
    """The second tap: Raise, with an optional severity, note and photo."""
    return _forms.render(
        "andon_station", lang, place.name, status=status, page_class="floor-andon", view="confirm",
        station=place, notice="", errors=errors, chosen=chosen, severities=floor.SEVERITIES,
        severity=severity, note=note, note_max=floor.NOTE_MAX_CHARS, csrf=_forms.csrf_token(),
        raise_url=flask.url_for("andon.station", location_code=place.code, lang=lang),
        **_links(lang, place))


def _raise(lang: str, place: floor.Station):
    url = _database()
    types = floor.issue_types(url)
    # A photo may be larger than the web server's usual body limit (REQUEST_MAX_BYTES).
    flask.request.max_content_length = floor.PHOTO_MAX_BYTES + _FORM_ROOM_BYTES
    try:
        sent, files = flask.request.form, flask.request.files
    except RequestEntityTooLarge:
        return _station(lang, place, errors=(t("andon_too_large", lang),), status=413)
    chosen = next((it for it in types if it.code == sent.get("issue_type")), None)
    if chosen is None:
        return _station(lang, place, errors=(t("andon_unknown_type", lang),), status=400)
    severity = sent.get("severity", DEFAULT_SEVERITY)
    note = _forms.read_note(sent.get("note", ""))

    def again(word: str, status: int = 400, **fields):
        return _confirm(lang, place, chosen, severity=severity if severity in floor.SEVERITIES else DEFAULT_SEVERITY,
                        note=note or "", errors=(t(word, lang).format(**fields),), status=status)

    if not _forms.csrf_ok():
        return again("signin_form_expired")
    if severity not in floor.SEVERITIES:
        return again("andon_severity")
    if _forms.note_too_long(note):
        return again("floor_note_too_long", n=floor.NOTE_MAX_CHARS)
    upload = files.get("photo")
    photo = upload.read(floor.PHOTO_MAX_BYTES + 1) if upload is not None else b""
    if photo and (len(photo) > floor.PHOTO_MAX_BYTES or floor.photo_type(photo) is None):
        return again("andon_photo_refused")
    name = chosen.name_en if lang == "en" else chosen.name_zh
    title = note.splitlines()[0] if note else t("andon_default_title", lang).format(type=name, station=place.name)
    issue_id = floor.raise_at_station(url, station=place, issue_type=chosen.code, severity=severity,
                                      title=title, note=note, photo_bytes=photo or None,
                                      raised_by=_forms.signed_in_name(), writer=_writer(place),
                                      at=timezones.utc_now())
    return flask.redirect(flask.url_for("andon.station", location_code=place.code, raised=issue_id, lang=lang),
                          code=303)


def _take(lang: str, place: floor.Station, issue_id: str, *, sent=None, errors: tuple[str, ...] = (),
          lines: list[str] | None = None, status: int = 200):
    """Acknowledge one of the station's issues: who takes it, and a note."""
    url = _database()
    taken = floor.card(url, issue_id)
    if taken is None or taken.location_code != place.code or not taken.active:
        return _station(lang, place, errors=(t("andon_not_here", lang).format(id=issue_id),), status=404)
    sent = sent or {}
    who = None
    if taken.allows("acknowledged"):
        who = _forms.who(floor.people(url, taken.owner.code), sent.get("who", ""))
    elif lines is None:
        last = floor.last_happened(url, taken.id, taken.status)
        lines = [_forms.said(last, lang)] if last else []
    return _forms.render(
        "andon_station", lang, place.name, status=status, page_class="floor-andon", view="take",
        station=place, notice="", errors=errors, taken=taken, who=who, lines=lines or [],
        note=sent.get("note", ""), note_max=floor.NOTE_MAX_CHARS, csrf=_forms.csrf_token(),
        ack_url=flask.url_for("andon.acknowledge", location_code=place.code, lang=lang), **_links(lang, place))


@bp.post("/andon/<location_code>/ack")
def acknowledge(location_code: str):
    lang = _forms.page_lang()
    url = _database()
    place = floor.station(url, location_code)
    if place is None:
        return _unknown(lang, location_code)
    sent = flask.request.form
    issue_id = sent.get("issue_id", "")
    taken = floor.card(url, issue_id)
    if taken is None or taken.location_code != place.code:
        return _station(lang, place, errors=(t("andon_not_here", lang).format(id=issue_id),), status=404)
    if not _forms.csrf_ok():
        return _take(lang, place, issue_id, sent=sent, errors=(t("signin_form_expired", lang),), status=400)
    who = _forms.who(floor.people(url, taken.owner.code), sent.get("who", ""))
    person = _forms.read_who(who, sent.get("who", ""))
    note = _forms.read_note(sent.get("note", ""))
    if person is None or _forms.note_too_long(note):
        word = t("floor_need_who", lang) if person is None else \
            t("floor_note_too_long", lang).format(n=floor.NOTE_MAX_CHARS)
        return _take(lang, place, issue_id, sent=sent, errors=(word,), status=400)
    actor, actor_shown = person
    try:
        outcome = floor.act(url, issue_id, "acknowledged", shown_version=sent.get("shown", ""),
                            writer=_writer(place), actor=actor, actor_shown=actor_shown,
                            at=timezones.utc_now(), note=note)
    except LifecycleError:
        outcome = floor.Outcome(False)
    if outcome.done:
        return flask.redirect(flask.url_for("andon.station", location_code=place.code,
                                            acknowledged=issue_id, lang=lang), code=303)
    word = "ack_stale" if outcome.stale else "ack_not_allowed"
    return _take(lang, place, issue_id, errors=(t(word, lang),), status=409,
                 lines=[_forms.said(h, lang) for h in outcome.happened])


@bp.get("/andon/qr")
def qr_codes():
    """One QR code per station, three across an A4 sheet, each with its station's name and
    line under it; the code opens the station's page at PUBLIC_URL."""
    lang = _forms.page_lang()
    cards = []
    for s in floor.stations(_database()):
        url = f"{settings.public_url()}/andon/{quote(s.code, safe='')}"
        # segno writes the path itself and escapes the title.
        svg = Markup(segno.make(url, error="m").svg_inline(scale=4, border=2, title=url, omitsize=True))
        cards.append({"name": s.name, "code": s.code, "line": s.line, "url": url, "svg": svg})
    return _forms.render("andon_qr", lang, t("andon_qr_title", lang), page_class="floor-print",
                         stations=cards)


@bp.get("/andon/photo/<int:photo_id>")
def photo(photo_id: int):
    found = floor.photo(_database(), photo_id)
    if found is None:
        flask.abort(404)
    content_type, data = found
    return flask.Response(data, mimetype=content_type, headers={
        "Content-Disposition": "inline", "Cache-Control": "private, max-age=86400",
        "X-Content-Type-Options": "nosniff"})


def _unknown(lang: str, code: str):
    return _stations(lang, unknown=t("andon_unknown_station", lang).format(code=code), status=404)
