"""The doors in a real headless Chromium against a real server with sign-in on: a manager
signs in (a wrong password first) and reaches the explorer; a wall screen opened with its
token shows the wall, and once its token is revoked it does not go on showing figures as if
nothing happened: its next refresh shows why over the whole wall, and opening it again says
why too."""
from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By

from conftest import require_browser
from data import db, demo, timezones
from data.auth import screens, users
from tools.browser import AppServer, chromium, wait_until

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
REFRESH_S = 2


@pytest.fixture(scope="module")
def plant_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('plant') / 'doors.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=3, seed=3)
    users.create(engine, "li.na", "manager", PASSWORD, timezones.utc_now())
    return url


@pytest.fixture(scope="module")
def server(plant_url, tmp_path_factory):
    require_browser()
    app = AppServer(plant_url, tmp_path_factory.mktemp("server"), SECRET_KEY="browser-test-key",
                    REFRESH_S=str(REFRESH_S)).start()
    yield app
    app.stop()


@pytest.fixture
def browser(server):
    driver = chromium(1920, 1080)
    yield driver
    driver.quit()


# The notice fills the window and is what is seen at its centre and corners.
COVERS_THE_WALL = """
const notice = document.getElementById('wall-refused');
const box = notice.getBoundingClientRect();
const points = [[innerWidth / 2, innerHeight / 2], [5, 5], [innerWidth - 5, innerHeight - 5]];
return box.width >= innerWidth && box.height >= innerHeight
       && points.every(([x, y]) => notice.contains(document.elementFromPoint(x, y)));
"""


def sign_in_with(driver, name: str, password: str) -> None:
    driver.find_element(By.NAME, "name").clear()
    driver.find_element(By.NAME, "name").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_a_manager_signs_in_and_reaches_the_page_asked_for(server, browser):
    browser.get(f"{server.url}/explorer")
    wait_until(lambda: "/signin" in browser.current_url, message="the sign-in page")
    assert browser.find_element(By.TAG_NAME, "h1").text == "登录"
    sign_in_with(browser, "li.na", "not the password")
    message = wait_until(lambda: browser.find_element(By.CLASS_NAME, "signin-message").text,
                         message="the refusal")
    assert message == "用户名或密码错误"
    assert browser.find_element(By.NAME, "password").get_attribute("value") == ""
    sign_in_with(browser, "li.na", PASSWORD)
    wait_until(lambda: browser.current_url.endswith("/explorer"), message="back at the explorer")
    wait_until(lambda: browser.find_elements(By.ID, "explorer-export-csv"), timeout=30,
               message="the explorer with its export")
    cookie = browser.get_cookie("floorlink_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"


def test_a_screen_whose_token_is_revoked_mid_display_says_so(server, browser, plant_url):
    engine = db.get_engine(plant_url)
    _, token = screens.create(engine, "TV L2", timezones.utc_now())
    browser.get(f"{server.url}/?kiosk=1&lang=en&screen={token}")
    wait_until(lambda: browser.find_element(By.ID, "wall-updated").text.startswith("Updated"),
               timeout=30, message="the wall refreshing")
    assert browser.find_element(By.ID, "stale-banner").text == ""
    screens.revoke(engine, "TV L2", timezones.utc_now())
    # Another process: refused within its 5 s cache, then said at the next refresh, in the
    # words of the 401 page, over the whole wall.
    notice = wait_until(lambda: browser.find_element(By.ID, "wall-refused"),
                        timeout=screens.CACHE_FOR_S + 2 * REFRESH_S + 5, message="the refusal on screen")
    assert notice.text.splitlines() == [
        "此屏幕的令牌已失效（已撤销或未知），请向管理员申请新的屏幕链接",
        "This screen's token is no longer valid (revoked or unknown): ask an administrator for a new screen link"]
    assert browser.execute_script(COVERS_THE_WALL), "the figures stay hidden behind it"
    time.sleep(REFRESH_S + 1)
    assert browser.find_element(By.ID, "wall-refused").is_displayed(), "it stays while refused"
    browser.get(f"{server.url}/?kiosk=1&lang=en")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "This screen's token is no longer valid" in body and "撤销" in body
