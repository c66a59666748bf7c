"""The board's links to an issue's trace, and a phone board of thousands of open issues, in
a real headless Chromium against a real server.

Off kiosk, an issue's number on the board (a row on /issues, a card on /) opens /issue/<id>
in the screen's language and at the instant it replays; a kiosk's board links nothing. An id
holding markup is a link to its encoded address and reads as text. On a phone the board pages
ten issues at a time and says how many it holds, so a plant with 2,000 open issues answers.
"""
from __future__ import annotations

import math
import time
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.remote_connection import RemoteConnection

from conftest import require_browser
from data import db, demo, kpis, queries, store, timezones
from data.models import Department
from tools.browser import AppServer, chromium, console_errors, wait_until

pytestmark = pytest.mark.browser

TEST_DEPT = "TST"
# An id that would be markup if it were written as HTML, and an address if not encoded.
MARKUP_ID = 'T-<b>&"/1'
PHONE = (390, 844)
# Issues the crowded plant adds to the demo plant's own open ones.
CROWD = 2000


def _plant(url: str, extra_open: int = 0) -> None:
    """A one-week demo plant ending now, a department of the tests' own and, in it, the
    markup id raised a minute ago plus `extra_open` issues raised over the last day."""
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=7, seed=3)
    with engine.begin() as conn:
        store.upsert_rows(conn, Department, [{"code": TEST_DEPT, "name_zh": "测试部", "name_en": "Test"}])
    now = timezones.utc_now()
    with db.session_scope(engine) as s:
        store.raise_issue(s, issue_id=MARKUP_ID, issue_type="quality_anomaly", title="<i>标题</i>",
                          severity="P1", at=now - timedelta(minutes=1), owner_department_code=TEST_DEPT)
        for i in range(extra_open):
            store.raise_issue(s, issue_id=f"C-{i:05d}", issue_type="quality_anomaly", title=f"crowd {i}",
                              severity=f"P{1 + i % 4}", at=now - timedelta(seconds=40 * i + 90),
                              owner_department_code=TEST_DEPT)
    engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_browser()
    folder = tmp_path_factory.mktemp("links")
    url = f"sqlite:///{folder / 'links.sqlite'}"
    _plant(url)
    app = AppServer(url, folder).start()
    yield app
    app.stop()


@pytest.fixture
def browser():
    drivers = []

    def open_(size=(1920, 1080), answer_within: float | None = None):
        """A browser; with `answer_within`, one whose every command fails after that many
        seconds, so a page that hangs fails the test instead of stalling it."""
        if answer_within:
            RemoteConnection.set_timeout(answer_within)
        try:
            drivers.append(chromium(*size))
        finally:
            RemoteConnection.reset_timeout()
        return drivers[-1]

    yield open_
    for driver in drivers:
        driver.quit()


# Each board row's number cell: its text, and the link inside it if any (href as written).
NUMBERS = """
return [...document.querySelectorAll('.board .rows > .row .c-id')].map(cell => {
  const link = cell.querySelector('a');
  return {text: cell.innerText, href: link ? link.getAttribute('href') : null,
          markup: cell.querySelectorAll('b, i').length,
          focusable: cell.querySelectorAll('a, button, [tabindex]').length};
});
"""


def numbers(driver) -> list[dict]:
    return wait_until(lambda: driver.execute_script(NUMBERS), message="board rows")


def click_number(driver, issue_id: str | None = None) -> dict:
    """Click the link of a number on the board (the first, or `issue_id`'s) in one script,
    since the board is redrawn every second; what it read before clicking."""
    return driver.execute_script("""
        const links = [...document.querySelectorAll('.board .rows > .row .c-id a')];
        const link = arguments[0] === null ? links[0] : links.find(a => a.textContent === arguments[0]);
        const read = {text: link.textContent, href: link.getAttribute('href')};
        link.click();
        return read;""", issue_id)


def trace_href(issue_id: str, **query: str) -> str:
    return f"/issue/{quote(issue_id, safe='')}?{urlencode(query)}"


@pytest.mark.parametrize("path", ["/issues", "/"], ids=["board", "cards"])
def test_a_number_on_the_board_opens_its_trace(server, browser, path):
    driver = browser()
    driver.get(f"{server.url}{path}?lang=en")
    numbers(driver)
    clicked = click_number(driver)
    assert clicked["href"] == trace_href(clicked["text"], lang="en")
    wait_until(lambda: driver.find_element(By.ID, "desk-title").text
               == f"Issue {clicked['text']} · responsibility trace", message="the issue's trace")
    assert console_errors(driver) == []


def test_a_kiosk_board_links_nothing(server, browser):
    driver = browser()
    driver.get(f"{server.url}/issues?kiosk=1&lang=en")
    shown = numbers(driver)
    assert shown and all(n["text"] for n in shown)
    assert [n["href"] for n in shown] == [None] * len(shown)
    assert {n["focusable"] for n in shown} == {0}


def test_an_id_holding_markup_links_to_its_encoded_address_and_reads_as_text(server, browser):
    driver = browser()
    driver.get(f"{server.url}/issues?dept={TEST_DEPT}&lang=en")
    row = wait_until(lambda: next(n for n in driver.execute_script(NUMBERS) if n["text"] == MARKUP_ID),
                     message="the markup id's row")
    assert row["href"] == "/issue/T-%3Cb%3E%26%22%2F1?lang=en" == trace_href(MARKUP_ID, lang="en")
    assert row["markup"] == 0
    click_number(driver, MARKUP_ID)
    wait_until(lambda: driver.find_element(By.ID, "desk-title").text
               == f"Issue {MARKUP_ID} · responsibility trace", message="the markup id's trace")
    assert driver.find_element(By.CSS_SELECTOR, ".issue-heading").text == "<i>标题</i>"


def test_a_replayed_board_opens_the_trace_at_its_instant(server, browser):
    at = timezones.to_site(timezones.utc_now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    driver = browser()
    driver.get(f"{server.url}/issues?lang=en&at={at}")
    numbers(driver)
    clicked = click_number(driver)
    assert clicked["href"] == trace_href(clicked["text"], lang="en", at=at)
    note = wait_until(lambda: driver.find_element(By.CSS_SELECTOR, ".issue-notice").text,
                      message="the trace's instant")
    assert note == f"As of {at.replace('T', ' ')}:00 (site time)"


@pytest.fixture(scope="module")
def crowded(tmp_path_factory):
    """A plant with more than 2,000 open issues, and how many are open now."""
    require_browser()
    folder = tmp_path_factory.mktemp("crowded")
    url = f"sqlite:///{folder / 'crowded.sqlite'}"
    _plant(url, extra_open=CROWD)
    with db.get_engine(url).connect() as conn:
        now = timezones.utc_now()
        opened = int(kpis.open_mask(queries.open_issues(conn, now), now).sum())
    app = AppServer(url, folder).start()
    yield app, opened
    app.stop()


def test_a_phone_pages_a_board_of_thousands_and_answers(crowded, browser):
    app, opened = crowded
    assert opened > CROWD
    driver = browser(PHONE, answer_within=30)
    driver.get(f"{app.url}/issues?lang=en")
    pager = wait_until(lambda: driver.find_element(By.ID, "issues-board-pager").text, timeout=30,
                       message="the phone board's pager")
    pages = math.ceil(opened / 10)
    assert f"{opened:,} issues" in pager.splitlines()
    assert any(line.startswith("page ") and line.endswith(f" of {pages}") for line in pager.splitlines())
    assert len(driver.execute_script(NUMBERS)) == 10
    slowest = 0.0
    for _ in range(5):
        started = time.monotonic()
        driver.execute_script("return document.querySelectorAll('.board .rows > .row').length")
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.7)
    assert slowest < 1.0
    clicked = click_number(driver)
    wait_until(lambda: driver.find_element(By.ID, "desk-title").text
               == f"Issue {clicked['text']} · responsibility trace", timeout=10, message="the trace")
