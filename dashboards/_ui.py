"""Pieces every wall page shares: the shell (header, clock, stale banner, rotation,
kiosk mode), tiles, panels, table rows, and the figure style.

Pages import from here; nothing here knows about a particular page.
"""
from __future__ import annotations

import hashlib
import json
import time
from urllib.parse import parse_qs

import dash
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, dcc, html

from data.words import TEXT, bilingual_name, language, t
from flask import current_app
from plotly.utils import PlotlyJSONEncoder

from data import settings
from data.wall import screens



def _build_id() -> str:
    """A fingerprint of the code and assets being served. An open screen that sees it change
    reloads itself, so a deploy reaches every TV without anyone pressing F5; every worker of
    one deploy computes the same value."""
    digest = hashlib.sha1()
    for path in sorted(settings.PROJECT_ROOT.glob("*.py")) + sorted(
            p for folder in ("dashboards", "data", "assets") for p in
            (settings.PROJECT_ROOT / folder).rglob("*") if p.suffix in (".py", ".js", ".css")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


BUILD_ID = _build_id()
# Seconds each page of the issue board stays before it turns to the next.
BOARD_PAGE_S = 8
BOARD_COLUMNS = ("col_severity", "col_type", "col_title", "col_location", "col_owner", "col_age",
                 "col_countdown")


def refresh_ms() -> int:
    return settings.get_int("REFRESH_S") * 1000


def query_params(search: str | None) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items()}


def page_path(name: str) -> str:
    return "/" if name == "overview" else f"/{name}"


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
            html.Div(id="wall-scope", className="wall-scope"),
            html.Div(id="wall-now-showing", className="wall-now-showing"),
            html.Nav(id="wall-nav", className="wall-nav"),
            html.Div(className="wall-spacer"),
            html.Div(className="wall-updated", children=[
                html.Span(id="wall-status-dot", className="status-dot"),
                html.Span(id="wall-updated")]),
            html.Div(id="wall-clock", className="wall-clock"),
        ]),
        html.Div(id="stale-banner", className="stale-banner"),
        html.Div(className="wall-body", children=dash.page_container),
    ])


@callback(
    Output("wall-title", "children"), Output("wall-nav", "children"),
    Output("wall-config", "data"), Output("wall-root", "className"), Output("wall-scope", "children"),
    Input("url", "search"),
)
def _shell_texts(search):
    params = query_params(search)
    lang = language(params.get("lang"))
    keep = f"?lang={lang}"
    nav = [dcc.Link(t(f"page_{p['name']}", lang), href=p["path"] + keep)
           for p in dash.page_registry.values()]
    rotate = [name for name in params.get("rotate", "").split(",") if name]
    config = {
        "lang": lang, "refresh_ms": refresh_ms(), "build_id": BUILD_ID,
        "tz": settings.get("SITE_TZ"),
        "rotate": [{"path": page_path(n), "label": t(f"page_{n}", lang)} for n in rotate
                   if f"page_{n}" in TEXT],
        "every_s": max(5, int(params.get("every", "30") or 30)),
        "texts": {k: t(k, lang) for k in ("updated", "stale", "stale_detail", "db_unreachable",
                                           "server_unreachable", "retrying", "now_showing",
                                           "to_ack", "to_resolve", "overdue_by", "page_of",
                                           "all_clear", "no_data", "days_short", "hours_short",
                                           "minutes_compact")},
    }
    kiosk = params.get("kiosk", "") in ("1", "true", "yes")
    department = params.get("dept")
    department_name = department
    if department:
        try:
            names = screens.names_for_screen(current_app.config["FLOORLINK_DATABASE_URL"])
            department_name = bilingual_name(names["departments"].get(department, {}), lang) or department
        except screens.SourceUnavailable:
            pass
    root_class = f"wall-root lang-{lang}" + (" kiosk" if kiosk else "")
    return (t("app_title", lang), nav, config, root_class,
            scope_label(lang, department_name, params.get("line")))


clientside_callback(
    ClientsideFunction(namespace="floorlink", function_name="shellTick"),
    Output("wall-clock", "children"), Output("wall-updated", "children"),
    Output("stale-banner", "children"), Output("stale-banner", "className"),
    Output("wall-status-dot", "className"), Output("wall-now-showing", "children"),
    Output("url", "pathname"),
    Input("clock-tick", "n_intervals"), Input("wall-status", "data"),
    State("wall-config", "data"), State("url", "pathname"),
)


def scope_label(lang: str, department_name: str | None, line: str | None) -> str:
    parts = [t("whole_site", lang)] if not (department_name or line) else []
    if line:
        parts.append(f"{t('line', lang)} {line}")
    if department_name:
        parts.append(department_name)
    return " · ".join(parts)


def panel(title, body, *, aside=None, class_name: str = "", **kwargs) -> html.Section:
    """A titled panel; `aside` (a component) sits at the right of the title."""
    head = html.Div(className="panel-title", children=[html.Span(title), html.Span() if aside is None else aside])
    return html.Section(className=f"panel {class_name}".strip(), children=[head, body], **kwargs)


def blank_figure() -> dict:
    """What a graph shows before its first data: nothing, on the wall's background."""
    hidden = {"visible": False}
    return {"data": [], "layout": {"paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
                                   "xaxis": hidden, "yaxis": hidden}}


def tile(tile_id: str, label: str) -> html.Div:
    """A KPI tile; `tile_content` fills it on each refresh."""
    return html.Div(id=tile_id, className="tile", children=[
        html.Div(label, className="tile-label"),
        html.Div("—", className="tile-value"),
        html.Div("", className="tile-foot"),
    ])


def tile_content(label: str, value: str, foot, level: str | None) -> tuple[list, str]:
    """Children and class of a tile; level is ok / warn / bad (bad tiles pulse)."""
    class_name = "tile" + (f" {level}" if level else "") + (" alarm" if level == "bad" else "")
    return [html.Div(label, className="tile-label"), html.Div(value, className="tile-value"),
            html.Div(foot, className="tile-foot")], class_name


def grid_row(cells: list, class_name: str) -> html.Div:
    return html.Div(className=class_name, children=[
        c if isinstance(c, html.Span) else html.Span(c) for c in cells])



def issue_board(prefix: str, lang: str) -> html.Section:
    """The open-issue board panel; `board_ticker(prefix)` fills it every second."""
    body = html.Div(className="board", children=[
        grid_row([t(k, lang) for k in BOARD_COLUMNS], "board-row board-head"),
        html.Div(id=f"{prefix}-board-rows", className="rows"),
    ])
    return panel(t("board_title", lang), body, id=f"{prefix}-board-panel",
                 aside=html.Span(id=f"{prefix}-board-pager", className="board-pager"))


def board_data(snapshot: dict, lang: str) -> dict:
    """The board's rows with names in the screen's language; deadlines stay absolute so the
    browser counts down by itself."""
    names = snapshot["names"]
    rows = [{
        "id": r["id"], "severity": r["severity"], "title": r["title"],
        "type": bilingual_name(names["issue_types"].get(r["issue_type"], {}), lang) or r["issue_type"],
        "location": names["locations"].get(r["location_code"], r["location_code"] or ""),
        "owner": bilingual_name(names["departments"].get(r["owner_department_code"], {}), lang)
                 or r["owner_department_code"],
        "raised_ms": r["raised_ms"], "acknowledged_ms": r["acknowledged_ms"],
        "ack_due_ms": r["ack_due_ms"], "resolve_due_ms": r["resolve_due_ms"],
    } for r in snapshot["board"]]
    return {"rows": rows, "page_s": BOARD_PAGE_S,
            "state": "empty" if snapshot["no_data"] else "ok"}


def board_ticker(prefix: str) -> None:
    """Register the clientside callback that redraws `prefix`'s board every second."""
    clientside_callback(
        ClientsideFunction(namespace="floorlink", function_name="board"),
        Output(f"{prefix}-board-rows", "children"), Output(f"{prefix}-board-pager", "children"),
        Input("clock-tick", "n_intervals"), Input(f"{prefix}-board-data", "data"),
        State("wall-config", "data"),
    )


def refresh_interval(prefix: str) -> dcc.Interval:
    """A page's one timed refresh; `align_refresh(prefix)` keeps it on the server's beat."""
    return dcc.Interval(id=f"{prefix}-refresh", interval=refresh_ms())


def align_refresh(prefix: str) -> None:
    """Register the clientside callback that fires `prefix`'s refresh just after each
    snapshot boundary of the server, so a change reaches the screen within one interval."""
    clientside_callback(
        ClientsideFunction(namespace="floorlink", function_name="alignRefresh"),
        Output(f"{prefix}-refresh", "interval"),
        Input(f"{prefix}-refresh", "n_intervals"), State("wall-status", "data"),
        State("wall-config", "data"),
    )


def rendered(value) -> dict:
    """A panel as sent to screens (plain JSON, the same for every screen of a scope and
    language, so it can be rendered once and cached) with the digest screens compare.

    Compared as rendered, so a figure that moves without changing on screen (a dwell of
    45.2 then 45.3 hours, both shown as 45 h) sends nothing."""
    text = json.dumps(value, cls=PlotlyJSONEncoder, sort_keys=True)
    return {"value": json.loads(text), "digest": hashlib.sha1(text.encode()).hexdigest()[:16]}


def changed(sent: dict, name: str, part: dict) -> bool:
    """Whether a rendered part differs from what this screen was last sent; records it if so."""
    if sent.get(name) == part["digest"]:
        return False
    sent[name] = part["digest"]
    return True


def status_ok(shown: dict) -> dict:
    """The shell's freshness record after a good refresh (of a snapshot or a view, by the
    instant of its data), with the server's clock."""
    return {"state": "ok", "last_good_ms": shown["as_of_ms"], "build_id": BUILD_ID,
            "server_ms": int(time.time() * 1000)}


def status_down(status: dict | None) -> dict:
    """The shell's freshness record when the data source failed: last good time kept."""
    return dict(status or {}, state="db_down", build_id=BUILD_ID)
