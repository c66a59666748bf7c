"""The `kpis` report: contract section 3's JSON object, and the same as a terminal table.

The figures by department come from one grouped pass (data.analysis.breakdown), so a plant
of a thousand departments costs about what one of a single department costs; the reference
rules of data.kpis give the same figures department by department, and the report's test
holds the two to each other.
"""
from __future__ import annotations

import math
from datetime import datetime
from typing import Callable, Iterable

import pandas as pd
from sqlalchemy.engine import Engine

from data import kpis, queries, timezones
from data.analysis import breakdown
from data.words import both

MINUTE_KEYS = {"response_median_min", "response_p90_min", "resolution_median_min",
               "resolution_p90_min"}
RATIO_KEYS = {"response_sla_compliance", "resolution_sla_compliance", "resolution_rate",
              "handoffs_mean"}
MINUTE_DECIMALS, RATIO_DECIMALS, QTY_DECIMALS = 2, 4, 4

def _rounded(key: str, value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if key in MINUTE_KEYS:
        return round(float(value), MINUTE_DECIMALS)
    if key in RATIO_KEYS:
        return round(float(value), RATIO_DECIMALS)
    return int(value)


def _issue_object(values: dict) -> dict:
    return {key: _rounded(key, values[key]) for key in kpis.ISSUE_KPI_KEYS}


def _site_iso(value: datetime) -> str:
    return timezones.to_site(value).isoformat()


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(value, RATIO_DECIMALS)


def issue_kpis_by_department(population: pd.DataFrame, events: pd.DataFrame,
                             open_now: pd.DataFrame, as_of: datetime,
                             departments: Iterable[str]) -> dict[str, dict]:
    """kpis.issue_kpis_by_department in one grouped pass: the same figures for every
    department given (zeros and Nones where none), at a cost that does not grow with the
    number of departments."""
    table = breakdown.kpis_by(population, events, open_now, as_of, "department",
                              values=list(departments))
    columns = list(table.columns)
    return {code: dict(zip(columns, row)) for code, *row in table.itertuples(name=None)}


ByDepartment = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame, datetime, Iterable[str]],
                        dict[str, dict]]


def kpi_report(engine: Engine, *, since: datetime, until: datetime, as_of: datetime,
               by_department: ByDepartment = issue_kpis_by_department, stock: bool = True) -> dict:
    """The KPIs of the window [since, until) computed at as_of, as the contract's JSON object.

    Material turnover covers the part of the window known at as_of; plan attainment the
    shifts starting in the window that have ended by as_of. `by_department` computes the
    figures per department (kpis.issue_kpis_by_department gives the reference ones).
    `stock=False` leaves out the stock on hand and the turnover, the heavy part on a plant
    of millions of movements, for a caller that needs only the counts (the weekly pack's
    earlier weeks): the material object then holds the stagnant lots alone.
    """
    turnover_end = min(until, as_of)
    with engine.connect() as conn:
        population = queries.issue_population(conn, since, until)
        events = queries.holder_events(conn, since, until, as_of)
        open_now = queries.open_issues(conn, as_of)
        departments = queries.departments(conn)["code"].tolist()
        lots = queries.lot_positions(conn, as_of)
        if stock:
            on_hand = queries.stock_on_hand(conn, as_of)
            consumed = queries.consumed(conn, since, turnover_end)
            levels = queries.stock_at_day_ends(
                conn, since, kpis.day_ends(since, turnover_end, timezones.site_zone()))
        plan = queries.production_plan(conn, since, until)

    material = {"stagnant_lots": len(kpis.stagnant_lots(lots, as_of))}
    if stock:
        on_hand = on_hand.assign(qty=on_hand["qty"].round(QTY_DECIMALS))
        on_hand = on_hand[on_hand["qty"] != 0]
        material["on_hand"] = [{"location": row.location_code, "material": row.material_code,
                                "qty": float(row.qty)} for row in on_hand.itertuples(index=False)]
        material["turnover"] = _ratio(kpis.turnover(consumed, levels))
    per_department = by_department(population, events, open_now, as_of, departments)
    return {
        "as_of": _site_iso(as_of),
        "since": _site_iso(since),
        "until": _site_iso(until),
        "overall": _issue_object(kpis.issue_kpis(population, events, open_now, as_of)),
        "by_department": {code: _issue_object(values)
                          for code, values in per_department.items()},
        "material": material,
        "plan_attainment": _ratio(kpis.plan_attainment(plan, as_of)),
    }


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return f"{value:,}"


def _table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> list[str]:
    """Aligned columns: the first `text_columns` to the left, the figures to the right."""
    cells = [header, *rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        padded = [cell + " " * (w - _width(cell)) if i < text_columns
                  else " " * (w - _width(cell)) + cell
                  for i, (cell, w) in enumerate(zip(row, widths))]
        return "  ".join(padded).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def _width(text: str) -> int:
    """Columns on a terminal: Chinese characters take two. Figures and codes are ASCII, and a
    table of a thousand departments has tens of thousands of them: those are counted at once."""
    if text.isascii():
        return len(text)
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def format_text(report: dict) -> str:
    """The report as plain-text tables for a terminal: issues by department, then material."""
    departments = list(report["by_department"])
    header = ["KPI", both("report_overall"), *departments]
    rows = [[both(f"kpi_{key}"), _cell(report["overall"][key]),
             *(_cell(report["by_department"][d][key]) for d in departments)]
            for key in kpis.ISSUE_KPI_KEYS]
    material = report["material"]
    lines = [
        f"{both('report_title')} {report['as_of']}",
        f"{both('report_window')} [{report['since']}, {report['until']})",
        "",
        *_table(header, rows),
        "",
        f"{both('report_stagnant_lots')}: {material['stagnant_lots']}",
        f"{both('report_turnover')}: {_cell(material.get('turnover'))}",
        f"{both('report_plan_attainment')}: {_cell(report.get('plan_attainment'))}",
        "",
        both("report_on_hand"),
    ]
    stock = [[item["location"], item["material"], _cell(item["qty"])]
             for item in material["on_hand"]]
    lines += _table([both("report_location"), both("report_material"), both("report_qty")], stock,
                    text_columns=2) if stock else [both("report_no_stock")]
    return "\n".join(lines)
