"""The web basics (docs/security.md): the security headers on every answer, the rate limits of
the sign-in and the ingest API (shared through Redis, per worker when it is gone), no stack
trace or SQL in any answer when everything fails, no secret in any log, and the plant's
identity provider through a reverse proxy's header."""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
import requests
from sqlalchemy import select

from conftest import unavailable
from data import cache, db, demo, timezones
from data.auth import audit, headers, limits, proxy, screens, users, web
from data.ingest import tokens
from data.models import Issue
from test_auth import PASSWORD, csrf_of, shell_refresh, sign_in, stub_the_callbacks
from test_faults import RedisServer
from tools.browser import AppServer

ROOT = Path(__file__).resolve().parent.parent
# 08:00:15 UTC: 45 s before the minute's window ends.
T0 = datetime(2026, 11, 20, 8, 0, 15, tzinfo=timezone.utc)
SHARED_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def sqlite_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'web.sqlite'}"
    db.upgrade_schema(db.get_engine(url))
    yield url
    db.get_engine(url).dispose()


@pytest.fixture
def make_wall(sqlite_url, monkeypatch):
    """An app on an empty database (callbacks stubbed: the doors around them are real), with
    the settings given, and the clock the doors and the limits read."""
    from app import create_app

    clock = {"now": T0}
    monkeypatch.setattr(web, "clock", lambda: clock["now"])
    monkeypatch.setattr(limits, "clock", lambda: clock["now"])
    monkeypatch.delenv("REDIS_URL", raising=False)
    for name in ("FRAME_ANCESTORS", "TRUSTED_NETWORKS", "AUTH_PROXY_HEADER", "AUTH_PROXY_NETWORKS"):
        monkeypatch.delenv(name, raising=False)

    def make(**env: str):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        app = create_app(sqlite_url)
        app.dependencies = app.server.test_client().get("/_dash-dependencies").get_json()
        stub_the_callbacks(app, monkeypatch)
        return app, clock, db.get_engine(sqlite_url)

    return make


def rate_limited(engine) -> list[tuple[str, str]]:
    return [(row.who, row.detail) for row in audit.listed(engine) if row.kind == "rate_limited"]


# ---- the security headers -------------------------------------------------------------------

def sha256_source(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def test_every_answer_carries_the_headers_and_every_inline_script_of_the_page_its_hash(make_wall):
    app, _, _ = make_wall()
    client = app.server.test_client()
    page = client.get("/")
    policy = page.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>(.*?)</script>",
                        page.get_data(as_text=True), flags=re.S)
    inline = [s for s in inline if "Internet Explorer" not in s]     # inside an HTML comment
    assert len(inline) >= 2 and "new DashRenderer" in inline[-1]
    sources = directives["script-src"].split()
    assert sources[0] == "'self'" and sorted(sources[1:]) == sorted(sha256_source(s) for s in inline)
    assert "unsafe" not in directives["script-src"] and "unsafe-eval" not in policy
    assert directives["style-src"] == "'self' 'unsafe-inline'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'self'"
    answers = {
        "page": page,
        "sign-in": client.get("/signin"),
        "script": client.get("/assets/wall.js"),
        "layout": client.get("/_dash-layout"),
        "callback": shell_refresh(app, client),
        "api": client.get("/api/v1/openapi.json"),
        "api refusal": client.get("/api/v1/issues/Q-1"),
        "not found": client.get("/_favicon.ico/nothing"),
        "too large": client.post("/signin", data=b"x" * 2_000_000),
    }
    assert [answers["api refusal"].status_code, answers["too large"].status_code] == [401, 413]
    for what, answer in answers.items():
        assert answer.headers["Content-Security-Policy"] == policy, what
        assert answer.headers["X-Content-Type-Options"] == "nosniff", what
        assert answer.headers["Referrer-Policy"] == "no-referrer", what
        assert answer.headers["X-Frame-Options"] == "SAMEORIGIN", what


@pytest.mark.parametrize("setting, ancestors, frame_options", [
    ("'self' https://portal.plant.example", "'self' https://portal.plant.example", None),
    ("'none'", "'none'", "DENY"),
    ("https://*.plant.example:8443", "https://*.plant.example:8443", None),
])
def test_who_may_frame_the_wall_is_a_setting(make_wall, setting, ancestors, frame_options):
    app, _, _ = make_wall(FRAME_ANCESTORS=setting)
    answer = app.server.test_client().get("/signin")
    assert answer.headers["Content-Security-Policy"].endswith(f"frame-ancestors {ancestors}")
    assert answer.headers.get("X-Frame-Options") == frame_options


@pytest.mark.parametrize("setting", ["'self'; script-src *", "https://a.example, https://b.example",
                                     "'none' 'self'", "'unsafe-inline'", ""])
def test_a_frame_ancestors_setting_that_could_break_the_policy_stops_the_start(setting):
    with pytest.raises(ValueError, match="FRAME_ANCESTORS"):
        headers.frame_ancestors(setting)


# ---- rate limits ----------------------------------------------------------------------------

@pytest.mark.parametrize("at, retry_after", [
    ("08:00:00", 60),          # the window's first instant
    ("08:00:59.2", 1),         # rounded up: never "0"
    ("08:01:00", 60),          # a new window counts from nothing
])
def test_a_window_is_a_minute_of_the_clock_and_retry_after_its_rest(at, retry_after):
    counter = limits.Counter()
    now = datetime.fromisoformat(f"2026-11-20T{at}+00:00")
    assert counter.hit("t", "k", 1, now) == limits.Verdict(False, retry_after, False)
    assert counter.hit("t", "k", 1, now) == limits.Verdict(True, retry_after, True)
    assert counter.hit("t", "k", 1, now) == limits.Verdict(True, retry_after, False)
    assert counter.hit("t", "other", 1, now).refused is False
    assert counter.hit("other kind", "k", 1, now).refused is False
    assert counter.hit("t", "k", 1, now + timedelta(seconds=60)).refused is False


def test_sign_in_forms_past_the_limit_answer_429_and_are_logged_once(make_wall):
    app, clock, engine = make_wall(SIGNIN_POSTS_PER_MINUTE="3", SIGNIN_MAX_FAILURES="100")
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    client = app.server.test_client()
    assert [sign_in(client, "wang.wu", "wrong").status_code for _ in range(2)] == [401, 401]
    assert client.post("/signin", data={"name": "wang.wu", "password": "wrong"}).status_code == 400  # no CSRF: counted too
    refused = [sign_in(client, "wang.wu") for _ in range(3)]       # the right password
    assert [r.status_code for r in refused] == [429, 429, 429]
    assert refused[0].headers["Retry-After"] == "45"
    assert "请 45 秒后再试" in refused[0].get_data(as_text=True)
    assert client.get("/audit").status_code == 302                  # not signed in
    assert rate_limited(engine) == [("anyone@127.0.0.1",
                                     "sign-in forms from this address: more than 3 in one minute")]
    assert "signin_ok" not in [row.kind for row in audit.listed(engine)]
    clock["now"] = T0 + timedelta(seconds=45)                       # the next minute
    assert sign_in(client, "wang.wu").status_code == 302
    assert client.get("/audit").status_code == 200


def api_get(client, token: str | None = None):
    return client.get("/api/v1/issues/Q-1", headers={"Authorization": f"Bearer {token}"} if token else {})


def test_the_api_is_limited_per_token_and_without_a_valid_token_per_address(make_wall):
    app, clock, engine = make_wall(API_REQUESTS_PER_MINUTE="3", API_NO_TOKEN_PER_MINUTE="2")
    _, token = tokens.create(engine, "andon-L2")
    client = app.server.test_client()
    # Its first answer makes the token known; from then on it counts on its own.
    assert [api_get(client, token).status_code for _ in range(4)] == [404, 404, 404, 404]
    refused = api_get(client, token)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "45"
    assert refused.get_json() == {"errors": [{"field": None, "reason": (
        "more than 3 requests with this token in one minute: send again in 45 s")}]}
    # The address spent one request while the token was not yet known: one more without a
    # token, then guessed tokens and no token alike are refused.
    assert api_get(client).status_code == 401
    assert [api_get(client, "fl_guessed").status_code, api_get(client).status_code] == [429, 429]
    assert api_get(client).get_json()["errors"][0]["field"] == "Authorization"
    assert rate_limited(engine) == [
        ("api:andon-L2", "ingest API requests with this token: more than 3 in one minute"),
        ("anyone@127.0.0.1", "ingest API requests without a valid token from this address: "
                             "more than 2 in one minute")]
    clock["now"] = T0 + timedelta(seconds=45)
    assert api_get(client, token).status_code == 404
    # Revoked, the token is no longer known: it counts against its address again.
    tokens.revoke(engine, "andon-L2")
    assert [api_get(client, token).status_code for _ in range(4)] == [401, 401, 401, 429]


def test_the_ingest_bench_stays_under_the_default_limits(monkeypatch):
    """bench/ingest_api.py: 20 clients, each with its own token, at up to some 30 requests a
    second each (README, Data in); the screens' address sends no API request."""
    for name in ("API_REQUESTS_PER_MINUTE", "API_NO_TOKEN_PER_MINUTE"):
        monkeypatch.delenv(name, raising=False)
    from data import settings

    assert settings.get_int("API_REQUESTS_PER_MINUTE") >= 3 * 30 * 60
    # Each client's first request per worker is counted against the address (2 workers).
    assert settings.get_int("API_NO_TOKEN_PER_MINUTE") >= 2 * 21


def shared_counter(url: str, prefix: str) -> limits.Counter:
    counter = limits.Counter(url, prefix)
    try:
        counter.redis.ping()
    except redis.exceptions.RedisError:
        unavailable(f"Redis not reachable at {url}")
    return counter


def test_every_worker_counts_in_the_one_redis(request):
    prefix = f"floorlink-test-{uuid.uuid4().hex[:8]}:"
    workers = [shared_counter(SHARED_REDIS, prefix) for _ in range(2)]
    request.addfinalizer(lambda: [workers[0].redis.delete(k) for k in workers[0].redis.keys(prefix + "*")])
    verdicts = [workers[n % 2].hit("signin", "10.0.0.7", 3, T0) for n in range(6)]
    assert [v.refused for v in verdicts] == [False, False, False, True, True, True]
    assert [v.first_refusal for v in verdicts].count(True) == 1
    key = f"{prefix}rate:signin:10.0.0.7:{int(T0.timestamp()) // 60}"
    assert workers[0].redis.get(key) == b"6" and 0 < workers[0].redis.ttl(key) <= 61


def test_redis_gone_each_worker_counts_for_itself_and_shares_again_when_it_returns(monkeypatch, caplog):
    monkeypatch.setattr(cache, "REDIS_RETRY_S", 0.3)
    server = RedisServer().start()
    try:
        counter = shared_counter(server.url, "floorlink-test:")
        assert counter.hit("api", "t", 2, T0).refused is False
        server.kill()
        with caplog.at_level(logging.INFO, logger=cache.__name__):
            started = time.monotonic()
            # Down: counted in this worker's memory, from nothing, each answer at once.
            assert [counter.hit("api", "t", 2, T0).refused for _ in range(4)] == [False, False, True, True]
            assert time.monotonic() - started < 1
            time.sleep(0.35)
            assert counter.hit("api", "t", 2, T0).refused is True    # asked again: still down
            server.start()
            time.sleep(0.35)
            assert counter.hit("api", "t", 2, T0).refused is False   # back: Redis counts, from nothing
            assert counter.hit("api", "t", 2, T0).refused is False
            assert counter.hit("api", "t", 2, T0).refused is True
        assert server.keys("floorlink-test:rate:") == 1
        said = [r.getMessage() for r in caplog.records if "the rate limits' counter" in r.getMessage()]
        assert len(said) == 2 and "does not answer" in said[0] and "answers again" in said[1]
    finally:
        server.kill()


def test_a_worker_counts_a_bounded_number_of_keys(monkeypatch):
    monkeypatch.setattr(limits, "MAX_KEYS", 3)
    counter = limits.Counter()
    for address in ("a", "b", "c"):
        counter.hit("signin", address, 1, T0)
    assert counter.hit("signin", "a", 1, T0).refused is True
    assert [counter.hit("signin", "d", 1, T0).refused for _ in range(3)] == [False] * 3
    assert len(counter.memory.counts) == 3


# ---- no trace, no SQL -------------------------------------------------------------------------

# Every statement of the app fails as a database that lost a table does, the SQL in the
# exception's text; then every page, callback, form and API door is asked, in a fresh
# interpreter so that this app is the first (Dash gives a module's callbacks to the first app
# of a process only).
FORCED = r"""
import json, re, sys
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ProgrammingError
import app as floorlink

wall = floorlink.create_app(sys.argv[1])
client = wall.server.test_client()
token, issue_id = sys.argv[2], sys.argv[3]
callbacks = client.get("/_dash-dependencies").get_json()

def body(output, values):
    cb = next(c for c in callbacks if output in c["output"])
    spec = cb["output"]
    parts = spec[2:-2].split("...") if spec.startswith("..") else [spec]
    outputs = [dict(zip(("id", "property"), p.split("@")[0].rsplit(".", 1))) for p in parts]
    fill = lambda items: [{**i, "value": values.get(i["id"], values.get(i["property"]))} for i in items]
    return {"output": spec, "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": fill(cb["inputs"]), "state": fill(cb["state"]),
            "changedPropIds": [f"{i['id']}.{i['property']}" for i in cb["inputs"]]}

def page(path):
    return client.post("/_dash-update-component", json=body("_pages_content", {"pathname": path, "search": ""}))

explorer = json.dumps(page("/explorer").get_json())
state = json.loads(re.search(r'"id": "explorer-state", "data": (\{[^}]*\})', explorer).group(1))
csrf = re.search(r"name='csrf' value='([^']+)'", client.get("/signin").get_data(as_text=True)).group(1)

def fail(self, statement, *args, **kwargs):
    raise ProgrammingError(str(statement), {"password": "p"}, Exception("no such column: issues.secret_column"))

Connection.execute = fail
Connection.exec_driver_sql = fail
scope = {"lang": "en", "dept": None, "line": None, "at": None}
asked = {f"GET {p}": client.get(p, headers={"Accept": "text/html"}) for p in
         ("/", "/issues", "/material", "/explorer", f"/issue/{issue_id}", "/nowhere", "/signin", "/audit")}
asked.update({f"page {p}": page(p) for p in ("/", "/issues", "/material", "/explorer", f"/issue/{issue_id}", "/nowhere")})
for name in ("overview", "issues", "material"):
    asked[f"refresh {name}"] = client.post("/_dash-update-component", json=body(
        f"{name}-sent", {"n_intervals": 1, f"{name}-scope": scope, "data": {}}))
for output in ("explorer-flow", "explorer-summary", "explorer-list-what"):
    asked[output] = client.post("/_dash-update-component", json=body(output, {"data": state}))
asked["explorer-grid"] = client.post("/_dash-update-component", json=body("explorer-grid.getRowsResponse", {
    "getRowsRequest": {"startRow": 0, "endRow": 100, "sortModel": [], "filterModel": {}}, "data": state}))
asked["sign-in form"] = client.post("/signin", data={"name": "li.na", "password": "p", "csrf": csrf},
                                   headers={"Accept": "text/html"})
bearer = {"Authorization": f"Bearer {token}"}
asked["api read"] = client.get(f"/api/v1/issues/{issue_id}", headers=bearer)
asked["api write"] = client.post("/api/v1/issues", headers=bearer, json={
    "id": "Q-9", "issue_type": "x", "title": "t", "severity": "P2"})
print(json.dumps({what: [a.status_code, a.get_data(as_text=True)] for what, a in asked.items()}))
"""


@pytest.fixture(scope="module")
def small_plant(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('plant') / 'web.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=3, seed=3)
    db.dispose_all()
    return url


def test_when_every_statement_fails_no_answer_holds_a_trace_or_sql(small_plant):
    engine = db.get_engine(small_plant)
    _, token = tokens.create(engine, "faults")
    with engine.connect() as conn:
        issue_id = conn.scalar(select(Issue.id).limit(1))
    ran = subprocess.run([sys.executable, "-c", FORCED, small_plant, token, issue_id], cwd=ROOT,
                         capture_output=True, text=True, timeout=180)
    assert ran.returncode == 0, ran.stderr[-3000:]
    answers = json.loads(ran.stdout.strip().splitlines()[-1])
    assert len(answers) == 24
    failed = [what for what, (status, _) in answers.items() if status >= 500]
    # The wall's refreshes and the explorer's panels say so in their own words (tested with
    # their pages); the rest answer the short message.
    assert set(failed) == {"explorer-grid", "sign-in form", "api read", "api write"}
    for name in ("overview", "issues", "material"):
        assert json.loads(answers[f"refresh {name}"][1])["response"]["wall-status"]["data"]["state"] in (
            "db_down", "error")
    for what, (status, text) in answers.items():
        for leak in ("Traceback", "SELECT", "secret_column", "[SQL", "ProgrammingError", "File \""):
            assert leak not in text, f"{what} ({status}) holds {leak!r}: {text[:300]}"
    for what in failed:
        status, text = answers[what]
        assert status in (500, 503), what
        assert len(text) < 2500, what
    assert json.loads(answers["explorer-grid"][1]) == {
        "error": "server_error", "message_zh": "服务器出错 · 已记录", "message": "Server error · logged"}
    assert "服务器出错" in answers["sign-in form"][1] and "<form" not in answers["sign-in form"][1]
    assert json.loads(answers["api write"][1])["errors"][0]["reason"].startswith("internal error")
    # The cause is in the server's log, whole.
    assert "no such column: issues.secret_column" in ran.stderr and "Traceback" in ran.stderr


# ---- no secret in any log ---------------------------------------------------------------------

def test_no_password_token_cookie_or_key_reaches_the_log_at_debug(make_wall, caplog):
    key = "k3y-" + uuid.uuid4().hex
    app, _, engine = make_wall(SECRET_KEY=key)
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    _, screen_token = screens.create(engine, "TV L2", T0)
    _, api_token = tokens.create(engine, "andon-L2")
    client = app.server.test_client()
    # Every logger at DEBUG, and SQLAlchemy's statements with their parameters (its rows, at
    # DEBUG, are what the database holds: docs/security.md says never to turn that on).
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    caplog.set_level(logging.DEBUG)
    wrong = sign_in(client, "wang.wu", "a wrong password typed")
    signed = sign_in(client, "wang.wu")
    person_cookie = signed.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    client.get("/audit")
    screen = app.server.test_client()
    shown = screen.get(f"/?kiosk=1&screen={screen_token}")
    screen_cookie = shown.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    shell_refresh(app, screen)
    api_get(client, api_token)
    api_get(client, "fl_" + "x" * 43)
    assert wrong.status_code == 401 and signed.status_code == 302 and shown.status_code == 200
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert "FROM users" in logged and "screen_tokens" in logged and "api_tokens" in logged
    for secret in (PASSWORD, "a wrong password typed", screen_token, api_token, "fl_" + "x" * 43,
                   person_cookie, screen_cookie, key, csrf_of(client.get("/signin").get_data(as_text=True))):
        assert secret not in logged


def test_a_real_server_shares_its_limits_and_logs_no_secret(small_plant, tmp_path, request):
    """gunicorn (2 workers, its access log on) counting in Redis: a person signs in, a screen
    opens with its token, a source reads through the API, a flood from one address meets its
    limit whichever worker takes each request; the log holds none of their secrets."""
    key = "k3y-" + uuid.uuid4().hex
    prefix = f"floorlink-test-{uuid.uuid4().hex[:8]}:"
    counter = shared_counter(SHARED_REDIS, prefix)
    request.addfinalizer(lambda: [counter.redis.delete(k) for k in counter.redis.keys(prefix + "*")])
    engine = db.get_engine(small_plant)
    now = timezones.utc_now()
    users.create(engine, "li.na", "manager", PASSWORD, now)
    _, screen_token = screens.create(engine, "TV L5", now)
    _, api_token = tokens.create(engine, "mes")
    server = AppServer(small_plant, tmp_path, SECRET_KEY=key, API_NO_TOKEN_PER_MINUTE="3", WEB_CONCURRENCY="2",
                       REDIS_URL=SHARED_REDIS, CACHE_KEY_PREFIX=prefix).start()
    try:
        while time.time() % 60 > 45:        # the requests below in one window
            time.sleep(1)
        person = requests.Session()
        form = person.get(server.url + "/signin").text
        csrf = csrf_of(form)
        signed = person.post(server.url + "/signin", data={"name": "li.na", "password": PASSWORD, "csrf": csrf},
                             allow_redirects=False)
        assert signed.status_code == 302
        screen = requests.Session()
        assert screen.get(f"{server.url}/?kiosk=1&screen={screen_token}").status_code == 200
        assert screen.get(f"{server.url}/signin?next=/%3Fscreen%3D{screen_token}").status_code == 200
        written = requests.get(f"{server.url}/api/v1/issues/none", headers={"Authorization": f"Bearer {api_token}"})
        assert written.status_code == 404
        # Each on a connection of its own: the workers take them as they come. The token's
        # first request counted against the address too (not yet known to the worker).
        flood = [requests.get(f"{server.url}/api/v1/openapi.json") for _ in range(5)]
        assert [answer.status_code for answer in flood] == [200, 200, 429, 429, 429]
        assert 1 <= int(flood[2].headers["Retry-After"]) <= 60
        time.sleep(0.5)
    finally:
        server.stop()
    log = server.log.read_text()
    assert "GET /?kiosk=1&screen=*** HTTP/1.1" in log and "%3Fscreen%3D***" in log
    for secret in (PASSWORD, screen_token, api_token, key, csrf, signed.cookies["floorlink_session"],
                   screen.cookies["floorlink_session"]):
        assert secret not in log


# ---- the plant's identity provider ------------------------------------------------------------

PROXY = {"AUTH_PROXY_HEADER": "X-Forwarded-User", "AUTH_PROXY_NETWORKS": "10.9.0.0/24"}


def from_address(address: str, name: str | None = None) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address},
            "headers": {"X-Forwarded-User": name, "Accept": "text/html"} if name else {"Accept": "text/html"}}


def test_a_name_from_the_proxy_is_that_user_with_their_role_and_no_password(make_wall):
    app, _, engine = make_wall(**PROXY)
    users.create(engine, "li.na", "manager", PASSWORD, T0)
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    client = app.server.test_client()
    assert client.get("/audit", **from_address("10.9.0.5", "wang.wu")).status_code == 200
    refused = client.get("/audit", **from_address("10.9.0.5", "li.na"))
    assert refused.status_code == 403 and "admin" in refused.get_data(as_text=True)
    assert client.get("/explorer", **from_address("10.9.0.5", "li.na")).status_code == 200
    for _ in range(3):
        assert shell_refresh(app, client).status_code == 401       # no header: nobody
        client.get("/", **from_address("10.9.0.5", "li.na"))
    entries = [(r.kind, r.who, r.address, r.detail) for r in audit.listed(engine)]
    assert entries == [
        ("signin_ok", "wang.wu", "10.9.0.5", "signed in by the identity provider (X-Forwarded-User)"),
        ("signin_ok", "li.na", "10.9.0.5", "signed in by the identity provider (X-Forwarded-User)")]


def test_the_header_from_anywhere_else_is_ignored_and_logged(make_wall, caplog, monkeypatch):
    app, _, engine = make_wall(**PROXY)
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    monkeypatch.setattr(proxy, "_warned", {})
    client = app.server.test_client()
    with caplog.at_level(logging.WARNING, logger=proxy.__name__):
        for _ in range(3):
            answer = client.get("/audit", **from_address("10.9.1.5", "wang.wu"))
            assert answer.status_code == 302 and "/signin" in answer.headers["Location"]
        empty = client.get("/audit", environ_base={"REMOTE_ADDR": "10.9.0.5"},
                           headers={"X-Forwarded-User": " ", "Accept": "text/html"})
        assert empty.status_code == 302        # from the proxy, but naming no one
    said = [r.getMessage() for r in caplog.records if r.name == proxy.__name__]
    assert said == ["ignored the identity header X-Forwarded-User from 10.9.1.5, which is not in "
                    "AUTH_PROXY_NETWORKS (logged once a minute per address)"]
    assert audit.listed(engine) == []


def test_a_name_that_is_no_user_or_a_disabled_one_is_refused(make_wall, monkeypatch):
    app, _, engine = make_wall(**PROXY)
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    users.create(engine, "zhao.liu", "viewer", PASSWORD, T0)
    client = app.server.test_client()
    refused = client.get("/", **from_address("10.9.0.5", "<b>mallory</b>"))
    assert refused.status_code == 403
    assert "&lt;b&gt;mallory&lt;/b&gt;" in refused.get_data(as_text=True)
    assert "<b>mallory" not in refused.get_data(as_text=True)
    ticks = {"s": 1000.0}
    monkeypatch.setattr(proxy, "_clock", lambda: ticks["s"])
    assert client.get("/", **from_address("10.9.0.5", "zhao.liu")).status_code == 200
    users.disable(engine, "zhao.liu", T0)
    ticks["s"] += proxy.CACHE_FOR_S
    assert client.get("/", **from_address("10.9.0.5", "zhao.liu")).status_code == 403
    assert [(r.kind, r.who) for r in audit.listed(engine)] == [
        ("signin_failed", "<b>mallory</b>"), ("signin_ok", "zhao.liu"), ("signin_failed", "zhao.liu")]


def test_a_header_without_the_proxys_addresses_stops_the_start(make_wall):
    with pytest.raises(ValueError, match="AUTH_PROXY_NETWORKS is empty"):
        make_wall(AUTH_PROXY_HEADER="X-Forwarded-User")
    with pytest.raises(ValueError, match="AUTH_PROXY_NETWORKS"):
        make_wall(AUTH_PROXY_HEADER="X-Forwarded-User", AUTH_PROXY_NETWORKS="10.9.0.0/33")
