"""An address the wall has no page for: said in the screen's language, with links to the
wall's pages. A desk page: it scrolls and uses desk-sized type (assets/wall.css)."""
from __future__ import annotations

import dash
from dash import dcc, html

from dashboards import _ui
from data.words import language, t

# Dash Pages shows the module named not_found_404 for every unknown address.
dash.register_page(__name__, path="/404", name="not_found_404", title="FloorLink · 404", desk=True)


def layout(lang=None, **_other_query_params):
    lang = language(lang)
    return html.Div(className="desk-page not-found", children=[
        html.H1(f"404 · {t('not_found_title', lang)}"),
        html.P(t("not_found_text", lang)),
        html.Ul([html.Li(dcc.Link(t(f"page_{page['name']}", lang), href=f"{page['path']}?lang={lang}"))
                 for page in _ui.wall_pages()]),
    ])
