"""The wall's charts as plain plotly figure dicts, so a page and a report draw the same chart.

Colours come from the one palette and rule (data/theme.py), words from the one table
(data/words.py). Sizes are for a 1080-pixel-high screen read from five metres: no text under
28 px. A screen of another height scales the fonts and margins by its height / 1080
(assets/wall.js `scaleFigure`), so 4K shows the same chart twice as sharp.
"""
from __future__ import annotations

from data import theme
from data.words import t

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
