"""The bottleneck explorer in a real headless Chromium against a real server on a demo plant:
a click on a matrix cell, a Pareto bar, a heatmap cell and a hand-off link lists exactly the
issues a plain pandas computation over the raw rows puts behind it; reload shows the same
view, back and forward move between views, "filter here" becomes a removable breadcrumb, and
the exported CSV is the grid as shown."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from sqlalchemy import select

from conftest import require_browser
from data import db, demo
from data.models import Issue, IssueEvent
from data.words import t
from tools.browser import AppServer, chromium, click_plot, console_errors, wait_until

pytestmark = pytest.mark.browser

TZ = ZoneInfo("Asia/Shanghai")
END = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)    # Monday 10:00 in Shanghai
SINCE = END - timedelta(days=7)
ADDRESS = "/explorer?at=2026-11-23T10:00&lang=en"


@pytest.fixture(scope="module")
def plant_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('plant') / 'explorer.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=35, seed=5, end=END)
    return url


@pytest.fixture(scope="module")
def server(plant_url, tmp_path_factory):
    require_browser()
    app = AppServer(plant_url, tmp_path_factory.mktemp("server")).start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def raw(plant_url):
    """The window's issues and the events of every issue, as the database holds them."""
    with db.get_engine(plant_url).connect() as conn:
        issues = pd.DataFrame(conn.execute(select(
            Issue.id, Issue.raised_at, Issue.status, Issue.issue_type)).all())
        events = pd.DataFrame(conn.execute(select(
            IssueEvent.issue_id, IssueEvent.id, IssueEvent.at, IssueEvent.kind,
            IssueEvent.department_code)).all())
    issues["raised_at"] = pd.to_datetime(issues["raised_at"], utc=True)
    events["at"] = pd.to_datetime(events["at"], utc=True)
    window = issues[(issues["raised_at"] >= SINCE) & (issues["raised_at"] < END)
                    & (issues["status"] != "cancelled")]
    known = events[(events["at"] <= END) & events["issue_id"].isin(set(window["id"]))]
    return window, known.sort_values(["issue_id", "at", "id"])


@pytest.fixture
def browser(server, tmp_path):
    driver = chromium(1920, 1080)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    yield driver
    driver.quit()


def open_explorer(driver, url: str) -> None:
    driver.get(url)
    ready(driver)


def leaving(driver) -> None:
    """Note the view drawn now, so that `ready` waits for the next one (the address changes
    before the page is drawn again)."""
    driver.execute_script("window.leftView = document.getElementById('explorer-page').dataset.query")


def ready(driver) -> None:
    """The page of a view other than the one left has drawn its charts and its list says what
    it lists."""
    wait_until(lambda: driver.execute_script(
        "const page = document.getElementById('explorer-page');"
        "return page !== null && page.dataset.query !== window.leftView"), timeout=30,
        message="the next view")
    wait_until(lambda: driver.find_element(By.ID, "explorer-list-what").text, timeout=30,
               message="the issue list's caption")
    wait_until(lambda: driver.execute_script(
        "return [...document.querySelectorAll('.explorer-graph .js-plotly-plot')].every(g => g.layout"
        " && !(g.layout.annotations || []).some(a => a.text === arguments[0]))", t("explorer_loading", "en")),
        timeout=30, message="every chart drawn")


# The busiest cell of a heatmap: its row, column and the codes on its axes.
BUSIEST = """
const trace = document.getElementById(arguments[0]).querySelector('.js-plotly-plot').data[0];
let best = [-1, 0, 0];
trace.z.forEach((row, i) => row.forEach((v, j) => { if (v !== null && v > best[0]) best = [v, i, j]; }));
return [best[1], best[2], trace.y[best[1]], trace.x[best[2]]];
"""


def show_issues(driver) -> str:
    """Take the drill menu's "show the issues" and wait for the list to say so."""
    action = wait_until(lambda: driver.find_element(By.ID, "explorer-action-show"), message="the drill menu")
    count = int(driver.find_element(By.CSS_SELECTOR, ".explorer-drill-what span").text.split()[0].replace(",", ""))
    leaving(driver)
    action.click()
    wait_until(lambda: "show=" in driver.current_url, message="the address to name the mark")
    ready(driver)
    wait_until(lambda: driver.execute_script(
        "return dash_ag_grid.getApi('explorer-grid').paginationGetRowCount()") == count,
        message=f"{count} rows in the grid")
    return driver.current_url


PAGE = """
const api = dash_ag_grid.getApi('explorer-grid');
api.paginationGoToPage(arguments[0]);
const size = api.paginationGetPageSize(), total = api.paginationGetRowCount();
const rows = [];
for (let i = arguments[0] * size; i < Math.min(total, (arguments[0] + 1) * size); i++) {
  const node = api.getDisplayedRowAtIndex(i);
  if (!node || !node.data) return null;
  rows.push(node.data);
}
return rows;
"""


def grid_rows(driver) -> list[dict]:
    """Every row of the grid, page after page, as the server sent them."""
    pages = driver.execute_script("return dash_ag_grid.getApi('explorer-grid').paginationGetTotalPages()")
    rows = []
    for page in range(pages):
        rows += wait_until(lambda: driver.execute_script(PAGE, page), message=f"page {page + 1}")
    driver.execute_script("dash_ag_grid.getApi('explorer-grid').paginationGoToPage(0)")
    return rows


def grid_ids(driver) -> list[str]:
    return [row["id"] for row in grid_rows(driver)]


def holders(events: pd.DataFrame) -> dict[str, list[tuple[str, str]]]:
    return {issue: list(zip(group["kind"], group["department_code"])) for issue, group in events.groupby("issue_id")}


def test_each_click_lists_exactly_the_issues_behind_it(browser, server, raw):
    window, events = raw
    open_explorer(browser, server.url + ADDRESS)
    assert browser.find_element(By.ID, "explorer-list-what").text == f"all {len(window):,} issues of the window"

    # The busiest cell of the hand-off matrix: issues handed from one department to the other.
    i, j, giver, taker = browser.execute_script(BUSIEST, "explorer-matrix")
    click_plot(browser, "explorer-matrix", j, i)
    assert wait_until(lambda: browser.find_element(By.ID, "explorer-drill").text).startswith("hand-offs ")
    show_issues(browser)
    handed = set()
    for issue, steps in holders(events).items():
        holder = None
        for kind, department in steps:
            if department is not None and holder not in (None, department) and kind in ("reassigned", "escalated") \
                    and (holder, department) == (giver, taker):
                handed.add(issue)
            holder = department if department is not None else holder
    assert handed and set(grid_ids(browser)) == handed
    matrix_view = browser.current_url

    # The longest bar of the Pareto of issue types.
    open_explorer(browser, server.url + ADDRESS)
    top_type = window["issue_type"].value_counts().sort_index().sort_values(ascending=False, kind="stable").index[0]
    click_plot(browser, "explorer-pareto", 0, 1)
    show_issues(browser)
    assert set(grid_ids(browser)) == set(window["id"][window["issue_type"] == top_type])
    assert f"show=dim:issue_type|{top_type}" in browser.current_url

    # The busiest hour of the week.
    open_explorer(browser, server.url + ADDRESS)
    day, hour, _, _ = browser.execute_script(BUSIEST, "explorer-heat_raised")
    click_plot(browser, "explorer-heat_raised", hour, day)
    show_issues(browser)
    local = window["raised_at"].dt.tz_convert(TZ)
    assert set(grid_ids(browser)) == set(window["id"][(local.dt.day_of_week == day) & (local.dt.hour == hour)])

    # Back to the matrix cell's list, and forward again.
    # Between them: the address opened for each click, and the Pareto bar's list.
    heat_view = browser.current_url
    leaving(browser)
    for _ in range(4):
        browser.back()
    wait_until(lambda: browser.current_url == matrix_view, message="back to the matrix cell's list")
    ready(browser)
    wait_until(lambda: set(grid_ids(browser)) == handed, message="the matrix cell's issues again")
    for _ in range(4):
        browser.forward()
    wait_until(lambda: browser.current_url == heat_view, message="forward to the hour's list")
    assert console_errors(browser) == []


SANKEY_LINK = """
// A hand-off from one department at hop 1 to another at hop 2, and a point inside its band
// and inside no other link's (plotly picks one of the links under the pointer).
const paths = [...document.querySelectorAll('#explorer-flow .sankey-link')];
const svg = paths[0].ownerSVGElement;
const inside = (path, x, y) => {
  const point = svg.createSVGPoint();
  point.x = x; point.y = y;
  return path.isPointInFill(point.matrixTransform(path.getScreenCTM().inverse()));
};
const plot = document.querySelector('#explorer-flow .js-plotly-plot').getBoundingClientRect();
for (const path of paths) {
  const link = path.__data__.link;
  const [from, to] = [link.source.label.split('·'), link.target.label.split('·')];
  if (from[1] !== '1' || to[1] !== '2' || from[0] === to[0]) continue;
  const box = path.getBoundingClientRect();
  for (let x = box.left + 2; x < box.right - 2; x += 4) {
    for (let y = box.top + 1; y < box.bottom - 1; y += 1) {
      if (inside(path, x, y) && paths.every(other => other === path || !inside(other, x, y))) {
        return [x - plot.left, y - plot.top];
      }
    }
  }
}
return null;
"""


def test_a_hand_off_link_lists_the_issues_that_took_it(browser, server, raw):
    window, events = raw
    open_explorer(browser, server.url + ADDRESS)
    graph = browser.find_element(By.ID, "explorer-flow")
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", graph)
    time.sleep(0.5)
    found = browser.execute_script(SANKEY_LINK)
    assert found, "a hand-off from one department at hop 1 to another at hop 2"
    x, y = found
    ActionChains(browser).move_to_element_with_offset(
        graph.find_element(By.CSS_SELECTOR, ".js-plotly-plot"), int(x), int(y)).pause(0.3).click().perform()
    show_issues(browser)
    mark = unquote(browser.current_url).split("show=flow:")[1].split("#")[0]
    source, target = (part.split("·")[0] for part in mark.split("|"))
    first_two = {}
    for issue, steps in holders(events).items():
        sequence = []
        for _, department in steps:
            if department is not None and (not sequence or sequence[-1] != department):
                sequence.append(department)
        first_two[issue] = tuple(sequence[:2])
    assert set(grid_ids(browser)) == {issue for issue, pair in first_two.items() if pair == (source, target)}


def test_reload_shows_the_same_view_and_a_filter_is_a_removable_breadcrumb(browser, server, raw):
    open_explorer(browser, server.url + ADDRESS)
    i, j, giver, taker = browser.execute_script(BUSIEST, "explorer-matrix")
    click_plot(browser, "explorer-matrix", j, i)
    action = wait_until(lambda: browser.find_element(By.ID, "explorer-action-filter"))
    leaving(browser)
    action.click()
    wait_until(lambda: "mark=matrix" in browser.current_url, message="the mark in the address")
    ready(browser)
    chip = wait_until(lambda: browser.find_element(By.CSS_SELECTOR, ".explorer-chip.mark"))
    assert chip.text.startswith("hand-offs ")
    summary, listed = browser.find_element(By.ID, "explorer-summary").text, grid_ids(browser)
    browser.refresh()
    ready(browser)
    wait_until(lambda: grid_ids(browser) == listed, message="the same list after a reload")
    assert browser.find_element(By.ID, "explorer-summary").text == summary
    leaving(browser)
    browser.find_element(By.CSS_SELECTOR, ".explorer-chip.mark .explorer-chip-remove").click()
    wait_until(lambda: "mark=" not in browser.current_url, message="the mark removed")
    ready(browser)
    assert browser.find_element(By.ID, "explorer-list-what").text.startswith("all ")


def test_the_exported_csv_is_the_grid_as_shown(browser, server, tmp_path):
    open_explorer(browser, server.url + ADDRESS + "&dept=QA")
    browser.execute_script("document.getElementById('explorer-grid').scrollIntoView({block: 'center'});"
                           "dash_ag_grid.getApi('explorer-grid').ensureColumnVisible('response_min')")

    def sort_by_response() -> bool:
        browser.find_element(
            By.CSS_SELECTOR, "#explorer-grid .ag-header-cell[col-id='response_min'] .ag-header-cell-label").click()
        return True

    wait_until(sort_by_response, message="the response column's head")
    wait_until(lambda: browser.execute_script(
        "return dash_ag_grid.getApi('explorer-grid').getColumnState()"
        ".some(c => c.colId === 'response_min' && c.sort === 'asc')"), message="sorted by response")
    time.sleep(1.5)
    layout = browser.execute_script("""
        const api = dash_ag_grid.getApi('explorer-grid');
        const columns = api.getColumnState().filter(c => !c.hide).map(c => c.colId);
        return {heads: columns.map(c => api.getColumn(c).getColDef().headerName),
                pages: api.paginationGetTotalPages(), count: api.paginationGetRowCount()};
    """)
    assert layout["pages"] >= 2, "the list is paged on the server"
    shown = grid_rows(browser)
    assert len(shown) == layout["count"]
    browser.find_element(By.ID, "explorer-export-csv").click()
    files = wait_until(lambda: [p for p in tmp_path.glob("*.csv")], message="the CSV file")
    exported = pd.read_csv(files[0], encoding="utf-8-sig", dtype={"No.": str})
    assert list(exported.columns) == layout["heads"]
    assert exported["No."].tolist() == [row["id"] for row in shown]
    response = [row["response_min"] for row in shown]
    assert exported["Response (min)"].tolist() == pytest.approx(
        [float("nan") if v is None else v for v in response], nan_ok=True)
    known = [v for v in response if v is not None]
    assert known == sorted(known)


def test_the_filters_and_the_window_go_to_the_address(browser, server, plant_url):
    open_explorer(browser, server.url + ADDRESS)
    dropdown = browser.find_element(By.ID, "explorer-filter-department")
    ActionChains(browser).move_to_element(dropdown).click().perform()
    option = wait_until(lambda: [o for o in browser.find_elements(By.CSS_SELECTOR, "[role=option]")
                                 if o.text == "Maintenance"][0], message="the department's choices")
    leaving(browser)
    option.click()
    wait_until(lambda: "dept=MNT" in browser.current_url, message="the department in the address")
    ready(browser)
    leaving(browser)
    browser.find_element(By.CSS_SELECTOR, "#explorer-window label[data-option-index='3']").click()
    wait_until(lambda: "window=30d" in browser.current_url, message="thirty days in the address")
    ready(browser)
    with db.get_engine(plant_url).connect() as conn:
        raised = conn.execute(select(Issue.id).where(
            Issue.owner_department_code == "MNT", Issue.status != "cancelled",
            Issue.raised_at >= END - timedelta(days=30), Issue.raised_at < END)).all()
    wait_until(lambda: f"{len(raised):,} raised" in browser.find_element(By.ID, "explorer-summary").text,
               message=f"{len(raised)} raised over thirty days")
    assert browser.find_element(By.ID, "explorer-list-what").text == f"all {len(raised):,} issues of the window"
    field = browser.find_element(By.ID, "explorer-at")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("next Tuesday" + Keys.ENTER)
    assert wait_until(lambda: browser.find_element(By.ID, "explorer-input-error").text).startswith(
        "As of: “next Tuesday” is not a time")
    assert "window=30d" in browser.current_url and "next" not in browser.current_url


def test_an_issue_opens_from_the_list_at_the_views_instant(browser, server):
    """A view of a past instant opens an issue's trace at that instant, in its language."""
    open_explorer(browser, server.url + ADDRESS)
    browser.execute_script("document.getElementById('explorer-grid').scrollIntoView({block: 'center'})")
    link = wait_until(lambda: browser.find_element(By.CSS_SELECTOR, "#explorer-grid a.explorer-issue-link"),
                      message="an issue number in the list")
    issue_id = link.text
    assert unquote(link.get_attribute("href")).endswith("?lang=en&at=2026-11-23T10:00")
    link.click()
    heading = wait_until(lambda: browser.find_element(By.TAG_NAME, "h1").text, message="the trace")
    assert issue_id in heading
    assert t("issue_as_of", "en").format(at="2026-11-23 10:00:00") in browser.find_element(By.TAG_NAME, "body").text
