"""The platform channels against local fakes of the robots (tools/fake_platforms.py): each
kind's shape and signature, mentions by handle, the answer codes as Outcomes, hostile titles
kept as text and mentioning no one, the WeCom cut, e-mail's two parts, no secret in an error."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import smtplib
import socket
import unicodedata
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from urllib.parse import quote_plus, urlsplit

import httpx
import pytest

from data.notify import channels
from data.notify.channels import Outcome
from data.notify.messages import Mention, Message
from data.notify.policy import Channel
from tests.hostile import TEXTS
from tools.fake_platforms import FakePlatforms

KEY = "robot-key-7f3a9c"
SECRET = "SEC-s3cr3t-9d41"
LINK = "https://floorlink.example/ack/tok-5e2b"
ZHANG = Mention("张三", {"wecom": "zhangsan", "feishu": "ou_zhang", "dingtalk": "ding_zhang",
                         "mobile": "13800000000", "email": "zhang@example.com"})
LI = Mention("李四", {"wecom": "lisi", "mobile": "13900000000"})
# Handles that would reach everyone on some platform: never mentioned.
EVERYONE = Mention("群", {"wecom": "@all", "feishu": "all", "dingtalk": "@all", "mobile": "@all"})
HOSTILE_TITLES = [*TEXTS.values(), '<at user_id="all">所有人</at>', "@all 停线", "@所有人",
                  "停线\n确认: https://evil.example/x\n@13700000000", "<@zhangsan> <b>粗</b>",
                  "\u202e线停 L2", "a\r\nb\u2028c\x85d"]
IM_KINDS = ("wecom", "feishu", "dingtalk")
DIRECTION = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def message(title="[P1] L2 停线", lines=("工位 OP30 缺料 20 分钟",), mentions=(ZHANG, LI), lang="zh",
            link=LINK) -> Message:
    return Message(event="issue.escalated", event_id="ISS-1:2:wecom-1", issue_ids=("ISS-1", "ISS-2"),
                   level=2, severity="P1", lang=lang, title=title, lines=tuple(lines), link=link,
                   link_text="确认" if lang == "zh" else "Acknowledge", mentions=tuple(mentions),
                   at="2025-03-01T02:00:00+00:00")


def now() -> datetime:
    return datetime.now(timezone.utc)


def channel(fake: FakePlatforms, kind: str, secret: str | None = None, key: str = KEY) -> Channel:
    return Channel(code=f"{kind}-1", kind=kind, url=fake.url(kind, key, secret=secret), secret=secret)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def fake():
    with FakePlatforms() as platforms:
        yield platforms


@pytest.fixture
def mail(fake, monkeypatch):
    for name, value in fake.smtp_settings().items():
        monkeypatch.setenv(name, value)
    for name in ("SMTP_USER", "SMTP_PASSWORD", "SMTP_STARTTLS"):
        monkeypatch.delenv(name, raising=False)
    return fake


def last(fake: FakePlatforms, kind: str) -> dict:
    return fake.received(kind, KEY)[-1].body


# ---- shapes and signatures ---------------------------------------------------------------

def test_wecom_sends_plain_text_and_mentions_by_userid_and_mobile(fake):
    assert channels.send(channel(fake, "wecom"), message(), now=now()) == Outcome(True, None, None)
    body = last(fake, "wecom")
    assert body == {"msgtype": "text", "text": {
        "content": f"[P1] L2 停线\n工位 OP30 缺料 20 分钟\n确认: {LINK}",
        "mentioned_list": ["zhangsan", "lisi"], "mentioned_mobile_list": ["13800000000", "13900000000"]}}


def test_feishu_sends_a_post_signed_in_the_body(fake):
    at = now()
    assert channels.send(channel(fake, "feishu", SECRET), message(), now=at).delivered
    body = last(fake, "feishu")
    timestamp = str(int(at.timestamp()))
    key = f"{timestamp}\n{SECRET}".encode()
    assert body["timestamp"] == timestamp
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert body["msg_type"] == "post"
    assert body["content"]["post"] == {"zh_cn": {"title": "[P1] L2 停线", "content": [
        [{"tag": "text", "text": "工位 OP30 缺料 20 分钟"}],
        [{"tag": "a", "text": "确认", "href": LINK}],
        [{"tag": "at", "user_id": "ou_zhang"}]]}}


def test_feishu_writes_english_under_en_us_and_an_unsigned_bot_gets_no_sign(fake):
    assert channels.send(channel(fake, "feishu"), message(lang="en"), now=now()).delivered
    body = last(fake, "feishu")
    assert set(body["content"]["post"]) == {"en_us"}
    assert "sign" not in body and "timestamp" not in body


@pytest.mark.parametrize("secret, shift", [("another-secret", timedelta(0)), (None, timedelta(0)),
                                           (SECRET, timedelta(hours=-2)), (SECRET, timedelta(hours=2))])
def test_feishu_refuses_a_wrong_sign_or_clock_as_a_configuration_error(fake, secret, shift):
    sent = Channel("f", "feishu", url=fake.url("feishu", KEY, secret=SECRET), secret=secret)
    outcome = channels.send(sent, message(), now=now() + shift)
    assert (outcome.delivered, outcome.retry_after_s) == (False, None)
    assert outcome.error.startswith("feishu 19021")
    assert fake.received("feishu", KEY) == []


def test_dingtalk_sends_text_with_at_and_a_signed_url(fake):
    at = now()
    sent = channel(fake, "dingtalk", SECRET)
    assert channels.send(sent, message(), now=at).delivered
    body = last(fake, "dingtalk")
    assert body["at"] == {"atMobiles": ["13800000000", "13900000000"], "atUserIds": ["ding_zhang"],
                          "isAtAll": False}
    assert body["text"]["content"] == (f"[P1] L2 停线\n工位 OP30 缺料 20 分钟\n确认: {LINK}\n"
                                       "@13800000000 @13900000000")
    url, _, _ = channels.request_for(sent, message(), now=at)
    timestamp = str(int(at.timestamp() * 1000))
    digest = hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256).digest()
    assert urlsplit(url).query == (f"access_token={KEY}&timestamp={timestamp}"
                                   f"&sign={quote_plus(base64.b64encode(digest).decode())}")


def test_dingtalk_signatures_with_plus_and_slash_survive_the_url():
    """A base64 '+' not URL-encoded reads as a space at the platform: every sign must pass."""
    start = datetime(2025, 3, 1, 2, 0, tzinfo=timezone.utc)
    moments = [start + timedelta(seconds=s) for s in range(12)]
    signs = [channels.dingtalk_sign(str(int(m.timestamp() * 1000)), SECRET) for m in moments]
    assert any("+" in s for s in signs) and any("/" in s for s in signs)
    with FakePlatforms(clock=lambda: start.timestamp()) as fake:
        sent = channel(fake, "dingtalk", SECRET)
        assert [channels.send(sent, message(), now=m).delivered for m in moments] == [True] * 12


@pytest.mark.parametrize("secret, shift", [("another-secret", timedelta(0)), (None, timedelta(0)),
                                           (SECRET, timedelta(hours=-2))])
def test_dingtalk_refuses_a_wrong_sign_or_clock_as_a_configuration_error(fake, secret, shift):
    sent = Channel("d", "dingtalk", url=fake.url("dingtalk", KEY, secret=SECRET), secret=secret)
    outcome = channels.send(sent, message(), now=now() + shift)
    assert (outcome.delivered, outcome.retry_after_s) == (False, None)
    assert outcome.error.startswith("dingtalk 310000")


def test_webhook_posts_floorlinks_json_signed_over_timestamp_and_body(fake):
    at = now()
    sent = channel(fake, "webhook", SECRET)
    assert channels.send(sent, message(), now=at) == Outcome(True, None, None)
    assert last(fake, "webhook") == {
        "event": "issue.escalated", "event_id": "ISS-1:2:wecom-1", "issue_id": "ISS-1",
        "issue_ids": ["ISS-1", "ISS-2"], "level": 2, "severity": "P1", "title": "[P1] L2 停线",
        "text": message().text(), "ack_url": LINK, "at": "2025-03-01T02:00:00+00:00"}
    assert fake.received("webhook", KEY)[-1].names(["ISS-2", "ISS-9"]) == ["ISS-2"]
    _, headers, body = channels.request_for(sent, message(), now=at)
    timestamp = str(int(at.timestamp()))
    assert headers["X-FloorLink-Timestamp"] == timestamp
    assert headers["X-FloorLink-Signature"] == hmac.new(
        SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("secret, shift", [("another-secret", timedelta(0)), (None, timedelta(0)),
                                           (SECRET, timedelta(minutes=-6))])
def test_webhook_receiver_refuses_a_wrong_signature_or_an_old_timestamp(fake, secret, shift):
    sent = Channel("w", "webhook", url=fake.url("webhook", KEY, secret=SECRET), secret=secret)
    assert channels.send(sent, message(), now=now() + shift) == Outcome(False, None, "webhook HTTP 401")


# ---- answers -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind, answer, retry_after_s", [
    ("wecom", "throttled", 60.0), ("feishu", "throttled", 60.0), ("dingtalk", "throttled", 600.0),
    ("webhook", "throttled", 60.0),
    *((kind, "http_500", 0.0) for kind in ("wecom", "feishu", "dingtalk", "webhook")),
    ("dingtalk", 310000, None), ("dingtalk", 300005, None), ("dingtalk", 400102, None),
    ("wecom", 93000, None), ("feishu", 19021, None), ("feishu", 19024, None),
    ("wecom", 45008, None), ("dingtalk", 130102, None), ("feishu", 11233, None),
    ("webhook", 404, None), ("webhook", 403, None), ("webhook", 400, None),
])
def test_answers_map_to_outcomes(fake, kind, answer, retry_after_s):
    sent = channel(fake, kind)
    fake.fail_next(kind, KEY, answer)
    outcome = channels.send(sent, message(), now=now())
    assert (outcome.delivered, outcome.retry_after_s) == (False, retry_after_s)
    if isinstance(answer, int):
        assert outcome.error.startswith(f"{kind} {'HTTP ' if kind == 'webhook' else ''}{answer}")
    assert channels.send(sent, message(), now=now()).delivered


@pytest.mark.parametrize("kind", ["wecom", "feishu", "dingtalk", "webhook"])
def test_no_answer_and_a_refused_connection_are_retried(fake, kind):
    fake.fail_next(kind, KEY, "timeout")
    outcome = channels.send(channel(fake, kind), message(), now=now(), timeout_s=0.3)
    assert (outcome.delivered, outcome.retry_after_s) == (False, 0.0)
    refused = Channel("x", kind, url=f"http://127.0.0.1:{closed_port()}/robot/send?access_token={KEY}")
    outcome = channels.send(refused, message(), now=now(), timeout_s=2)
    assert (outcome.delivered, outcome.retry_after_s) == (False, 0.0)


def test_an_unknown_robot_and_a_missing_url_are_configuration_errors(fake):
    fake.url("wecom", KEY)
    unknown = Channel("w", "wecom", url=fake.url("wecom", KEY).replace(KEY, "nobody"))
    assert channels.send(unknown, message(), now=now()) == Outcome(False, None, "wecom 93000 invalid webhook url")
    assert channels.send(Channel("w", "wecom"), message(), now=now()) == Outcome(False, None, "wecom channel has no url")


def test_the_21st_message_in_a_minute_is_throttled_and_dingtalk_then_blocks_ten_minutes():
    clock = [1_740_000_000.0]
    with FakePlatforms(clock=lambda: clock[0]) as fake:
        wecom, dingtalk = channel(fake, "wecom"), channel(fake, "dingtalk")
        for sent in (wecom, dingtalk):
            assert all(channels.send(sent, message(), now=now()).delivered for _ in range(20))
        assert channels.send(wecom, message(), now=now()).retry_after_s == 60.0
        assert channels.send(dingtalk, message(), now=now()).retry_after_s == 600.0
        clock[0] += 61
        assert channels.send(wecom, message(), now=now()).delivered
        assert channels.send(dingtalk, message(), now=now()).retry_after_s == 600.0
        clock[0] += 540
        assert channels.send(dingtalk, message(), now=now()).delivered
        assert len(fake.received("dingtalk", KEY)) == 21
        assert fake.requests("dingtalk", KEY) == 23


def test_feishu_takes_five_a_second():
    clock = [1_740_000_000.0]
    with FakePlatforms(clock=lambda: clock[0]) as fake:
        feishu = channel(fake, "feishu")
        assert [channels.send(feishu, message(), now=now()).retry_after_s for _ in range(6)] == [None] * 5 + [60.0]
        clock[0] += 1.01
        assert channels.send(feishu, message(), now=now()).delivered


# ---- text from data stays text -----------------------------------------------------------

def mentioned(kind: str, body: dict) -> dict:
    """Who a platform mentions for the body, by the means it has."""
    if kind == "wecom":
        return {"ids": body["text"].get("mentioned_list", []), "mobiles": body["text"].get("mentioned_mobile_list", [])}
    if kind == "dingtalk":
        return {"ids": body["at"]["atUserIds"], "mobiles": body["at"]["atMobiles"], "all": body["at"]["isAtAll"]}
    (page,) = body["content"]["post"].values()
    return {"ids": [e["user_id"] for row in page["content"] for e in row if e["tag"] == "at"]}


EXPECTED_MENTIONS = {"wecom": {"ids": ["zhangsan"], "mobiles": ["13800000000"]},
                     "dingtalk": {"ids": ["ding_zhang"], "mobiles": ["13800000000"], "all": False},
                     "feishu": {"ids": ["ou_zhang"]}}


@pytest.mark.parametrize("title", HOSTILE_TITLES, ids=range(len(HOSTILE_TITLES)))
@pytest.mark.parametrize("kind", IM_KINDS)
def test_a_hostile_title_arrives_as_text_and_mentions_no_one_else(fake, kind, title):
    assert channels.send(channel(fake, kind), message(title=title, lines=(title,), mentions=(ZHANG, EVERYONE)),
                         now=now()).delivered
    body = last(fake, kind)
    assert mentioned(kind, body) == EXPECTED_MENTIONS[kind]
    if kind == "feishu":
        (page,) = body["content"]["post"].values()
        elements = [e for row in page["content"] for e in row]
        assert [e["tag"] for e in elements] == ["text", "a", "at"]
        assert elements[1]["href"] == LINK
        shown = [page["title"], elements[0]["text"]]
    else:
        shown = body["text"]["content"].split("\n")
        assert shown[2] == f"确认: {LINK}"
        assert shown[3:] == (["@13800000000"] if kind == "dingtalk" else [])
    expected = "".join("\ufffd" if unicodedata.category(c) == "Cc" or c in DIRECTION else c
                       for c in re.sub(r"[\t\n\v\f\r\x85\u2028\u2029]+", " ", title))
    for text in shown[:2]:
        assert not any(unicodedata.category(c) == "Cc" or c in DIRECTION for c in text)
        assert text == expected or (text.endswith("…") and expected.startswith(text[:-1]))


def test_printable_text_arrives_exactly_as_typed(fake):
    title = TEXTS["markdown"] + " " + TEXTS["script"] + ' <at user_id="all">所有人</at>'
    assert channels.send(channel(fake, "wecom"), message(title=title, lines=()), now=now()).delivered
    assert last(fake, "wecom")["text"]["content"].split("\n")[0] == title


def test_wecom_text_is_cut_to_2048_bytes_on_a_character_boundary_keeping_the_link(fake):
    for title in ("长" * 1000, "a" + "🔥" * 600, "x" * 3000):
        assert channels.send(channel(fake, "wecom"), message(title=title), now=now()).delivered
        content = last(fake, "wecom")["text"]["content"]
        assert 2040 < len(content.encode()) <= 2048
        assert content.endswith(f"…\n确认: {LINK}")
        assert title.startswith(content.split("…")[0])


def test_feishu_and_dingtalk_keep_within_their_size(fake):
    lines = ["长\"\\" * 700] * 12
    for kind in ("feishu", "dingtalk"):
        assert channels.send(channel(fake, kind), message(lines=lines), now=now()).delivered
        assert LINK in fake.received(kind, KEY)[-1].text


# ---- e-mail ------------------------------------------------------------------------------

def test_email_has_a_text_part_and_an_escaped_html_part_both_with_the_link(mail):
    sent = Channel("e", "email", to=("line-lead@example.com",))
    hostile = message(title=TEXTS["script"], lines=(TEXTS["img onerror"], TEXTS["markdown"]))
    assert channels.send(sent, hostile, now=now()) == Outcome(True, None, None)
    assert [r.robot for r in mail.received("email")] == ["line-lead@example.com", "zhang@example.com"]
    body = mail.received("email", "zhang@example.com")[0].body
    assert body["subject"] == TEXTS["script"]
    assert body["text"].splitlines() == [TEXTS["script"], TEXTS["img onerror"], TEXTS["markdown"], f"确认: {LINK}"]
    assert "<script" not in body["html"] and "<img" not in body["html"]
    assert "&lt;script&gt;window.__pwned=1;alert(1)&lt;/script&gt;" in body["html"]
    assert f'<a href="{LINK}">确认</a>' in body["html"]


def test_email_settings_that_cannot_work_are_configuration_errors(mail, monkeypatch):
    sent = Channel("e", "email", to=("line-lead@example.com",))
    monkeypatch.setenv("SMTP_STARTTLS", "1")
    outcome = channels.send(sent, message(), now=now())
    assert (outcome.delivered, outcome.retry_after_s) == (False, None)
    assert "STARTTLS" in outcome.error
    monkeypatch.setenv("SMTP_HOST", "")
    assert channels.send(sent, message(), now=now()) == Outcome(False, None, "email SMTP_HOST is not set")
    assert mail.received("email") == []


@pytest.mark.parametrize("answer, retry_after_s", [("throttled", 0.0), (550, None), (452, 0.0)])
def test_email_refusals_map_to_outcomes(mail, answer, retry_after_s):
    mail.fail_next("email", "line-lead@example.com", answer)
    outcome = channels.send(Channel("e", "email", to=("line-lead@example.com",)), message(mentions=()), now=now())
    assert (outcome.delivered, outcome.retry_after_s) == (False, retry_after_s)


def test_email_without_an_answer_is_retried(mail):
    mail.fail_next("email", "line-lead@example.com", "timeout")
    outcome = channels.send(Channel("e", "email", to=("line-lead@example.com",)), message(), now=now(), timeout_s=0.5)
    assert (outcome.delivered, outcome.retry_after_s) == (False, 0.0)


def test_email_signs_in_and_a_wrong_password_stays_out_of_the_error(monkeypatch):
    with FakePlatforms(smtp_login=("floorlink", "right-pass-2c7e")) as fake:
        for name, value in fake.smtp_settings().items():
            monkeypatch.setenv(name, value)
        sent = Channel("e", "email", to=("line-lead@example.com",))
        assert channels.send(sent, message(), now=now()).delivered
        monkeypatch.setenv("SMTP_PASSWORD", "wrong-pass-81f0")
        outcome = channels.send(sent, message(), now=now())
        assert (outcome.delivered, outcome.retry_after_s) == (False, None)
        assert outcome.error.startswith("email 535")
        assert "wrong-pass-81f0" not in outcome.error and "right-pass-2c7e" not in outcome.error


# ---- secrets -----------------------------------------------------------------------------

def test_no_secret_reaches_an_error(fake):
    """Even when a platform echoes the request back."""
    sign = quote_plus(channels.dingtalk_sign("1740000000000", SECRET))
    url = fake.url("dingtalk", KEY, secret=SECRET)
    cases = [("dingtalk", 310000, f"sign not match {url}&timestamp=1740000000000&sign={sign}"),
             ("dingtalk", 310000, f"sign not match, more: /robot/send?access_token={KEY}&sign={sign}"),
             ("wecom", 93000, f"invalid webhook url key={KEY}, hint: [1740000000000]"),
             ("feishu", 19021, f"hook {KEY} secret {SECRET}"), ("webhook", 403, f"{SECRET} {KEY}")]
    for kind, code, errmsg in cases:
        fake.fail_next(kind, KEY, code, errmsg=errmsg)
        outcome = channels.send(channel(fake, kind, SECRET), message(), now=now())
        assert outcome.error.startswith(f"{kind} {code}".replace("webhook", "webhook HTTP"))
        assert KEY not in outcome.error and SECRET not in outcome.error and sign not in outcome.error
        assert "***" in outcome.error or kind == "webhook"


def test_masked_hides_keys_tokens_signs_hook_ids_and_passwords():
    assert channels.masked(f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}") == \
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***"
    assert channels.masked(f"https://oapi.dingtalk.com/robot/send?access_token={KEY}&timestamp=1&sign=a%2Bb") == \
        "https://oapi.dingtalk.com/robot/send?access_token=***&timestamp=1&sign=***"
    assert channels.masked(f"https://open.feishu.cn/open-apis/bot/v2/hook/{KEY}") == \
        "https://open.feishu.cn/open-apis/bot/v2/hook/***"
    assert channels.masked(f"https://ops:{SECRET}@hooks.plant.example/in?team=qa") == \
        "https://ops:***@hooks.plant.example/in?team=qa"


def test_request_for_wants_an_aware_time(fake):
    with pytest.raises(ValueError):
        channels.request_for(channel(fake, "dingtalk", SECRET), message(), now=datetime(2025, 3, 1))


def test_an_answer_in_another_platforms_words_is_not_a_success(fake):
    """A channel pointed at the wrong kind of robot: the answer has no code of its own."""
    for kind, other in (("feishu", "dingtalk"), ("dingtalk", "feishu"), ("wecom", "feishu")):
        crossed = Channel("x", kind, url=fake.url(other, KEY))
        outcome = channels.send(crossed, message(), now=now())
        assert (outcome.delivered, outcome.retry_after_s) == (False, None), kind


# ---- the fakes themselves ----------------------------------------------------------------

def test_the_fake_refuses_what_the_platforms_refuse(fake):
    def post(kind, payload, secret=None, content_type="application/json"):
        url = fake.url(kind, KEY, secret=secret)
        return httpx.post(url, content=json.dumps(payload).encode(), headers={"Content-Type": content_type}).json()

    too_long = {"msgtype": "text", "text": {"content": "长" * 682 + "abc"}}
    assert post("wecom", too_long)["errcode"] == 40058
    too_long["text"]["content"] = too_long["text"]["content"][:-1]
    assert post("wecom", too_long)["errcode"] == 0
    ding = {"msgtype": "text", "text": {"content": "停线"}}
    assert post("dingtalk", ding, secret=SECRET)["errcode"] == 310000
    assert post("dingtalk", ding, content_type="text/plain")["errcode"] == 40035
    markdown = {"msg_type": "post", "content": {"post": {"zh_cn": {"title": "t", "content": [[{"tag": "md", "text": "**x**"}]]}}}}
    assert post("feishu", markdown)["code"] == 9499
    assert "error" in post("webhook", {"event": "issue.raised"})
    assert fake.received("wecom", KEY)[0].text == "长" * 682 + "ab"


def test_the_fake_mail_server_wants_a_text_and_an_html_part(mail):
    plain = EmailMessage()
    plain["From"], plain["To"], plain["Subject"] = "a@example.com", "b@example.com", "t"
    plain.set_content("text only")
    with smtplib.SMTP("127.0.0.1", mail.smtp_port, timeout=5) as smtp, pytest.raises(smtplib.SMTPDataError) as refused:
        smtp.send_message(plain)
    assert refused.value.smtp_code == 554
    assert mail.received("email") == []
