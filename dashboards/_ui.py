"""Pieces every wall page shares: the shell (header, clock, stale banner, rotation,
kiosk mode), tiles, panels, tables laid out by the browser, and charts (built in
data/figures.py).

Pages import from here; nothing here knows about a particular page.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from datetime import datetime, timezone
from typing import Any, Callable, NamedTuple
from urllib.parse import parse_qs, urlencode

import dash
from dash import (MATCH, ClientsideFunction, Input, Output, Patch, State, callback,
                  clientside_callback, dcc, html, no_update)

from data.words import LANGUAGES, TEXT, bilingual_name, format_minutes, language, t
from flask import current_app, g, has_request_context, request
from plotly.utils import PlotlyJSONEncoder

from data import cache, fleet, settings, theme, timezones
from data.wall import screens

log = logging.getLogger(__name__)


# Seconds each page of a paged list (the issue board, the scoreboard, the material lists)
# stays before it turns to the next.
PAGE_S = 8
# The board's columns and the word of each one's head; a page shows all or some of them.
BOARD_COLUMNS = {"severity": "col_severity", "id": "col_id", "type": "col_type",
                 "title": "col_title", "location": "col_location", "contact": "col_contact",
                 "age": "col_age", "countdown": "col_countdown"}
# Columns as wide as their content whatever the room: the others give way when the room
# runs out, the title first.
FIXED_COLUMNS = ("severity", "countdown")
# The words the browser writes the board with.
BOARD_WORDS = ("to_ack", "to_resolve", "overdue_by", "page_of", "all_clear", "no_open_issues",
               "no_data", "ping_pong_mark", "ping_pong_title", "duration_dh", "duration_hm",
               "duration_ms", "duration_m", "call", "col_age", "board_count")
TILE_SLOT = "tile-slot"
# A material alert's colour, the same on every page: a stagnant lot amber, a shortage red.
ALERT_LEVELS = {"stagnant": theme.WARN, "shortage": theme.BAD}


def refresh_ms() -> int:
    return settings.get_int("REFRESH_S") * 1000


def query_params(search: str | None) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items()}


def page_path(name: str) -> str:
    return "/" if name == "overview" else f"/{name}"


# The scope parameters of a screen's address, as the snapshot functions name them.
SCOPE_ARGS = {"dept": "department", "line": "line"}


def wall_pages() -> list[dict]:
    """The pages a screen shows and turns through, in the registry's order (desk pages,
    such as the 404, are left out of the navigation and the rotation)."""
    return [page for page in dash.page_registry.values() if not page.get("desk")]


def page_at(pathname: str | None) -> dict | None:
    """The registered page at `pathname`; None for an address with no page (the 404)."""
    path = "/" + (pathname or "/").strip("/")
    return next((page for page in dash.page_registry.values() if page["path"] == path), None)


def page_follows(page: dict | None) -> tuple[str, ...]:
    """The scope parameters a page follows: both unless it registered `follows=`."""
    return tuple(page.get("follows", SCOPE_ARGS)) if page else ()


# Seconds a rotating screen stays on each page: the default and the range a value is clamped to.
EVERY_S = 30
EVERY_RANGE_S = (5, 3600)
KIOSK_VALUES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
# A value from the address is shown back in a notice, cut to this many characters.
SHOWN_CHARS = 24


def _shown(value: str) -> str:
    return value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS - 1] + "…"


class KioskParams(NamedTuple):
    """What a screen's address asks for, made safe: a bad value is clamped or ignored and
    `notices` says so on the screen, in its language. `at`: the instant replayed, or None
    for the live wall."""
    lang: str
    every_s: int
    rotate: list[str]
    kiosk: bool
    notices: list[str]
    at: datetime | None = None


def replay_instant(value) -> tuple[datetime | None, str | None]:
    """?at= as the instant to replay, in UTC to the second: ISO 8601, site time unless it
    carries an offset, from PLAUSIBLE_FROM up to now (the future has no figures yet). Returns
    (the instant, None), (None, None) when not asked, or (None, the words key of why the
    value is refused); a refused value leaves the screen live."""
    if isinstance(value, (list, tuple)):          # ?at=..&at=..: the last, as for the others
        value = value[-1] if value else None
    if value is None or not str(value).strip():
        return None, None
    try:
        at = timezones.parse_instant(str(value)).replace(microsecond=0)
    except (ValueError, OverflowError):
        return None, "param_at_invalid"
    if at > timezones.utc_now():
        return None, "param_at_future"
    if at < timezones.parse_instant(settings.get("PLAUSIBLE_FROM")):
        return None, "param_at_too_early"
    return at, None


def site_time(instant: datetime, seconds: bool = True) -> str:
    """An instant as the header and the notices write it, in site time: 2016-03-10 10:00
    (with its seconds when it has any and `seconds` asks for them)."""
    local = timezones.to_site(instant)
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds and local.second else "%Y-%m-%d %H:%M")


def at_param(instant: datetime) -> str:
    """An instant as ?at= takes it, in site time: 2016-03-10T10:00."""
    return site_time(instant).replace(" ", "T")


def kiosk_params(params: dict[str, str], pages: list[str]) -> KioskParams:
    """Read ?lang=, ?every=, ?rotate=, ?kiosk= and ?at= against the wall's `pages`."""
    asked_lang = params.get("lang") or ""
    lang = language(asked_lang)
    notices = []
    if asked_lang and asked_lang != lang:
        notices.append(" · ".join(text.format(value=_shown(asked_lang))
                                  for text in TEXT["param_lang_unsupported"]))
    every_s = EVERY_S
    if "every" in params:
        every_s = _seconds(params["every"])
        if str(every_s) != params["every"].strip():
            low, high = EVERY_RANGE_S
            notices.append(t("param_every_invalid", lang).format(
                value=_shown(params["every"]), low=low, high=high, used=every_s))
    asked = [name.strip() for name in params.get("rotate", "").split(",") if name.strip()]
    unknown = [name for name in asked if name not in pages]
    if unknown:
        notices.append(t("param_rotate_unknown", lang).format(
            value=", ".join(_shown(name) for name in unknown), known=", ".join(pages)))
    kiosk = KIOSK_VALUES.get(params.get("kiosk", "0").strip().lower())
    if kiosk is None:
        notices.append(t("param_kiosk_invalid", lang).format(value=_shown(params["kiosk"])))
    at, refused = replay_instant(params.get("at"))
    if refused:
        notices.append(t(refused, lang).format(value=_shown(params["at"]),
                                               bound=settings.get("PLAUSIBLE_FROM")))
    return KioskParams(lang, every_s, [name for name in asked if name in pages], bool(kiosk),
                       notices, at)


def sound_param(params: dict[str, str], lang: str) -> tuple[bool, str | None]:
    """?sound=: whether the screen sounds a tone when an issue on its board turns overdue
    (assets/wall.js); off unless asked. A bad value leaves it off and the notice says so."""
    value = params.get("sound", "0")
    sound = KIOSK_VALUES.get(value.strip().lower())
    if sound is None:
        return False, t("param_sound_invalid", lang).format(value=_shown(value))
    return sound, None


def _seconds(value: str) -> int:
    """?every= as whole seconds inside EVERY_RANGE_S: a number is rounded and clamped (1e9 is
    the longest, -5 the shortest), anything else is the default."""
    try:
        number = float(value)
    except ValueError:
        return EVERY_S
    if math.isnan(number):
        return EVERY_S
    low, high = EVERY_RANGE_S
    return int(min(max(number, low), high) + 0.5)


def app_shell() -> html.Div:
    """The frame around every page; its texts follow ?lang= through `_shell_texts`."""
    return html.Div(id="wall-root", className="wall-root", children=[
        dcc.Location(id="url", refresh="callback-nav"),
        dcc.Store(id="wall-config"),
        dcc.Store(id="wall-status", data={}),
        dcc.Interval(id="clock-tick", interval=1000),
        html.Header(className="wall-header", children=[
            html.Div(className="wall-brand", children=[html.Span("▣", className="mark"),
                                                         html.Span(id="wall-title")]),
            html.Div(id="wall-replay", className="wall-replay"),
            html.Div(id="wall-scope", className="wall-scope"),
            html.Div(id="wall-now-showing", className="wall-now-showing"),
            html.Nav(id="wall-nav", className="wall-nav"),
            html.Div(className="wall-spacer"),
            html.Span(id="wall-data-errors", className="wall-data-errors"),
            html.Div(className="wall-updated", children=[
                html.Span(id="wall-status-dot", className="status-dot"),
                html.Span(id="wall-updated")]),
            html.Div(id="wall-clock", className="wall-clock"),
        ]),
        html.Div(id="wall-params", className="wall-params"),
        html.Div(id="wall-quiet", className="wall-quiet"),
        html.Div(id="stale-banner", className="stale-banner"),
        html.Div(className="wall-body", children=dash.page_container),
    ])


@callback(
    Output("wall-title", "children"), Output("wall-nav", "children"),
    Output("wall-config", "data"), Output("wall-root", "className"), Output("wall-scope", "children"),
    Output("wall-params", "children"), Output("wall-replay", "children"),
    Input("url", "search"), Input("url", "pathname"),
)
def _shell_texts(search, pathname):
    params = query_params(search)
    pages = wall_pages()
    asked = kiosk_params(params, [p["name"] for p in pages])
    lang, at = asked.lang, asked.at
    sound, sound_refused = sound_param(params, lang)
    # The navigation keeps the language and the instant replayed.
    keep = "?" + urlencode({"lang": lang, **({"at": at_param(at)} if at else {})}, safe=":")
    nav = [dcc.Link(t(f"page_{p['name']}", lang), href=p["path"] + keep) for p in pages]
    config = {
        "lang": lang, "refresh_ms": refresh_ms(), "build_id": cache.BUILD_ID,
        "tz": settings.get("SITE_TZ"),
        "replay_ms": int(at.timestamp() * 1000) if at else None,
        # The board's numbers open an issue's trace at the instant shown; a kiosk's do not.
        "links": not asked.kiosk, "kiosk": asked.kiosk, "at": at_param(at) if at else None,
        "rotate": [{"path": page_path(n), "label": t(f"page_{n}", lang)} for n in asked.rotate],
        "every_s": asked.every_s,
        # A tone when an issue on the board turns overdue (never on a replayed instant).
        "sound": sound,
        "texts": {k: t(k, lang) for k in ("updated", "stale", "stale_detail", "db_unreachable",
                                           "server_unreachable", "server_error", "retrying",
                                           "now_showing", "sound_enable")},
    }
    root_class = f"wall-root lang-{lang}" + (" kiosk" if asked.kiosk else "") + (" replay" if at else "")
    page = page_at(pathname)
    follows = page_follows(page)
    label = scope_label(lang, _department_name(params.get("dept"), lang), params.get("line"),
                        "dept" in follows) if page else ""
    replay = t("replay_label", lang).format(at=site_time(at)) if at else ""
    notices = [*asked.notices, *([sound_refused] if sound_refused else [])]
    return t("app_title", lang), nav, config, root_class, label, " · ".join(notices), replay


def _department_name(department: str | None, lang: str) -> str | None:
    """The department's name for the header; its code when the names cannot be read (the
    header must come up whatever the database does)."""
    if not department:
        return None
    try:
        names = screens.names_for_screen(current_app.config["FLOORLINK_DATABASE_URL"])
        return bilingual_name(names["departments"].get(department, {}), lang) or department
    except Exception:  # noqa: BLE001 - the refresh reports the database; the header stays up
        log.warning("department names unavailable for the header", exc_info=True)
        return department


clientside_callback(
    ClientsideFunction(namespace="floorlink", function_name="shellTick"),
    Output("wall-clock", "children"), Output("wall-updated", "children"),
    Output("stale-banner", "children"), Output("stale-banner", "className"),
    Output("wall-status-dot", "className"), Output("wall-now-showing", "children"),
    Output("url", "pathname"), Output("wall-data-errors", "children"),
    Output("wall-data-errors", "title"), Output("wall-quiet", "children"),
    Input("clock-tick", "n_intervals"), Input("wall-status", "data"),
    State("wall-config", "data"), State("url", "pathname"),
)


def scope_label(lang: str, department_name: str | None, line: str | None,
                follows_department: bool = True) -> str:
    """The header's scope; a page that does not follow the department says so."""
    department_shown = department_name and follows_department
    parts = [t("whole_site", lang)] if not (department_shown or line) else []
    if line:
        parts.append(f"{t('line', lang)} {line}")
    if department_name:
        parts.append(department_name if follows_department else t("not_per_department", lang))
    return " · ".join(parts)


def panel(title, body, *, aside=None, class_name: str = "", **kwargs) -> html.Section:
    """A titled panel; `aside` (a component) sits at the right of the title."""
    head = html.Div(className="panel-title", children=[html.Span(title), html.Span() if aside is None else aside])
    return html.Section(className=f"panel {class_name}".strip(), children=[head, body], **kwargs)


def pager(list_id: str) -> html.Span:
    """The place right of a panel's title where a list says which page it shows, or how
    many rows it could not show."""
    return html.Span(id=f"{list_id}-pager", className="pager")


def blank_figure() -> dict:
    """What a graph shows before its first data: nothing, on the wall's background."""
    hidden = {"visible": False}
    return {"data": [], "layout": {"paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
                                   "xaxis": hidden, "yaxis": hidden}}


def chart(graph_id: str) -> html.Div:
    """A chart whose plotly figure is built in Python (data/figures.py) and sent to the
    `{graph_id}-data` store; `scaled_chart(graph_id)` draws it at the screen's height."""
    return html.Div(className="chart", children=[
        dcc.Store(id=f"{graph_id}-data"),
        dcc.Graph(id=graph_id, className="chart-graph", responsive=True, figure=blank_figure(),
                  config={"displayModeBar": False, "staticPlot": True})])


def scaled_chart(graph_id: str) -> None:
    """Register the clientside callback that draws `graph_id`'s figure with its fonts and
    margins scaled from 1080 pixels to the screen's height."""
    clientside_callback(
        ClientsideFunction(namespace="floorlink", function_name="scaleFigure"),
        Output(graph_id, "figure"), Input(f"{graph_id}-data", "data"),
    )


def tile(tile_id: str, label: str) -> html.Div:
    """A KPI tile before its first figure; the page's tiles part fills it on each refresh."""
    return tile_content(tile_id, label, "—", "", None)


def tile_content(tile_id: str, label: str, value, foot, level: str | None) -> html.Div:
    """A tile in its slot: label, figure and foot, coloured by `level` (data.theme.level).

    A tile is steady whatever its colour: its slot pulses a few times only when the level
    got worse since the screen's last refresh (assets/wall.js tileAlarm), so a panel red all
    day does not teach people to ignore red."""
    return html.Div(id={"type": TILE_SLOT, "tile": tile_id}, className="tile-slot", children=html.Div(
        id=tile_id, className=f"tile {level}" if level else "tile", children=[
            html.Div(label, className="tile-label"), html.Div(value, className="tile-value"),
            html.Div(foot, className="tile-foot")]))


def grid_row(cells: list, class_name: str, **kwargs) -> html.Div:
    """One row of a table: each cell a column of the table's grid."""
    return html.Div(className=class_name, children=[
        c if isinstance(c, html.Span) else html.Span(c) for c in cells], **kwargs)


def row_table(list_id: str, head: list[str] | None = None, class_name: str = "", *,
              shares_with: str | None = None) -> html.Div:
    """A list drawn as a table whose columns are as wide as their content. The browser fills
    it from the `{list_id}-data` store (`row_pager(list_id)`) with as many whole rows as the
    panel holds, paged, or the first ones and "+N more": no row is hidden without a word.
    `shares_with`: the id of a text under the list whose lines past its first come out of
    the list's room (the scoreboard's star line), so a long one costs a row, not the panels
    below."""
    return html.Div(className=f"table {class_name}".strip(), children=[
        dcc.Store(id=f"{list_id}-data"),
        *([grid_row(head, "row head")] if head else []),
        html.Div(id=list_id, className="rows", **({"data-shares-with": shares_with} if shares_with else {})),
    ])


def list_data(rows: list, lang: str, *, empty: str, total: int | None = None,
              paged: bool = True, empty_class: str = "calm") -> dict:
    """A list part as its store receives it. `total` counts the rows the snapshot has, of
    which it sent only `rows`; `paged` turns pages, else the first rows that fit are shown
    with how many more there are."""
    return {"rows": rows, "total": len(rows) if total is None else max(total, len(rows)),
            "page_s": PAGE_S if paged else 0, "empty": html.Div(empty, className=empty_class),
            "texts": {"page_of": t("page_of", lang), "more": t("more_rows", lang)}}


def row_pager(list_id: str) -> None:
    """Register the clientside callback that lays out `list_id`'s rows every second."""
    clientside_callback(
        ClientsideFunction(namespace="floorlink", function_name="rows"),
        Output(list_id, "children"), Output(f"{list_id}-pager", "children"),
        Input("clock-tick", "n_intervals"), Input(f"{list_id}-data", "data"),
    )


def shown_level(figure: str, value, *, green: bool = True) -> str | None:
    """The level a figure is shown in: the wall's one rule (data.theme.level), and with
    `green` false a good level shown neutral: a plant without new data (or a page without
    any) is true to count 0, but 0 then says nothing about how the plant is doing."""
    level = theme.level(figure, value)
    return None if level == theme.OK and not green else level


def level_span(figure: str, value, text: str, *, green: bool = True) -> html.Span:
    """A figure in the colour it is shown in (shown_level)."""
    level = shown_level(figure, value, green=green)
    return html.Span(text, className=f"num {level}" if level else "num")


def calm_class(green: bool) -> str:
    """How an empty list that means "nothing wrong" is drawn: green, or neutral when green
    would claim more than the data shows (see shown_level)."""
    return "calm" if green else "empty"


def dwell(lot: dict, lang: str) -> str:
    """A stuck lot's dwell against its limit, both in the limit's unit: 44 时 / 12 时; with
    a decimal or two more when the dwell would read the same as its limit (14.2 天 / 14 天)."""
    limit = format_minutes(lot["limit_min"], lang)
    for more in (0, 1, 2):
        shown = format_minutes(lot["dwell_min"], lang, unit_of=lot["limit_min"], more_decimals=more)
        if shown != limit:
            break
    return f"{shown} / {limit}"


def alert_row(kind: str, lang: str, location: str, what: str, number: str, figure: str) -> html.Div:
    """One material alert: its kind as a tag in the colour it has on every page, where it
    is, what, its lot or issue number, and how long it has waited."""
    return grid_row([html.Span(t(kind, lang), className=f"tag {ALERT_LEVELS[kind]}"), location,
                     html.Span(what, className="give"), number, html.Span(figure, className="num")],
                    "row alert")


def issue_board(prefix: str, lang: str, columns: tuple[str, ...] = tuple(BOARD_COLUMNS), *,
                cards: bool = False) -> html.Section:
    """The open-issue board panel; `board_ticker(prefix)` fills it every second. Columns are
    as wide as their content and the issue's title gives way first. With `cards`, each issue
    takes two lines (what and how long; its number, where and whom to call), for a board
    beside other panels, too narrow for all the columns on one line."""
    if cards:
        tracks, head, layout_ = "max-content minmax(0, 1fr) max-content", [], "cards"
    else:
        tracks = " ".join("minmax(0, 1fr)" if c == "title" else "max-content" if c in FIXED_COLUMNS
                          else "minmax(0, max-content)" for c in columns)
        head = [grid_row([html.Span(t(BOARD_COLUMNS[c], lang), className=f"c-{c}") for c in columns],
                         "row head")]
        layout_ = " ".join(columns)
    body = html.Div(className="table board" + (" cards" if cards else ""),
                    style={"gridTemplateColumns": tracks}, children=[
        *head, html.Div(id=f"{prefix}-board-rows", className="rows", **{"data-columns": layout_})])
    return panel(t("board_title", lang), body, id=f"{prefix}-board-panel",
                 aside=html.Span(id=f"{prefix}-board-pager", className="pager"))


def board_data(snapshot: dict, lang: str) -> dict:
    """The board's rows with names in the screen's language; deadlines stay absolute so the
    browser counts down by itself. `contact` is whom to call: the person who acknowledged,
    else (None) the owning department."""
    names = snapshot["names"]

    def department(code: str) -> str:
        return bilingual_name(names["departments"].get(code, {}), lang) or code

    rows = [{
        "id": r["id"], "severity": r["severity"], "title": r["title"],
        "type": bilingual_name(names["issue_types"].get(r["issue_type"], {}), lang) or r["issue_type"],
        "location": names["locations"].get(r["location_code"], r["location_code"] or ""),
        "owner": department(r["owner_department_code"]), "contact": r.get("contact"),
        "ping_pong": bool(r.get("ping_pong")),
        "raised_ms": r["raised_ms"], "acknowledged_ms": r["acknowledged_ms"],
        "ack_due_ms": r["ack_due_ms"], "resolve_due_ms": r["resolve_due_ms"],
    } for r in snapshot["board"]]
    state = "empty" if snapshot.get("no_data") else "quiet" if snapshot.get("quiet") else "ok"
    return {"rows": rows, "page_s": PAGE_S, "state": state,
            "texts": {k: t(k, lang) for k in BOARD_WORDS}}


def board_ticker(prefix: str) -> None:
    """Register the clientside callback that redraws `prefix`'s board every second, counting
    down to the replayed instant's clock when the screen replays one (wall-config)."""
    clientside_callback(
        ClientsideFunction(namespace="floorlink", function_name="board"),
        Output(f"{prefix}-board-rows", "children"), Output(f"{prefix}-board-pager", "children"),
        Input("clock-tick", "n_intervals"), Input(f"{prefix}-board-data", "data"),
        State("wall-config", "data"),
    )


# A tile's level can only get worse once per refresh; the browser marks it when it does.
clientside_callback(
    ClientsideFunction(namespace="floorlink", function_name="tileAlarm"),
    Output({"type": TILE_SLOT, "tile": MATCH}, "className"),
    Input({"type": TILE_SLOT, "tile": MATCH}, "children"),
    State({"type": TILE_SLOT, "tile": MATCH}, "id"),
)


# ---- one refresh protocol for every wall page -----------------------------------------

class Part(NamedTuple):
    """One part of a wall page: the Output it fills and how it is drawn from the snapshot in
    the screen's language. Its name is the snapshot's (`failed_panels` names parts)."""
    output: Output
    render: Callable[[dict, str], Any]


def page_scope(lang: str | None, dept: str | None, line: str | None, at: str | None = None) -> dict:
    """A screen's scope as its page's layout receives it from the address: `at` the instant
    replayed (ISO 8601, UTC), None for the live wall or a refused value (the shell says why)."""
    replayed, _ = replay_instant(at)
    return {"lang": language(lang), "dept": dept or None, "line": line or None,
            "at": replayed.isoformat() if replayed else None}


def scope_instant(scope: dict) -> datetime | None:
    """The instant a screen's scope replays, None for the live wall."""
    return datetime.fromisoformat(scope["at"]) if scope.get("at") else None


def wall_page(page: str, scope: dict, class_name: str, children: list) -> html.Div:
    """A wall page's frame around its panels: its timed refresh, its scope, what this screen
    was last sent, and the full-page notice (unknown scope, empty database)."""
    return html.Div(className=f"wall-page {class_name}", children=[
        refresh_interval(page), dcc.Store(id=f"{page}-scope", data=scope),
        dcc.Store(id=f"{page}-sent", data={}),
        html.Div(id=f"{page}-notice", className="wall-notice"), *children])


def refresh_interval(prefix: str) -> dcc.Interval:
    """A page's one timed refresh; `align_refresh(prefix)` keeps it on the server's beat."""
    return dcc.Interval(id=f"{prefix}-refresh", interval=refresh_ms())


def align_refresh(prefix: str) -> None:
    """Register the clientside callback that fires `prefix`'s refresh just after each
    snapshot boundary of the server, so a change reaches the screen within one interval."""
    clientside_callback(
        ClientsideFunction(namespace="floorlink", function_name="alignRefresh"),
        Output(f"{prefix}-refresh", "interval"),
        Input(f"{prefix}-refresh", "n_intervals"), State("wall-config", "data"),
    )


def wall_refresh(page: str, parts: dict[str, Part], snapshot: Callable[..., dict]) -> Callable:
    """Register the refresh of the wall page named `page` (the same for every page:
    `serve_refresh`) and its alignment on the server's snapshot boundaries. `snapshot` is
    called with the database URL, the scope the page follows (register_page's `follows`) and
    the instant replayed (`at`, None for the live wall)."""
    follows = page_follows(next(p for p in dash.page_registry.values() if p["name"] == page))

    @callback(*(part.output for part in parts.values()), Output(f"{page}-notice", "children"),
              Output(f"{page}-sent", "data"), Output("wall-status", "data", allow_duplicate=True),
              Input(f"{page}-refresh", "n_intervals"), State(f"{page}-scope", "data"),
              State(f"{page}-sent", "data"), State("wall-status", "data"),
              prevent_initial_call="initial_duplicate")
    def refresh(_n, scope, sent, status):
        return serve_refresh(page, parts, snapshot, follows, scope, sent, status)

    align_refresh(page)
    return refresh


def serve_refresh(page: str, parts: dict[str, Part], snapshot: Callable[..., dict],
                  follows: tuple[str, ...], scope: dict, sent: dict | None,
                  status: dict | None) -> tuple:
    """One screen's refresh: each part's new value or no_update, the page's notice, what the
    screen now has (`sent`) and the shell's status.

    The scope is checked before anything is computed. The parts come from the view shared
    by every screen of the scope, language and instant (drawn once per interval, or once per
    replayed instant), and a screen is sent only what differs from what it has. The answer is
    never an error: a failure becomes a status, so the banner can tell a database that does
    not answer from a server that failed, and from a server that does not answer at all.
    The screen and how its refresh went are noted in the fleet (data/fleet.py)."""
    _check_sent_by_page(scope, sent, status)
    answer = _refresh_answer(page, parts, snapshot, follows, scope, sent, status)
    note_screen(page, scope, answer[-1]["state"])
    return answer


PAGE_SCOPE_KEYS = {"lang", "dept", "line"}


def _check_sent_by_page(scope, sent, status) -> None:
    """A refresh's scope, `sent` and status as its page sends them (page_scope, without `at`
    from a page drawn before replays; dicts), else TypeError: a request made by hand is
    refused (app.py) before it is computed or noted."""
    if not (isinstance(scope, dict) and PAGE_SCOPE_KEYS <= set(scope) <= {*PAGE_SCOPE_KEYS, "at"}
            and scope["lang"] in LANGUAGES
            and all(isinstance(scope.get(key), (str, type(None))) for key in ("dept", "line", "at"))
            and all(isinstance(value, (dict, type(None))) for value in (sent, status))):
        raise TypeError("a refresh's scope, sent and status are not what its page sends")


def note_screen(page: str, scope: dict, outcome: str) -> None:
    """Note the screen asking in the fleet: by its token's name when it showed one, else by
    what its browser sends (assets/wall.js). Costs the refresh a dict update, and never fails
    it."""
    if not has_request_context():
        return
    try:
        caller = g.get("floorlink_caller")
        headers = request.headers
        fleet.note(current_app.config["FLOORLINK_DATABASE_URL"], fleet.sighting(
            screen_name=caller.name.removeprefix("screen:") if caller and caller.kind == "screen" else None,
            browser_id=headers.get(fleet.SCREEN_HEADER), address=request.remote_addr, page=page,
            department=scope.get("dept"), line=scope.get("line"), replay_at=scope_instant(scope),
            lang=scope["lang"], kiosk=headers.get(fleet.KIOSK_HEADER),
            build_id=headers.get(fleet.BUILD_HEADER), user_agent=headers.get("User-Agent"),
            outcome=outcome), timezones.utc_now())
    except Exception:  # noqa: BLE001 - the fleet is a record, never a reason to fail a screen
        log.exception("the fleet could not note a refresh of %s", page)


def _refresh_answer(page: str, parts: dict[str, Part], snapshot: Callable[..., dict],
                    follows: tuple[str, ...], scope: dict, sent: dict | None,
                    status: dict | None) -> tuple:
    database_url = current_app.config["FLOORLINK_DATABASE_URL"]
    lang = scope["lang"]
    sent = dict(sent or {})
    keep = (no_update,) * len(parts)
    at = scope_instant(scope)
    try:
        problem = screens.scope_problem(database_url, scope["dept"], scope["line"])
        if problem is None:
            followed = {key: scope[key] for key in follows}
            view = screens.view_for_screen(
                page, database_url,
                lambda: snapshot(database_url, at=at,
                                 **{SCOPE_ARGS[k]: v for k, v in followed.items()}),
                lambda shot: render_view(parts, shot, lang), lang=lang, at=at, **followed)
    except screens.UnknownScope as unknown:     # the plant changed between the check and now
        problem = unknown.problem
    except screens.SourceUnavailable:
        log.warning("%s refresh: data source unavailable", page, exc_info=True)
        return (*keep, no_update, no_update, status_down(status))
    except Exception:  # noqa: BLE001 - a screen learns of a failure as a status, not a 500
        log.exception("%s refresh failed", page)
        return (*keep, no_update, no_update, status_error(status))
    if problem is not None:
        notice = send(sent, "notice", rendered(scope_notice(problem, lang)))
        return (*keep, notice, sent, status_ok({"as_of_ms": int(time.time() * 1000)}))
    out = tuple(send(sent, name, view["parts"][name]) for name in parts)
    return (*out, send(sent, "notice", view["notice"]), sent, status_ok(view, replay=at is not None))


def render_view(parts: dict[str, Part], snapshot: dict, lang: str) -> dict:
    """Every part of a page in one language as screens are sent them, the page's notice
    (an empty database), the header's data-error marker and the no-new-data notice. A part
    the snapshot could not compute (`failed_panels`), or that cannot be drawn, says so in its
    panel; the others are drawn as usual."""
    failed = set(snapshot.get("failed_panels") or ())

    def draw(name: str, part: Part):
        if name not in failed:
            try:
                return part.render(snapshot, lang)
            except Exception:  # noqa: BLE001 - one panel's failure must not blank the others
                log.exception("the %s panel could not be drawn", name)
        return failed_value(part.output, lang)

    return {"parts": {name: rendered(draw(name, part)) for name, part in parts.items()},
            "notice": rendered(empty_notice(lang) if snapshot.get("empty_database") else None),
            "data_errors": data_errors_marker(snapshot.get("data_errors"), lang),
            "quiet": quiet_notice(snapshot, lang)}


def failed_value(output: Output, lang: str):
    """What a failed part's Output receives: the message, in the form that Output takes (a
    figure, or a `data` dict whose clientside function shows `message` when `state` is
    "failed", or children)."""
    text = t("panel_failed", lang)
    if output.component_property == "figure":
        figure = blank_figure()
        figure["layout"]["annotations"] = [{
            "text": text, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
            "font": {"size": 28, "color": theme.PALETTE[theme.BAD]}}]
        return figure
    if output.component_property == "data":
        return {"state": "failed", "message": text, "rows": []}
    return html.Div(text, className="panel-failed")


def scope_notice(problem: dict, lang: str) -> html.Div:
    """The full-page message for a scope the plant does not know, with the likely meant one."""
    kind = problem["kind"]
    lines = [html.Div(t(f"unknown_{kind}", lang).format(value=_shown(problem["value"])),
                      className="notice-title")]
    if problem.get("suggestion"):
        lines.append(html.Div(t("did_you_mean", lang).format(value=problem["suggestion"]),
                              className="notice-suggestion"))
    lines.append(html.Div(t("known_codes", lang).format(
        codes=", ".join(problem.get("known") or ()) or t("no_value", lang))))
    lines.append(html.Div(t("check_address", lang).format(
        param=next(k for k, v in SCOPE_ARGS.items() if v == kind)), className="notice-hint"))
    return html.Div(className="notice-box problem", children=lines)


def empty_notice(lang: str) -> html.Div:
    """The full-page message for a database with no issues and no movements: how to fill it."""
    return html.Div(className="notice-box", children=[
        html.Div(t("empty_database", lang), className="notice-title"),
        html.Div(t("empty_database_demo", lang)), html.Code("python app.py demo"),
        html.Div(t("empty_database_import", lang)), html.Code("python app.py import TABLE FILE"),
    ])


def data_errors_marker(errors: dict | None, lang: str) -> dict | None:
    """The header's marker for rows the wall left out, and its tooltip with the first ones,
    for whoever maintains the data; None when there are none."""
    count = (errors or {}).get("count", 0)
    if not count:
        return None
    text = t("data_errors_one", lang) if count == 1 else t("data_errors", lang).format(count=f"{count:,}")
    examples = [" · ".join(str(e.get(k, "")) for k in ("table", "key", "column", "value", "reason"))
                for e in errors.get("examples") or ()]
    return {"text": text, "title": "\n".join([t("data_errors_title", lang), *examples])}


def quiet_notice(snapshot: dict, lang: str) -> dict | None:
    """The notice of a plant without new data (the snapshot's `quiet`): when its newest
    record is from and how long ago, and the instant to replay to see the wall as it was
    then (the shell writes it as a link); None when there is new data."""
    if not snapshot.get("quiet"):
        return None
    newest = datetime.fromtimestamp(snapshot["newest_record_ms"] / 1000, timezone.utc)
    return {"text": t("no_new_data", lang).format(
                when=site_time(newest, seconds=False),
                ago=_ago(snapshot["as_of_ms"] - snapshot["newest_record_ms"], lang)),
            "hint": t("replay_hint", lang), "at": at_param(newest)}


def _ago(ms: int, lang: str) -> str:
    """How long ago, in whole days from two days, else whole hours from two hours, else minutes."""
    minutes = ms // 60_000
    if minutes >= 2 * 1440:
        return t("ago_days", lang).format(n=f"{minutes // 1440:,}")
    if minutes >= 2 * 60:
        return t("ago_hours", lang).format(n=f"{minutes // 60:,}")
    return t("ago_minutes", lang).format(n=f"{minutes:,}")


def _digest(value) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def rendered(value) -> dict:
    """A part as sent to screens (plain JSON, the same for every screen of a scope and
    language, so it is drawn once and cached) with the digests screens are compared by: one
    per item of a list (so a screen is sent only the items that changed), else one.

    Compared as drawn, so a figure that moves without changing on screen (a dwell of
    45.2 then 45.3 hours, both shown as 45 h) sends nothing."""
    data = json.loads(json.dumps(value, cls=PlotlyJSONEncoder))
    return {"value": data,
            "digests": [_digest(item) for item in data] if isinstance(data, list) else _digest(data)}


def send(sent: dict, name: str, part: dict):
    """What a screen is sent of a rendered part, recorded in `sent`: nothing when it has it,
    only the changed items of a list of the same length (a Patch), else the whole part."""
    before, now = sent.get(name), part["digests"]
    sent[name] = now
    if before == now:
        return no_update
    if isinstance(before, list) and isinstance(now, list) and len(before) == len(now):
        patch = Patch()
        for i, (old, new) in enumerate(zip(before, now)):
            if old != new:
                patch[i] = part["value"][i]
        return patch
    return part["value"]


def status_ok(shown: dict, replay: bool = False) -> dict:
    """The shell's freshness record after a good refresh (by the instant of its data), with
    the server's clock, the data-error marker and the no-new-data notice. A replayed
    instant's data is as fresh as it will ever be: its refresh is dated by the answer."""
    server_ms = int(time.time() * 1000)
    return {"state": "ok", "last_good_ms": server_ms if replay else shown["as_of_ms"],
            "build_id": cache.BUILD_ID, "server_ms": server_ms, "data_errors": shown.get("data_errors"),
            "quiet": shown.get("quiet")}


def status_down(status: dict | None) -> dict:
    """The database did not answer: the last good time and marker are kept."""
    return _status_failed(status, "db_down")


def status_error(status: dict | None) -> dict:
    """The server failed on this refresh (logged): the last good time and marker are kept."""
    return _status_failed(status, "error")


def _status_failed(status: dict | None, state: str) -> dict:
    return dict(status or {}, state=state, build_id=cache.BUILD_ID, server_ms=int(time.time() * 1000))
