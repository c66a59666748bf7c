"""The weekly review pack (data/reports/weekly.py) written to a file a person opens: a PDF to
print for the meeting, a workbook to work the figures in, or one HTML page; which one, by the
file's extension, in one language.

The three writers show the same tables: which lists the pack has, which columns each holds and
how a value of each kind reads are declared here once. A column shows when the pack's rows have
it, so a pack that grows a field does not break an older writer. Nothing is half-written: the
file is written beside its final name and renamed into place only when whole.
"""
from __future__ import annotations

import importlib
import os
import re
import secrets
import urllib.parse
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from data import settings
from data.words import LANGUAGES, bilingual_name, format_count, format_minutes, t

WRITERS = {".pdf": "data.reports.pack_pdf", ".xlsx": "data.reports.pack_xlsx",
           ".html": "data.reports.pack_html"}

# What neither a page nor a workbook can hold: control characters other than tab and line ends.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
ISSUE_PATH = "/issue/"


def write(pack: dict, path: Path, lang: str) -> None:
    """Write the pack to `path` as .pdf, .xlsx or .html, in `lang` ("zh" or "en")."""
    path = Path(path)
    if path.suffix.lower() not in WRITERS:
        raise ValueError(f"cannot write {path.name!r}: the file name must end in "
                         f"{', '.join(WRITERS)}")
    content = document(pack, path.suffix, lang)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        with open(partial, "xb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def document(pack: dict, suffix: str, lang: str) -> bytes:
    """The pack as the bytes of a .pdf, .xlsx or .html file (by `suffix`), in `lang`."""
    writer = WRITERS.get(suffix.lower())
    if writer is None:
        raise ValueError(f"no writer for {suffix!r}: one of {', '.join(WRITERS)}")
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r} is not one of {', '.join(LANGUAGES)}")
    return importlib.import_module(writer).document(pack, lang)


@dataclass(frozen=True)
class Column:
    """One column of a list: the row's key, its heading (a words key) and what kind of value
    it holds: text, name (bilingual, `key` is the stem), count, qty, min, ratio, instant, date,
    issue (an id linked to the row's trace), hops (department codes), about (a KPI or issues),
    status, flag (shown as its heading when true)."""
    key: str
    word: str
    kind: str = "text"

    def present(self, rows: list[dict]) -> bool:
        if self.kind == "name":
            return any(f"{self.key}_zh" in row or f"{self.key}_en" in row for row in rows)
        return any(self.key in row for row in rows)


@dataclass(frozen=True)
class Table:
    """A list of the pack: where it is (keys from the top), its title and its columns."""
    name: str
    where: tuple[str, ...]
    title: str
    columns: tuple[Column, ...]

    def total(self, pack: dict) -> int | None:
        """How many rows the list had before the pack kept the first ones (`<name>_total`
        beside it), or None when it keeps them all."""
        value = pack
        for key in self.where[:-1]:
            value = (value or {}).get(key)
        return (value or {}).get(f"{self.name}_total")

    def rows(self, pack: dict) -> list[dict]:
        value = pack
        for key in self.where:
            value = (value or {}).get(key)
        return list(value or [])

    def shown(self, pack: dict) -> list[Column]:
        rows = self.rows(pack)
        return [column for column in self.columns if column.present(rows)]


_ISSUE = (Column("id", "pack_col_issue", "issue"), Column("title", "pack_col_title"),
          Column("type", "pack_col_type", "name"), Column("owner", "pack_col_owner", "name"),
          Column("raised_at", "pack_col_raised_at", "instant"))

DEPARTMENTS = Table("departments", ("departments",), "pack_departments", (
    Column("rank", "pack_col_rank", "count"), Column("name", "pack_col_department", "name"),
    Column("raised", "pack_col_raised", "count"),
    Column("response_median_min", "pack_col_response_median", "min"),
    Column("response_sla_compliance", "pack_col_response_sla", "ratio"),
    Column("resolution_rate", "pack_col_resolution_rate", "ratio"),
    Column("ping_pong", "pack_col_ping_pong", "count")))

LISTS = (
    Table("worst_breaches", ("worst_breaches",), "pack_worst_breaches", _ISSUE + (
        Column("response_min", "pack_col_response", "min"), Column("limit_min", "pack_col_limit", "min"),
        Column("over_min", "pack_col_over", "min"))),
    Table("longest_open", ("longest_open",), "pack_longest_open", _ISSUE + (
        Column("open_min", "pack_col_open_for", "min"), Column("acknowledged", "pack_col_acknowledged", "flag"),
        Column("overdue", "pack_col_overdue", "flag"))),
    Table("ping_pong", ("ping_pong",), "pack_ping_pong", _ISSUE + (
        Column("handoffs", "pack_col_handoffs", "count"), Column("hops", "pack_col_hops", "hops"))),
    Table("escalations", ("escalations",), "pack_escalations", (
        Column("level", "pack_col_level", "level"), Column("count", "pack_col_count", "count"),
        Column("ack_median_min", "pack_col_ack_median", "min"))),
    Table("stagnant", ("material", "stagnant"), "pack_stagnant", (
        Column("lot", "pack_col_lot"), Column("material_code", "pack_col_material"),
        Column("material_name", "pack_col_name"), Column("location_code", "pack_col_location"),
        Column("location_name", "pack_col_location_name"), Column("qty", "pack_col_qty", "qty"),
        Column("dwell_min", "pack_col_dwell", "min"), Column("limit_min", "pack_col_limit", "min"))),
    Table("line_stops", ("material", "line_stops"), "pack_line_stops", (
        Column("id", "pack_col_issue", "issue"), Column("title", "pack_col_title"),
        Column("line", "pack_col_line"), Column("location_code", "pack_col_location"),
        Column("raised_at", "pack_col_raised_at", "instant"), Column("response_min", "pack_col_response", "min"),
        Column("stop_min", "pack_col_stop", "min"), Column("resolved", "pack_col_resolved", "flag"))),
    Table("plan", ("plan",), "pack_plan", (
        Column("line", "pack_col_line"), Column("shift_start", "pack_col_shift", "instant"),
        Column("planned", "pack_col_planned", "qty"), Column("actual", "pack_col_actual", "qty"),
        Column("attainment", "pack_col_attainment", "ratio"))),
    Table("actions", ("actions",), "pack_actions", (
        Column("id", "pack_col_action", "count"), Column("problem", "pack_col_problem"),
        Column("about", "pack_col_about", "about"), Column("countermeasure", "pack_col_countermeasure"),
        Column("owner", "pack_col_person"), Column("department_code", "pack_col_department"),
        Column("due", "pack_col_due", "date"), Column("status", "pack_col_status", "status"),
        Column("overdue", "pack_col_overdue", "flag"), Column("evidence", "pack_col_evidence"),
        Column("opened_week", "pack_col_opened"))),
)
PARETO = (("types", "pack_pareto_types"), ("locations", "pack_pareto_locations"),
          ("causes", "pack_pareto_causes"))
STATUSES = ("open", "in_progress", "done", "verified", "dropped")


def text(value: object) -> str:
    """Text from data as a page or a workbook can hold it: control characters as U+FFFD, and
    every line end a line feed (a workbook keeps a bare carriage return as an escape code)."""
    value = "" if value is None else str(value)
    return _CONTROL.sub("\ufffd", value.replace("\r\n", "\n").replace("\r", "\n"))


def instant(value: str | None, tz: str) -> datetime | None:
    """A pack instant as the site's wall-clock time (naive: a workbook has no time zones)."""
    if not value:
        return None
    return datetime.fromisoformat(value).astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def day(value: str | None) -> date | None:
    return date.fromisoformat(value[:10]) if value else None


def issue_url(row: dict) -> str | None:
    """Where an issue's trace is, for a link; None unless the trace is an issue page."""
    trace = row.get("trace")
    if not isinstance(trace, str) or not trace.startswith(ISSUE_PATH):
        return None
    return settings.public_url() + urllib.parse.quote(trace, safe="/")


def plant(lang: str) -> str:
    return settings.get("PLANT_NAME") or t("app_title", lang)


def kpi_names(pack: dict, lang: str) -> dict[str, str]:
    return {kpi["key"]: bilingual_name(kpi, lang) for kpi in pack.get("kpis", [])}


def kpi_value(value: float | None, unit: str, lang: str) -> str:
    """A KPI as the pack's table shows it: minutes to a tenth (the name says minutes), a share
    as a percentage to a tenth, a count as a count."""
    if value is None:
        return t("no_value", lang)
    if unit == "min":
        return f"{value:,.1f}"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    return format_count(round(value, 2))


def kpi_delta(value: float | None, unit: str, lang: str) -> str:
    """A change with its sign; a change of a share in percentage points."""
    if value is None:
        return t("no_value", lang)
    if unit == "ratio":
        # A change that rounds to nothing reads +0.0, never -0.0.
        return t("pack_pp", lang).format(value=f"{round(value * 100, 1) + 0.0:+.1f}")
    if unit == "min":
        return f"{round(value, 1) + 0.0:+,.1f}"
    return f"{value:+,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:+,.0f}"


def cell(column: Column, row: dict, lang: str, tz: str, names: dict[str, str]) -> str:
    """A list's cell as the page shows it."""
    if column.kind == "name":
        return text(bilingual_name(row, lang, column.key))
    value = row.get(column.key)
    if value is None or value == "":
        return "" if column.kind in ("text", "flag") else t("no_value", lang)
    if column.kind in ("count", "qty"):
        return format_count(value)
    if column.kind == "min":
        return format_minutes(value, lang)
    if column.kind == "ratio":
        return f"{value * 100:.1f}%"
    if column.kind == "instant":
        return instant(value, tz).strftime("%m-%d %H:%M")
    if column.kind == "date":
        return day(value).strftime("%Y-%m-%d")
    if column.kind == "hops":
        return " → ".join(text(code) for code in value)
    if column.kind == "level":
        return t("pack_level", lang).format(level=value)
    if column.kind == "status":
        return t(f"pack_status_{value}", lang) if value in STATUSES else text(value)
    if column.kind == "flag":
        return t(column.word, lang) if value else ""
    if column.kind == "about":
        if row.get("about_kpi"):
            return text(names.get(row["about_kpi"], row["about_kpi"]))
        if row.get("about_issues"):
            return ", ".join(text(item) for item in row["about_issues"])
        return text(names.get(value, value))
    return text(value)
