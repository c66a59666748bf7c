"""The one pace model of the demo plant, for its history and its live simulator alike: how
fast the floor answers and works an issue, before the wall and once it is daily work, nights
slower than days, and the random draws both use.

The live simulator runs at the pace of the end of the history (the wall in daily use); the
history blends from the pace before the wall to that one as the wall is adopted.
"""
from __future__ import annotations

import math
import random
from datetime import datetime, time, timedelta

# The pace of a plant that works from the wall (the end of the demo plant's story).
RESPONSE_MEDIAN_MIN = 15.0
# Median response (minutes) before the wall.
RESPONSE_BEFORE_MIN = 240.0
DAY_START, NIGHT_START = time(8), time(20)
DAY_PACE, NIGHT_PACE = 0.8, 1.6
# Issues arrive more often by day than by night.
DAY_WEIGHT, NIGHT_WEIGHT = 1.3, 0.7
SEVERITY_PACE = {"P1": 0.5, "P2": 0.75, "P3": 1.0, "P4": 1.4}
# Work after acknowledging, as a share of the resolve limit, with the wall and before it;
# some issues wait much longer.
WORKING_SHARE = 0.35
WORKING_SHARE_BEFORE = 0.9
HARD_SHARE = 0.1
# Resolved issues that their raiser closes (the rest stay unverified).
CLOSE_SHARE = 0.9


def is_night(at: datetime, tz) -> bool:
    return not DAY_START <= at.astimezone(tz).time() < NIGHT_START


def arrival_weight(at: datetime, tz) -> float:
    """How many more (or fewer) issues arrive at this time of day than on average."""
    return NIGHT_WEIGHT if is_night(at, tz) else DAY_WEIGHT


def response_base_min(adoption: float) -> float:
    """The median response of an issue with a 20-minute limit, as the wall is adopted
    (0: before it, 1: daily work), before severity and night."""
    return RESPONSE_BEFORE_MIN ** (1 - adoption) * RESPONSE_MEDIAN_MIN ** adoption


def working_share(adoption: float) -> float:
    """Work after acknowledging, as a share of the resolve limit, as the wall is adopted."""
    return WORKING_SHARE_BEFORE ** (1 - adoption) * WORKING_SHARE ** adoption


def response_median_min(ack_minutes: float, severity: str, night: bool,
                        base: float = RESPONSE_MEDIAN_MIN) -> float:
    """The median response for an issue: in proportion to its limit (a plant that works from
    the wall answers most issues inside their limits), faster for severe ones, slower at night."""
    return (base * (ack_minutes / 20) * SEVERITY_PACE.get(severity, 1.0)
            * (NIGHT_PACE if night else DAY_PACE))


def escalation_note(limit: str, minutes: float) -> str:
    """What the floor writes when an issue passes its response (`ack`) or resolve limit."""
    if limit == "ack":
        return f"超过响应时限 {minutes:g} 分钟，升级至部门负责人"
    return f"超过解决时限 {minutes:g} 分钟，升级至厂长"


def minutes(value: float) -> timedelta:
    """A duration in minutes, to the second: the demo plant's instants have no fractions."""
    return timedelta(seconds=round(value * 60))


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(sigma * rng.gauss(0.0, 1.0))


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count
