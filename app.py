"""FloorLink: the app factory and the command line.

    python app.py            serve the embedded demo plant with its live simulator
    python app.py --help     every command
"""
from __future__ import annotations

import atexit
import gc
import io
import json
import logging
import os
import subprocess
import sys
import traceback
from datetime import datetime, timedelta
from pathlib import Path

import click
import dash
import flask
from werkzeug.exceptions import HTTPException

from data import db, settings, timezones
from data.models import CANONICAL_TABLES

log = logging.getLogger("floorlink")


def create_app(database_url: str | None = None) -> dash.Dash:
    """The Dash app on `database_url` (default: the configured database)."""
    from dashboards import _ui, ack, andon
    from data import cache
    from data.auth import headers, limits, web
    from data.ingest import api
    from data.notify import outbox

    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder="dashboards",
        title="FloorLink 现场协同看板",
        update_title=None,
        # The floor's plain pages (andon, phone) link their own files there; Dash's pages do not load them.
        assets_path_ignore=["^forms$"],
    )
    server = app.server
    server.config["FLOORLINK_DATABASE_URL"] = database_url or settings.database_url()
    cache.init_app(server)
    # The ingest API beside the pages, under /api/v1/ (docs/api.md).
    # An id may hold slashes: the API's addresses are taken as sent, never merged and
    # redirected; one that matches no route answers JSON all the same.
    server.url_map.merge_slashes = False
    server.register_blueprint(api.bp)
    server.register_blueprint(andon.bp)
    server.register_blueprint(ack.bp)
    # What the API, the andon and the phone pages write owes its messages in its transaction.
    outbox.listen()
    server.register_error_handler(HTTPException, api.routing_error)
    app.layout = _ui.app_shell()
    _guard_requests(server, api)
    # Every request through the route table, after the body limits (docs/security.md).
    web.init_app(app)
    # The rate limits of the sign-in and the ingest API; the security headers of every answer.
    limits.init_app(server, api)
    headers.init_app(app)
    return app


PROJECT_CODE = tuple(str(Path(__file__).resolve().parent / part) for part in ("dashboards", "data"))
PAGES_CODE = str(Path(__file__).resolve().parent / "dashboards")
# What a page's callback raises when it cannot read the values sent to it (a wrong type, a
# missing key): values its page never sends, so the request was made by hand.
UNREADABLE_VALUES = (TypeError, KeyError, AttributeError, IndexError, ValueError)


def _guard_requests(server, api) -> None:
    """No request may exhaust the server or fill its log: a body past REQUEST_MAX_BYTES is
    refused with 413 before it is read (the ingest API answers past its own limit itself),
    JSON nested too deep for the parser with 400; a callback request that Dash cannot unpack
    (wrong ids, missing fields), or whose values the page's callback cannot read (wrong
    types, missing keys), is refused with 400 in one log line; Dash's hot-reload hash, a
    development aid, is not served."""
    limit = server.config["MAX_CONTENT_LENGTH"] = settings.get_int("REQUEST_MAX_BYTES")

    @server.before_request
    def _limit_bodies():
        request = flask.request
        if request.blueprint == api.bp.name:
            request.max_content_length = api.MAX_BODY_BYTES + 1
        elif request.content_length is None and request.environ.get("wsgi.input_terminated"):
            # A body sent without its length (chunked): Werkzeug would cut it at the limit
            # silently, so read one byte past it to refuse it.
            body = request.environ["wsgi.input"].read(limit + 1)
            if len(body) > limit:
                flask.abort(413)
            request.environ.update({"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
        if request.blueprint != api.bp.name and request.is_json:
            try:
                request.get_json(silent=True)   # read once here, kept for every later reader
            except RecursionError:
                log.warning("refused a request from %s: its JSON is nested too deep to read",
                            request.remote_addr)
                flask.abort(400)

    dispatch = server.view_functions["/_dash-update-component"]

    def dispatch_or_refuse():
        try:
            return dispatch()
        except HTTPException:
            raise
        except Exception as exc:
            own = [(frame.f_code.co_filename, line)
                   for frame, line in traceback.walk_tb(exc.__traceback__)
                   if frame.f_code.co_filename.startswith(PROJECT_CODE)]
            unreadable = (own and isinstance(exc, UNREADABLE_VALUES)
                          and own[-1][0].startswith(PAGES_CODE))
            if own and not unreadable:
                raise       # the project's own failure: logged whole
            where = f" (at {Path(own[-1][0]).name}:{own[-1][1]})" if own else ""
            log.warning("refused a malformed callback request from %s: %s: %.200r%s",
                        flask.request.remote_addr, type(exc).__name__, str(exc), where)
            return flask.jsonify(error="malformed callback request"), 400

    server.view_functions["/_dash-update-component"] = dispatch_or_refuse
    server.view_functions["/_reload-hash"] = lambda: flask.abort(404)


def create_server():
    """WSGI entry point for gunicorn (see gunicorn.conf.py): every wait on the database is
    bounded (data/db.py)."""
    from data.auth import audit

    db.bound_waits()
    db.check_schema(db.get_engine())
    audit.record_settings(db.get_engine(), timezones.utc_now())
    app = create_app()
    # Dash learns the paths of its scripts while rendering the page; render it once here so
    # every forked worker can serve them, whichever worker the browser reaches first.
    app.server.test_client().get("/")
    _freeze_startup_objects()
    return app.server


def _freeze_startup_objects() -> None:
    """Modules, functions and the app live as long as the process: keep them out of the
    collector's full passes, which over them alone take some 50 ms, a refresh's budget."""
    gc.collect()
    gc.freeze()


class Instant(click.ParamType):
    """An ISO 8601 time on the command line; without an offset it is site-local."""

    name = "ISO-8601-time"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        try:
            return timezones.parse_instant(value)
        except ValueError:
            # One line, without the usage text: the option and what it wants.
            raise click.ClickException(
                f"{param.opts[0]} {value!r} is not an ISO 8601 time such as 2026-11-20T08:00 "
                "(site time) or 2026-11-20T08:00+08:00") from None


INSTANT = Instant()


# What a database says when FloorLink may not write to it: a source read through views
# (docs/existing-databases.md), a read-only login or file.
_READ_ONLY_SIGNS = ("permission denied", "cannot insert into view", "cannot update view",
                    "cannot delete from view", "not automatically updatable", "readonly database",
                    "read-only transaction")
# What a database says when it cannot write to its disk (SQLite says "disk I/O error" when a
# file size limit stops a write, "database or disk is full" when the disk is).
_DISK_SIGNS = ("disk i/o error", "database or disk is full", "no space left on device",
               "could not extend file")


class _Commands(click.Group):
    """Commands whose database refuses them end in one line naming the refusal, not a traceback."""

    def invoke(self, ctx: click.Context):
        from sqlalchemy.exc import DBAPIError

        try:
            return super().invoke(ctx)
        except DBAPIError as exc:
            said = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
            hint = ""
            if any(sign in said.lower() for sign in _READ_ONLY_SIGNS):
                hint = (" - FloorLink may only read this database (a source of views or a read-only "
                        "login): write into FloorLink's own database, or into the source system")
            elif any(sign in said.lower() for sign in _DISK_SIGNS):
                hint = (" - the database could not write to its disk (full, past a file size limit, "
                        "or failing): the write was rolled back; free space and run it again")
            raise click.ClickException(f"the database refused: {said}{hint}") from None


@click.group(cls=_Commands, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """FloorLink: a live operations wall for multi-department site management (现场协同看板)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if ctx.invoked_subcommand is None:
        ctx.invoke(run_embedded)


@cli.command("run")
@click.option("--demo", "fill_demo", is_flag=True,
              help="Fill an empty configured database with the demo plant (always so on the embedded default).")
@click.option("--simulate", is_flag=True,
              help="Run the live simulator on the configured database (always so on the embedded default).")
def run_embedded(fill_demo: bool, simulate: bool) -> None:
    """Serve the embedded default: a SQLite demo plant, filled on first start, with the live simulator.

    With DATABASE_URL set, the database is served as it is: the demo plant and the simulator
    write into it only when --demo and --simulate ask for them.
    """
    from data import demo

    embedded = settings.is_embedded_default()
    engine = db.get_engine()
    if embedded or fill_demo or simulate:
        db.upgrade_schema(engine)
    if not embedded and not (fill_demo or simulate):
        click.echo("DATABASE_URL is set: serving that database as it is, without demo data or "
                   "simulator (add --demo to fill an empty database with the demo plant, "
                   "--simulate to run the live simulator).", err=True)
    if (embedded or fill_demo) and demo.is_empty(engine):
        days, seed = settings.get_int("DEMO_DAYS"), settings.get_int("DEMO_SEED")
        log.info("filling the demo plant: %d days, seed %d (first start only)", days, seed)
        demo.build_demo_plant(engine, days=days, seed=seed)
    elif fill_demo:
        click.echo("--demo: the database already holds data; the demo plant was not written.", err=True)
    if embedded or simulate:
        log.info("starting the live simulator")
        _start_beside("_simulate")
    _serve(settings.get("HOST"), settings.get_int("PORT"))


def _start_beside(function: str) -> None:
    """`app.<function>()` in a process of its own, stopped with this one: the server's
    workers are forked from this process, and a thread running here would be forked with
    whatever locks it holds."""
    process = subprocess.Popen([sys.executable, "-c", f"import app; app.{function}()"],
                               cwd=Path(__file__).resolve().parent)
    server_pid = os.getpid()

    def stop() -> None:
        if os.getpid() == server_pid:     # not in a worker that inherited this hook
            process.terminate()

    atexit.register(stop)


def _simulate() -> None:
    from data.demo import simulator
    from data.notify import outbox

    # The issues it raises and passes back owe their messages in their own transactions.
    outbox.listen()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        simulator.start_background(db.get_engine()).join()
    except KeyboardInterrupt:
        pass    # Ctrl+C reaches the whole terminal's group: the server stops beside it


@cli.command()
@click.option("--host", default=None, help="Listen address (default: HOST setting).")
@click.option("--port", type=int, default=None, help="Port (default: PORT setting).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the app on the configured database (DATABASE_URL), without the simulator."""
    _serve(host or settings.get("HOST"), port or settings.get_int("PORT"))


def _serve(host: str, port: int) -> None:
    """Serve with gunicorn on gunicorn.conf.py (workers, threads, timeouts), as in production,
    with the one sender of pushed messages beside it unless NOTIFY_SENDER is 0."""
    from gunicorn.app.base import Application

    db.bound_waits()
    db.dispose_all()
    try:
        db.check_schema(db.get_engine())
    except db.SchemaOutdated as exc:
        raise click.ClickException(str(exc)) from exc
    if settings.get("NOTIFY_SENDER") != "0":
        log.info("starting the sender of pushed messages")
        _start_beside("_notify_forever")

    class Server(Application):
        def load_config(self):
            self.load_config_from_file(str(Path(__file__).with_name("gunicorn.conf.py")))
            self.cfg.set("bind", [f"{host}:{port}"])
            # One fixed path for every server on the machine otherwise; nothing here uses it.
            self.cfg.set("control_socket_disable", True)

        def load(self):
            return create_server()

    log.info("serving on http://%s:%d", host, port)
    Server().run()


@cli.command("settings")
def show_settings() -> None:
    """List every setting (environment variable) with its value and what it does."""
    for setting in settings.SETTINGS:
        click.echo(f"{setting.name}={settings.shown(setting.name)}")
        click.echo(f"    {setting.help} (default: {setting.default or 'empty'})")


@cli.command("init-db")
def init_db() -> None:
    """Create or migrate the schema of the configured database."""
    db.upgrade_schema(db.get_engine())
    click.echo("schema is up to date")


@cli.command("backup")
@click.option("--to", "to", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The backup file (default: instance/backups/floorlink-<UTC time>.sqlite; "
                   ".dump on PostgreSQL).")
def backup_database(to: Path | None) -> None:
    """Back the configured database up while the wall and its writers go on: SQLite's online
    backup, checked, then given its name; on PostgreSQL pg_dump --format=custom
    (docs/operations.md)."""
    from data import backup

    url = settings.database_url()
    now = timezones.utc_now()
    try:
        copy = backup.backup(url, to or backup.default_file(url, now), now)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {copy.file}: {copy.size:,} bytes, schema revision {copy.revision or 'none'}")
    _echo_rows(copy.rows)


@cli.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True,
              help="Replace the database in place (it is kept as <name>.before-restore-<UTC time>).")
def restore_database(file: Path, yes: bool) -> None:
    """Restore the configured SQLite database from the backup FILE: checked (whole, FloorLink's,
    of this schema or an older one, then migrated), written in one transaction, the database
    replaced kept beside it. On PostgreSQL: the pg_restore commands (docs/operations.md)."""
    from data import backup

    try:
        restored = backup.restore(settings.database_url(), file, timezones.utc_now(), replace=yes)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    database = restored.database
    migrated = (f", migrated from schema revision {restored.migrated_from}"
                if restored.migrated_from else "")
    click.echo(f"restored {database.file} from {restored.source}: schema revision "
               f"{database.revision}{migrated}")
    if restored.kept is not None:
        click.echo(f"the database replaced is kept as {restored.kept}")
    _echo_rows(database.rows)


def _echo_rows(rows: dict[str, int]) -> None:
    for table, count in rows.items():
        click.echo(f"  {table:16} {count:>11,}")


@cli.command()
@click.option("--days", type=int, default=90, show_default=True, help="Days of history.")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed.")
@click.option("--end", type=INSTANT, default=None,
              help="Last instant of the history (ISO 8601; default: now, to the hour).")
def demo(days: int, seed: int, end: datetime | None) -> None:
    """Write a reproducible demo plant's history into the configured database."""
    from data import demo as demo_plant

    engine = db.get_engine()
    db.upgrade_schema(engine)
    summary = demo_plant.build_demo_plant(engine, days=days, seed=seed, end=end)
    for table, count in summary.items():
        click.echo(f"{table:16} {count:>9,}")


@cli.command("import")
@click.argument("table", type=click.Choice([*CANONICAL_TABLES, "event_log"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A YAML mapping: the file's own columns, codes, date formats, encoding "
                   "(docs/mappings/README.md). Required for event_log.")
@click.option("--skip-invalid", is_flag=True,
              help="Import the good rows; write the bad ones with their reasons to the rejects file.")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where --skip-invalid writes the bad rows (default: NAME.rejects.csv in the "
                   "current folder).")
def import_file(table: str, file: Path, mapping: Path | None, skip_invalid: bool,
                rejects: Path | None) -> None:
    """Import one canonical TABLE from a CSV, CSV.GZ or XLSX FILE, all rows or none; or an
    event log (one row per update of a ticket) into issues and their events.

    \b
    TABLE is one of: departments, people, sla_rules, locations, materials,
    issues, issue_events, movements, production_plan (import them in that order:
    later tables refer to earlier ones), or event_log (with --mapping).
    Columns and formats: docs/import.md; mapping files: docs/mappings/README.md.
    """
    from data.ingest import importer
    from data.ingest.progress import Progress

    engine = db.get_engine()
    db.upgrade_schema(engine)
    try:
        result = importer.import_file(engine, table, file, mapping, skip_invalid=skip_invalid,
                                      rejects=rejects, progress=Progress())
    except (importer.ImportRejected, importer.MappingError) as exc:
        click.echo(f"error: {exc}", err=True)
        if isinstance(exc, importer.ImportRejected):
            click.echo("nothing was written", err=True)
        sys.exit(1)
    for line in importer.summary_lines(file, result):
        click.echo(line)


@cli.group()
def token() -> None:
    """API tokens of the ingest API, one or more per source (docs/api.md)."""


@token.command("create")
@click.option("--source", required=True,
              help="Who will send with it, e.g. andon-L2 or mes: letters, digits, '.', '_', '-'.")
def token_create(source: str) -> None:
    """Create a token for SOURCE and print it once: only its hash is kept."""
    from data.auth import audit
    from data.ingest import tokens

    engine = db.get_engine()
    db.upgrade_schema(engine)
    try:
        row, secret = tokens.create(engine, source)
    except tokens.TokenError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(engine, "api_token_created", _operator(), timezones.utc_now(),
                 detail=f"token {row.id} for source {source}")
    click.echo(secret)
    click.echo(f"token {row.id} for source {source}: copy it now, it is not shown again "
               "(send it as 'Authorization: Bearer <token>')", err=True)


@token.command("list")
def token_list() -> None:
    """List the tokens: id, source, created, last used, revoked (never the tokens themselves)."""
    from data.ingest import tokens

    rows = tokens.listed(db.get_engine())
    if not rows:
        click.echo("no tokens yet: python app.py token create --source NAME")
        return
    click.echo(f"{'id':>4}  {'source':20} {'created':16}  {'last used':16}  revoked")
    for row in rows:
        click.echo(f"{row.id:>4}  {row.source:20} {_shown(row.created_at):16}  "
                   f"{_shown(row.last_used_at):16}  {_shown(row.revoked_at)}")


@token.command("revoke")
@click.argument("name_or_id")
def token_revoke(name_or_id: str) -> None:
    """Revoke the token with id NAME_OR_ID, or every token of the source NAME_OR_ID."""
    from data.auth import audit
    from data.ingest import tokens

    engine = db.get_engine()
    try:
        count = tokens.revoke(engine, name_or_id)
    except tokens.TokenError as exc:
        raise click.ClickException(str(exc)) from None
    if count:
        audit.record(engine, "api_token_revoked", _operator(), timezones.utc_now(),
                     detail=f"{count} token(s) of {name_or_id}")
    click.echo(f"{count} token(s) revoked" if count else "already revoked")


def _operator() -> str:
    """Who ran a command, for the audit log: the account on this machine."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


def _shown(instant: datetime | None) -> str:
    return "-" if instant is None else timezones.to_site(instant).strftime("%Y-%m-%d %H:%M")


@cli.group()
def user() -> None:
    """People who sign in (managers, admins...): sign-in is on once one exists (docs/security.md)."""


@user.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator", "manager", "admin"]), required=True,
              help="What the person may do (docs/security.md).")
def user_create(name: str, role: str) -> None:
    """Create the user NAME; the password is asked for (or read from stdin), never an argument."""
    from data.auth import audit, users

    engine = db.get_engine()
    db.upgrade_schema(engine)
    if sys.stdin.isatty():
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    now = timezones.utc_now()
    try:
        row = users.create(engine, name, role, password, now)
    except users.UserError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(engine, "user_created", _operator(), now, detail=f"{row.name} as {row.role}")
    click.echo(f"user {row.name} ({row.role}) created: sign-in is on")


@user.command("list")
def user_list() -> None:
    """List the users: name, role, created, locked until, disabled (never a password hash)."""
    from data.auth import users

    rows = users.listed(db.get_engine())
    if not rows:
        click.echo("no users: sign-in is off (python app.py user create NAME --role manager)")
        return
    click.echo(f"{'name':20} {'role':9} {'created':16}  {'locked until':16}  disabled")
    for row in rows:
        click.echo(f"{row.name:20} {row.role:9} {_shown(row.created_at):16}  "
                   f"{_shown(row.locked_until):16}  {_shown(row.disabled_at)}")


@user.command("disable")
@click.argument("name")
def user_disable(name: str) -> None:
    """Disable the user NAME: their sessions end within seconds."""
    from data.auth import audit, users

    engine = db.get_engine()
    now = timezones.utc_now()
    try:
        changed = users.disable(engine, name, now)
    except users.UserError as exc:
        raise click.ClickException(str(exc)) from None
    if changed:
        audit.record(engine, "user_disabled", _operator(), now, detail=name)
    click.echo(f"user {name} disabled" if changed else f"user {name} was already disabled")


@cli.group("screen-token")
def screen_token() -> None:
    """Wall screens' tokens: a read-only viewer named after the screen (docs/security.md)."""


@screen_token.command("create")
@click.option("--name", required=True, help='The screen, e.g. "TV L2".')
def screen_token_create(name: str) -> None:
    """Create a token for the screen NAME and print it once: only its hash is kept."""
    from data.auth import audit, screens

    engine = db.get_engine()
    db.upgrade_schema(engine)
    now = timezones.utc_now()
    try:
        row, secret = screens.create(engine, name, now)
    except screens.ScreenTokenError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(engine, "screen_token_created", _operator(), now, detail=f"token {row.id} for {row.name}")
    click.echo(secret)
    click.echo(f"screen token {row.id} for {row.name!r}: copy it now, it is not shown again; "
               f"open the wall on the screen with ?screen=<token>, e.g. /?kiosk=1&screen=<token>",
               err=True)


@screen_token.command("list")
def screen_token_list() -> None:
    """List the screen tokens: id, screen, created, last used, revoked (never the tokens)."""
    from data.auth import screens

    rows = screens.listed(db.get_engine())
    if not rows:
        click.echo('no screen tokens yet: python app.py screen-token create --name "TV L2"')
        return
    click.echo(f"{'id':>4}  {'screen':24} {'created':16}  {'last used':16}  revoked")
    for row in rows:
        click.echo(f"{row.id:>4}  {row.name:24} {_shown(row.created_at):16}  "
                   f"{_shown(row.last_used_at):16}  {_shown(row.revoked_at)}")


@screen_token.command("revoke")
@click.argument("name_or_id")
def screen_token_revoke(name_or_id: str) -> None:
    """Revoke the screen token with id NAME_OR_ID, or every token of the screen NAME_OR_ID."""
    from data.auth import audit, screens

    engine = db.get_engine()
    now = timezones.utc_now()
    try:
        revoked = screens.revoke(engine, name_or_id, now)
    except screens.ScreenTokenError as exc:
        raise click.ClickException(str(exc)) from None
    for row in revoked:
        audit.record(engine, "screen_token_revoked", _operator(), now, detail=f"token {row.id} for {row.name}")
    click.echo(f"{len(revoked)} screen token(s) revoked" if revoked else "already revoked")


@cli.command("screens")
@click.option("--all", "everything", is_flag=True,
              help="Also the screens dark for over 7 days, which are otherwise only counted.")
def screens_listed(everything: bool) -> None:
    """List the wall screens that have refreshed, the flagged first: state, since, screen,
    address, page, last refresh, browser (the fleet page /fleet shows the same)."""
    from data import fleet

    now = timezones.utc_now()
    read = fleet.read(settings.database_url(), now, settings.get_int("REFRESH_S"), everything)
    if not read.kept:
        click.echo("this database keeps no fleet (it has no table wall_screens: a source read through views)")
        return
    click.echo("  ".join(f"{state} {read.counts[state]}" for state in fleet.STATES))
    for screen in read.screens:
        name = screen.name or (f"browser {screen.browser_id[:8]}" if screen.browser_id else "-")
        since = _shown(screen.since) if screen.since else ""
        click.echo(f"{screen.state:8} {since:16}  {name[:24]:24} {screen.address or '-':15} "
                   f"{screen.page:9} {_shown(screen.last_refresh):16}  {fleet.short_browser(screen.user_agent)}")
    if read.hidden:
        click.echo(f"{read.hidden} screen(s) dark for over {fleet.LONG_GONE.days} days not listed (--all lists them)")


@cli.group()
def notify() -> None:
    """Push and escalation: the policy, silences and the one sender (docs/notify.md)."""


@notify.command("run")
def notify_run() -> None:
    """Run the sender: take the ladder's steps and deliver the outbox, until stopped
    (SIGTERM finishes the request in hand). One sender sends at a time, however many run."""
    _notify_forever()


def _notify_forever() -> None:
    import signal

    from data.notify import outbox, sender

    from sqlalchemy import inspect

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = db.get_engine()
    if settings.is_embedded_default():
        db.upgrade_schema(engine)
    with engine.connect() as conn:
        if not inspect(conn).has_table("notify_outbox"):
            log.warning("this database keeps no outbox (a source read through views, or one not "
                        "migrated: python app.py init-db): no messages are sent")
            return
    outbox.listen()
    running = sender.Sender(engine)
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: running.stop())
    log.info("sender %s started", running.holder)
    running.run()


@notify.group("policy")
def notify_policy() -> None:
    """The escalation policy: check a file, import it, export the one in force."""


@notify_policy.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def notify_policy_check(file: Path) -> None:
    """Check FILE against the database without importing it; list every problem."""
    from data.notify import policy

    try:
        checked = policy.check(db.get_engine(), file.read_text(encoding="utf-8"), file.name)
    except policy.PolicyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(policy.described(checked))


@notify_policy.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def notify_policy_import(file: Path) -> None:
    """Make FILE the policy in force, if it holds whole (nothing changes otherwise)."""
    from data.auth import audit
    from data.notify import policy

    engine = db.get_engine()
    db.upgrade_schema(engine)
    now = timezones.utc_now()
    try:
        stored = policy.store(engine, file.read_text(encoding="utf-8"), file.name, _operator(), now)
    except policy.PolicyError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(engine, "notify_policy", _operator(), now,
                 detail=f"policy {stored.id} from {file.name}: {policy.shown_json(stored)}")
    click.echo(policy.described(stored))
    click.echo(f"policy {stored.id} is in force", err=True)


@notify_policy.command("export")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: standard output).")
def notify_policy_export(out: Path | None) -> None:
    """Write the policy in force as it was imported (its comments kept)."""
    from data.notify import policy

    with db.get_engine().connect() as conn:
        row = policy.stored(conn)
    if row is None:
        raise click.ClickException("no policy was imported: python app.py notify policy import FILE")
    if out is None:
        click.echo(row.document, nl=False)
    else:
        out.write_text(row.document, encoding="utf-8")
        click.echo(f"policy {row.id} ({row.source}, imported {_shown(row.imported_at)}) written to {out}",
                   err=True)


@notify.group("silence")
def notify_silence() -> None:
    """Silences: while one matches an issue, its ladder waits (planned maintenance)."""


@notify_silence.command("add")
@click.option("--from", "starts", type=INSTANT, default=None, help="Start, ISO 8601 (default: now).")
@click.option("--until", "ends", type=INSTANT, required=True, help="End, ISO 8601.")
@click.option("--reason", required=True, help="Why, e.g. 'L2 planned maintenance'.")
@click.option("--department", default=None, help="Only issues held by this department.")
@click.option("--line", default=None, help="Only issues at this line's locations.")
@click.option("--location", default=None, help="Only issues at this location.")
@click.option("--type", "issue_type", default=None, help="Only issues of this type.")
def notify_silence_add(starts, ends, reason, department, line, location, issue_type) -> None:
    """Silence the ladders of the matching issues from --from until --until."""
    from data.auth import audit
    from data.notify import silences

    engine = db.get_engine()
    now = timezones.utc_now()
    try:
        row = silences.add(engine, starts_at=starts or now, ends_at=ends, reason=reason,
                           created_by=_operator(), now=now, department_code=department, line=line,
                           location_code=location, issue_type=issue_type)
    except silences.SilenceError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(engine, "notify_silence", _operator(), now, detail=f"silence {row.id} added: {reason}")
    click.echo(f"silence {row.id}: {_shown(row.starts_at)} to {_shown(row.ends_at)}")


@notify_silence.command("list")
def notify_silence_list() -> None:
    """The silences running or to come."""
    from data.notify import silences

    rows = silences.listed(db.get_engine(), timezones.utc_now())
    if not rows:
        click.echo("no silence running or to come")
    for row in rows:
        matches = ", ".join(f"{name} {value}" for name, value in (
            ("department", row.department_code), ("line", row.line), ("location", row.location_code),
            ("type", row.issue_type)) if value) or "every issue"
        click.echo(f"{row.id:>4}  {_shown(row.starts_at)} to {_shown(row.ends_at)}  {matches}  "
                   f"{row.reason}  ({row.created_by})")


@notify_silence.command("end")
@click.argument("silence_id", type=int)
def notify_silence_end(silence_id: int) -> None:
    """End silence SILENCE_ID now (one not begun yet is withdrawn)."""
    from data.auth import audit
    from data.notify import silences

    engine = db.get_engine()
    now = timezones.utc_now()
    if not silences.end(engine, silence_id, now):
        raise click.ClickException(f"silence {silence_id} is not running nor to come")
    audit.record(engine, "notify_silence", _operator(), now, detail=f"silence {silence_id} ended")
    click.echo(f"silence {silence_id} ended")


@cli.command("audit")
@click.option("--since", type=INSTANT, default=None, help="First instant shown, ISO 8601 (default: all).")
def audit_log(since: datetime | None) -> None:
    """Print the audit log: sign-ins, sign-outs, users and tokens made or revoked, exports."""
    from data.auth import audit

    rows = audit.listed(db.get_engine(), since)
    if not rows:
        click.echo("the audit log is empty" + (" since then" if since else ""))
        return
    for row in rows:
        stamp = timezones.to_site(row.at).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{stamp}  {row.kind:20} {row.who:24} {row.address or '-':15} {row.detail or ''}")


@cli.command()
@click.option("--since", type=INSTANT, default=None,
              help="Window start, ISO 8601 (default: 7 days before --until).")
@click.option("--until", type=INSTANT, default=None, help="Window end, exclusive (default: --as-of).")
@click.option("--as-of", "as_of", type=INSTANT, default=None,
              help="Instant the KPIs are computed at (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the KPIs as one JSON object (docs/kpis.md).")
def kpis(since: datetime | None, until: datetime | None, as_of: datetime | None, as_json: bool) -> None:
    """Print the KPIs of the window [since, until) as of an instant (definitions: docs/kpis.md)."""
    from data.reports import kpi_report

    at = as_of or timezones.utc_now()
    end = until or at
    start = since or end - timedelta(days=7)
    if start >= end:
        raise click.ClickException(
            f"the window is empty: --since {timezones.to_site(start).isoformat()} is not before "
            f"--until {timezones.to_site(end).isoformat()}")
    report = kpi_report.kpi_report(db.get_engine(), since=start, until=end, as_of=at)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        click.echo(kpi_report.format_text(report))


@cli.group()
def report() -> None:
    """Reports that leave FloorLink as files: the weekly review pack (docs/review.md)."""


@report.command("weekly")
@click.option("--week", default=None, help="ISO week in site time, e.g. 2026-W48 (default: the last complete one).")
@click.option("--as-of", "as_of", type=INSTANT, default=None,
              help="Instant the figures are computed at (default: now); a frozen pack keeps its own.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The file to write: .pdf, .xlsx, .html or .json.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", help="Language of the file.")
@click.option("--freeze", is_flag=True, help="Keep the pack as the week's frozen pack.")
def report_weekly(week: str | None, as_of: datetime | None, out: Path, lang: str, freeze: bool) -> None:
    """Write the weekly review pack of a week: the frozen pack when the week has one, else built
    now (and kept with --freeze); refused while the sources are behind."""
    from data.reports import weekly

    at = as_of or timezones.utc_now()
    week = week or weekly.last_complete_week(at)
    engine = db.get_engine()
    try:
        weekly.parse_week(week)
        pack = weekly.frozen(engine, week)
        if pack is None:
            pack = (weekly.freeze(engine, week, as_of=at, built_by=_operator()) if freeze
                    else weekly.build_pack(engine, week, as_of=at))
    except (ValueError, weekly.SourcesBehind) as exc:
        raise click.ClickException(str(exc)) from None
    if out.suffix.lower() == ".json":
        out.write_text(json.dumps(pack, ensure_ascii=False, indent=2), encoding="utf-8")
    else:
        from data.reports import render

        render.write(pack, out, lang)
    click.echo(f"week {week} (as of {pack['as_of']}) written to {out}", err=True)


@cli.command("check-source")
@click.option("--url", default=None, help="SQLAlchemy URL of the source (default: DATABASE_URL).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as one JSON object.")
def check_source(url: str | None, as_json: bool) -> None:
    """Check a source database, read-only, before the wall is pointed at it: missing tables or
    columns, wrong types, impossible times, unknown codes, implausible values
    (docs/existing-databases.md). Exit status 0 when clean, 1 when problems were found."""
    from data.ingest import source_check

    try:
        report = source_check.check_url(url or settings.database_url())
    except source_check.SourceUnreadable as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(source_check.format_text(report))
    sys.exit(0 if report.clean else 1)


if __name__ == "__main__":
    cli()
