"""The frame of the desk pages (the explorer, an issue's trace): read at a desk monitor or on a
meeting-room projector, so unlike the wall it scrolls, uses desk-sized type (assets/desk.css)
and has no refresh clock or stale banner of its own; the wall's colours all the same.

The app's shell (dashboards/_ui.py `app_shell`) wraps every page; desk.css hides the wall's
header around a `.desk-frame`, and the frame brings its own header instead.
"""
from __future__ import annotations

from dash import Input, Output, clientside_callback, dcc, html

from data.words import LANGUAGE_NAMES, LANGUAGES, t

# The desk pages' navigation: (page, path, word); the last one leads back to the wall.
DESK_NAV = (("explorer", "/explorer", "desk_nav_explorer"), ("review", "/review", "desk_nav_review"),
            ("wall", "/", "desk_nav_wall"))


def desk_page(page: str, lang: str, title: str, children: list, *, breadcrumb=None) -> html.Div:
    """A desk page: header (product, desk navigation, language switch), the page's title,
    the breadcrumb (when given) and `children`. `page` marks the page's own link in the
    navigation; a callback may fill `desk-breadcrumb` later."""
    nav = html.Nav(className="desk-nav", **{"aria-label": t("desk_nav_label", lang)}, children=[
        dcc.Link(t(word, lang), href=f"{path}?lang={lang}",
                 className="desk-nav-link active" if name == page else "desk-nav-link")
        for name, path, word in DESK_NAV])
    switch = html.Div(className="desk-lang", **{"aria-label": t("desk_language_label", lang)},
                      children=[dcc.Link(LANGUAGE_NAMES[code], id=f"desk-lang-{code}",
                                         href=f"?lang={code}",
                                         className="active" if code == lang else "")
                                for code in LANGUAGES])
    header = html.Header(className="desk-header", children=[
        html.Div(className="desk-brand", children=[html.Span("▣", className="mark"),
                                                   html.Span(f"FloorLink · {t('app_title', lang)}")]),
        nav, html.Div(className="desk-spacer"), switch])
    crumbs = html.Nav(id="desk-breadcrumb", className="desk-breadcrumb",
                      **{"aria-label": t("desk_breadcrumb_label", lang)},
                      children=breadcrumb if breadcrumb is not None else [])
    return html.Div(className=f"desk-page desk-frame desk-{page} lang-{lang}", lang=lang, children=[
        header,
        html.Main(className="desk-main", children=[
            html.H1(title, id="desk-title", className="desk-title"), crumbs, *children]),
    ])


# The language switch keeps the rest of the address (a desk page keeps its filters there).
clientside_callback(
    """function (search, pathname) {
        const to = (lang) => {
            const params = new URLSearchParams(search || "");
            params.set("lang", lang);
            return (pathname || "/") + "?" + params.toString();
        };
        return [to("zh"), to("en")];
    }""",
    Output("desk-lang-zh", "href"), Output("desk-lang-en", "href"),
    Input("url", "search"), Input("url", "pathname"),
)
