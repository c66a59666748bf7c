"""The wall's charts as plain plotly figure dicts, so a page and a report draw the same chart.

Colours come from the one palette and rule (data/theme.py), words from the one table
(data/words.py). Sizes are for a 1080-pixel-high screen read from five metres: no text under
28 px. A screen of another height scales the fonts and margins by its height / 1080
(assets/wall.js `scaleFigure`), so 4K shows the same chart twice as sharp.
"""
from __future__ import annotations

import html
from datetime import datetime, timedelta, tzinfo

from data import theme
from data.words import format_duration, t

FONT_PX = 28
# Labels on a category axis of days: one every this many days, ending on the last day.
DAY_TICK_STEP = 5


def _layout(**extra) -> dict:
    """A transparent figure on the wall's panel, in its font, without plotly's template."""
    return {"paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "font": {"family": theme.FONT_FAMILY, "size": FONT_PX, "color": theme.PALETTE["muted"]},
            "margin": {"l": 8, "r": 8, "t": 8, "b": 8, "pad": 4}, "showlegend": False, **extra}


def _axis(**extra) -> dict:
    """An axis whose labels push the plot aside rather than overlap it."""
    return {"gridcolor": theme.PALETTE["edge"], "zeroline": False, "automargin": True,
            "tickfont": {"size": FONT_PX}, "fixedrange": True, **extra}


def no_data(lang: str) -> dict:
    """An empty chart: no axes (so no invented -1..1 scale) and a line that says so."""
    hidden = {"visible": False}
    return {"data": [], "layout": _layout(xaxis=hidden, yaxis=hidden, annotations=[{
        "text": t("no_data", lang), "showarrow": False, "xref": "paper", "yref": "paper",
        "x": 0.5, "y": 0.5, "font": {"size": FONT_PX + 6, "color": theme.PALETTE["muted"]}}])}


def response_trend(days: list[str], medians: list[float | None], goal_min: float,
                   lang: str) -> dict:
    """Daily median response as bars coloured by the tile's rule, with the goal dashed."""
    if all(m is None for m in medians):
        return no_data(lang)
    colours = [theme.color(theme.level("median_response_min", m)) for m in medians]
    ticks = days[::-DAY_TICK_STEP][::-1]
    return {"data": [{"type": "bar", "x": days, "y": medians, "marker": {"color": colours},
                      "hoverinfo": "skip"}],
            "layout": _layout(
                bargap=0.25,
                xaxis=_axis(type="category", tickmode="array", tickvals=ticks, tickangle=0,
                            showgrid=False),
                yaxis=_axis(rangemode="tozero", nticks=4),
                shapes=[{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y",
                         "y0": goal_min, "y1": goal_min,
                         "line": {"color": theme.PALETTE[theme.OK], "dash": "dash", "width": 3}}])}


def lots_by_stage(stages: list[dict], lang: str) -> dict:
    """Lots on hand per stage (`{"kind", "lots", "stagnant"}` each) as bars: flowing in the
    accent colour, stagnant in amber as everywhere on the wall (the panel's title says so).
    Each stage's counts are written under its name, where no bar can cover them."""
    if not any(s["lots"] for s in stages):
        return no_data(lang)
    labels = [t("stage_" + s["kind"], lang) + "<br>" +
              t("stage_lots_stagnant" if s["stagnant"] else "stage_lots", lang).format(
                  lots=f"{s['lots']:,}", stagnant=f"{s['stagnant']:,}") for s in stages]

    def bars(name: str, values: list[int], colour: str) -> dict:
        return {"type": "bar", "orientation": "h", "name": name, "y": labels, "x": values,
                "marker": {"color": colour}, "hoverinfo": "skip"}

    return {"data": [bars(t("in_flow", lang), [s["lots"] - s["stagnant"] for s in stages],
                          theme.PALETTE["accent"]),
                     bars(t("stagnant", lang), [s["stagnant"] for s in stages],
                          theme.color(theme.WARN))],
            "layout": _layout(
                barmode="stack", bargap=0.35,
                xaxis=_axis(rangemode="tozero", nticks=4, side="top", showticklabels=False),
                yaxis=_axis(autorange="reversed", showgrid=False, ticklabelstandoff=12))}


# ---- desk pages: read at a desk or on a projector, 15 px text and more ----------------------

DESK_FONT_PX = 15
# The swimlane's pixels: per lane, and around the lanes (title, time axis, the marks' labels).
LANE_PX, LANE_FRAME_PX, MARK_ROW_PX = 64, 150, 24
# Marks on the trace: word, colour, dash. Limits dashed, moments solid.
TRACE_MARKS = {
    "raised": ("mark_raised", "muted", "dot"),
    "ack_limit": ("mark_ack_limit", theme.WARN, "dash"),
    "resolve_limit": ("mark_resolve_limit", theme.BAD, "dash"),
    "acknowledged": ("mark_acknowledged", theme.OK, "solid"),
    "resolved": ("mark_resolved", theme.OK, "solid"),
    "as_of": ("mark_as_of", "accent", "dot"),
}
# Event markers on their department's lane.
EVENT_SYMBOLS = {"raised": "circle", "acknowledged": "diamond", "reassigned": "triangle-right",
                 "escalated": "triangle-up", "commented": "square", "resolved": "star",
                 "reopened": "x", "closed": "circle-x"}
# A limit further past the last activity than this share of the trace's span is named at the
# right edge instead of stretching the time axis until the bars are slivers.
LIMIT_REACH = 0.5
NOTE_HOVER_CHARS = 80
# A bar shorter than this share of the time axis is too short to carry its hop's words.
BAR_TEXT_SHARE = 0.035


def _desk_layout(**extra) -> dict:
    return {"paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "font": {"family": theme.FONT_FAMILY, "size": DESK_FONT_PX, "color": theme.PALETTE["text"]},
            "hoverlabel": {"font": {"family": theme.FONT_FAMILY, "size": DESK_FONT_PX,
                                    "color": theme.PALETTE["text"]},
                           "bgcolor": theme.PALETTE["panel"], "bordercolor": theme.PALETTE["accent"],
                           "align": "left"},
            "showlegend": False, **extra}


def plain(text) -> str:
    """Text from data inside a figure: plotly reads <b>, <br> and the like as markup, so
    they are written as entities and show as typed."""
    return html.escape("" if text is None else str(text), quote=False)


def responsibility_swimlane(hops: list[dict], events: list[dict], marks: list[dict], *,
                            zone: tzinfo, lang: str) -> dict:
    """One issue's trace: a lane per department that held it (first holder on top), a bar per
    hop (returns red and marked ⇄, a hop still held hatched), its events as markers on their
    department's lane, and `marks` (limits dashed, moments solid) as labelled vertical lines.

    hops: {lane, hop, taken_at, held_until, held_now, let_go_by, returned, held_min,
    held_work_min}; events: {at, lane, kind, actor, note}; marks: {key (TRACE_MARKS), at}.
    Instants are aware; the axis is in `zone`, the site's time."""
    title = {"text": t("trace_title", lang).format(tz=plain(getattr(zone, "key", str(zone)))),
             "x": 0, "xanchor": "left", "y": 1, "yanchor": "top", "pad": {"t": 8},
             "font": {"size": DESK_FONT_PX + 3, "color": theme.PALETTE["text"]}}
    if not hops:
        hidden = {"visible": False}
        return {"data": [], "layout": _desk_layout(
            height=LANE_FRAME_PX + LANE_PX, title=title, xaxis=hidden, yaxis=hidden,
            annotations=[{"text": t("trace_nothing_held", lang), "showarrow": False, "xref": "paper",
                          "yref": "paper", "x": 0.5, "y": 0.5,
                          "font": {"size": DESK_FONT_PX + 3, "color": theme.PALETTE["muted"]}}])}

    def local(at: datetime) -> str:
        return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    lanes = list(dict.fromkeys(h["lane"] for h in hops))
    first = min(h["taken_at"] for h in hops)
    last = max([h["held_until"] for h in hops] + [e["at"] for e in events])
    reach = last + (last - first) * LIMIT_REACH
    shown = [m for m in marks if m["at"] <= reach]
    last = max([last] + [m["at"] for m in shown])
    pad = max((last - first) * 0.02, timedelta(minutes=1))
    start, end = first - pad, last + pad
    one_day = start.astimezone(zone).date() == end.astimezone(zone).date()
    clock = "%H:%M" if one_day else "%m-%d %H:%M"

    def bar_hover(h: dict) -> str:
        until = t("hover_still_held", lang) if h["held_now"] else \
            f"{t('hover_let_go', lang)} {h['held_until'].astimezone(zone):%m-%d %H:%M} · " \
            f"{t('let_go_' + h['let_go_by'], lang)}"
        held = t("hover_held", lang).format(held=format_duration(h["held_min"], lang))
        if h["held_work_min"] is not None:
            held += " · " + t("hover_held_work", lang).format(
                held=format_duration(h["held_work_min"], lang))
        lines = [f"{plain(h['lane'])} · {t('hop_n', lang).format(hop=h['hop'])}",
                 f"{t('hover_taken', lang)} {h['taken_at'].astimezone(zone):%m-%d %H:%M}", until, held]
        if h["returned"]:
            lines.append(t("hover_return", lang))
        return "<br>".join(lines)

    span_ms = (end - start).total_seconds() * 1000

    def held_ms(h: dict) -> float:
        return (h["held_until"] - h["taken_at"]).total_seconds() * 1000

    # A bar too short for its words carries only its return mark, outside it; hover says all.
    wide = [held_ms(h) >= BAR_TEXT_SHARE * span_ms for h in hops]
    red, ink = theme.color(theme.BAD), theme.PALETTE["background"]
    bars = {"type": "bar", "orientation": "h", "y": [h["lane"] for h in hops],
            "base": [local(h["taken_at"]) for h in hops], "x": [held_ms(h) for h in hops],
            "marker": {"color": [red if h["returned"] else theme.PALETTE["accent"] for h in hops],
                       "line": {"color": theme.PALETTE["text"], "width": 1},
                       "pattern": {"shape": ["/" if h["held_now"] else "" for h in hops],
                                   "fillmode": "overlay", "fgcolor": ink, "fgopacity": 0.5,
                                   "solidity": 0.3}},
            "text": [("⇄ " if h["returned"] else "") + t("hop_n", lang).format(hop=h["hop"]) if w
                     else ("⇄" if h["returned"] else "") for h, w in zip(hops, wide)],
            "textposition": ["inside" if w else "outside" for w in wide],
            "insidetextanchor": "middle", "constraintext": "none", "cliponaxis": False,
            "textfont": {"size": DESK_FONT_PX + 1,
                         "color": ["#ffffff" if h["returned"] else ink for h in hops]},
            "outsidetextfont": {"size": DESK_FONT_PX + 3, "color": red},
            "hovertext": [bar_hover(h) for h in hops], "hoverinfo": "text", "width": 0.6}
    dots = [e for e in events if e["lane"] in lanes]
    markers = {"type": "scatter", "mode": "markers", "x": [local(e["at"]) for e in dots],
               "y": [e["lane"] for e in dots],
               "marker": {"symbol": [EVENT_SYMBOLS.get(e["kind"], "circle") for e in dots],
                          "size": 13, "color": theme.PALETTE["star"],
                          "line": {"color": theme.PALETTE["background"], "width": 1.5}},
               "hovertext": [_event_hover(e, zone, lang) for e in dots], "hoverinfo": "text"}
    shapes, labels = _trace_marks(shown, local, lang, zone, span=(start, end))
    beyond = [m for m in marks if m["at"] > reach]
    if beyond:
        labels.append({"xref": "paper", "yref": "paper", "x": 1, "y": 0, "xanchor": "right",
                       "yanchor": "top", "yshift": -44, "showarrow": False,
                       "font": {"size": DESK_FONT_PX, "color": theme.PALETTE["muted"]},
                       "text": " · ".join(t("mark_beyond", lang).format(
                           label=t(TRACE_MARKS[m["key"]][0], lang),
                           time=f"{m['at'].astimezone(zone):%m-%d %H:%M}") for m in beyond)})
    rows = 1 + max([a.get("_row", 0) for a in labels] + [0])
    for label in labels:
        label.pop("_row", None)
    return {"data": [bars, markers], "layout": _desk_layout(
        height=LANE_FRAME_PX + LANE_PX * len(lanes) + MARK_ROW_PX * rows,
        margin={"l": 12, "r": 24, "t": 44 + MARK_ROW_PX * rows, "b": 64},
        title=title,
        xaxis={"type": "date", "range": [local(start), local(end)], "tickformat": clock,
               "gridcolor": theme.PALETTE["edge"], "zeroline": False, "automargin": True,
               "tickfont": {"size": DESK_FONT_PX}, "title": {"text": t("trace_axis", lang)}},
        yaxis={"type": "category", "categoryorder": "array", "categoryarray": lanes,
               "autorange": "reversed", "automargin": True, "showgrid": False,
               "tickvals": lanes, "ticktext": [plain(lane) for lane in lanes],
               "tickfont": {"size": DESK_FONT_PX + 1}, "fixedrange": True},
        bargap=0.3, shapes=shapes, annotations=labels, hovermode="closest")}


def _event_hover(event: dict, zone: tzinfo, lang: str) -> str:
    lines = [f"{event['at'].astimezone(zone):%m-%d %H:%M:%S} · {t('event_' + event['kind'], lang)}"]
    if event.get("actor"):
        lines.append(plain(event["actor"]))
    note = event.get("note") or ""
    if note:
        lines.append(plain(note if len(note) <= NOTE_HOVER_CHARS else note[:NOTE_HOVER_CHARS - 1] + "…"))
    return "<br>".join(lines)


def _trace_marks(marks: list[dict], local, lang: str, zone: tzinfo,
                 span: tuple[datetime, datetime]) -> tuple[list[dict], list[dict]]:
    """The marks' lines, and their labels above the plot, each in the first row where it does
    not run into the label before it."""
    shapes, labels, row_ends = [], [], []
    width = (span[1] - span[0]) or timedelta(minutes=1)
    for mark in sorted(marks, key=lambda m: m["at"]):
        word, colour, dash = TRACE_MARKS[mark["key"]]
        colour = theme.PALETTE.get(colour, colour)
        text = f"{t(word, lang)} {mark['at'].astimezone(zone):%H:%M}"
        place = (mark["at"] - span[0]) / width
        # A label's width as a share of the plot: some 9 px a character on a 1,700 px plot.
        reach = len(text) * (2 if lang == "zh" else 1) * 9 / 1700
        row = next((i for i, taken_to in enumerate(row_ends) if place - reach / 2 > taken_to),
                   len(row_ends))
        if row == len(row_ends):
            row_ends.append(0.0)
        row_ends[row] = place + reach / 2
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": local(mark["at"]),
                       "x1": local(mark["at"]), "y0": 0, "y1": 1,
                       "line": {"color": colour, "width": 2, "dash": dash}})
        labels.append({"xref": "x", "yref": "paper", "x": local(mark["at"]), "y": 1,
                       "yanchor": "bottom", "yshift": 4 + MARK_ROW_PX * row, "showarrow": False,
                       "text": text, "font": {"size": DESK_FONT_PX, "color": colour},
                       "bgcolor": theme.PALETTE["background"], "_row": row})
    return shapes, labels
