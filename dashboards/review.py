"""The weekly review, /review?week=2026-W48&lang=zh: the week's pack on the meeting room's
projector (data/reports/weekly.py, docs/review.md), the action register the meeting keeps, and
the pack as a PDF, workbook or HTML page to take away.

The figures are the pack's, drawn with the columns and value formats the files use
(data/reports/render.py), so the screen and the paper read alike. A week without a pack (not
over, sources behind) says why instead of showing figures. The layout is read at once; the
pack, which may take seconds to build, comes in its own callback. A manager changes the
register on the page; everyone else reads it (the route table closes its outputs to them).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from flask import current_app, g, has_request_context

from dashboards import _desk
from data import timezones
from data.auth import policy
from data.reports import actions, render, review, weekly
from data.words import LANGUAGES, bilingual_name, format_count, language, t

log = logging.getLogger(__name__)

dash.register_page(__name__, path="/review", name="review", title="FloorLink · 周例会 / Weekly review",
                   desk=True)

# The register's new-action form: its inputs, and the fields the register names in an error.
ADD_INPUTS = ("problem", "about_kpi", "about_issues", "countermeasure", "owner", "department_code", "due")
ADD_ERRORS = ("problem", "about", "countermeasure", "owner", "department_code", "due")
CHANGE_ERRORS = ("id", "status", "evidence")
# The lists of the pack in the order of the page, by section; the register has its own.
ISSUE_LISTS = ("worst_breaches", "longest_open", "ping_pong")
MATERIAL_LISTS = ("stagnant", "line_stops")
LISTS = {table.name: table for table in render.LISTS}
NUMERIC = ("count", "qty", "min", "ratio", "level")
STORE_KEYS = {"week": str, "lang": str, "as_of": str}


def _database_url() -> str:
    return current_app.config["FLOORLINK_DATABASE_URL"]


def _caller():
    return g.get("floorlink_caller") if has_request_context() else None


def _opens(output: str) -> bool:
    """Whether the person asking may use the callback output `output` (data/auth/policy.py);
    with sign-in off, what the table leaves open. Nobody asks for the layout Dash checks its
    callbacks against (drawn once at the first request, before the doors), which so holds
    every control."""
    caller, door = _caller(), policy.door("output", output)
    if caller is None:
        return True
    if door is None:
        return False
    if caller.kind == "anyone":
        return door.without_signin == "open"
    return policy.opens_for(door, caller.role)


def _href(week: str, lang: str) -> str:
    return "/review?" + urlencode({"week": week, "lang": lang})


# ---- the page --------------------------------------------------------------------------

def layout(week=None, lang=None, **_other):
    lang = language(lang)
    now = timezones.utc_now()
    notices = []
    asked = week if isinstance(week, str) else None
    if asked is not None:
        try:
            weekly.parse_week(asked)
        except ValueError:
            notices.append(t("review_bad_week", lang).format(value=asked[:24]))
            asked = None
    week = asked or weekly.last_complete_week(now)
    url = _database_url()
    try:
        known = review.weeks(url, now)
        carried = review.register(url, week)
        departments = review.departments(url)
    except Exception:  # noqa: BLE001 - the page says the database failed; the log has why
        # Every control stays (Dash checks the callbacks against it); nothing in them.
        log.exception("the review page could not read the plant")
        notices.append(t("db_unreachable", lang))
        known, carried, departments = [], [], []
    store = {"week": week, "lang": lang, "as_of": review.as_of_for(week, now).isoformat()}
    return _desk.desk_page("review", lang, t("review_title", lang), [
        dcc.Location(id="review-nav", refresh="callback-nav"),
        dcc.Store(id="review-state", data=store),
        *[html.P(text, className="desk-note review-notice") for text in notices],
        _week_bar(week, known, lang),
        dcc.Loading(type="dot", color="#4fb3ff", children=html.Div(
            id="review-body", className="review-body",
            children=html.P(t("review_loading", lang), className="desk-note"))),
        _register_section(week, carried, departments, lang),
    ])


def _week_bar(week: str, known: list[str], lang: str) -> html.Div:
    """Previous and next week, the weeks there are figures for, and the export buttons."""
    weeks = list(dict.fromkeys([*known, week]))
    weeks.sort()
    previous, following = weekly.shifted(week, -1), weekly.shifted(week, 1)
    since, until = weekly.week_window(week)
    days = f"{since:%Y-%m-%d} – {until - timedelta(days=1):%Y-%m-%d}"
    bar = [
        dcc.Link("← " + t("review_previous", lang), href=_href(previous, lang), id="review-previous",
                 className="review-step"),
        dcc.Dropdown(id="review-week", value=week, clearable=False, searchable=False,
                     className="review-week", options=[{"label": w, "value": w} for w in reversed(weeks)]),
        dcc.Link(t("review_next", lang) + " →", href=_href(following, lang), id="review-next",
                 className="review-step"),
        html.Span(days, className="review-days"),
        html.Span(className="desk-spacer"),
    ]
    if _opens("review-download"):
        bar += [html.Span(t("review_export", lang), className="review-export-label"),
                *[html.Button(kind.upper(), id=f"review-export-{kind}", className="review-export")
                  for kind in review.EXPORTS],
                dcc.Download(id="review-download")]
    return html.Div(className="desk-panel review-bar", children=bar)


# ---- the pack ----------------------------------------------------------------------------

def _check_store(store) -> None:
    """The view as the page sends it, else TypeError: a request made by hand is refused."""
    if not (isinstance(store, dict) and all(isinstance(store.get(k), kind) for k, kind in STORE_KEYS.items())
            and store["lang"] in LANGUAGES):
        raise TypeError("the review's view is not what its page sends")
    weekly.parse_week(store["week"])


def _as_of(store: dict) -> datetime:
    """The instant the page was drawn for, never later than its week is built as of."""
    asked = timezones.parse_instant(store["as_of"])
    return min(asked, review.as_of_for(store["week"], timezones.utc_now()))


@callback(Output("review-body", "children"), Input("review-state", "data"))
def _body(store):
    _check_store(store)
    lang = store["lang"]
    try:
        seen = review.shown(_database_url(), store["week"], timezones.utc_now(), _as_of(store))
    except Exception:  # noqa: BLE001 - the page says so; the log has why
        log.exception("the review could not build the pack of %s", store["week"])
        return html.Div(className="desk-missing", children=[html.P(t("panel_failed", lang))])
    return pack_view(seen, lang)


def pack_view(seen: review.Shown, lang: str) -> list:
    """The week's pack as the page shows it, or why there is none."""
    if seen.pack is None:
        _, until = weekly.week_window(seen.week)
        word = "review_not_over" if seen.refused == review.NOT_OVER else "review_behind"
        return [html.Div(className="desk-missing review-refused", id="review-refused", children=[
            html.P(t(word, lang).format(week=seen.week, end=_local(until),
                                        ready=_local(until + weekly.grace()))),
            html.P(t("review_no_figures", lang), className="desk-note")])]
    pack = seen.pack
    names = render.kpi_names(pack, lang)
    said = t("review_frozen" if seen.frozen else "review_live", lang).format(
        as_of=_local(datetime.fromisoformat(pack["as_of"])),
        built=_local(datetime.fromisoformat(pack["built_at"])))
    return [
        html.P(said, id="review-source", className=f"desk-note review-source {'frozen' if seen.frozen else 'live'}"),
        html.Section(className="desk-panel review-kpis", children=[
            html.H2(t("pack_kpis", lang)), _kpi_table(pack, lang),
            html.P(t("pack_legend", lang), className="desk-note")]),
        html.Div(className="review-pair", children=[
            html.Section(className="desk-panel review-departments", id="review-departments", children=[
                html.H2(t("pack_departments", lang)), _table(render.DEPARTMENTS, pack, lang, names)]),
            html.Section(className="desk-panel review-star", id="review-star", children=[
                html.H2(t("pack_star", lang)), *_star(pack.get("star"), lang)])]),
        *[_list_section(LISTS[name], pack, lang, names) for name in ISSUE_LISTS],
        html.Section(className="desk-panel review-pareto", children=[
            html.H2(t("pack_pareto", lang)),
            html.Div(className="review-pareto-tables", children=[
                _pareto(pack, key, word, lang) for key, word in render.PARETO])]),
        html.Div(className="review-pair", children=[
            _list_section(LISTS["escalations"], pack, lang, names),
            html.Section(className="desk-panel review-material", children=[
                html.H2(t("pack_material", lang)),
                html.P([t("pack_turnover", lang), ": ",
                        html.B(render.kpi_value((pack.get("material") or {}).get("turnover"), "count", lang),
                               id="review-turnover")])])]),
        *[_list_section(LISTS[name], pack, lang, names) for name in MATERIAL_LISTS],
        _list_section(LISTS["plan"], pack, lang, names),
    ]


def _local(instant: datetime) -> str:
    return timezones.to_site(instant).strftime("%Y-%m-%d %H:%M")


def _kpi_table(pack: dict, lang: str) -> html.Table:
    heads = ("pack_col_kpi", "pack_col_this", "pack_col_last", "pack_col_avg4", "pack_col_delta",
             "pack_col_signal")
    rows = []
    for kpi in pack.get("kpis", []):
        unit, good = kpi["unit"], kpi.get("good")
        tone = "" if good is None else "good" if good else "bad"
        rows.append(html.Tr(className=f"review-kpi kpi-{kpi['key']}", children=[
            html.Td(render.text(bilingual_name(kpi, lang)), className="review-kpi-name",
                    title=t(f"pack_better_{kpi['better']}", lang)),
            html.Td(render.kpi_value(kpi.get("this"), unit, lang), className="num this"),
            html.Td(render.kpi_value(kpi.get("last"), unit, lang), className="num last"),
            html.Td(render.kpi_value(kpi.get("avg4"), unit, lang), className="num avg4"),
            html.Td(render.kpi_delta(kpi.get("delta"), unit, lang), className=f"num delta {tone}".strip()),
            html.Td(html.Span(t("pack_signal", lang), className="review-signal") if kpi.get("signal") else "",
                    className="signal")]))
    return html.Table(id="review-kpi-table", className="desk-table review-table", children=[
        html.Thead(html.Tr([html.Th(t(h, lang), className="num" if i and i < 5 else "")
                            for i, h in enumerate(heads)])),
        html.Tbody(rows)])


def _star(star: dict | None, lang: str) -> list:
    if not star:
        return [html.P(t("pack_no_star", lang), className="desk-note")]
    figures = [html.Div([html.Dt(t(column.word, lang)), html.Dd(render.cell(column, star, lang, "UTC", {}))])
               for column in render.DEPARTMENTS.columns
               if column.kind != "name" and column.key != "rank" and column.key in star]
    return [html.P(["★ ", html.B(render.text(bilingual_name(star, lang)))], className="review-star-name"),
            html.P(render.text(star.get(f"why_{lang}")), className="review-star-why"),
            html.Dl(className="desk-facts", children=figures)]


def _issue_link(row: dict, lang: str):
    """An issue's id, linked to its trace when the trace is an issue page."""
    trace = row.get("trace")
    shown = render.text(row.get("id"))
    if not isinstance(trace, str) or not trace.startswith(render.ISSUE_PATH):
        return shown
    return html.A(shown, href=f"{quote(trace, safe='/')}?lang={lang}", className="review-issue")


def _table(table: render.Table, pack: dict, lang: str, names: dict[str, str], rows=None,
           marked=None) -> html.Table | html.P:
    """A list of the pack with the files' columns; `marked` gives a row its own class."""
    rows = table.rows(pack) if rows is None else rows
    if not rows:
        return html.P(t("pack_none", lang), className="desk-note review-empty")
    columns = [column for column in table.columns if column.present(rows)]
    body = []
    for row in rows:
        cells = []
        for column in columns:
            value = _issue_link(row, lang) if column.kind == "issue" else \
                render.cell(column, row, lang, pack.get("tz", "UTC"), names)
            kind = "num" if column.kind in NUMERIC else "flag" if column.kind == "flag" and value else ""
            cells.append(html.Td(value, className=f"{kind} col-{column.key}".strip()))
        body.append(html.Tr(cells, className=(marked(row) if marked else "") or None))
    return html.Table(className=f"desk-table review-table review-{table.name}", children=[
        html.Thead(html.Tr([html.Th(t(c.word, lang), className="num" if c.kind in NUMERIC else "")
                            for c in columns])),
        html.Tbody(body)])


def _list_section(table: render.Table, pack: dict, lang: str, names: dict[str, str]) -> html.Section:
    total, shown = table.total(pack), len(table.rows(pack))
    note = ([" ", html.Span(t("pack_shown_of", lang).format(total=format_count(total), shown=format_count(shown)),
                            className="review-note")] if total is not None and total > shown else [])
    return html.Section(className="desk-panel review-list", id=f"review-{table.name}", children=[
        html.H2([t(table.title, lang), *note]), _table(table, pack, lang, names)])


def _pareto(pack: dict, key: str, word: str, lang: str) -> html.Div:
    """One Pareto as a table with a bar for this week's share of the issues."""
    rows = (pack.get("pareto") or {}).get(key) or []
    body = [html.Tr([
        html.Td(render.text(bilingual_name(row, lang)), className="review-pareto-name"),
        html.Td(html.Div(className="review-bar-track", children=html.Div(
            className="review-bar-fill", style={"width": f"{min(max(row.get('share') or 0, 0), 1) * 100:.1f}%"}))),
        html.Td(format_count(row["this"]), className="num this"),
        html.Td(format_count(row["avg4"]) if row.get("avg4") is not None else t("no_value", lang), className="num avg4"),
        html.Td(f"{row['cumulative_share'] * 100:.0f}%" if row.get("cumulative_share") is not None else "",
                className="num cumulative")]) for row in rows]
    return html.Div(className="review-pareto-one", id=f"review-pareto-{key}", children=[
        html.H3(t(word, lang)),
        html.Table(className="desk-table review-table", children=[
            html.Thead(html.Tr([html.Th(t("pack_col_name", lang)), html.Th(""),
                                html.Th(t("pack_col_this", lang), className="num"),
                                html.Th(t("pack_col_avg4", lang), className="num"),
                                html.Th(t("pack_col_share", lang), className="num")])),
            html.Tbody(body)]) if rows else html.P(t("pack_none", lang), className="desk-note")])


# ---- the action register -------------------------------------------------------------------

def register_table(carried: list[dict], lang: str, kpi_names: dict[str, str]) -> html.Table | html.P:
    """The register carried into the week; an overdue action is marked."""
    return _table(LISTS["actions"], {"tz": timezones.site_zone().key}, lang, kpi_names, rows=carried,
                  marked=lambda row: "review-overdue" if row.get("overdue") else "")


def _kpi_choices(lang: str) -> dict[str, str]:
    return {kpi.key: t(kpi.word, lang) for kpi in weekly.KPIS}


def _register_section(week: str, carried: list[dict], departments: list[dict], lang: str) -> html.Section:
    children = [html.H2(t("pack_actions", lang)),
                html.Div(id="review-register", children=register_table(carried, lang, _kpi_choices(lang))),
                html.P(id="review-saved", className="desk-note review-saved")]
    if _opens("review-register"):
        children += [_add_form(week, departments, lang), _change_form(carried, lang)]
    else:
        caller = _caller()
        word = "review_readonly_signin_off" if caller.kind == "anyone" else "review_readonly"
        children.append(html.P([t(word, lang), " ", html.A(
            t("signin_button", lang), href="/signin?" + urlencode({"next": _href(week, lang), "lang": lang}))]
            if word == "review_readonly" else t(word, lang), className="desk-note review-readonly"))
    return html.Section(className="desk-panel review-register", id="review-actions", children=children)


def _field(name: str, label: str, control, kind: str = "review-add-error") -> html.Div:
    return html.Div(className=f"review-field field-{name}", children=[
        html.Label(label), control,
        html.Div(id={"type": kind, "field": name}, className="review-error", role="alert")])


def _add_form(week: str, departments: list[dict], lang: str) -> html.Div:
    def add(field: str, **props):
        return {"id": {"type": "review-add", "field": field}, **props}

    about = html.Div(className="review-about", children=[
        dcc.Dropdown(**add("about_kpi"), placeholder=t("review_about_kpi", lang),
                     options=[{"label": name, "value": key} for key, name in _kpi_choices(lang).items()]),
        dcc.Input(**add("about_issues"), type="text", placeholder=t("review_about_issues", lang), debounce=False)])
    return html.Div(className="review-form review-add", children=[
        html.H3(t("review_add_title", lang)),
        _field("problem", t("pack_col_problem", lang), dcc.Textarea(**add("problem"), rows=2)),
        _field("about", t("pack_col_about", lang), about),
        _field("countermeasure", t("pack_col_countermeasure", lang), dcc.Textarea(**add("countermeasure"), rows=2)),
        _field("owner", t("pack_col_person", lang), dcc.Input(**add("owner"), type="text")),
        _field("department_code", t("pack_col_department", lang), dcc.Dropdown(
            **add("department_code"), options=[{"label": f"{d['code']} · {bilingual_name(d, lang)}",
                                                "value": d["code"]} for d in departments])),
        _field("due", t("pack_col_due", lang), dcc.Input(**add("due"), type="text", placeholder="YYYY-MM-DD",
                                                         value=review.due_default(week).isoformat())),
        html.Button(t("review_add", lang), id="review-add-button", className="review-button")])


def _action_options(carried: list[dict]) -> list[dict]:
    return [{"label": f"#{a['id']} · {render.text(a['problem'])[:60]}", "value": a["id"]} for a in carried]


def _change_form(carried: list[dict], lang: str) -> html.Div:
    return html.Div(className="review-form review-change", children=[
        html.H3(t("review_change_title", lang)),
        _field("id", t("pack_col_action", lang), dcc.Dropdown(
            id="review-change-action", options=_action_options(carried)), "review-change-error"),
        _field("status", t("pack_col_status", lang), dcc.Dropdown(
            id="review-change-status", clearable=False,
            options=[{"label": t(f"pack_status_{s}", lang), "value": s} for s in render.STATUSES]),
            "review-change-error"),
        _field("evidence", t("pack_col_evidence", lang), dcc.Textarea(id="review-change-evidence", rows=2),
               "review-change-error"),
        html.Button(t("review_save", lang), id="review-change-button", className="review-button")])


def add_action(database_url: str, week: str, by: str, now: datetime, values: dict) -> tuple[dict | None, dict]:
    """A new action from the form's `values`; (the action, {}) or (None, errors by field)."""
    kpi = values.get("about_kpi") or None
    issues = (values.get("about_issues") or "").strip()
    if kpi and issues:
        return None, {"about": "review_about_both"}
    try:
        action = review.open_action(
            database_url, week, by, now, problem=values.get("problem"), about=kpi or issues,
            countermeasure=values.get("countermeasure"), owner=values.get("owner"),
            department_code=values.get("department_code"), due=values.get("due") or "")
    except actions.ActionError as exc:
        return None, {exc.field: str(exc)}
    return action, {}


def change_action(database_url: str, week: str, by: str, now: datetime, action_id, status,
                  evidence) -> tuple[dict | None, dict]:
    """An action's status and evidence from the change form; (the action, {}) or (None, errors)."""
    if not isinstance(action_id, int):
        return None, {"id": "review_pick_action"}
    try:
        action = review.change_action(database_url, action_id, week, by, now, status=status,
                                      evidence=evidence or "")
    except actions.ActionError as exc:
        return None, {exc.field: str(exc)}
    return action, {}


def _error_text(error: str | None, lang: str) -> str:
    """An error as the form shows it: a word of the page, else the register's own message."""
    if not error:
        return ""
    return t(error, lang) if error.startswith("review_") else error


@callback(Output("review-register", "children"), Output("review-saved", "children"),
          Output({"type": "review-add-error", "field": ALL}, "children"),
          Output({"type": "review-change-error", "field": ALL}, "children"),
          Output({"type": "review-add", "field": ALL}, "value"),
          Output("review-change-action", "options"),
          Input("review-add-button", "n_clicks"), Input("review-change-button", "n_clicks"),
          State({"type": "review-add", "field": ALL}, "value"), State("review-change-action", "value"),
          State("review-change-status", "value"), State("review-change-evidence", "value"),
          State("review-state", "data"), prevent_initial_call=True)
def _write(_add, _change, add_values, action_id, status, evidence, store):
    _check_store(store)
    lang, week, url = store["lang"], store["week"], _database_url()
    by, now = g.floorlink_caller.name, timezones.utc_now()
    add_ids = [item["id"]["field"] for item in ctx.states_list[0]]
    add_errors = [item["id"]["field"] for item in ctx.outputs_list[2]]
    change_errors = [item["id"]["field"] for item in ctx.outputs_list[3]]
    if ctx.triggered_id == "review-add-button":
        action, errors = add_action(url, week, by, now, dict(zip(add_ids, add_values)))
        saved = t("review_added", lang).format(id=action["id"]) if action else ""
        cleared = [_default(field, week) for field in add_ids] if action else [no_update] * len(add_ids)
    else:
        action, errors = change_action(url, week, by, now, action_id, status, evidence)
        saved = t("review_changed", lang).format(id=action["id"]) if action else ""
        cleared = [no_update] * len(add_ids)
    if action is None:
        return (no_update, "", [_error_text(errors.get(f), lang) for f in add_errors],
                [_error_text(errors.get(f), lang) for f in change_errors], cleared, no_update)
    carried = review.register(url, week)
    return (register_table(carried, lang, _kpi_choices(lang)), saved, [""] * len(add_errors),
            [""] * len(change_errors), cleared, _action_options(carried))


def _default(field: str, week: str):
    return review.due_default(week).isoformat() if field == "due" else None


@callback(Output("review-change-status", "value"), Output("review-change-evidence", "value"),
          Input("review-change-action", "value"), State("review-state", "data"),
          prevent_initial_call=True)
def _pick(action_id, store):
    """The chosen action's status and evidence, to change them."""
    _check_store(store)
    if not isinstance(action_id, int):
        return None, ""
    action = next((a for a in review.register(_database_url(), store["week"]) if a["id"] == action_id), None)
    return (action["status"], action["evidence"]) if action else (None, "")


# ---- the week and the files ----------------------------------------------------------------------

@callback(Output("review-nav", "search"), Input("review-week", "value"), State("review-state", "data"),
          prevent_initial_call=True)
def _go_to_week(week, store):
    _check_store(store)
    if not isinstance(week, str) or week == store["week"]:
        return no_update
    weekly.parse_week(week)
    return "?" + urlencode({"week": week, "lang": store["lang"]})


@callback(Output("review-download", "data"),
          *[Input(f"review-export-{kind}", "n_clicks") for kind in review.EXPORTS],
          State("review-state", "data"), prevent_initial_call=True)
def _export(*args):
    store = args[-1]
    _check_store(store)
    kind = str(ctx.triggered_id or "").removeprefix("review-export-")
    if kind not in review.EXPORTS:
        return no_update
    content, filename = review.export(_database_url(), store["week"], kind, store["lang"],
                                      timezones.utc_now(), _as_of(store))
    return dcc.send_bytes(content, filename)
