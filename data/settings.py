"""Configuration from environment variables, declared once as a table.

Each setting has a default that works on a fresh machine and a help text; the README's
settings table is checked against this one by a test, so nothing goes undocumented.
"""
from __future__ import annotations

import functools
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_DB_PATH = PROJECT_ROOT / "instance" / "floorlink.sqlite"


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    # Shown as set or not, never as its value (`python app.py settings`).
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", f"sqlite:///{EMBEDDED_DB_PATH}",
            "SQLAlchemy URL of the database. Default: the embedded SQLite file instance/floorlink.sqlite."),
    Setting("SITE_TZ", "Asia/Shanghai",
            "IANA time zone of the site: naive imported times are read in it, and every screen shows it."),
    Setting("PLANT_NAME", "",
            "The plant's name at the head of every page of the weekly review pack; empty: the app's title."),
    Setting("HOST", "127.0.0.1", "Address the web server listens on."),
    Setting("PORT", "8050", "Port the web server listens on."),
    Setting("REFRESH_S", "10", "Seconds between wall refreshes (one timed interval per page)."),
    Setting("RESPONSE_GOAL_MIN", "15", "Goal for median response time in minutes, drawn on the wall and trend."),
    Setting("THRESHOLD_OPEN", "20,40", "Open issues: tile turns amber at the first number, red at the second."),
    Setting("THRESHOLD_OVERDUE", "1,5", "Overdue issues: amber at the first number, red at the second."),
    Setting("THRESHOLD_MEDIAN_RESPONSE_MIN", "15,30", "Median response minutes today: amber above the first, red above the second."),
    Setting("THRESHOLD_RESPONSE_SLA", "0.9,0.75", "Response SLA compliance today: amber below the first, red below the second."),
    Setting("THRESHOLD_RESOLUTION_RATE", "0.8,0.6", "Resolution rate today: amber below the first, red below the second."),
    Setting("THRESHOLD_PLAN_ATTAINMENT", "0.95,0.85", "Plan attainment this shift: amber below the first, red below the second."),
    Setting("THRESHOLD_STAGNANT_LOTS", "1,10", "Stagnant lots: tile turns amber at the first number, red at the second."),
    Setting("THRESHOLD_SHORTAGES", "1,3", "Open material shortages: tile turns amber at the first number, red at the second."),
    Setting("CACHE_DIR", str(PROJECT_ROOT / "instance" / "cache"),
            "Folder of the file cache shared by all workers when REDIS_URL is not set."),
    Setting("REDIS_URL", "", "Redis URL (redis://host:port/db). When set, snapshots are cached in Redis instead of files."),
    Setting("CACHE_KEY_PREFIX", "floorlink:", "Prefix of every cache key, so several sites can share one Redis."),
    Setting("CACHE_WAIT_S", "10",
            "Seconds a refresh waits for another worker computing the same snapshot before the "
            "screen says the database does not answer."),
    Setting("SNAPSHOT_AHEAD_S", "0.5",
            "Seconds before each refresh boundary at which one worker computes the views screens "
            "asked for in the interval before, so that screens refreshing together read them instead "
            "of queueing; from then on the next interval's snapshot is served, and a row committed "
            "later is on screen an interval later. At most a fifth of REFRESH_S is used; 0: off."),
    Setting("DB_CONNECT_TIMEOUT_S", "5",
            "Seconds the web server waits to open a database connection, or for a pooled one to answer (at least 2 on PostgreSQL)."),
    Setting("DB_POOL_TIMEOUT_S", "5",
            "Seconds the web server waits for a free connection of its pool."),
    Setting("DB_STATEMENT_TIMEOUT_S", "30",
            "Longest a statement of the web server may run (PostgreSQL statement_timeout, one more "
            "second for a silent server; SQLite's busy timeout); 0: none on PostgreSQL. Commands are not limited."),
    Setting("REQUEST_MAX_BYTES", "1048576",
            "Largest request body the web server reads (the ingest API keeps its own limit); a larger one is refused with 413."),
    Setting("SECRET_KEY", "",
            "Key that signs the session cookies of people signed in and of screens; empty: read "
            "from SECRET_KEY_FILE, else one is generated into instance/secret_key.", secret=True),
    Setting("SECRET_KEY_FILE", "",
            "File holding the key that signs session cookies (used when SECRET_KEY is empty)."),
    Setting("SESSION_HOURS", "12", "Hours a sign-in lasts before the person signs in again."),
    Setting("SESSION_COOKIE_SECURE", "0",
            "1 behind HTTPS: the session cookie is sent over HTTPS only."),
    Setting("TRUSTED_NETWORKS", "",
            "Networks (CIDRs, comma separated) whose screens count as viewers without a token when "
            "sign-in is on, e.g. 10.20.0.0/16."),
    Setting("SIGNIN_MAX_FAILURES", "5", "Wrong passwords in a row after which a name is locked."),
    Setting("SIGNIN_LOCK_MINUTES", "15", "Minutes a name stays locked after too many wrong passwords."),
    Setting("SIGNIN_POSTS_PER_MINUTE", "10",
            "Sign-in forms one address may send per minute (whatever the name); past it the "
            "sign-in answers 429 with Retry-After."),
    Setting("API_REQUESTS_PER_MINUTE", "6000",
            "Requests one ingest API token may send per minute; past it the API answers 429 with Retry-After."),
    Setting("API_NO_TOKEN_PER_MINUTE", "60",
            "Ingest API requests one address may send per minute without a valid token; past it 429."),
    Setting("FRAME_ANCESTORS", "'self'",
            "Who may show the wall in a frame (Content-Security-Policy frame-ancestors): 'self', "
            "'none', or the origins of a portal, space separated, e.g. 'self' https://portal.plant.example."),
    Setting("AUTH_PROXY_HEADER", "",
            "Header in which a reverse proxy that signed the person in (OIDC, LDAP) passes their "
            "FloorLink user name, e.g. X-Forwarded-User; empty: no identity provider."),
    Setting("AUTH_PROXY_NETWORKS", "",
            "Addresses (CIDRs, comma separated) of that reverse proxy: the header is trusted from "
            "them alone, e.g. 127.0.0.1/32."),
    Setting("NOTIFY_SENDER", "1",
            "1: `python app.py run` and `serve` start the one sender of pushed messages beside the "
            "web server; 0: it runs as its own service (`python app.py notify run`)."),
    Setting("NOTIFY_LEASE_S", "15",
            "Seconds after the sender of pushed messages last renewed its lease before another "
            "sender takes over (a standby's failover time)."),
    Setting("PUBLIC_URL", "",
            "The address phones and tablets open FloorLink at (e.g. https://floorlink.plant.example): "
            "the origin of the acknowledgement links in pushed messages and of the stations' QR "
            "codes; empty: http://HOST:PORT."),
    Setting("ACK_LINK_HOURS", "24",
            "Hours an acknowledgement link in a pushed message works; it works once."),
    Setting("STAR_MIN_ISSUES", "5",
            "Issues a department must have raised in the last 7 days to compete for the collaboration star."),
    Setting("WEEKLY_GRACE_HOURS", "6",
            "Hours after a week's end in which a weekly review pack waits for late rows: until they "
            "pass, a pack is refused while the newest record is older than the week's end minus them."),
    Setting("WEEKLY_PACK_DIR", "",
            "Folder the sender writes each week's review pack into on schedule (<week>/floorlink-<week>-"
            "{zh,en}.{pdf,xlsx,html}), telling the policy's plant channel; empty: no scheduled pack."),
    Setting("WEEKLY_PACK_AT", "mon 07:30",
            "When, in site time, the scheduled pack of the week before is built: a day of the week "
            "after it (mon ... sun) and a time, e.g. mon 07:30."),
    Setting("SHORTAGE_ISSUE_TYPES", "material_shortage",
            "Issue types (comma separated) that count as material shortages on the wall."),
    Setting("QUIET_AFTER_H", "24",
            "Hours after the newest record (an issue raised, an event, a movement) from which every "
            "wall page says there is no new data and no figure shows green."),
    Setting("PLAUSIBLE_FROM", "2000-01-01",
            "Earliest time the wall accepts in a row (site time); a row dated before it is left out and counted as a data error."),
    Setting("PLAUSIBLE_UNTIL", "2100-01-01",
            "Time from which the wall no longer accepts a row's date (site time); such a row is left out and counted as a data error."),
    Setting("MAX_LIMIT_MINUTES", "525600",
            "Longest SLA limit in minutes the wall accepts (a year); an issue whose rule allows more is left out and counted as a data error."),
    Setting("FOLLOW_OVERLAP_S", "30",
            "Seconds behind its last read in which the wall looks for rows that committed late: "
            "the longest a writer may take from stamping a row to committing it."),
    Setting("EXPLORER_HISTORY_DAYS", "400",
            "Days of issues the explorer keeps in memory per process (a 365-day window, the 28 days "
            "its control chart looks back, and margin); an older window is read from the database."),
    Setting("DEMO_DAYS", "90", "Days of history the embedded demo plant is filled with on first start."),
    Setting("DEMO_SEED", "7", "Random seed of the embedded demo plant (same seed, same plant)."),
    Setting("SIMULATOR_ISSUES_PER_HOUR", "5", "Issues the live simulator raises per hour on the embedded default."),
    Setting("SIMULATOR_MOVES_PER_HOUR", "30", "Material movements the live simulator writes per hour on the embedded default."),
    Setting("SIMULATOR_TICK_S", "5", "Seconds between live simulator steps."),
    Setting("SMTP_HOST", "", "Mail server that e-mail channels send through; empty: e-mail channels fail as not configured."),
    Setting("SMTP_PORT", "25", "Port of the mail server (587 with SMTP_STARTTLS=1 on most servers)."),
    Setting("SMTP_USER", "", "User name to sign in to the mail server with; empty: send without signing in."),
    Setting("SMTP_PASSWORD", "", "Password of SMTP_USER on the mail server.", secret=True),
    Setting("SMTP_FROM", "floorlink@localhost", "Sender address of FloorLink's e-mails."),
    Setting("SMTP_STARTTLS", "0",
            "1: encrypt the connection to the mail server with STARTTLS and check its certificate; "
            "a server that does not offer it gets no mail."),
)

_BY_NAME = {s.name: s for s in SETTINGS}
# scheme://user:password@ or scheme://:password@
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")


def get(name: str) -> str:
    """The value of a declared setting: the environment first, then its default."""
    return os.environ.get(name) or _BY_NAME[name].default


def shown(name: str) -> str:
    """A setting's value as it may be printed or logged: a secret only as set or not, and the
    password of a URL (DATABASE_URL, REDIS_URL) as ***."""
    value = get(name)
    if _BY_NAME[name].secret:
        return "(set)" if value else "(not set)"
    return _URL_PASSWORD.sub(r"\1***@", value)


def changed() -> dict[str, str]:
    """The settings given a value other than their default, as `shown`."""
    return {s.name: shown(s.name) for s in SETTINGS if get(s.name) != s.default}


def networks(name: str) -> tuple:
    """A setting's comma-separated address ranges (e.g. TRUSTED_NETWORKS); a mistyped one is
    a ValueError naming the setting."""
    return _networks(name, get(name))


@functools.lru_cache(maxsize=16)
def _networks(name: str, value: str) -> tuple:
    """Parsed once per value, not on every request of every screen."""
    try:
        return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in value.split(",") if n.strip())
    except ValueError as exc:
        raise ValueError(f"setting {name}: {exc}") from None


def in_networks(name: str, address: str | None) -> bool:
    """Whether `address` is in one of the ranges of the setting `name`."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in network for network in networks(name))


def get_int(name: str) -> int:
    value = get(name)
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"setting {name} must be a whole number, got {value!r}") from None


def get_float(name: str) -> float:
    value = get(name)
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"setting {name} must be a number, got {value!r}") from None


def get_pair(name: str) -> tuple[float, float]:
    """A 'first,second' threshold pair."""
    value = get(name)
    try:
        first, second = (float(part) for part in value.split(","))
    except ValueError:
        raise ValueError(f"setting {name} must be two numbers like '0.9,0.75', got {value!r}") from None
    return first, second


def public_url() -> str:
    """Where people outside the server reach it: PUBLIC_URL, else this server's own address."""
    return (get("PUBLIC_URL") or f"http://{get('HOST')}:{get('PORT')}").rstrip("/")


def database_url() -> str:
    return get("DATABASE_URL")


def is_embedded_default() -> bool:
    return "DATABASE_URL" not in os.environ or not os.environ["DATABASE_URL"]
