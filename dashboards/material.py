"""Material on one screen: lots per stage with the stagnant ones in red, the stagnant lots
themselves, open shortages and the week's turnover."""
from __future__ import annotations

import logging

import dash
from dash import (ClientsideFunction, Input, Output, State, callback, clientside_callback, dcc,
                  html, no_update)
from flask import current_app

from dashboards import _ui
from data.words import format_minutes, language, t
from data.wall import screens

dash.register_page(__name__, path="/material", name="material", title="FloorLink · 物料看板")

log = logging.getLogger(__name__)

TILES = ("stagnant_lots", "shortages", "lots_at_iqc", "turnover_week")
MAX_ROWS = 10


def layout(lang=None, line=None, **_other_query_params):
    lang = language(lang)
    return html.Div(className="wall-page material", children=[
        _ui.refresh_interval("material"),
        dcc.Store(id="material-scope", data={"lang": lang, "line": line or None}),
        dcc.Store(id="material-stage-data"),
        dcc.Store(id="material-sent", data={}),
        html.Section(id="material-tiles", className="tiles tiles-4",
                     children=[_ui.tile(f"material-tile-{k}", t(f"tile_{k}", lang)) for k in TILES]),
        html.Div(className="material-grid", children=[
            _ui.panel(t("stages_title", lang), dcc.Graph(
                id="material-stages", className="trend-graph", responsive=True, figure=_ui.blank_figure(),
                config={"displayModeBar": False, "staticPlot": True}), id="material-stages-panel"),
            _ui.panel(t("stagnant_title", lang), html.Div(id="material-stagnant", className="rows"),
                      id="material-stagnant-panel"),
            _ui.panel(t("shortages_title", lang), html.Div(id="material-shortages", className="rows"),
                      id="material-shortages-panel"),
        ]),
    ])


def _tiles(snapshot: dict, lang: str) -> list:
    figures = snapshot["tiles"]
    tiles = []
    for name in TILES:
        value = figures[name]
        if name == "turnover_week":
            text = t("no_value", lang) if value is None else f"{value:.2f}"
            level = None
        else:
            text = str(value)
            level = "ok" if value == 0 else "warn" if name == "lots_at_iqc" else "bad"
        children, class_name = _ui.tile_content(t(f"tile_{name}", lang), text, "", level)
        tiles.append(html.Div(id=f"material-tile-{name}", className=class_name, children=children))
    return tiles


def _stagnant(snapshot: dict, lang: str) -> list:
    head = _ui.grid_row([t("col_location", lang), t("col_material", lang), t("col_lot", lang),
                         t("col_qty", lang), t("col_dwell", lang)], "lot-row score-head")
    if not snapshot["stagnant"]:
        return [head, html.Div(t("no_material_alerts", lang), className="calm")]
    return [head] + [_ui.grid_row([
        s["location_name"], s["material_name"], s["lot"], html.Span(f"{s['qty']:g}", className="num"),
        html.Span(f"{format_minutes(s['dwell_min'], lang)} / {format_minutes(s['limit_min'], lang)}",
                  className="num bad")], "lot-row") for s in snapshot["stagnant"][:MAX_ROWS]]


def _shortages(snapshot: dict, lang: str) -> list:
    if not snapshot["shortages"]:
        return [html.Div(t("no_shortages", lang), className="calm")]
    return [_ui.grid_row([html.Span(t("shortage", lang), className="tag shortage"),
                          f"{s['location_name']} · {s['title']}",
                          html.Span(format_minutes(s["waiting_min"], lang), className="num")],
                         "alert-row") for s in snapshot["shortages"][:MAX_ROWS]]


def _stage_data(snapshot: dict, lang: str) -> dict:
    stages = snapshot["stages"]
    return {"labels": [t(f"stage_{s['kind']}", lang) for s in stages],
            "series": [{"name": t("in_flow", lang), "color": "#38bdf8",
                        "values": [s["lots"] - s["stagnant"] for s in stages]},
                       {"name": t("stagnant", lang), "color": "#ff4d4f",
                        "values": [s["stagnant"] for s in stages]}]}


@callback(
    Output("material-tiles", "children"), Output("material-stagnant", "children"),
    Output("material-shortages", "children"), Output("material-stage-data", "data"),
    Output("material-sent", "data"), Output("wall-status", "data", allow_duplicate=True),
    Input("material-refresh", "n_intervals"),
    State("material-scope", "data"), State("material-sent", "data"), State("wall-status", "data"),
    prevent_initial_call="initial_duplicate",
)
def refresh(_n, scope, sent, status):
    """Read the shared snapshot and send only the panels whose content changed."""
    lang = scope["lang"]
    try:
        snapshot = screens.material_for_screen(current_app.config["FLOORLINK_DATABASE_URL"],
                                            line=scope["line"])
    except screens.SourceUnavailable:
        log.warning("material refresh failed: data source unavailable", exc_info=True)
        return (no_update,) * 5 + (_ui.status_down(status),)
    sent = dict(sent or {})
    panels = [_ui.rendered(panel) for panel in (_tiles(snapshot, lang), _stagnant(snapshot, lang),
                                                _shortages(snapshot, lang), _stage_data(snapshot, lang))]
    out = [panel["value"] if _ui.changed(sent, str(i), panel) else no_update
           for i, panel in enumerate(panels)]
    return (*out, sent, _ui.status_ok(snapshot))


clientside_callback(
    ClientsideFunction(namespace="floorlink", function_name="stackedBars"),
    Output("material-stages", "figure"),
    Input("material-stage-data", "data"), State("wall-config", "data"),
)

_ui.align_refresh("material")
