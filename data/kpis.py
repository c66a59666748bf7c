"""The KPIs of contract section 2, as pure functions over the frames of data.queries.

No database and no clock: whatever depends on time is given its `as_of`, so the wall, the
weekly review and the tests get the same number for the same instant. The issue tables hold each
issue's current state, so anything stamped after `as_of` is treated as not yet happened.
Results do not depend on row order (events at the same instant are ordered by event id).
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo
from typing import Callable, Iterable

import numpy as np
import pandas as pd

MINUTE = pd.Timedelta(minutes=1)
MET, BREACHED, PENDING = "met", "breached", "pending"
HANDOFF_KIND = "reassigned"

ISSUE_KPI_KEYS = (
    "raised", "response_median_min", "response_p90_min", "resolution_median_min",
    "resolution_p90_min", "response_sla_met", "response_sla_breached", "response_sla_compliance",
    "resolution_sla_met", "resolution_sla_breached", "resolution_sla_compliance",
    "resolution_rate", "open", "overdue", "handoffs_mean", "ping_pong_issues",
)


def instant(as_of: datetime) -> pd.Timestamp:
    """as_of as a UTC Timestamp; a naive value has no defined instant and is refused."""
    stamp = pd.Timestamp(as_of)
    if stamp.tzinfo is None:
        raise ValueError(f"naive as_of {as_of!r}; pass an aware instant")
    return stamp.tz_convert("UTC")


def _instants(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_datetime(frame[column], utc=True)


def _done_by(frame: pd.DataFrame, column: str, as_of: pd.Timestamp) -> pd.Series:
    """Whether the step stamped in `column` had happened at as_of."""
    return _instants(frame, column) <= as_of


def _closed_unresolved_by(frame: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """Closed by as_of without having been resolved by then: finished, but with no
    resolution time, so it takes no side in the resolution SLA (contract section 2)."""
    return _done_by(frame, "closed_at", as_of) & ~_done_by(frame, "resolved_at", as_of)


def _finished_by(frame: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """Resolved, or closed without a resolution, by as_of."""
    return _done_by(frame, "resolved_at", as_of) | _done_by(frame, "closed_at", as_of)


def _minutes_to(frame: pd.DataFrame, column: str, as_of: datetime) -> pd.Series:
    at = instant(as_of)
    elapsed = (_instants(frame, column) - _instants(frame, "raised_at")) / MINUTE
    return elapsed.where(_done_by(frame, column, at)).astype("float64")


def response_minutes(population: pd.DataFrame, as_of: datetime) -> pd.Series:
    """Minutes from raised to acknowledged, for issues acknowledged by as_of (NaN otherwise)."""
    return _minutes_to(population, "acknowledged_at", as_of)


def resolution_minutes(population: pd.DataFrame, as_of: datetime) -> pd.Series:
    """Minutes from raised to resolved, for issues resolved by as_of (NaN otherwise)."""
    return _minutes_to(population, "resolved_at", as_of)


def median_p90(minutes: pd.Series) -> tuple[float | None, float | None]:
    """Median and 90th percentile by linear interpolation; None when there is no value."""
    values = np.asarray(minutes, dtype="float64")
    values = values[~np.isnan(values)]
    if not len(values):
        return None, None
    # As pandas' Series.quantile computes them, without its overhead on every refresh.
    median, p90 = np.percentile(values, np.array([0.5, 0.9]) * 100, method="linear")
    return float(median), float(p90)


def sla_outcomes(issues: pd.DataFrame, as_of: datetime, *, done_column: str,
                 limit_column: str, undecided: pd.Series | None = None) -> pd.Series:
    """met / breached / pending per issue against the limit in `limit_column` (minutes).

    Done within the limit is met (exactly at the limit counts as met); done later, or not
    done with more than the limit passed, is breached; anything else (including an issue
    raised after as_of, one without a limit, or one marked in `undecided`, whose outcome
    can no longer be known) is pending.
    """
    at = instant(as_of)
    raised = _instants(issues, "raised_at")
    limit = pd.to_timedelta(pd.to_numeric(issues[limit_column]).astype("float64"), unit="m")
    done = _done_by(issues, done_column, at)
    elapsed = (_instants(issues, done_column) - raised).where(done, at - raised)
    has_limit = limit.notna().to_numpy()
    raised_by_then = (raised <= at).fillna(False).to_numpy(dtype=bool)
    within = (elapsed <= limit).fillna(False).to_numpy(dtype=bool)
    beyond = (elapsed > limit).fillna(False).to_numpy(dtype=bool)
    met = done.to_numpy() & has_limit & within
    breached = has_limit & raised_by_then & beyond
    if undecided is not None:
        breached &= ~undecided.to_numpy(dtype=bool)
    return pd.Series(np.select([met, breached], [MET, BREACHED], PENDING), index=issues.index,
                     dtype="str")


def response_sla_outcomes(issues: pd.DataFrame, as_of: datetime) -> pd.Series:
    return sla_outcomes(issues, as_of, done_column="acknowledged_at", limit_column="ack_minutes")


def resolution_sla_outcomes(issues: pd.DataFrame, as_of: datetime) -> pd.Series:
    return sla_outcomes(issues, as_of, done_column="resolved_at", limit_column="resolve_minutes",
                        undecided=_closed_unresolved_by(issues, instant(as_of)))


def compliance(outcomes: pd.Series) -> float | None:
    """met / (met + breached); None when nothing has been decided yet."""
    met = int((outcomes == MET).sum())
    decided = met + int((outcomes == BREACHED).sum())
    return met / decided if decided else None


def resolution_rate(population: pd.DataFrame, as_of: datetime) -> float | None:
    """Share of the population resolved, or closed without a resolution, by as_of; None for
    an empty population."""
    if population.empty:
        return None
    return float(_finished_by(population, instant(as_of)).mean())


def open_mask(issues: pd.DataFrame, as_of: datetime) -> pd.Series:
    """Raised by as_of, neither resolved nor closed by as_of, not cancelled."""
    at = instant(as_of)
    raised = _instants(issues, "raised_at") <= at
    return raised & ~_finished_by(issues, at) & (issues["status"] != "cancelled")


def overdue_mask(issues: pd.DataFrame, as_of: datetime) -> pd.Series:
    """Open issues past a limit now: unacknowledged past ack_minutes, or past resolve_minutes."""
    at = instant(as_of)
    waited = at - _instants(issues, "raised_at")
    ack_limit = pd.to_timedelta(pd.to_numeric(issues["ack_minutes"]).astype("float64"), unit="m")
    resolve_limit = pd.to_timedelta(
        pd.to_numeric(issues["resolve_minutes"]).astype("float64"), unit="m")
    unacknowledged = ~_done_by(issues, "acknowledged_at", at)
    late = (unacknowledged & (waited > ack_limit)) | (waited > resolve_limit)
    return open_mask(issues, as_of) & late


def _events_until(events: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Events at or before as_of in time order, ties broken by event id."""
    known = events[_instants(events, "at") <= instant(as_of)]
    return known.assign(at=_instants(known, "at")).sort_values(
        ["issue_id", "at", "event_id"], kind="stable")


def handoff_counts(population: pd.DataFrame, events: pd.DataFrame, as_of: datetime) -> pd.Series:
    """Reassignments per issue of the population by as_of (0 for issues never handed off)."""
    known = _events_until(events, as_of)
    counts = known.loc[known["kind"] == HANDOFF_KIND, "issue_id"].value_counts()
    ids = pd.Index(population["id"], name="issue_id")
    return counts.reindex(ids, fill_value=0).astype("int64").rename("handoffs")


def handoffs_mean(population: pd.DataFrame, events: pd.DataFrame,
                  as_of: datetime) -> float | None:
    """Reassignments per issue of the population; None for an empty population."""
    if population.empty:
        return None
    return float(handoff_counts(population, events, as_of).mean())


def holding_sequences(events: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Per issue, the departments that held it in order, consecutive repeats collapsed."""
    known = _events_until(events, as_of).dropna(subset=["department_code"])
    previous = known.groupby("issue_id", sort=False)["department_code"].shift()
    return known.loc[known["department_code"] != previous,
                     ["issue_id", "event_id", "at", "department_code"]]


def ping_pong_since(events: pd.DataFrame) -> pd.Series:
    """Per issue that went back to a department it had left (PRD -> QA -> PRD): the instant
    of the event that first took it back. The events up to any instant are a prefix of an
    issue's sequence, so the issue is ping-pong at as_of exactly when this is <= as_of."""
    known = events[events["department_code"].notna()]
    issue_ids, first = first_returns(
        known["issue_id"].to_numpy(dtype=object), known["department_code"].to_numpy(dtype=object),
        _instants(known, "at").array.as_unit("ns").asi8, known["event_id"].to_numpy(dtype="int64"))
    return pd.Series(pd.to_datetime(first, utc=True).as_unit("ns"),
                     index=pd.Index(issue_ids, name="issue_id"), name="ping_pong_at")


def first_returns(issue_ids: np.ndarray, departments: np.ndarray, at_ns: np.ndarray,
                  event_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ping_pong_since over plain arrays of events that name a department: the issues that
    went back to a department they had left, and when each first did (ns since the epoch)."""
    issue, uniques = pd.factorize(issue_ids)
    department, _ = pd.factorize(departments)
    order = np.lexsort((event_ids, at_ns, issue))
    issue, department, at = issue[order], department[order], at_ns[order]
    held = np.ones(len(issue), dtype=bool)
    held[1:] = (issue[1:] != issue[:-1]) | (department[1:] != department[:-1])
    issue, department, at = issue[held], department[held], at[held]
    width = int(department.max()) + 1 if len(department) else 1
    back = pd.Series(issue.astype(np.int64) * width + department).duplicated().to_numpy()
    first = pd.Series(at[back]).groupby(issue[back]).min()
    return (np.asarray(uniques, dtype=object)[first.index.to_numpy(dtype="int64")],
            first.to_numpy(dtype=np.int64))


def ping_pong_issue_ids(events: pd.DataFrame, as_of: datetime) -> set[str]:
    """Issues that went back to a department they had left (PRD -> QA -> PRD) by as_of."""
    since = ping_pong_since(events)
    return set(since.index[since <= instant(as_of)])


def issue_kpis(population: pd.DataFrame, events: pd.DataFrame, open_now: pd.DataFrame,
               as_of: datetime) -> dict:
    """The contract's "overall" object: the window's population plus what is open at as_of."""
    response = response_sla_outcomes(population, as_of)
    resolution = resolution_sla_outcomes(population, as_of)
    response_median, response_p90 = median_p90(response_minutes(population, as_of))
    resolution_median, resolution_p90 = median_p90(resolution_minutes(population, as_of))
    ping_pong = ping_pong_issue_ids(events, as_of) & set(population["id"])
    return {
        "raised": len(population),
        "response_median_min": response_median,
        "response_p90_min": response_p90,
        "resolution_median_min": resolution_median,
        "resolution_p90_min": resolution_p90,
        "response_sla_met": int((response == MET).sum()),
        "response_sla_breached": int((response == BREACHED).sum()),
        "response_sla_compliance": compliance(response),
        "resolution_sla_met": int((resolution == MET).sum()),
        "resolution_sla_breached": int((resolution == BREACHED).sum()),
        "resolution_sla_compliance": compliance(resolution),
        "resolution_rate": resolution_rate(population, as_of),
        "open": int(open_mask(open_now, as_of).sum()),
        "overdue": int(overdue_mask(open_now, as_of).sum()),
        "handoffs_mean": handoffs_mean(population, events, as_of),
        "ping_pong_issues": len(ping_pong),
    }


def issue_kpis_by_department(population: pd.DataFrame, events: pd.DataFrame,
                             open_now: pd.DataFrame, as_of: datetime,
                             departments: Iterable[str]) -> dict[str, dict]:
    """issue_kpis per owning department, for every department given (zeros where none)."""
    result = {}
    for code in departments:
        owned = population[population["owner_department_code"] == code]
        result[code] = issue_kpis(
            owned, events[events["issue_id"].isin(owned["id"])],
            open_now[open_now["owner_department_code"] == code], as_of)
    return result


def dwell_minutes(lot_positions: pd.DataFrame, as_of: datetime) -> pd.Series:
    """Minutes since each lot last moved into the location where it sits."""
    return ((instant(as_of) - _instants(lot_positions, "last_in_at")) / MINUTE).astype("float64")


def stagnant_lots(lot_positions: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Lots sitting longer than their location allows (a location without a limit never
    holds stagnant material), with their dwell_minutes, longest first."""
    lots = lot_positions.assign(dwell_minutes=dwell_minutes(lot_positions, as_of))
    limit = pd.to_numeric(lots["max_dwell_minutes"]).astype("float64")
    stuck = (lots["qty"] > 0) & limit.notna() & (lots["dwell_minutes"] > limit)
    return lots[stuck].sort_values(
        ["dwell_minutes", "location_code", "lot", "material_code"],
        ascending=[False, True, True, True], kind="stable")


def day_ends(since: datetime, until: datetime, tz: tzinfo) -> list[datetime]:
    """The instants that end each site-local day of [since, until): each local midnight
    inside the period, then `until` itself (which ends the last, possibly partial, day)."""
    if until <= since:
        return []
    ends = []
    day = since.astimezone(tz).date()
    while True:
        day += timedelta(days=1)
        midnight = datetime.combine(day, time(), tzinfo=tz)
        if midnight >= until:
            break
        ends.append(midnight.astimezone(until.tzinfo))
    ends.append(until)
    return ends


def turnover(consumed: pd.DataFrame, stock_levels: pd.DataFrame) -> float | None:
    """Quantity consumed / average on-hand at the day ends; None without stock to turn."""
    if stock_levels.empty:
        return None
    average = float(stock_levels["qty"].mean())
    if average <= 0:
        return None
    return float(consumed["qty"].sum()) / average


def plan_attainment(plan: pd.DataFrame, as_of: datetime) -> float | None:
    """Actual / planned over the shifts ended by as_of with an actual quantity reported."""
    ended = _instants(plan, "shift_end") <= instant(as_of)
    shifts = plan[ended & plan["actual_qty"].notna()]
    planned = float(shifts["planned_qty"].sum())
    return float(shifts["actual_qty"].sum()) / planned if planned > 0 else None


def collaboration_star(departments: Iterable[tuple[str, int, float | None, float | None]], minimum: int,
                       red: Callable[[float], bool]) -> tuple[str | None, list[str]]:
    """The collaboration star (协同之星, docs/wall.md) among departments given as (code, issues
    raised, median response minutes, response SLA compliance): of those with at least `minimum`
    issues and a compliance that is not `red`, the fastest median response; a tie goes to the
    higher compliance, then the more issues, then the code. Returns the star (None when no
    department qualifies) and the codes of the others with the same median."""
    contenders = [d for d in departments if d[1] >= minimum and d[2] is not None and d[3] is not None
                  and not red(d[3])]
    if not contenders:
        return None, []
    best = min(contenders, key=lambda d: (d[2], -d[3], -d[1], d[0]))
    return best[0], sorted(d[0] for d in contenders if d is not best and d[2] == best[2])
