"""Local stand-ins for the WeCom, Feishu and DingTalk robots, a webhook receiver and a mail
server, for tests, bench/ and trying a policy by hand. They bind 127.0.0.1 only, on free ports.

    with FakePlatforms() as fake:
        url = fake.url("dingtalk", "robot1", secret="s3")  # makes the robot; a Channel's url
        fake.fail_next("dingtalk", "robot1", "throttled", n=3)
        ...                                                  # channels.send(...)
        fake.received("dingtalk", "robot1")  # [Received(platform, robot, at, body, text)]
        fake.requests("dingtalk", "robot1")  # every request, whatever it was answered
        fake.smtp_settings()                 # {"SMTP_HOST": ..., "SMTP_PORT": ...} for the env

`python -m tools.fake_platforms` makes the robots of the demo plant's policy
(data/demo/escalation.yaml), prints the variables that point it here, and serves until Ctrl+C,
printing each message received.

Each request is checked as ../shared/integrations.md documents and answered with the
platform's own codes:
- WeCom `POST /cgi-bin/webhook/send?key=K`: a known key (else 93000).
- Feishu `POST /open-apis/bot/v2/hook/K`: a known hook (else 19001); for a signed bot,
  `timestamp` (s) within an hour of the fake's clock and `sign` in the body (else 19021).
- DingTalk `POST /robot/send?access_token=K`: a known token (else 300005); for a signed robot,
  `timestamp` (ms) within an hour and `sign` in the URL (else 310000).
- Webhook `POST /webhook/K`: a known endpoint (else HTTP 404); with a secret,
  `X-FloorLink-Timestamp` within 5 minutes and `X-FloorLink-Signature` (else HTTP 401).
- Mail: a text part and an HTML part; AUTH when made with `smtp_login`.
A shape the platform would refuse gets a code of the fake's choosing (WeCom 40008 wrong
msgtype, 44004 empty, 40058 too long or malformed; Feishu 9499; DingTalk 40035; webhook 400).

Pacing: accepted messages per robot in the last 60 s. The 21st at WeCom is answered 45009,
at DingTalk 130101, which then blocks the robot for `dingtalk_block_s`; Feishu takes
100 a minute and 5 a second (11232). Refused requests do not count.

`fail_next(kind, key, what, n)` answers the robot's next n requests with `what`:
"throttled", "bad_signature", "http_500", "timeout" (no answer for `hang_s`, longer than a
client waits), or an int: that body code with `errmsg` as its text (for the webhook an HTTP
status, for mail an SMTP reply code). Mail takes "throttled", "timeout" and ints; its robots
are the recipients, one record each per mail.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import email
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email import policy as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

KINDS = ("wecom", "feishu", "dingtalk", "webhook", "email")
FAILURES = ("throttled", "bad_signature", "http_500", "timeout")
PER_MINUTE = {"wecom": 20, "dingtalk": 20, "feishu": 100}
FEISHU_PER_SECOND = 5
SIGNED_WITHIN_S = {"feishu": 3600.0, "dingtalk": 3600.0, "webhook": 300.0}
WECOM_TEXT_BYTES = 2048
DINGTALK_TEXT_BYTES = 20_000
FEISHU_BODY_BYTES = 20 * 1024
LARGEST_BODY_BYTES = 1024 * 1024
WEBHOOK_FIELDS = {"event", "event_id", "issue_id", "issue_ids", "level", "severity", "title",
                  "text", "ack_url", "at"}

_THROTTLED = {"wecom": (45009, "api freq out of limit"),
              "dingtalk": (130101, "send too fast, exceed 20 times per minute"),
              "feishu": (11232, "frequency limited")}
_BAD_SIGNATURE = {"wecom": (93000, "invalid webhook url"),
                  "dingtalk": (310000, "sign not match"),
                  "feishu": (19021, "sign match fail or timestamp is not within one hour from current time")}
_UNKNOWN_ROBOT = {"wecom": (93000, "invalid webhook url"),
                  "dingtalk": (300005, "token is not exist"),
                  "feishu": (19001, "param invalid: incoming webhook access token invalid")}
_MALFORMED = {"wecom": 40058, "dingtalk": 40035, "feishu": 9499}
_FEISHU_TAGS = {"text": ("text",), "a": ("text", "href"), "at": ("user_id",)}


@dataclass(frozen=True)
class Received:
    """One accepted message: `at` is the fake's clock when it arrived, `body` the parsed
    JSON (for mail: from, to, subject, text, html), `text` what a reader sees, as plain text."""
    platform: str
    robot: str
    at: float
    body: dict
    text: str

    def names(self, issue_ids) -> list[str]:
        """Those of `issue_ids` the message names."""
        if self.platform == "webhook":
            return [i for i in issue_ids if i in self.body.get("issue_ids", [])]
        return [i for i in issue_ids if i in self.text]


@dataclass
class _Robot:
    secret: str | None = None
    failures: deque = field(default_factory=deque)
    accepted_at: deque = field(default_factory=deque)
    blocked_until: float = 0.0
    requests: int = 0
    received: list = field(default_factory=list)


class _Refused(Exception):
    """An answer other than success: (HTTP status, JSON body, headers)."""

    def __init__(self, status: int, body: dict | None, headers: dict | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


class FakePlatforms:
    def __init__(self, *, clock: Callable[[], float] = time.time, hang_s: float = 30.0,
                 dingtalk_block_s: float = 600.0, smtp_login: tuple[str, str] | None = None,
                 http_port: int = 0, smtp_port: int = 0, answer_delay_s: float = 0.0):
        self.clock, self.hang_s, self.dingtalk_block_s = clock, hang_s, dingtalk_block_s
        # A slow platform: every HTTP answer waits this long (a burst then takes a while).
        self.answer_delay_s = answer_delay_s
        self.smtp_login = smtp_login
        self._ports = (http_port, smtp_port)
        self._robots: dict[tuple[str, str], _Robot] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._http: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.http_port = self.smtp_port = 0

    # ---- the API ----------------------------------------------------------------------

    def start(self) -> "FakePlatforms":
        self._http = ThreadingHTTPServer(("127.0.0.1", self._ports[0]), _Handler)
        self._http.fake = self
        self.http_port = self._http.server_address[1]
        ready = threading.Event()
        self._threads = [threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True),
                         threading.Thread(target=self._serve_smtp, args=(ready,), daemon=True)]
        for thread in self._threads:
            thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake mail server did not start")
        return self

    def close(self) -> None:
        self._closing.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        for thread in self._threads:
            thread.join(10)

    def __enter__(self) -> "FakePlatforms":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def url(self, kind: str, key: str, *, secret: str | None = None) -> str:
        """Make the robot `key` of `kind` (signed when `secret` is given) and give its URL."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        with self._lock:
            self._robots.setdefault((kind, key), _Robot()).secret = secret
        base = f"http://127.0.0.1:{self.http_port}"
        return {"wecom": f"{base}/cgi-bin/webhook/send?key={key}",
                "feishu": f"{base}/open-apis/bot/v2/hook/{key}",
                "dingtalk": f"{base}/robot/send?access_token={key}",
                "webhook": f"{base}/webhook/{key}",
                "email": f"smtp://127.0.0.1:{self.smtp_port}"}[kind]

    def fail_next(self, kind: str, key: str, what: str | int, n: int = 1, *, errmsg: str = "refused as asked") -> None:
        """Answer the robot's next n requests with `what`; `errmsg`: the text a code comes with."""
        allowed = ("throttled", "timeout") if kind == "email" else FAILURES
        if not isinstance(what, int) and what not in allowed:
            raise ValueError(f"{kind} cannot fail with {what!r}: one of {allowed} or a code")
        with self._lock:
            self._robots.setdefault((kind, key), _Robot()).failures.extend([(what, errmsg)] * n)

    def received(self, kind: str, key: str | None = None) -> list[Received]:
        """Messages accepted, oldest first: of one robot, or of every robot of `kind`
        (in order of arrival)."""
        with self._lock:
            if key is not None:
                robot = self._robots.get((kind, key))
                return list(robot.received) if robot else []
            found = [r for (k, _), robot in self._robots.items() if k == kind for r in robot.received]
        return sorted(found, key=lambda r: r.at)

    def requests(self, kind: str, key: str) -> int:
        with self._lock:
            robot = self._robots.get((kind, key))
            return robot.requests if robot else 0

    def smtp_settings(self) -> dict[str, str]:
        values = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.smtp_port)}
        if self.smtp_login:
            values.update(SMTP_USER=self.smtp_login[0], SMTP_PASSWORD=self.smtp_login[1])
        return values

    # ---- HTTP -------------------------------------------------------------------------

    def _http_answer(self, path: str, headers, body: bytes) -> tuple[int, dict, dict] | None:
        """(status, JSON body, headers) for one request; None: leave it unanswered."""
        kind, key, query = _route(path)
        if kind is None:
            return 404, {"error": "not found"}, {}
        with self._lock:
            robot = self._robots.get((kind, key))
            if robot is None:
                return _unknown(kind)
            robot.requests += 1
            forced, errmsg = robot.failures.popleft() if robot.failures else (None, "")
        if forced == "timeout":
            self._closing.wait(self.hang_s)
            return None
        try:
            if forced is not None:
                raise _forced(kind, forced, errmsg)
            message = self._checked(kind, robot, query, headers, body)
            with self._lock:
                self._pace(kind, robot)
                robot.received.append(Received(kind, key, self.clock(), message, _text(kind, message)))
        except _Refused as refused:
            return refused.status, refused.body, refused.headers
        if kind == "feishu":
            return 200, {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}, {}
        if kind == "webhook":
            return 200, {"ok": True}, {}
        return 200, {"errcode": 0, "errmsg": "ok"}, {}

    def _checked(self, kind: str, robot: _Robot, query: dict, headers, body: bytes) -> dict:
        """The message, once its headers, signature and shape pass as the platform checks them."""
        if not (headers.get("Content-Type") or "").startswith("application/json"):
            raise _malformed(kind, "Content-Type is not application/json")
        if kind == "webhook" and robot.secret:
            self._check_webhook_signature(robot.secret, headers, body)
        if kind == "dingtalk" and robot.secret:
            self._check_signed(kind, query.get("timestamp", [""])[0], query.get("sign", [""])[0], 1000,
                               _dingtalk_sign(query.get("timestamp", [""])[0], robot.secret))
        if kind == "feishu" and len(body) > FEISHU_BODY_BYTES:
            raise _malformed(kind, "request body too large")
        try:
            message = json.loads(body.decode("utf-8"))
        except ValueError:
            raise _malformed(kind, "body is not JSON") from None
        if not isinstance(message, dict):
            raise _malformed(kind, "body is not a JSON object")
        if kind == "feishu" and robot.secret:
            timestamp = str(message.get("timestamp", ""))
            self._check_signed(kind, timestamp, str(message.get("sign", "")), 1, _feishu_sign(timestamp, robot.secret))
        {"wecom": _check_wecom, "dingtalk": _check_dingtalk, "feishu": _check_feishu,
         "webhook": _check_webhook}[kind](message)
        return message

    def _check_signed(self, kind: str, timestamp: str, sign: str, per_second: int, expected: str) -> None:
        if not timestamp.isdigit() or abs(self.clock() - int(timestamp) / per_second) > SIGNED_WITHIN_S[kind]:
            raise _forced(kind, "bad_signature")
        if not hmac.compare_digest(sign.encode(), expected.encode()):
            raise _forced(kind, "bad_signature")

    def _check_webhook_signature(self, secret: str, headers, body: bytes) -> None:
        timestamp = headers.get("X-FloorLink-Timestamp") or ""
        signature = headers.get("X-FloorLink-Signature") or ""
        if not timestamp.isdigit() or abs(self.clock() - int(timestamp)) > SIGNED_WITHIN_S["webhook"]:
            raise _Refused(401, {"error": "stale or missing timestamp"})
        expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise _Refused(401, {"error": "bad signature"})

    def _pace(self, kind: str, robot: _Robot) -> None:
        """Under the lock: refuse a message over the robot's rate, else count it."""
        limit = PER_MINUTE.get(kind)
        if limit is None:
            return
        now, window = self.clock(), robot.accepted_at
        while window and window[0] <= now - 60:
            window.popleft()
        over = len(window) >= limit or now < robot.blocked_until
        if kind == "feishu":
            over = over or sum(1 for t in window if t > now - 1) >= FEISHU_PER_SECOND
        if over:
            if kind == "dingtalk" and now >= robot.blocked_until:
                robot.blocked_until = now + self.dingtalk_block_s
            raise _forced(kind, "throttled")
        window.append(now)

    # ---- mail -------------------------------------------------------------------------

    def _serve_smtp(self, ready: threading.Event) -> None:
        self._loop = loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        extra = {"authenticator": self._authenticate, "auth_require_tls": False} if self.smtp_login else {}
        server = loop.run_until_complete(loop.create_server(
            lambda: SMTP(_Mailbox(self), hostname="fake-platforms", loop=loop, **extra),
            "127.0.0.1", self._ports[1]))
        self.smtp_port = server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and (auth_data.login.decode(), auth_data.password.decode()) == self.smtp_login)
        return AuthResult(success=ok, handled=False)

    def _mail_answer(self, session, envelope) -> str:
        """The SMTP reply to one mail; "hang": leave it unanswered."""
        if self.smtp_login and not session.authenticated:
            return "530 5.7.0 Authentication required"
        with self._lock:
            robots = [self._robots.setdefault(("email", rcpt), _Robot()) for rcpt in envelope.rcpt_tos]
            for robot in robots:
                robot.requests += 1
            forced, errmsg = next((r.failures.popleft() for r in robots if r.failures), (None, ""))
        if forced == "timeout":
            return "hang"
        if forced == "throttled":
            return "451 4.7.1 Try again later"
        if forced is not None:
            return f"{forced} {errmsg}"
        mail = email.message_from_bytes(envelope.original_content, policy=email_policy.default)
        text, html = mail.get_body(("plain",)), mail.get_body(("html",))
        if text is None or html is None or text is html:
            return "554 5.6.0 A text part and an HTML part are wanted"
        body = {"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "subject": str(mail["Subject"]),
                "text": text.get_content(), "html": html.get_content()}
        with self._lock:
            for rcpt, robot in zip(envelope.rcpt_tos, robots):
                robot.received.append(Received("email", rcpt, self.clock(), body, body["text"]))
        return "250 OK"


class _Mailbox:
    def __init__(self, fake: FakePlatforms):
        self.fake = fake

    async def handle_DATA(self, server, session, envelope) -> str:
        reply = self.fake._mail_answer(session, envelope)
        if reply == "hang":
            await asyncio.sleep(self.fake.hang_s)
            return "451 4.4.2 Timed out"
        return reply


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakePlatforms"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > LARGEST_BODY_BYTES:
            self._reply(413, {"error": "too large"}, {})
            return
        answer = self.server.fake._http_answer(self.path, self.headers, self.rfile.read(length))
        time.sleep(self.server.fake.answer_delay_s)
        if answer is not None:
            self._reply(*answer)

    def _reply(self, status: int, body: dict | None, headers: dict) -> None:
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else b"Internal Server Error"
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8" if body is not None else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format, *args) -> None:
        """Quiet: tests and the bench read `received`, not the console."""


def _route(path: str) -> tuple[str | None, str, dict]:
    parts = urlsplit(path)
    query = parse_qs(parts.query, keep_blank_values=True)
    if parts.path == "/cgi-bin/webhook/send":
        return "wecom", query.get("key", [""])[0], query
    if parts.path.startswith("/open-apis/bot/v2/hook/"):
        return "feishu", parts.path[len("/open-apis/bot/v2/hook/"):], query
    if parts.path == "/robot/send":
        return "dingtalk", query.get("access_token", [""])[0], query
    if parts.path == "/webhook" or parts.path.startswith("/webhook/"):
        return "webhook", parts.path[len("/webhook/"):], query
    return None, "", query


def _answer(kind: str, code: int, message: str) -> _Refused:
    if kind == "feishu":
        return _Refused(200, {"code": code, "msg": message, "data": {}})
    return _Refused(200, {"errcode": code, "errmsg": message})


def _forced(kind: str, what: str | int, errmsg: str = "refused as asked") -> _Refused:
    if what == "http_500":
        return _Refused(500, None)
    if kind == "webhook":
        status = {"throttled": 429, "bad_signature": 401}.get(what, what)
        return _Refused(status, {"error": errmsg}, {"Retry-After": "60"} if status == 429 else {})
    if what == "throttled":
        return _answer(kind, *_THROTTLED[kind])
    if what == "bad_signature":
        return _answer(kind, *_BAD_SIGNATURE[kind])
    return _answer(kind, what, errmsg)


def _unknown(kind: str) -> tuple[int, dict, dict]:
    if kind == "webhook":
        return 404, {"error": "no such endpoint"}, {}
    refused = _answer(kind, *_UNKNOWN_ROBOT[kind])
    return refused.status, refused.body, {}


def _malformed(kind: str, why: str) -> _Refused:
    if kind == "webhook":
        return _Refused(400, {"error": why})
    return _answer(kind, _MALFORMED[kind], why)


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _check_wecom(message: dict) -> None:
    if message.get("msgtype") != "text":
        raise _answer("wecom", 40008, "invalid message type")
    text = message.get("text")
    if not isinstance(text, dict) or not isinstance(text.get("content"), str):
        raise _malformed("wecom", "text.content missing")
    if not text["content"]:
        raise _answer("wecom", 44004, "empty content")
    if len(text["content"].encode()) > WECOM_TEXT_BYTES:
        raise _malformed("wecom", f"content exceed max length {WECOM_TEXT_BYTES}")
    for name in ("mentioned_list", "mentioned_mobile_list"):
        if name in text and not _strings(text[name]):
            raise _malformed("wecom", f"{name} is not a list of strings")


def _check_dingtalk(message: dict) -> None:
    text = message.get("text")
    if message.get("msgtype") != "text" or not isinstance(text, dict) or not isinstance(text.get("content"), str) \
            or not text["content"]:
        raise _malformed("dingtalk", "msgtype text with text.content wanted")
    if len(text["content"].encode()) > DINGTALK_TEXT_BYTES:
        raise _malformed("dingtalk", "content too long")
    at = message.get("at", {})
    if not isinstance(at, dict) or not all(_strings(at.get(name, [])) for name in ("atMobiles", "atUserIds")) \
            or not isinstance(at.get("isAtAll", False), bool):
        raise _malformed("dingtalk", "at is malformed")


def _check_feishu(message: dict) -> None:
    post = message.get("content", {}).get("post") if isinstance(message.get("content"), dict) else None
    if message.get("msg_type") != "post" or not isinstance(post, dict) or len(post) != 1 \
            or not set(post) <= {"zh_cn", "en_us"}:
        raise _malformed("feishu", "msg_type post with one language wanted")
    (page,) = post.values()
    if not isinstance(page, dict) or not isinstance(page.get("title"), str) or not isinstance(page.get("content"), list):
        raise _malformed("feishu", "post title and content wanted")
    for row in page["content"]:
        if not isinstance(row, list):
            raise _malformed("feishu", "a row is not a list")
        for element in row:
            needed = _FEISHU_TAGS.get(element.get("tag")) if isinstance(element, dict) else None
            if needed is None or not all(isinstance(element.get(name), str) for name in needed):
                raise _malformed("feishu", "an element is malformed")


def _check_webhook(message: dict) -> None:
    if set(message) != WEBHOOK_FIELDS:
        raise _malformed("webhook", "fields differ from FloorLink's webhook format")


def _text(kind: str, message: dict) -> str:
    """What a reader of the platform sees, as plain text."""
    if kind in ("wecom", "dingtalk"):
        return message["text"]["content"]
    if kind == "webhook":
        return message["text"]
    (page,) = message["content"]["post"].values()
    shown = {"text": lambda e: e["text"], "a": lambda e: f"{e['text']} {e['href']}", "at": lambda e: f"@{e['user_id']}"}
    return "\n".join([page["title"], *("".join(shown[e["tag"]](e) for e in row) for row in page["content"])])


def _feishu_sign(timestamp_s: str, secret: str) -> str:
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def _dingtalk_sign(timestamp_ms: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def demo_policy_environment(fake: "FakePlatforms") -> dict[str, str]:
    """The variables the demo plant's policy (data/demo/escalation.yaml) reads, pointing its
    robots and its mail at these fakes."""
    return {"FLOORLINK_WECOM_URL": fake.url("wecom", "prd"),
            "FLOORLINK_FEISHU_URL": fake.url("feishu", "qa", secret="fake-feishu-secret"),
            "FLOORLINK_FEISHU_SECRET": "fake-feishu-secret",
            "FLOORLINK_DINGTALK_URL": fake.url("dingtalk", "wh", secret="fake-dingtalk-secret"),
            "FLOORLINK_DINGTALK_SECRET": "fake-dingtalk-secret",
            "FLOORLINK_WEBHOOK_URL": fake.url("webhook", "managers", secret="fake-webhook-secret"),
            "FLOORLINK_WEBHOOK_SECRET": "fake-webhook-secret", **fake.smtp_settings()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.fake_platforms", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="HTTP port of the robots (default: a free one)")
    parser.add_argument("--smtp-port", type=int, default=0, help="SMTP port (default: a free one)")
    args = parser.parse_args(argv)
    with FakePlatforms(http_port=args.port, smtp_port=args.smtp_port) as fake:
        print("# The demo plant's policy sends here once the sender runs with these variables:")
        for name, value in demo_policy_environment(fake).items():
            print(f"export {name}='{value}'")
        print("# Serving until Ctrl+C; messages received are printed.", flush=True)
        shown = 0
        try:
            while True:
                time.sleep(1)
                messages = sorted((r for kind in KINDS for r in fake.received(kind)), key=lambda r: r.at)
                for message in messages[shown:]:
                    first = message.text.split("\n", 1)[0]
                    print(f"{time.strftime('%H:%M:%S', time.localtime(message.at))} {message.platform} "
                          f"{message.robot}: {first}", flush=True)
                shown = len(messages)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
