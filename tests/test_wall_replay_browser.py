"""The wall at a past instant and on a quiet plant, in a real headless Chromium against a real
server process: `?at=` shows the replay in the header, the replayed instant on the clock, the
figures of that instant and countdowns that stand still, and never goes stale; a plant whose
newest record is three days old says so on every page and shows nothing green."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from selenium.webdriver.common.by import By

from conftest import require_browser
from data import db, demo, kpis, queries, timezones, wall
from data.words import format_count
from tools.browser import AppServer, chromium, console_errors, wait_until

pytestmark = pytest.mark.browser

REFRESH_S = 2
SITE = timezones.zone("Asia/Shanghai")
PAST_END = datetime(2025, 6, 11, 10, 0, tzinfo=SITE)
AT = datetime(2025, 6, 10, 10, 0, tzinfo=SITE)
# Thresholds no count of these plants reaches: without the quiet rule, open and overdue,
# stagnant lots and shortages would all be green.
NEVER_AMBER = {"THRESHOLD_OPEN": "100000,200000", "THRESHOLD_OVERDUE": "100000,200000",
               "THRESHOLD_STAGNANT_LOTS": "100000,200000", "THRESHOLD_SHORTAGES": "100000,200000"}


def plant(tmp_path_factory, name: str, end: datetime) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp(name) / 'wall.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=7, seed=3, end=end)
    return url


@pytest.fixture(scope="module")
def past_plant(tmp_path_factory):
    """A week of demo plant that ended in June 2025."""
    return plant(tmp_path_factory, "past", PAST_END)


@pytest.fixture(scope="module")
def quiet_plant(tmp_path_factory):
    """A week of demo plant whose last hour was three days ago."""
    return plant(tmp_path_factory, "quiet",
                 timezones.utc_now().replace(minute=0, second=0, microsecond=0) - timedelta(days=3))


@pytest.fixture
def serve(tmp_path):
    """A server of the plant at `url` and a browser to open it with."""
    require_browser()
    servers, drivers = [], []

    def serve_(url: str):
        servers.append(AppServer(url, tmp_path, REFRESH_S=str(REFRESH_S), SITE_TZ="Asia/Shanghai",
                                 **NEVER_AMBER).start())
        drivers.append(chromium())
        return servers[-1], drivers[-1]

    yield serve_
    for driver in drivers:
        driver.quit()
    for server in servers:
        server.stop()


def text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def tile_value(driver, name: str, page: str = "overview") -> str:
    found = driver.find_elements(By.CSS_SELECTOR, f"#{page}-tile-{name} .tile-value")
    return found[0].text if found else ""


BOARD_PROBE = """
return {pager: (document.getElementById('overview-board-pager') || {}).innerText,
        rows: [...document.querySelectorAll('.board .rows > .row')].map(row => row.innerText)};
"""


def duration(ms: int) -> str:
    """A waiting time as the board writes it in English (assets/wall.js floorlinkDuration)."""
    total = ms // 1000
    days, hours, minutes, seconds = total // 86400, total % 86400 // 3600, total % 3600 // 60, total % 60
    if days:
        return f"{days:,} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {seconds} s"


def open_and_overdue(url: str, as_of: datetime) -> tuple[int, int]:
    """data.kpis' open and overdue at as_of."""
    with db.get_engine(url).connect() as conn:
        issues = queries.open_issues(conn, as_of)
    return int(kpis.open_mask(issues, as_of).sum()), int(kpis.overdue_mask(issues, as_of).sum())


def test_a_replayed_instant_is_said_shown_on_the_clock_and_stands_still(past_plant, serve):
    app, driver = serve(past_plant)
    at = AT.astimezone(timezone.utc)
    opened, overdue = open_and_overdue(past_plant, at)
    assert opened > 0 and overdue > 0
    driver.get(app.url + "/?at=2025-06-10T10:00&lang=en")
    loaded = time.monotonic()
    wait_until(lambda: tile_value(driver, "open") not in ("", "—"), message="replayed tiles")
    assert text(driver, "wall-replay") == "Replay at 2025-06-10 10:00"
    assert text(driver, "wall-clock") == "10:00:00"
    assert (tile_value(driver, "open"), tile_value(driver, "overdue")) == (format_count(opened),
                                                                           format_count(overdue))
    # The board counts from the replayed instant: each row has waited since it was raised
    # until then, and on one page, two seconds apart, every row reads the same.
    with db.get_engine(past_plant).connect() as conn:
        board = wall.overview_snapshot(conn, at)["board"]
    waited = {"Waiting " + duration(int(at.timestamp() * 1000) - row["raised_ms"]) for row in board}
    wait_until(lambda: driver.execute_script(BOARD_PROBE)["rows"], message="board rows")

    def still():
        first = driver.execute_script(BOARD_PROBE)
        time.sleep(2.2)
        second = driver.execute_script(BOARD_PROBE)
        return first["pager"] == second["pager"] and (first, second)

    first, second = wait_until(still, timeout=30, message="two reads on one page of the board")
    assert first["rows"] == second["rows"]
    assert {row.splitlines()[-1] for row in first["rows"]} <= waited
    assert text(driver, "wall-clock") == "10:00:00"
    # Three intervals and more later, the replay is not stale, nor "updated" at any time.
    time.sleep(max(0.0, 4 * REFRESH_S + 3 - (time.monotonic() - loaded)))
    assert text(driver, "stale-banner") == "" and text(driver, "wall-updated") == ""
    assert "stale" not in driver.find_element(By.ID, "wall-status-dot").get_attribute("class")
    # The navigation keeps the instant: the material page replays it too.
    driver.find_element(By.LINK_TEXT, "Material").click()
    wait_until(lambda: driver.current_url.endswith("/material?lang=en&at=2025-06-10T10:00"),
               message="material page at the same instant")
    wait_until(lambda: text(driver, "wall-replay") == "Replay at 2025-06-10 10:00", message="replay label")
    assert console_errors(driver) == []


def test_a_plant_without_new_data_says_so_and_shows_nothing_green(quiet_plant, serve):
    app, driver = serve(quiet_plant)
    with db.get_engine(quiet_plant).connect() as conn:
        newest = queries.newest_record(conn, timezones.utc_now())
    shown = newest.astimezone(SITE)
    driver.get(app.url + "/")
    notice = wait_until(lambda: text(driver, "wall-quiet"), message="no-new-data notice")
    # The notice reads to the minute; the instant to replay is the record's own, to the second.
    at = f"{shown:%Y-%m-%dT%H:%M}" + (f":{shown:%S}" if shown.second else "")
    assert notice == f"没有新数据：最近一条记录于 {shown:%Y-%m-%d %H:%M}（3 天前） · 查看当时的看板： ?at={at}"
    link = driver.find_element(By.CSS_SELECTOR, "#wall-quiet a").get_attribute("href")
    assert link == app.url + "/?at=" + at.replace(":", "%3A")
    wait_until(lambda: tile_value(driver, "open") not in ("", "—"), message="tiles")
    opened, overdue = open_and_overdue(quiet_plant, timezones.utc_now())
    assert (tile_value(driver, "open"), tile_value(driver, "overdue")) == (format_count(opened),
                                                                           format_count(overdue))
    assert driver.find_elements(By.CSS_SELECTOR, ".tile.ok, .calm, .num.ok") == []
    # Every page says so.
    driver.get(app.url + "/material")
    wait_until(lambda: tile_value(driver, "stagnant_lots", "material") not in ("", "—"),
               message="material tiles")
    assert text(driver, "wall-quiet").startswith("没有新数据：最近一条记录于")
    assert driver.find_elements(By.CSS_SELECTOR, ".tile.ok, .calm") == []
    assert console_errors(driver) == []
