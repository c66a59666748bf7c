"""The wall's default page: tiles, the live issue board, the department scoreboard,
material alerts and the 30-day response trend, for one scope (site, line or department)."""
from __future__ import annotations

import dash
from dash import Output, dcc, html

from dashboards import _ui
from data.words import (bilingual_name, format_count, format_duration, format_minutes,
                        format_percent, t)
from data import figures, settings
from data.wall import screens

dash.register_page(__name__, path="/", name="overview", title="FloorLink")

# Tiles where a higher figure is worse; the others are ratios, where lower is worse.
HIGHER_IS_WORSE = ("open", "overdue", "median_response_min")
TILES = ("open", "overdue", "median_response_min", "response_sla_compliance", "resolution_rate",
         "plan_attainment")
_TILE_LABELS = {"open": "tile_open", "overdue": "tile_overdue",
                "median_response_min": "tile_median_response",
                "response_sla_compliance": "tile_response_sla",
                "resolution_rate": "tile_resolution_rate",
                "plan_attainment": "tile_plan_attainment"}
SCOREBOARD_HEAD = ("department", "col_open", "col_overdue", "col_median_response", "col_sla",
                   "col_ping_pong")


def layout(lang=None, dept=None, line=None, at=None, **_other_query_params):
    scope = _ui.page_scope(lang, dept, line, at)
    lang = scope["lang"]
    return _ui.wall_page("overview", scope, "overview", [
        dcc.Store(id="overview-board-data"),
        html.Section(id="overview-tiles", className="tiles",
                     children=[_ui.tile(f"overview-tile-{k}", t(_TILE_LABELS[k], lang)) for k in TILES]),
        html.Div(className="overview-grid", children=[
            _ui.issue_board("overview", lang, cards=True),
            _ui.panel(t("scoreboard_title", lang), html.Div(className="score-body", children=[
                _ui.row_table("overview-scoreboard", [t(k, lang) for k in SCOREBOARD_HEAD],
                              "score-table", shares_with="overview-star"),
                html.Div(id="overview-star", className="star-line")]),
                aside=_ui.pager("overview-scoreboard"), id="overview-scoreboard-panel"),
            _ui.panel(t("trend_title", lang), _ui.chart("overview-trend"), id="overview-trend-panel",
                      aside=html.Span(t("trend_goal", lang).format(goal=f"{_goal_min():.0f}"),
                                      className="goal")),
            _ui.panel(t("material_title", lang), _ui.row_table("overview-material", None, "alert-table"),
                      aside=_ui.pager("overview-material"), id="overview-material-panel"),
        ]),
    ])


def _goal_min() -> float:
    return settings.get_float("RESPONSE_GOAL_MIN")


def _tile_text(name: str, value, lang: str) -> str:
    if value is None:
        return t("no_value", lang)
    if name in ("open", "overdue"):
        return format_count(value)
    if name == "median_response_min":
        return format_minutes(value, lang)
    return format_percent(value, lang)


def _change(name: str, value, yesterday, lang: str) -> list:
    """How the figure moved since the same time yesterday, compared as shown: whole counts,
    whole minutes, whole percentage points; green when better, red when worse."""
    basis = html.Span(t("vs_yesterday", lang), className="basis")
    if value is None or yesterday is None:
        return [html.Span(t("no_value", lang), className="delta"), " ", basis]
    ratio = name not in HIGHER_IS_WORSE
    scale = 100 if ratio else 1
    change = round(value * scale) - round(yesterday * scale)
    worse = change < 0 if ratio else change > 0
    unit = " pt" if ratio else f" {t('minutes_short', lang)}" if name == "median_response_min" else ""
    arrow = "▲" if change > 0 else "▼" if change < 0 else "="
    shown = f"{change:+,d}" if change else "0"
    return [html.Span(f"{arrow} {shown}{unit}",
                      className="delta" + ("" if change == 0 else " worse" if worse else " better")),
            " ", basis]


def _tiles(snapshot: dict, lang: str) -> list:
    """Each tile in the colour of its level, without green while the plant has no new data."""
    green = not snapshot.get("quiet")
    tiles = []
    for name in TILES:
        value, yesterday = snapshot["tiles"][name]["value"], snapshot["tiles"][name]["yesterday"]
        tiles.append(_ui.tile_content(f"overview-tile-{name}", t(_TILE_LABELS[name], lang),
                                      _tile_text(name, value, lang),
                                      _change(name, value, yesterday, lang),
                                      _ui.shown_level(name, value, green=green)))
    return tiles


def _scoreboard(snapshot: dict, lang: str) -> dict:
    """Every department of the scope, one row each; the browser pages them if they do not
    fit. Coloured cells follow the wall's one rule, as the tiles do, without green while the
    plant has no new data (the scoreboard is site-wide: a scope without data does not count)."""
    star = snapshot.get("star")
    green = not snapshot.get("quiet")
    rows = [_ui.grid_row([
        html.Span(("★ " if d["department_code"] == star else "") + bilingual_name(d, lang),
                  className="name"),
        html.Span(format_count(d["open"]), className="num"),
        _ui.level_span("overdue", d["overdue"], format_count(d["overdue"]), green=green),
        _ui.level_span("median_response_min", d["median_response_min"],
                       format_minutes(d["median_response_min"], lang), green=green),
        _ui.level_span("response_sla_compliance", d["response_sla_compliance"],
                       format_percent(d["response_sla_compliance"], lang), green=green),
        html.Span(format_count(d["ping_pong"]), className="num"),
    ], "row", key=d["department_code"]) for d in snapshot["scoreboard"]]
    return _ui.list_data(rows, lang, empty=t("no_data", lang), empty_class="empty")


def _star(snapshot: dict, lang: str) -> html.Span:
    """Who is the collaboration star and why: its median response, its SLA and its issues,
    and any department as fast that lost the tie-break."""
    star = snapshot.get("star")
    if not star:
        return html.Span(t("no_star", lang), className="no-star")
    names = snapshot["names"]["departments"]
    reason = snapshot.get("star_reason") or next(
        d for d in snapshot["scoreboard"] if d["department_code"] == star)
    text = t("star_line", lang).format(
        name=bilingual_name(names.get(star, {}), lang) or star,
        median=format_minutes(reason["median_response_min"], lang),
        sla=format_percent(reason["response_sla_compliance"], lang),
        raised=format_count(reason["raised"]))
    tied = [bilingual_name(names.get(code, {}), lang) or code for code in reason.get("tied_with") or ()]
    if tied:
        text += " · " + t("star_tied", lang).format(names=t("list_separator", lang).join(tied))
    # A long line wraps between its parts, never inside one ("5 / min").
    parts = text.split(" · ")
    return html.Span(className="star", children=[
        piece for i, part in enumerate(parts)
        for piece in ([" · "] if i else []) + [html.Span(part, className="part")]])


def _material(snapshot: dict, lang: str) -> dict:
    """Open shortages, then stagnant lots longest first: the first ones that fit, and how
    many more there are (the material page lists them all). None of them reads "flowing
    normally" in green; "no material alerts" while the plant has no new data; "no data"
    when the scope holds no lot at all."""
    shortages, stagnant = snapshot["shortages"], snapshot["stagnant"]
    rows = [_ui.alert_row("shortage", lang, s["location_name"], s["title"], s["id"],
                          format_duration(s["waiting_min"], lang)) for s in shortages] + \
           [_ui.alert_row("stagnant", lang, s["location_name"], s["material_name"], s["lot"],
                          _ui.dwell(s, lang)) for s in stagnant]
    total = snapshot.get("shortages_total", len(shortages)) + snapshot.get("stagnant_total", len(stagnant))
    empty, empty_class = ("no_data", "empty") if snapshot.get("no_material_data") else \
        ("no_material_alerts_quiet", "empty") if snapshot.get("quiet") else ("no_material_alerts", "calm")
    return _ui.list_data(rows, lang, empty=t(empty, lang), total=total, paged=False,
                         empty_class=empty_class)


def _trend(snapshot: dict, lang: str) -> dict:
    trend = snapshot["trend"]
    return figures.response_trend(trend["days"], trend["median_min"], snapshot["goal_min"], lang)


# The page's parts, named as the snapshot names them; `_ui.wall_refresh` serves them.
PARTS = {
    "tiles": _ui.Part(Output("overview-tiles", "children"), _tiles),
    "board": _ui.Part(Output("overview-board-data", "data"), _ui.board_data),
    "scoreboard": _ui.Part(Output("overview-scoreboard-data", "data"), _scoreboard),
    "star": _ui.Part(Output("overview-star", "children"), _star),
    "material": _ui.Part(Output("overview-material-data", "data"), _material),
    "trend": _ui.Part(Output("overview-trend-data", "data"), _trend),
}

refresh = _ui.wall_refresh("overview", PARTS, screens.overview_for_screen)

_ui.board_ticker("overview")
_ui.row_pager("overview-scoreboard")
_ui.row_pager("overview-material")
_ui.scaled_chart("overview-trend")
