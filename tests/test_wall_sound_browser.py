"""Sound on the wall (?sound=1), in a real headless Chromium against a real server: a kiosk
started with the autoplay flag sounds one tone when issues on its board turn overdue (one for
several turning together, none for an issue already overdue when it appears, none again while
it stays overdue); a screen not asked to stays silent; a browser that holds its audio until
touched asks for a tap in the header, and the tap enables it; a replayed instant never sounds."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By

from conftest import require_browser
from data import db, store, timezones
from data.models import Department, Location, SlaRule
from tools.browser import AppServer, chromium, console_errors, wait_until

REFRESH_S = 2
AUTOPLAY = ("--autoplay-policy=no-user-gesture-required",)
ACK_MINUTES = 10
TONES = "return window.floorlinkTones"
OVERDUE_ROWS = "return document.querySelectorAll('#issues-board-rows > .row.overdue').length"
# Every oscillator the page starts, and for how long, noted by wrapping Web Audio's own calls.
NOTE_OSCILLATORS = """
window.oscillators = [];
const start = OscillatorNode.prototype.start, stop = OscillatorNode.prototype.stop;
OscillatorNode.prototype.start = function (when) { this.noted = {start: when}; window.oscillators.push(this.noted);
                                                   return start.apply(this, arguments); };
OscillatorNode.prototype.stop = function (when) { this.noted.seconds = when - this.noted.start;
                                                  return stop.apply(this, arguments); };
"""


@pytest.mark.parametrize("value, sound, notice", [
    (None, False, None), ("1", True, None), ("TRUE", True, None), ("yes", True, None), ("0", False, None),
    ("no", False, None), ("<b>loud</b>", False, "sound=<b>loud</b> is not valid; sound stays off (use 1 or 0)"),
])
def test_sound_is_off_unless_the_address_asks_for_it(value, sound, notice):
    from dashboards import _ui

    assert _ui.sound_param({} if value is None else {"sound": value}, "en") == (sound, notice)


@pytest.fixture(scope="module")
def plant_url(tmp_path_factory):
    """A plant of one department, one issue type (10 minutes to respond) and one station."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sound') / 'wall.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    with engine.begin() as conn:
        store.upsert_rows(conn, Department, [{"code": "QA", "name_zh": "质量部", "name_en": "Quality"}])
        store.upsert_rows(conn, SlaRule, [{"issue_type": "quality_anomaly", "name_zh": "质量异常",
                                           "name_en": "Quality anomaly", "owner_department_code": "QA",
                                           "notify_department_codes": "", "ack_minutes": ACK_MINUTES,
                                           "resolve_minutes": 120}])
        store.upsert_rows(conn, Location, [{"code": "L2-ST1", "name": "L2 工位1", "kind": "wip", "line": "L2",
                                            "max_dwell_minutes": None}])
    return url


@pytest.fixture(scope="module")
def server(plant_url, tmp_path_factory):
    require_browser()
    app = AppServer(plant_url, tmp_path_factory.mktemp("server"), REFRESH_S=str(REFRESH_S),
                    NOTIFY_SENDER="0").start()
    yield app
    app.stop()


def raise_due_in(url: str, prefix: str, seconds: float, n: int = 1) -> None:
    """`n` issues whose response limit passes `seconds` from now (already passed when negative)."""
    at = timezones.utc_now() - timedelta(minutes=ACK_MINUTES) + timedelta(seconds=seconds)
    with db.session_scope(db.get_engine(url)) as s:
        for i in range(n):
            store.raise_issue(s, issue_id=f"{prefix}-{i}", issue_type="quality_anomaly", title=f"{prefix} {i}",
                              severity="P2", at=at, location_code="L2-ST1")


def open_board(server, query: str, flags=()):
    driver = chromium(1920, 1080, flags=flags)
    driver.get(f"{server.url}/issues?{query}")
    wait_until(lambda: driver.execute_script("return document.getElementById('wall-updated').textContent"),
               timeout=30, message="first refresh")
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#issues-board-rows > *"), message="the board drawn")
    return driver


@pytest.mark.browser
def test_issues_turning_overdue_sound_one_tone_once(server, plant_url):
    driver = open_board(server, "sound=1", AUTOPLAY)
    try:
        assert driver.execute_script("return window.floorlinkSound.context.state") == "running"
        assert driver.execute_script(TONES) == 0
        driver.execute_script(NOTE_OSCILLATORS)
        # Already overdue when it appears: no tone; two whose limit passes together: one tone.
        raise_due_in(plant_url, "LATE", -300)
        raise_due_in(plant_url, "SOON", 6, n=2)
        wait_until(lambda: driver.execute_script(OVERDUE_ROWS) == 1, timeout=3 * REFRESH_S,
                   message="the late one on the board, the two others not overdue yet")
        assert driver.execute_script(TONES) == 0
        wait_until(lambda: driver.execute_script(OVERDUE_ROWS) == 3, timeout=10, message="the two overdue")
        wait_until(lambda: driver.execute_script(TONES) == 1, timeout=2, message="one tone")
        [tone] = driver.execute_script("return window.oscillators")
        assert 0.4 <= tone["seconds"] <= 0.6, tone
        # Still overdue a few seconds and refreshes later: no second tone.
        time.sleep(3 * REFRESH_S)
        assert driver.execute_script(TONES) == 1
        assert driver.find_elements(By.ID, "wall-sound") == [], "no tap asked for"
        assert console_errors(driver) == []
    finally:
        driver.quit()


@pytest.mark.browser
def test_a_screen_not_asked_to_sound_stays_silent(server, plant_url):
    driver = open_board(server, "lang=en", AUTOPLAY)
    try:
        raise_due_in(plant_url, "QUIET", 4)
        wait_until(lambda: driver.execute_script(
            "return [...document.querySelectorAll('#issues-board-rows > .row.overdue .c-title')]"
            ".some(e => e.innerText === 'QUIET 0')"), timeout=15, message="the issue overdue")
        time.sleep(2)
        assert driver.execute_script(TONES) == 0
        assert driver.execute_script("return window.floorlinkSound.context") is None
        assert console_errors(driver) == []
    finally:
        driver.quit()


@pytest.mark.browser
def test_a_browser_holding_its_audio_asks_for_a_tap_and_a_replay_never_sounds(server):
    driver = open_board(server, "sound=1")
    try:
        notice = wait_until(lambda: driver.find_element(By.ID, "wall-sound"), timeout=5, message="the notice")
        assert notice.text == "🔇 点击启用声音"
        assert notice.find_element(By.XPATH, "..").get_attribute("class") == "wall-header"
        assert driver.execute_script("return window.floorlinkSound.context.state") == "suspended"
        notice.click()
        wait_until(lambda: driver.execute_script("return window.floorlinkSound.context.state") == "running",
                   timeout=5, message="the audio enabled by the tap")
        wait_until(lambda: not driver.find_elements(By.ID, "wall-sound"), timeout=3, message="the notice gone")

        driver.get(f"{server.url}/issues?sound=1&lang=en")
        notice = wait_until(lambda: driver.find_element(By.ID, "wall-sound"), timeout=15,
                            message="the notice again after a load")
        assert notice.text == "🔇 Tap to enable sound"

        at = timezones.to_site(timezones.utc_now() - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
        driver.get(f"{server.url}/issues?sound=1&at={at}")
        wait_until(lambda: driver.execute_script("return document.getElementById('wall-replay').textContent"),
                   timeout=15, message="the replay")
        wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#issues-board-rows > *"), message="the board")
        time.sleep(2)
        assert driver.find_elements(By.ID, "wall-sound") == []
        assert driver.execute_script("return window.floorlinkSound.context") is None
        assert console_errors(driver) == []
    finally:
        driver.quit()
