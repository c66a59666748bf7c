"""The doors in the web server: one `before_request` decides every request by the route
table (data/auth/policy.py), and the sign-in, sign-out and audit pages.

Who asks, in this order: a person the plant's identity provider signed in (a header set by
the reverse proxy, believed from AUTH_PROXY_NETWORKS alone: data/auth/proxy.py), a person
signed in here (a session cookie, HttpOnly, SameSite=Lax, Secure behind HTTPS, ending
SESSION_HOURS after sign-in), a screen that showed its token once (`?screen=`; the cookie then
carries the token's id, checked again on every request so a revoked token is refused at the
next refresh), a screen in TRUSTED_NETWORKS (a viewer).

No answer carries a stack trace or SQL: a failure answers a short message in both languages
(the log keeps the cause), and a screen's token never reaches the access log.

Sign-in is on as soon as one user exists. Without any (the demo, the tests, every deployment
from before), what a viewer sees stays open to anyone, and what needs a signed-in person is
refused with a message saying how to turn sign-in on.
"""
from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import dash
import flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature
from markupsafe import escape
from sqlalchemy.exc import DBAPIError

from data import db, settings, timezones
from data.auth import audit, limits, policy, proxy, screens, users
from data.ingest import api as ingest_api
from data.words import LANGUAGE_NAMES, language, t

log = logging.getLogger(__name__)

bp = flask.Blueprint("doors", __name__)
GENERATED_KEY = settings.PROJECT_ROOT / "instance" / "secret_key"
PAGE_ROUTES = ("/", "/<path:path>")
# Plain pages a browser opens: someone not known yet is sent to the sign-in and brought back.
SIGNIN_FIRST = PAGE_ROUTES + ("/audit", "/andon", "/andon/qr", "/andon/<location_code>")
CALLBACKS = "/_dash-update-component"
# The clock of every decision on a session (tests step it instead of waiting).
clock = timezones.utc_now


@dataclass(frozen=True)
class Caller:
    """Who a request is from: a name for the audit log, a role (None: nobody known), and how
    they were known ("person", "screen", "network", "anyone")."""
    name: str
    role: str | None
    kind: str


class _SessionAcrossClockSteps(SecureCookieSessionInterface):
    """Flask refuses a cookie signed later than its clock now shows, so an NTP step back would
    sign out every person and screen. A session's age is judged on every request by its own
    `since` (SESSION_HOURS) instead, so the signature is checked without its age."""

    def open_session(self, app, request):
        signer = self.get_signing_serializer(app)
        if signer is None:
            return None
        cookie = request.cookies.get(self.get_cookie_name(app))
        if not cookie:
            return self.session_class()
        try:
            return self.session_class(signer.loads(cookie))
        except BadSignature:
            return self.session_class()


def init_app(dash_app: dash.Dash) -> None:
    server = dash_app.server
    server.session_interface = _SessionAcrossClockSteps()
    server.config.update(
        FLOORLINK_DASH=dash_app,
        SECRET_KEY=secret_key(),
        SESSION_COOKIE_NAME="floorlink_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.get("SESSION_COOKIE_SECURE") == "1",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.get_int("SESSION_HOURS")),
    )
    settings.networks("TRUSTED_NETWORKS")     # a mistyped network stops the start, not each request
    proxy.init_app()
    server.register_blueprint(bp)
    server.before_request(_check_door)
    server.after_request(_record_export)
    server.after_request(_record_api_token_use)
    server.register_error_handler(500, _server_error)
    server.wsgi_app = _TokensOutOfTheLog(server.wsgi_app)


def secret_key() -> str:
    """SECRET_KEY, else the file SECRET_KEY_FILE names, else instance/secret_key, generated
    on first start readable by this user alone (the embedded demo; one machine's workers)."""
    key = settings.get("SECRET_KEY")
    if key:
        return key
    named = settings.get("SECRET_KEY_FILE")
    path = Path(named) if named else GENERATED_KEY
    if not named and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass        # another worker made it first
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
            log.info("generated a session key into %s", path)
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise RuntimeError(f"the session key file {path} is empty")
    return key


def _engine():
    return db.get_engine(flask.current_app.config["FLOORLINK_DATABASE_URL"])


def _lang() -> str:
    return language(flask.request.args.get("lang") or flask.session.get("lang"))


def page_door(path: str) -> policy.Door | None:
    """The table's door of the Dash page at `path`; the 404 page's for a path of no page."""
    for page in dash.page_registry.values():
        template = page.get("path_template")
        if template:
            if re.fullmatch(re.sub(r"<[^>]+>", "[^/]+", template), path):
                return policy.door("page", template)
        elif path.rstrip("/") == page["path"].rstrip("/"):
            return policy.door("page", page["path"])
    return policy.door("page", "/404")


def callback_outputs(dash_app: dash.Dash, body) -> list[str] | None:
    """The table's names of the outputs of the callback a request runs: Dash runs the one
    its `output` names, whatever else the body says. None when that is no callback of the
    app: Dash then runs nothing and refuses the request as malformed."""
    key = body.get("output") if isinstance(body, dict) else None
    if not isinstance(key, str) or key not in {c["output"] for c in dash_app._callback_list}:
        return None
    parts = key[2:-2].split("...") if key.startswith("..") and key.endswith("..") else [key]
    names = []
    for part in parts:
        component = part.split("@")[0].rsplit(".", 1)[0]
        names.append(policy.output_name(json.loads(component) if component.startswith("{") else component))
    return names


def _check_door():
    request = flask.request
    if request.url_rule is None:
        return None     # Flask answers 404 / 405 itself
    rule = request.url_rule.rule
    door = policy.door("route", rule)
    if door is None:
        return _refuse(403, "door_not_in_table")
    if door.role in (policy.ANYONE, policy.API_TOKEN):
        return None
    if door.role == policy.ACK_LINK:
        flask.g.floorlink_caller = signed_in_person()
        return None
    if rule in PAGE_ROUTES:
        door = page_door(request.path)
    elif rule == CALLBACKS:
        names = callback_outputs(flask.current_app.config["FLOORLINK_DASH"], request.get_json(silent=True))
        if names is None:
            return None
        flask.g.floorlink_exports = [name for name in names if name in policy.EXPORTS]
        door = policy.strictest([policy.door("output", name) for name in names])
    if door is None:
        return _refuse(403, "door_not_in_table")
    engine = _engine()
    signin_on = users.signin_on(engine)
    if not signin_on:
        flask.g.floorlink_caller = Caller(f"anyone@{request.remote_addr}", None, "anyone")
        if door.role == "viewer" or door.without_signin == "open":
            return None
        return _refuse(503, "door_db_silent") if signin_on is None else _refuse(403, "door_signin_off")
    try:
        claim = proxy.claim(engine, request.headers, request.remote_addr)
    except DBAPIError:
        return _refuse(503, "door_db_silent")
    if claim is not None and claim.person is None:
        _record_claim(engine, "signin_failed", claim.name, "not a FloorLink user")
        return _refuse(403, "door_proxy_unknown", name=claim.name)
    caller, why = _caller(engine) if claim is None else (_claimed(engine, claim.person), "")
    if caller is None:
        if request.method == "GET" and rule in SIGNIN_FIRST and why != "door_screen_revoked":
            return flask.redirect(flask.url_for("doors.signin", next=request.full_path.rstrip("?"),
                                                expired=1 if why == "signin_expired" else None))
        return _refuse(401, why)
    flask.g.floorlink_caller = caller
    if not policy.opens_for(door, caller.role):
        return _refuse(403, "door_role", role=door.role)
    return None


def signed_in_person() -> Caller | None:
    """The person signed in here or by the identity provider, for a door that opens without
    one (an acknowledgement link), so that its page can name them; None for anyone else, who
    is neither refused nor sent to sign in. Their role is not checked: the link is the key."""
    engine = _engine()
    session = flask.session
    try:
        if not users.signin_on(engine):
            return None
        claim = proxy.claim(engine, flask.request.headers, flask.request.remote_addr)
        if claim is not None:
            return Caller(claim.person.name, claim.person.role, "proxy") if claim.person else None
        if "user" not in session or clock() - datetime.fromisoformat(session["since"]) >= \
                timedelta(hours=settings.get_int("SESSION_HOURS")):
            return None
        person = users.current(engine, session["user"])
    except DBAPIError:
        return None
    return Caller(person.name, person.role, "person") if person else None


def _claimed(engine, person: users.Person) -> Caller:
    """A person the identity provider signed in: recorded once per browser session."""
    _record_claim(engine, "signin_ok", person.name, "signed in by the identity provider")
    return Caller(person.name, person.role, "proxy")


def _record_claim(engine, kind: str, name: str, detail: str) -> None:
    """The identity provider's sign-in (or a name it sent that is no user) in the audit log,
    once per browser session and name, not on every refresh."""
    if flask.session.get("proxy_claim") == [kind, name]:
        return
    flask.session["proxy_claim"] = [kind, name]
    audit.record(engine, kind, name, clock(), address=flask.request.remote_addr,
                 detail=f"{detail} ({settings.get('AUTH_PROXY_HEADER')})")


def _caller(engine) -> tuple[Caller | None, str]:
    """Who asks, or None and the word saying why nobody is known."""
    now = clock()
    session, request = flask.session, flask.request
    why = "door_signin_needed"
    if "user" in session:
        since = datetime.fromisoformat(session["since"])
        person = users.current(engine, session["user"])
        if now - since >= timedelta(hours=settings.get_int("SESSION_HOURS")):
            why = "signin_expired"
        elif person is not None:
            return Caller(person.name, person.role, "person"), ""
        session.pop("user", None)
        session.pop("since", None)
    token = request.args.get("screen")
    screen = None
    if token:
        screen = screens.authenticate(engine, token, now)
    elif "screen" in session:
        screen = screens.still_valid(engine, session["screen"], now)
    if screen is not None:
        if screen.resumed:
            audit.record(engine, "screen_token_used", f"screen:{screen.name}", now,
                         address=request.remote_addr, detail=f"token {screen.id}")
        session.update(screen=screen.id, screen_gone=False)
        session.permanent = True
        return Caller(f"screen:{screen.name}", "viewer", "screen"), ""
    if token or "screen" in session:
        # Kept, so that the screen opened again without its token still says why.
        session.pop("screen", None)
        session["screen_gone"] = True
    if settings.in_networks("TRUSTED_NETWORKS", request.remote_addr):
        return Caller(f"network:{request.remote_addr}", "viewer", "network"), ""
    return None, "door_screen_revoked" if session.get("screen_gone") else why


def _refuse(status: int, word: str, **fields):
    """A refusal in both languages: a page for a browser's page or form, JSON otherwise."""
    zh, en = t(word, "zh").format(**fields), t(word, "en").format(**fields)
    request = flask.request
    if request.accept_mimetypes.accept_html and not request.path.startswith("/_dash"):
        body = _form_page(_lang(), "FloorLink", f"<p class='door-refused'>{escape(zh)}</p><p>{escape(en)}</p>")
        return flask.Response(body, status=status, mimetype="text/html")
    return flask.jsonify(error=word.removeprefix("door_"), message_zh=zh, message=en), status


def _server_error(exc):
    """A failure answers a short message in both languages, never a trace, SQL or the
    exception's text; Flask has logged the cause. The ingest API answers in its own shape."""
    request = flask.request
    if request.path.startswith(ingest_api.bp.url_prefix + "/"):
        return ingest_api.routing_error(exc)
    return _refuse(500, "server_error")


# A screen's token in an address (`screen=fls_...`), also percent-encoded inside another one.
_SCREEN_TOKEN = re.compile(r"(screen(?:=|%3[Dd]))[A-Za-z0-9_-]+")
# An acknowledgement link's token, the rest of its path (`/ack/<token>`).
_ACK_TOKEN = re.compile(r"(/ack/)[A-Za-z0-9_.%-]+")


class _TokensOutOfTheLog:
    """The server writes each request's address to its access log once the answer is sent
    (gunicorn reads RAW_URI, QUERY_STRING and the Referer from the request's environ): by
    then the token a screen showed in its address, and an acknowledgement link's, is
    replaced by ***."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            for name in ("RAW_URI", "REQUEST_URI", "QUERY_STRING", "HTTP_REFERER"):
                value = environ.get(name)
                if value and ("screen" in value or "/ack/" in value):
                    environ[name] = _ACK_TOKEN.sub(r"\1***", _SCREEN_TOKEN.sub(r"\1***", value))


def _record_export(response: flask.Response) -> flask.Response:
    """An export answered (the explorer's CSV/XLSX) goes to the audit log with its file's name."""
    exports = flask.g.get("floorlink_exports")
    if not exports or response.status_code != 200:
        return response
    try:
        answer = json.loads(response.get_data())["response"]
        files = [answer[name]["data"]["filename"] for name in exports if name in answer]
    except (ValueError, KeyError, TypeError):
        files = []
    caller = flask.g.get("floorlink_caller") or Caller(f"anyone@{flask.request.remote_addr}", None, "anyone")
    for filename in files:
        audit.record(_engine(), "export", caller.name, clock(), address=flask.request.remote_addr,
                     detail=filename)
    return response


def _record_api_token_use(response: flask.Response) -> flask.Response:
    """An API token's first use, or its first after an hour without one, goes to the audit log
    (data/ingest/tokens.py says which use that is)."""
    caller = flask.g.get("api_caller")
    if caller is not None and caller.resumed:
        audit.record(_engine(), "api_token_used", f"api:{caller.source}", clock(),
                     address=flask.request.remote_addr, detail=f"token {caller.token_id}")
    return response


def _csrf_token() -> str:
    if "csrf" not in flask.session:
        flask.session["csrf"] = secrets.token_urlsafe(32)
    return flask.session["csrf"]


def _csrf_ok() -> bool:
    sent = flask.request.form.get("csrf", "")
    kept = flask.session.get("csrf", "")
    return bool(kept) and hmac.compare_digest(sent.encode(), kept.encode())


def _safe_next(target: str | None) -> str:
    """Only a path of this site: never another host (`//host`, `/\\host`)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


# The sign-in, sign-out and audit pages stand outside the wall's pages and their style sheet.
FORM_STYLE = (
    "body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;"
    "background:#0f1720;color:#e6edf3;font:18px/1.5 'Noto Sans CJK SC','Noto Sans',sans-serif}"
    "main{min-width:22em;padding:2em 2.5em;background:#17212b;border-radius:8px}"
    "h1{font-size:1.5em;margin:0 0 1em}label{display:block;margin:0 0 1em}"
    "input{display:block;width:100%;box-sizing:border-box;margin-top:.3em;padding:.5em;font:inherit;"
    "color:#e6edf3;background:#0f1720;border:1px solid #3b4b5b;border-radius:4px}"
    "button{padding:.5em 1.5em;font:inherit;color:#0f1720;background:#4fb3ff;border:0;border-radius:4px}"
    ".signin-message{color:#ff8a80}table{border-collapse:collapse;font-size:.8em}"
    ".signin-brand{margin:0 0 1.5em;color:#8b9bab;font-size:.85em}"
    ".signin-lang{margin:1.5em 0 0;font-size:.85em}.signin-lang a{color:#4fb3ff}"
    "td,th{padding:.25em .8em;border-bottom:1px solid #2b3845;text-align:left;white-space:pre-wrap}")


def _form_page(lang: str, title: str, inner: str, message: str = "") -> str:
    shown = f"<p class='signin-message' role='alert'>{escape(message)}</p>" if message else ""
    return (f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>FloorLink · {escape(title)}</title><style>{FORM_STYLE}</style></head>"
            f"<body class='signin-page'><main><p class='signin-brand'>FloorLink · "
            f"{escape(t('app_title', lang))}</p><h1>{escape(title)}</h1>{shown}{inner}</main></body></html>")


@bp.route("/signin", methods=["GET", "POST"])
def signin():
    lang = _lang()
    message, status = "", 200
    if flask.request.args.get("expired"):
        message = t("signin_expired", lang)
    name = ""
    headers = {}
    if flask.request.method == "POST":
        name = flask.request.form.get("name", "")[:64]
        address = flask.request.remote_addr
        engine = _engine()
        wait = limits.check("signin", address or "-", settings.get_int("SIGNIN_POSTS_PER_MINUTE"), clock(),
                            engine=engine, who=f"anyone@{address}", address=address,
                            what="sign-in forms from this address")
        if wait is not None:
            message, status = t("signin_rate_limited", lang).format(seconds=wait), 429
            headers["Retry-After"] = str(wait)
        elif not _csrf_ok():
            message, status = t("signin_form_expired", lang), 400
        else:
            now = clock()
            result = users.sign_in(engine, name, flask.request.form.get("password", ""), now)
            audit.record(engine, f"signin_{result.outcome}", name or "-", now, address=address)
            if result.outcome == "ok":
                flask.session.clear()
                flask.session.update(user=result.person.id, since=now.isoformat(), lang=lang,
                                     csrf=secrets.token_urlsafe(32))
                flask.session.permanent = True
                return flask.redirect(_safe_next(flask.request.args.get("next")))
            status = 401
            if result.outcome == "locked":
                until = timezones.to_site(result.locked_until).strftime("%H:%M")
                message = t("signin_locked", lang).format(until=until)
            else:
                message = t("signin_failed", lang)
    inner = (f"<form method='post'>"
             f"<input type='hidden' name='csrf' value='{escape(_csrf_token())}'>"
             f"<label>{escape(t('signin_name', lang))} <input name='name' autocomplete='username' "
             f"value='{escape(name)}' required></label>"
             f"<label>{escape(t('signin_password', lang))} <input name='password' type='password' "
             f"autocomplete='current-password' required></label>"
             f"<button type='submit'>{escape(t('signin_button', lang))}</button></form>"
             f"<p class='signin-lang'><a href='{escape(_in_other_language(lang))}'>"
             f"{LANGUAGE_NAMES['en' if lang == 'zh' else 'zh']}</a></p>")
    return flask.Response(_form_page(lang, t("signin_title", lang), inner, message), status=status,
                          headers=headers, mimetype="text/html")


def _in_other_language(lang: str) -> str:
    """This page's address in the other language, the page to go back to kept."""
    return flask.url_for(flask.request.endpoint, **{**flask.request.args.to_dict(),
                                                    "lang": "en" if lang == "zh" else "zh"})


@bp.route("/signout", methods=["GET", "POST"])
def signout():
    lang = _lang()
    if flask.request.method == "POST":
        if not _csrf_ok():
            return flask.Response(_form_page(lang, t("signout_title", lang), "",
                                             t("signin_form_expired", lang)), status=400, mimetype="text/html")
        person = users.current(_engine(), flask.session["user"]) if "user" in flask.session else None
        if person is not None:
            audit.record(_engine(), "signout", person.name, clock(), address=flask.request.remote_addr)
        flask.session.clear()
        return flask.redirect(flask.url_for("doors.signin", lang=lang))
    inner = (f"<form method='post'><input type='hidden' name='csrf' value='{escape(_csrf_token())}'>"
             f"<button type='submit'>{escape(t('signout_button', lang))}</button></form>")
    return flask.Response(_form_page(lang, t("signout_title", lang), inner), mimetype="text/html")


@bp.get("/audit")
def audit_page():
    """The audit log, newest first, for admins (the route table lets no one else in)."""
    lang = _lang()
    rows = list(reversed(audit.listed(_engine(), since=clock() - timedelta(days=90))))[:1000]
    heads = "".join(f"<th>{escape(t(w, lang))}</th>" for w in
                    ("audit_at", "audit_kind", "audit_who", "audit_address", "audit_detail"))
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(v if v is not None else '')}</td>" for v in (
            timezones.to_site(row.at).strftime("%Y-%m-%d %H:%M:%S"), row.kind, row.who,
            row.address, row.detail)) + "</tr>" for row in rows)
    inner = f"<table class='audit-log'><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>"
    return flask.Response(_form_page(lang, t("audit_title", lang), inner), mimetype="text/html")
