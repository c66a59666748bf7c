"""The security headers of every answer: a Content-Security-Policy, no-sniff, no referrer.

The policy lets scripts run only from this server's own files and the inline scripts Dash
writes into its page (the renderer and the clientside callbacks), each named by its sha256
(`Dash.csp_hashes()`): a script slipped into a page by data (an issue's title) does not run.
Styles need 'unsafe-inline': plotly and AG Grid write their own <style> elements and style
attributes. Nothing needs 'unsafe-eval'. Who may frame the wall is the setting FRAME_ANCESTORS.

No referrer is sent at all: a wall screen's address holds its token (`?screen=`), and a
Referer header would carry it into every log the browser's requests reach.
"""
from __future__ import annotations

import re

import dash
import flask

from data import settings

# A source of frame-ancestors: 'self' or 'none', a scheme (https:), or a host with an optional
# scheme, port and path; nothing that could end the directive or the header.
_SOURCE = re.compile(r"'self'|'none'|[a-z][a-z0-9+.-]*:|([a-z][a-z0-9+.-]*://)?[A-Za-z0-9*.-]+(:(\d+|\*))?(/[^\s;,']*)?")
_FRAME_OPTIONS = {"'self'": "SAMEORIGIN", "'none'": "DENY"}


def frame_ancestors(setting: str) -> str:
    """FRAME_ANCESTORS checked: a mistyped value stops the start, naming the setting."""
    sources = setting.split()
    bad = [s for s in sources if not _SOURCE.fullmatch(s)]
    if not sources or bad:
        raise ValueError(f"setting FRAME_ANCESTORS: {' '.join(bad) or 'empty'!r} is not a frame "
                         "source; use 'self', 'none' or origins such as https://portal.plant.example")
    if "'none'" in sources and len(sources) > 1:
        raise ValueError("setting FRAME_ANCESTORS: 'none' stands alone")
    return " ".join(sources)


def content_security_policy(dash_app: dash.Dash, ancestors: str) -> str:
    scripts = " ".join(["'self'", *dash_app.csp_hashes()])
    return ("default-src 'self'; "
            f"script-src {scripts}; "
            "style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; "
            "font-src 'self' data:; "
            "connect-src 'self'; "
            "object-src 'none'; "
            "base-uri 'self'; "
            "form-action 'self'; "
            f"frame-ancestors {ancestors}")


def init_app(dash_app: dash.Dash) -> None:
    ancestors = frame_ancestors(settings.get("FRAME_ANCESTORS"))
    frame_options = _FRAME_OPTIONS.get(ancestors)

    def add_headers(response: flask.Response) -> flask.Response:
        # Worked out per answer: Dash adds the clientside callbacks' scripts to its page
        # when it first draws it, and hashing a few short scripts costs microseconds.
        response.headers["Content-Security-Policy"] = content_security_policy(dash_app, ancestors)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if frame_options:
            response.headers["X-Frame-Options"] = frame_options
        return response

    dash_app.server.after_request(add_headers)
