"""The fleet page (/fleet), for admins: every wall screen that has refreshed, one row each,
with its state (live, late, dark, database unreachable, server error) and since when, the
count of screens by state on top. A desk page, read every second (data/fleet.py).

Its layout holds no screen: the rows come only from its own callback, whose outputs the
route table opens for admins alone (the layout is served to anyone who may see a page)."""
from __future__ import annotations

import logging
import threading
from datetime import datetime

import dash
from dash import Input, Output, State, callback, dcc, html, no_update
from flask import current_app

from dashboards import _desk, _ui
from data import cache, fleet, settings, timezones
from data.words import LANGUAGE_NAMES, TEXT, language, t

log = logging.getLogger(__name__)

dash.register_page(__name__, path="/fleet", name="fleet", title="FloorLink · 看板屏幕 / Wall screens",
                   desk=True)

READ_EVERY_MS = 1000
COLUMNS = ("state", "screen", "address", "page", "scope", "lang", "kiosk", "build", "browser",
           "first_seen", "last_refresh")
# One read of the fleet at a time per worker: a database that does not answer holds one
# thread of each worker, however many fleet pages are open; the others answer at once.
_reading = threading.Lock()


def layout(lang=None, **params):
    lang = language(lang)
    return _desk.desk_page("fleet", lang, t("fleet_title", lang), [
        dcc.Interval(id="fleet-refresh", interval=READ_EVERY_MS),
        dcc.Store(id="fleet-scope", data={"lang": lang, "all": params.get("all") == "1"}),
        dcc.Store(id="fleet-sent", data={}),
        html.Div(id="fleet-counts", className="fleet-counts"),
        html.P(id="fleet-note", className="desk-note fleet-note"),
        html.Section(className="desk-panel fleet-panel", children=[
            html.Table(className="desk-table fleet-table", children=[
                html.Thead(html.Tr([html.Th(t(f"fleet_col_{c}", lang)) for c in COLUMNS])),
                html.Tbody(id="fleet-rows")])]),
    ])


@callback(Output("fleet-counts", "children"), Output("fleet-note", "children"),
          Output("fleet-rows", "children"), Output("fleet-sent", "data"),
          Input("fleet-refresh", "n_intervals"), State("fleet-scope", "data"),
          State("fleet-sent", "data"))
def refresh(_n, scope, sent):
    if not _reading.acquire(blocking=False):
        return no_update, no_update, no_update, no_update
    try:
        return fleet_view(current_app.config["FLOORLINK_DATABASE_URL"], scope or {}, sent,
                          timezones.utc_now())
    finally:
        _reading.release()


def fleet_view(database_url: str, scope: dict, sent: dict | None, as_of: datetime) -> tuple:
    """The page at `as_of`: counts, note and rows, each sent only when it changed (a row
    only when its screen did), and what the page now has."""
    lang = language(scope.get("lang"))
    everything = bool(scope.get("all"))
    sent = dict(sent or {})
    try:
        read = fleet.read(database_url, as_of, settings.get_int("REFRESH_S"), everything)
    except fleet.SourceUnavailable:
        log.warning("the fleet could not be read", exc_info=True)
        note = _ui.send(sent, "note", _ui.rendered(t("fleet_db_down", lang)))
        return no_update, note, no_update, sent
    counts = counts_bar(read, lang)
    note = fleet_note(read, lang, everything)
    rows = [screen_row(screen, as_of, lang) for screen in read.screens]
    return (_ui.send(sent, "counts", _ui.rendered(counts)), _ui.send(sent, "note", _ui.rendered(note)),
            _ui.send(sent, "rows", _ui.rendered(rows)), sent)


def counts_bar(read: fleet.Fleet, lang: str) -> list:
    """The count of screens in each state, the flagged ones first, and when it was read."""
    chips = [html.Span(className=f"fleet-count state-{state}" + (" zero" if not read.counts[state] else ""),
                       children=[html.Span(f"{read.counts[state]:,}", className="n"),
                                 t(f"fleet_state_{state}", lang)])
             for state in fleet.STATES]
    total = t("fleet_total", lang).format(n=f"{len(read.screens):,}")
    return [*chips, html.Span(total, className="fleet-total"),
            html.Span(t("fleet_as_of", lang).format(when=_when(read.as_of, read.as_of)),
                      className="fleet-as-of")]


def fleet_note(read: fleet.Fleet, lang: str, everything: bool):
    """What the page says beside its rows: a database that keeps no fleet, an empty fleet,
    the long-gone screens not listed (and the link that lists them), or the link that hides
    them again."""
    days = fleet.LONG_GONE.days
    if not read.kept:
        return t("fleet_not_kept", lang)
    if read.hidden:
        return [t("fleet_hidden", lang).format(n=f"{read.hidden:,}", days=days), " · ",
                dcc.Link(t("fleet_show_all", lang), href=f"/fleet?lang={lang}&all=1", id="fleet-show-all")]
    if everything:
        return dcc.Link(t("fleet_hide_gone", lang).format(days=days), href=f"/fleet?lang={lang}")
    if not read.screens:
        return t("fleet_none", lang)
    return None


def screen_row(screen: fleet.Screen, as_of: datetime, lang: str) -> html.Tr:
    """One screen: every value from the database or the browser is a text child, shown as
    text whatever it holds."""
    state = [html.Span(t(f"fleet_state_{screen.state}", lang), className="fleet-state-name")]
    if screen.since is not None:
        state.append(html.Span(t("fleet_since", lang).format(when=_when(screen.since, as_of)),
                               className="fleet-since"))
    build = screen.build_id or t("fleet_build_unknown", lang)
    old = screen.build_id is not None and screen.build_id != cache.BUILD_ID
    cells = {
        "state": state,
        "screen": _screen_name(screen, lang),
        "address": screen.address or "",
        "page": t(f"page_{screen.page}", lang) if f"page_{screen.page}" in TEXT else screen.page,
        "scope": _scope(screen, lang),
        "lang": LANGUAGE_NAMES.get(screen.lang, screen.lang),
        "kiosk": "" if screen.kiosk is None else t("fleet_yes" if screen.kiosk else "fleet_no", lang),
        "build": [build, *([html.Span(t("fleet_build_old", lang), className="fleet-old")] if old else [])],
        "browser": html.Span(fleet.short_browser(screen.user_agent), title=screen.user_agent or ""),
        "first_seen": _when(screen.first_seen, as_of),
        "last_refresh": _when(screen.last_refresh, as_of),
    }
    return html.Tr(className=f"fleet-row state-{screen.state}", children=[
        html.Td(cells[c], className=f"fleet-{c}") for c in COLUMNS])



def _screen_name(screen: fleet.Screen, lang: str) -> str:
    if screen.name:
        return screen.name
    if screen.browser_id:
        return t("fleet_browser_screen", lang).format(id=screen.browser_id[:8])
    return t("fleet_address_screen", lang)


def _scope(screen: fleet.Screen, lang: str) -> str:
    parts = [part for part in (screen.department, screen.line and f"{t('line', lang)} {screen.line}") if part]
    if screen.replay_at is not None:
        parts.append(t("fleet_replay", lang).format(at=_ui.site_time(screen.replay_at)))
    return " · ".join(parts) or t("whole_site", lang)


def _when(instant: datetime, as_of: datetime) -> str:
    """An instant in site time: its time of day on the day of `as_of`, else its date too."""
    local, today = timezones.to_site(instant), timezones.to_site(as_of)
    return local.strftime("%H:%M:%S" if local.date() == today.date() else "%Y-%m-%d %H:%M")
