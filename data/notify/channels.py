"""Each platform's request, signature and answer codes (../shared/integrations.md sections 1
and 1.2): one adapter per Channel.kind. `send` delivers one message and says whether and when
to try again; `request_for` builds the request without sending it.

Formats, and why:
- WeCom `text`: the platform renders nothing in it, so text from data can neither format nor
  fake a mention. People are mentioned by `mentioned_list` (their WeCom userid) and
  `mentioned_mobile_list`. The text is cut to the platform's 2048 bytes on a character
  boundary, the link kept whole.
- Feishu `post`: the title, then each line as a `text` element, which Feishu shows as typed
  (an `<at user_id="all">` in a title stays those characters); the link as an `a` element and
  each mention as an `at` element with the person's open_id. These are the only elements built.
  Signed bots get `timestamp` (s) and `sign` in the body.
- DingTalk `text`: plain like WeCom's. A mention is `at.atUserIds` or `at.atMobiles`, and a
  mobile is also written "@<mobile>" at the end of the text, which DingTalk needs to show it.
  `isAtAll` is always false. Signed robots get `&timestamp=<ms>&sign=<sig>` on the URL.
- Webhook: FloorLink's own JSON, for receivers that format it themselves.
- E-mail: a text part and an HTML part, both with the link; the HTML escapes every text.

Only the people in message.mentions are ever mentioned: a handle that reads as everyone
("all", "@all") is dropped. In a title or line sent to a robot, a line break becomes a space
and control and direction characters become U+FFFD, so a title cannot pose as a line of its
own (a second link) or turn the text around it.

Webhook receivers check, in this order: `X-FloorLink-Timestamp` (Unix seconds) is within
5 minutes of their clock, else it is a replay; `X-FloorLink-Signature` equals the hex
HMAC-SHA256 of timestamp + "." + the body bytes as received, keyed with the endpoint's
secret, compared in constant time; then they dedupe on `event_id`, which a retry repeats.

Answers: the robots answer HTTP 200 on failure too, so the body code decides, and a code not
listed here is a failure not retried. Throttling asks for a wait (DingTalk blocks the robot
for 10 minutes); HTTP 5xx, timeouts and refused connections are retried after the sender's
own backoff; everything else is a configuration error that will not fix itself. An error
text never holds a secret, a key or a token.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import smtplib
import ssl
import threading
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import NamedTuple
from urllib.parse import quote_plus, unquote, urlsplit, urlunsplit

import httpx

from data import settings
from data.notify.messages import Message
from data.notify.policy import Channel

WECOM_TEXT_BYTES = 2048
# DingTalk's text limit is given as 20,000 bytes by third-party code only (integrations.md).
DINGTALK_TEXT_BYTES = 20_000
FEISHU_BODY_BYTES = 20 * 1024
ERROR_CHARS = 200

# Body codes after which the platform takes messages again (seconds); every other code but
# success is a configuration error: DingTalk 310000 keyword/sign/IP, 300005 token,
# 400102 robot stopped; WeCom 93000 bad URL; Feishu 19021 sign/clock, 19024 keyword.
RETRY_AFTER_S = {
    "dingtalk": {130101: 600.0},
    "wecom": {45009: 60.0},
    "feishu": {11232: 60.0},
}
# Seconds to wait after HTTP 429 when the answer does not say.
TOO_MANY_REQUESTS_S = 60.0

_SECRET_NAMES = {"key", "access_token", "token", "sign", "signature", "secret", "password",
                 "pwd", "apikey", "api_key"}
_HOOK_ID = re.compile(r"(/hook/)[^/?#]+")
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.I)
_SECRET_PAIR = re.compile(r"\b(" + "|".join(sorted(_SECRET_NAMES)) + r")=[^&\s]+", re.I)
_EVERYONE = {"all", "everyone", "所有人"}
_BREAKS = re.compile(r"[\t\n\v\f\r\x85\u2028\u2029]+")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
_FEISHU_LANG = {"zh": "zh_cn", "en": "en_us"}

_client: httpx.Client | None = None
_client_lock = threading.Lock()


class Outcome(NamedTuple):
    """What became of one attempt. Not delivered with `retry_after_s` a number: try again after
    at least that many seconds; with None: a configuration error, trying again is useless."""
    delivered: bool
    retry_after_s: float | None
    error: str | None


def send(channel: Channel, message: Message, *, now: datetime, timeout_s: float = 10.0) -> Outcome:
    """Deliver `message` on `channel` once. What the network or the platform does is an
    Outcome, never an exception."""
    _check_aware(now)
    if channel.kind == "email":
        return _send_email(channel, message, now=now, timeout_s=timeout_s)
    if not channel.url:
        return Outcome(False, None, f"{channel.kind} channel has no url")
    url, headers, body = request_for(channel, message, now=now)
    try:
        response = _http().post(url, headers=headers, content=body, timeout=timeout_s)
    except httpx.TimeoutException:
        return Outcome(False, 0.0, f"{channel.kind} no answer within {timeout_s:g} s")
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        return Outcome(False, None, _log_text(channel, f"{channel.kind} bad url: {exc}"))
    except httpx.HTTPError as exc:
        return Outcome(False, 0.0, _log_text(channel, f"{channel.kind} {exc.__class__.__name__}: {exc}"))
    return _outcome(channel, response)


def request_for(channel: Channel, message: Message, *, now: datetime) -> tuple[str, dict, bytes]:
    """(url, headers, body) of the request `send` makes; for e-mail the SMTP server as a URL,
    the mail's headers and the whole mail."""
    _check_aware(now)
    build = {"wecom": _wecom, "feishu": _feishu, "dingtalk": _dingtalk, "webhook": _webhook,
             "email": _email_request}.get(channel.kind)
    if build is None:
        raise ValueError(f"no adapter for channel kind {channel.kind!r}")
    if channel.kind != "email" and not channel.url:
        raise ValueError(f"{channel.kind} channel {channel.code!r} has no url")
    return build(channel, message, now)


def _check_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must carry its offset: signatures are in Unix time")


def masked(url: str) -> str:
    """The url as it may be logged or shown: the values of its secret query parameters, the
    password of its user part and a Feishu hook's id (the bot's token) as ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        if ":" in user:
            user = user.split(":", 1)[0] + ":***"
        netloc = f"{user}@{host}"
    query = "&".join(_masked_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, _HOOK_ID.sub(r"\1***", parts.path), query, parts.fragment))


def _masked_pair(pair: str) -> str:
    name, sep, _ = pair.partition("=")
    return f"{name}=***" if sep and unquote(name).lower() in _SECRET_NAMES else pair


# ---- formats ---------------------------------------------------------------------------

def _wecom(channel: Channel, message: Message, now: datetime) -> tuple[str, dict, bytes]:
    link = _link_line(message)
    text = {"content": _cut("\n".join(_lines(message)), f"\n{link}" if link else "", WECOM_TEXT_BYTES)}
    ids, mobiles = _handles(message, "wecom"), _handles(message, "mobile")
    if ids:
        text["mentioned_list"] = ids
    if mobiles:
        text["mentioned_mobile_list"] = mobiles
    return channel.url, dict(_JSON_HEADERS), _json({"msgtype": "text", "text": text})


def _feishu(channel: Channel, message: Message, now: datetime) -> tuple[str, dict, bytes]:
    """The lines are cut until the body fits the platform's 20 KB (JSON escapes can make it
    longer than its text)."""
    budget = FEISHU_BODY_BYTES
    while True:
        body = _json(_feishu_body(channel, message, now, budget))
        excess = len(body) - FEISHU_BODY_BYTES
        if excess <= 0 or budget <= 0:
            return channel.url, dict(_JSON_HEADERS), body
        budget -= excess


def _feishu_body(channel: Channel, message: Message, now: datetime, budget: int) -> dict:
    title, *lines = _cut("\n".join(_lines(message)), "", budget).split("\n")
    rows = [[{"tag": "text", "text": line}] for line in lines if line]
    if message.link:
        rows.append([{"tag": "a", "text": _plain(message.link_text), "href": message.link}])
    ats = [{"tag": "at", "user_id": handle} for handle in _handles(message, "feishu")]
    if ats:
        rows.append(ats)
    post = {_FEISHU_LANG.get(message.lang, "zh_cn"): {"title": title, "content": rows}}
    body: dict = {"msg_type": "post", "content": {"post": post}}
    if channel.secret:
        timestamp = str(int(now.timestamp()))
        body["timestamp"] = timestamp
        body["sign"] = feishu_sign(timestamp, channel.secret)
    return body


def _dingtalk(channel: Channel, message: Message, now: datetime) -> tuple[str, dict, bytes]:
    ids, mobiles = _handles(message, "dingtalk"), _handles(message, "mobile")
    link = _link_line(message)
    tail = (f"\n{link}" if link else "") + ("\n" + " ".join(f"@{_plain(m)}" for m in mobiles) if mobiles else "")
    body = {"msgtype": "text",
            "text": {"content": _cut("\n".join(_lines(message)), tail, DINGTALK_TEXT_BYTES)},
            "at": {"atMobiles": mobiles, "atUserIds": ids, "isAtAll": False}}
    url = channel.url
    if channel.secret:
        timestamp_ms = str(int(now.timestamp() * 1000))
        sign = quote_plus(dingtalk_sign(timestamp_ms, channel.secret))
        url += f"{'&' if '?' in url else '?'}timestamp={timestamp_ms}&sign={sign}"
    return url, dict(_JSON_HEADERS), _json(body)


def _webhook(channel: Channel, message: Message, now: datetime) -> tuple[str, dict, bytes]:
    body = _json({"event": message.event, "event_id": message.event_id,
                  "issue_id": message.issue_ids[0] if message.issue_ids else None,
                  "issue_ids": list(message.issue_ids), "level": message.level,
                  "severity": message.severity, "title": message.title, "text": message.text(),
                  "ack_url": message.link, "at": message.at})
    timestamp = str(int(now.timestamp()))
    headers = {**_JSON_HEADERS, "X-FloorLink-Timestamp": timestamp}
    if channel.secret:
        headers["X-FloorLink-Signature"] = webhook_signature(timestamp, body, channel.secret)
    return channel.url, headers, body


def feishu_sign(timestamp_s: str, secret: str) -> str:
    """Feishu's signature: HMAC-SHA256 of an empty message keyed with timestamp + "\\n" + secret."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def dingtalk_sign(timestamp_ms: str, secret: str) -> str:
    """DingTalk's signature before URL-encoding: HMAC-SHA256 of timestamp + "\\n" + secret,
    keyed with the secret."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def webhook_signature(timestamp_s: str, body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), timestamp_s.encode() + b"." + body, hashlib.sha256).hexdigest()


# ---- e-mail ----------------------------------------------------------------------------

def _email_request(channel: Channel, message: Message, now: datetime) -> tuple[str, dict, bytes]:
    mail = _mail(channel, message, now)
    url = f"smtp://{settings.get('SMTP_HOST')}:{settings.get('SMTP_PORT')}"
    return url, {name: str(value) for name, value in mail.items()}, mail.as_bytes()


def _recipients(channel: Channel, message: Message) -> list[str]:
    """The channel's addresses, then those of the people mentioned, once each."""
    return list(dict.fromkeys([*channel.to, *_handles(message, "email")]))


def _mail(channel: Channel, message: Message, now: datetime) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = _plain(message.title)
    mail["From"] = settings.get("SMTP_FROM")
    mail["To"] = ", ".join(_recipients(channel, message))
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = make_msgid(domain="floorlink")
    link = _link_line(message)
    mail.set_content("\n".join([*_lines(message), *([link] if link else [])]) + "\n")
    mail.add_alternative(_html(message), subtype="html")
    return mail


def _html(message: Message) -> str:
    title, *lines = _lines(message)
    parts = [f"<h2>{html.escape(title)}</h2>", *(f"<p>{html.escape(line)}</p>" for line in lines)]
    if message.link:
        link = html.escape(message.link)
        anchor = (f'<a href="{link}">{html.escape(_plain(message.link_text))}</a>'
                  if message.link.lower().startswith(("https://", "http://")) else html.escape(_plain(message.link_text)))
        parts.append(f"<p>{anchor}<br>{link}</p>")
    return (f'<!DOCTYPE html><html lang="{html.escape(message.lang)}"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head><body>{''.join(parts)}</body></html>\n")


def _send_email(channel: Channel, message: Message, *, now: datetime, timeout_s: float) -> Outcome:
    host = settings.get("SMTP_HOST")
    if not host:
        return Outcome(False, None, "email SMTP_HOST is not set")
    recipients = _recipients(channel, message)
    if not recipients:
        return Outcome(False, None, "email channel has no recipients")
    try:
        mail = _mail(channel, message, now)
        with smtplib.SMTP(host, settings.get_int("SMTP_PORT"), timeout=timeout_s) as smtp:
            if settings.get("SMTP_STARTTLS") == "1":
                smtp.starttls(context=ssl.create_default_context())
            if settings.get("SMTP_USER"):
                smtp.login(settings.get("SMTP_USER"), settings.get("SMTP_PASSWORD"))
            refused = smtp.send_message(mail, from_addr=settings.get("SMTP_FROM"), to_addrs=recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        transient = all(400 <= code < 500 for code, _ in exc.recipients.values())
        return Outcome(False, 0.0 if transient else None, _log_text(channel, f"email recipients refused: {_refusals(exc.recipients)}"))
    except smtplib.SMTPResponseException as exc:
        return Outcome(False, 0.0 if 400 <= exc.smtp_code < 500 else None,
                       _log_text(channel, f"email {exc.smtp_code} {_decoded(exc.smtp_error)}"))
    except (smtplib.SMTPServerDisconnected, TimeoutError) as exc:
        return Outcome(False, 0.0, _log_text(channel, f"email {exc.__class__.__name__}: {exc}"))
    except (smtplib.SMTPException, ssl.SSLError, ValueError) as exc:
        return Outcome(False, None, _log_text(channel, f"email {exc.__class__.__name__}: {exc}"))
    except OSError as exc:
        return Outcome(False, 0.0, _log_text(channel, f"email {exc.__class__.__name__}: {exc}"))
    if refused:
        return Outcome(True, None, _log_text(channel, f"email delivered, some recipients refused: {_refusals(refused)}"))
    return Outcome(True, None, None)


def _refusals(refused: dict) -> str:
    return "; ".join(f"{address} {code}" for address, (code, _) in refused.items())


def _decoded(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# ---- answers ---------------------------------------------------------------------------

def _http() -> httpx.Client:
    """One client per process: building one loads the CA certificates (about 25 ms)."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(headers={"User-Agent": "FloorLink"})
        return _client


def _outcome(channel: Channel, response: httpx.Response) -> Outcome:
    kind, status = channel.kind, response.status_code
    if status == 429:
        return Outcome(False, _retry_after(response), f"{kind} HTTP 429")
    if status >= 500:
        return Outcome(False, 0.0, f"{kind} HTTP {status}")
    if not 200 <= status < 300:
        return Outcome(False, None, f"{kind} HTTP {status}")
    if kind == "webhook":
        return Outcome(True, None, None)
    try:
        answer = response.json()
    except ValueError:
        return Outcome(False, None, f"{kind} answer is not JSON")
    if not isinstance(answer, dict):
        return Outcome(False, None, f"{kind} answer is not a JSON object")
    if kind == "feishu":
        code = answer.get("code", answer.get("StatusCode"))
        text = answer.get("msg", answer.get("StatusMessage", ""))
    else:
        code, text = answer.get("errcode"), answer.get("errmsg", "")
    if type(code) is int and code == 0:
        return Outcome(True, None, None)
    retry = RETRY_AFTER_S[kind].get(code) if type(code) is int else None
    return Outcome(False, retry, _log_text(channel, f"{kind} {code} {text}"))


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return TOO_MANY_REQUESTS_S


def _log_text(channel: Channel, text: str) -> str:
    """Text for the delivery log: one line, URLs and `key=`-like pairs masked, every secret
    value of the channel as ***, at most ERROR_CHARS characters."""
    text = _URL.sub(lambda match: masked(match.group()), " ".join(str(text).split()))
    text = _SECRET_PAIR.sub(r"\1=***", text)
    for value in sorted(_secret_values(channel), key=len, reverse=True):
        text = text.replace(value, "***")
    return text[:ERROR_CHARS]


def _secret_values(channel: Channel) -> set[str]:
    values = {channel.secret or ""}
    if channel.url:
        try:
            parts = urlsplit(channel.url)
        except ValueError:
            parts = None
        if parts is not None:
            for pair in parts.query.split("&"):
                name, sep, value = pair.partition("=")
                if sep and unquote(name).lower() in _SECRET_NAMES:
                    values.update({value, unquote(value)})
            values.update(match.group()[len("/hook/"):] for match in _HOOK_ID.finditer(parts.path))
            if parts.password:
                values.update({parts.password, unquote(parts.password)})
    if channel.kind == "email":
        values.add(settings.get("SMTP_PASSWORD"))
    return {value for value in values if value}


# ---- text ------------------------------------------------------------------------------

def _plain(text: str) -> str:
    """One line of text from data as a robot shows it: breaks as spaces, control and
    direction characters (and lone surrogates, which no platform takes) as U+FFFD."""
    return _UNPRINTABLE.sub("\ufffd", _BREAKS.sub(" ", text or ""))


def _lines(message: Message) -> list[str]:
    return [_plain(message.title), *(_plain(line) for line in message.lines)]


def _link_line(message: Message) -> str | None:
    return f"{_plain(message.link_text)}: {_plain(message.link)}" if message.link else None


def _handles(message: Message, kind: str) -> list[str]:
    """The `kind` handles of the people mentioned, once each; one that reads as everyone is none."""
    handles: list[str] = []
    for mention in message.mentions:
        handle = (mention.handles.get(kind) or "").strip()
        if handle and handle.lstrip("@").lower() not in _EVERYONE and handle not in handles:
            handles.append(handle)
    return handles


def _cut(head: str, tail: str, limit: int) -> str:
    """head + tail in at most `limit` UTF-8 bytes: the head is cut on a character boundary and
    ends in "…", so the tail (the link, the mentions) arrives whole."""
    if len((head + tail).encode()) <= limit:
        return head + tail
    room = limit - len(tail.encode()) - len("…".encode())
    if room < 0:
        return tail.encode()[:limit].decode("utf-8", "ignore")
    return head.encode()[:room].decode("utf-8", "ignore") + "…" + tail


def _json(value: dict) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")
