"""Acknowledgement links (data/notify/links.py) and the phone page they open (dashboards/ack.py),
on SQLite and PostgreSQL: a token reads back as it was made and no other; an expired or forged
one is refused and writes nothing; a link acts once, also under two taps at the same moment;
each action is its issue event with its actor and writer; a page whose issue moved on writes
nothing and says what happened; text from data and from the form is shown as text."""
from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from markupsafe import escape
from sqlalchemy import func, select

import floor_plant
import hostile
from data import db, floor, store, timezones
from data.auth import users
from data.models import AckLinkUse, Issue, IssueEvent
from data.notify import links

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "ack-link-tests")
    monkeypatch.setenv("PUBLIC_URL", "https://floorlink.plant.example/")


@pytest.fixture
def plant(db_url):
    floor_plant.build(db_url)
    floor_plant.raise_one(db_url, "EQ-1")
    return db_url


@pytest.fixture
def client(plant):
    from app import create_app

    return create_app(plant).server.test_client()


def link(issue_id: str = "EQ-1", hours: float = 1, step: str = "L1", channel: str = "wecom-mnt") -> str:
    return links.make_token(issue_id, step, channel, timezones.utc_now() + timedelta(hours=hours))


def fields(page: str) -> dict[str, str]:
    """The hidden fields of the page's form."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))


def open_and_send(client, token: str, lang: str = "zh", **form) -> tuple[str, object]:
    page = client.get(f"/ack/{token}?lang={lang}").get_data(as_text=True)
    answer = client.post(f"/ack/{token}?lang={lang}", data={**fields(page), **form})
    return page, answer


def events(url: str, issue_id: str = "EQ-1") -> list[tuple]:
    with db.get_engine(url).connect() as conn:
        return [tuple(row) for row in conn.execute(
            select(IssueEvent.kind, IssueEvent.actor, IssueEvent.source, IssueEvent.note,
                   IssueEvent.department_code)
            .where(IssueEvent.issue_id == issue_id).order_by(IssueEvent.at, IssueEvent.id))]


def issue_row(url: str, issue_id: str = "EQ-1"):
    with db.get_engine(url).connect() as conn:
        return conn.execute(select(Issue).where(Issue.id == issue_id)).one()


def uses(url: str) -> int:
    with db.get_engine(url).connect() as conn:
        return conn.execute(select(func.count()).select_from(AckLinkUse)).scalar()


# ---- tokens ---------------------------------------------------------------------------------

def test_a_token_reads_back_as_it_was_made_and_its_url_is_public(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "ack-link-tests")
    token = links.make_token("Q/7 <x>&问题", "L3#2", "feishu-qa", T0 + timedelta(hours=24))
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    claim = links.read_token(token, T0)
    assert (claim.issue_id, claim.step, claim.channel_code, claim.expires_at) == \
        ("Q/7 <x>&问题", "L3#2", "feishu-qa", T0 + timedelta(hours=24))
    assert re.fullmatch(r"[0-9a-f]{16}", claim.nonce)
    assert links.read_token(links.make_token("Q", "L1", "c", T0 + timedelta(hours=1)), T0).nonce != claim.nonce
    assert links.link_url(token) == f"https://floorlink.plant.example/ack/{token}"
    assert links.default_expiry(T0) == T0 + timedelta(hours=24)


def test_a_forged_or_altered_token_is_refused(monkeypatch):
    token = links.make_token("EQ-1", "L1", "wecom-mnt", T0 + timedelta(hours=1))
    payload, signature = token.split(".")
    other_issue = links.make_token("EQ-2", "L1", "wecom-mnt", T0 + timedelta(hours=1)).split(".")[0]
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    for forged in (f"{other_issue}.{signature}", f"{flipped}.{signature}", f"{payload}.{signature[:-1]}",
                   payload, f"{payload}.", f".{signature}", "x.y", "", f"{payload}.{signature}.x",
                   f"{payload}=.{signature}", "%%.%%"):
        with pytest.raises(links.LinkInvalid):
            links.read_token(forged, T0)
    monkeypatch.setenv("SECRET_KEY", "another key")
    with pytest.raises(links.LinkInvalid):
        links.read_token(token, T0)


def test_an_expired_token_is_refused_with_its_claim():
    token = links.make_token("EQ-1", "L2", "wecom-mnt", T0 + timedelta(hours=1))
    assert links.read_token(token, T0 + timedelta(minutes=59, seconds=59)).issue_id == "EQ-1"
    with pytest.raises(links.LinkExpired) as refused:
        links.read_token(token, T0 + timedelta(hours=1))
    assert refused.value.claim.issue_id == "EQ-1" and refused.value.claim.step == "L2"


# ---- the phone page ---------------------------------------------------------------------------

def test_the_page_shows_the_issue_in_either_language_with_a_form_that_only_a_post_sends(client, plant):
    token = link()
    page = client.get(f"/ack/{token}").get_data(as_text=True)
    assert '<html lang="zh">' in page and "问题 EQ-1" in page and "设备故障" in page
    assert "L1 工位 1 上料" in page and "设备维修部" in page and "待响应" in page
    assert "已超时" in page and "响应时限 10分" in page and "发往 wecom-mnt 的 L1 级通知" in page
    assert "张三" in page and "李四" in page and "王芳" not in page     # the owner's people
    assert f'href="/ack/{token}?lang=en"' in page
    english = client.get(f"/ack/{token}?lang=en").get_data(as_text=True)
    assert "Issue EQ-1" in english and "Equipment failure" in english and "overdue" in english
    assert fields(page)["form"] == links.form_value(token)
    # A GET acts on nothing, whatever it carries; a POST without the page's value neither.
    client.get(f"/ack/{token}?action=acknowledged&who=MNT-01&form={fields(page)['form']}")
    refused = client.post(f"/ack/{token}", data={"action": "acknowledged", "who": "MNT-01",
                                                  "shown": fields(page)["shown"]})
    assert refused.status_code == 400 and "表单与链接不符" in refused.get_data(as_text=True)
    assert [e[0] for e in events(plant)] == ["raised"] and uses(plant) == 0


def test_acknowledging_writes_its_event_with_the_actor_picked_and_the_channel_as_writer(client, plant):
    _, answer = open_and_send(client, link(), action="acknowledged", who="MNT-01", note="马上到")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "已记录" in page
    assert "已由 张三 于" in page and "确认" in page and "张三 于" in page and "马上到" in page
    assert events(plant)[1:] == [("commented", "MNT-01", "link:wecom-mnt", "马上到", "MNT"),
                                 ("acknowledged", "MNT-01", "link:wecom-mnt", None, "MNT")]
    row = issue_row(plant)
    assert row.status == "acknowledged" and row.acknowledged_at is not None
    assert uses(plant) == 1


def test_reassigning_and_resolving_write_theirs(client, plant):
    floor_plant.raise_one(plant, "EQ-2")
    token = link()
    _, answer = open_and_send(client, token, action="reassigned", who="MNT-02", to="PRD")
    assert answer.status_code == 200 and "已由 李四 于" in answer.get_data(as_text=True)
    assert "转派给 生产部" in answer.get_data(as_text=True)
    later = client.get(f"/ack/{token}").get_data(as_text=True)
    assert "此链接已使用过" in later and "转派给 生产部" in later
    assert events(plant)[-1] == ("reassigned", "MNT-02", "link:wecom-mnt", None, "PRD")
    assert issue_row(plant).owner_department_code == "PRD"

    _, answer = open_and_send(client, link("EQ-2"), lang="en", action="resolved", who="MNT-01",
                              cause="encoder cable loose")
    assert answer.status_code == 200 and "Resolved by 张三 at" in answer.get_data(as_text=True)
    assert events(plant, "EQ-2")[1:] == [("acknowledged", "MNT-01", "link:wecom-mnt", None, "MNT"),
                                         ("resolved", "MNT-01", "link:wecom-mnt", "encoder cable loose", "MNT")]
    assert issue_row(plant, "EQ-2").cause == "encoder cable loose"


def test_a_form_missing_what_its_action_needs_writes_nothing(client, plant):
    for form, said in (({"action": "acknowledged"}, "请说明你是谁"),
                       ({"action": "acknowledged", "who": "PRD-01"}, "请说明你是谁"),     # not of MNT
                       ({"action": "reassigned", "who": "MNT-01", "to": "MNT"}, "转派需要选择另一个部门"),
                       ({"action": "resolved", "who": "MNT-01", "cause": "  "}, "解决需要填写原因"),
                       ({"action": "closed", "who": "MNT-01"}, "请选择确认、转派或解决"),
                       ({"action": "acknowledged", "who": "MNT-01", "note": "长" * 2001}, "备注最多 2000 个字")):
        _, answer = open_and_send(client, link(), **form)
        assert answer.status_code == 400 and said in answer.get_data(as_text=True), form
    assert [e[0] for e in events(plant)] == ["raised"] and uses(plant) == 0


def test_a_department_without_people_types_its_name(client, plant):
    floor_plant.raise_one(plant, "QA-1", issue_type="quality_anomaly")
    token = link("QA-1", channel="mail-qa")
    page = client.get(f"/ack/{token}").get_data(as_text=True)
    assert '<input name="who"' in page and "<select name=\"who\"" not in page
    _, answer = open_and_send(client, token, action="acknowledged", who="  检验员 小周 ")
    assert answer.status_code == 200
    assert events(plant, "QA-1")[-1] == ("acknowledged", "检验员 小周", "link:mail-qa", None, "QA")


def test_a_person_signed_in_acts_under_their_name(client, plant, monkeypatch):
    monkeypatch.setattr(users, "_known", {})      # sign-in as this database has it now
    users.create(db.get_engine(plant), "li.na", "viewer", PASSWORD, timezones.utc_now())
    anonymous = client.get(f"/ack/{link()}")      # sign-in on: the link still opens without it
    assert anonymous.status_code == 200 and '<select name="who"' in anonymous.get_data(as_text=True)
    signin = client.get("/signin").get_data(as_text=True)
    csrf = re.search(r"name='csrf' value='([^']+)'", signin).group(1)
    client.post("/signin", data={"name": "li.na", "password": PASSWORD, "csrf": csrf})
    page, answer = open_and_send(client, link(), action="acknowledged")
    assert "已登录" in page and "li.na" in page and 'name="who"' not in page
    assert answer.status_code == 200
    assert events(plant)[-1] == ("acknowledged", "li.na", "user:li.na", None, "MNT")


def test_a_used_link_says_what_it_did_and_writes_nothing_more(client, plant):
    token = link()
    page, first = open_and_send(client, token, action="acknowledged", who="MNT-02")
    assert first.status_code == 200
    again = client.post(f"/ack/{token}", data={**fields(page), "action": "resolved", "who": "MNT-01",
                                               "cause": "x"})
    text = again.get_data(as_text=True)
    assert again.status_code == 409 and "此链接已使用过" in text and "已由 李四 于" in text
    opened = client.get(f"/ack/{token}?lang=en").get_data(as_text=True)
    assert "This link has been used" in opened and "Acknowledged by 李四 at" in opened
    assert 'name="action"' not in opened
    assert [e[0] for e in events(plant)] == ["raised", "acknowledged"] and uses(plant) == 1


@pytest.mark.parametrize("status, token_of", [
    (410, lambda: links.make_token("EQ-1", "L1", "wecom-mnt", timezones.utc_now() - timedelta(seconds=1))),
    (403, lambda: link()[:-3] + "AAA"),
    (403, lambda: "not-a-link"),
])
def test_an_expired_or_forged_link_is_refused_in_both_languages_and_writes_nothing(client, plant, status, token_of):
    token = token_of()
    for method in (client.get, client.post):
        answer = method(f"/ack/{token}?lang=en", data={"action": "acknowledged", "who": "MNT-01",
                                                       "form": links.form_value(token)})
        text = answer.get_data(as_text=True)
        assert answer.status_code == status
        if status == 410:
            assert "此链接已于" in text and "过期" in text and "This link expired at" in text
        else:
            assert "此链接无效" in text and "This link is not valid" in text
        assert "EQ-1" not in text and 'name="action"' not in text
    assert [e[0] for e in events(plant)] == ["raised"] and uses(plant) == 0


def test_a_page_whose_issue_was_resolved_meanwhile_writes_nothing_and_says_so(client, plant):
    token = link()
    page = client.get(f"/ack/{token}").get_data(as_text=True)
    with db.session_scope(db.get_engine(plant)) as session:
        store.record_as(session, store.SIMULATOR)
        store.resolve(session, "EQ-1", timezones.utc_now(), "MNT-02", "reset the drive")
    answer = client.post(f"/ack/{token}", data={**fields(page), "action": "acknowledged", "who": "MNT-01"})
    text = answer.get_data(as_text=True)
    assert answer.status_code == 409 and "此问题已有变化，未写入任何内容" in text
    assert "已由 李四 于" in text and "解决" in text and 'name="action"' not in text
    assert [e[0] for e in events(plant)] == ["raised", "acknowledged", "resolved"] and uses(plant) == 0
    later = client.get(f"/ack/{token}").get_data(as_text=True)
    assert "此问题已无需处理" in later and "已由 李四 于" in later and 'name="action"' not in later
    # Sent anyway, as the issue is now: not allowed any more.
    crafted = client.post(f"/ack/{token}", data={"form": links.form_value(token), "action": "acknowledged",
                                                 "who": "MNT-01", "shown": floor.card(plant, "EQ-1").version})
    text = crafted.get_data(as_text=True)
    assert crafted.status_code == 409 and "此问题已不能这样处理" in text and "已由 李四 于" in text
    assert len(events(plant)) == 3 and uses(plant) == 0


def test_a_page_whose_issue_moved_on_but_still_allows_the_action_offers_it_again(client, plant):
    token = link()
    page = client.get(f"/ack/{token}").get_data(as_text=True)
    with db.session_scope(db.get_engine(plant)) as session:
        store.record_as(session, "notify:ladder")
        store.escalate(session, "EQ-1", timezones.utc_now(), None, "L1")
    answer = client.post(f"/ack/{token}", data={**fields(page), "action": "acknowledged", "who": "MNT-01"})
    text = answer.get_data(as_text=True)
    assert answer.status_code == 409 and "已于" in text and "升级" in text and "请查看后重新提交" in text
    assert [e[0] for e in events(plant)] == ["raised", "escalated"] and uses(plant) == 0
    assert fields(text)["shown"] != fields(page)["shown"]
    again = client.post(f"/ack/{token}", data={**fields(text), "action": "acknowledged", "who": "MNT-01"})
    assert again.status_code == 200 and events(plant)[-1][0] == "acknowledged"


def test_two_taps_at_once_write_one_event(plant):
    """Both taps of one link at the same moment, through the whole action: one writes, the
    other finds its use."""
    claim = links.read_token(link(), timezones.utc_now())
    version = floor.card(plant, "EQ-1").version
    start, results = threading.Barrier(2), []

    def tap(who: str) -> None:
        start.wait()
        results.append(links.act(plant, claim, "acknowledged", shown_version=version, signed_in_as=None,
                                 actor=who, actor_shown=who, at=timezones.utc_now()))

    taps = [threading.Thread(target=tap, args=(who,)) for who in ("MNT-01", "MNT-02")]
    for thread in taps:
        thread.start()
    for thread in taps:
        thread.join(30)
    assert sorted(type(r).__name__ for r in results) == ["Outcome", "Spent"], results
    assert [r.done for r in results if isinstance(r, floor.Outcome)] == [True]
    assert [e[0] for e in events(plant)] == ["raised", "acknowledged"] and uses(plant) == 1


def test_a_use_committed_while_the_second_waits_is_found_not_written_twice(plant):
    """The link's one row, without the issue held: the second tap's insert waits for the
    first's transaction and, once it commits, loses cleanly (its savepoint rolled back)."""
    claim = links.read_token(link(), timezones.utc_now())
    first_used, commit = threading.Event(), threading.Event()
    results = {}

    def first() -> None:
        with floor.writing(plant) as session:
            results["first"] = links.use(session, claim, "acknowledged", "张三", timezones.utc_now())
            first_used.set()
            commit.wait(10)

    def second() -> None:
        first_used.wait(10)
        with floor.writing(plant) as session:
            row, fresh = links.use(session, claim, "resolved", "李四", timezones.utc_now())
            results["second"] = (row.action, row.actor, fresh)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)     # the second is now waiting on the first
    commit.set()
    for thread in threads:
        thread.join(30)
    assert results["first"][1] is True
    assert results["second"] == ("acknowledged", "张三", False)
    assert uses(plant) == 1


def test_hostile_text_in_titles_and_notes_is_shown_as_text(client, plant):
    for n, (name, text) in enumerate(hostile.TEXTS.items()):
        issue_id = f"H-{n}"
        floor_plant.raise_one(plant, issue_id, title=text)
        token = link(issue_id)
        page = client.get(f"/ack/{token}").get_data(as_text=True)
        assert str(escape(text)) in page, name
        note = f"{text}\x00"
        answer = client.post(f"/ack/{token}", data={**fields(page), "action": "acknowledged",
                                                    "who": "MNT-01", "note": note})
        shown = answer.get_data(as_text=True)
        assert answer.status_code == 200, name
        stored = events(plant, issue_id)[1]
        assert stored[0] == "commented" and stored[3] == f"{text}\ufffd".strip(), name
        if "<" in text:
            assert text not in page and text not in shown, name
        assert str(escape(stored[3])) in shown, name
