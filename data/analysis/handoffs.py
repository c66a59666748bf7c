"""Who passes issues to whom, from the holding intervals (data.analysis.holding).

A hand-off is one hop let go by `reassigned` or `escalated` followed by the next hop of the
same issue: from the department that let go to the one that took it. Its wait is how long
the giving department held the issue before passing it on (the giving hop's minutes, wall
clock and in working time). A return is a hop into a department that had held the issue and
let it go (holding.py); a return need not follow a hand-off (a resolved issue reopened by
another department that held it before is a return too), as the contract's ping-pong counts it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from data.analysis.holding import CANCELLED, CLOSED, HANDED_ON, RESOLVED

OPEN = "open"
END_NODES = (RESOLVED, CLOSED, CANCELLED, OPEN)
UNKNOWN_DEPARTMENT = "?"
NODE_SEPARATOR = "·"
FLOW_COLUMNS = ("source", "target", "count", "returns")
MATRIX_COLUMNS = ("from_department", "to_department", "count", "returns", "median_wait_min",
                  "median_wait_work_min")
PAIR_COLUMNS = ("department_a", "department_b", "returns", "issues", "handoffs", "issue_ids")


def node(department: str | None, hop: int) -> str:
    """A hop's node in the flow: department and hop number, as `QA·2`."""
    return f"{department or UNKNOWN_DEPARTMENT}{NODE_SEPARATOR}{hop}"


class _Steps:
    """Each hop beside the next hop of the same issue, as arrays. The intervals hold whole
    issues, each issue's hops together and in order, as holding_intervals gives them."""

    def __init__(self, intervals: pd.DataFrame):
        self.issue_id = intervals["issue_id"].to_numpy(dtype=object)
        self.hop = intervals["hop"].to_numpy(dtype="int64")
        department, names = pd.factorize(intervals["department_code"].to_numpy(dtype=object),
                                         sort=True)
        # No department known (code -1) is named UNKNOWN_DEPARTMENT, in its place among the
        # names, so that codes sort as names do.
        names = np.asarray(names, dtype=object)
        unknown = int(np.searchsorted(names, UNKNOWN_DEPARTMENT)) if len(names) else 0
        self.names = np.insert(names, unknown, UNKNOWN_DEPARTMENT)
        self.department = np.where(department < 0, unknown,
                                   department + (department >= unknown))
        let_go, ways = pd.factorize(intervals["let_go_by"].to_numpy(dtype=object))
        ways = pd.Index(np.asarray(ways, dtype=object))
        self.end = np.append(pd.Index(END_NODES).get_indexer(ways),
                             END_NODES.index(OPEN))[let_go]
        self.handed_on = np.append(ways.isin(HANDED_ON), False)[let_go]
        returned = intervals["returned"].to_numpy(dtype=bool)
        self.held_min = intervals["held_min"].to_numpy(dtype="float64")
        self.held_work_min = intervals["held_work_min"].to_numpy(dtype="float64")
        n = len(self.hop)
        follows = np.ones(n, dtype=bool)
        follows[1:] = ((self.hop[1:] == self.hop[:-1] + 1)
                       & (self.issue_id[1:] == self.issue_id[:-1]))
        broken = np.flatnonzero((self.hop > 1) & ~follows)
        if len(broken) or (n and self.hop[0] != 1):
            row = int(broken[0]) if len(broken) else 0
            raise ValueError(
                f"intervals: hop {self.hop[row]} of issue {self.issue_id[row]!r} does not follow "
                f"its hop {self.hop[row] - 1}; pass whole issues, as holding_intervals gives them")
        # A hop 1 is never a return, so the next row's values are the next hop's or harmless.
        self.has_next = np.zeros(n, dtype=bool)
        self.has_next[:-1] = self.hop[1:] > 1
        self.next_department = np.where(self.has_next, np.roll(self.department, -1), -1)
        self.next_hop = np.where(self.has_next, np.roll(self.hop, -1), 0)
        self.next_returned = np.zeros(n, dtype=bool)
        self.next_returned[:-1] = returned[1:]


def _links(steps: _Steps) -> pd.DataFrame:
    """One link per hop, as codes: to the issue's next hop, or to where the issue ended up
    (target department -1 - the end node's place in END_NODES, target hop 0)."""
    return pd.DataFrame({
        "department": steps.department, "hop": steps.hop,
        "next_department": np.where(steps.has_next, steps.next_department, -1 - steps.end),
        "next_hop": steps.next_hop, "returned": steps.next_returned})


def _node_names(steps: _Steps, department: np.ndarray, hop: np.ndarray) -> np.ndarray:
    ends = np.asarray(END_NODES, dtype=object)
    named = [node(steps.names[d], h) if d >= 0 else ends[-1 - d]
             for d, h in zip(department.tolist(), hop.tolist())]
    return np.asarray(named, dtype=object)


def handoff_flow(intervals: pd.DataFrame) -> pd.DataFrame:
    """The links of the hand-off flow indexed by hop (FLOW_COLUMNS): from each hop's node
    (`QA·2`) to the next hop's node, or to the end node `resolved`, `closed`, `cancelled` or
    `open` (still held at as_of); `returns` counts the issues whose link goes into a
    department they had left. Most travelled first."""
    steps = _Steps(intervals)
    links = _links(steps)
    # One integer per link (department and hop on both ends), counted without a groupby.
    columns = [links[name].to_numpy(dtype="int64") - links[name].min() for name in
               ("department", "hop", "next_department", "next_hop")] if len(links) else []
    key = np.zeros(len(links), dtype=np.int64)
    for column in columns:
        key = key * (int(column.max()) + 1) + column
    which, keys = pd.factorize(key)
    first = np.full(len(keys), len(links))
    np.minimum.at(first, which, np.arange(len(links)))
    flow = links.iloc[first][["department", "hop", "next_department", "next_hop"]].assign(
        count=np.bincount(which, minlength=len(keys)),
        returns=np.bincount(which, weights=links["returned"].to_numpy(dtype="float64"),
                            minlength=len(keys))).reset_index(drop=True)
    flow["source"] = _node_names(steps, flow["department"].to_numpy(), flow["hop"].to_numpy())
    flow["target"] = _node_names(steps, flow["next_department"].to_numpy(),
                                 flow["next_hop"].to_numpy())
    flow["returns"] = flow["returns"].astype("int64")
    return flow.sort_values(["count", "source", "target"], ascending=[False, True, True],
                            kind="stable").reset_index(drop=True)[list(FLOW_COLUMNS)]


def _node_code(steps: _Steps, name: str) -> tuple[int, int] | None:
    """A node's name as the link codes of _links; None for a node of no hop here."""
    if name in END_NODES:
        return -1 - END_NODES.index(name), 0
    department, _, hop = name.rpartition(NODE_SEPARATOR)
    found = np.flatnonzero(steps.names == department)
    if not len(found) or not hop.isdigit():
        return None
    return int(found[0]), int(hop)


def flow_issue_ids(intervals: pd.DataFrame, source: str, target: str) -> list[str]:
    """The issues behind one link of the flow (nodes named as handoff_flow names them),
    sorted; none for a link the flow does not have."""
    steps = _Steps(intervals)
    start, end = _node_code(steps, source), _node_code(steps, target)
    if start is None or end is None or start[0] < 0:
        return []
    links = _links(steps)
    chosen = ((links["department"].to_numpy() == start[0]) & (links["hop"].to_numpy() == start[1])
              & (links["next_department"].to_numpy() == end[0])
              & (links["next_hop"].to_numpy() == end[1]))
    return sorted(set(steps.issue_id[chosen]))


def _handoffs(steps: _Steps) -> np.ndarray:
    return np.flatnonzero(steps.has_next & steps.handed_on)


def handoffs(intervals: pd.DataFrame) -> pd.DataFrame:
    """Every hand-off: issue_id, from_department, to_department, returned (into a department
    the issue had left), wait_min and wait_work_min (the giving hop's held minutes)."""
    steps = _Steps(intervals)
    passed = _handoffs(steps)
    return pd.DataFrame({
        "issue_id": steps.issue_id[passed],
        "from_department": steps.names[steps.department[passed]],
        "to_department": steps.names[steps.next_department[passed]],
        "returned": steps.next_returned[passed],
        "wait_min": steps.held_min[passed],
        "wait_work_min": steps.held_work_min[passed],
    })


def handoff_matrix(intervals: pd.DataFrame) -> pd.DataFrame:
    """Hand-offs from each department to each other (MATRIX_COLUMNS): how many, how many were
    returns, and the median wait before them (minutes, wall clock and in working time; NaN
    without working time). Most frequent first."""
    steps = _Steps(intervals)
    passed = _handoffs(steps)
    matrix = (pd.DataFrame({"giver": steps.department[passed],
                            "taker": steps.next_department[passed],
                            "returned": steps.next_returned[passed],
                            "wait": steps.held_min[passed],
                            "wait_work": steps.held_work_min[passed]})
              .groupby(["giver", "taker"], sort=False)
              .agg(count=("returned", "size"), returns=("returned", "sum"),
                   median_wait_min=("wait", "median"),
                   median_wait_work_min=("wait_work", "median")).reset_index())
    matrix["from_department"] = steps.names[matrix["giver"].to_numpy()]
    matrix["to_department"] = steps.names[matrix["taker"].to_numpy()]
    matrix["returns"] = matrix["returns"].astype("int64")
    return matrix.sort_values(["count", "from_department", "to_department"],
                              ascending=[False, True, True], kind="stable"
                              ).reset_index(drop=True)[list(MATRIX_COLUMNS)]


def ping_pong_pairs(intervals: pd.DataFrame) -> pd.DataFrame:
    """Unordered department pairs {A, B} (A before B) with returns between them
    (PAIR_COLUMNS): a return into A straight from B, or into B straight from A. `issues`
    counts the issues with such a return (`issue_ids`, sorted), `handoffs` all hand-offs
    between the two either way. Ranked by returns, then issues, then hand-offs."""
    steps = _Steps(intervals)
    back = np.flatnonzero(steps.next_returned)
    one, two = steps.department[back], steps.next_department[back]
    pairs = pd.DataFrame({"a": np.minimum(one, two), "b": np.maximum(one, two),
                          "issue_id": steps.issue_id[back]})
    ranked = (pairs.groupby(["a", "b"], sort=False)
              .agg(returns=("issue_id", "size"), issues=("issue_id", "nunique"),
                   issue_ids=("issue_id", lambda ids: tuple(sorted(set(ids)))))
              .reset_index())
    passed = _handoffs(steps)
    giver, taker = steps.department[passed], steps.next_department[passed]
    between = pd.DataFrame({"a": np.minimum(giver, taker), "b": np.maximum(giver, taker)}
                           ).value_counts().rename("handoffs")
    ranked = ranked.join(between, on=["a", "b"])
    ranked["handoffs"] = ranked["handoffs"].fillna(0).astype("int64")
    ranked["department_a"] = steps.names[ranked["a"].to_numpy()]
    ranked["department_b"] = steps.names[ranked["b"].to_numpy()]
    return ranked.sort_values(
        ["returns", "issues", "handoffs", "department_a", "department_b"],
        ascending=[False, False, False, True, True], kind="stable").reset_index(drop=True)[
        list(PAIR_COLUMNS)]
