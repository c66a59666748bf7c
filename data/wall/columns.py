"""Issues as numpy columns: instants and limits as int64 nanoseconds, so that every figure
of contract section 2 the wall shows is counted in a few vectorised passes. These are a
second copy of the rules of data/kpis.py, tied to them by tests/test_wall_differential.py."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from data import kpis

NEVER_NS = np.iinfo(np.int64).max
MINUTE_NS = 60_000_000_000


def ns(instants: pd.Series) -> np.ndarray:
    """Instants as int64 nanoseconds since the epoch, NEVER_NS where there is none (a step
    not taken yet), so `stamp <= at` reads "had happened by at"."""
    values = instants.array.as_unit("ns").asi8
    return np.where(instants.isna().to_numpy(), NEVER_NS, values)


def _limit_ns(minutes: pd.Series) -> np.ndarray:
    """Time limits in minutes as nanoseconds, converted as pandas converts them."""
    limit = pd.to_timedelta(pd.to_numeric(minutes).astype("float64"), unit="m")
    return np.where(limit.isna().to_numpy(), NEVER_NS, limit.array.as_unit("ns").asi8)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def epoch_ns(instant: datetime) -> int:
    """An aware instant as nanoseconds since the epoch (integer arithmetic: a refresh asks
    this dozens of times)."""
    if isinstance(instant, pd.Timestamp) or instant.tzinfo is None:
        return int(kpis.instant(instant).as_unit("ns").value)
    return (instant - _EPOCH) // _MICROSECOND * 1000


def group_medians(groups: np.ndarray, values: np.ndarray, count: int) -> list:
    """The median of the values of each group 0..count-1 (None for a group without a
    value), as pandas' groupby median gives it."""
    known = ~np.isnan(values)
    groups, values = groups[known], values[known]
    order = np.argsort(groups, kind="stable")
    groups, values = groups[order], values[order]
    bounds = np.searchsorted(groups, np.arange(count + 1))
    return [float(np.median(values[start:end])) if end > start else None
            for start, end in zip(bounds[:-1], bounds[1:])]



def issue_columns(frame: pd.DataFrame, departments: list[str],
                  ping_pong_at: pd.Series | None = None) -> dict[str, np.ndarray]:
    """An issue frame (queries.ISSUE_COLUMNS) as the numpy columns the overview counts with:
    instants and limits as nanoseconds, the owner also as its position in `departments`,
    and when each issue first went back to a department it had left (NEVER_NS if not).
    `contact` is whom to call (queries.WALL_ISSUE_COLUMNS' acknowledged_by; None without it)."""
    def text(name: str) -> np.ndarray:
        return frame[name].to_numpy(dtype=object)

    return {
        "id": text("id"), "raised": ns(frame["raised_at"]),
        "acknowledged": ns(frame["acknowledged_at"]), "resolved": ns(frame["resolved_at"]),
        "closed": ns(frame["closed_at"]),
        "ack_limit": _limit_ns(frame["ack_minutes"]), "resolve_limit": _limit_ns(frame["resolve_minutes"]),
        "cancelled": (frame["status"] == "cancelled").to_numpy(dtype=bool),
        "owner": text("owner_department_code"),
        "department": _positions(frame["owner_department_code"], departments),
        "line": text("line"), "issue_type": text("issue_type"), "severity": text("severity"),
        "title": text("title"), "location_code": text("location_code"),
        "contact": text("acknowledged_by") if "acknowledged_by" in frame
        else np.full(len(frame), None, dtype=object),
        "ping_pong": np.full(len(frame), NEVER_NS, dtype=np.int64) if ping_pong_at is None
        else ns(ping_pong_at.reindex(frame["id"].to_numpy(dtype=object))),
    }


def _positions(codes: pd.Series, known: list[str]) -> np.ndarray:
    """Each code's position in `known`, -1 for one not in it."""
    position = {code: n for n, code in enumerate(known)}
    return np.fromiter((position.get(code, -1) for code in codes.tolist()), dtype=np.int64,
                       count=len(codes))


class IssueColumns:
    """Issues as numpy columns (see `issue_columns`), and the figures of contract section 2
    over them: the same rules as data.kpis, vectorised for a refresh that must take
    milliseconds. A selection keeps row numbers into the shared columns and takes a column
    only when it is first read."""

    def __init__(self, columns: dict[str, np.ndarray], rows: np.ndarray | None = None):
        self._columns = columns
        self._rows = rows

    def __getattr__(self, name: str) -> np.ndarray:
        columns = self.__dict__["_columns"]
        if name not in columns:
            raise AttributeError(name)
        rows = self.__dict__["_rows"]
        values = columns[name] if rows is None else columns[name][rows]
        self.__dict__[name] = values
        return values

    def __len__(self) -> int:
        return len(self._columns["id"]) if self._rows is None else len(self._rows)

    def as_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self._columns}

    def where(self, mask: np.ndarray) -> "IssueColumns":
        rows = np.flatnonzero(mask) if self._rows is None else self._rows[mask]
        return IssueColumns(self._columns, rows)

    def finished_mask(self, at: int) -> np.ndarray:
        """Resolved, or closed without a resolution, by at (kpis.resolution_rate)."""
        return (self.resolved <= at) | (self.closed <= at)

    def open_mask(self, at: int) -> np.ndarray:
        return (self.raised <= at) & ~self.finished_mask(at) & ~self.cancelled

    def overdue_mask(self, at: int) -> np.ndarray:
        waited = at - self.raised
        late = ((self.acknowledged > at) & (waited > self.ack_limit)) | (waited > self.resolve_limit)
        return self.open_mask(at) & late

    def response_outcomes(self, at: int) -> tuple[np.ndarray, np.ndarray]:
        """(met, breached) masks of the response SLA (kpis.sla_outcomes)."""
        done = self.acknowledged <= at
        elapsed = np.where(done, self.acknowledged - self.raised, at - self.raised)
        has_limit = self.ack_limit != NEVER_NS
        met = done & has_limit & (elapsed <= self.ack_limit)
        breached = has_limit & (self.raised <= at) & (elapsed > self.ack_limit)
        return met, breached

    def response_minutes(self, at: int) -> np.ndarray:
        done = self.acknowledged <= at
        return np.where(done, (self.acknowledged - self.raised) / MINUTE_NS, np.nan)

    def window_figures(self, at: int) -> dict:
        met, breached = self.response_outcomes(at)
        median, _ = kpis.median_p90(self.response_minutes(at))
        decided = int(met.sum()) + int(breached.sum())
        return {"median_response_min": median,
                "response_sla_compliance": int(met.sum()) / decided if decided else None,
                "resolution_rate": float(self.finished_mask(at).sum() / len(self)) if len(self) else None}

