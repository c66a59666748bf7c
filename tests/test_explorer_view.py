"""One view of the explorer on a demo plant: the issues behind each kind of mark agree with a
plain pandas computation over the raw rows, marks narrow every panel, the issue list is
sorted, filtered and exported as the grid shows it, and the page turns an address into a view
(bad values said, never a failure) and a click into the drill grammar's links."""
from __future__ import annotations

import io
import math
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

import app as floorlink
from data import db, demo, kpis
from data.explorer import grid, state, view as explorer_view
from data.explorer.state import Mark, State
from data.models import Issue, IssueEvent, Location

TZ = ZoneInfo("Asia/Shanghai")
END = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)   # Monday 10:00 in Shanghai


@pytest.fixture(scope="module")
def plant_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('explorer') / 'plant.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=35, seed=5, end=END)
    return url


@pytest.fixture(scope="module")
def raw(plant_url):
    """The plant's issues (with their line) and events as the database holds them."""
    engine = db.get_engine(plant_url)
    with engine.connect() as conn:
        issues = pd.DataFrame(conn.execute(
            select(Issue.id, Issue.raised_at, Issue.acknowledged_at, Issue.resolved_at, Issue.closed_at,
                   Issue.status, Issue.owner_department_code, Issue.issue_type, Issue.location_code,
                   Issue.severity, Location.line)
            .outerjoin(Location, Location.code == Issue.location_code)).all())
        events = pd.DataFrame(conn.execute(
            select(IssueEvent.issue_id, IssueEvent.id, IssueEvent.at, IssueEvent.kind,
                   IssueEvent.department_code)).all())
    for column in ("raised_at", "acknowledged_at", "resolved_at", "closed_at"):
        issues[column] = pd.to_datetime(issues[column], utc=True)
    events["at"] = pd.to_datetime(events["at"], utc=True)
    return issues, events


WINDOW = state.Window(END - timedelta(days=7), END, END, "7d", END - timedelta(days=28))


def view_of(plant_url, filters=None, marks=()):
    return explorer_view.view_for(plant_url, WINDOW, filters or {}, marks, TZ)


def in_window(issues: pd.DataFrame) -> pd.DataFrame:
    return issues[(issues["raised_at"] >= WINDOW.since) & (issues["raised_at"] < WINDOW.until)
                  & (issues["status"] != "cancelled")]


def holders(events: pd.DataFrame, issue_ids) -> dict[str, list[tuple[str, str]]]:
    """Per issue, its events up to as_of as (kind, department), in time order."""
    known = events[(events["at"] <= END) & events["issue_id"].isin(set(issue_ids))]
    known = known.sort_values(["issue_id", "at", "id"])
    return {issue: list(zip(group["kind"], group["department_code"])) for issue, group in known.groupby("issue_id")}


def test_a_matrix_cell_is_the_issues_handed_from_one_department_to_the_other(plant_url, raw):
    issues, events = raw
    view = view_of(plant_url)
    expected: dict[tuple[str, str], set[str]] = {}
    for issue, steps in holders(events, in_window(issues)["id"]).items():
        holder = None
        for kind, department in steps:
            if department is not None and holder is not None and department != holder \
                    and kind in ("reassigned", "escalated"):
                expected.setdefault((holder, department), set()).add(issue)
            holder = department if department is not None else holder
    assert expected, "the demo plant hands issues on"
    for (giver, taker), ids in expected.items():
        assert view.ids_behind(Mark("matrix", (giver, taker))) == ids, (giver, taker)


def test_an_hour_cell_a_day_and_a_value_are_the_issues_raised_then_or_with_it(plant_url, raw):
    issues, _ = raw
    view = view_of(plant_url)
    window = in_window(issues)
    local = window["raised_at"].dt.tz_convert(TZ)
    sunday_two = set(window["id"][(local.dt.day_of_week == 6) & (local.dt.hour == 2)])
    assert view.ids_behind(Mark("hour", ("7", "2"))) == sunday_two
    span = issues[(issues["raised_at"] >= WINDOW.history_since) & (issues["raised_at"] < END)
                  & (issues["status"] != "cancelled")]
    day = "2026-11-10"
    assert view.ids_behind(Mark("day", (day,))) == set(
        span["id"][span["raised_at"].dt.tz_convert(TZ).dt.date.astype(str) == day])
    assert view.ids_behind(Mark("dim", ("line", "L2"))) == set(window["id"][window["line"] == "L2"])
    assert view.ids_behind(Mark("dim", ("line", "-"))) == set(window["id"][window["line"].isna()])
    two_weeks = span[span["raised_at"] >= END - timedelta(days=14)]
    assert view.ids_behind(Mark("week", ("department", "QA"))) == set(
        two_weeks["id"][two_weeks["owner_department_code"] == "QA"])


def test_an_ageing_bar_is_the_open_issues_of_that_age_held_by_that_department(plant_url, raw):
    issues, events = raw
    view = view_of(plant_url)
    open_now = issues[kpis.open_mask(issues, END).to_numpy()]
    age_h = (END - open_now["raised_at"]) / pd.Timedelta(hours=1)
    last_holder = {issue: [d for _, d in steps if d is not None][-1]
                   for issue, steps in holders(events, open_now["id"]).items()}
    expected: dict[tuple[int, str], set[str]] = {}
    for issue, age in zip(open_now["id"], age_h):
        bucket = int(np.searchsorted([1, 4, 8, 24, 72], age, side="right"))
        expected.setdefault((bucket, last_holder[issue]), set()).add(issue)
    assert expected
    for (bucket, holder), ids in expected.items():
        assert view.ids_behind(Mark("ageing", (str(bucket), holder))) == ids


def test_a_week_still_unresolved_after_t_hours(plant_url, raw):
    issues, _ = raw
    view = view_of(plant_url)
    monday = datetime(2026, 11, 2, tzinfo=TZ)
    week = issues[(issues["raised_at"] >= monday) & (issues["raised_at"] < monday + timedelta(days=7))
                  & (issues["status"] != "cancelled")]
    finished = pd.concat([week["resolved_at"].where(week["resolved_at"] <= END),
                          week["closed_at"].where(week["closed_at"] <= END)], axis=1).min(axis=1)
    late = finished.isna() | (finished > week["raised_at"] + pd.Timedelta(hours=4))
    assert view.ids_behind(Mark("unresolved", ("2026-11-02", "4"))) == set(week["id"][late])
    assert 0 < late.sum() < len(week)


def test_a_mark_narrows_every_panel_and_the_issue_list(plant_url):
    whole = view_of(plant_url)
    mark = Mark("dim", ("issue_type", "equipment_failure"))
    narrowed = view_of(plant_url, marks=(mark,))
    behind = whole.ids_behind(mark)
    assert set(narrowed.population["id"]) == behind
    assert set(narrowed.issue_list(None, "en")["id"]) == behind
    assert set(narrowed.window_intervals["issue_id"]) <= behind
    # The same as filtering by the value.
    filtered = view_of(plant_url, filters={"issue_type": ("equipment_failure",)})
    assert set(filtered.population["id"]) == behind
    assert narrowed.figure("pareto", "en")["data"][0]["y"] == filtered.figure("pareto", "en")["data"][0]["y"]


def test_unknown_keys_name_no_issue(plant_url):
    view = view_of(plant_url)
    for mark in (Mark("hour", ("x", "2")), Mark("held", ("QA", "two")), Mark("ageing", ("old", "QA")),
                 Mark("unresolved", ("yesterday", "4")), Mark("dim", ("colour", "red")),
                 Mark("issue", ("NOPE",)), Mark("matrix", ("NOPE", "QA"))):
        assert view.ids_behind(mark) == set()


def test_every_panel_draws_with_a_title_in_both_languages(plant_url):
    view = view_of(plant_url)
    for panel in explorer_view.PANELS:
        for lang in ("zh", "en"):
            figure = view.figure(panel, lang, by="location")
            assert figure["layout"]["title"]["text"], (panel, lang)


def test_the_issue_list_has_one_row_per_issue_with_the_kpi_rules_figures(plant_url, raw):
    issues, _ = raw
    view = view_of(plant_url)
    listed = view.issue_list(None, "en")
    window = in_window(issues).set_index("id")
    assert set(listed["id"]) == set(window.index) and listed["id"].is_unique
    assert list(listed.columns) == [field for field, _ in explorer_view.LIST_COLUMNS]
    for row in listed.itertuples():
        issue = window.loc[row.id]
        if issue["acknowledged_at"] <= END:
            expected = (issue["acknowledged_at"] - issue["raised_at"]) / pd.Timedelta(minutes=1)
            assert row.response_min == pytest.approx(expected, abs=0.051)
        else:
            assert math.isnan(row.response_min)
    assert listed["raised"].is_monotonic_decreasing


# ---- the grid on the server ----------------------------------------------------------------

LIST = pd.DataFrame({"id": ["a", "b", "c", "d"], "title": ["Burr", "burr on L2", None, "=1+1"],
                     "response_min": [5.0, np.nan, 30.0, 12.5], "handoffs": [0, 2, 1, 2]})


@pytest.mark.parametrize("sort, filters, ids", [
    ([{"colId": "response_min", "sort": "asc"}], {}, ["a", "d", "c", "b"]),
    ([{"colId": "response_min", "sort": "desc"}], {}, ["c", "d", "a", "b"]),
    ([{"colId": "handoffs", "sort": "desc"}, {"colId": "id", "sort": "asc"}], {}, ["b", "d", "c", "a"]),
    ([], {"title": {"filterType": "text", "type": "contains", "filter": "BURR"}}, ["a", "b"]),
    ([], {"title": {"filterType": "text", "type": "notContains", "filter": "burr"}}, ["c", "d"]),
    ([], {"title": {"filterType": "text", "type": "equals", "filter": "burr"}}, ["a"]),
    ([], {"title": {"filterType": "text", "type": "startsWith", "filter": "="}}, ["d"]),
    ([], {"title": {"filterType": "text", "type": "blank"}}, ["c"]),
    ([], {"response_min": {"filterType": "number", "type": "greaterThan", "filter": 5}}, ["c", "d"]),
    ([], {"response_min": {"filterType": "number", "type": "greaterThanOrEqual", "filter": 5}}, ["a", "c", "d"]),
    ([], {"response_min": {"filterType": "number", "type": "inRange", "filter": 5, "filterTo": 12.5}},
     ["a", "d"]),
    ([], {"response_min": {"filterType": "number", "type": "notEqual", "filter": 5}}, ["b", "c", "d"]),
    ([], {"response_min": {"filterType": "number", "type": "blank"}}, ["b"]),
    ([], {"response_min": {"filterType": "number", "operator": "OR", "conditions": [
        {"type": "lessThan", "filter": 6}, {"type": "greaterThan", "filter": 20}]}}, ["a", "c"]),
    ([{"colId": "id", "sort": "desc"}], {"handoffs": {"filterType": "number", "type": "equals", "filter": 2},
                                        "title": {"filterType": "text", "type": "notBlank"}}, ["d", "b"]),
])
def test_the_grid_sorts_and_filters_on_the_server(sort, filters, ids):
    assert grid.apply(LIST, sort, filters)["id"].tolist() == ids


@pytest.mark.parametrize("sort, filters, said", [
    ([{"colId": "colour", "sort": "asc"}], {}, "no column 'colour' to sort by"),
    ([], {"colour": {"filterType": "text", "type": "contains", "filter": "x"}}, "no column 'colour'"),
    ([], {"title": {"filterType": "text", "type": "regex", "filter": "x"}}, "text filter 'regex'"),
    ([], {"handoffs": {"filterType": "number", "type": "lessThan", "filter": "many"}}, "needs a number"),
    ([], {"handoffs": {"filterType": "date", "type": "equals"}}, "filter type 'date'"),
])
def test_a_request_the_grid_cannot_make_is_refused_by_name(sort, filters, said):
    with pytest.raises(ValueError, match=said):
        grid.apply(LIST, sort, filters)


# ---- the page ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def page(plant_url):
    app = floorlink.create_app(plant_url)
    from dashboards import explorer
    with app.server.app_context():
        yield explorer


def texts(component) -> list[str]:
    found = []

    def walk(node):
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, (list, tuple)):
            for child in node:
                walk(child)
        elif hasattr(node, "children"):
            walk(node.children)
    walk(component)
    return found


def find(component, component_id):
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, str):
            hit = find(child, component_id)
            if hit is not None:
                return hit
    return None


def test_a_bad_address_is_a_page_with_notices_not_a_failure(page):
    layout = page.layout(window="fortnight", dept=["QA", "NOPE"], at="soon", by="colour", lang="en")
    said = " ".join(texts(layout))
    assert "window=fortnight is not valid" in said
    assert "at=soon is not a time" in said
    assert "by=colour is not valid" in said
    assert "dept: NOPE does not exist in this plant" in said
    store = find(layout, "explorer-state").data
    assert store["query"] == "?lang=en&dept=QA" and store["live"] is True


def test_the_page_keeps_the_view_it_was_asked_for(page):
    layout = page.layout(at="2026-11-23T08:00", window="30d", line="L2", by="location")
    store = find(layout, "explorer-state").data
    assert store["query"] == "?window=30d&at=2026-11-23T08:00&line=L2&by=location"
    assert datetime.fromisoformat(store["as_of"]) == datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)
    assert find(layout, "explorer-filter-line").value == ["L2"]
    assert find(layout, "explorer-window").value == "30d"


def test_the_drill_grammar_offers_filter_break_down_show_and_open(page, plant_url):
    asked = State(at=END, filters=(("department", ("QA", "MNT")),))
    reference = explorer_view.reference_for(plant_url)
    hrefs = {c.id: c.href for c in _links(page.drill_menu(Mark("dim", ("department", "QA")), asked, 7,
                                                          reference, "en"))}
    assert hrefs["explorer-action-filter"] == "/explorer?at=2026-11-23T10:00&dept=QA"
    assert hrefs["explorer-action-show"] == \
        "/explorer?at=2026-11-23T10:00&dept=QA&dept=MNT&show=dim:department|QA#explorer-list"
    assert hrefs["explorer-action-by-line"] == "/explorer?at=2026-11-23T10:00&dept=QA&by=line"
    assert "explorer-action-by-department" not in hrefs and "explorer-action-open" not in hrefs
    matrix = {c.id: c.href for c in _links(page.drill_menu(Mark("matrix", ("QA", "PRD")), asked, 3,
                                                           reference, "en"))}
    assert matrix["explorer-action-filter"] == \
        "/explorer?at=2026-11-23T10:00&dept=QA&dept=MNT&mark=matrix:QA|PRD"
    one = {c.id: c.href for c in _links(page.drill_menu(Mark("issue", ("A/1 ?",)), asked, 1, reference, "zh"))}
    assert one["explorer-action-open"] == "/issue/A%2F1%20%3F?lang=zh&at=2026-11-23T10%3A00"
    day = {c.id: c.href for c in _links(page.drill_menu(Mark("day", ("2026-11-10",)), asked, 1, reference, "zh"))}
    assert day["explorer-action-countermeasure"].endswith("&cm=2026-11-10")


def _links(menu) -> list:
    found = []

    def walk(node):
        if isinstance(node, (list, tuple)):
            for child in node:
                walk(child)
        elif hasattr(node, "href") and getattr(node, "id", None):
            found.append(node)
        elif hasattr(node, "children"):
            walk(node.children)
    walk(menu)
    return found


def test_a_mark_is_described_in_both_languages(page, plant_url):
    reference = explorer_view.reference_for(plant_url)
    en, zh = page.Names(reference, "en"), page.Names(reference, "zh")
    assert page.describe(Mark("matrix", ("QA", "PRD")), en) == "hand-offs Quality → Production"
    assert page.describe(Mark("matrix", ("QA", "PRD")), zh) == "转派 质量部 → 生产部"
    assert page.describe(Mark("hour", ("7", "2")), en) == "raised Sun at 02:00"
    assert page.describe(Mark("ageing", ("2", "MNT")), en) == "waiting 4 h – 8 h · held by Maintenance"
    assert page.describe(Mark("held", ("QA", "3")), zh) == "质量部 持有 · 第 3 手及以后"
    assert page.describe(Mark("flow", ("QA·2", "resolved")), en) == "hand-off Quality·2 → resolved"


def test_the_export_is_the_grid_as_shown(page):
    shown = grid.apply(LIST, [{"colId": "handoffs", "sort": "desc"}], {})
    columns = [{"colId": "handoffs"}, {"colId": "id"}, {"colId": "title", "hide": True},
               {"colId": "response_min"}]
    table = page.export_table(shown, columns, "en")
    assert list(table.columns) == ["Hand-offs", "No.", "Response (min)"]
    assert table["No."].tolist() == ["b", "d", "c", "a"]
    csv = pd.read_csv(io.BytesIO(page.csv_bytes(table)), encoding="utf-8-sig")
    assert csv["No."].tolist() == ["b", "d", "c", "a"]
    assert csv["Response (min)"].tolist()[1:] == [12.5, 30.0, 5.0] and math.isnan(csv["Response (min)"][0])
    assert list(page.export_table(shown, None, "zh").columns) == ["编号", "问题", "响应（分）", "转派"]


def test_a_title_that_looks_like_a_formula_stays_text_in_the_workbook(page):
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(page.xlsx_bytes(LIST[["id", "title", "response_min"]])))
    cells = [[c.value for c in row] for row in book.active.iter_rows()]
    assert cells[0] == ["id", "title", "response_min"]
    assert cells[4] == ["d", "=1+1", 12.5] and book.active["B5"].data_type == "s"
    assert cells[2] == ["b", "burr on L2", None]


def test_a_database_that_does_not_answer_is_said_on_a_whole_page(tmp_path):
    app = floorlink.create_app(f"sqlite:///{tmp_path / 'no-tables.sqlite'}")
    from dashboards import explorer
    with app.server.app_context():
        layout = explorer.layout(lang="en", dept="QA")
    assert "Database unreachable" in texts(layout)
    for part in ("explorer-grid", "explorer-flow", "explorer-filter-department", "explorer-state"):
        assert find(layout, part) is not None, part


def test_the_status_is_the_one_at_the_instant():
    at = END
    stamps = pd.DataFrame({
        "acknowledged_at": [None, at - timedelta(hours=1), at - timedelta(hours=2), None, at],
        "resolved_at": [None, None, at - timedelta(hours=1), None, at + timedelta(minutes=1)],
        "closed_at": [None, None, None, at - timedelta(minutes=5), None],
    }).apply(lambda column: pd.to_datetime(column, utc=True))
    assert explorer_view.status_at(stamps, at).tolist() == ["open", "acknowledged", "resolved", "closed",
                                                            "acknowledged"]


def sorted_and_filtered_as_before(frame: pd.DataFrame, sort, filters) -> pd.DataFrame:
    """The reference order: the filters' rows sorted by pandas, stable, blanks last."""
    keep = np.ones(len(frame), dtype=bool)
    for column, model in filters.items():
        keep &= grid._column_filter(frame, column, model)
    shown = frame[keep]
    sorts = [s for s in sort if s["sort"] in ("asc", "desc")]
    if sorts:
        shown = shown.sort_values([s["colId"] for s in sorts], ascending=[s["sort"] == "asc" for s in sorts],
                                  kind="stable", na_position="last")
    return shown.reset_index(drop=True)


@pytest.mark.parametrize("sort, filters", [
    ([], {}),
    ([{"colId": "raised", "sort": "asc"}], {}),
    ([{"colId": "holder", "sort": "desc"}], {}),
    ([{"colId": "status", "sort": "asc"}, {"colId": "response_min", "sort": "desc"}], {}),
    ([{"colId": "type", "sort": "desc"}, {"colId": "handoffs", "sort": "desc"}, {"colId": "returns", "sort": "asc"}], {}),
    ([{"colId": "line", "sort": "asc"}, {"colId": "cause", "sort": "desc"}], {}),
    ([{"colId": "resolution_min", "sort": "asc"}], {"id": {"filterType": "text", "type": "contains", "filter": "1"},
                                                      "department": {"filterType": "text", "type": "notBlank"}}),
    ([], {"handoffs": {"filterType": "number", "type": "greaterThan", "filter": 0}}),
    ([{"colId": "location", "sort": "asc"}], {"holder": {"filterType": "text", "type": "blank"},
                                                "severity": {"filterType": "text", "type": "notEqual", "filter": "p1"}}),
])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_page_of_the_list_is_that_page_of_the_whole_list_sorted_and_filtered(page, plant_url, sort, filters, lang):
    """The grid's rows (as sent to the browser) and count, against the whole list built and
    sorted by pandas."""
    for marks, show in (((), None), ((Mark("dim", ("department", "QA")),), Mark("dim", ("issue_type", "quality_anomaly")))):
        view = view_of(plant_url, marks=marks)
        whole = sorted_and_filtered_as_before(view.issue_list(show, lang), sort, filters)
        assert len(whole) > 8 and whole["id"].is_unique
        for start, end in ((0, 10), (7, 19), (len(whole) - 5, len(whole) + 100)):
            rows, count = view.list_page(show, lang, sort, filters, start, end)
            assert count == len(whole)
            assert page._json_rows(rows) == page._json_rows(whole.iloc[start:end])


def test_a_view_of_no_issue_draws_every_panel_and_an_empty_list(plant_url):
    view = view_of(plant_url, {"department": ("NO-SUCH-DEPARTMENT",)})
    assert view.known.empty and view.window_intervals.empty
    for panel in explorer_view.PANELS:
        assert view.figure(panel, "en")["layout"]["title"]["text"]
    rows, count = view.list_page(None, "en", [{"colId": "raised", "sort": "desc"}], {}, 0, 100)
    assert count == 0 and rows.empty and list(rows.columns) == [f for f, _ in explorer_view.LIST_COLUMNS]
