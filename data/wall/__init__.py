"""The screens' hot path: the frames of one refresh as numpy columns (`columns`, `frames`),
kept current by following what was written (`follower`), every figure of each wall page at
an explicit `as_of` (`overview`, `material`), and one snapshot per interval for every screen
(`screens`). The figures are a second copy of the rules of data/kpis.py, made for speed.

This module names what the rest of the project uses; the modules above are its parts.
"""
from data.wall.columns import MINUTE_NS, NEVER_NS, IssueColumns, epoch_ns, issue_columns, ns
from data.wall.frames import (EVENT_HORIZON, ISSUE_HORIZON, PLAN_HORIZON, WallFrames,
                              display_names, load_frames, load_frames_and_events)
from data.wall.material import material_from_frames, material_snapshot
from data.wall.overview import overview_from_frames, overview_snapshot, shift_attainment

__all__ = [
    "MINUTE_NS", "NEVER_NS", "IssueColumns", "epoch_ns", "issue_columns", "ns",
    "EVENT_HORIZON", "ISSUE_HORIZON", "PLAN_HORIZON", "WallFrames", "display_names", "load_frames",
    "load_frames_and_events", "material_from_frames", "material_snapshot", "overview_from_frames",
    "overview_snapshot", "shift_attainment",
]
