"""The Content-Security-Policy in a real headless Chromium against a real server: every page
(the wall's three, the explorer with its grid and charts, an issue's trace, the sign-in, the
404 page, a kiosk screen, a replay) loads and draws under it with no violation reported and
no console error, while a script that is not Dash's own does not run."""
from __future__ import annotations

from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select

from conftest import require_browser
from data import db, demo, timezones
from data.models import Issue
from tools.browser import AppServer, chromium, console_errors, wait_until

pytestmark = pytest.mark.browser

# Heard before any script of the page runs: every violation the page meets, and whether the
# policy is there at all.
LISTEN = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', e => window.__violations.push(
    [e.effectiveDirective, e.blockedURI, e.sample].join(' ')));
"""
DRAWN = "return [...document.querySelectorAll(arguments[0])].filter(g => g.data && g.data.length).length"


@pytest.fixture(scope="module")
def plant_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('plant') / 'headers.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=10, seed=5)
    return url


@pytest.fixture(scope="module")
def issue_id(plant_url):
    with db.get_engine(plant_url).connect() as conn:
        return conn.scalar(select(Issue.id).where(Issue.status == "closed").order_by(Issue.raised_at))


@pytest.fixture(scope="module")
def server(plant_url, tmp_path_factory):
    require_browser()
    app = AppServer(plant_url, tmp_path_factory.mktemp("server")).start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def browser(server):
    driver = chromium(1920, 1080)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": LISTEN})
    yield driver
    driver.quit()


def charts_drawn(driver, selector: str, count: int) -> bool:
    return driver.execute_script(DRAWN, selector) >= count


def wall_updated(driver) -> bool:
    return bool(driver.find_element(By.ID, "wall-updated").text)


def overview(driver) -> bool:
    return charts_drawn(driver, "#overview-trend .js-plotly-plot", 1) \
        and driver.find_elements(By.CSS_SELECTOR, ".board .rows > .row")


def explorer(driver) -> bool:
    return charts_drawn(driver, ".explorer-graph .js-plotly-plot", 6) and driver.execute_script(
        "return document.querySelectorAll('#explorer-grid .ag-row').length") > 0


REPLAY_AT = (timezones.to_site(timezones.utc_now() - timedelta(days=3))).strftime("%Y-%m-%dT%H:%M")
PAGES = {
    "/": lambda d: wall_updated(d) and overview(d),
    "/?kiosk=1": lambda d: wall_updated(d) and overview(d),
    f"/?at={REPLAY_AT}&lang=en": lambda d: overview(d) and d.find_element(By.ID, "wall-replay").text,
    "/issues": lambda d: wall_updated(d) and d.find_elements(By.CSS_SELECTOR, ".board .rows > .row"),
    "/material": lambda d: wall_updated(d) and charts_drawn(d, "#material-stages .js-plotly-plot", 1),
    "/explorer?lang=en": explorer,
    "/issue/{id}": lambda d: d.find_elements(By.CSS_SELECTOR, ".event-row")
    and charts_drawn(d, ".issue-trace .js-plotly-plot", 1),
    "/signin": lambda d: d.find_elements(By.CSS_SELECTOR, "form input[name=password]"),
    "/nowhere": lambda d: d.find_elements(By.CSS_SELECTOR, ".not-found"),
}


@pytest.mark.parametrize("path", PAGES)
def test_every_page_draws_under_the_policy_with_no_violation(server, browser, issue_id, path):
    browser.get(server.url + path.format(id=issue_id))
    wait_until(lambda: PAGES[path](browser), timeout=30, message=f"{path} drawn")
    # A refresh of the wall, and the grid's own requests, have come and gone meanwhile.
    assert browser.execute_script("return window.__violations") == []
    assert console_errors(browser) == []


def test_a_script_that_is_not_dashs_own_does_not_run_and_is_reported(server, browser):
    browser.get(server.url + "/")
    wait_until(lambda: wall_updated(browser), timeout=30, message="the wall")
    browser.execute_script("""
        const injected = document.createElement('script');
        injected.textContent = 'window.__ran = true';
        document.body.appendChild(injected);
        const image = document.createElement('img');
        image.setAttribute('onerror', 'window.__ran = true');
        image.src = 'x';
        document.body.appendChild(image);""")
    wait_until(lambda: len(browser.execute_script("return window.__violations")) == 2,
               message="both refusals reported")
    assert browser.execute_script("return window.__ran === undefined")
    assert all(v.startswith("script-src") for v in browser.execute_script("return window.__violations"))
    console_errors(browser)     # the refusals are console errors too: read, so the next page starts clean
