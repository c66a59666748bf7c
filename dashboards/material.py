"""Material on one screen: lots per stage with the stagnant ones in amber, the stagnant lots
themselves, open shortages and the week's turnover."""
from __future__ import annotations

import dash
from dash import Output, html

from dashboards import _ui
from data.words import format_count, format_duration, t
from data import figures, theme
from data.wall import screens

# Material is followed per site or line: a ?dept= screen shows it whole, and its header says so.
dash.register_page(__name__, path="/material", name="material", title="FloorLink · 物料看板",
                   follows=("line",))

TILES = ("stagnant_lots", "shortages", "lots_at_iqc", "turnover_week")
# Tiles coloured by the wall's one rule; the others have no rule and stay neutral.
_RULED = ("stagnant_lots", "shortages")
STAGNANT_HEAD = ("col_location", "col_material", "col_lot", "col_qty", "col_dwell")


def layout(lang=None, dept=None, line=None, at=None, **_other_query_params):
    scope = _ui.page_scope(lang, dept, line, at)
    lang = scope["lang"]
    return _ui.wall_page("material", scope, "material", [
        html.Section(id="material-tiles", className="tiles tiles-4",
                     children=[_ui.tile(f"material-tile-{k}", t(f"tile_{k}", lang)) for k in TILES]),
        html.Div(className="material-grid", children=[
            _ui.panel(t("stages_title", lang), _ui.chart("material-stages"), id="material-stages-panel"),
            _ui.panel(t("stagnant_title", lang),
                      _ui.row_table("material-stagnant", [t(k, lang) for k in STAGNANT_HEAD],
                                    "lot-table"),
                      aside=_ui.pager("material-stagnant"), id="material-stagnant-panel"),
            _ui.panel(t("shortages_title", lang), _ui.row_table("material-shortages", None, "alert-table"),
                      aside=_ui.pager("material-shortages"), id="material-shortages-panel"),
        ]),
    ])


def _tile_value(name: str, value, lang: str):
    if value is None:
        return t("no_value", lang)
    if name == "turnover_week":
        return [f"{value:,.2f}", html.Span(t("turnover_unit", lang), className="unit")]
    return format_count(value)


def _green(snapshot: dict) -> bool:
    """Whether a good level may show green: not while the plant has no new data, nor on a
    page without material data at all (0 stagnant lots of no lots is no good news)."""
    return not (snapshot.get("quiet") or snapshot.get("no_data"))


def _tiles(snapshot: dict, lang: str) -> list:
    figures_now = snapshot["tiles"]
    return [_ui.tile_content(f"material-tile-{name}", t(f"tile_{name}", lang),
                             _tile_value(name, figures_now[name], lang), "",
                             _ui.shown_level(name, figures_now[name], green=_green(snapshot))
                             if name in _RULED else None)
            for name in TILES]


def _stagnant(snapshot: dict, lang: str) -> dict:
    """Every stuck lot, longest first, paged; its dwell in amber as on every page."""
    rows = [_ui.grid_row([
        s["location_name"], html.Span(s["material_name"], className="give"), s["lot"],
        html.Span(format_count(s["qty"]), className="num"),
        html.Span(_ui.dwell(s, lang), className=f"num {theme.WARN}")], "row")
        for s in snapshot["stagnant"]]
    return _ui.list_data(rows, lang, empty=t("no_stagnant", lang),
                         total=snapshot.get("stagnant_total"), empty_class=_ui.calm_class(_green(snapshot)))


def _shortages(snapshot: dict, lang: str) -> dict:
    """Every open shortage, longest waiting first, paged."""
    rows = [_ui.alert_row("shortage", lang, s["location_name"], s["title"], s["id"],
                          format_duration(s["waiting_min"], lang)) for s in snapshot["shortages"]]
    return _ui.list_data(rows, lang, empty=t("no_shortages", lang),
                         total=snapshot.get("shortages_total"), empty_class=_ui.calm_class(_green(snapshot)))


def _stages(snapshot: dict, lang: str) -> dict:
    return figures.lots_by_stage(snapshot["stages"], lang)


# The page's parts, named as the snapshot names them; `_ui.wall_refresh` serves them.
PARTS = {
    "tiles": _ui.Part(Output("material-tiles", "children"), _tiles),
    "stagnant": _ui.Part(Output("material-stagnant-data", "data"), _stagnant),
    "shortages": _ui.Part(Output("material-shortages-data", "data"), _shortages),
    "stages": _ui.Part(Output("material-stages-data", "data"), _stages),
}

refresh = _ui.wall_refresh("material", PARTS, screens.material_for_screen)

_ui.row_pager("material-stagnant")
_ui.row_pager("material-shortages")
_ui.scaled_chart("material-stages")
