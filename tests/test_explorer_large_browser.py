"""A window of 100,000 issues in the explorer, in a real headless Chromium: the list says how
many it holds, the grid asks the server for one page at a time and is sent that page only,
the last page is the last rows of the whole list, and the page stays answering meanwhile."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from bench import workloads
from conftest import require_browser
from data import db
from data.models import Issue
from tools.browser import AppServer, chromium, console_errors, wait_until

pytestmark = pytest.mark.browser

# The W-M workload at 0.11: some 110,000 issues over the 110 days before its end.
SCALE = 0.11
SINCE, UNTIL = "2026-07-01T00:00", "2026-11-20T10:00"
ADDRESS = f"/explorer?lang=en&window=custom&since={SINCE}&until={UNTIL}&at={UNTIL}"
PAGE_ROWS = 50

# Every answer of the grid's page callback, as the browser received it.
RECORDER = """
window.__pages = [];
const through = window.fetch;
window.fetch = async (resource, options) => {
  const answer = await through(resource, options);
  if (String(resource).includes('_dash-update-component')
      && String(options && options.body).includes('getRowsRequest')) {
    answer.clone().text().then((body) => window.__pages.push({bytes: body.length, body: body}));
  }
  return answer;
};
"""


@pytest.fixture(scope="module")
def plant_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('large') / 'large.sqlite'}"
    workloads.build(url, "W-M", scale=SCALE)
    return url


@pytest.fixture(scope="module")
def in_window(plant_url) -> int:
    """The issues of the window, counted by SQL (site time is UTC+8)."""
    since = datetime(2026, 6, 30, 16, 0, tzinfo=timezone.utc)
    until = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
    with db.get_engine(plant_url).connect() as conn:
        return conn.execute(select(func.count()).select_from(Issue).where(
            Issue.raised_at >= since, Issue.raised_at < until, Issue.status != "cancelled")).scalar()


def test_a_window_of_100000_issues_is_listed_a_page_at_a_time(plant_url, in_window, tmp_path):
    require_browser()
    assert in_window >= 100_000
    server = AppServer(plant_url, tmp_path).start()
    driver = chromium(1920, 1080)
    try:
        driver.get("about:blank")
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER})
        driver.get(server.url + ADDRESS)
        wait_until(lambda: driver.execute_script(
            "const e = document.getElementById('explorer-list-what'); return e && e.innerText;")
            == f"all {in_window:,} issues of the window", timeout=120, message="the list's count")
        pages = wait_until(lambda: driver.execute_script("return window.__pages;"), timeout=60,
                           message="the grid's first page")
        first = json.loads(pages[0]["body"])["response"]["explorer-grid"]["getRowsResponse"]
        assert first["rowCount"] == in_window
        assert len(first["rowData"]) == PAGE_ROWS
        # One page is sent, not the list: some hundreds of bytes a row.
        assert pages[0]["bytes"] < 1_000 * PAGE_ROWS

        driver.execute_script("dash_ag_grid.getApi('explorer-grid').paginationGoToLastPage()")
        last = wait_until(lambda: [json.loads(p["body"])["response"]["explorer-grid"]["getRowsResponse"]
                                   for p in driver.execute_script("return window.__pages;")[1:]],
                          timeout=60, message="the last page")[-1]
        assert last["rowCount"] == in_window
        assert len(last["rowData"]) == in_window - (in_window - 1) // PAGE_ROWS * PAGE_ROWS
        assert not {row["id"] for row in last["rowData"]} & {row["id"] for row in first["rowData"]}
        shown = wait_until(lambda: driver.execute_script(
            "return dash_ag_grid.getApi('explorer-grid').paginationGetCurrentPage();"), timeout=30,
            message="the grid on its last page")
        assert shown == (in_window - 1) // PAGE_ROWS
        # The page still answers: a script runs at once.
        assert driver.execute_script("return 1 + 1") == 2
        assert console_errors(driver) == []
    finally:
        driver.quit()
        server.stop()
