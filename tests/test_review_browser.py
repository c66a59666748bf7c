"""The review page in real headless Chromium against a real server with sign-in on, on a demo
plant of six weeks: a manager opens it, it renders in Chinese and in English, the week picker
brings another week's figures and the next-week link brings them back, and an action entered
on the page is in the workbook the page's XLSX button downloads."""
from __future__ import annotations

import time

import openpyxl
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from conftest import require_browser
from data import db, demo, timezones
from data.auth import users
from data.reports import weekly
from test_auth_browser import sign_in_with
from tools.browser import AppServer, chromium, console_errors, wait_until

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
# The "this week" column of the KPI table once the pack has drawn.
FIGURES = """
const cells = [...document.querySelectorAll('#review-kpi-table td.this')];
return cells.length ? cells.map(td => td.textContent) : null;
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_browser()
    folder = tmp_path_factory.mktemp("review")
    url = f"sqlite:///{folder / 'plant.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=42, seed=3)
    users.create(engine, "li.na", "manager", PASSWORD, timezones.utc_now())
    db.dispose_all()
    app = AppServer(url, folder, SECRET_KEY="review-browser-key").start()
    app.database_url = url
    yield app
    app.stop()


@pytest.fixture
def browser(server, tmp_path):
    driver = chromium(1920, 1080)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    driver.get(f"{server.url}/review?lang=zh")
    sign_in_with(driver, "li.na", PASSWORD)
    wait_until(lambda: driver.find_elements(By.ID, "review-week"), timeout=30, message="back at the review")
    yield driver
    driver.quit()


def figures(driver, week: str, lang: str) -> list[str]:
    """The week's figures once the page of `week` in `lang` has drawn them."""
    return wait_until(lambda: driver.execute_script(FIGURES) if
                      driver.find_element(By.ID, "review-week").text.startswith(week) and
                      driver.find_elements(By.CSS_SELECTOR, f".desk-review.lang-{lang} #review-kpi-table")
                      else None, timeout=30, message=f"the figures of {week}")


def choose(driver, selector: str, text: str) -> None:
    """Pick the option reading `text` in a dropdown, as a person does."""
    ActionChains(driver).move_to_element(driver.find_element(By.CSS_SELECTOR, selector)).click().perform()
    wait_until(lambda: [o for o in driver.find_elements(By.CSS_SELECTOR, "[role=option]")
                        if o.text == text][0], message=f"the option {text}").click()


def test_the_page_renders_in_both_languages_and_the_week_picker_changes_the_figures(server, browser):
    week = weekly.last_complete_week(timezones.utc_now())
    first = figures(browser, week, "zh")
    assert browser.find_element(By.ID, "desk-title").text.startswith("周例会")
    names = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#review-kpi-table .review-kpi-name")]
    assert names and all(any("\u4e00" <= ch <= "\u9fff" for ch in name) for name in names)
    earlier = weekly.shifted(week, -2)
    choose(browser, "#review-week", earlier)
    wait_until(lambda: f"week={earlier}" in browser.current_url, message="the chosen week in the address")
    before = figures(browser, earlier, "zh")
    assert before != first, "another week, other figures"
    browser.find_element(By.ID, "review-next").click()
    wait_until(lambda: f"week={weekly.shifted(earlier, 1)}" in browser.current_url, message="the next week")
    browser.get(f"{server.url}/review?week={week}&lang=en")
    assert figures(browser, week, "en") == first, "the same week, the same figures, in English"
    assert browser.find_element(By.ID, "desk-title").text.startswith("Weekly review")
    names = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#review-kpi-table .review-kpi-name")]
    assert names and all(name.isascii() for name in names)
    assert browser.find_element(By.ID, "review-source").text.startswith("Not frozen")
    assert console_errors(browser) == []


def test_an_action_entered_on_the_page_is_in_the_xlsx_export(server, browser, tmp_path):
    week = weekly.last_complete_week(timezones.utc_now())
    browser.get(f"{server.url}/review?week={week}&lang=en")
    figures(browser, week, "en")
    issue = browser.find_element(By.CSS_SELECTOR, "#review-worst_breaches a.review-issue").text

    def field(name: str):
        return browser.find_element(By.CSS_SELECTOR, f"[id='{{\"field\":\"{name}\",\"type\":\"review-add\"}}']")

    problem = f"Night shift breaches at {issue}: nobody on call"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", field("problem"))
    field("problem").send_keys(problem)
    field("about_issues").send_keys(issue)
    field("countermeasure").send_keys("A maintenance technician on call every night shift")
    field("owner").send_keys("Wang Gong")
    choose(browser, "[id='{\"field\":\"department_code\",\"type\":\"review-add\"}']", "MNT · Maintenance")
    browser.find_element(By.ID, "review-add-button").click()
    saved = wait_until(lambda: browser.find_element(By.ID, "review-saved").text, message="the action added")
    assert saved.startswith("Action #") and saved.endswith(" added")
    assert problem in browser.find_element(By.ID, "review-register").text
    button = browser.find_element(By.ID, "review-export-xlsx")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    path = tmp_path / f"floorlink-review-{week}-en.xlsx"
    wait_until(lambda: path.exists() and path.stat().st_size > 0, timeout=30, message="the workbook")
    time.sleep(0.5)
    book = openpyxl.load_workbook(path)
    cells = [c for sheet in book for row in sheet.iter_rows(values_only=True) for c in row]
    assert problem in cells and "Wang Gong" in cells
    assert console_errors(browser) == []
