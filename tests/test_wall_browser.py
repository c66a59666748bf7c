"""The wall in a real headless Chromium against a real server process.

Each test opens the page as a floor TV would and checks what a person would see: everything
inside the screen, live updates without reload, countdowns that tick in the browser, a stale
banner that names what failed, the URL parameters of kiosk screens (bad ones included), an
unknown scope, an empty database, the 404 and a phone.
"""
from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By

from conftest import require_browser
from data import db, demo, store, timezones
from data.models import Department
from tools.browser import AppServer, chromium, console_errors, wait_until

pytestmark = pytest.mark.browser

REFRESH_S = 2


@pytest.fixture(scope="module")
def plant_url(tmp_path_factory):
    """A two-week demo plant ending now, in a SQLite file of its own, with a department for
    the tests' own issues (known to the plant before any screen asks for it)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('plant') / 'wall.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=14, seed=3)
    with engine.begin() as conn:
        store.upsert_rows(conn, Department, [{"code": TEST_DEPT, "name_zh": "测试部", "name_en": "Test"}])
    return url


@pytest.fixture(scope="module")
def server(plant_url, tmp_path_factory):
    require_browser()
    app = AppServer(plant_url, tmp_path_factory.mktemp("server"), REFRESH_S=str(REFRESH_S)).start()
    yield app
    app.stop()


@pytest.fixture
def open_wall(server):
    drivers = []

    def open_(path: str = "/", size: tuple[int, int] = (1920, 1080)):
        driver = chromium(*size)
        drivers.append(driver)
        driver.get(server.url + path)
        wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#wall-updated")
                   and driver.find_element(By.ID, "wall-updated").text, message="first refresh")
        return driver

    yield open_
    for driver in drivers:
        driver.quit()


def texts(driver, selector: str) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText);", selector)


def assert_no_errors(driver):
    assert not driver.find_elements(By.CSS_SELECTOR, ".dash-fe-error__title, .dash-debug-alert")
    assert console_errors(driver) == []


LAYOUT_PROBE = """
const vw = window.innerWidth, vh = window.innerHeight;
const out = [];
for (const id of arguments[0]) {
  const el = document.getElementById(id);
  if (!el) { out.push(id + ': missing'); continue; }
  const r = el.getBoundingClientRect();
  if (r.width < 1 || r.height < 1 || r.left < -1 || r.top < -1 || r.right > vw + 1 || r.bottom > vh + 1)
    out.push(id + ': outside ' + JSON.stringify([r.left, r.top, r.right, r.bottom]));
}
const doc = document.documentElement;
if (doc.scrollWidth > vw + 1 || doc.scrollHeight > vh + 1)
  out.push('page scrolls: ' + doc.scrollWidth + 'x' + doc.scrollHeight);
let smallest = 1e9;
for (const el of document.querySelectorAll('.wall-root *')) {
  if (!el.childNodes.length || ![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
    continue;
  const r = el.getBoundingClientRect();
  if (r.width < 1 || r.bottom > vh || r.right > vw) continue;
  smallest = Math.min(smallest, parseFloat(getComputedStyle(el).fontSize));
}
return {problems: out, smallest: smallest, vh: vh};
"""

BOARD_ROWS = ".board .rows > .row"
SCOREBOARD_ROWS = ".score-table .rows > .row"

PANELS = [f"overview-tile-{k}" for k in ("open", "overdue", "median_response_min",
                                         "response_sla_compliance", "resolution_rate",
                                         "plan_attainment")] + [
    "overview-board-panel", "overview-scoreboard-panel", "overview-trend-panel",
    "overview-material-panel"]


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160)], ids=["1080p", "4k"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_overview_fits_the_screen_and_reads_from_five_metres(open_wall, size, lang):
    driver = open_wall(f"/?lang={lang}", size)
    wait_until(lambda: texts(driver, BOARD_ROWS), message="board rows")
    wait_until(lambda: texts(driver, SCOREBOARD_ROWS), message="scoreboard rows")
    found = driver.execute_script(LAYOUT_PROBE, PANELS)
    assert found["problems"] == []
    # The smallest text is at least 2% of the screen's height (21 px at 1080p, 43 px at 4K).
    assert found["smallest"] >= 0.02 * found["vh"] - 0.5
    title = driver.find_element(By.ID, "wall-title").text
    assert title == ("现场协同看板" if lang == "zh" else "Site Operations Wall")
    assert_no_errors(driver)


# Test issues belong to a department of their own, so a screen scoped to it shows them
# on the board's first page whatever else the demo plant has open.
TEST_DEPT = "TST"


def _write_issue(url: str, title: str, waited: timedelta, issue_type: str = "quality_anomaly",
                 location_code: str | None = None):
    with db.session_scope(db.get_engine(url)) as s:
        store.raise_issue(s, issue_id=f"T-{uuid.uuid4().hex[:8]}", issue_type=issue_type,
                          title=title, severity="P1", at=timezones.utc_now() - waited,
                          owner_department_code=TEST_DEPT, location_code=location_code)


# The board is redrawn every second: read it in one script, not element by element. Its
# cells are found by their column's class, the same in the table and in the two-line cards.
BOARD_PROBE = """
const cell = (row, name) => { const c = row.querySelector('.c-' + name); return c ? c.innerText : null; };
return [...document.querySelectorAll('.board .rows > .row')].map(row => ({
  text: row.innerText, cls: row.className,
  cells: Object.fromEntries(['severity', 'id', 'type', 'title', 'location', 'contact', 'age',
                             'countdown'].map(name => [name, cell(row, name)]))}));
"""


def board(driver) -> list[dict]:
    return driver.execute_script(BOARD_PROBE)


def _board_row(driver, title: str) -> dict | None:
    return next((row for row in board(driver) if title in row["text"]), None)


def test_new_issue_appears_within_one_interval_and_turns_overdue_without_reload(open_wall, plant_url):
    _write_issue(plant_url, "先有一个", waited=timedelta(minutes=1))
    driver = open_wall(f"/?dept={TEST_DEPT}")
    driver.execute_script("window.__still_same_page = true;")
    ack_limit = timedelta(minutes=10)           # quality_anomaly in the demo plant
    title = f"新问题 {uuid.uuid4().hex[:6]}"
    _write_issue(plant_url, title, waited=ack_limit - timedelta(seconds=6))
    written = time.monotonic()
    # A P1 with seconds left sorts to the top of the board's first page.
    row = wait_until(lambda: _board_row(driver, title), timeout=REFRESH_S + 3, message="new issue on the board")
    assert time.monotonic() - written <= REFRESH_S + 1.5
    assert "overdue" not in row["cls"]
    overdue = wait_until(lambda: (r := _board_row(driver, title)) and "overdue" in r["cls"] and r,
                         timeout=12, message="row turns overdue")
    assert overdue["cells"]["countdown"].startswith("超时")
    assert driver.execute_script("return window.__still_same_page === true;")
    assert_no_errors(driver)


def test_every_refresh_asks_just_after_a_snapshot_boundary(open_wall):
    """A screen that drifted off the server's beat would show a change up to two intervals
    late: each refresh must leave within its drawn delay (0.1-0.5 s) past a boundary, however
    long the screen has been up."""
    driver = open_wall("/")
    # A server clock 1.7 s ahead of the browser's, learnt from an answer that arrived 4.3 s
    # ago: the next refresh is due at the server's next boundary plus the screen's delay.
    due_in_ms, jitter_ms, server_now_ms = driver.execute_script("""
        const shell = window.floorlinkShell, saved = [shell.serverMs, shell.answeredAt];
        const now = Date.now();
        shell.answeredAt = now - 4300; shell.serverMs = now - 4300 + 1700;
        const due = window.dash_clientside.floorlink.alignRefresh(1, {refresh_ms: arguments[0]});
        [shell.serverMs, shell.answeredAt] = saved;
        return [due, window.floorlinkJitterMs, now + 1700];""", REFRESH_S * 1000)
    period_ms = REFRESH_S * 1000
    assert 100 <= jitter_ms < 500
    # The function reads the clock a moment after this script did: a few ms at most.
    assert -(server_now_ms + due_in_ms - jitter_ms) % period_ms <= 50
    assert 0 < due_in_ms - jitter_ms <= period_ms
    time.sleep(6 * REFRESH_S)
    started = driver.execute_script("""
        return performance.getEntriesByType('resource')
          .filter(e => e.name.includes('_dash-update-component'))
          .map(e => performance.timeOrigin + e.startTime);""")
    # A refresh asks with the page's other callbacks of that moment: one phase per burst.
    bursts = [at for i, at in enumerate(started) if i == 0 or at - started[i - 1] > 300]
    # After the page's first load and its first timer, which starts before the beat is known.
    phases = [at % (REFRESH_S * 1000) for at in bursts[3:]]
    assert len(phases) >= 4, bursts
    # The browser's timers may fire up to half a second late on a busy machine.
    assert all(80 <= phase <= 1000 for phase in phases), phases
    assert_no_errors(driver)


def test_countdown_ticks_in_the_browser_with_the_server_stopped(plant_url, tmp_path):
    require_browser()
    app = AppServer(plant_url, tmp_path, REFRESH_S=str(REFRESH_S)).start()
    driver = chromium()
    try:
        title = f"倒计时 {uuid.uuid4().hex[:6]}"
        _write_issue(plant_url, title, waited=timedelta(minutes=2))
        driver.get(app.url + f"/issues?dept={TEST_DEPT}")
        wait_until(lambda: _board_row(driver, title), timeout=15, message="issue on the board")
        app.stop()
        first = _board_row(driver, title)["cells"]["countdown"]
        time.sleep(2.2)
        second = _board_row(driver, title)["cells"]["countdown"]
        assert first != second, "the countdown must tick with no server"
        banner = wait_until(lambda: driver.find_element(By.ID, "stale-banner").text, timeout=3 * REFRESH_S + 5,
                            message="stale banner once the server is gone")
        # Nothing answers: the banner says the server cannot be reached, not that it failed.
        assert "服务器无法连接" in banner and "最后有效数据" in banner and "出错" not in banner
        # The server comes back (a restart, so the screen reloads itself): the banner goes.
        app.start()
        wait_until(lambda: not driver.find_element(By.ID, "stale-banner").text, timeout=4 * REFRESH_S + 10,
                   message="banner gone after the server returns")
        wait_until(lambda: _board_row(driver, title), timeout=10, message="board back")
    finally:
        driver.quit()
        app.stop()


def test_department_scope_shows_only_its_issues(open_wall, plant_url):
    _write_issue(plant_url, "测试部的问题", waited=timedelta(minutes=1))
    with db.session_scope(db.get_engine(plant_url)) as s:
        store.raise_issue(s, issue_id=f"Q-{uuid.uuid4().hex[:8]}", issue_type="quality_anomaly",
                          title="质量部自己的问题", severity="P1", at=timezones.utc_now())
    driver = open_wall(f"/?dept={TEST_DEPT}")
    rows = wait_until(lambda: board(driver), message="board rows")
    assert driver.find_element(By.ID, "wall-scope").text == "测试部"
    # Nobody has acknowledged them: the board says to call the owning department.
    assert {row["cells"]["contact"] for row in rows} == {"测试部"}
    assert not any("质量部自己的问题" in row["text"] for row in rows)


def test_line_scope_shows_only_its_line(open_wall, plant_url):
    _write_issue(plant_url, "二线的问题", waited=timedelta(minutes=1), location_code="L2-ST1")
    _write_issue(plant_url, "一线的问题", waited=timedelta(minutes=1), location_code="L1-ST1")
    driver = open_wall(f"/issues?line=L2&dept={TEST_DEPT}")
    rows = wait_until(lambda: board(driver), message="board rows")
    assert driver.find_element(By.ID, "wall-scope").text == "产线 L2 · 测试部"
    assert any("二线的问题" in row["text"] for row in rows)
    assert all(row["cells"]["location"].startswith("L2") for row in rows), \
        [row["cells"]["location"] for row in rows]


def test_english_wall_has_no_chinese_labels(open_wall):
    driver = open_wall("/?lang=en")
    labels = texts(driver, ".tile-label") + texts(driver, ".panel-title") + texts(driver, ".board-head span")
    assert "Open issues" in labels
    assert not [label for label in labels if any("\u4e00" <= ch <= "\u9fff" for ch in label)]


def test_rotation_moves_through_pages_and_kiosk_hides_navigation(open_wall):
    driver = open_wall("/?rotate=overview,material&every=5&kiosk=1")
    assert not driver.find_element(By.ID, "wall-nav").is_displayed()
    assert driver.execute_script("return getComputedStyle(document.body.querySelector('.wall-root')).cursor") == "none"
    pages = set()

    def saw_both():
        pages.add(driver.execute_script("return window.location.pathname"))
        return {"/", "/material"} <= pages

    wait_until(saw_both, timeout=14, message="both pages shown")
    assert "正在显示" in driver.find_element(By.ID, "wall-now-showing").text
    assert_no_errors(driver)


def shell_state(driver) -> dict:
    return driver.execute_script("""
        const text = (id) => (document.getElementById(id) || {}).innerText || '';
        return {clock: text('wall-clock'), updated: text('wall-updated'), params: text('wall-params'),
                banner: text('stale-banner'), scope: text('wall-scope'),
                board: !!document.querySelector('.board'),
                notice: text(document.querySelector('.wall-notice') ? document.querySelector('.wall-notice').id : ''),
                path: window.location.pathname};""")


BAD_ADDRESSES = [
    ("/?every=7.5&rotate=overview", "参数 every=7.5 无效（允许 5–3600 秒的整数），已使用 8 秒"),
    ("/?every=abc&rotate=overview", "参数 every=abc 无效（允许 5–3600 秒的整数），已使用 30 秒"),
    ("/?every=1e9&rotate=overview", "参数 every=1e9 无效（允许 5–3600 秒的整数），已使用 3600 秒"),
    ("/issues?every=99999999999999999999&rotate=issues", "已使用 3600 秒"),
    ("/?every=-5&rotate=overview", "参数 every=-5 无效（允许 5–3600 秒的整数），已使用 5 秒"),
    ("/?rotate=overview,boards&every=60", "参数 rotate 中的未知页面 boards 已忽略"),
    ("/?lang=xx", "不支持语言 xx，已使用中文 · Language xx is not supported; showing Chinese"),
    ("/issues?lang=en&kiosk=maybe", "kiosk=maybe is not valid; ignored (use 1 or 0)"),
]


def test_bad_kiosk_addresses_still_give_a_working_wall_and_say_what_they_used(server, open_wall):
    driver = open_wall("/")
    for address, said in BAD_ADDRESSES:
        driver.get(server.url + address)
        state = wait_until(lambda: (s := shell_state(driver))["updated"] and s, message=address)
        assert state["clock"] and state["board"] and not state["banner"], (address, state)
        assert said in state["params"], (address, state["params"])
        assert state["path"] == address.split("?")[0], address
        found = driver.execute_script(LAYOUT_PROBE, ["wall-clock", "wall-params"])
        assert found["problems"] == [], (address, found["problems"])
    assert_no_errors(driver)


def test_an_unknown_scope_is_said_on_the_whole_page(server, open_wall):
    driver = open_wall("/?dept=XX")
    notice = wait_until(lambda: driver.find_element(By.ID, "overview-notice").text, message="notice")
    assert "未知部门 “XX”" in notice and "可用：" in notice and "QA" in notice
    # The message covers the page: no green plant shows beside it.
    covered = driver.execute_script("""
        const n = document.getElementById('overview-notice').getBoundingClientRect();
        const p = document.querySelector('.wall-page').getBoundingClientRect();
        return Math.abs(n.left - p.left) < 1 && Math.abs(n.top - p.top) < 1
            && Math.abs(n.right - p.right) < 1 && Math.abs(n.bottom - p.bottom) < 1;""")
    assert covered
    assert not driver.find_element(By.ID, "stale-banner").text
    driver.get(server.url + "/issues?dept=qa&lang=en")
    notice = wait_until(lambda: driver.find_element(By.ID, "issues-notice").text, message="notice")
    assert "Unknown department “qa”" in notice and "Did you mean “QA”?" in notice
    driver.get(server.url + "/material?line=ZZ")
    notice = wait_until(lambda: driver.find_element(By.ID, "material-notice").text, message="notice")
    assert "未知产线 “ZZ”" in notice and "L1, L2, L3, L4" in notice
    # A page that does not follow the department says so, and shows the whole site.
    driver.get(server.url + "/material?dept=QA")
    wait_until(lambda: shell_state(driver)["updated"], message="refresh")
    wait_until(lambda: driver.find_element(By.ID, "wall-scope").text == "全厂 · 本页不分部门",
               message="the material page's scope")
    assert not driver.find_element(By.ID, "material-notice").text
    assert_no_errors(driver)


PHONE_PROBE = """
const vw = window.innerWidth, vh = window.innerHeight;
const panels = [...document.querySelectorAll('.wall-page .panel, .wall-page .tiles')]
  .map(e => e.getBoundingClientRect()).map(r => [r.left, r.top, r.right, r.bottom]);
const narrow = [];
let smallest = 1e9;
for (const el of document.querySelectorAll('.wall-root *')) {
  const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent.trim()).join('');
  if (!own) continue;
  const r = el.getBoundingClientRect(), style = getComputedStyle(el);
  if (r.width < 1 || style.visibility === 'hidden') continue;
  const size = parseFloat(style.fontSize);
  smallest = Math.min(smallest, size);
  // A text cut down to a character or two (its cell narrower than its text).
  if (!(el instanceof SVGElement) && own.length > 2 && el.scrollWidth > el.clientWidth + 1
      && el.clientWidth < 2.5 * size)
    narrow.push(own + ' ' + el.clientWidth + 'px');
}
const doc = document.scrollingElement;
return {panels: panels, narrow: narrow, smallest: smallest, vw: vw, vh: vh,
        scrollWidth: doc.scrollWidth, scrollHeight: doc.scrollHeight};
"""


@pytest.mark.parametrize("path", ["/", "/material"])
def test_a_phone_shows_the_panels_stacked_in_one_scrolling_column(open_wall, path):
    driver = open_wall(path, (390, 844))
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, ".wall-page .panel"), message="panels")
    time.sleep(1)
    found = driver.execute_script(PHONE_PROBE)
    assert found["scrollWidth"] <= found["vw"] + 1, "no sideways scrolling"
    assert found["scrollHeight"] > found["vh"], "the page scrolls down"
    lefts = {round(p[0]) for p in found["panels"]}
    assert len(found["panels"]) >= 4 and len(lefts) == 1, found["panels"]       # one column
    for left, top, right, bottom in found["panels"]:
        assert right - left >= found["vw"] - 40 and bottom - top > 40
    assert found["narrow"] == []
    assert found["smallest"] >= 12
    driver.execute_script("window.scrollTo(0, document.scrollingElement.scrollHeight)")
    assert driver.execute_script("return window.scrollY") > 0
    assert_no_errors(driver)


def test_the_server_failing_is_said_apart_from_the_server_gone(open_wall):
    """A refresh answered with an HTTP 500 (here: every refresh sent to the server with its
    scope broken on the way, so the page's own code fails on it; a request Dash cannot unpack
    at all is a 400, tests/test_faults.py) makes the banner say the server had an error,
    never that it is unreachable."""
    driver = open_wall("/")
    driver.execute_script("""
        const through = window.fetch;
        const broken = (body) => { const b = JSON.parse(body); b.state[0].value = 'broken'; return JSON.stringify(b); };
        window.__broken = true;
        window.fetch = (resource, options) => window.__broken && String(resource).includes('_dash-update-component')
            && String(options && options.body).includes('overview-refresh')
          ? through(resource, Object.assign({}, options, {body: broken(options.body)})) : through(resource, options);""")
    banner = wait_until(lambda: driver.find_element(By.ID, "stale-banner").text, timeout=3 * REFRESH_S + 6,
                        message="banner after failed refreshes")
    assert "服务器出错" in banner and "无法连接" not in banner and "最后有效数据" in banner
    assert shell_state(driver)["clock"]
    driver.execute_script("window.__broken = false;")
    wait_until(lambda: not driver.find_element(By.ID, "stale-banner").text, timeout=3 * REFRESH_S + 4,
               message="banner gone")


# The page's Date `shift_ms` off the machine's from its first script on, as a TV whose own
# clock is wrong; its timers run as ever.
SHIFTED_DATE = """
(() => {
  const shift = %d, Real = Date;
  class Shifted extends Real {
    constructor(...args) { if (args.length) { super(...args); } else { super(Real.now() + shift); } }
    static now() { return Real.now() + shift; }
  }
  window.Date = Shifted;
})();"""

# Refreshes answered, but what they say is a minute old (a cache or a server stuck on an old
# snapshot); or not answered at all.
OLD_ANSWERS = """
const through = window.fetch;
window.fetch = (resource, options) => {
  if (!String(resource).includes('_dash-update-component')) { return through(resource, options); }
  if (arguments[0] === 'unanswered') { return Promise.reject(new TypeError('Failed to fetch')); }
  return through(resource, options).then((answer) => answer.text().then((body) => new Response(
    body.replace(/"last_good_ms":(\\d+)/g, (_, ms) => '"last_good_ms":' + (Number(ms) - 60000)),
    {status: answer.status, headers: answer.headers})));
};"""


def test_a_screen_whose_clock_is_off_judges_staleness_by_the_servers_clock(server):
    """TVs 5 minutes and an hour ahead, and an hour behind: while refreshes bring fresh data no
    banner shows; data a minute old is said stale, and a server that does not answer is said
    unreachable, whatever the TV's own clock says."""
    shifts = {"+5 min": 5 * 60_000, "+1 h": 3_600_000, "-1 h": -3_600_000}
    drivers = {}
    try:
        for name, shift_ms in shifts.items():
            driver = drivers[name] = chromium()
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": SHIFTED_DATE % shift_ms})
            driver.get(server.url + "/")
        for name, driver in drivers.items():
            wait_until(lambda: driver.find_elements(By.ID, "wall-updated")
                       and driver.find_element(By.ID, "wall-updated").text, message=f"first refresh {name}")
            assert driver.execute_script("return Date.now() - performance.timeOrigin - performance.now();") \
                == pytest.approx(shifts[name], abs=2000)
        first = {name: shell_state(driver)["updated"] for name, driver in drivers.items()}
        watch_until = time.monotonic() + 3 * REFRESH_S + 1
        while time.monotonic() < watch_until:
            assert {name: shell_state(driver)["banner"] for name, driver in drivers.items()} \
                == dict.fromkeys(drivers, ""), "a banner over fresh data"
            time.sleep(0.3)
        for name, driver in drivers.items():
            assert shell_state(driver)["updated"] != first[name], f"refreshes stopped on {name}"
            assert_no_errors(driver)
        drivers["-1 h"].execute_script(OLD_ANSWERS, "old")
        for name in ("+5 min", "+1 h"):
            drivers[name].execute_script(OLD_ANSWERS, "unanswered")
        said = {name: wait_until(lambda: driver.find_element(By.ID, "stale-banner").text,
                                 timeout=5 * REFRESH_S + 5, message=f"banner on {name}")
                for name, driver in drivers.items()}
        assert "数据已过期" in said["-1 h"] and "无法连接" not in said["-1 h"]
        assert all("服务器无法连接" in said[name] for name in ("+5 min", "+1 h")), said
    finally:
        for driver in drivers.values():
            driver.quit()


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory):
    """A server on a database with its schema and nothing in it."""
    require_browser()
    folder = tmp_path_factory.mktemp("empty")
    url = f"sqlite:///{folder / 'empty.sqlite'}"
    db.upgrade_schema(db.get_engine(url))
    app = AppServer(url, folder, REFRESH_S=str(REFRESH_S)).start()
    yield app
    app.stop()


def test_an_empty_database_says_so_and_how_to_fill_it(empty_server):
    driver = chromium()
    try:
        driver.get(empty_server.url + "/?lang=en")
        notice = wait_until(lambda: driver.find_element(By.ID, "overview-notice").text, message="notice")
        assert "The database holds no data yet" in notice
        assert "python app.py demo" in notice and "python app.py import TABLE FILE" in notice
        assert "docs/import.md" in notice
        driver.get(empty_server.url + "/material")
        notice = wait_until(lambda: driver.find_element(By.ID, "material-notice").text, message="notice")
        assert "数据库中还没有数据" in notice and "物料流转正常" not in driver.find_element(By.TAG_NAME, "body").text
        assert_no_errors(driver)
    finally:
        driver.quit()


def test_the_404_is_a_desk_page_in_the_walls_language(empty_server):
    driver = chromium(900, 300)
    try:
        driver.get(empty_server.url + "/no/such/page?lang=en")
        title = wait_until(lambda: driver.find_element(By.CSS_SELECTOR, ".desk-page h1").text, message="404")
        assert title == "404 · Page not found"
        links = driver.execute_script(
            "return [...document.querySelectorAll('.desk-page a')].map(a => [a.innerText, a.getAttribute('href')]);")
        assert links == [["Overview", "/?lang=en"], ["Issue board", "/issues?lang=en"],
                         ["Material", "/material?lang=en"]]
        desk = driver.execute_script("""
            const html = getComputedStyle(document.documentElement);
            window.scrollTo(0, 10000);
            return {overflow: html.overflowY, body: parseFloat(getComputedStyle(document.querySelector('.desk-page')).fontSize),
                    scrolled: window.scrollY};""")
        assert desk["overflow"] != "hidden" and desk["scrolled"] > 0 and desk["body"] == 16
        # No freshness on a page that does not refresh: no banner, no dot, however long it stays.
        time.sleep(2 * REFRESH_S + 3)
        assert not driver.find_element(By.ID, "stale-banner").text
        assert not driver.find_element(By.ID, "wall-status-dot").is_displayed()
        driver.find_element(By.LINK_TEXT, "Overview").click()
        wall = wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, ".wall-page"), message="the wall")
        # Back on a wall page: no scrolling, and the root font is 1% of the screen's height.
        assert wall and driver.execute_script(
            "window.scrollTo(0, 10000); const html = getComputedStyle(document.documentElement);"
            "return [html.overflowY, window.scrollY, parseFloat(html.fontSize) * 100 / innerHeight];") == \
            ["hidden", 0, 1]
        assert_no_errors(driver)
    finally:
        driver.quit()


def test_a_failing_cache_is_a_server_error_and_the_shell_stays_up(plant_url, tmp_path):
    require_browser()
    # A file where the cache's lock folder belongs: no snapshot can be computed. (A Redis
    # that does not answer is no failure: each worker computes for itself, tests/test_faults.py.)
    (tmp_path / "cache-locks").write_text("")
    app = AppServer(plant_url, tmp_path, REFRESH_S=str(REFRESH_S)).start()
    driver = chromium()
    try:
        driver.get(app.url + "/")
        banner = wait_until(lambda: driver.find_element(By.ID, "stale-banner").text, timeout=10,
                            message="banner")
        assert banner.startswith("⚠ 服务器出错 · 已记录") and "正在自动重试" in banner
        state = shell_state(driver)
        assert state["clock"] and state["board"]
    finally:
        driver.quit()
        app.stop()
