"""The delivery log (/deliveries), for admins: every message owed to a channel, newest first,
with its status, attempts, next attempt, when and in which request it was sent, and the last
error; the counts of the last day and the sender's lag on top. A desk page, read every few
seconds (data/notify/deliveries.py).

The address is the filter (status, channel, issue): a change of filter goes to a new address,
so a link (an issue's deliveries) and the language switch keep it. Its layout holds no
delivery: the rows and the channels come only from its own callback, whose outputs the route
table opens for admins alone (the layout is served to anyone who may see a page)."""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

import dash
from dash import Input, Output, State, callback, dcc, html, no_update
from flask import current_app

from dashboards import _desk, _ui
from data import timezones
from data.notify import deliveries
from data.words import language, t

log = logging.getLogger(__name__)

dash.register_page(__name__, path="/deliveries", name="deliveries",
                   title="FloorLink · 消息投递 / Deliveries", desk=True)

READ_EVERY_MS = 2000
COLUMNS = ("created_at", "issue", "step", "channel", "status", "attempts", "next_attempt", "sent",
           "title", "error")
# The sender's lag is amber past a minute and red past five: it should be seconds.
LAG_WARN = timedelta(minutes=1)
LAG_BAD = timedelta(minutes=5)
# An issue number typed into the filter is cut to the column's length.
ISSUE_CHARS = 64
# An error is shown to this many characters; the rest is in its tooltip.
ERROR_CHARS = 160
# One read of the log at a time per worker, as the fleet page does.
_reading = threading.Lock()


def asked_filter(status=None, channel=None, issue=None) -> dict:
    """The filter the address asks for, made safe: an unknown status is no filter."""
    return {"status": status if status in deliveries.STATUSES else None,
            "channel": (channel or "").strip()[:64] or None,
            "issue": (issue or "").strip()[:ISSUE_CHARS] or None}


def layout(lang=None, status=None, channel=None, issue=None, **_params):
    lang = language(lang)
    asked = asked_filter(status, channel, issue)
    every = t("deliveries_all", lang)
    return _desk.desk_page("deliveries", lang, t("deliveries_title", lang), [
        dcc.Interval(id="deliveries-refresh", interval=READ_EVERY_MS),
        dcc.Location(id="deliveries-nav", refresh="callback-nav"),
        dcc.Store(id="deliveries-scope", data={"lang": lang, **asked}),
        dcc.Store(id="deliveries-sent", data={}),
        html.Div(id="deliveries-counts", className="deliveries-counts"),
        html.Div(className="deliveries-filters desk-panel", children=[
            html.Div(className="deliveries-filter", children=[
                html.Label(t("deliveries_filter_status", lang), htmlFor="deliveries-status"),
                dcc.Dropdown(id="deliveries-status", value=asked["status"], placeholder=every,
                             options=[{"label": t(f"deliveries_status_{s}", lang), "value": s}
                                      for s in deliveries.STATUSES], className="deliveries-dropdown")]),
            html.Div(className="deliveries-filter", children=[
                html.Label(t("deliveries_filter_channel", lang), htmlFor="deliveries-channel"),
                dcc.Dropdown(id="deliveries-channel", value=asked["channel"], placeholder=every,
                             options=[asked["channel"]] if asked["channel"] else [],
                             className="deliveries-dropdown")]),
            html.Div(className="deliveries-filter", children=[
                html.Label(t("deliveries_filter_issue", lang), htmlFor="deliveries-issue"),
                dcc.Input(id="deliveries-issue", type="text", value=asked["issue"] or "", debounce=True,
                          placeholder=t("deliveries_issue_hint", lang), className="deliveries-issue-input")]),
        ]),
        html.P(id="deliveries-note", className="desk-note deliveries-note"),
        html.Section(className="desk-panel deliveries-panel", children=[
            html.Table(className="desk-table deliveries-table", children=[
                html.Thead(html.Tr([html.Th(t(f"deliveries_col_{c}", lang)) for c in COLUMNS])),
                html.Tbody(id="deliveries-rows")])]),
    ])


@callback(Output("deliveries-counts", "children"), Output("deliveries-note", "children"),
          Output("deliveries-rows", "children"), Output("deliveries-channel", "options"),
          Output("deliveries-sent", "data"),
          Input("deliveries-refresh", "n_intervals"), State("deliveries-scope", "data"),
          State("deliveries-sent", "data"))
def refresh(_n, scope, sent):
    if not _reading.acquire(blocking=False):
        return (no_update,) * 5
    try:
        return log_view(current_app.config["FLOORLINK_DATABASE_URL"], scope or {}, sent,
                        timezones.utc_now())
    finally:
        _reading.release()


def log_view(database_url: str, scope: dict, sent: dict | None, as_of: datetime) -> tuple:
    """The page at `as_of`: counts, note, rows and the channels to filter by, each sent only
    when it changed (a row only when its delivery did), and what the page now has."""
    lang = language(scope.get("lang"))
    asked = asked_filter(scope.get("status"), scope.get("channel"), scope.get("issue"))
    sent = dict(sent or {})
    try:
        read = deliveries.read(database_url, as_of, status=asked["status"], channel=asked["channel"],
                               issue_id=asked["issue"])
    except deliveries.SourceUnavailable:
        log.warning("the deliveries could not be read", exc_info=True)
        note = _ui.send(sent, "note", _ui.rendered(t("deliveries_db_down", lang)))
        return no_update, note, no_update, no_update, sent
    if not read.kept:
        return (_ui.send(sent, "counts", _ui.rendered([])),
                _ui.send(sent, "note", _ui.rendered(t("deliveries_not_kept", lang))),
                _ui.send(sent, "rows", _ui.rendered([])), no_update, sent)
    counts = counts_bar(read.summary, lang)
    note = log_note(read.listing, lang, any(asked.values()))
    rows = [delivery_row(row, as_of, lang) for row in read.listing.rows]
    channels = sorted({*read.channels, *([asked["channel"]] if asked["channel"] else [])})
    return (_ui.send(sent, "counts", _ui.rendered(counts)), _ui.send(sent, "note", _ui.rendered(note)),
            _ui.send(sent, "rows", _ui.rendered(rows)),
            _ui.send(sent, "channels", _ui.rendered([{"label": c, "value": c} for c in channels])), sent)


def counts_bar(summary: deliveries.Summary, lang: str) -> list:
    """The last day's deliveries by status, the sender's lag, the held ones, each channel's
    counts, and when it was read."""
    hours = int(deliveries.WINDOW.total_seconds() // 3600)
    chips = [html.Span(t("deliveries_window", lang).format(hours=hours), className="deliveries-window")]
    chips += [html.Span(className=f"deliveries-count status-{status}" + ("" if n else " zero"),
                        children=[html.Span(f"{n:,}", className="n"), t(f"deliveries_status_{status}", lang)])
              for status, n in summary.by_status.items()]
    lag = summary.oldest_pending
    level = "none" if lag is None else "bad" if lag >= LAG_BAD else "warn" if lag >= LAG_WARN else "ok"
    chips.append(html.Span(className=f"deliveries-count lag lag-{level}", children=[
        html.Span(t("deliveries_lag_none", lang) if lag is None else age(lag, lang), className="n"),
        t("deliveries_lag", lang)]))
    if summary.held:
        chips.append(html.Span(t("deliveries_held", lang).format(n=f"{summary.held:,}"),
                               className="deliveries-held"))
    chips.append(html.Span(t("deliveries_as_of", lang).format(when=_when(summary.as_of, summary.as_of)),
                           className="deliveries-as-of"))
    by_channel = [html.Span(className="deliveries-channel-count", children=[
        html.Span(channel, className="name"),
        *[html.Span(f"{n:,} {t(f'deliveries_status_{status}', lang)}", className=f"status-{status}")
          for status, n in counts.items() if n]]) for channel, counts in summary.by_channel.items()]
    return [html.Div(chips, className="deliveries-totals"),
            *([html.Div(by_channel, className="deliveries-channels")] if by_channel else [])]


def log_note(listing: deliveries.Listing, lang: str, filtered: bool):
    """What the page says beside its rows: nothing yet, nothing matching, or the rows the
    limit leaves out."""
    if listing.hidden:
        return t("deliveries_hidden", lang).format(n=f"{listing.hidden:,}", limit=f"{deliveries.LIMIT:,}")
    if not listing.rows:
        return t("deliveries_none_match" if filtered else "deliveries_none", lang)
    return None


def delivery_row(row: deliveries.Listed, as_of: datetime, lang: str) -> html.Tr:
    """One delivery: every value from the database is a text child, shown as text whatever
    it holds."""
    sent = []
    if row.sent_at is not None:
        sent.append(_when(row.sent_at, as_of))
    if row.in_digest:
        sent.append(html.Span(t("deliveries_in_digest", lang).format(id=row.sent_in, n=row.carried),
                              className="deliveries-digest"))
    error = row.last_error or ""
    cells = {
        "created_at": _when(row.created_at, as_of),
        "issue": (dcc.Link(row.issue_id, href=f"/issue/{quote(row.issue_id, safe='')}?lang={lang}")
                  if row.issue_id is not None else
                  dcc.Link(row.step, href=f"/review?week={quote(row.step, safe='')}&lang={lang}")),
        "step": t("deliveries_ping_pong", lang) if row.step.startswith("PP@") else row.step,
        "channel": row.channel_code,
        "status": html.Span(t(f"deliveries_status_{row.status}", lang), className="deliveries-status-name"),
        "attempts": f"{row.attempts:,}",
        "next_attempt": _when(row.next_attempt_at, as_of) if row.status == "pending" else "",
        "sent": sent,
        "title": row.title if row.title is not None else html.Span(t("deliveries_unreadable", lang),
                                                                   className="deliveries-unreadable"),
        "error": html.Span(error if len(error) <= ERROR_CHARS else error[:ERROR_CHARS - 1] + "…",
                           title=error),
    }
    return html.Tr(className=f"deliveries-row status-{row.status}", children=[
        html.Td(cells[c], className=f"deliveries-{c}") for c in COLUMNS])


@callback(Output("deliveries-nav", "search"),
          Input("deliveries-status", "value"), Input("deliveries-channel", "value"),
          Input("deliveries-issue", "value"), State("deliveries-scope", "data"),
          prevent_initial_call=True)
def navigate(status, channel, issue, scope):
    """A change of filter goes to the address that names it."""
    scope = scope or {}
    asked = asked_filter(status, channel, issue)
    if asked == asked_filter(scope.get("status"), scope.get("channel"), scope.get("issue")):
        return no_update
    return "?" + urlencode({"lang": language(scope.get("lang")),
                            **{name: value for name, value in asked.items() if value}})


def age(span: timedelta, lang: str) -> str:
    """A lag as the board writes a duration, to the second below an hour: 3分12秒 / 3 min 12 s."""
    total = max(0, int(span.total_seconds()))
    days, hours, minutes, seconds = total // 86400, total % 86400 // 3600, total % 3600 // 60, total % 60
    if days:
        return t("duration_dh", lang).format(d=f"{days:,}", h=hours)
    if hours:
        return t("duration_hm", lang).format(h=hours, m=minutes)
    return t("duration_ms", lang).format(m=minutes, s=seconds)


def _when(instant: datetime, as_of: datetime) -> str:
    """An instant in site time: its time of day on the day of `as_of`, else its date too."""
    local, today = timezones.to_site(instant), timezones.to_site(as_of)
    return local.strftime("%H:%M:%S" if local.date() == today.date() else "%Y-%m-%d %H:%M")
