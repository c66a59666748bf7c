"""The issue page in a real headless Chromium against a real server on a demo plant: a
ping-pong issue's lanes, its return mark and every event row; the language switch keeping the
address; an unknown id; the desk frame instead of the wall's header, and a page that scrolls."""
from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from selenium.webdriver.common.by import By

from conftest import require_browser
from data import db, demo, queries, timezones
from data.analysis.holding import holding_intervals
from tools.browser import AppServer, chromium, console_errors, wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def plant_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('plant') / 'issue.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=7, seed=3)
    return url


@pytest.fixture(scope="module")
def ping_pong(plant_url):
    """The finished demo issue with the most returns (then hops), its events and its hops."""
    as_of = timezones.utc_now()
    with db.get_engine(plant_url).connect() as conn:
        issues = queries.issue_population(conn, as_of - timedelta(days=30), as_of)
        events = queries.holder_events(conn, as_of - timedelta(days=30), as_of, as_of)
    hops = holding_intervals(issues, events, as_of)
    finished = set(issues.loc[issues["status"] == "closed", "id"])
    per_issue = hops[hops["issue_id"].isin(finished)].groupby("issue_id").agg(
        returns=("returned", "sum"), hops=("hop", "max"))
    issue_id = per_issue.sort_values(["returns", "hops"], ascending=False).index[0]
    assert per_issue.loc[issue_id, "returns"] >= 1
    with db.get_engine(plant_url).connect() as conn:
        record = queries.issue_timeline(conn, issue_id)
    return issue_id, record, hops[hops["issue_id"] == issue_id]


@pytest.fixture(scope="module")
def server(plant_url, tmp_path_factory):
    require_browser()
    app = AppServer(plant_url, tmp_path_factory.mktemp("server")).start()
    yield app
    app.stop()


@pytest.fixture
def browser(server):
    driver = chromium(1920, 1080)
    yield driver
    driver.quit()


def texts(driver, selector: str) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent);", selector)


def test_a_ping_pong_issue_shows_its_lanes_its_return_and_every_event(server, browser, ping_pong):
    issue_id, record, hops = ping_pong
    browser.get(f"{server.url}/issue/{issue_id}?lang=en")
    wait_until(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".event-row")) == len(record.events)
               and texts(browser, ".issue-trace .ytick text"), message="the trace and its events")
    names = dict(zip(record.events["department_code"], record.events["department_name_en"]))
    expected_lanes = list(dict.fromkeys(names[code] for code in hops["department_code"]))
    assert texts(browser, ".issue-trace .ytick text") == expected_lanes
    assert len(browser.find_elements(By.CSS_SELECTOR, ".issue-trace .point path")) >= len(hops)
    assert any("⇄" in text for text in texts(browser, ".issue-trace text.bartext"))
    returned = int(hops["returned"].sum())
    assert len(browser.find_elements(By.CSS_SELECTOR, ".event-row.return")) == returned
    assert texts(browser, ".event-row.return .return-mark") == ["⇄ return "] * returned
    first_cells = texts(browser, ".event-row:first-child td")
    zone = timezones.site_zone()
    assert first_cells[0] == pd.Timestamp(record.events["at"].iloc[0]).tz_convert(zone).strftime("%Y-%m-%d %H:%M:%S")
    assert first_cells[1] == "raised"
    # The desk frame, not the wall's ticking header; the page scrolls to its last event.
    assert not browser.find_element(By.CSS_SELECTOR, ".wall-header").is_displayed()
    assert browser.find_element(By.CSS_SELECTOR, ".desk-header").is_displayed()
    assert browser.execute_script("window.scrollTo(0, 1e6); return window.scrollY;") > 0
    assert console_errors(browser) == []


def test_the_language_switch_keeps_the_rest_of_the_address(server, browser, ping_pong):
    issue_id, record, _ = ping_pong
    at = pd.Timestamp(record.events["at"].iloc[-1]).isoformat()
    browser.get(f"{server.url}/issue/{issue_id}?lang=en&at={at.replace('+', '%2B')}")
    wait_until(lambda: browser.find_element(By.ID, "desk-title").text.startswith("Issue"),
               message="the English page")
    link = browser.find_element(By.ID, "desk-lang-zh")
    wait_until(lambda: "at=" in link.get_attribute("href"), message="the switch to keep ?at=")
    link.click()
    wait_until(lambda: browser.find_element(By.ID, "desk-title").text == f"问题 {issue_id} · 责任追溯",
               message="the Chinese page")
    assert "lang=zh" in browser.current_url and "at=" in browser.current_url
    assert texts(browser, ".event-row:first-child td")[1] == "发起"


def test_an_unknown_issue_says_so(server, browser):
    browser.get(f"{server.url}/issue/NO-SUCH-1?lang=en")
    wait_until(lambda: browser.find_element(By.ID, "desk-title").text == "No such issue",
               message="the no-such-issue page")
    assert "NO-SUCH-1" in browser.find_element(By.CSS_SELECTOR, ".issue-missing").text
    assert console_errors(browser) == []
