"""The delivery log (data/notify/deliveries.py, dashboards/deliveries.py) against hand-written
outbox rows on SQLite and PostgreSQL: the newest first, filtered by status, channel and issue,
the rows past the limit counted, a digest's members counted whatever the filter shows, the
last day's counts and the sender's lag at a given instant; the page's counts and rows, text
from data kept as text; the page and its callback open for an admin alone."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from dash import no_update
from sqlalchemy import insert

from data import db
from data.models import Delivery, Department, Issue, SlaRule
from data.notify import deliveries
from data.notify.messages import Message

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)      # 10:00 site time
PASSWORD = "correct horse battery"
HOSTILE = "<img src=x onerror=alert(1)> =HYPERLINK(\"x\")"


def message(issue_id: str, title: str) -> str:
    return Message(event="issue.raised", event_id=f"{issue_id}|L0|ch", issue_ids=(issue_id,), level=0,
                   severity="P2", lang="zh", title=title, lines=("等待 12 分",), link=None,
                   link_text="确认").to_json()


def ago(**kwargs) -> datetime:
    return T0 - timedelta(**kwargs)


# (id, written, issue, step, channel, status, attempts, due (deliver_after), next attempt, sent,
#  sent in, last error)
ROWS = (
    (1, ago(hours=24), "Q-1", "L0", "wecom-qa", "sent", 1, ago(hours=24), ago(hours=24), ago(hours=24), 1, None),
    (2, ago(hours=3), "Q-2", "L0", "wecom-qa", "sent", 1, ago(hours=3), ago(hours=3), ago(hours=3), 2, None),
    # A digest of four: one request to DingTalk carried 3, 4, 5 and 6.
    *((n, ago(hours=2) + timedelta(seconds=n), f"Q-{n}", "L1", "dingtalk-mnt", "sent", 1, ago(hours=2),
       ago(hours=2), ago(minutes=119), 3, None) for n in (3, 4, 5, 6)),
    (7, ago(minutes=90), "Q-2", "L1", "feishu-plant", "failed", 5, ago(minutes=90), ago(minutes=60), None, None,
     "19021 sign match fail or timestamp is not within one hour from current time"),
    # Retrying after a 500: due ten minutes ago, next attempt in 30 s.
    (8, ago(minutes=10), "Q-2", "L2", "wecom-qa", "pending", 2, ago(minutes=10), T0 + timedelta(seconds=30),
     None, None, "HTTP 500"),
    (9, ago(minutes=2), "Q-7", "L0", "email-qa", "pending", 0, ago(minutes=1), ago(minutes=1), None, None, None),
    # Held by quiet hours until 07:00 tomorrow.
    (10, ago(minutes=1), "Q-8", "L0", "wecom-qa", "pending", 0, T0 + timedelta(hours=21),
     T0 + timedelta(hours=21), None, None, None),
    (11, T0 + timedelta(minutes=5), "Q-9", "L0", "wecom-qa", "pending", 0, T0 + timedelta(minutes=5),
     T0 + timedelta(minutes=5), None, None, None),
    (12, ago(minutes=30), "Q-2", "PP@1795579200", "wecom-qa", "sent", 1, ago(minutes=30), ago(minutes=30),
     ago(minutes=30), 12, None),
)
TITLES = {2: HOSTILE}


def seed(url: str) -> None:
    issues = sorted({row[2] for row in ROWS})
    with db.get_engine(url).begin() as conn:
        conn.execute(insert(Department), [{"code": "QA", "name_zh": "质量部", "name_en": "Quality"}])
        conn.execute(insert(SlaRule), [{"issue_type": "quality_anomaly", "name_zh": "质量异常",
                                        "name_en": "Quality anomaly", "owner_department_code": "QA",
                                        "notify_department_codes": "", "ack_minutes": 10,
                                        "resolve_minutes": 120}])
        conn.execute(insert(Issue), [{"id": i, "issue_type": "quality_anomaly", "title": "t", "severity": "P2",
                                      "raised_at": ago(hours=30), "owner_department_code": "QA",
                                      "status": "open"} for i in issues])
        conn.execute(insert(Delivery), [{
            "id": n, "key": f"{issue}|{step}|{channel}", "issue_id": issue, "step": step,
            "level": int(step[1]) if step.startswith("L") else 9, "channel_code": channel, "created_at": written,
            "deliver_after": due, "status": status, "attempts": attempts, "next_attempt_at": next_at,
            "sent_at": sent, "sent_in": sent_in, "last_error": error,
            "message": "{not json" if n == 12 else message(issue, TITLES.get(n, f"{issue} 质量异常"))}
            for n, written, issue, step, channel, status, attempts, due, next_at, sent, sent_in, error in ROWS])


@pytest.fixture
def outbox(db_url):
    seed(db_url)
    return db_url


def ids(listing: deliveries.Listing) -> list[int]:
    return [row.id for row in listing.rows]


# ---- the queries -------------------------------------------------------------------------

def test_the_newest_first_filtered_and_the_rows_past_the_limit_counted(outbox):
    with db.get_engine(outbox).connect() as conn:
        every = deliveries.latest(conn, T0)
        assert ids(every) == [10, 9, 8, 12, 7, 6, 5, 4, 3, 2, 1] and every.hidden == 0, "11 is not written yet"
        assert ids(deliveries.latest(conn, T0 + timedelta(minutes=5)))[0] == 11, "written at that instant"
        cut = deliveries.latest(conn, T0, limit=3)
        assert ids(cut) == [10, 9, 8] and cut.hidden == 8
        assert deliveries.latest(conn, T0, limit=11).hidden == 0
        assert ids(deliveries.latest(conn, T0, status="pending")) == [10, 9, 8]
        assert ids(deliveries.latest(conn, T0, channel="wecom-qa")) == [10, 8, 12, 2, 1]
        assert ids(deliveries.latest(conn, T0, issue_id="Q-2")) == [8, 12, 7, 2]
        both = deliveries.latest(conn, T0, status="sent", channel="wecom-qa", limit=2)
        assert ids(both) == [12, 2] and both.hidden == 1
        assert deliveries.latest(conn, T0, issue_id="Q-404").rows == ()
        with pytest.raises(ValueError, match="status 'lost'"):
            deliveries.latest(conn, T0, status="lost")


def test_each_row_says_what_happened_and_a_digest_counts_all_it_carried(outbox):
    with db.get_engine(outbox).connect() as conn:
        rows = {row.id: row for row in deliveries.latest(conn, T0).rows}
        # Shown alone, a digest's member still says how many the request carried.
        [alone] = deliveries.latest(conn, T0, issue_id="Q-5").rows
    assert (alone.sent_in, alone.carried, alone.in_digest) == (3, 4, True)
    assert all(rows[n].carried == 4 and rows[n].sent_at == ago(minutes=119) for n in (3, 4, 5, 6))
    assert (rows[2].carried, rows[2].in_digest, rows[2].title) == (1, False, HOSTILE)
    assert (rows[8].status, rows[8].attempts, rows[8].next_attempt_at, rows[8].last_error) == (
        "pending", 2, T0 + timedelta(seconds=30), "HTTP 500")
    assert (rows[8].carried, rows[8].sent_at, rows[8].sent_in) == (0, None, None)
    assert rows[7].last_error.startswith("19021") and rows[7].created_at == ago(minutes=90)
    assert (rows[12].step, rows[12].level, rows[12].title) == ("PP@1795579200", 9, None), "unreadable message"
    assert rows[9].title == "Q-7 质量异常" and rows[9].channel_code == "email-qa"


def test_the_last_days_counts_and_the_senders_lag_at_an_instant(outbox):
    with db.get_engine(outbox).connect() as conn:
        now = deliveries.summary(conn, T0)
        earlier = deliveries.summary(conn, ago(minutes=5))
        before = deliveries.summary(conn, ago(hours=4))
        assert deliveries.channels(conn, T0) == ("dingtalk-mnt", "email-qa", "feishu-plant", "wecom-qa")
        assert deliveries.channels(conn, ago(hours=4)) == ("wecom-qa",)
    # Written in the 24 h before T0: not the first, written exactly 24 h before.
    assert now.by_status == {"pending": 3, "sent": 6, "failed": 1}
    assert now.by_channel == {"dingtalk-mnt": {"pending": 0, "sent": 4, "failed": 0},
                              "email-qa": {"pending": 1, "sent": 0, "failed": 0},
                              "feishu-plant": {"pending": 0, "sent": 0, "failed": 1},
                              "wecom-qa": {"pending": 2, "sent": 2, "failed": 0}}
    # Due ten minutes ago and still retrying: that is the lag; the held one is not late.
    assert (now.oldest_pending, now.oldest_pending_id, now.held) == (timedelta(minutes=10), 8, 1)
    assert (earlier.oldest_pending, earlier.oldest_pending_id, earlier.held) == (timedelta(minutes=5), 8, 0)
    # Five minutes earlier, the first is inside the window and the last two not written yet.
    assert earlier.by_status == {"pending": 1, "sent": 7, "failed": 1}
    assert (before.oldest_pending, before.held) == (None, 0)
    assert before.by_status == {"pending": 0, "sent": 1, "failed": 0}


def test_an_empty_outbox(db_url):
    with db.get_engine(db_url).connect() as conn:
        summary = deliveries.summary(conn, T0)
        assert deliveries.latest(conn, T0) == deliveries.Listing(T0, (), 0)
        assert deliveries.channels(conn, T0) == ()
    assert summary.by_status == {"pending": 0, "sent": 0, "failed": 0} and summary.by_channel == {}
    assert (summary.oldest_pending, summary.held) == (None, 0)


# ---- the page ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wall(tmp_path_factory):
    """The app on a database of its own, holding the hand-written outbox."""
    from app import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.setenv("SECRET_KEY", "deliveries-test-key")
        patch.setenv("TRUSTED_NETWORKS", "")
        url = f"sqlite:///{tmp_path_factory.mktemp('app') / 'app.sqlite'}"
        db.upgrade_schema(db.get_engine(url))
        seed(url)
        yield create_app(url), url


@pytest.fixture(scope="module")
def page(wall):
    from dashboards import deliveries as module

    return module


def texts(component) -> list[str]:
    """Every text child of a rendered component, in order."""
    if isinstance(component, str):
        return [component]
    if isinstance(component, list):
        return [text for child in component for text in texts(child)]
    if isinstance(component, dict):
        return texts(component.get("props", {}).get("children"))
    return []


def cells(row: dict) -> dict[str, str]:
    """A rendered table row's cells by column, the texts of each joined by " · "."""
    from dashboards.deliveries import COLUMNS

    return dict(zip(COLUMNS, (" · ".join(texts(cell)) for cell in row["props"]["children"])))


def test_the_page_shows_the_counts_and_each_delivery_as_text(outbox, page):
    scope = {"lang": "en", "status": None, "channel": None, "issue": None}
    counts, note, rows, channels, sent = page.log_view(outbox, scope, {}, T0)
    assert texts(counts) == [
        "Last 24 h", "3", "Pending", "6", "Sent", "1", "Failed", "10 min 0 s", "oldest pending has waited",
        "1 more held until quiet hours end", "Read at 10:00:00",
        "dingtalk-mnt", "4 Sent", "email-qa", "1 Pending", "feishu-plant", "1 Failed",
        "wecom-qa", "2 Pending", "2 Sent"]
    lag = counts[0]["props"]["children"][4]
    assert lag["props"]["className"] == "deliveries-count lag lag-bad", "ten minutes behind"
    assert note is None
    assert [c["value"] for c in channels] == ["dingtalk-mnt", "email-qa", "feishu-plant", "wecom-qa"]
    shown = {cells(row)["issue"] + " " + cells(row)["step"]: (cells(row), row["props"]["className"])
             for row in rows}
    assert len(rows) == 11
    digest, kind = shown["Q-4 L1"]
    assert kind == "deliveries-row status-sent"
    assert digest["sent"] == "08:01:00 · in digest #3 (4)" and digest["status"] == "Sent"
    alone, _ = shown["Q-2 L0"]
    assert alone["sent"] == "07:00:00" and alone["title"] == HOSTILE
    retry, kind = shown["Q-2 L2"]
    assert kind == "deliveries-row status-pending"
    assert (retry["attempts"], retry["next_attempt"], retry["error"], retry["sent"]) == (
        "2", "10:00:30", "HTTP 500", "")
    failed, kind = shown["Q-2 L1"]
    assert kind == "deliveries-row status-failed" and failed["status"] == "Failed" and failed["next_attempt"] == ""
    assert shown["Q-1 L0"][0]["created_at"] == "2026-11-19 10:00", "another day: its date too"
    assert shown["Q-2 Ping-pong"][0]["title"] == "(message unreadable)"
    # Markup in a title is a text child: never markup, never a property.
    assert "dangerously" not in json.dumps(rows)
    link = rows[0]["props"]["children"][1]["props"]["children"]
    assert link["props"]["href"] == "/issue/Q-8?lang=en"
    # Read again a second later: nothing changed but the time read.
    counts, note, again, channels, sent = page.log_view(outbox, scope, sent, T0 + timedelta(seconds=1))
    assert again is no_update and note is no_update and channels is no_update
    assert "Read at 10:00:01" in texts(counts.to_plotly_json()["operations"][0]["params"]["value"])


def test_the_page_filters_and_says_what_the_limit_leaves_out(outbox, page, monkeypatch):
    scope = {"lang": "zh", "status": "sent", "channel": "dingtalk-mnt", "issue": None}
    _, note, rows, _, _ = page.log_view(outbox, scope, {}, T0)
    assert [cells(row)["issue"] for row in rows] == ["Q-6", "Q-5", "Q-4", "Q-3"]
    assert cells(rows[0])["sent"] == "08:01:00 · 合并于 #3（共 4 条）"
    monkeypatch.setattr(deliveries, "LIMIT", 2)
    _, note, rows, _, _ = page.log_view(outbox, scope, {}, T0)
    assert len(rows) == 2 and note == "另有 2 条符合条件的记录未列出：只列出最新的 2 条"
    _, note, rows, _, _ = page.log_view(outbox, {"lang": "en", "issue": "Q-404"}, {}, T0)
    assert rows == [] and note == "No delivery matches the filter"
    # An unknown status in the address is no filter.
    _, note, rows, _, _ = page.log_view(outbox, {"lang": "en", "status": "<b>"}, {}, T0)
    assert len(rows) == 2 and note.startswith("9 more")


def test_a_filter_goes_to_the_address_that_names_it(page):
    scope = {"lang": "en", "status": None, "channel": None, "issue": None}
    assert page.navigate("failed", None, "", scope) == "?lang=en&status=failed"
    assert page.navigate(None, "wecom-qa", " Q-7 &x=1 ", scope) == "?lang=en&channel=wecom-qa&issue=Q-7+%26x%3D1"
    assert page.navigate(None, None, "", scope) is no_update, "nothing changed"


def test_an_empty_a_silent_and_a_viewed_database(db_url, tmp_path, page):
    counts, note, rows, _, _ = page.log_view(db_url, {"lang": "en"}, {}, T0)
    assert rows == [] and note.startswith("No delivery yet")
    assert texts(counts)[:8] == ["Last 24 h", "0", "Pending", "0", "Sent", "0", "Failed", "none"]
    silent = "postgresql+psycopg://postgres@127.0.0.1:1/floorlink"        # nothing listens there
    counts, note, rows, _, sent = page.log_view(silent, {"lang": "zh"}, {"rows": ["kept"]}, T0)
    assert note == "数据库无法连接：显示的是最后读取到的投递记录"
    assert counts is no_update and rows is no_update and sent["rows"] == ["kept"]
    views = f"sqlite:///{tmp_path / 'views.sqlite'}"
    with db.get_engine(views).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE issues (id TEXT)")
    _, note, rows, _, _ = page.log_view(views, {"lang": "en"}, {}, T0)
    assert "keeps no outbox" in note and rows == []


# ---- through the doors -------------------------------------------------------------------

def refresh_body(client) -> dict:
    """The page's refresh as dash-renderer sends it, unfiltered, in English."""
    callback = next(c for c in client.get("/_dash-dependencies").get_json()
                    if "deliveries-sent.data" in c["output"])
    spec = callback["output"]
    outputs = [dict(zip(("id", "property"), part.split("@")[0].split("."))) for part in spec[2:-2].split("...")]
    state = [{**s, "value": v} for s, v in zip(callback["state"], [{"lang": "en"}, {}])]
    return {"output": spec, "outputs": outputs, "inputs": [{**callback["inputs"][0], "value": 1}],
            "state": state, "changedPropIds": ["deliveries-refresh.n_intervals"]}


def sign_in(client, name: str) -> None:
    token = re.search(r"name='csrf' value='([^']+)'", client.get("/signin").get_data(as_text=True)).group(1)
    answer = client.post("/signin?next=/", data={"name": name, "password": PASSWORD, "csrf": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)


def test_only_an_admin_opens_the_page_and_its_callback(wall):
    from data import timezones
    from data.auth import users

    app, url = wall
    client = app.server.test_client()
    body = refresh_body(client)
    # Sign-in off: refused, as every admin door is.
    assert client.get("/deliveries").status_code == 403
    assert client.post("/_dash-update-component", json=body).status_code == 403

    now = timezones.utc_now()
    users.create(db.get_engine(url), "wang.wu", "admin", PASSWORD, now)
    users.create(db.get_engine(url), "zhao.liu", "viewer", PASSWORD, now)
    viewer = app.server.test_client()
    sign_in(viewer, "zhao.liu")
    assert viewer.get("/").status_code == 200
    assert viewer.get("/deliveries").status_code == 403
    assert viewer.post("/_dash-update-component", json=body).status_code == 403

    admin = app.server.test_client()
    sign_in(admin, "wang.wu")
    assert admin.get("/deliveries?lang=en&status=sent").status_code == 200
    answer = admin.post("/_dash-update-component", json=body)
    assert answer.status_code == 200
    response = answer.get_json()["response"]
    rows = response["deliveries-rows"]["children"]
    assert len(rows) == 12, "every delivery written by now, 11 included"
    assert texts(response["deliveries-counts"]["children"])[0] == "Last 24 h"
    assert [c["value"] for c in response["deliveries-channel"]["options"]] == [
        "dingtalk-mnt", "email-qa", "feishu-plant", "wecom-qa"]
