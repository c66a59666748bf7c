"""The route table: every door of the app and the least role that opens it.

One table for the Flask routes, the Dash pages and the outputs of the Dash callbacks, kept
equal to the table in docs/security.md by a test, which also walks the running app and fails
on any route, page or callback output missing here. A callback opens for the highest role any
of its outputs needs; a door not in the table opens for nobody (data/auth/web.py enforces).

`without_signin` says what a deployment without any user (sign-in off) does with the door:
"open" as before sign-in existed, or "refused" with a message saying how to turn sign-in on.
"""
from __future__ import annotations

from dataclasses import dataclass

from data.models import ROLES

# Below every role: the files and the sign-in page a browser needs before anyone is known.
ANYONE = "anyone"
# The ingest API checks its own per-source tokens (docs/api.md); people and screens never open it.
API_TOKEN = "api token"
# A signed acknowledgement link (data/notify/links.py) opens its own phone page for whoever
# holds it; the page checks the link's signature, expiry and single use itself.
ACK_LINK = "ack link"
LEVELS = {ANYONE: 0, **{role: rank for rank, role in enumerate(ROLES, start=1)}}
KINDS = ("route", "page", "output")


@dataclass(frozen=True)
class Door:
    kind: str           # "route" (a Flask rule), "page" (a Dash page path), "output" (a callback output's component id)
    name: str
    role: str
    without_signin: str  # "open" or "refused"


def _doors(kind: str, role: str, names: str, without_signin: str = "open") -> tuple[Door, ...]:
    return tuple(Door(kind, name, role, without_signin) for name in names.split())


DOORS: tuple[Door, ...] = (
    *_doors("route", ANYONE, "/static/<path:filename> /assets/<path:filename> "
            "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path> "
            "/_favicon.ico /_reload-hash /signin /signout"),
    # The page routes open for the page asked (the pages below); a callback for its outputs.
    *_doors("route", "viewer", "/ /<path:path> /_dash-layout /_dash-dependencies "
            "/_dash-update-component"),
    *_doors("route", "admin", "/audit", "refused"),
    # The floor's plain pages: the andon at each station and its QR codes (raise, acknowledge),
    # a photo taken there, and the phone page an acknowledgement link opens.
    *_doors("route", "operator", "/andon /andon/qr /andon/<location_code> /andon/<location_code>/ack"),
    *_doors("route", "viewer", "/andon/photo/<int:photo_id>"),
    *_doors("route", ACK_LINK, "/ack/<token>"),
    *_doors("route", API_TOKEN, "/api/v1/issues /api/v1/issues/<issue_id>/events /api/v1/movements "
            "/api/v1/batch /api/v1/issues/<issue_id> /api/v1/openapi.json /api/v1/ "
            "/api/v1/<path:rest>"),
    *_doors("page", "viewer", "/ /issues /material /explorer /issue/<issue_id> /review /404"),
    # The fleet of wall screens: who shows what, and which have gone dark.
    *_doors("page", "admin", "/fleet", "refused"),
    *_doors("output", "admin", "fleet-counts fleet-note fleet-rows fleet-sent", "refused"),
    # The delivery log: every message owed to a channel, its attempts and errors.
    *_doors("page", "admin", "/deliveries", "refused"),
    *_doors("output", "admin", "deliveries-counts deliveries-note deliveries-rows deliveries-channel "
            "deliveries-sent deliveries-nav", "refused"),
    # The wall's shell and pages: reads only.
    *_doors("output", "viewer", "wall-title wall-nav wall-config wall-root wall-scope wall-params "
            "wall-replay wall-clock wall-updated stale-banner wall-status-dot wall-now-showing url "
            "wall-data-errors wall-quiet wall-status tile-slot desk-lang-zh desk-lang-en "
            "_pages_content _pages_store _pages_dummy"),
    *_doors("output", "viewer", "overview-tiles overview-board-data overview-scoreboard-data "
            "overview-star overview-material-data overview-trend-data overview-notice overview-sent "
            "overview-refresh overview-board-rows overview-board-pager overview-scoreboard "
            "overview-scoreboard-pager overview-material overview-material-pager overview-trend"),
    *_doors("output", "viewer", "issues-board-data issues-notice issues-sent issues-refresh "
            "issues-board-rows issues-board-pager"),
    *_doors("output", "viewer", "material-tiles material-stagnant-data material-shortages-data "
            "material-stages-data material-notice material-sent material-refresh material-stagnant "
            "material-stagnant-pager material-shortages material-shortages-pager material-stages"),
    *_doors("output", "viewer", "explorer-flow explorer-matrix explorer-pairs explorer-held "
            "explorer-heat_raised explorer-heat_response explorer-pareto explorer-wow explorer-ageing "
            "explorer-unresolved explorer-xmr explorer-summary explorer-nav explorer-input-error "
            "explorer-drill explorer-list-what explorer-scrolled explorer-grid"),
    # The explorer's CSV/XLSX of the issue list: recorded in the audit log.
    *_doors("output", "manager", "explorer-download"),
    # The weekly review: its pack and weeks read like the explorer; its PDF/XLSX/HTML recorded
    # like the explorer's files; its action register changed by a signed-in manager alone.
    *_doors("output", "viewer", "review-body review-nav"),
    *_doors("output", "manager", "review-download"),
    *_doors("output", "manager", "review-register review-saved review-add-error review-change-error "
            "review-add review-change-action review-change-status review-change-evidence", "refused"),
)

_BY_KEY = {(door.kind, door.name): door for door in DOORS}
EXPORTS = frozenset({"explorer-download", "review-download"})


def door(kind: str, name: str) -> Door | None:
    return _BY_KEY.get((kind, name))


def output_name(component_id) -> str:
    """The table's name of a callback output's component: its id, or the `type` of a
    pattern-matching id."""
    if isinstance(component_id, dict):
        return str(component_id.get("type", ""))
    return str(component_id)


def strictest(doors: list[Door | None]) -> Door | None:
    """The door a callback with these outputs is: the highest role among them; None (opens
    for nobody) when any output is missing from the table."""
    if not doors or any(d is None for d in doors):
        return None
    return max(doors, key=lambda d: (LEVELS.get(d.role, 0), d.without_signin == "refused"))


def opens_for(door: Door, role: str | None) -> bool:
    """Whether someone holding `role` (None: nobody known) may pass `door`."""
    if door.role in (ANYONE, API_TOKEN, ACK_LINK):
        return True
    return role is not None and LEVELS[role] >= LEVELS[door.role]
