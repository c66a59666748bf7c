"""The corpus of tests/hostile.py in a real headless Chromium against a real server: titles,
notes, names, lots and the address of every page holding script, markup, links and
formulas. No script runs (window.__pwned stays unset, no alert opens, no element of the
payloads' markup exists) while each text is shown as the text it is."""
from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from conftest import require_browser
from tests.hostile import TEXTS
from tests.test_hostile_doors import (
    HOSTILE_DEPT, HOSTILE_ID, WRITER, issue_id, write_hostile_plant,
)
from tools.browser import AppServer, chromium, console_errors, wait_until

pytestmark = pytest.mark.browser

# Elements the payloads would make if their markup were read as markup.
PAYLOAD_MARKUP = "img[src='x'], svg[onload], iframe, [onerror], [onload], a[href^='javascript']"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_browser()
    url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'hostile.sqlite'}"
    write_hostile_plant(url)
    app = AppServer(url, tmp_path_factory.mktemp("server")).start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def browser(server):
    driver = chromium(1920, 1080)
    yield driver
    driver.quit()


def texts(driver, selector: str) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent);", selector)


def shown_as_typed(driver, at_least: int) -> None:
    """The board's rows (whichever page it shows: pages turn with the clock) are the hostile
    issues, each title the corpus text exactly."""
    wait_until(lambda: len(texts(driver, ".rows .c-title")) >= at_least, message="the hostile board")
    shown = texts(driver, ".rows .c-title")
    assert set(shown) <= set(TEXTS.values()), shown


def nothing_ran(driver) -> None:
    try:
        opened = driver.switch_to.alert.text
    except NoAlertPresentException:
        opened = None
    assert opened is None, f"an alert opened: {opened!r}"
    assert driver.execute_script("return window.__pwned") is None
    assert driver.execute_script("return document.querySelectorAll(arguments[0]).length",
                                 PAYLOAD_MARKUP) == 0


def test_the_board_shows_every_hostile_title_as_text(server, browser):
    """The hostile department's whole board, its name in the header, and titles holding
    script, markup and links drawn as typed."""
    browser.get(f"{server.url}/issues?lang=en&dept={quote(HOSTILE_DEPT, safe='')}")
    shown_as_typed(browser, 10)
    assert TEXTS["img onerror"] in browser.find_element(By.ID, "wall-scope").text
    nothing_ran(browser)
    assert console_errors(browser) == []


def test_the_overview_and_material_pages_show_hostile_names_as_text(server, browser):
    browser.get(f"{server.url}/?lang=en&dept={quote(HOSTILE_DEPT, safe='')}")
    shown_as_typed(browser, 3)
    assert TEXTS["img onerror"] in browser.find_element(By.CSS_SELECTOR, ".overview").text
    nothing_ran(browser)
    browser.get(f"{server.url}/material?lang=en")
    wait_until(lambda: TEXTS["iframe"] in browser.find_element(By.TAG_NAME, "body").text,
               message="the stagnant lot at the hostile location")
    body = browser.execute_script("return document.body.textContent")
    assert TEXTS["javascript url"] in body and TEXTS["script"][:64] in body
    nothing_ran(browser)


def test_the_issue_page_shows_title_notes_and_who_recorded_them_as_text(server, browser):
    for n, text in list(enumerate(TEXTS.values()))[:6]:
        browser.get(f"{server.url}/issue/{issue_id(n)}?lang=en")
        wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".event-row"), message="the events")
        assert browser.find_element(By.CSS_SELECTOR, ".issue-heading").get_property("textContent") == text
        assert text in texts(browser, ".event-row td")
        assert set(texts(browser, ".event-recorded-by")) == {f"user:{WRITER}"}
        nothing_ran(browser)
    browser.get(f"{server.url}/issue/{quote(HOSTILE_ID, safe='')}?lang=en")
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".issue-heading"), message="the markup id")
    assert HOSTILE_ID in browser.find_element(By.ID, "desk-title").get_property("textContent")
    nothing_ran(browser)
    assert console_errors(browser) == []


def test_the_explorer_grid_shows_hostile_titles_as_text(server, browser):
    browser.get(f"{server.url}/explorer?lang=en&type=hostile")
    wait_until(lambda: TEXTS["script"] in texts(browser, ".ag-cell[col-id='title']"),
               timeout=30, message="the grid's hostile titles")
    shown = set(texts(browser, ".ag-cell[col-id='title']"))
    assert {TEXTS["img onerror"], TEXTS["markdown"], TEXTS["hyperlink formula"]} <= shown
    nothing_ran(browser)


def test_a_hostile_address_is_said_back_as_text(server, browser):
    params = {"lang": TEXTS["script"], "dept": TEXTS["img onerror"], "line": TEXTS["svg onload"],
              "at": TEXTS["iframe"], "kiosk": TEXTS["javascript url"], "rotate": TEXTS["markdown"],
              "every": TEXTS["right-to-left override"]}
    browser.get(f"{server.url}/?{urlencode(params)}")
    wait_until(lambda: browser.find_element(By.ID, "wall-params").text, message="the address's notices")
    notices = browser.find_element(By.ID, "wall-params").get_property("textContent")
    assert TEXTS["script"][:23] in notices and TEXTS["javascript url"][:23] in notices
    wait_until(lambda: TEXTS["svg onload"] in texts(browser, "#wall-scope")[0],
               message="the line asked for, in the header")
    nothing_ran(browser)
