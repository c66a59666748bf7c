"""The wall's panels as a shift lead reads them from five metres, in a real headless Chromium
against a real server on a two-week demo plant, at 1920x1080 and 3840x2160, in Chinese and
English: every department on the scoreboard, who and where never cut, no text under 28 px
(chart text included, twice that at 4K), the board in the order of urgency, and only what
just got worse pulsing."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from conftest import require_browser
from data import db, demo, store, timezones
from data.models import Department
from tools.browser import AppServer, chromium, console_errors, wait_until

pytestmark = pytest.mark.browser

REFRESH_S = 2
SIZES = [(1920, 1080), (3840, 2160)]
# The smallest text that carries a figure, a name or a time, at 1080 pixels of height.
SMALLEST_PX = 28


# The sorting test's issues belong to a department of their own, known to the plant before
# the server first reads its names, so a screen scoped to it shows only them.
TEST_DEPT = "TSTB"


@pytest.fixture(scope="module")
def plant_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('panels') / 'wall.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=14, seed=3)
    with engine.begin() as conn:
        store.upsert_rows(conn, Department, [{"code": TEST_DEPT, "name_zh": "看板测试部",
                                              "name_en": "Wall test"}])
    return url


@pytest.fixture(scope="module")
def server(plant_url, tmp_path_factory):
    require_browser()
    app = AppServer(plant_url, tmp_path_factory.mktemp("server"), REFRESH_S=str(REFRESH_S)).start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def departments(plant_url) -> dict[str, tuple[str, str]]:
    with db.get_engine(plant_url).connect() as conn:
        return {r.code: (r.name_zh, r.name_en) for r in conn.execute(select(Department))}


def open_page(server, path: str, size: tuple[int, int]):
    driver = chromium(*size)
    driver.get(server.url + path)
    wait_until(lambda: driver.execute_script(
        "return document.getElementById('wall-updated').textContent"), timeout=30, message="first refresh")
    return driver


def charts_drawn(driver) -> bool:
    return driver.execute_script(
        "return [...document.querySelectorAll('.chart-graph')].every("
        "g => g.querySelector('.main-svg text'))")


# Every piece of text in the header and the panels, with its computed size: HTML and the
# charts' SVG alike. Text that is not displayed (an empty marker) has no box and is skipped.
SMALL_TEXT = """
const smallest = arguments[0], small = [];
const roots = [document.querySelector('.wall-header'),
               ...document.querySelectorAll('.wall-page .panel, .wall-page .tile')];
for (const root of roots) {
  const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walk.nextNode(); node; node = walk.nextNode()) {
    if (!node.textContent.trim()) continue;
    const box = node.parentElement.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    const px = parseFloat(getComputedStyle(node.parentElement).fontSize);
    if (px < smallest) small.push(node.textContent.trim().slice(0, 40) + ': ' + px + 'px');
  }
}
return small;
"""

# Whether each element matching a selector is whole: inside its list's box and the screen,
# and not cut (no ellipsis: its text is no wider than its box).
WHOLE = """
const [selector, boxSelector] = arguments;
const screen = {left: 0, top: 0, right: innerWidth, bottom: innerHeight};
const inside = (r, b) => r.left >= b.left - 0.5 && r.top >= b.top - 0.5 &&
                         r.right <= b.right + 0.5 && r.bottom <= b.bottom + 0.5;
return [...document.querySelectorAll(selector)].map(el => {
  const r = el.getBoundingClientRect();
  const box = el.closest(boxSelector).getBoundingClientRect();
  return {text: el.innerText, whole: inside(r, box) && inside(r, screen) &&
          el.scrollWidth <= el.clientWidth + 0.5};
});
"""

# What runs an animation now: only a row in its first minute overdue, or a tile whose level
# just got worse, may.
ANIMATED = """
return [...document.querySelectorAll('.wall-root *')]
  .filter(el => getComputedStyle(el).animationName !== 'none')
  .map(el => el.className);
"""


def assert_text_readable(driver, size):
    smallest = SMALLEST_PX * size[1] / 1080
    assert driver.execute_script(SMALL_TEXT, smallest - 0.01) == []


def whole(driver, selector: str, box: str) -> list[dict]:
    return driver.execute_script(WHOLE, selector, box)


@pytest.mark.parametrize("size", SIZES, ids=["1080p", "4k"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_panel_shows_who_and_where_whole_and_readable(server, departments, size, lang):
    names = {zh if lang == "zh" else en for zh, en in departments.values()}
    driver = open_page(server, f"/?lang={lang}", size)
    try:
        wait_until(lambda: len(whole(driver, "#overview-scoreboard > .row", ".rows")) == len(names)
                   and driver.find_elements("css selector", "#overview-board-rows > .row")
                   and charts_drawn(driver), timeout=20, message="scoreboard, board and trend")
        # Every department of the plant, by geometry: inside the list, the panel, the screen.
        rows = whole(driver, "#overview-scoreboard > .row > .name", ".panel")
        assert {r["text"].removeprefix("★ ") for r in rows} == names
        assert all(r["whole"] for r in rows), rows
        # Who and where, whole: the issue's number, type, location and whom to call, the lots.
        for cell in (".c-id", ".c-type", ".c-location", ".c-contact"):
            cells = whole(driver, f"#overview-board-rows {cell}", ".panel")
            assert cells and all(c["whole"] for c in cells), (cell, cells)
        lots = whole(driver, "#overview-material > .row > span:nth-child(4)", ".panel")
        assert all(c["whole"] for c in lots), lots
        assert whole(driver, "#overview-star > span", ".panel")[0]["whole"]
        assert_text_readable(driver, size)
        assert not [c for c in driver.execute_script(ANIMATED) if "calling" not in c]
        countdowns = driver.execute_script(
            "return [...document.querySelectorAll('.c-countdown, .c-age')].map(e => e.innerText)")
        assert countdowns and not [c for c in countdowns if ":" in c], countdowns

        driver.get(f"{server.url}/issues?lang={lang}")
        wait_until(lambda: driver.find_elements("css selector", "#issues-board-rows > .row"),
                   timeout=20, message="the issue board")
        for cell in (".c-id", ".c-type", ".c-location", ".c-contact"):
            cells = whole(driver, f"#issues-board-rows {cell}", ".panel")
            assert cells and all(c["whole"] for c in cells), (cell, cells)
        assert_text_readable(driver, size)

        driver.get(f"{server.url}/material?lang={lang}")
        wait_until(lambda: driver.find_elements("css selector", "#material-stagnant > .row")
                   and charts_drawn(driver), timeout=20, message="stagnant lots and stages")
        for cell in ("span:nth-child(1)", "span:nth-child(3)", "span:nth-child(5)"):
            cells = whole(driver, f"#material-stagnant > .row > {cell}", ".panel")
            assert cells and all(c["whole"] for c in cells), (cell, cells)
        assert_text_readable(driver, size)
        assert console_errors(driver) == []
    finally:
        driver.quit()


def raise_for_test(url: str, title: str, severity: str, waited: timedelta) -> str:
    """A quality anomaly (10 minutes to acknowledge in the demo plant) of the test's own
    department; its id."""
    issue_id = f"B-{uuid.uuid4().hex[:8]}"
    with db.session_scope(db.get_engine(url)) as s:
        store.raise_issue(s, issue_id=issue_id, issue_type="quality_anomaly",
                          title=title, severity=severity, at=timezones.utc_now() - waited,
                          owner_department_code=TEST_DEPT, location_code="L2-ST1")
    return issue_id


def test_the_board_sorts_by_urgency_and_only_what_got_worse_or_calls_pulses(server, plant_url):
    driver = open_page(server, f"/?dept={TEST_DEPT}", SIZES[0])
    try:
        tile = "return document.getElementById('overview-tile-overdue').closest('.tile-slot').className"
        wait_until(lambda: driver.execute_script(tile) == "tile-slot", message="overdue tile")
        # Three overdue issues: the P4 the longest overdue, a P1 two minutes over, a P3 that
        # has just turned overdue; and a P1 with time left.
        raise_for_test(plant_url, "P4 最久超时", "P4", timedelta(minutes=30))
        answered = raise_for_test(plant_url, "P1 超时两分钟", "P1", timedelta(minutes=12))
        raise_for_test(plant_url, "P3 刚刚超时", "P3", timedelta(minutes=10, seconds=40))
        raise_for_test(plant_url, "P1 还有时间", "P1", timedelta(minutes=1))
        # The overdue tile's level got worse (none, then three: amber): its slot pulses.
        wait_until(lambda: driver.execute_script(tile) == "tile-slot worse-warn", timeout=3 * REFRESH_S + 5,
                   message="the overdue tile marked as got worse")
        rows = wait_until(lambda: (r := driver.execute_script(
            "return [...document.querySelectorAll('#overview-board-rows > .row')].map("
            "r => [r.querySelector('.c-title').innerText, r.className])")) and len(r) == 4 and r,
            message="four rows on the board")
        assert [title for title, _ in rows] == ["P1 超时两分钟", "P3 刚刚超时", "P4 最久超时", "P1 还有时间"]
        classes = dict(rows)
        # Overdue and nobody has answered: each calls until somebody acknowledges it.
        assert classes["P3 刚刚超时"] == classes["P1 超时两分钟"] == classes["P4 最久超时"] \
            == "row overdue calling"
        assert classes["P1 还有时间"] == "row"
        pulsing = driver.execute_script(ANIMATED)
        assert sorted(pulsing) == ["row overdue calling"] * 3 + ["tile warn"], pulsing
        with db.session_scope(db.get_engine(plant_url)) as s:
            store.acknowledge(s, answered, timezones.utc_now(), actor="测试员")
        calling = "return [...document.querySelectorAll('#overview-board-rows > .row.calling')].length"
        wait_until(lambda: driver.execute_script(calling) == 2, timeout=REFRESH_S + 5,
                   message="the acknowledged row steady red")
        assert console_errors(driver) == []
    finally:
        driver.quit()
