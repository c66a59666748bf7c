"""Another program writes an issue with plain SQL, from a process of its own, while the wall
is on screens in a real headless Chromium: the issue is on the board and in the tiles within
one refresh interval and a second of its commit, and the tiles are then the figures of the
KPI rules (`python app.py kpis`) at the instant the screen shows (docs/outside-writers.md)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import require_browser
from data import db, demo, kpis, queries, settings, store, timezones
from data.models import Department
from data.words import format_count, format_minutes, format_percent, t
from tools.browser import AppServer, chromium, console_errors, wait_until

pytestmark = pytest.mark.browser

REFRESH_S = 5
# On every screen within an interval and a second of its commit, or, committed after the
# next snapshot was computed ahead of its boundary, an interval later (docs/wall.md, Refresh).
ON_SCREEN_WITHIN_S = REFRESH_S + min(float(settings.get("SNAPSHOT_AHEAD_S")), REFRESH_S / 5) + 1
OUTSIDE_DEPT = "OUT"
ISSUE_ID = "OUT-1"
TITLE = "<b>外部写入</b>"

# Every change of what a person sees of the outside issue, with the browser's clock: the
# open tile, the instant of the data, and the issue's board row (its countdown says whether
# it waits for a response or a resolution).
RECORDER = """
const id = arguments[0];
const text = (selector) => { const e = document.querySelector(selector); return e ? e.innerText : null; };
const probe = () => {
  const row = [...document.querySelectorAll('.board .rows > .row')]
    .find(r => (r.querySelector('.c-id') || {}).innerText === id);
  const cell = (name) => row && row.querySelector('.c-' + name) ? row.querySelector('.c-' + name).innerText : null;
  const tiles = {};
  for (const tile of document.querySelectorAll('.tile[id^="overview-tile-"]'))
    tiles[tile.id.replace('overview-tile-', '')] = tile.querySelector('.tile-value').innerText;
  return {updated: text('#wall-updated'), tiles: tiles,
          row: row ? {title: cell('title'), countdown: cell('countdown')} : null};
};
window.__seen = [];
let last = null;
const record = () => {
  const now = JSON.stringify(probe());
  if (now !== last) { last = now; window.__seen.push([Date.now(), JSON.parse(now)]); }
};
new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true});
record();
"""


def write_elsewhere(db_url: str, statement: str) -> float:
    """Commit `statement` from another process through the plain database driver (no
    FloorLink code); the instant of the commit, by the machine's clock."""
    if db_url.startswith("sqlite"):
        connect = f"import sqlite3; conn = sqlite3.connect({db_url.split(':///', 1)[1]!r}, timeout=30)"
    else:
        connect = f"import psycopg; conn = psycopg.connect({db_url.replace('+psycopg', '')!r})"
    script = textwrap.dedent(f"""
        import time
        {connect}
        conn.execute({statement!r})
        conn.commit()
        print(time.time())
    """)
    done = subprocess.run([sys.executable, "-c", script], check=True, timeout=60,
                          capture_output=True, text=True)
    return float(done.stdout.strip())


def stored(instant: datetime) -> str:
    """An instant as another program writes it: UTC, naive, 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def seen(driver) -> list[tuple[float, dict]]:
    return [(at / 1000, state) for at, state in driver.execute_script("return window.__seen;")]


def first_seen(driver, since: float, check, what: str) -> tuple[float, dict]:
    """The first state a screen showed after `since` that passes `check`, and when."""
    def found():
        return next(((at, state) for at, state in seen(driver) if at >= since and check(state)), None)

    return wait_until(found, timeout=REFRESH_S + 10, message=what)


def shown_as_of(updated: str) -> datetime:
    """The instant of the data on screen from its header ("更新于 10:02:35", site time):
    the latest such instant up to now."""
    clock = datetime.strptime(updated.split()[-1], "%H:%M:%S").time()
    now = timezones.to_site(timezones.utc_now())
    shown = now.replace(hour=clock.hour, minute=clock.minute, second=clock.second, microsecond=0)
    if shown > now:
        shown -= timedelta(days=1)
    return shown.astimezone(timezone.utc)


def kpi_tiles(engine, as_of: datetime) -> dict[str, str]:
    """The overview's tiles (all but the shift's plan) from the KPI rules at as_of, written
    as the tiles write them: open and overdue now, the window figures of today's issues."""
    midnight = timezones.to_site(as_of).replace(hour=0, minute=0, second=0, microsecond=0)
    with engine.connect() as conn:
        population = queries.issue_population(conn, midnight, as_of)
        events = queries.holder_events(conn, midnight, as_of, as_of)
        open_now = queries.open_issues(conn, as_of)
    figures = kpis.issue_kpis(population, events, open_now, as_of)
    nothing = t("no_value", "zh")
    return {
        "open": format_count(figures["open"]), "overdue": format_count(figures["overdue"]),
        "median_response_min": format_minutes(figures["response_median_min"], "zh"),
        "response_sla_compliance": format_percent(figures["response_sla_compliance"], "zh"),
        "resolution_rate": format_percent(figures["resolution_rate"], "zh")
        if figures["raised"] else nothing,
    }


def assert_tiles_are_the_kpis(driver, engine, after: float) -> None:
    """Once the screen shows data of an instant after `after`, its tiles are the KPI rules'
    figures at that instant. The header follows the tiles within a second (the browser's
    clock redraws it), so a state counts once it stayed the same across a refresh boundary."""
    def steady():
        _, first = seen(driver)[-1]
        time.sleep(1.2)
        _, second = seen(driver)[-1]
        return first["updated"] == second["updated"] and first["tiles"] == second["tiles"] \
            and shown_as_of(second["updated"]).timestamp() >= after and second

    state = wait_until(steady, timeout=3 * REFRESH_S, interval=0.1, message="tiles after the write")
    as_of = shown_as_of(state["updated"])
    tiles = {name: value for name, value in state["tiles"].items() if name != "plan_attainment"}
    assert tiles == kpi_tiles(engine, as_of), as_of


def open_page(url: str) -> object:
    driver = chromium()
    driver.get(url)
    wait_until(lambda: driver.execute_script(
        "const e = document.getElementById('wall-updated'); return e && e.innerText;"),
        timeout=30, message="first refresh")
    driver.execute_script(RECORDER, ISSUE_ID)
    return driver


@pytest.fixture
def plant(db_url):
    """Three days of the demo plant up to now, and a department of the outside program's
    own, known to the plant before any screen asks for it."""
    require_browser()
    engine = db.get_engine(db_url)
    demo.build_demo_plant(engine, days=3, seed=5)
    with engine.begin() as conn:
        store.upsert_rows(conn, Department, [{"code": OUTSIDE_DEPT, "name_zh": "外部系统",
                                              "name_en": "Outside system"}])
    return db_url


def test_an_issue_another_process_inserts_and_acknowledges_is_on_every_screen_within_an_interval(
        plant, tmp_path):
    engine = db.get_engine(plant)
    server = AppServer(plant, tmp_path, REFRESH_S=str(REFRESH_S)).start()
    drivers = []
    try:
        overview = open_page(server.url + "/")
        drivers.append(overview)
        board = open_page(server.url + f"/issues?dept={OUTSIDE_DEPT}")
        drivers.append(board)
        open_before = int(seen(overview)[-1][1]["tiles"]["open"].replace(",", ""))

        raised = timezones.utc_now() - timedelta(seconds=90)
        committed = write_elsewhere(plant, (
            "INSERT INTO issues (id, issue_type, title, severity, raised_at, owner_department_code, "
            f"status) VALUES ('{ISSUE_ID}', 'quality_anomaly', '{TITLE}', 'P1', '{stored(raised)}', "
            f"'{OUTSIDE_DEPT}', 'open')"))
        at, state = first_seen(board, committed, lambda s: s["row"], "the issue on the board")
        assert at - committed <= ON_SCREEN_WITHIN_S
        # Text from the data is shown as text, and the issue waits for a response.
        assert state["row"]["title"] == TITLE
        assert state["row"]["countdown"].startswith(t("to_ack", "zh"))
        at, _ = first_seen(overview, committed,
                           lambda s: s["tiles"]["open"] == format_count(open_before + 1),
                           "the open tile counting the issue")
        assert at - committed <= ON_SCREEN_WITHIN_S
        assert_tiles_are_the_kpis(overview, engine, committed)

        acknowledged = timezones.utc_now() - timedelta(seconds=30)
        committed = write_elsewhere(plant, (
            f"UPDATE issues SET acknowledged_at = '{stored(acknowledged)}', status = 'acknowledged' "
            f"WHERE id = '{ISSUE_ID}'"))
        at, _ = first_seen(board, committed, lambda s: s["row"] and s["row"]["countdown"].startswith(
            t("to_resolve", "zh")), "the issue acknowledged on the board")
        assert at - committed <= ON_SCREEN_WITHIN_S
        assert_tiles_are_the_kpis(overview, engine, committed)
        for driver in drivers:
            assert console_errors(driver) == []
    finally:
        for driver in drivers:
            driver.quit()
        server.stop()
