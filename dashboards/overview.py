"""The wall's default page: tiles, the live issue board, the department scoreboard,
material alerts and the 30-day response trend, for one scope (site, line or department)."""
from __future__ import annotations

import logging

import dash
from dash import (ClientsideFunction, Input, Output, Patch, State, callback, clientside_callback,
                  dcc, html, no_update)
from flask import current_app

from dashboards import _ui
from data.words import bilingual_name, format_minutes, format_percent, language, t
from data import settings, theme
from data.wall import screens

dash.register_page(__name__, path="/", name="overview", title="FloorLink")

log = logging.getLogger(__name__)

# Tiles where a higher figure is worse; the others are ratios, where lower is worse.
HIGHER_IS_WORSE = ("open", "overdue", "median_response_min")
TILES = ("open", "overdue", "median_response_min", "response_sla_compliance", "resolution_rate",
         "plan_attainment")
_TILE_LABELS = {"open": "tile_open", "overdue": "tile_overdue",
                "median_response_min": "tile_median_response",
                "response_sla_compliance": "tile_response_sla",
                "resolution_rate": "tile_resolution_rate",
                "plan_attainment": "tile_plan_attainment"}


def layout(lang=None, dept=None, line=None, **_other_query_params):
    lang = language(lang)
    scope = {"lang": lang, "dept": dept or None, "line": line or None}
    return html.Div(className="wall-page overview", children=[
        _ui.refresh_interval("overview"),
        dcc.Store(id="overview-scope", data=scope),
        dcc.Store(id="overview-sent", data={}),
        dcc.Store(id="overview-board-data"),
        dcc.Store(id="overview-trend-data"),
        html.Section(id="overview-tiles", className="tiles",
                     children=[_ui.tile(f"overview-tile-{k}", t(_TILE_LABELS[k], lang)) for k in TILES]),
        html.Div(className="overview-grid", children=[
            _ui.issue_board("overview", lang),
            _ui.panel(t("scoreboard_title", lang), html.Div(id="overview-scoreboard", className="rows"),
                      aside=html.Span(id="overview-star", className="star"),
                      id="overview-scoreboard-panel"),
            _ui.panel(t("trend_title", lang), dcc.Graph(
                id="overview-trend", className="trend-graph", responsive=True, figure=_ui.blank_figure(),
                config={"displayModeBar": False, "staticPlot": True}), id="overview-trend-panel",
                aside=html.Span(t("trend_goal", lang).format(goal=f"{_goal_min():.0f}"), className="goal")),
            _ui.panel(t("material_title", lang), html.Div(id="overview-material", className="rows"),
                      id="overview-material-panel"),
        ]),
    ])


def _goal_min() -> float:
    return settings.get_float("RESPONSE_GOAL_MIN")


def _level(name: str, value: float | None) -> str | None:
    return theme.level(name, value)


def _tile_text(name: str, value, lang: str) -> str:
    if name in ("open", "overdue"):
        return f"{value:d}"
    if name == "median_response_min":
        return format_minutes(value, lang)
    return format_percent(value, lang)


def _tile_children(name: str, figures: dict, lang: str, goal_min: float):
    value, yesterday = figures["value"], figures["yesterday"]
    foot = []
    if value is not None and yesterday is not None:
        # Compared as shown: whole counts, whole minutes, whole percentage points.
        ratio = name not in HIGHER_IS_WORSE
        scale = 100 if ratio else 1
        change = round(value * scale) - round(yesterday * scale)
        worse = change < 0 if ratio else change > 0
        unit = " pt" if ratio else f" {t('minutes_short', lang)}" if name == "median_response_min" else ""
        shown = f"{change:+d}{unit}"
        arrow = "▲" if change > 0 else "▼" if change < 0 else "="
        foot.append(html.Span(f"{arrow} {shown} {t('vs_yesterday', lang)}",
                              className="delta " + ("" if change == 0 else "worse" if worse else "better")))
    else:
        foot.append(html.Span(f"{t('vs_yesterday', lang)} {t('no_value', lang)}"))
    if name == "median_response_min":
        foot.append(html.Span(f"{t('goal', lang)} {goal_min:.0f} {t('minutes_short', lang)}"))
    return _ui.tile_content(t(_TILE_LABELS[name], lang), _tile_text(name, value, lang), foot,
                            _level(name, value))


def _scoreboard(snapshot: dict, lang: str) -> list:
    head = _ui.grid_row([t("department", lang), t("col_open", lang), t("col_median_response", lang),
                         t("col_sla", lang), t("col_ping_pong", lang)], "score-row score-head")
    rows = [head]
    for d in snapshot["scoreboard"]:
        sla = d["response_sla_compliance"]
        sla_class = "num " + (theme.level("response_sla_compliance", sla) or "")
        rows.append(_ui.grid_row([
            ("★ " if d["department_code"] == snapshot["star"] else "") + bilingual_name(d, lang),
            html.Span(str(d["open"]), className="num bad" if d["overdue"] else "num"),
            html.Span(format_minutes(d["median_response_min"], lang), className="num"),
            html.Span(format_percent(sla, lang), className=sla_class),
            html.Span(str(d["ping_pong"]), className="num warn" if d["ping_pong"] else "num"),
        ], "score-row"))
    return rows


def _star(snapshot: dict, lang: str) -> str:
    star = snapshot["star"]
    if not star:
        return ""
    return f"★ {t('collaboration_star', lang)}: " \
        f"{bilingual_name(snapshot['names']['departments'][star], lang)}"


def _material(snapshot: dict, lang: str) -> list:
    rows = []
    for s in snapshot["shortages"]:
        rows.append(_ui.grid_row([html.Span(t("shortage", lang), className="tag shortage"),
                                  f"{s['location_name']} · {s['title']}",
                                  html.Span(format_minutes(s["waiting_min"], lang), className="num")],
                                 "alert-row"))
    for s in snapshot["stagnant"]:
        rows.append(_ui.grid_row([
            html.Span(t("stagnant", lang), className="tag stagnant"),
            f"{s['location_name']} · {s['material_name']} · {s['lot']}",
            html.Span(f"{format_minutes(s['dwell_min'], lang)} / {format_minutes(s['limit_min'], lang)}",
                      className="num")], "alert-row"))
    if not rows:
        return [html.Div(t("no_material_alerts", lang), className="calm")]
    return rows


def _trend(snapshot: dict, lang: str, goal_min: float) -> dict:
    trend = snapshot["trend"]
    colors = ["#22c55e" if v is not None and v <= goal_min else "#f5b301" if v is not None and
              v <= 2 * goal_min else "#ff4d4f" for v in trend["median_min"]]
    return {"days": trend["days"], "median_min": trend["median_min"], "colors": colors,
            "goal_min": goal_min}


@callback(
    Output("overview-tiles", "children"),
    Output("overview-board-data", "data"),
    Output("overview-scoreboard", "children"),
    Output("overview-star", "children"),
    Output("overview-material", "children"),
    Output("overview-trend-data", "data"),
    Output("overview-sent", "data"),
    Output("wall-status", "data", allow_duplicate=True),
    Input("overview-refresh", "n_intervals"),
    State("overview-scope", "data"),
    State("overview-sent", "data"),
    State("wall-status", "data"),
    prevent_initial_call="initial_duplicate",
)
def refresh(_n, scope, sent, status):
    """Read the shared view of this scope and language; send only the parts that changed."""
    database_url = current_app.config["FLOORLINK_DATABASE_URL"]
    try:
        view = screens.view_for_screen(
            "overview", database_url,
            lambda: screens.overview_for_screen(database_url, department=scope["dept"],
                                                line=scope["line"]),
            lambda snapshot: _render(snapshot, scope["lang"]), **scope)
    except screens.SourceUnavailable:
        log.warning("wall refresh failed: data source unavailable", exc_info=True)
        return (no_update,) * 7 + (_ui.status_down(status),)
    sent = dict(sent or {})
    tiles = Patch()
    tiles_changed = False
    for i, name in enumerate(TILES):
        tile = view["tiles"][name]
        if _ui.changed(sent, f"tile:{name}", tile):
            tiles[i]["props"]["children"] = tile["value"]["children"]
            tiles[i]["props"]["className"] = tile["value"]["className"]
            tiles_changed = True
    out = {name: part["value"] if _ui.changed(sent, name, part) else no_update
           for name, part in view["panels"].items()}
    return (tiles if tiles_changed else no_update, out["board"], out["scoreboard"], out["star"],
            out["material"], out["trend"], sent, _ui.status_ok(view))


def _render(snapshot: dict, lang: str) -> dict:
    """Every part of the page for one language, as the screens are sent it."""
    goal = snapshot["goal_min"]
    tiles = {}
    for name in TILES:
        children, class_name = _tile_children(name, snapshot["tiles"][name], lang, goal)
        tiles[name] = _ui.rendered({"children": children, "className": class_name})
    panels = {"board": _ui.board_data(snapshot, lang), "scoreboard": _scoreboard(snapshot, lang),
              "star": _star(snapshot, lang), "material": _material(snapshot, lang),
              "trend": _trend(snapshot, lang, goal)}
    return {"tiles": tiles, "panels": {name: _ui.rendered(panel) for name, panel in panels.items()}}


_ui.board_ticker("overview")

clientside_callback(
    ClientsideFunction(namespace="floorlink", function_name="trendFigure"),
    Output("overview-trend", "figure"),
    Input("overview-trend-data", "data"), State("wall-config", "data"),
)

_ui.align_refresh("overview")
