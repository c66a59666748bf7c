"""The wall's shell without a browser: kiosk parameters that cannot break a screen, the one
refresh protocol every page is served by (changed parts only, failed panels, scope problems,
an empty database, data errors, failures answered as a status) and the pages' callbacks
checked by Dash against their layouts."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from dash import Output, no_update

from data import cache, timezones
from data.wall import screens

import app as floorlink

PAGES = ["overview", "issues", "material"]


@pytest.fixture(scope="module")
def dash_app(tmp_path_factory):
    return floorlink.create_app(f"sqlite:///{tmp_path_factory.mktemp('shell') / 'none.sqlite'}")


@pytest.fixture
def server(dash_app, tmp_path, monkeypatch):
    """The app's server with a cache of its own, one long interval, no scope problems and a
    plant with new data unless a test says otherwise."""
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CACHE_KEY_PREFIX", f"floorlink-test-{uuid.uuid4().hex[:8]}:")
    monkeypatch.setenv("REFRESH_S", "3600")
    monkeypatch.setattr(screens, "scope_problem", lambda url, department, line: None)
    monkeypatch.setattr(screens, "freshness_for_screen",
                        lambda url, at=None: {"newest_record_ms": 500, "quiet": False})
    cache.init_app(dash_app.server)
    with dash_app.server.app_context():
        yield dash_app.server


def ui():
    from dashboards import _ui
    return _ui


# ---- kiosk parameters ------------------------------------------------------------------

@pytest.mark.parametrize("every, used, said", [
    ("30", 30, False), (" 45 ", 45, False), ("5", 5, False), ("3600", 3600, False),
    ("7.5", 8, True), ("7.4", 7, True), ("abc", 30, True), ("", 30, True), ("nan", 30, True),
    ("1e9", 3600, True), ("inf", 3600, True), ("99999999999999999999", 3600, True),
    ("-5", 5, True), ("4", 5, True), ("3601", 3600, True), ("-inf", 5, True),
])
def test_every_is_whole_seconds_in_range_and_a_bad_value_is_said(every, used, said):
    asked = ui().kiosk_params({"every": every, "rotate": "overview,material"}, PAGES)
    assert asked.every_s == used
    assert asked.rotate == ["overview", "material"]
    assert bool(asked.notices) == said
    if said:
        assert asked.notices == [f"参数 every={every} 无效（允许 5–3600 秒的整数），已使用 {used} 秒"]


def test_unknown_pages_in_the_rotation_are_left_out_and_named():
    asked = ui().kiosk_params({"rotate": "overview, board ,,material,404", "lang": "en"}, PAGES)
    assert asked.rotate == ["overview", "material"]
    assert asked.notices == ["rotate: unknown page board, 404 ignored (pages: overview, issues, material)"]


def test_an_unsupported_language_shows_chinese_and_says_so_in_both():
    asked = ui().kiosk_params({"lang": "fr"}, PAGES)
    assert asked.lang == "zh"
    assert asked.notices == ["不支持语言 fr，已使用中文 · Language fr is not supported; showing Chinese"]
    assert ui().kiosk_params({"lang": "en"}, PAGES) == ("en", 30, [], False, [], None)
    assert ui().kiosk_params({}, PAGES) == ("zh", 30, [], False, [], None)


def test_kiosk_takes_yes_or_no_and_says_when_it_is_neither():
    assert ui().kiosk_params({"kiosk": "1"}, PAGES).kiosk is True
    assert ui().kiosk_params({"kiosk": "TRUE"}, PAGES).kiosk is True
    assert ui().kiosk_params({"kiosk": "0"}, PAGES).kiosk is False
    asked = ui().kiosk_params({"kiosk": "maybe", "lang": "en"}, PAGES)
    assert asked.kiosk is False
    assert asked.notices == ["kiosk=maybe is not valid; ignored (use 1 or 0)"]


def test_a_long_value_is_shown_cut():
    asked = ui().kiosk_params({"every": "x" * 500}, PAGES)
    assert asked.notices == ["参数 every=" + "x" * 23 + "…" + " 无效（允许 5–3600 秒的整数），已使用 30 秒"]


def test_the_header_says_when_a_page_does_not_follow_the_department(server):
    _ui = ui()
    title, nav, config, root, scope, notices, replay = _ui._shell_texts("?dept=QA&line=L2", "/material")
    assert scope == "产线 L2 · 本页不分部门"
    assert _ui._shell_texts("?dept=QA&lang=en", "/material")[4] == "Whole site · this page is not per department"
    # The overview follows it (no names in this database: the code stands for the name).
    assert _ui._shell_texts("?dept=QA", "/")[4] == "QA"
    assert _ui._shell_texts("", "/issues")[4] == "全厂"
    # The 404 is no wall page: not in the navigation, no scope.
    assert [link.href for link in nav] == ["/?lang=zh", "/issues?lang=zh", "/material?lang=zh"]
    assert _ui._shell_texts("?dept=QA", "/nowhere")[4] == ""
    assert root == "wall-root lang-zh" and notices == "" and replay == ""
    assert config["replay_ms"] is None
    _, _, config, root, _, notices, _ = _ui._shell_texts(
        "?rotate=overview,nope&every=1e9&kiosk=1&lang=en", "/")
    assert config["every_s"] == 3600 and [r["path"] for r in config["rotate"]] == ["/"]
    assert root == "wall-root lang-en kiosk"
    assert notices == ("every=1e9 is not valid (whole seconds, 5–3600); using 3600 s · "
                       "rotate: unknown page nope ignored (pages: overview, issues, material)")


# ---- ?at=: replaying an instant ----------------------------------------------------------

NOW = datetime(2026, 12, 5, 6, 30, tzinfo=timezone.utc)       # 14:30 at the site


@pytest.fixture
def site(monkeypatch):
    """The site's zone, the plausible range and the clock the tests' instants are read by."""
    monkeypatch.setenv("SITE_TZ", "Asia/Shanghai")
    monkeypatch.setenv("PLAUSIBLE_FROM", "2000-01-01")
    monkeypatch.setattr(timezones, "utc_now", lambda: NOW)


@pytest.mark.parametrize("value, replayed", [
    ("2016-03-10T10:00", datetime(2016, 3, 10, 2, 0, tzinfo=timezone.utc)),        # site time
    (" 2016-03-10 10:00 ", datetime(2016, 3, 10, 2, 0, tzinfo=timezone.utc)),
    ("2016-03-10T10:00+00:00", datetime(2016, 3, 10, 10, 0, tzinfo=timezone.utc)),  # its own offset
    ("2016-03-10T10:00:30.75", datetime(2016, 3, 10, 2, 0, 30, tzinfo=timezone.utc)),
    ("2016-03-10", datetime(2016, 3, 9, 16, 0, tzinfo=timezone.utc)),               # its midnight
    ("2000-01-01T00:00", datetime(1999, 12, 31, 16, 0, tzinfo=timezone.utc)),       # PLAUSIBLE_FROM
    ("2026-12-05T14:30", NOW),                                                      # now
    (["2016-03-10T10:00", "2016-03-11T10:00"], datetime(2016, 3, 11, 2, 0, tzinfo=timezone.utc)),
])
def test_at_is_an_instant_in_site_time_to_the_second(site, value, replayed):
    _ui = ui()
    assert _ui.replay_instant(value) == (replayed, None)
    asked = _ui.kiosk_params({"at": value[-1] if isinstance(value, list) else value}, PAGES)
    assert asked.at == replayed and asked.notices == []
    assert _ui.page_scope("en", None, None, value)["at"] == replayed.isoformat()


@pytest.mark.parametrize("value, lang, said", [
    ("yesterday", "zh", "参数 at=yesterday 无效（应为站点时间，如 2016-03-10T10:00），显示实时数据"),
    ("2016-13-01T10:00", "en", "at=2016-13-01T10:00 is not a time (site time, e.g. 2016-03-10T10:00); "
                               "showing live data"),
    ("2026-12-05T14:30:01", "zh", "参数 at=2026-12-05T14:30:01 在未来，无法回放，显示实时数据"),
    ("2030-01-01T00:00", "en", "at=2030-01-01T00:00 is in the future and cannot be replayed; showing live data"),
    ("1999-12-31T23:59:59", "zh", "参数 at=1999-12-31T23:59:59 早于 PLAUSIBLE_FROM（2000-01-01），无法回放，显示实时数据"),
    ("0001-01-01T00:00", "en", "at=0001-01-01T00:00 is not a time (site time, e.g. 2016-03-10T10:00); "
                               "showing live data"),
    ("<b>" + "9" * 40, "en", "at=<b>" + "9" * 20 + "… is not a time (site time, e.g. 2016-03-10T10:00); "
                             "showing live data"),
])
def test_a_refused_instant_leaves_the_screen_live_and_is_said(site, value, lang, said):
    _ui = ui()
    asked = _ui.kiosk_params({"at": value, "lang": lang}, PAGES)
    assert asked.at is None and asked.notices == [said]
    assert _ui.page_scope(lang, None, None, value)["at"] is None
    assert _ui.replay_instant(None) == (None, None) and _ui.replay_instant("  ") == (None, None)


def test_the_header_says_replay_and_the_navigation_keeps_the_instant(server, site):
    _ui = ui()
    title, nav, config, root, scope, notices, replay = _ui._shell_texts(
        "?at=2016-03-10T10:00&lang=en&dept=QA", "/issues")
    assert replay == "Replay at 2016-03-10 10:00"
    assert config["replay_ms"] == int(datetime(2016, 3, 10, 2, 0, tzinfo=timezone.utc).timestamp() * 1000)
    assert root == "wall-root lang-en replay" and notices == ""
    assert [link.href for link in nav] == ["/?lang=en&at=2016-03-10T10:00",
                                           "/issues?lang=en&at=2016-03-10T10:00",
                                           "/material?lang=en&at=2016-03-10T10:00"]
    assert _ui._shell_texts("?at=2016-03-10T10:00:30", "/")[6] == "回放 2016-03-10 10:00:30"
    # Refused: the screen is live, and says why.
    _, nav, config, root, _, notices, replay = _ui._shell_texts("?at=2030-01-01", "/")
    assert replay == "" and config["replay_ms"] is None and root == "wall-root lang-zh"
    assert notices == "参数 at=2030-01-01 在未来，无法回放，显示实时数据"
    assert nav[0].href == "/?lang=zh"


# ---- the refresh protocol ---------------------------------------------------------------

SCOPE = {"lang": "zh", "dept": None, "line": None}


def parts(calls: list | None = None):
    """Four parts of a made-up page, one of each kind of Output."""
    _ui = ui()

    def rows(snapshot, lang):
        return [f"{r} {lang}" for r in snapshot["rows"]]

    def broken(snapshot, lang):
        raise KeyError("a drawing bug")

    return {
        "rows": _ui.Part(Output("p-rows", "children"), rows),
        "board": _ui.Part(Output("p-board", "data"), lambda s, lang: {"rows": s["board"], "state": "ok"}),
        "trend": _ui.Part(Output("p-trend", "figure"), lambda s, lang: {"data": s["trend"]}),
        "broken": _ui.Part(Output("p-broken", "children"), broken),
    }


def snapshot_of(**figures):
    calls = []

    def snapshot(database_url, **scope):
        calls.append(scope)
        return {"as_of_ms": 1_000, "rows": ["a", "b", "c"], "board": [1], "trend": [2], **figures}

    return snapshot, calls


def refresh(snapshot, sent=None, status=None, scope=SCOPE, follows=("dept", "line"), page_parts=None):
    return ui().serve_refresh("p", page_parts or parts(), snapshot, follows, scope, sent, status)


def test_a_screen_is_sent_only_what_changed_and_a_list_item_by_item(server):
    snapshot, calls = snapshot_of()
    rows, board, trend, broken, notice, sent, status = refresh(snapshot)
    assert rows == ["a zh", "b zh", "c zh"] and board == {"rows": [1], "state": "ok"}
    assert trend == {"data": [2]} and notice is None
    assert calls == [{"department": None, "line": None, "at": None}]
    assert status["state"] == "ok" and status["last_good_ms"] == 1_000 and status["data_errors"] is None
    # The next refresh in the same interval reads the same view: nothing is sent again.
    again = refresh(snapshot, sent, status)
    assert again[:5] == (no_update,) * 5 and len(calls) == 1
    # A new interval where one row changed: only that row goes, as a Patch.
    cache.cache.clear()
    changed, calls = snapshot_of(rows=["a", "B", "c"])
    rows, board, *_ = refresh(changed, sent, status)
    assert rows.to_plotly_json()["operations"] == [
        {"operation": "Assign", "location": [1], "params": {"value": "B zh"}}]
    assert board is no_update
    # A list of another length is sent whole.
    cache.cache.clear()
    longer, _ = snapshot_of(rows=["a", "b", "c", "d"])
    assert refresh(longer, sent, status)[0] == ["a zh", "b zh", "c zh", "d zh"]


def test_a_failed_part_says_so_in_its_panel_and_the_others_are_drawn(server):
    snapshot, _ = snapshot_of(failed_panels=["trend", "board"], trend=None, board=None)
    rows, board, trend, broken, *_ = refresh(snapshot)
    assert rows == ["a zh", "b zh", "c zh"]
    assert board == {"state": "failed", "message": "此面板计算失败 · 已记录", "rows": []}
    assert trend["layout"]["annotations"][0]["text"] == "此面板计算失败 · 已记录"
    assert trend["data"] == []
    # A part that raises while drawn fails alone, the same way (and is logged).
    assert broken["props"] == {"children": "此面板计算失败 · 已记录", "className": "panel-failed"}


def test_the_data_error_marker_and_its_first_rows(server):
    errors = {"count": 1234, "examples": [
        {"table": "issues", "key": "I-9", "column": "raised_at", "value": "3026-01-01", "reason": "after 2100"}]}
    snapshot, _ = snapshot_of(data_errors=errors)
    status = refresh(snapshot, scope={**SCOPE, "lang": "en"})[-1]
    assert status["data_errors"] == {
        "text": "⚠ 1,234 rows with data errors",
        "title": "Rows left out of the wall, first ones:\nissues · I-9 · raised_at · 3026-01-01 · after 2100"}
    cache.cache.clear()
    one, _ = snapshot_of(data_errors={"count": 1, "examples": []})
    assert refresh(one)[-1]["data_errors"]["text"] == "⚠ 1 条数据异常"
    cache.cache.clear()
    none, _ = snapshot_of(data_errors={"count": 0, "examples": []})
    assert refresh(none)[-1]["data_errors"] is None


def test_an_empty_database_says_how_to_fill_it(server):
    snapshot, _ = snapshot_of(empty_database=True)
    notice = refresh(snapshot)[4]
    text = str(notice)
    assert "数据库中还没有数据" in text and "python app.py demo" in text
    assert "python app.py import TABLE FILE" in text and "docs/import.md" in text
    cache.cache.clear()
    filled, _ = snapshot_of(empty_database=False)
    sent = refresh(snapshot)[5]
    cache.cache.clear()
    assert refresh(filled, sent)[4] is None


def test_an_unknown_scope_is_said_and_nothing_is_computed(server, monkeypatch):
    asked = []

    def scope_problem(database_url, department, line):
        asked.append((department, line))
        return {"kind": "department", "value": department, "suggestion": "QA",
                "known": ["PRD", "QA", "WH"]}

    monkeypatch.setattr(screens, "scope_problem", scope_problem)
    snapshot, calls = snapshot_of()
    *drawn, notice, sent, status = refresh(snapshot, scope={**SCOPE, "dept": "qa"})
    assert calls == [] and asked == [("qa", None)]
    assert drawn == [no_update] * 4
    text = str(notice)
    for said in ("未知部门 “qa”", "是否指 “QA”？", "可用：PRD, QA, WH", "dept="):
        assert said in text
    assert status["state"] == "ok" and status["data_errors"] is None


def test_a_scope_the_plant_lost_since_the_check_is_said_too(server):
    def snapshot(database_url, **scope):
        raise screens.UnknownScope({"kind": "line", "value": "L9", "suggestion": None, "known": []})

    notice = refresh(snapshot, scope={**SCOPE, "lang": "en", "line": "L9"})[4]
    text = str(notice)
    assert "Unknown line “L9”" in text and "Known: —" in text and "line=" in text
    assert "Did you mean" not in text


def test_a_page_follows_only_its_scope(server):
    snapshot, calls = snapshot_of()
    refresh(snapshot, scope={"lang": "zh", "dept": "QA", "line": "L2"}, follows=("line",))
    assert calls == [{"line": "L2", "at": None}]


def test_a_failure_is_answered_as_a_status_never_as_an_error(server):
    def broken(database_url, **scope):
        raise OverflowError("a date the wall cannot hold")

    def gone(database_url, **scope):
        raise screens.SourceUnavailable("connection refused")

    before = {"state": "ok", "last_good_ms": 500, "data_errors": {"text": "⚠", "title": ""}}
    *drawn, notice, sent, status = refresh(broken, {"rows": ["x"]}, before)
    assert drawn == [no_update] * 4 and notice is no_update and sent is no_update
    assert status["state"] == "error" and status["last_good_ms"] == 500
    assert status["data_errors"] == before["data_errors"] and status["server_ms"] > 0
    assert refresh(gone, None, before)[-1]["state"] == "db_down"


def test_a_replayed_instant_is_part_of_the_scope_and_never_stale(server, monkeypatch):
    monkeypatch.setattr(screens.queries, "data_version", lambda conn: 1)
    snapshot, calls = snapshot_of()
    at = datetime(2016, 3, 10, 2, 0, tzinfo=timezone.utc)
    before_ms = int(time.time() * 1000)
    *drawn, notice, sent, status = refresh(snapshot, scope={**SCOPE, "at": at.isoformat()})
    assert calls == [{"department": None, "line": None, "at": at}]
    assert drawn[0] == ["a zh", "b zh", "c zh"]
    # Its data is as fresh as it will ever be: the refresh is dated by the answer, not by the
    # instant replayed, so the browser never calls it stale.
    assert status["state"] == "ok" and status["last_good_ms"] >= before_ms
    # One computation per instant; the live wall and another instant are other views.
    refresh(snapshot, scope={**SCOPE, "at": at.isoformat()})
    refresh(snapshot)
    refresh(snapshot, scope={**SCOPE, "at": (at + timedelta(hours=1)).isoformat()})
    assert [c["at"] for c in calls] == [at, None, at + timedelta(hours=1)]
    assert refresh(snapshot)[-1]["last_good_ms"] == 1_000


NEWEST_MS = int(datetime(2017, 3, 14, 1, 12, tzinfo=timezone.utc).timestamp() * 1000)  # 09:12 site
DAY_MS, HOUR_MS, MINUTE_MS = 86_400_000, 3_600_000, 60_000


@pytest.mark.parametrize("lang, ago_ms, said, ago", [
    ("zh", 3553 * DAY_MS + 5 * HOUR_MS, "没有新数据：最近一条记录于 2017-03-14 09:12（3,553 天前）", None),
    ("en", 3553 * DAY_MS + 5 * HOUR_MS,
     "No new data: the newest record is from 2017-03-14 09:12 (3,553 days ago)", None),
    ("en", 2 * DAY_MS, None, "2 days ago"),
    ("en", 2 * DAY_MS - MINUTE_MS, None, "47 hours ago"),
    ("zh", 2 * HOUR_MS, None, "2 小时前"),
    ("en", 2 * HOUR_MS - MINUTE_MS, None, "119 min ago"),
])
def test_a_quiet_plant_is_said_with_the_instant_to_replay(server, site, monkeypatch, lang, ago_ms,
                                                          said, ago):
    monkeypatch.setattr(screens, "freshness_for_screen",
                        lambda url, at=None: {"newest_record_ms": NEWEST_MS, "quiet": True})
    snapshot, _ = snapshot_of(as_of_ms=NEWEST_MS + ago_ms)
    status = refresh(snapshot, scope={**SCOPE, "lang": lang})[-1]
    quiet = status["quiet"]
    if said:
        assert quiet["text"] == said
    else:
        assert quiet["text"].endswith(f"({ago})" if lang == "en" else f"（{ago}）")
    assert quiet["at"] == "2017-03-14T09:12"
    assert quiet["hint"] == ("See the wall as it was then:" if lang == "en" else "查看当时的看板：")


def test_a_plant_with_new_data_has_no_quiet_notice(server, site):
    snapshot, _ = snapshot_of()
    assert refresh(snapshot)[-1]["quiet"] is None


# ---- Dash Pages checks the callbacks ----------------------------------------------------

def test_every_callback_names_components_of_the_pages_or_the_shell(dash_app):
    """What the browser checks when callback exceptions are not suppressed, asserted here too."""
    assert dash_app.config.suppress_callback_exceptions is False
    client = dash_app.server.test_client()
    client.get("/")                                 # Dash Pages builds its validation layout here
    layout_ids = set()

    def walk(component):
        if isinstance(getattr(component, "id", None), str):
            layout_ids.add(component.id)
        children = getattr(component, "children", None)
        for child in children if isinstance(children, (list, tuple)) else [children]:
            if hasattr(child, "to_plotly_json"):
                walk(child)

    walk(dash_app.validation_layout)
    used = set()
    for callback in client.get("/_dash-dependencies").json:
        used.update(i["id"] for i in callback["inputs"] + callback["state"])
        used.update(output.rsplit(".", 1)[0] for output in callback["output"].strip(".").split("...")
                    if output)
    # Pattern-matching ids ({"type": ...}) are checked by Dash itself against what exists.
    assert {i for i in used if not i.startswith("{")} - layout_ids == set()
    assert {"overview-notice", "issues-notice", "material-notice", "wall-data-errors", "wall-quiet",
            "wall-replay"} <= layout_ids
