"""The explorer's charts as plain plotly figure dicts, drawn from the frames of data/analysis.

Every chart has a title that names its unit, words in the page's language and hover text
that reads as a sentence. Text from the data (names, causes, codes) is escaped, so plotly
shows it as written and never as markup. Each clickable mark carries its mark in
`customdata[0]` (a data.explorer.state.Mark token), which is all the page needs to drill.
Sizes are for a desk monitor or a meeting-room projector (the desk pages' type), colours
those of the wall (data/theme.py).
"""
from __future__ import annotations

import math
from datetime import date
from html import escape
from typing import Iterable, Sequence

import pandas as pd

from data import theme
from data.explorer.state import NO_VALUE, Mark
from data.words import bilingual_name, format_minutes, format_percent, t

FONT_PX = 14
TITLE_PX = 17
# A legend in a row at the top right, between the title and the plot; one beside the plot
# for a long list (the holders of the open issues).
TOP_LEGEND = {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.01, "yanchor": "bottom",
              "font": {"size": FONT_PX}}
SIDE_LEGEND = {"orientation": "v", "x": 1.01, "xanchor": "left", "y": 1, "yanchor": "top",
               "font": {"size": FONT_PX}}
LEGEND_MARGIN = {"l": 12, "r": 12, "t": 84, "b": 12, "pad": 2}
# Colours of a series that is not a level: departments, hops, the t of "unresolved after".
SERIES = ("#38bdf8", "#a78bfa", "#f472b6", "#fb923c", "#facc15", "#4ade80", "#2dd4bf",
          "#60a5fa", "#e879f9", "#94a3b8")
RETURN_COLOUR = theme.PALETTE[theme.BAD]
WEEKDAYS = ("weekday_1", "weekday_2", "weekday_3", "weekday_4", "weekday_5", "weekday_6",
            "weekday_7")


def _esc(text) -> str:
    return escape(str(text), quote=False)


class Names:
    """How the explorer names a value of a dimension in a language: departments and issue
    types by their names in the database, locations by name (by code in English, as the
    plant names its places in Chinese), the rest as they are; no value as such."""

    def __init__(self, reference: dict, lang: str):
        self.reference, self.lang = reference, lang

    def value(self, dimension: str, value) -> str:
        if value is None or value == NO_VALUE or (isinstance(value, float) and math.isnan(value)):
            return t("explorer_no_value", self.lang)
        value = str(value)
        if dimension == "department":
            return bilingual_name(self.reference["departments"].get(value, {}), self.lang) or value
        if dimension == "issue_type":
            return bilingual_name(self.reference["issue_types"].get(value, {}), self.lang) or value
        if dimension == "location" and self.lang == "zh":
            return self.reference["locations"].get(value, {}).get("name") or value
        return value

    def department(self, code) -> str:
        return self.value("department", code)

    def dimension(self, dimension: str) -> str:
        return t(f"explorer_dim_{dimension}", self.lang)

    def dimension_in_text(self, dimension: str) -> str:
        """A dimension's name inside a sentence ("Pareto by issue type")."""
        name = self.dimension(dimension)
        return name.lower() if self.lang == "en" else name


def _layout(title: str, **extra) -> dict:
    muted = theme.PALETTE["muted"]
    return {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "y": 1, "yref": "container",
                  "yanchor": "top", "pad": {"t": 10},
                  "font": {"size": TITLE_PX, "color": theme.PALETTE["text"]}},
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": theme.FONT_FAMILY, "size": FONT_PX, "color": muted},
        "margin": {"l": 12, "r": 12, "t": 56, "b": 12, "pad": 2}, "showlegend": False,
        "hoverlabel": {"font": {"family": theme.FONT_FAMILY, "size": FONT_PX},
                       "bgcolor": theme.PALETTE["panel"], "bordercolor": theme.PALETTE["accent"]},
        "legend": TOP_LEGEND, **extra}


def _axis(title: str | None = None, **extra) -> dict:
    axis = {"gridcolor": theme.PALETTE["edge"], "zeroline": False, "automargin": True,
            "tickfont": {"size": FONT_PX}, "fixedrange": True, **extra}
    if title:
        axis["title"] = {"text": title, "font": {"size": FONT_PX}}
    return axis


def empty(title: str, lang: str, word: str = "explorer_nothing") -> dict:
    """A chart with nothing to draw: its title, and a line that says why."""
    hidden = {"visible": False}
    return {"data": [], "layout": _layout(title, xaxis=hidden, yaxis=hidden, annotations=[{
        "text": t(word, lang), "showarrow": False, "xref": "paper", "yref": "paper",
        "x": 0.5, "y": 0.5, "font": {"size": FONT_PX + 2, "color": theme.PALETTE["muted"]}}])}


def _cut_note(shown: int, total: int, lang: str) -> str:
    return t("explorer_most_of", lang).format(shown=shown, total=f"{total:,}") if total > shown else ""


def _title(*parts: str) -> str:
    return " · ".join(p for p in parts if p)


def _subtitled(layout: dict, note: str) -> dict:
    """`layout` with a smaller line under its title that says how to read the chart."""
    layout["title"]["subtitle"] = {"text": note, "font": {"size": FONT_PX, "color": theme.PALETTE["muted"]}}
    return layout


# ---- hand-offs ------------------------------------------------------------------------

END_WORDS = {"resolved": "explorer_end_resolved", "closed": "explorer_end_closed",
             "cancelled": "explorer_end_cancelled", "open": "explorer_end_open"}


def _node_label(node: str, names: Names) -> str:
    if node in END_WORDS:
        return t(END_WORDS[node], names.lang)
    department, _, hop = node.rpartition("·")
    return f"{names.department(department if department != '?' else None)}·{hop}"


def handoff_flow(flow: pd.DataFrame, names: Names, most: int = 60) -> dict:
    """The hand-off flow indexed by hop (data.analysis.handoffs.handoff_flow): nodes such as
    `QA·2` and the end nodes, the `most` most travelled links. A link's returns (into a
    department the issue had left) are drawn apart in red and counted in the title."""
    lang = names.lang
    returns = int(flow["returns"].sum()) if len(flow) else 0
    title = _title(t("explorer_flow_title", lang),
                   t("explorer_flow_returns", lang).format(n=f"{returns:,}"),
                   _cut_note(min(most, len(flow)), len(flow), lang))
    if flow.empty:
        return empty(t("explorer_flow_title", lang), lang)
    shown = flow.head(most)
    nodes = list(dict.fromkeys([*shown["source"], *shown["target"]]))
    index = {node: i for i, node in enumerate(nodes)}
    labels = [_esc(_node_label(n, names)) for n in nodes]
    links = {"source": [], "target": [], "value": [], "color": [], "customdata": []}
    for row in shown.itertuples(index=False):
        parts = ((int(row.count) - int(row.returns), "rgba(148,163,184,0.35)", "explorer_flow_link"),
                 (int(row.returns), "rgba(255,77,79,0.75)", "explorer_flow_return_link"))
        for value, colour, word in parts:
            if value <= 0:
                continue
            links["source"].append(index[row.source])
            links["target"].append(index[row.target])
            links["value"].append(value)
            links["color"].append(colour)
            links["customdata"].append([
                Mark("flow", (row.source, row.target)).token(),
                t(word, lang).format(source=labels[index[row.source]],
                                     target=labels[index[row.target]], n=f"{value:,}")])
    node_colours = [theme.PALETTE["neutral"] if n in END_WORDS else SERIES[0] for n in nodes]
    return {"data": [{
        "type": "sankey", "arrangement": "fixed", "valueformat": ",d",
        "node": {"label": labels, "color": node_colours, "pad": 14, "thickness": 16,
                 "line": {"width": 0},
                 "customdata": [[Mark("node", (n,)).token(), labels[i]] for i, n in enumerate(nodes)],
                 "hovertemplate": t("explorer_flow_node_hover", lang) + "<extra></extra>"},
        "link": {**links, "hovertemplate": "%{customdata[1]}<extra></extra>"},
        "textfont": {"size": FONT_PX, "color": theme.PALETTE["text"]},
    }], "layout": _layout(title)}


def handoff_matrix(matrix: pd.DataFrame, names: Names, most: int = 20) -> dict:
    """Hand-offs from each department (rows) to each other (columns), the count in the
    cell and the returns and median wait in the hover; the `most` busiest departments."""
    lang = names.lang
    title = t("explorer_matrix_title", lang)
    if matrix.empty:
        return empty(title, lang)
    volume = (matrix.groupby("from_department", dropna=False)["count"].sum()
              .add(matrix.groupby("to_department", dropna=False)["count"].sum(), fill_value=0))
    ranked = volume.sort_values(ascending=False, kind="stable")
    departments = list(ranked.index[:most])
    title = _title(title, _cut_note(len(departments), len(ranked), lang))
    position = {d: i for i, d in enumerate(departments)}
    size = len(departments)
    z = [[None] * size for _ in range(size)]
    custom = [[["", ""] for _ in range(size)] for _ in range(size)]
    labels = [_esc(names.department(d)) for d in departments]
    for row in matrix.itertuples(index=False):
        if row.from_department not in position or row.to_department not in position:
            continue
        i, j = position[row.from_department], position[row.to_department]
        z[i][j] = int(row.count)
        custom[i][j] = [Mark("matrix", (_code(row.from_department), _code(row.to_department))).token(),
                        t("explorer_matrix_hover", lang).format(
                            source=labels[i], target=labels[j], n=f"{int(row.count):,}",
                            returns=f"{int(row.returns):,}",
                            wait=format_minutes(_number(row.median_wait_min), lang),
                            work=format_minutes(_number(row.median_wait_work_min), lang))]
    codes = [_code(d) for d in departments]
    return {"data": [{
        "type": "heatmap", "z": z, "x": codes, "y": codes, "customdata": custom,
        "hovertemplate": "%{customdata[1]}<extra></extra>", "texttemplate": "%{z}",
        "textfont": {"size": FONT_PX, "color": theme.PALETTE["text"]}, "xgap": 2, "ygap": 2,
        "colorscale": [[0, "#12304d"], [1, theme.PALETTE["accent"]]], "showscale": False,
        "hoverongaps": False,
    }], "layout": _layout(
        title, xaxis=_axis(t("explorer_matrix_to", lang), tickangle=-30, type="category",
                           tickvals=codes, ticktext=labels),
        yaxis=_axis(t("explorer_matrix_from", lang), autorange="reversed", type="category",
                    tickvals=codes, ticktext=labels))}


def _code(value) -> str:
    return NO_VALUE if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _number(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def ping_pong_pairs(pairs: pd.DataFrame, names: Names, most: int = 10) -> dict:
    """The department pairs that pass issues back and forth, most returns first."""
    lang = names.lang
    title = _title(t("explorer_pairs_title", lang), _cut_note(min(most, len(pairs)), len(pairs), lang))
    if pairs.empty:
        return empty(t("explorer_pairs_title", lang), lang, "explorer_no_ping_pong")
    shown = pairs.head(most)
    labels = [_esc(f"{names.department(_none(a))} ⇄ {names.department(_none(b))}")
              for a, b in zip(shown["department_a"], shown["department_b"])]
    custom = [[Mark("pair", (_code(a), _code(b))).token(),
               t("explorer_pairs_hover", lang).format(
                   pair=label, returns=f"{int(r):,}", issues=f"{int(i):,}", handoffs=f"{int(h):,}")]
              for a, b, label, r, i, h in zip(shown["department_a"], shown["department_b"], labels,
                                               shown["returns"], shown["issues"], shown["handoffs"])]
    return {"data": [{
        "type": "bar", "orientation": "h", "y": labels, "x": shown["returns"].tolist(),
        "marker": {"color": RETURN_COLOUR}, "customdata": custom, "text": shown["returns"].tolist(),
        "textposition": "auto", "hovertemplate": "%{customdata[1]}<extra></extra>",
    }], "layout": _layout(title, bargap=0.3,
                          xaxis=_axis(t("explorer_pairs_axis", lang), rangemode="tozero"),
                          yaxis=_axis(autorange="reversed"))}


def _none(code: str):
    return None if code == "?" else code


# ---- time held -------------------------------------------------------------------------

def time_held(boxes: pd.DataFrame, longest: pd.DataFrame, limits: pd.Series, names: Names) -> dict:
    """Time held per department and hop (`boxes`: department, hop, count, p10, q1, median,
    q3, p90 in minutes; hop 3 stands for 3 and later), in hours on a log axis, one place per
    department and hop (`质量部·2`, `质量部·3+`): box from the first to the third quartile, whiskers from the 10th to
    the 90th percentile, the median as a diamond; the longest hops of each box as points
    (`longest`: department, hop, issue_id, minutes); each department's resolution limit
    (`limits`: median resolve_minutes of the issues it held) as a red dash."""
    lang = names.lang
    title = t("explorer_held_title", lang)
    if boxes.empty:
        return empty(title, lang)
    order = boxes.groupby("department")["median"].max().sort_values(ascending=False, kind="stable")
    rank = {d: i for i, d in enumerate(order.index)}
    boxes = boxes.assign(_rank=boxes["department"].map(rank)).sort_values(["_rank", "hop"])
    labels = {d: _esc(names.department(_none(d))) for d in order.index}

    def hop_name(hop: int) -> str:
        return t("explorer_hop_n" if hop < 3 else "explorer_hop_later", lang).format(hop=hop)

    def place(department: str, hop: int) -> str:
        return f"{labels[department]}·{hop}{'+' if hop >= 3 else ''}"

    def places(frame: pd.DataFrame) -> list[str]:
        return [place(d, int(h)) for d, h in zip(frame["department"], frame["hop"])]

    traces = []
    for k, hop in enumerate(sorted(boxes["hop"].unique())):
        mine = boxes[boxes["hop"] == hop]
        colour = SERIES[k % len(SERIES)]
        hours = {c: (mine[c] / 60).round(4).tolist() for c in ("p10", "q1", "median", "q3", "p90")}
        traces.append({
            "type": "box", "name": hop_name(int(hop)), "legendgroup": str(hop), "x": places(mine),
            "q1": hours["q1"], "median": hours["median"], "q3": hours["q3"],
            "lowerfence": hours["p10"], "upperfence": hours["p90"], "hoverinfo": "skip",
            "marker": {"color": colour}, "line": {"color": colour, "width": 2}, "width": 0.6})
        traces.append({
            "type": "scatter", "mode": "markers", "x": places(mine), "y": hours["median"],
            "legendgroup": str(hop), "showlegend": False,
            "marker": {"symbol": "diamond", "size": 11, "color": colour,
                       "line": {"color": theme.PALETTE["text"], "width": 1}},
            "customdata": [[Mark("held", (r.department, str(int(r.hop)))).token(),
                            t("explorer_held_hover", lang).format(
                                department=labels[r.department], hop=hop_name(int(r.hop)),
                                n=f"{int(r.count):,}", median=format_minutes(r.median, lang),
                                p90=format_minutes(r.p90, lang), p10=format_minutes(r.p10, lang),
                                limit=format_minutes(_number(limits.get(r.department)), lang))]
                           for r in mine.itertuples()],
            "hovertemplate": "%{customdata[1]}<extra></extra>"})
        points = longest[longest["hop"] == hop]
        if len(points):
            traces.append({
                "type": "scatter", "mode": "markers", "legendgroup": str(hop), "showlegend": False,
                "x": places(points), "y": (points["minutes"] / 60).round(4).tolist(),
                "marker": {"symbol": "circle-open", "size": 8, "color": colour},
                "customdata": [[Mark("issue", (issue,)).token(),
                                t("explorer_held_point", lang).format(
                                    issue=_esc(issue), department=labels[d],
                                    held=format_minutes(m, lang))]
                               for issue, d, m in zip(points["issue_id"], points["department"],
                                                      points["minutes"])],
                "hovertemplate": "%{customdata[1]}<extra></extra>"})
    limited = boxes[boxes["department"].map(lambda d: _number(limits.get(d)) is not None)]
    if len(limited):
        traces.append({
            "type": "scatter", "mode": "markers", "name": t("explorer_held_limit", lang),
            "x": places(limited),
            "y": [round(_number(limits.get(d)) / 60, 4) for d in limited["department"]],
            "marker": {"symbol": "line-ew", "size": 34, "line": {"color": RETURN_COLOUR, "width": 3}},
            "hoverinfo": "skip"})
    return {"data": traces, "layout": _subtitled(_layout(
        title, boxmode="overlay", showlegend=True, margin={**LEGEND_MARGIN, "t": 96},
        xaxis=_axis(type="category", categoryorder="array", categoryarray=places(boxes),
                    tickangle=-40),
        yaxis=_axis(t("explorer_hours_log", lang), type="log", dtick=1)), t("explorer_held_note", lang))}


# ---- breakdowns --------------------------------------------------------------------------

def pareto(frame: pd.DataFrame, by: str, names: Names, most: int = 25) -> dict:
    """Issues per value of the dimension `by` (data.analysis.breakdown.pareto), most first,
    with the cumulative share as a line on a percent axis; values after the `most` first
    are drawn as one bar ("the other N"), which the cumulative line ends on."""
    lang = names.lang
    title = t("explorer_pareto_title", lang).format(dimension=names.dimension_in_text(by))
    if frame.empty:
        return empty(title, lang)
    head, tail = frame.head(most), frame.iloc[most:]
    labels = [_esc(names.value(by, v)) for v in head["value"]]
    counts = head["count"].astype(int).tolist()
    cumulative = (head["cumulative_share"] * 100).round(1).tolist()
    custom = [[Mark("dim", (by, _code(v))).token(),
               t("explorer_pareto_hover", lang).format(
                   value=label, n=f"{c:,}", share=format_percent(s, lang),
                   cumulative=format_percent(cs, lang))]
              for v, label, c, s, cs in zip(head["value"], labels, counts, head["share"],
                                            head["cumulative_share"])]
    if len(tail):
        labels.append(_esc(t("explorer_others", lang).format(n=len(tail))))
        counts.append(int(tail["count"].sum()))
        cumulative.append(100.0)
        custom.append(["", t("explorer_others_hover", lang).format(
            n=len(tail), count=f"{int(tail['count'].sum()):,}")])
    return {"data": [
        {"type": "bar", "x": labels, "y": counts, "name": t("explorer_issues", lang),
         "marker": {"color": SERIES[0]}, "customdata": custom,
         "hovertemplate": "%{customdata[1]}<extra></extra>"},
        {"type": "scatter", "mode": "lines+markers", "x": labels, "y": cumulative, "yaxis": "y2",
         "name": t("explorer_cumulative", lang), "line": {"color": theme.PALETTE["star"], "width": 2},
         "marker": {"size": 6}, "customdata": custom,
         "hovertemplate": "%{customdata[1]}<extra></extra>"},
    ], "layout": _layout(
        title, bargap=0.25,
        xaxis=_axis(type="category", tickangle=-35),
        yaxis=_axis(t("explorer_issues", lang), rangemode="tozero"),
        yaxis2=_axis(t("explorer_cumulative_pct", lang), overlaying="y", side="right",
                     range=[0, 105], tick0=0, dtick=20, showgrid=False, ticksuffix="%"))}


def week_over_week(frame: pd.DataFrame, by: str, names: Names, most: int = 12) -> dict:
    """This week against last per value of `by` (data.analysis.change.week_over_week),
    ranked as given: the change in issues raised (left) and each value's contribution to the
    change in the median response (right, minutes; they add up to the whole change). More
    issues or a slower answer in red, fewer or faster in green, no change in grey."""
    lang = names.lang
    totals = frame.attrs
    title = t("explorer_wow_title", lang).format(dimension=names.dimension_in_text(by))
    if frame.empty:
        return empty(title, lang)
    change = totals.get("median_change_min")
    title = _title(title, t("explorer_wow_totals", lang).format(
        count=f"{int(totals.get('count_change', 0)):+,}",
        median=("—" if change is None or math.isnan(change) else f"{change:+.1f}")))
    shown = frame.head(most)
    labels = [_esc(names.value(by, v)) for v in shown.index]
    custom = [[Mark("week", (by, _code(v))).token(),
               t("explorer_wow_hover", lang).format(
                   value=label, last=f"{int(r.count_last):,}", this=f"{int(r.count_this):,}",
                   change=f"{int(r.count_change):+,}",
                   median_last=format_minutes(_number(r.median_last_min), lang),
                   median_this=format_minutes(_number(r.median_this_min), lang),
                   contribution=("—" if _number(r.median_contribution_min) is None
                                 else f"{r.median_contribution_min:+.1f}"))]
              for v, label, r in zip(shown.index, labels, shown.itertuples())]

    def colours(values: Iterable[float]) -> list[str]:
        return [theme.color(theme.BAD if (v or 0) > 0 else theme.OK if (v or 0) < 0 else None)
                for v in values]

    counts = shown["count_change"].astype(int).tolist()
    contributions = [None if _number(v) is None else round(float(v), 2)
                     for v in shown["median_contribution_min"]]
    return {"data": [
        {"type": "bar", "orientation": "h", "y": labels, "x": counts, "xaxis": "x", "yaxis": "y",
         "marker": {"color": colours(counts)}, "customdata": custom,
         "hovertemplate": "%{customdata[1]}<extra></extra>"},
        {"type": "bar", "orientation": "h", "y": labels, "x": contributions, "xaxis": "x2",
         "yaxis": "y", "marker": {"color": colours(contributions)}, "customdata": custom,
         "hovertemplate": "%{customdata[1]}<extra></extra>"},
    ], "layout": _layout(
        title, bargap=0.3,
        xaxis=_axis(t("explorer_wow_count_axis", lang), domain=[0, 0.47], zeroline=True,
                    zerolinecolor=theme.PALETTE["muted"]),
        xaxis2=_axis(t("explorer_wow_median_axis", lang), domain=[0.53, 1], zeroline=True,
                     zerolinecolor=theme.PALETTE["muted"]),
        yaxis=_axis(autorange="reversed", type="category"))}


# ---- open issues and waiting --------------------------------------------------------------

def bucket_label(from_h: float, to_h: float, lang: str) -> str:
    def hours(value: float) -> str:
        return format_minutes(value * 60, lang)
    if from_h <= 0:
        return t("explorer_age_under", lang).format(to=hours(to_h))
    if math.isinf(to_h):
        return t("explorer_age_over", lang).format(since=hours(from_h))
    return f"{hours(from_h)} – {hours(to_h)}"


def ageing(frame: pd.DataFrame, names: Names, most: int = 9) -> dict:
    """Open issues per age bucket (x) and current holder (stacked; the `most` holders with
    most open issues, the others as one)."""
    lang = names.lang
    title = t("explorer_ageing_title", lang)
    if frame.empty:
        return empty(title, lang, "explorer_no_open")
    buckets = frame.drop_duplicates("bucket").sort_values("bucket")
    labels = {int(b): bucket_label(f, to, lang) for b, f, to in
              zip(buckets["bucket"], buckets["from_h"], buckets["to_h"])}
    holders = frame.groupby("holder", dropna=False)["count"].sum().sort_values(
        ascending=False, kind="stable")
    top = list(holders.index[:most])
    traces = []
    for k, holder in enumerate([*top, "__others__"] if len(holders) > most else top):
        if holder == "__others__":
            mine = frame[~frame["holder"].isin(top)].groupby("bucket")["count"].sum()
            name, code = t("explorer_others", lang).format(n=len(holders) - most), None
        else:
            mine = frame[frame["holder"].isin([holder]) if holder is not None
                         else frame["holder"].isna()].groupby("bucket")["count"].sum()
            name, code = names.department(holder), _code(holder)
        x = [labels[int(b)] for b in mine.index]
        traces.append({
            "type": "bar", "name": _esc(name), "x": x, "y": mine.astype(int).tolist(),
            "marker": {"color": SERIES[k % len(SERIES)]},
            "customdata": [[Mark("ageing", (str(int(b)), code)).token() if code else "",
                            t("explorer_ageing_hover", lang).format(
                                holder=_esc(name), bucket=labels[int(b)], n=f"{int(n):,}")]
                           for b, n in mine.items()],
            "hovertemplate": "%{customdata[1]}<extra></extra>"})
    return {"data": traces, "layout": _layout(
        _title(title, t("explorer_ageing_total", lang).format(n=f"{int(frame['count'].sum()):,}")),
        barmode="stack", showlegend=True, bargap=0.25, legend=SIDE_LEGEND,
        xaxis=_axis(t("explorer_age_axis", lang), type="category", categoryorder="array",
                    categoryarray=[labels[b] for b in sorted(labels)]),
        yaxis=_axis(t("explorer_open_issues", lang), rangemode="tozero"))}


def unresolved_after(frame: pd.DataFrame, names: Names) -> dict:
    """For each week raised, the share of its issues still unresolved t hours after being
    raised (data.analysis.ageing.unresolved_after), one line per t."""
    lang = names.lang
    title = t("explorer_unresolved_title", lang)
    if frame.empty:
        return empty(title, lang, "explorer_no_whole_week")
    traces = []
    for k, (hours, mine) in enumerate(frame.groupby("hours", sort=True)):
        weeks = [_week_label(w, lang) for w in mine["week_start"]]
        traces.append({
            "type": "scatter", "mode": "lines+markers", "x": weeks,
            "y": (mine["share"] * 100).round(1).tolist(),
            "name": _esc(t("explorer_after_hours", lang).format(
                after=format_minutes(float(hours) * 60, lang))),
            "line": {"color": SERIES[k % len(SERIES)], "width": 2}, "marker": {"size": 7},
            "customdata": [[Mark("unresolved", (pd.Timestamp(w).date().isoformat(), _hours(hours))).token(),
                            t("explorer_unresolved_hover", lang).format(
                                week=week, after=format_minutes(float(hours) * 60, lang),
                                n=f"{int(u):,}", raised=f"{int(r):,}", share=format_percent(s, lang))]
                           for w, week, u, r, s in zip(mine["week_start"], weeks, mine["unresolved"],
                                                       mine["raised"], mine["share"])],
            "hovertemplate": "%{customdata[1]}<extra></extra>"})
    return {"data": traces, "layout": _layout(
        title, showlegend=True, margin=LEGEND_MARGIN,
        xaxis=_axis(t("explorer_week_axis", lang), type="category"),
        yaxis=_axis(t("explorer_share_pct", lang), rangemode="tozero", ticksuffix="%"))}


def _hours(value) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def _week_label(week, lang: str) -> str:
    return t("explorer_week_of", lang).format(day=pd.Timestamp(week).strftime("%m-%d"))


def weekday_names(lang: str) -> list[str]:
    return [t(word, lang) for word in WEEKDAYS]


def heatmap(frame: pd.DataFrame, names: Names, value: str) -> dict:
    """Hour of day (x) by weekday (y) of data.analysis.ageing.heatmap: `value` "raised"
    (issues) or "response_median_min" (median response, minutes)."""
    lang = names.lang
    word = "explorer_heat_raised_title" if value == "raised" else "explorer_heat_response_title"
    title = t(word, lang)
    if frame.empty or not frame["raised"].sum():
        return empty(title, lang)
    days = weekday_names(lang)
    z = [[None] * 24 for _ in range(7)]
    custom = [[["", ""] for _ in range(24)] for _ in range(7)]
    for row in frame.itertuples(index=False):
        day, hour = int(row.weekday), int(row.hour)
        median = _number(row.response_median_min)
        shown = int(row.raised) if value == "raised" else (None if median is None else round(median, 1))
        z[day][hour] = shown if (value != "raised" or row.raised) else None
        custom[day][hour] = [Mark("hour", (str(day + 1), str(hour))).token() if row.raised else "",
                             t("explorer_heat_hover", lang).format(
                                 day=days[day], hour=f"{hour:02d}", n=f"{int(row.raised):,}",
                                 median=format_minutes(median, lang))]
    scale = ([[0, "#12304d"], [1, theme.PALETTE["accent"]]] if value == "raised" else
             [[0, "#12304d"], [0.5, theme.PALETTE[theme.WARN]], [1, theme.PALETTE[theme.BAD]]])
    return {"data": [{
        "type": "heatmap", "z": z, "x": [f"{h:02d}" for h in range(24)], "y": days,
        "customdata": custom, "hovertemplate": "%{customdata[1]}<extra></extra>",
        "colorscale": scale, "xgap": 1, "ygap": 1, "hoverongaps": False,
        "colorbar": {"thickness": 10, "tickfont": {"size": FONT_PX - 2}, "outlinewidth": 0},
    }], "layout": _layout(
        title, xaxis=_axis(t("explorer_hour_axis", lang), type="category", dtick=2),
        yaxis=_axis(type="category", autorange="reversed"))}


# ---- the control chart ---------------------------------------------------------------------

RULE_WORDS = {"rule_1": "explorer_rule_1", "rule_2": "explorer_rule_2",
              "rule_3": "explorer_rule_3", "rule_4": "explorer_rule_4"}


def control_chart(chart: pd.DataFrame, countermeasures: Sequence[date], names: Names) -> dict:
    """The XmR chart of the daily median response (data.analysis.control.xmr): the days as
    points, each segment's centre line and limits, the points that complete a Western
    Electric rule in red with the rule in the hover, and each countermeasure date as a
    dashed line from which the limits start again."""
    lang = names.lang
    title = t("explorer_xmr_title", lang)
    if chart.empty:
        return empty(title, lang)
    days = [pd.Timestamp(d).date().isoformat() for d in chart.index]
    rules_of = []
    for _, row in chart.iterrows():
        said = [t(RULE_WORDS[r], lang) for r in RULE_WORDS if bool(row[r])]
        rules_of.append("<br>".join(said))
    custom = [[Mark("day", (day,)).token(),
               t("explorer_xmr_hover", lang).format(
                   day=day, median=format_minutes(v, lang),
                   centre=format_minutes(_number(c), lang),
                   limits=f"{format_minutes(max(_number(lo) or 0, 0), lang)} – "
                          f"{format_minutes(_number(hi), lang)}"
                   if _number(hi) is not None else "—") + (f"<br>{rules}" if rules else "")]
              for day, v, c, lo, hi, rules in zip(days, chart["value"], chart["centre"], chart["lcl"],
                                                  chart["ucl"], rules_of)]

    def segment_line(column: str, name: str, colour: str, dash: str) -> dict:
        x, y = [], []
        for _, part in chart.groupby("segment", sort=True):
            x += [pd.Timestamp(d).date().isoformat() for d in part.index] + [None]
            y += [None if _number(v) is None else round(float(v), 2) for v in part[column]] + [None]
        return {"type": "scatter", "mode": "lines", "x": x, "y": y, "name": name,
                "line": {"color": colour, "dash": dash, "width": 2, "shape": "hvh"},
                "hoverinfo": "skip"}

    signal = chart["signal"].to_numpy(dtype=bool)
    values = chart["value"].round(2).tolist()
    traces = [
        segment_line("centre", t("explorer_xmr_centre", lang), theme.PALETTE[theme.OK], "solid"),
        segment_line("ucl", t("explorer_xmr_limits", lang), theme.PALETTE[theme.WARN], "dash"),
        {**segment_line("lcl", t("explorer_xmr_limits", lang), theme.PALETTE[theme.WARN], "dash"),
         "showlegend": False},
        {"type": "scatter", "mode": "lines+markers", "x": days, "y": values,
         "name": t("explorer_xmr_daily", lang), "line": {"color": SERIES[0], "width": 2},
         "marker": {"size": [11 if s else 6 for s in signal],
                    "color": [RETURN_COLOUR if s else SERIES[0] for s in signal]},
         "customdata": custom, "hovertemplate": "%{customdata[1]}<extra></extra>"},
    ]
    shapes, annotations = [], []
    for day in countermeasures:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": day.isoformat(),
                       "x1": day.isoformat(), "y0": 0, "y1": 1,
                       "line": {"color": theme.PALETTE["star"], "dash": "dot", "width": 2}})
        annotations.append({"x": day.isoformat(), "xref": "x", "y": 1, "yref": "paper",
                            "text": _esc(t("explorer_countermeasure", lang)), "showarrow": False,
                            "xanchor": "left", "yanchor": "top",
                            "font": {"color": theme.PALETTE["star"], "size": FONT_PX - 1}})
    flagged = int(signal.sum())
    return {"data": traces, "layout": _layout(
        _title(title, t("explorer_xmr_signals", lang).format(n=flagged)), showlegend=True,
        shapes=shapes, annotations=annotations, margin=LEGEND_MARGIN,
        xaxis=_axis(type="date", tickformat="%m-%d"),
        yaxis=_axis(t("explorer_minutes", lang), rangemode="tozero"))}


def mark_at(figure: dict, point: dict) -> str | None:
    """The mark a click landed on, from the point as the browser reports it (Dash's
    clickData) and the figure it was drawn on: the point's own customdata when the browser
    passes it on (bars, lines, markers); a heatmap's cell by its x and y; a hand-off flow's
    link or node by its number (a node is the one with a label). None for a point that is
    no mark (the "others" bar)."""
    custom = point.get("customdata")
    if isinstance(custom, list) and custom and isinstance(custom[0], str):
        return custom[0] or None
    traces = figure.get("data") or []
    curve = point.get("curveNumber", 0)
    if not isinstance(curve, int) or not 0 <= curve < len(traces):
        return None
    trace = traces[curve]
    try:
        if trace["type"] == "heatmap":
            cell = trace["customdata"][trace["y"].index(point["y"])][trace["x"].index(point["x"])]
        elif trace["type"] == "sankey":
            part = trace["node"] if point.get("label") else trace["link"]
            cell = part["customdata"][int(point["pointNumber"])]
        else:
            return None
    except (KeyError, ValueError, IndexError, TypeError):
        return None
    return cell[0] or None
