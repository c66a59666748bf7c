"""One issue's responsibility trace (责任可追溯), /issue/<id>: which departments held it and
when, every hand-off and return, its limits, and every event with who did it, what they
wrote and who recorded it (an API source, an import, the demo, a person signed in). For a
desk or a meeting room: `?at=` shows it as it stood at an earlier instant (site time when
written without an offset), `?lang=` as on the wall.

The figures of its summary are the KPI rules' for this one issue (data/timeline.py)."""
from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import unquote

import dash
import pandas as pd
from dash import dcc, html
from flask import current_app

from dashboards import _desk
from data import figures, store, theme, timeline, timezones
from data.analysis.holding import holding_intervals
from data.words import bilingual_name, format_count, format_minutes, language, t

log = logging.getLogger(__name__)

def _tab_title(issue_id=None, **_other) -> str:
    return f"FloorLink · {_shown(unquote(issue_id or ''))}"


dash.register_page(__name__, path_template="/issue/<issue_id>", name="issue", title=_tab_title,
                   desk=True)

# An id from the address is shown back cut to this many characters.
SHOWN_ID_CHARS = 64
OUTCOME_LEVELS = {"met": theme.OK, "breached": theme.BAD}


def layout(issue_id=None, lang=None, at=None, **_other_query_params):
    # The address carries the id encoded (`<`, `&`, `/` ...), as every link to it writes it.
    issue_id = unquote(issue_id or "")
    lang = language(lang)
    shown_id = _shown(issue_id or "")
    as_of, notices = _as_of(at, timezones.utc_now(), lang)
    try:
        read = timeline.read_issue(current_app.config["FLOORLINK_DATABASE_URL"], issue_id or "", as_of)
    except timeline.DatabaseUnavailable:
        log.warning("issue %s could not be read", shown_id, exc_info=True)
        return _missing(lang, t("db_unreachable", lang), t("db_unreachable", lang))
    unusable = [left for left in read.left_out if left.table == "issues"]
    if read.timeline is None and unusable:
        return _missing(lang, t("issue_page_title", lang).format(id=shown_id),
                        t("issue_unusable", lang).format(reason=unusable[0].reason))
    if read.timeline is None:
        return _missing(lang, t("issue_not_found_title", lang),
                        t("issue_not_found_text", lang).format(value=shown_id))
    events_left_out = [left for left in read.left_out if left.table == "issue_events"]
    if events_left_out:
        notices.append(t("issue_events_left_out", lang).format(
            n=len(events_left_out), reason=events_left_out[0].reason))
    return issue_view(read.timeline, read.shifts, as_of, lang, notices, asked_at=bool(at) and not notices)


def issue_view(record, shifts, as_of: datetime, lang: str, notices: list[str],
               asked_at: bool = False) -> html.Div:
    """The page of an issue read from the database (`record`: queries.IssueTimeline)."""
    zone = timezones.site_zone()
    row = record.row
    hops = holding_intervals(record.issue, record.events, as_of, shifts)
    summary = timeline.issue_summary(record, hops, as_of)
    names = _department_names(record.events, row, lang)
    if asked_at:
        notices.insert(0, t("issue_as_of", lang).format(at=_local(as_of, zone)))
    if summary["later_events"]:
        notices.append(t("issue_later_events", lang).format(n=summary["later_events"]))
    figure = figures.responsibility_swimlane(
        _hop_rows(hops, names, as_of), _event_rows(record.events, names, as_of, lang),
        _marks(row, as_of, summary), zone=zone, lang=lang)
    return _desk.desk_page("issue", lang, t("issue_page_title", lang).format(id=row["id"]), [
        *[html.P(text, className="desk-note issue-notice") for text in notices],
        html.Section(className="desk-panel issue-summary", children=[
            html.H2(row["title"], className="issue-heading"),
            _facts(row, summary, names, lang, zone)]),
        html.Section(className="desk-panel issue-trace", children=[
            dcc.Graph(id="issue-trace-graph", className="desk-graph", figure=figure,
                      style={"height": f"{figure['layout']['height']}px"},
                      config={"displaylogo": False, "responsive": True,
                              "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}),
            html.P(t("trace_legend", lang), className="desk-note")]),
        _event_table(record.events, hops, names, as_of, lang, zone),
    ])


def _as_of(at: str | None, now: datetime, lang: str) -> tuple[datetime, list[str]]:
    """The instant the page shows: ?at= when it is a time before now, else now (and why)."""
    if not at:
        return now, []
    try:
        asked = timezones.parse_instant(at)
        # The hops are counted in nanoseconds: 1678 to 2262.
        pd.Timestamp(asked).as_unit("ns")
    except (ValueError, OverflowError):
        return now, [t("issue_bad_at", lang).format(value=_shown(at))]
    if asked > now:
        return now, [t("issue_future_at", lang).format(value=_shown(at))]
    return asked, []


def _shown(value: str) -> str:
    return value if len(value) <= SHOWN_ID_CHARS else value[:SHOWN_ID_CHARS - 1] + "…"


def _missing(lang: str, title: str, reason: str) -> html.Div:
    return _desk.desk_page("issue", lang, title, [
        html.Div(className="desk-missing issue-missing", children=[html.P(reason)])])


def _local(at, zone) -> str:
    return pd.Timestamp(at).tz_convert(zone).strftime("%Y-%m-%d %H:%M:%S")


def _department_names(events: pd.DataFrame, row: dict, lang: str) -> dict[str, str]:
    """Each department's name in the screen's language, by its code (the code when the
    department has no name)."""
    names = {row["owner_department_code"]: bilingual_name(
        {"name_zh": row["owner_name_zh"], "name_en": row["owner_name_en"]}, lang)}
    for event in events.dropna(subset=["department_code"]).itertuples():
        names[event.department_code] = bilingual_name(
            {"name_zh": _text(event.department_name_zh), "name_en": _text(event.department_name_en)}, lang)
    return {code: name or code for code, name in names.items()}


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _hop_rows(hops: pd.DataFrame, names: dict[str, str], as_of: datetime) -> list[dict]:
    at = pd.Timestamp(as_of)
    return [{"lane": names.get(h.department_code, _text(h.department_code)), "hop": int(h.hop),
             "taken_at": h.taken_at.to_pydatetime(),
             "held_until": (at if pd.isna(h.let_go_at) else h.let_go_at).to_pydatetime(),
             "held_now": bool(pd.isna(h.let_go_at)), "let_go_by": h.let_go_by,
             "returned": bool(h.returned), "held_min": float(h.held_min),
             "held_work_min": None if pd.isna(h.held_work_min) else float(h.held_work_min)}
            for h in hops.itertuples()]


def _event_rows(events: pd.DataFrame, names: dict[str, str], as_of: datetime, lang: str) -> list[dict]:
    known = events[events["at"] <= pd.Timestamp(as_of)]
    return [{"at": e.at.to_pydatetime(), "kind": e.kind,
             "lane": names.get(e.department_code) if _text(e.department_code) else None,
             "actor": _actor(e), "note": _text(e.note)} for e in known.itertuples()]


def _actor(event) -> str:
    return _person(event.actor, event.actor_name)


def _person(given, name) -> str:
    """A person's name, with the id the data gives when it is not the name itself."""
    given, name = _text(given), _text(name)
    return name if not given or name == given else f"{name} ({given})"


def _marks(row: dict, as_of: datetime, summary: dict) -> list[dict]:
    """The limits from the moment it was raised, the acknowledgement and resolution moments
    once they happened by as_of, and as_of itself while the issue is still open."""
    raised = row["raised_at"].to_pydatetime()
    marks = [{"key": "raised", "at": raised}]
    for key, minutes in (("ack_limit", summary["ack_minutes"]), ("resolve_limit", summary["resolve_minutes"])):
        if minutes is not None:
            marks.append({"key": key, "at": raised + pd.Timedelta(minutes=minutes).to_pytimedelta()})
    if summary["response_min"] is not None:
        marks.append({"key": "acknowledged", "at": row["acknowledged_at"].to_pydatetime()})
    if summary["resolution_min"] is not None:
        marks.append({"key": "resolved", "at": row["resolved_at"].to_pydatetime()})
    if summary["status"] in ("open", "acknowledged"):
        marks.append({"key": "as_of", "at": as_of})
    return marks


def _facts(row: dict, summary: dict, names: dict[str, str], lang: str, zone) -> html.Dl:
    status = t(f"status_{summary['status']}", lang)
    if summary["overdue"]:
        status += f" · {t('issue_overdue', lang)}"
    open_now = summary["status"] in ("open", "acknowledged")
    place = " · ".join(part for part in (_text(row["location_name"]) or _text(row["location_code"]),
                                         f"{t('line', lang)} {row['line']}" if _text(row["line"]) else "")
                       if part)
    facts = [
        ("status", t("issue_status", lang), status, theme.BAD if summary["overdue"] else None),
        ("type", t("issue_type", lang),
         f"{bilingual_name(row, lang, 'type_name') or row['issue_type']} · {row['severity']}", None),
        ("location", t("issue_location", lang), place or t("no_value", lang), None),
        ("raised", t("issue_raised", lang),
         " · ".join(filter(None, (_local(row["raised_at"], zone),
                                  _person(row["raised_by"], row["raised_by_name"])))), None),
        ("response", t("issue_response", lang),
         *_against_limit(summary["response_min"], summary["ack_minutes"], summary["response_outcome"],
                         summary["waited_min"] if open_now else None, lang)),
        ("resolution", t("issue_resolution", lang),
         *_against_limit(summary["resolution_min"], summary["resolve_minutes"],
                         summary["resolution_outcome"], summary["waited_min"] if open_now else None, lang)),
        ("handoffs", t("issue_handoffs", lang), format_count(summary["handoffs"]), None),
        ("returns", t("issue_returns", lang),
         format_count(summary["returns"]) + (f" · {t('ping_pong_mark', lang)}" if summary["ping_pong"] else ""),
         theme.BAD if summary["returns"] else None),
        ("holder", t("issue_holder", lang),
         names.get(summary["holder"], summary["holder"]) if summary["holder"] else t("no_value", lang), None),
    ]
    if _text(row["cause"]):
        facts.append(("cause", t("issue_cause", lang), row["cause"], None))
    return html.Dl(className="desk-facts", children=[
        html.Div(className=f"fact-{key}", children=[
            html.Dt(label), html.Dd(value, className=level or "")])
        for key, label, value, level in facts])


def _against_limit(minutes: float | None, limit: float | None, outcome: str,
                   waited: float | None, lang: str) -> tuple[str, str | None]:
    """'12 分 / 15 分 · 达标'; not done yet: how long it has waited, against the limit."""
    done = format_minutes(minutes, lang) if minutes is not None else (
        t("issue_waiting", lang).format(waited=format_minutes(waited, lang)) if waited is not None
        else t("no_value", lang))
    return (f"{done} / {format_minutes(limit, lang)} · {t('sla_' + outcome, lang)}",
            OUTCOME_LEVELS.get(outcome))


def _event_table(events: pd.DataFrame, hops: pd.DataFrame, names: dict[str, str],
                 as_of: datetime, lang: str, zone) -> html.Section:
    """Every event by as_of in the order it happened; the event that took the issue back to
    a department it had left is marked ⇄. Notes and names are text, whatever they hold."""
    known = events[events["at"] <= pd.Timestamp(as_of)]
    returns = {(h.taken_at, h.department_code) for h in hops[hops["returned"]].itertuples()}
    marked: set[tuple] = set()
    rows = []
    for e in known.itertuples():
        key = (e.at, e.department_code)
        is_return = key in returns and key not in marked
        if is_return:
            marked.add(key)
        kind = t(f"event_{e.kind}", lang)
        department = names.get(e.department_code, "") if _text(e.department_code) else ""
        rows.append(html.Tr(className="event-row return" if is_return else "event-row", children=[
            html.Td(_local(e.at, zone), className="nowrap"),
            html.Td([html.Span(t("return_mark", lang) + " ", className="return-mark"), kind]
                    if is_return else kind, className="nowrap"),
            html.Td(department, className="nowrap"), html.Td(_actor(e)), html.Td(_text(e.note)),
            html.Td(store.writer_shown(e.source) if _text(e.source) else t("no_value", lang),
                    className="event-recorded-by")]))
    head = html.Tr([html.Th(t(key, lang)) for key in
                    ("col_time", "col_event", "department", "col_actor", "col_note", "col_recorded_by")])
    return html.Section(className="desk-panel issue-events", children=[
        html.H2(t("issue_events_title", lang).format(n=format_count(len(known)))),
        html.Table(className="desk-table", children=[html.Thead(head), html.Tbody(rows)])])
