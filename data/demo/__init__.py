"""The demo plant: its reference data (`reference`), months of history written in one go
(`history`, told by `issue_history`, `plan_history` and `material_history` over one
`timeline`), and a live simulator that keeps writing to it (`simulator`, composing
`live_issues`, `live_plan` and `live_material` over the plant as `observed` in the
database), both at the pace of one model (`pace`)."""
from data.demo.history import build_demo_plant, is_empty

__all__ = ["build_demo_plant", "is_empty"]
