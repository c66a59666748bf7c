"""The fleet of wall screens (data/fleet.py, dashboards/fleet.py): a refresh is noted in the
worker's buffer and written in one transaction; a later write never takes a screen back in
time; a database that stops or freezes costs a refresh nothing and loses nothing once it is
back; a source of views keeps no fleet and the page says so; the flagging rule at its
boundaries; the page's counts and rows, text from data kept as text."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from dash import Patch, no_update
from sqlalchemy import event, select

from data import db, fleet
from data.models import WallScreen
from tools.databases import postgres_server

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)      # 10:00 site time
CHROME_TV = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/120.0.6099.224 Safari/537.36")


def seen(n: int = 0, outcome: str = "ok", *, name: str | None = None, page: str = "overview",
         line: str | None = "L2", user_agent: str = CHROME_TV, address: str = "10.20.0.7") -> fleet.Sighting:
    return fleet.sighting(screen_name=name, browser_id=f"{n:032x}", address=address, page=page,
                          department=None, line=line, replay_at=None, lang="zh", kiosk="1",
                          build_id="abc123", user_agent=user_agent, outcome=outcome)


class Clock:
    """The recorder's monotonic clock, stepped by the test."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rows_of(url: str) -> dict[str, dict]:
    with db.get_engine(url).connect() as conn:
        return {row["key"]: dict(row) for row in conn.execute(select(WallScreen.__table__)).mappings()}


# ---- the flagging rule ---------------------------------------------------------------------

@pytest.mark.parametrize("refresh_s, silent_s, outcome, state", [
    # REFRESH_S 10: late past 10 + 2 s, dark past two intervals (20 s).
    (10, 0, "ok", "live"),
    (10, 12, "ok", "live"),
    (10, 12.001, "ok", "late"),
    (10, 20, "ok", "late"),
    (10, 20.001, "ok", "dark"),
    (10, 5, "db_down", "db_down"),
    (10, 5, "error", "error"),
    (10, 12.5, "db_down", "late"),           # silent is worse than a failed refresh
    (10, 3600, "error", "dark"),
    # REFRESH_S 2: two intervals (4 s) are no longer than one and the grace: no late band.
    (2, 4, "ok", "live"),
    (2, 4.001, "ok", "dark"),
    # REFRESH_S 60: late past 62 s, dark past 120 s.
    (60, 62, "ok", "live"),
    (60, 62.5, "ok", "late"),
    (60, 120, "ok", "late"),
    (60, 120.5, "ok", "dark"),
])
def test_the_flagging_rule_at_its_boundaries(refresh_s, silent_s, outcome, state):
    as_of = T0 + timedelta(seconds=silent_s)
    assert fleet.screen_state(T0, outcome, as_of, refresh_s) == state


# ---- recording -----------------------------------------------------------------------------

def test_refreshes_are_buffered_and_written_in_one_transaction(db_url):
    recorder = fleet.Recorder(Clock())
    engine = db.get_engine(db_url)
    for step in range(3):                   # three refreshes of 300 screens, 10 s apart
        for n in range(300):
            recorder.note(db_url, seen(n, "db_down" if step == 2 and n == 7 else "ok"),
                          T0 + timedelta(seconds=10 * step))
    transactions, writes = [], []

    def committed(conn):
        transactions.append(conn)

    def executed(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT"):
            writes.append(statement)

    event.listen(engine, "commit", committed)
    event.listen(engine, "before_cursor_execute", executed)
    try:
        assert recorder.flush() == 300
    finally:
        event.remove(engine, "commit", committed)
        event.remove(engine, "before_cursor_execute", executed)
    assert len(transactions) == 1
    assert len(writes) <= 2, "the screens in one statement (SQLite: at most 999 values a statement)"
    rows = rows_of(db_url)
    assert len(rows) == 300
    one = rows[f"browser:{1:032x}"]
    assert one["first_seen"] == T0 and one["last_refresh"] == T0 + timedelta(seconds=20)
    assert one["last_outcome"] == "ok" and one["outcome_since"] == T0
    assert (one["page"], one["line"], one["lang"], one["kiosk"], one["build_id"], one["address"]) == (
        "overview", "L2", "zh", True, "abc123", "10.20.0.7")
    failing = rows[f"browser:{7:032x}"]
    assert failing["last_outcome"] == "db_down" and failing["outcome_since"] == T0 + timedelta(seconds=20)
    assert recorder.flush() == 0, "nothing left to write"


def test_a_screen_keeps_its_first_sighting_and_never_goes_back_in_time(db_url):
    # Two workers: one writes a screen's later refresh before the other writes its earlier one.
    first, second = fleet.Recorder(Clock()), fleet.Recorder(Clock())
    first.note(db_url, seen(1, page="overview"), T0)
    first.flush()
    first.note(db_url, seen(1, "db_down", page="material"), T0 + timedelta(seconds=20))
    second.note(db_url, seen(1, page="issues"), T0 + timedelta(seconds=10))
    first.flush()
    second.flush()
    row = rows_of(db_url)[f"browser:{1:032x}"]
    assert (row["page"], row["last_refresh"], row["last_outcome"]) == ("material", T0 + timedelta(seconds=20), "db_down")
    assert row["first_seen"] == T0 and row["outcome_since"] == T0 + timedelta(seconds=20)
    # Down for a minute, then good: the outcome's start moves only when it changes.
    first.note(db_url, seen(1, "db_down"), T0 + timedelta(seconds=80))
    first.flush()
    assert rows_of(db_url)[f"browser:{1:032x}"]["outcome_since"] == T0 + timedelta(seconds=20)
    first.note(db_url, seen(1), T0 + timedelta(seconds=90))
    first.flush()
    row = rows_of(db_url)[f"browser:{1:032x}"]
    assert (row["last_outcome"], row["outcome_since"]) == ("ok", T0 + timedelta(seconds=90))


def test_the_screen_is_known_by_its_token_else_its_browser_else_its_address():
    assert seen(5, name="TV L2").key == "token:TV L2"
    assert seen(5).key == f"browser:{5:032x}"
    forged = fleet.sighting(screen_name=None, browser_id="<script>", address="10.0.0.9", page="overview",
                            department=None, line=None, replay_at=None, lang="en", kiosk="maybe",
                            build_id="'; DROP TABLE", user_agent="x" * 1000, outcome="ok")
    assert forged.key == "address:10.0.0.9" and forged.browser_id is None
    assert forged.kiosk is None and forged.build_id is None and len(forged.user_agent) == 300
    with pytest.raises(ValueError, match="outcome 'fine'"):
        seen(1, "fine")


def test_a_stopped_or_frozen_database_costs_a_refresh_nothing_and_loses_nothing(tmp_path, monkeypatch):
    clock = Clock()
    recorder = fleet.Recorder(clock)
    monkeypatch.setattr(fleet, "MAX_BUFFERED", 50)
    with postgres_server() as pg:
        db.upgrade_schema(db.get_engine(pg.url))
        pg.stop()
        for n in range(40):
            recorder.note(pg.url, seen(n), T0)
        assert recorder.flush() == 0                        # refused: kept for later
        for n in range(30, 60):                             # 30 seen again, 10 new fit, 10 do not
            recorder.note(pg.url, seen(n), T0 + timedelta(seconds=10))
        assert recorder.dropped == 10
        assert recorder.flush() == 0, "not tried again before its wait"
        clock.now += fleet.FLUSH_S * 2 + 0.01
        assert recorder.flush() == 0                        # still refused: the wait doubles
        pg.start()
        clock.now += fleet.FLUSH_S * 2 + 0.01
        assert recorder.flush() == 0, "tried again after 4 s, not 2"
        clock.now += fleet.FLUSH_S * 2
        assert recorder.flush() == 50
        rows = rows_of(pg.url)
        assert len(rows) == 50
        assert rows[f"browser:{35:032x}"]["first_seen"] == T0
        assert rows[f"browser:{35:032x}"]["last_refresh"] == T0 + timedelta(seconds=10)

        # Frozen (silent, as in a network partition): the write waits, a refresh does not.
        recorder.note(pg.url, seen(1), T0 + timedelta(seconds=20))
        pg.freeze()
        try:
            writing = threading.Thread(target=recorder.flush)
            writing.start()
            time.sleep(0.5)
            assert writing.is_alive(), "the write waits on the silent database"
            started = time.perf_counter()
            for n in range(1000):
                recorder.note(pg.url, seen(n % 50), T0 + timedelta(seconds=30))
            assert time.perf_counter() - started < 0.25, "a thousand refreshes noted at once"
        finally:
            pg.thaw()
        writing.join(timeout=30)
        # Written once thawed, or refused by a connection that did not survive it and kept.
        clock.now += fleet.RETRY_MAX_S
        assert recorder.flush() == 50
        assert rows_of(pg.url)[f"browser:{1:032x}"]["last_refresh"] == T0 + timedelta(seconds=30)


def test_a_database_of_views_keeps_no_fleet_and_the_page_says_so(tmp_path, fleet_page):
    url = f"sqlite:///{tmp_path / 'views.sqlite'}"
    with db.get_engine(url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE issues (id TEXT)")
    recorder = fleet.Recorder(Clock())
    recorder.note(url, seen(1), T0)
    assert recorder.flush() == 0
    recorder.note(url, seen(2), T0)
    assert not recorder._pending, "nothing buffered for it any more"
    read = fleet.read(url, T0, 10)
    assert read.kept is False and read.screens == ()
    counts, note, rows, _ = fleet_page.fleet_view(url, {"lang": "en"}, {}, T0)
    assert "keeps no record of the screens" in note and rows == []


def test_a_database_that_does_not_answer_keeps_the_rows_shown(tmp_path, fleet_page):
    url = "postgresql+psycopg://postgres@127.0.0.1:1/floorlink"       # nothing listens there
    counts, note, rows, sent = fleet_page.fleet_view(url, {"lang": "zh"}, {"rows": ["kept"]}, T0)
    assert note == "数据库无法连接：显示的是最后读取到的屏幕状态"
    assert counts is no_update and rows is no_update and sent["rows"] == ["kept"]


@pytest.mark.parametrize("agent, shown", [
    (CHROME_TV, "Chrome 120 · Linux"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91", "Edge 120 · Windows"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 "
     "Safari/537.36", "Chrome headless 131 · Linux"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox 121 · Windows"),
    ("Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.1 Mobile/15E148 Safari/604.1", "Safari 17.1 · iOS"),
    ("Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36", "Samsung Internet 4 · Tizen"),
    ("curl/8.5.0", "curl/8.5.0"),
    ("<img src=x onerror=alert(1)> a very long agent that goes on", "<img src=x onerror=alert(1)> a very lon…"),
    (None, ""),
])
def test_a_browser_is_shown_by_its_name_version_and_system(agent, shown):
    assert fleet.short_browser(agent) == shown


# ---- the page ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wall(tmp_path_factory):
    """The app on an empty database of its own (Dash registers the pages and their callbacks
    in the first app of a process only)."""
    from app import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.setenv("SECRET_KEY", "fleet-test-key")
        patch.setenv("TRUSTED_NETWORKS", "")
        url = f"sqlite:///{tmp_path_factory.mktemp('app') / 'app.sqlite'}"
        db.upgrade_schema(db.get_engine(url))
        yield create_app(url), url


@pytest.fixture(scope="module")
def fleet_page(wall):
    from dashboards import fleet as page

    return page


def texts(component) -> list[str]:
    """Every text child of a rendered component, in order."""
    if isinstance(component, str):
        return [component]
    if isinstance(component, list):
        return [text for child in component for text in texts(child)]
    if isinstance(component, dict):
        return texts(component.get("props", {}).get("children"))
    return []


def cells(row: dict) -> list[str]:
    """A rendered table row's cells, the texts of each joined by " · "."""
    return [" · ".join(texts(cell)) for cell in row["props"]["children"]]


def test_the_page_lists_each_screen_with_its_state_the_flagged_first(db_url, fleet_page, monkeypatch):
    monkeypatch.setenv("REFRESH_S", "10")
    recorder = fleet.Recorder(Clock())
    hostile = "<b>TV</b> =HYPERLINK(\"x\")"
    for who, outcome, silent_s in (("TV L1", "ok", 3), (hostile, "ok", 5), ("TV L3", "ok", 15),
                                   ("TV L4", "ok", 60), ("TV L5", "db_down", 4), ("TV L6", "error", 2),
                                   ("TV L7", "ok", 8 * 86400)):
        recorder.note(db_url, seen(len(who), outcome, name=who), T0 - timedelta(seconds=silent_s))
    # Noted late by another thread: the older refresh of TV L5, down since then.
    recorder.note(db_url, seen(99, "db_down", name="TV L5"), T0 - timedelta(seconds=64))
    recorder.flush()
    counts, note, rows, sent = fleet_page.fleet_view(db_url, {"lang": "en"}, {}, T0)
    assert texts(counts) == ["1", "Dark", "1", "Late", "1", "Server error", "1", "Database unreachable",
                             "2", "Live", "6 screens", "Read at 10:00:00"]
    assert texts(note) == ["1 more screens not seen for over 7 days are not listed", " · ", "Show them"]
    assert note[2]["props"]["href"] == "/fleet?lang=en&all=1"
    shown = [cells(row) for row in rows]
    assert [row[1] for row in shown] == ["TV L4", "TV L3", "TV L6", "TV L5", hostile, "TV L1"]
    assert shown[0][0] == "Dark · since 09:59:00"
    assert shown[1][0] == "Late · since 09:59:45"
    assert shown[2][0] == "Server error · since 09:59:58"
    assert shown[3][0] == "Database unreachable · since 09:58:56"
    assert shown[5] == ["Live", "TV L1", "10.20.0.7", "Overview", "Line L2", "中文", "Yes",
                        "abc123 · older build, reloads itself", "Chrome 120 · Linux", "09:59:57", "09:59:57"]
    # A name holding markup or a formula is a text child: never markup, never a property.
    assert "dangerously" not in json.dumps(rows) and shown[4][1] == hostile
    # Read again a second later: nothing changed, nothing sent but the time read.
    counts, note, again, sent = fleet_page.fleet_view(db_url, {"lang": "en"}, sent, T0 + timedelta(seconds=1))
    assert again is no_update and note is no_update
    [changed] = counts.to_plotly_json()["operations"]
    assert changed["location"] == [6] and texts(changed["params"]["value"]) == ["Read at 10:00:01"]
    # One screen refreshed: only its row is sent.
    recorder.note(db_url, seen(len("TV L1"), name="TV L1"), T0 + timedelta(seconds=1))
    recorder.flush()
    _, _, patch, sent = fleet_page.fleet_view(db_url, {"lang": "en"}, sent, T0 + timedelta(seconds=2))
    assert isinstance(patch, Patch)
    assert [op["location"] for op in patch.to_plotly_json()["operations"]] == [[5]]
    # Everything: the long-gone screen listed too, and the way back.
    _, note, rows, _ = fleet_page.fleet_view(db_url, {"lang": "zh", "all": True}, {}, T0)
    assert [cells(row)[:2] for row in rows[:2]] == [["离线 · 自 09:59:00", "TV L4"],
                                                    ["离线 · 自 2026-11-12 10:00", "TV L7"]]
    assert texts(note) == ["隐藏超过 7 天未出现的屏幕"] and note["props"]["href"] == "/fleet?lang=zh"


def test_a_worker_reads_the_fleet_for_one_page_at_a_time(wall, fleet_page):
    app, _ = wall
    with app.server.test_request_context("/_dash-update-component"):
        assert fleet_page._reading.acquire(blocking=False)
        try:
            # Another page's read holds the database: this one answers at once, with nothing.
            started = time.perf_counter()
            assert fleet_page.refresh(1, {"lang": "en"}, {}) == (no_update,) * 4
            assert time.perf_counter() - started < 0.05
        finally:
            fleet_page._reading.release()
        counts, *_ = fleet_page.refresh(2, {"lang": "en"}, {})
        assert texts(counts)[-1].startswith("Read at ")


def test_an_empty_fleet_says_how_a_screen_gets_there(db_url, fleet_page):
    counts, note, rows, _ = fleet_page.fleet_view(db_url, {"lang": "en"}, {}, T0)
    assert rows == [] and note.startswith("No screen has refreshed yet")
    assert texts(counts)[-2] == "0 screens"


# ---- a refresh through the doors -----------------------------------------------------------

def refresh_body(client) -> dict:
    """The overview's refresh as dash-renderer sends it, for a screen on line L3 in English."""
    callback = next(c for c in client.get("/_dash-dependencies").get_json() if "overview-sent.data" in c["output"])
    spec = callback["output"]
    outputs = [dict(zip(("id", "property"), part.split("@")[0].split("."))) for part in spec[2:-2].split("...")]
    scope = {"lang": "en", "dept": None, "line": "L3", "at": None}
    state = [{**s, "value": v} for s, v in zip(callback["state"], [scope, {}, {}])]
    return {"output": spec, "outputs": outputs, "inputs": [{**callback["inputs"][0], "value": 1}],
            "state": state, "changedPropIds": ["overview-refresh.n_intervals"]}


def wait_for_row(url: str, key: str) -> dict:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        row = rows_of(url).get(key)
        if row is not None:
            return row
        time.sleep(0.1)
    raise AssertionError(f"no row {key} within 5 s: {sorted(rows_of(url))}")


def test_a_refresh_notes_its_screen_and_only_an_admin_opens_the_page(wall):
    from data import timezones
    from data.auth import screens, users

    app, url = wall
    client = app.server.test_client()
    body = refresh_body(client)
    headers = {fleet.SCREEN_HEADER: "ab" * 16, fleet.BUILD_HEADER: "0123abcd", fleet.KIOSK_HEADER: "1",
               "User-Agent": CHROME_TV}
    answer = client.post("/_dash-update-component", json=body, headers=headers)
    assert answer.status_code == 200
    row = wait_for_row(url, "browser:" + "ab" * 16)
    assert (row["page"], row["line"], row["lang"], row["kiosk"], row["build_id"], row["last_outcome"]) == (
        "overview", "L3", "en", True, "0123abcd", "ok")
    assert row["user_agent"] == CHROME_TV and row["address"] == "127.0.0.1"
    # Sign-in off: the page and its callback are refused, as every admin door is.
    assert client.get("/fleet").status_code == 403
    page_body = {"output": "..fleet-counts.children...fleet-note.children...fleet-rows.children..."
                           "fleet-sent.data..", "outputs": [], "inputs": [], "state": [], "changedPropIds": []}
    assert client.post("/_dash-update-component", json=page_body).status_code == 403

    # Sign-in on: a screen that showed its token is known by the token's name.
    now = timezones.utc_now()
    users.create(db.get_engine(url), "wang.wu", "admin", "correct horse battery", now)
    _, token = screens.create(db.get_engine(url), "TV L3", now)
    tv = app.server.test_client()
    assert tv.get(f"/?kiosk=1&screen={token}").status_code == 200
    assert tv.post("/_dash-update-component", json=refresh_body(tv), headers=headers).status_code == 200
    assert wait_for_row(url, "token:TV L3")["name"] == "TV L3"
    assert tv.get("/fleet").status_code == 403, "a screen is a viewer"
    assert tv.post("/_dash-update-component", json=page_body).status_code == 403
