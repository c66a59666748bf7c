"""The doors (docs/security.md): the route table against the running app and its document,
password hashes, sign-in, lock-out and session expiry on an injected clock, screen tokens
revoked mid-display, CSRF, the audit log, and a deployment without users left as it was."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import update

from data import db
from data.auth import audit, policy, screens, users, web
from data.models import ScreenToken, User

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery"
EXPORT_FILE = "floorlink-issues-20261120-1600.csv"


@pytest.fixture
def sqlite_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'doors.sqlite'}"
    db.upgrade_schema(db.get_engine(url))
    yield url
    db.get_engine(url).dispose()


@pytest.fixture
def wall(sqlite_url, monkeypatch):
    """The app on an empty database, its test client, and a clock the doors read."""
    from app import create_app

    monkeypatch.setenv("SIGNIN_MAX_FAILURES", "3")
    monkeypatch.setenv("SIGNIN_LOCK_MINUTES", "15")
    monkeypatch.setenv("SESSION_HOURS", "12")
    monkeypatch.setenv("TRUSTED_NETWORKS", "")
    clock = {"now": T0}
    monkeypatch.setattr(web, "clock", lambda: clock["now"])
    app = create_app(sqlite_url)
    # The callbacks as dash-renderer reads them, while no user exists to close the door.
    app.dependencies = app.server.test_client().get("/_dash-dependencies").get_json()
    stub_the_callbacks(app, monkeypatch)
    return app, clock, db.get_engine(sqlite_url)


def callback_body(app, output_part: str, inputs: dict) -> dict:
    """A callback request as dash-renderer sends it, for the callback with this output."""
    callback = next(c for c in app.dependencies if output_part in c["output"])
    spec = callback["output"]
    parts = spec[2:-2].split("...") if spec.startswith("..") else [spec]
    outputs = [dict(zip(("id", "property"), part.split("@")[0].rsplit(".", 1))) for part in parts]
    return {"output": spec, "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": [{**i, "value": inputs.get(f"{i['id']}.{i['property']}")} for i in callback["inputs"]],
            "state": [{**s, "value": None} for s in callback["state"]],
            "changedPropIds": list(inputs)}


def shell_refresh(app, client):
    """The overview's refresh, as a screen sends it every interval."""
    body = callback_body(app, "overview-sent.data", {"overview-refresh.n_intervals": 1})
    return client.post("/_dash-update-component", json=body)


def export(app, client):
    body = callback_body(app, "explorer-download.data", {"explorer-export-csv.n_clicks": 1})
    return client.post("/_dash-update-component", json=body)


def stub_the_callbacks(app, monkeypatch):
    """Callbacks answer without computing (the export a file): the doors around them are real.
    Dash runs module callbacks in the first app of a process only, and these tests are about
    the doors, not the pages (tests/test_wall*.py)."""
    def answer():
        import flask
        if "explorer-download" in flask.request.get_json()["output"]:
            return flask.jsonify(multi=True, response={"explorer-download": {"data": {
                "content": "aWQK", "filename": EXPORT_FILE, "base64": True}}})
        return flask.jsonify(multi=True, response={"wall-title": {"children": "ran"}})

    monkeypatch.setitem(app.server.view_functions, "/_dash-update-component", answer)


def csrf_of(page: str) -> str:
    return re.search(r"name='csrf' value='([^']+)'", page).group(1)


def sign_in(client, name: str, password: str = PASSWORD, csrf: bool = True, next_path: str = "/"):
    token = csrf_of(client.get("/signin").get_data(as_text=True))
    form = {"name": name, "password": password, **({"csrf": token} if csrf else {})}
    return client.post(f"/signin?next={next_path}", data=form)


def kinds(engine) -> list[str]:
    return [row.kind for row in audit.listed(engine)]


# ---- the route table -------------------------------------------------------------------------

# The doors of a whole app, read in a fresh interpreter: Dash gives the callbacks a shared
# module registers to the first app of a process only.
WALK = """
import json, logging, sys
logging.disable(logging.CRITICAL)
import dash, app
from data.auth import web
wall = app.create_app(sys.argv[1])
client = wall.server.test_client()
found = [("route", rule.rule) for rule in wall.server.url_map.iter_rules()]
found += [("page", page.get("path_template") or page["path"]) for page in dash.page_registry.values()]
for callback in client.get("/_dash-dependencies").get_json():
    found += [("output", name) for name in web.callback_outputs(wall, callback)]
print(json.dumps(found))
"""


def test_every_route_page_and_callback_output_is_in_the_table_and_nothing_else(sqlite_url):
    walked = subprocess.run([sys.executable, "-c", WALK, sqlite_url], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=True)
    found = {tuple(door) for door in json.loads(walked.stdout)}
    assert {kind for kind, _ in found} == {"route", "page", "output"}
    assert len([1 for kind, _ in found if kind == "output"]) > 60
    table = {(door.kind, door.name) for door in policy.DOORS}
    assert found - table == set(), "not in the route table (data/auth/policy.py)"
    assert table - found == set(), "in the route table but not in the app"
    assert len(table) == len(policy.DOORS), "a door is in the table twice"


def test_the_document_holds_the_same_table():
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (route|page|output) \| `([^`]+)` \| ([a-z ]+) \| (open|refused) \|$", text, flags=re.M)
    assert sorted(rows) == sorted((d.kind, d.name, d.role, d.without_signin) for d in policy.DOORS)


def test_a_callback_opens_for_the_strictest_of_its_outputs():
    viewer, manager = policy.door("output", "wall-title"), policy.door("output", "explorer-download")
    assert policy.strictest([viewer, manager]) is manager
    assert policy.strictest([viewer, None]) is None
    assert policy.opens_for(manager, "manager") and policy.opens_for(manager, "admin")
    assert not policy.opens_for(manager, "operator") and not policy.opens_for(manager, None)


# ---- passwords and sign-in ------------------------------------------------------------------

def test_passwords_are_argon2id_and_salted(db_url):
    engine = db.get_engine(db_url)
    users.create(engine, "li.na", "manager", PASSWORD, T0)
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    hashes = [row.password_hash for row in users.listed(engine)]
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert hashes[0] != hashes[1]
    assert not any(PASSWORD in h for h in hashes)


def test_sign_in_lock_out_and_its_end_on_an_injected_clock(db_url, monkeypatch):
    monkeypatch.setenv("SIGNIN_MAX_FAILURES", "3")
    monkeypatch.setenv("SIGNIN_LOCK_MINUTES", "15")
    engine = db.get_engine(db_url)
    users.create(engine, "li.na", "manager", PASSWORD, T0)
    ok = users.sign_in(engine, "li.na", PASSWORD, T0)
    assert ok.outcome == "ok" and ok.person.name == "li.na" and ok.person.role == "manager"
    assert users.sign_in(engine, "nobody", PASSWORD, T0).outcome == "failed"
    assert [users.sign_in(engine, "li.na", "wrong", T0).outcome for _ in range(3)] == ["failed", "failed", "locked"]
    # Locked: even the right password is refused until the lock ends, 15 minutes later.
    right_while_locked = users.sign_in(engine, "li.na", PASSWORD, T0 + timedelta(minutes=14, seconds=59))
    assert right_while_locked.outcome == "locked"
    assert right_while_locked.locked_until == T0 + timedelta(minutes=15)
    assert users.sign_in(engine, "li.na", PASSWORD, T0 + timedelta(minutes=15)).outcome == "ok"
    # A sign-in that works starts the count again: two failures do not lock.
    later = T0 + timedelta(hours=1)
    assert [users.sign_in(engine, "li.na", "wrong", later).outcome for _ in range(2)] == ["failed", "failed"]
    assert users.sign_in(engine, "li.na", PASSWORD, later).outcome == "ok"
    assert users.sign_in(engine, "li.na", "wrong", later).outcome == "failed"


def test_a_disabled_user_cannot_sign_in(db_url):
    engine = db.get_engine(db_url)
    users.create(engine, "li.na", "manager", PASSWORD, T0)
    assert users.disable(engine, "li.na", T0) is True
    assert users.sign_in(engine, "li.na", PASSWORD, T0).outcome == "failed"
    assert users.signin_on(engine) is False


def test_the_sign_in_page_signs_in_and_the_session_ends_after_session_hours(wall):
    app, clock, engine = wall
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    client = app.server.test_client()
    assert client.get("/audit").status_code == 302         # a page: to the sign-in
    answer = sign_in(client, "wang.wu", next_path="/audit")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/audit")
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    clock["now"] = T0 + timedelta(hours=11, minutes=59)
    page = client.get("/audit")
    assert page.status_code == 200 and "signin_ok" in page.get_data(as_text=True)
    clock["now"] = T0 + timedelta(hours=12)
    expired = client.get("/audit")
    assert expired.status_code == 302 and "expired=1" in expired.headers["Location"]
    assert shell_refresh(app, client).status_code == 401


def test_wrong_passwords_lock_the_name_over_the_web_and_each_is_logged(wall):
    app, _, engine = wall
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    client = app.server.test_client()
    answers = [sign_in(client, "wang.wu", "wrong") for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert "Too many" not in answers[1].get_data(as_text=True)
    assert "锁定" in answers[2].get_data(as_text=True)
    assert sign_in(client, "wang.wu").status_code == 401      # locked, right password or not
    assert kinds(engine) == ["signin_failed", "signin_failed", "signin_locked", "signin_locked"]


def test_a_form_without_its_csrf_token_is_refused(wall):
    app, _, engine = wall
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    client = app.server.test_client()
    refused = sign_in(client, "wang.wu", csrf=False)
    assert refused.status_code == 400
    assert client.get("/audit").status_code == 302
    forged = client.post("/signin", data={"name": "wang.wu", "password": PASSWORD, "csrf": "guess"})
    assert forged.status_code == 400
    assert kinds(engine) == []
    assert sign_in(client, "wang.wu").status_code == 302
    assert client.post("/signout", data={}).status_code == 400           # sign-out too
    page = client.get("/signout").get_data(as_text=True)
    assert client.post("/signout", data={"csrf": csrf_of(page)}).status_code == 302
    assert client.get("/audit").status_code == 302
    assert kinds(engine) == ["signin_ok", "signout"]


def test_the_sign_in_page_names_the_wall_and_offers_the_other_language_keeping_the_way_back(wall):
    app, _, engine = wall
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    client = app.server.test_client()
    page = client.get("/signin?next=/fleet").get_data(as_text=True)
    assert "FloorLink · 现场协同看板" in page and "<h1>登录</h1>" in page
    link = re.search(r"class='signin-lang'><a href='([^']+)'>English</a>", page).group(1)
    english = client.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert "FloorLink · Site Operations Wall" in english and "<h1>Sign in</h1>" in english
    assert "href='/signin?next=/fleet&amp;lang=zh'>中文</a>" in english


def test_the_sign_in_goes_back_only_to_a_path_of_this_site(wall):
    app, _, engine = wall
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    answer = sign_in(app.server.test_client(), "wang.wu", next_path="//evil.example/x")
    assert answer.headers["Location"] in ("/", "http://localhost/")


def test_a_role_below_the_door_is_refused(wall):
    app, _, engine = wall
    users.create(engine, "li.na", "manager", PASSWORD, T0)
    client = app.server.test_client()
    sign_in(client, "li.na")
    refused = client.get("/audit", headers={"Accept": "application/json"})
    assert refused.status_code == 403 and refused.get_json()["error"] == "role"
    assert "admin" in refused.get_json()["message"]
    assert client.get("/").status_code == 200


# ---- no user: today's deployments -----------------------------------------------------------

def test_without_users_the_wall_stays_open_and_what_needs_a_person_is_refused(wall, monkeypatch):
    app, _, engine = wall
    client = app.server.test_client()
    for path in ("/", "/issues", "/material", "/explorer", "/issue/Q-1", "/nowhere"):
        assert client.get(path).status_code == 200, path
    refresh = shell_refresh(app, client)
    assert refresh.status_code == 200 and refresh.get_json()["response"] == {"wall-title": {"children": "ran"}}
    refused = client.get("/audit", headers={"Accept": "application/json"})
    assert refused.status_code == 403
    assert "python app.py user create" in refused.get_json()["message"]
    assert "python app.py user create" in refused.get_json()["message_zh"]
    page = client.get("/audit", headers={"Accept": "text/html"})
    assert page.status_code == 403 and "sign-in is off" in page.get_data(as_text=True)
    # The explorer's export stays as it was, and is recorded.
    assert export(app, client).status_code == 200
    entry = audit.listed(engine)[-1]
    assert (entry.kind, entry.who, entry.detail) == ("export", "anyone@127.0.0.1", EXPORT_FILE)


def test_with_sign_in_on_a_stranger_sees_nothing_but_the_sign_in(wall):
    app, _, engine = wall
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    client = app.server.test_client()
    page = client.get("/issues?lang=en")
    assert page.status_code == 302 and "/signin?next=/issues" in page.headers["Location"]
    assert shell_refresh(app, client).status_code == 401
    assert client.get("/_dash-layout").status_code == 401
    assert client.get("/signin").status_code == 200
    assert client.get("/assets/wall.js").status_code == 200


def test_a_trusted_network_is_a_viewer_without_a_token(wall, monkeypatch):
    app, _, engine = wall
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    client = app.server.test_client()
    monkeypatch.setenv("TRUSTED_NETWORKS", "10.20.0.0/16, 127.0.0.0/8")
    assert client.get("/").status_code == 200
    assert shell_refresh(app, client).status_code == 200
    assert client.get("/audit").status_code == 403
    monkeypatch.setenv("TRUSTED_NETWORKS", "10.20.0.0/16")
    assert client.get("/").status_code == 302


# ---- screen tokens --------------------------------------------------------------------------

def test_a_screen_token_is_a_read_only_viewer_until_revoked_mid_display(wall, monkeypatch):
    app, _, engine = wall
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    row, token = screens.create(engine, "TV L2", T0)
    client = app.server.test_client()
    assert client.get(f"/?kiosk=1&screen={token}").status_code == 200
    assert shell_refresh(app, client).status_code == 200       # the cookie carries the screen
    assert export(app, client).status_code == 403              # read-only
    assert client.get("/audit").status_code == 403
    screens.revoke(engine, "TV L2", T0)
    refused = shell_refresh(app, client)
    assert refused.status_code == 401 and refused.get_json()["error"] == "screen_revoked"
    assert "revoked" in refused.get_json()["message"]
    again = client.get(f"/?kiosk=1&screen={token}", headers={"Accept": "text/html"})
    assert again.status_code == 401 and "撤销" in again.get_data(as_text=True)


def test_a_token_revoked_by_another_process_is_refused_within_its_cache_time(wall, monkeypatch):
    app, _, engine = wall
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    row, token = screens.create(engine, "TV L3", T0)
    ticks = {"s": 1000.0}
    monkeypatch.setattr(screens, "_clock", lambda: ticks["s"])
    client = app.server.test_client()
    assert client.get(f"/?screen={token}").status_code == 200
    with engine.begin() as conn:     # as `screen-token revoke` on another machine does
        conn.execute(update(ScreenToken).where(ScreenToken.id == row.id).values(revoked_at=T0))
    ticks["s"] += screens.CACHE_FOR_S
    assert shell_refresh(app, client).status_code == 401


def test_screen_and_api_tokens_open_only_their_own_doors(wall):
    from data.ingest import tokens

    app, _, engine = wall
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    _, api_token = tokens.create(engine, "andon-L2")
    _, screen_token = screens.create(engine, "TV L2", T0)
    client = app.server.test_client()
    assert client.get(f"/?screen={api_token}").status_code == 401
    answer = client.get("/api/v1/issues/Q-1", headers={"Authorization": f"Bearer {screen_token}"})
    assert answer.status_code == 401
    assert client.get("/api/v1/issues/Q-1", headers={"Authorization": f"Bearer {api_token}"}).status_code == 404
    stored = [r.token_sha256 for r in screens.listed(engine)]
    assert screen_token not in stored and tokens.digest(screen_token) in stored


# ---- the audit log --------------------------------------------------------------------------

def test_a_token_use_is_logged_when_it_begins_not_at_every_request(wall, monkeypatch):
    from data.ingest import tokens

    app, clock, engine = wall
    users.create(engine, "wang.wu", "admin", PASSWORD, T0)
    _, api_token = tokens.create(engine, "andon-L2")
    _, screen_token = screens.create(engine, "TV L2", T0)
    api_now = {"now": T0}
    monkeypatch.setattr("data.ingest.api.timezones.utc_now", lambda: api_now["now"])
    bearer = {"Authorization": f"Bearer {api_token}"}
    for minutes in (0, 0, 2, 59, 121, 122):    # the first use, and the first after an hour without
        clock["now"] = api_now["now"] = T0 + timedelta(minutes=minutes)
        tokens._known.clear()
        screens._known.clear()
        assert app.server.test_client().get("/api/v1/issues/Q-1", headers=bearer).status_code == 404
        assert app.server.test_client().get(f"/?screen={screen_token}").status_code == 200
    used = [(row.kind, row.who, row.at) for row in audit.listed(engine) if row.kind.endswith("_used")]
    assert sorted(used) == sorted([
        ("api_token_used", "api:andon-L2", T0),
        ("api_token_used", "api:andon-L2", T0 + timedelta(minutes=121)),
        ("screen_token_used", "screen:TV L2", T0),
        ("screen_token_used", "screen:TV L2", T0 + timedelta(minutes=121))])


def test_a_change_of_settings_is_one_entry_at_the_start_after_it_with_no_password(sqlite_url, monkeypatch):
    engine = db.get_engine(sqlite_url)
    monkeypatch.setenv("REFRESH_S", "7")
    monkeypatch.setenv("REDIS_URL", "redis://:cache-pass-9@cache:6379/0")
    monkeypatch.setenv("SECRET_KEY", "key-that-signs-cookies")
    for _ in range(2):
        audit.record_settings(engine, T0)
    monkeypatch.setenv("REFRESH_S", "8")
    audit.record_settings(engine, T0 + timedelta(hours=1))
    entries = [row for row in audit.listed(engine) if row.kind == "settings"]
    assert [row.detail.splitlines() for row in entries] == [
        ["REDIS_URL=redis://:***@cache:6379/0", "REFRESH_S=7", "SECRET_KEY=(set)"],
        ["REDIS_URL=redis://:***@cache:6379/0", "REFRESH_S=8", "SECRET_KEY=(set)"]]
    assert not any("cache-pass-9" in row.detail or "key-that-signs" in row.detail for row in entries)


def test_an_export_by_a_manager_is_logged_with_their_name(wall, monkeypatch):
    app, clock, engine = wall
    users.create(engine, "li.na", "manager", PASSWORD, T0)
    users.create(engine, "zhao.liu", "viewer", PASSWORD, T0)
    viewer = app.server.test_client()
    sign_in(viewer, "zhao.liu")
    assert export(app, viewer).status_code == 403
    manager = app.server.test_client()
    sign_in(manager, "li.na")
    clock["now"] = T0 + timedelta(minutes=5)
    assert export(app, manager).status_code == 200
    entry = audit.listed(engine)[-1]
    assert (entry.kind, entry.who, entry.detail, entry.at) == ("export", "li.na", EXPORT_FILE, clock["now"])
    assert kinds(engine).count("export") == 1


def test_a_database_of_views_has_sign_in_off(tmp_path):
    url = f"sqlite:///{tmp_path / 'views.sqlite'}"
    engine = db.get_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE issues (id TEXT)")
    assert users.signin_on(engine) is False
    audit.record(engine, "export", "anyone", T0, detail="x.csv")   # logged, not stored, no failure


def run(*args: str, url: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, input=stdin, text=True,
                          capture_output=True, timeout=120,
                          env={**os.environ, "DATABASE_URL": url, **(env or {})})


def test_the_commands_make_users_and_screen_tokens_and_print_the_audit_log(sqlite_url):
    made = run("user", "create", "wang.wu", "--role", "admin", url=sqlite_url, stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    short = run("user", "create", "li.na", "--role", "manager", url=sqlite_url, stdin="short\n")
    assert short.returncode != 0 and "at least" in short.stderr
    listed = run("user", "list", url=sqlite_url).stdout
    assert "wang.wu" in listed and "admin" in listed and "argon2" not in listed
    token = run("screen-token", "create", "--name", "TV L2", url=sqlite_url)
    secret = token.stdout.strip()
    assert secret.startswith(screens.PREFIX) and secret not in run("screen-token", "list", url=sqlite_url).stdout
    assert "1 screen token(s) revoked" in run("screen-token", "revoke", "TV L2", url=sqlite_url).stdout
    assert run("user", "disable", "wang.wu", url=sqlite_url).returncode == 0
    log = run("audit", url=sqlite_url).stdout
    assert [line.split()[2] for line in log.splitlines()] == [
        "user_created", "screen_token_created", "screen_token_revoked", "user_disabled"]
    assert secret not in log and PASSWORD not in log
    with db.get_engine(sqlite_url).connect() as conn:
        assert conn.execute(User.__table__.select()).first().disabled_at is not None


def test_the_settings_command_never_shows_the_secret_key(sqlite_url):
    shown = run("settings", url=sqlite_url, env={"SECRET_KEY": "s3cret-key-value"}).stdout
    assert "SECRET_KEY=(set)" in shown and "s3cret-key-value" not in shown


def test_an_absent_secret_key_is_generated_once_for_this_user_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "")
    monkeypatch.setenv("SECRET_KEY_FILE", "")
    monkeypatch.setattr(web, "GENERATED_KEY", tmp_path / "instance" / "secret_key")
    first = web.secret_key()
    assert len(first) == 64 and web.secret_key() == first
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o777 == 0o600
    (tmp_path / "key").write_text("from-a-file\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "key"))
    assert web.secret_key() == "from-a-file"
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert web.secret_key() == "from-the-environment"
