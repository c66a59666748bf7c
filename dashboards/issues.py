"""The issue board on a whole screen: every open issue, paged by itself, for a rotation
slot or a department's own TV."""
from __future__ import annotations

import dash
from dash import Output, dcc

from dashboards import _ui
from data.wall import screens

dash.register_page(__name__, path="/issues", name="issues", title="FloorLink · 问题看板")


def layout(lang=None, dept=None, line=None, at=None, **_other_query_params):
    scope = _ui.page_scope(lang, dept, line, at)
    return _ui.wall_page("issues", scope, "issues", [
        dcc.Store(id="issues-board-data"),
        _ui.issue_board("issues", scope["lang"]),
    ])


# The page's parts, named as the snapshot names them; `_ui.wall_refresh` serves them.
PARTS = {"board": _ui.Part(Output("issues-board-data", "data"), _ui.board_data)}

refresh = _ui.wall_refresh("issues", PARTS, screens.overview_for_screen)

_ui.board_ticker("issues")
