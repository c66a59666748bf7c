"""The issue board on a whole screen: every open issue, paged by itself, for a rotation
slot or a department's own TV."""
from __future__ import annotations

import logging

import dash
from dash import Input, Output, State, callback, dcc, html, no_update
from flask import current_app

from dashboards import _ui
from data.words import language
from data.wall import screens

dash.register_page(__name__, path="/issues", name="issues", title="FloorLink · 问题看板")

log = logging.getLogger(__name__)


def layout(lang=None, dept=None, line=None, **_other_query_params):
    scope = {"lang": language(lang), "dept": dept or None, "line": line or None}
    return html.Div(className="wall-page issues", children=[
        _ui.refresh_interval("issues"),
        dcc.Store(id="issues-scope", data=scope),
        dcc.Store(id="issues-board-data"),
        _ui.issue_board("issues", scope["lang"]),
    ])


@callback(
    Output("issues-board-data", "data"),
    Output("wall-status", "data", allow_duplicate=True),
    Input("issues-refresh", "n_intervals"),
    State("issues-scope", "data"), State("issues-board-data", "data"), State("wall-status", "data"),
    prevent_initial_call="initial_duplicate",
)
def refresh(_n, scope, shown, status):
    try:
        snapshot = screens.overview_for_screen(current_app.config["FLOORLINK_DATABASE_URL"],
                                            department=scope["dept"], line=scope["line"])
    except screens.SourceUnavailable:
        log.warning("issue board refresh failed: data source unavailable", exc_info=True)
        return no_update, _ui.status_down(status)
    board = _ui.board_data(snapshot, scope["lang"])
    return (no_update if board == shown else board), _ui.status_ok(snapshot)


_ui.board_ticker("issues")

_ui.align_refresh("issues")
