"""The wall's one rule for colours and its palette, shared by pages, figures and reports.

Every coloured figure goes through `level(figure, value)`: tiles, scoreboard cells, material
tiles and alerts alike, so the same value has the same colour on every page. The thresholds
are settings; the README words each one as it is compared here ("amber at", "amber above",
"amber below"), and tests/test_theme.py holds the two together at every threshold.
"""
from __future__ import annotations

from dataclasses import dataclass

from data import settings

OK, WARN, BAD = "ok", "warn", "bad"

# One palette for the wall, its figures and anything exported.
PALETTE = {
    "background": "#070d1a", "panel": "#0f1a2f", "edge": "#1d2b47", "text": "#eef3fb",
    "muted": "#9fb2cf", "accent": "#38bdf8", OK: "#22c55e", WARN: "#f5b301", BAD: "#ff4d4f",
    "star": "#ffd54a", "neutral": "#64748b",
}
FONT_FAMILY = ("Noto Sans CJK SC, Noto Sans SC, Source Han Sans SC, Microsoft YaHei, "
               "PingFang SC, sans-serif")

# How a value is compared with its two thresholds (amber, red):
#   "at":    amber when value >= amber, red when value >= red   (counts: higher is worse)
#   "above": amber when value >  amber, red when value >  red   (durations: higher is worse)
#   "below": amber when value <  amber, red when value <  red   (ratios: lower is worse)
AT, ABOVE, BELOW = "at", "above", "below"


@dataclass(frozen=True)
class Rule:
    setting: str
    comparison: str


RULES: dict[str, Rule] = {
    "open": Rule("THRESHOLD_OPEN", AT),
    "overdue": Rule("THRESHOLD_OVERDUE", AT),
    "median_response_min": Rule("THRESHOLD_MEDIAN_RESPONSE_MIN", ABOVE),
    "response_sla_compliance": Rule("THRESHOLD_RESPONSE_SLA", BELOW),
    "resolution_rate": Rule("THRESHOLD_RESOLUTION_RATE", BELOW),
    "plan_attainment": Rule("THRESHOLD_PLAN_ATTAINMENT", BELOW),
    "stagnant_lots": Rule("THRESHOLD_STAGNANT_LOTS", AT),
    "shortages": Rule("THRESHOLD_SHORTAGES", AT),
}


def thresholds(figure: str) -> tuple[float, float]:
    """(amber, red) of a figure, from its setting."""
    return settings.get_pair(RULES[figure].setting)


def level(figure: str, value: float | None) -> str | None:
    """ok / warn / bad for a figure's value; None when there is no value to judge."""
    if value is None:
        return None
    amber, red = thresholds(figure)
    comparison = RULES[figure].comparison
    if comparison == AT:
        return BAD if value >= red else WARN if value >= amber else OK
    if comparison == ABOVE:
        return BAD if value > red else WARN if value > amber else OK
    return BAD if value < red else WARN if value < amber else OK


def color(level_name: str | None) -> str:
    """The palette's colour of a level (the neutral grey for no level)."""
    return PALETTE.get(level_name or "neutral", PALETTE["neutral"])
