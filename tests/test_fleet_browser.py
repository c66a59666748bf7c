"""The fleet page in real headless Chromium against a real server with sign-in on: two wall
screens opened with their tokens refresh and are listed live, with what their browsers
sent; one is closed, and the fleet page an admin watches flags it dark within two
intervals of its close, while the other stays live. Names and browsers holding markup are
shown as text."""
from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By

from conftest import require_browser
from data import db, demo, timezones
from data.auth import screens, users
from test_auth_browser import sign_in_with
from tools.browser import AppServer, chromium, console_errors, wait_until

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
REFRESH_S = 3
HOSTILE_NAME = "TV <b>L3</b>"
HOSTILE_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0 Safari/537.36 "
                 "<img src=x onerror=\"window.__pwned=1\">")
# Each row of the table: its screen's name, its state and the text under it.
ROWS = """
return [...document.querySelectorAll('#fleet-rows tr')].map(tr => ({
  screen: tr.querySelector('.fleet-screen').textContent,
  state: tr.querySelector('.fleet-state-name').textContent,
  since: (tr.querySelector('.fleet-since') || {}).textContent || '',
  browser: tr.querySelector('.fleet-browser').textContent,
  agent: tr.querySelector('.fleet-browser span').title,
  kiosk: tr.querySelector('.fleet-kiosk').textContent,
  scope: tr.querySelector('.fleet-scope').textContent,
  lang: tr.querySelector('.fleet-lang').textContent,
}));
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_browser()
    folder = tmp_path_factory.mktemp("fleet")
    url = f"sqlite:///{folder / 'plant.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=2, seed=3)
    users.create(engine, "wang.wu", "admin", PASSWORD, timezones.utc_now())
    db.dispose_all()
    app = AppServer(url, folder, SECRET_KEY="fleet-browser-key", REFRESH_S=str(REFRESH_S)).start()
    app.database_url = url
    yield app
    app.stop()


def open_screen(server, name: str, query: str, agent: str | None = None):
    _, token = screens.create(db.get_engine(server.database_url), name, timezones.utc_now())
    driver = chromium(1920, 1080)
    if agent:
        driver.execute_cdp_cmd("Network.setUserAgentOverride", {"userAgent": agent})
    driver.get(f"{server.url}/{query}&screen={token}")
    wait_until(lambda: driver.find_element(By.ID, "wall-updated").text, timeout=30,
               message=f"{name} refreshing")
    return driver


def test_a_closed_screen_is_flagged_dark_within_two_intervals(server):
    line = open_screen(server, "TV L2", "issues?kiosk=1&lang=en&line=L2")
    hostile = open_screen(server, HOSTILE_NAME, "?kiosk=0", agent=HOSTILE_AGENT)
    admin = chromium(1920, 1080)
    try:
        admin.get(f"{server.url}/fleet?lang=en")
        sign_in_with(admin, "wang.wu", PASSWORD)
        wait_until(lambda: admin.current_url.endswith("/fleet?lang=en"), message="back at the fleet page")

        def listed():
            """Both screens live, each as its latest refresh said (a page's first refresh may
            come before its shell knows whether it is a kiosk)."""
            rows = {row["screen"]: row for row in admin.execute_script(ROWS)}
            return rows if {"TV L2", HOSTILE_NAME} <= set(rows) and all(
                row["state"] == "Live" and row["kiosk"] for row in rows.values()) else None

        rows = wait_until(listed, timeout=20, message="both screens live")
        assert rows["TV L2"]["kiosk"] == "Yes" and rows["TV L2"]["scope"] == "Line L2"
        assert rows["TV L2"]["lang"] == "English" and rows["TV L2"]["browser"].startswith("Chrome headless")
        # Markup from a token's name and from a browser is text on the page, never markup.
        assert rows[HOSTILE_NAME]["kiosk"] == "No" and rows[HOSTILE_NAME]["agent"] == HOSTILE_AGENT
        assert not admin.find_elements(By.CSS_SELECTOR, "#fleet-rows b, #fleet-rows img")
        assert admin.execute_script("return window.__pwned === undefined")
        counts = admin.find_element(By.ID, "fleet-counts").text
        assert "2\nLive" in counts and "0\nDark" in counts

        closed = time.monotonic()
        hostile.quit()
        hostile.session_id = None

        def dark():
            rows = {row["screen"]: row for row in admin.execute_script(ROWS)}
            return rows if rows[HOSTILE_NAME]["state"] == "Dark" else None

        rows = wait_until(dark, timeout=4 * REFRESH_S, interval=0.1, message="the closed screen dark")
        took = time.monotonic() - closed
        # Dark two intervals after its last refresh, which came before its close; the page
        # reads every second, and a loaded machine may take another to draw it.
        assert took <= 2 * REFRESH_S + 2, took
        assert rows[HOSTILE_NAME]["since"].startswith("since ")
        assert rows["TV L2"]["state"] == "Live"
        assert "1\nDark" in admin.find_element(By.ID, "fleet-counts").text
        assert console_errors(admin) == []
    finally:
        for driver in (admin, line, hostile):
            if driver.session_id is not None:
                driver.quit()
