"""The bottleneck explorer, /explorer: where work gets stuck, who holds it, and the issues
behind every mark, for a desk monitor or a meeting-room projector.

The address is the view (data/explorer/state.py): the page is drawn from it, and every
change (a filter, a click on a mark, a removed breadcrumb) goes to a new address, which the
browser keeps in its history, so back and forward, reload and a pasted link all show the
view they name. Each panel is its own callback over one view read once and shared
(data/explorer/view.py); the issue list is paged, sorted and filtered on the server.
"""
from __future__ import annotations

import logging
import math
from dataclasses import replace
from datetime import datetime
from urllib.parse import quote, urlencode

import dash
import dash_ag_grid as dag
import pandas as pd
from dash import ALL, Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update
from flask import current_app

from dashboards import _desk
from data import kpis, timezones
from data.exports import csv_bytes, xlsx_bytes
from data.analysis import ageing as ageing_rules
from data.explorer import grid, state as explorer_state, view as explorer_view
from data.explorer.figures import Names, bucket_label, empty, mark_at, weekday_names
from data.explorer.state import FILTER_KEYS, NO_VALUE, Mark, Notice, State as ViewState
from data.words import t

log = logging.getLogger(__name__)

dash.register_page(__name__, path="/explorer", name="explorer",
                   title="FloorLink · 瓶颈分析 Explorer", desk=True)

# The panels in the order of the page, each with its place (the CSS class of its width).
PANEL_PLACES = (("flow", "wide"), ("matrix", "left"), ("pairs", "right"), ("held", "wide"),
                ("heat_raised", "half"), ("heat_response", "half"), ("pareto", "half"),
                ("wow", "half"), ("ageing", "half"), ("unresolved", "half"), ("xmr", "wide"))
# Each chart's height in pixels; the hand-off flow needs room for its hops.
PANEL_HEIGHT = 440
PANEL_HEIGHTS = {"flow": 580, "held": 480}
GRAPH_CONFIG = {"displaylogo": False, "responsive": True,
                "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d", "zoom2d", "pan2d",
                                           "zoomIn2d", "zoomOut2d"]}
LIST_PAGE_ROWS = 50
# The issue list's column widths in pixels (the title takes the rest).
LIST_WIDTHS = {"id": 170, "raised": 150, "type": 175, "severity": 110, "department": 160,
               "holder": 160, "location": 130, "line": 90, "status": 110, "response_min": 125,
               "resolution_min": 135, "handoffs": 115, "returns": 105, "cause": 170}
TIME_INPUTS = ("since", "until", "at")


def _tz():
    return timezones.site_zone()


def _database_url() -> str:
    return current_app.config["FLOORLINK_DATABASE_URL"]


def _words(notice: Notice, lang: str) -> str:
    return t(notice.word, lang).format(**notice.values)


def _href(state: ViewState) -> str:
    return "/explorer" + explorer_state.to_query(state, _tz())


# ---- the page --------------------------------------------------------------------------

def layout(**params):
    tz = _tz()
    asked, notices = explorer_state.parse(params, tz)
    lang = asked.lang
    try:
        url = _database_url()
        window, resolved = explorer_state.resolve(
            asked, timezones.utc_now(), tz,
            explorer_view.shift_finder(url, asked.values("line")))
        reference = explorer_view.reference_for(url)
        causes = explorer_view.causes_for(url, window)
        asked, unknown = _known_values(asked, reference)
        notices += resolved + unknown
    except Exception:  # noqa: BLE001 - the page says the database failed; the log has why
        log.exception("the explorer could not read the plant")
        window, _ = explorer_state.resolve(asked, timezones.utc_now(), tz)
        reference, causes = explorer_view.NO_REFERENCE, []
        notices.append(Notice("db_unreachable"))
    store = {"query": explorer_state.to_query(asked, tz), "lang": lang,
             "since": window.since.isoformat(), "until": window.until.isoformat(),
             "as_of": window.as_of.isoformat(), "history_since": window.history_since.isoformat(),
             "preset": window.preset, "live": asked.at is None}
    return _desk.desk_page("explorer", lang, t("explorer_title", lang), breadcrumb=_breadcrumb(
        asked, reference, lang), children=[
        dcc.Location(id="explorer-nav", refresh="callback-nav"),
        dcc.Store(id="explorer-state", data=store),
        # The view this page was drawn for, in the page itself (a test waits for the next one).
        html.Div(id="explorer-page", hidden=True, **{"data-query": store["query"]}),
        html.Div(className="explorer-notices", children=[
            html.P(_words(n, lang), className="desk-note explorer-notice") for n in notices]),
        _controls(asked, window, reference, causes, lang, tz),
        html.P(id="explorer-summary", className="explorer-summary"),
        html.Div(className="explorer-panels", children=[
            html.Section(className=f"desk-panel explorer-panel {place}", id=f"explorer-panel-{panel}",
                         children=dcc.Graph(
                             id=f"explorer-{panel}", className="explorer-graph", config=GRAPH_CONFIG,
                             style={"height": f"{PANEL_HEIGHTS.get(panel, PANEL_HEIGHT)}px"},
                             figure=empty(t(f"explorer_panel_{panel}", lang), lang, "explorer_loading")))
            for panel, place in PANEL_PLACES]),
        _issue_list(lang, _trace_query(asked, lang)),
        html.Div(id="explorer-drill", className="explorer-drill"),
        dcc.Store(id="explorer-scrolled"),
    ])


def _known_values(asked: ViewState, reference: dict) -> tuple[ViewState, list[Notice]]:
    """The filters without the codes the plant does not have, each named in a notice."""
    known = {"department": set(reference["departments"]), "issue_type": set(reference["issue_types"]),
             "location": set(reference["locations"]), "line": set(reference["lines"]),
             "severity": set(reference["severities"])}
    notices = []
    for name, codes in known.items():
        values = asked.values(name)
        unknown = [v for v in values if v not in codes and not (v == NO_VALUE and name in ("line", "location"))]
        if unknown:
            notices.append(Notice("explorer_unknown_value", {
                "param": FILTER_KEYS[name], "value": ", ".join(explorer_state.shown(v) for v in unknown)}))
            asked = asked.with_values(name, [v for v in values if v not in unknown])
    return asked, notices


def _controls(asked: ViewState, window, reference: dict, causes: list[str], lang: str, tz) -> html.Div:
    names = Names(reference, lang)

    def options(name: str, codes) -> list[dict]:
        chosen = list(asked.values(name))
        values = list(dict.fromkeys([*codes, *chosen]))
        return [{"label": names.value(name, v), "value": v} for v in values]

    codes = {
        "department": list(reference["departments"]),
        "line": [*reference["lines"], NO_VALUE],
        "location": [*reference["locations"], NO_VALUE],
        "issue_type": list(reference["issue_types"]),
        "severity": reference["severities"],
        "cause": [*causes, NO_VALUE],
    }

    def typed(instant: datetime) -> str:
        return explorer_state.local_text(instant, tz).replace("T", " ")

    local = {"since": typed(window.since), "until": typed(window.until),
             "at": "" if asked.at is None else typed(asked.at)}
    return html.Div(className="explorer-controls desk-panel", children=[
        html.Div(className="explorer-control window", children=[
            html.Label(t("explorer_window", lang), htmlFor="explorer-window"),
            dcc.RadioItems(id="explorer-window", value=asked.window, inline=True,
                           className="explorer-presets",
                           options=[{"label": t(f"explorer_preset_{p}", lang), "value": p}
                                    for p in explorer_state.PRESETS])]),
        *[html.Div(className=f"explorer-control time {name}", children=[
            html.Label(t(f"explorer_{name}", lang), htmlFor=f"explorer-{name}"),
            dcc.Input(id=f"explorer-{name}", type="text", value=local[name], debounce=True,
                      placeholder=t("explorer_now" if name == "at" else "explorer_time_hint", lang),
                      className="explorer-time")]) for name in TIME_INPUTS],
        html.Div(id="explorer-input-error", className="explorer-input-error"),
        *[html.Div(className="explorer-control filter", children=[
            html.Label(t(f"explorer_dim_{name}", lang), htmlFor=f"explorer-filter-{name}"),
            dcc.Dropdown(id=f"explorer-filter-{name}", multi=True, value=list(asked.values(name)),
                         options=options(name, codes[name]), placeholder=t("explorer_all", lang),
                         className="explorer-dropdown")]) for name in FILTER_KEYS],
        html.Div(className="explorer-control by", children=[
            html.Label(t("explorer_by", lang), htmlFor="explorer-by"),
            dcc.Dropdown(id="explorer-by", value=asked.by, clearable=False,
                         options=[{"label": names.dimension(d), "value": d}
                                  for d in explorer_state.DIMENSIONS],
                         className="explorer-dropdown")]),
    ])


def _breadcrumb(asked: ViewState, reference: dict, lang: str) -> list:
    """One chip per filter value, mark and countermeasure, each with a link that removes it."""
    names = Names(reference, lang)
    chips = []

    def chip(kind: str, text: str, without: ViewState):
        chips.append(html.Span(className=f"desk-chip explorer-chip {kind}", children=[
            html.Span(text),
            dcc.Link("×", href=_href(without), className="explorer-chip-remove",
                     title=t("explorer_remove", lang))]))

    for name, values in asked.filters:
        for value in values:
            chip("filter", f"{names.dimension(name)}: {names.value(name, value)}",
                 asked.with_values(name, [v for v in values if v != value]))
    for mark in asked.marks:
        chip("mark", describe(mark, names),
             replace(asked, marks=tuple(m for m in asked.marks if m != mark)))
    for day in asked.countermeasures:
        chip("countermeasure", t("explorer_countermeasure_on", lang).format(day=day.isoformat()),
             replace(asked, countermeasures=tuple(d for d in asked.countermeasures if d != day)))
    return chips


def _trace_query(asked: ViewState, lang: str) -> str:
    """The query an issue's trace is opened with from this view: its language, and the
    instant the view is at when it is not live, so the trace shows the issue as it stood."""
    query = {"lang": lang}
    if asked.at is not None:
        query["at"] = explorer_state.local_text(asked.at, _tz())
    return urlencode(query)


def _issue_list(lang: str, trace_query: str) -> html.Section:
    columns = [{
        "field": field, "headerName": t(word, lang), "sortable": True,
        "filter": "agNumberColumnFilter" if field in explorer_view.NUMBER_COLUMNS else "agTextColumnFilter",
        "filterParams": {"buttons": ["reset"], "maxNumConditions": 1},
        **({"cellRenderer": "IssueLink", "cellRendererParams": {"query": trace_query}, "pinned": "left"}
           if field == "id" else {}),
        **({"flex": 1, "minWidth": 220} if field == "title" else {"width": LIST_WIDTHS.get(field, 110)}),
    } for field, word in explorer_view.LIST_COLUMNS]
    return html.Section(className="desk-panel explorer-list", id="explorer-list", children=[
        html.Div(className="explorer-list-head", children=[
            html.H2(t("explorer_list_title", lang)),
            html.Span(id="explorer-list-what", className="explorer-list-what"),
            html.Div(className="desk-spacer"),
            html.Button(t("explorer_export_csv", lang), id="explorer-export-csv", className="explorer-button"),
            html.Button(t("explorer_export_xlsx", lang), id="explorer-export-xlsx", className="explorer-button"),
        ]),
        dag.AgGrid(
            id="explorer-grid", columnDefs=columns, rowModelType="infinite",
            defaultColDef={"resizable": True, "suppressHeaderMenuButton": True,
                           "wrapHeaderText": True, "autoHeaderHeight": True},
            dashGridOptions={
                "pagination": True, "paginationPageSize": LIST_PAGE_ROWS,
                "paginationPageSizeSelector": False, "cacheBlockSize": LIST_PAGE_ROWS,
                "maxBlocksInCache": 20, "infiniteInitialRowCount": LIST_PAGE_ROWS,
                "rowHeight": 36, "headerHeight": 40, "suppressCellFocus": True,
                "localeText": {key: t(f"explorer_grid_{key}", lang) for key in GRID_WORDS},
                "theme": {"function": GRID_THEME}},
            style={"height": "640px", "width": "100%"}, className="explorer-grid"),
        dcc.Download(id="explorer-download"),
    ])


# The grid's own words (AG Grid's locale keys) that the list shows: paging and filters.
GRID_WORDS = ("page", "of", "to", "more", "firstPage", "lastPage", "nextPage", "previousPage",
              "noRowsToShow", "noMatchingRows", "loadingOoo", "filterOoo", "equals", "notEqual",
              "lessThan", "greaterThan", "lessThanOrEqual", "greaterThanOrEqual", "inRange",
              "inRangeStart", "inRangeEnd", "contains", "notContains", "startsWith", "endsWith",
              "blank", "notBlank", "andCondition", "orCondition", "resetFilter")
GRID_THEME = ("themeQuartz.withParams({backgroundColor: '#0f1a2f', foregroundColor: '#eef3fb', "
              "headerBackgroundColor: '#0a1426', borderColor: '#1d2b47', accentColor: '#38bdf8', "
              "oddRowBackgroundColor: '#122039', fontSize: 15, headerFontSize: 15, "
              "fontFamily: 'Noto Sans CJK SC, Noto Sans SC, Microsoft YaHei, sans-serif'})")


# ---- describing a mark ---------------------------------------------------------------------

def describe(mark: Mark, names: Names) -> str:
    """A mark in words: what the issues behind it have in common."""
    lang, key = names.lang, mark.key

    def department(code: str) -> str:
        return names.department(None if code in (NO_VALUE, "?") else code)

    def node(text: str) -> str:
        if text in ("resolved", "closed", "cancelled", "open"):
            return t(f"explorer_end_{text}", lang)
        code, _, hop = text.rpartition("·")
        return f"{department(code)}·{hop}"

    if mark.kind in ("dim", "week"):
        text = f"{names.dimension(key[0])}: {names.value(key[0], key[1])}" \
            if key[0] in explorer_state.DIMENSIONS else key[1]
        return text if mark.kind == "dim" else t("explorer_mark_week", lang).format(value=text)
    if mark.kind == "flow":
        return t("explorer_mark_flow", lang).format(source=node(key[0]), target=node(key[1]))
    if mark.kind == "node":
        return t("explorer_mark_node", lang).format(node=node(key[0]))
    if mark.kind == "matrix":
        return t("explorer_mark_matrix", lang).format(source=department(key[0]), target=department(key[1]))
    if mark.kind == "pair":
        return t("explorer_mark_pair", lang).format(a=department(key[0]), b=department(key[1]))
    if mark.kind == "held":
        hop = key[1]
        hop_text = t("explorer_hop_later" if hop == str(explorer_view.LAST_HOP_GROUP) else "explorer_hop_n",
                     lang).format(hop=hop)
        return t("explorer_mark_held", lang).format(department=department(key[0]), hop=hop_text)
    if mark.kind == "ageing":
        return t("explorer_mark_ageing", lang).format(bucket=_bucket_text(key[0], lang),
                                                       holder=department(key[1]))
    if mark.kind == "unresolved":
        return t("explorer_mark_unresolved", lang).format(week=key[0], hours=key[1])
    if mark.kind == "hour":
        days = weekday_names(lang)
        day = days[int(key[0]) - 1] if key[0].isdigit() and 1 <= int(key[0]) <= 7 else key[0]
        return t("explorer_mark_hour", lang).format(day=day, hour=key[1].zfill(2))
    if mark.kind == "day":
        return t("explorer_mark_day", lang).format(day=key[0])
    return t("explorer_mark_issue", lang).format(issue=key[0])


def _bucket_text(bucket: str, lang: str) -> str:
    edges = [0.0, *ageing_rules.AGE_BUCKETS_H, math.inf]
    if not bucket.isdigit() or int(bucket) >= len(edges) - 1:
        return bucket
    return bucket_label(edges[int(bucket)], edges[int(bucket) + 1], lang)


# ---- the view behind the page ----------------------------------------------------------------

# The view a page was drawn for, as its layout writes it (`explorer-state`): the type of each
# key the callbacks read.
STORE_KEYS = {"query": str, "lang": str, "since": str, "until": str, "as_of": str,
              "history_since": str, "preset": str, "live": bool}


def _check_store(store) -> None:
    """The view as the page sends it, else TypeError: a request made by hand is refused
    (app.py) before anything is read for it."""
    if not (isinstance(store, dict) and store.keys() >= STORE_KEYS.keys()
            and all(isinstance(store[key], kind) for key, kind in STORE_KEYS.items())):
        raise TypeError("the explorer's view is not what its page sends")


def _view_of(store: dict) -> tuple[explorer_view.View, ViewState]:
    tz = _tz()
    asked, _ = explorer_state.parse(store["query"], tz)
    window = explorer_state.Window(
        *(datetime.fromisoformat(store[k]) for k in ("since", "until", "as_of")), store["preset"],
        datetime.fromisoformat(store["history_since"]))
    view = explorer_view.view_for(_database_url(), window, dict(asked.filters), asked.marks, tz)
    return view, asked


def _panel_callback(panel: str) -> None:
    @callback(Output(f"explorer-{panel}", "figure"), Input("explorer-state", "data"))
    def draw(store):
        _check_store(store)
        lang = store["lang"]
        try:
            view, asked = _view_of(store)
            return view.figure(panel, lang, by=asked.by, countermeasures=asked.countermeasures)
        except Exception:  # noqa: BLE001 - one panel's failure must not blank the others
            log.exception("the explorer's %s panel failed", panel)
            return empty(t(f"explorer_panel_{panel}", lang), lang, "panel_failed")


for _panel, _place in PANEL_PLACES:
    _panel_callback(_panel)


@callback(Output("explorer-summary", "children"), Input("explorer-state", "data"))
def _summary(store):
    _check_store(store)
    lang, tz = store["lang"], _tz()
    try:
        view, asked = _view_of(store)
    except Exception:  # noqa: BLE001 - the panels say so too; the log has why
        log.exception("the explorer's view failed")
        return t("db_unreachable", lang)
    window = view.window

    def local(instant: datetime) -> str:
        return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M")

    parts = [t("explorer_summary_window", lang).format(since=local(window.since), until=local(window.until)),
             t("explorer_summary_as_of_now" if store["live"] else "explorer_summary_as_of",
               lang).format(at=local(window.as_of)),
             t("explorer_summary_counts", lang).format(
                 raised=f"{len(view.population):,}", open=f"{int(_open_count(view)):,}")]
    if view.left_out:
        parts.append(t("explorer_data_errors", lang).format(n=f"{view.left_out:,}"))
    children = [" · ".join(parts)]
    if store["live"]:
        pinned = replace(asked, at=window.as_of)
        children += [" · ", dcc.Link(t("explorer_pin", lang), href=_href(pinned), id="explorer-pin")]
    return children


def _open_count(view: explorer_view.View) -> int:
    return int(kpis.open_mask(view.frames.open_now, view.window.as_of).sum())


# ---- controls go to a new address -------------------------------------------------------------

@callback(
    Output("explorer-nav", "search"), Output("explorer-input-error", "children"),
    Input("explorer-window", "value"), *[Input(f"explorer-{n}", "value") for n in TIME_INPUTS],
    *[Input(f"explorer-filter-{n}", "value") for n in FILTER_KEYS], Input("explorer-by", "value"),
    State("explorer-state", "data"), prevent_initial_call=True)
def _navigate(preset, since_text, until_text, at_text, *rest):
    *filter_values, by, store = rest
    _check_store(store)
    tz, lang = _tz(), store["lang"]
    asked, _ = explorer_state.parse(store["query"], tz)
    changed = ctx.triggered_id
    times = {}
    for name, text in zip(TIME_INPUTS, (since_text, until_text, at_text)):
        text = (text or "").strip()
        if not text:
            times[name] = None
            continue
        try:
            times[name] = timezones.parse_instant(text, tz)
        except ValueError:
            return no_update, t("explorer_time_invalid", lang).format(
                field=t(f"explorer_{name}", lang), value=explorer_state.shown(text))
    new = asked
    if changed == "explorer-window":
        custom = preset == "custom"
        new = replace(asked, window=preset,
                           since=datetime.fromisoformat(store["since"]) if custom else None,
                           until=datetime.fromisoformat(store["until"]) if custom else None)
    elif changed in ("explorer-since", "explorer-until"):
        if times["since"] is None or times["until"] is None:
            return no_update, ""
        new = replace(asked, window="custom", since=times["since"], until=times["until"])
    elif changed == "explorer-at":
        new = replace(asked, at=times["at"])
    elif changed == "explorer-by":
        new = replace(asked, by=by)
    else:
        for name, values in zip(FILTER_KEYS, filter_values):
            if changed == f"explorer-filter-{name}":
                new = asked.with_values(name, values or [])
    query = explorer_state.to_query(new, tz)
    return (no_update if query == store["query"] else query), ""


# ---- one drill grammar on every mark -------------------------------------------------------------

@callback(Output("explorer-drill", "children"),
          *[Input(f"explorer-{panel}", "clickData") for panel, _ in PANEL_PLACES],
          Input({"type": "explorer-drill-close", "index": ALL}, "n_clicks"),
          State("explorer-state", "data"), prevent_initial_call=True)
def _drill(*args):
    store = args[-1]
    _check_store(store)
    trigger = ctx.triggered_id
    panels = [f"explorer-{p}" for p, _ in PANEL_PLACES]
    if trigger not in panels:
        return []
    click = args[panels.index(trigger)] or {}
    try:
        view, asked = _view_of(store)
        figure = view.figure(trigger.removeprefix("explorer-"), store["lang"], by=asked.by,
                             countermeasures=asked.countermeasures)
        token = next(filter(None, (mark_at(figure, p) for p in click.get("points", ()))), None)
        if token is None:
            return []
        mark = Mark.parse(token)
        count = len(view.ids_behind(mark))
    except Exception:  # noqa: BLE001 - a click the page cannot follow closes the menu
        log.exception("the explorer could not follow a click on %s", trigger)
        return []
    return drill_menu(mark, asked, count, view.reference, store["lang"])


def drill_menu(mark: Mark, asked: ViewState, count: int, reference: dict, lang: str) -> list:
    """What a click offers: filter here, break down by another dimension, show the issues
    behind it, open the issue when it is one (and on the control chart, a countermeasure)."""
    names = Names(reference, lang)
    if mark.kind in ("dim", "week") and mark.key[0] in explorer_state.DIMENSIONS:
        here = asked.with_values(mark.key[0], [mark.key[1]])
    else:
        here = replace(asked, marks=tuple(dict.fromkeys([*asked.marks, mark])))
    actions = [dcc.Link(t("explorer_filter_here", lang), href=_href(replace(here, show=None)),
                        className="explorer-action", id="explorer-action-filter"),
               dcc.Link(t("explorer_show_issue" if count == 1 else "explorer_show_issues", lang)
                        .format(n=f"{count:,}"),
                        href=_href(replace(asked, show=mark)) + "#explorer-list",
                        className="explorer-action", id="explorer-action-show")]
    single = mark.key[0] if mark.kind == "issue" else None
    if single:
        actions.append(html.A(t("explorer_open_issue", lang).format(issue=single),
                              href=f"/issue/{quote(single, safe='')}?{_trace_query(asked, lang)}",
                              className="explorer-action", id="explorer-action-open"))
    if mark.kind == "day":
        day = datetime.fromisoformat(mark.key[0]).date()
        with_cm = tuple(sorted({*asked.countermeasures, day}))
        actions.append(dcc.Link(t("explorer_add_countermeasure", lang),
                                href=_href(replace(asked, countermeasures=with_cm)),
                                className="explorer-action", id="explorer-action-countermeasure"))
    own = mark.key[0] if mark.kind in ("dim", "week") else None
    breakdowns = [dcc.Link(names.dimension(d), href=_href(replace(here, by=d, show=None)),
                           className="explorer-action small", id=f"explorer-action-by-{d}")
                  for d in explorer_state.DIMENSIONS if d != own]
    return [html.Div(className="explorer-drill-box", children=[
        html.Div(className="explorer-drill-what", children=[
            html.Strong(describe(mark, names)),
            html.Span(t("explorer_drill_count_one" if count == 1 else "explorer_drill_count", lang)
                      .format(n=f"{count:,}"))]),
        html.Div(className="explorer-drill-actions", children=actions),
        html.Div(className="explorer-drill-actions", children=[
            html.Span(t("explorer_break_down", lang), className="explorer-drill-label"), *breakdowns]),
        html.Button("×", id={"type": "explorer-drill-close", "index": 0},
                    className="explorer-drill-close", title=t("explorer_close", lang)),
    ])]


# ---- the issue list ---------------------------------------------------------------------------

@callback(Output("explorer-list-what", "children"), Input("explorer-state", "data"))
def _list_what(store):
    _check_store(store)
    lang = store["lang"]
    try:
        view, asked = _view_of(store)
        count = len(view.list_issues(asked.show))
    except Exception:  # noqa: BLE001 - the list says so; the log has why
        log.exception("the explorer's list failed")
        return t("panel_failed", lang)
    if asked.show is None:
        return t("explorer_list_window", lang).format(n=f"{count:,}")
    names = Names(view.reference, lang)
    return [t("explorer_list_behind", lang).format(n=f"{count:,}", what=describe(asked.show, names)),
            " ", dcc.Link(t("explorer_list_all", lang), href=_href(replace(asked, show=None)),
                          id="explorer-list-all")]


def _json_rows(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in frame.astype(object).to_dict("records")]


# "Show the issues" leads to the list: once it says what it lists, it comes into view.
clientside_callback(
    """function (what) {
        if (what && window.location.hash === "#explorer-list") {
            document.getElementById("explorer-list").scrollIntoView();
        }
        return window.location.hash;
    }""",
    Output("explorer-scrolled", "data"), Input("explorer-list-what", "children"))


@callback(Output("explorer-grid", "getRowsResponse"), Input("explorer-grid", "getRowsRequest"),
          State("explorer-state", "data"), prevent_initial_call=True)
def _rows(request, store):
    if not request:
        return no_update
    _check_store(store)
    try:
        view, asked = _view_of(store)
        page, count = view.list_page(asked.show, store["lang"], request.get("sortModel"),
                                     request.get("filterModel"), int(request.get("startRow", 0)),
                                     int(request.get("endRow", LIST_PAGE_ROWS)))
    except ValueError:
        log.warning("the issue list could not apply %r", request, exc_info=True)
        return {"rowData": [], "rowCount": 0}
    return {"rowData": _json_rows(page), "rowCount": count}


@callback(Output("explorer-download", "data"), Input("explorer-export-csv", "n_clicks"),
          Input("explorer-export-xlsx", "n_clicks"), State("explorer-grid", "getRowsRequest"),
          State("explorer-grid", "columnState"), State("explorer-state", "data"),
          prevent_initial_call=True)
def _export(_csv, _xlsx, request, column_state, store):
    _check_store(store)
    lang = store["lang"]
    view, asked = _view_of(store)
    request = request or {}
    shown = grid.apply(view.issue_list(asked.show, lang), request.get("sortModel"),
                       request.get("filterModel"))
    table = export_table(shown, column_state, lang)
    stamp = datetime.fromisoformat(store["as_of"]).astimezone(_tz()).strftime("%Y%m%d-%H%M")
    if ctx.triggered_id == "explorer-export-xlsx":
        return dcc.send_bytes(xlsx_bytes(table), f"floorlink-issues-{stamp}.xlsx")
    return dcc.send_bytes(csv_bytes(table), f"floorlink-issues-{stamp}.csv")


def export_table(shown: pd.DataFrame, column_state: list | None, lang: str) -> pd.DataFrame:
    """The list as the grid shows it: its visible columns in the grid's order, headed by the
    words of the grid's heads."""
    heads = {field: word for field, word in explorer_view.LIST_COLUMNS if field in shown}
    if column_state:
        fields = [c["colId"] for c in column_state if not c.get("hide") and c.get("colId") in heads]
    else:
        fields = list(heads)
    return shown[fields].rename(columns={f: t(heads[f], lang) for f in fields})
