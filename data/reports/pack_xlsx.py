"""The weekly review pack as one workbook: a summary sheet (the KPI table with its changes),
one sheet per list with its header frozen and a filter on it, the Pareto and the daily series
with native charts.

Figures are numbers and instants are date-time cells (the site's wall-clock time: a workbook
has no time zones), each with a number format, so a planner sorts, filters and sums them as
they are. Text from data is written as text, never as a formula, and text a spreadsheet would
run as one carries the quote prefix (data/exports.py), so editing the cell keeps it text.
"""
from __future__ import annotations

import io
from datetime import date, datetime

import xlsxwriter

from data.exports import runs_as_formula
from data.reports import render
from data.words import bilingual_name, t

GOOD, BAD, HEAD = "#17803D", "#C0262D", "#EEF2F7"
_FORMATS = {"count": "#,##0", "qty": "#,##0.###", "min": "#,##0.0", "ratio": "0.0%",
            "instant": "yyyy-mm-dd hh:mm", "date": "yyyy-mm-dd", "level": '"L"0'}
_KPI_FORMATS = {"count": "#,##0.##", "min": "#,##0.0", "ratio": "0.0%"}
_DELTA_FORMATS = {"count": "+#,##0.##;-#,##0.##;0", "min": "+#,##0.0;-#,##0.0;0.0",
                  "ratio": "+0.0%;-0.0%;0.0%"}


def document(pack: dict, lang: str) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False,
                                     "strings_to_urls": False, "strings_to_numbers": False})
    _Pack(book, pack, lang).write()
    book.close()
    return out.getvalue()


class _Pack:
    def __init__(self, book: xlsxwriter.Workbook, pack: dict, lang: str):
        self.book, self.pack, self.lang, self.tz = book, pack, lang, pack["tz"]
        self.names = render.kpi_names(pack, lang)
        self.head = book.add_format({"bold": True, "bg_color": HEAD, "bottom": 1, "text_wrap": True,
                                     "valign": "top"})
        self.plain = book.add_format()
        self.quoted = book.add_format({"quote_prefix": True})
        self.quoted_head = book.add_format({"bold": True, "bg_color": HEAD, "bottom": 1, "quote_prefix": True})
        self.link = book.add_format({"font_color": "#2F6DB5", "underline": 1})
        self.bold = book.add_format({"bold": True, "font_size": 14})
        self._formats: dict[tuple, object] = {}

    def fmt(self, number_format: str, colour: str | None = None, bold: bool = False):
        key = (number_format, colour, bold)
        if key not in self._formats:
            spec = {"num_format": number_format, "bold": bold}
            if colour:
                spec["font_color"] = colour
            self._formats[key] = self.book.add_format(spec)
        return self._formats[key]

    def text(self, sheet, row: int, col: int, value: object, style=None) -> None:
        value = render.text(value)
        if runs_as_formula(value):
            style = self.quoted_head if style is self.head else self.quoted
        sheet.write_string(row, col, value, style or self.plain)

    def number(self, sheet, row: int, col: int, value, number_format: str, colour: str | None = None):
        if value is None:
            sheet.write_blank(row, col, None)
        elif isinstance(value, (date, datetime)):
            sheet.write_datetime(row, col, value, self.fmt(number_format, colour))
        else:
            sheet.write_number(row, col, value, self.fmt(number_format, colour))

    def write(self) -> None:
        self.summary()
        self.table(render.DEPARTMENTS)
        for table in render.LISTS:
            self.table(table)
        self.pareto()
        self.daily()

    def summary(self) -> None:
        pack, lang = self.pack, self.lang
        sheet = self.book.add_worksheet(t("pack_sheet_summary", lang))
        sheet.write_string(0, 0, f"{t('pack_title', lang)} · {pack['week']}", self.bold)
        self.text(sheet, 1, 0, render.plant(lang))
        sheet.write_string(2, 0, t("pack_window", lang))
        self.number(sheet, 2, 1, render.instant(pack["since"], self.tz), _FORMATS["instant"])
        self.number(sheet, 2, 2, render.instant(pack["until"], self.tz), _FORMATS["instant"])
        sheet.write_string(3, 0, t("pack_as_of", lang))
        self.number(sheet, 3, 1, render.instant(pack["as_of"], self.tz), _FORMATS["instant"])
        heads = ["pack_col_kpi", "pack_col_this", "pack_col_last", "pack_col_avg4", "pack_col_delta",
                 "pack_col_better", "pack_col_signal"]
        top = 5
        for col, word in enumerate(heads):
            sheet.write_string(top, col, t(word, lang), self.head)
        kpis = pack.get("kpis", [])
        for i, kpi in enumerate(kpis, start=top + 1):
            unit = kpi["unit"]
            self.text(sheet, i, 0, bilingual_name(kpi, lang))
            for col, key in ((1, "this"), (2, "last"), (3, "avg4")):
                self.number(sheet, i, col, kpi.get(key), _KPI_FORMATS.get(unit, "General"))
            good = kpi.get("good")
            colour = None if good is None else GOOD if good else BAD
            self.number(sheet, i, 4, kpi.get("delta"), _DELTA_FORMATS.get(unit, "General"), colour)
            sheet.write_string(i, 5, t(f"pack_better_{kpi['better']}", lang) if kpi.get("better") else "")
            sheet.write_string(i, 6, t("pack_signal", lang) if kpi.get("signal") else "")
        sheet.freeze_panes(top + 1, 0)
        sheet.autofilter(top, 0, top + len(kpis), len(heads) - 1)
        below = top + len(kpis) + 2
        sheet.write_string(below, 0, t("pack_turnover", lang))
        self.number(sheet, below, 1, (pack.get("material") or {}).get("turnover"), "0.00")
        sheet.write_string(below + 1, 0, t("pack_stagnant", lang))
        self.number(sheet, below + 1, 1, (pack.get("material") or {}).get("stagnant_total"), _FORMATS["count"])
        star = pack.get("star")
        sheet.write_string(below + 2, 0, t("pack_star", lang))
        if star:
            self.text(sheet, below + 2, 1, bilingual_name(star, lang))
            self.text(sheet, below + 2, 2, star.get("why_en") if lang == "en" else star.get("why_zh"))
        else:
            sheet.write_string(below + 2, 1, t("pack_no_star", lang))
        sheet.set_column(0, 0, 28)
        sheet.set_column(1, 4, 16)
        sheet.set_column(5, 6, 14)

    def table(self, table: render.Table) -> None:
        lang, rows, columns = self.lang, table.rows(self.pack), table.shown(self.pack)
        sheet = self.book.add_worksheet(t(table.title, lang)[:31])
        for col, column in enumerate(columns):
            heading = t(column.word, lang)
            if column.kind == "min":
                heading += f"（{t('minutes_short', lang)}）" if lang == "zh" else f" ({t('minutes_short', lang)})"
            sheet.write_string(0, col, heading, self.head)
            sheet.set_column(col, col, 18 if column.kind in ("instant", "text", "name", "about", "hops") else 12)
        for r, row in enumerate(rows, start=1):
            for col, column in enumerate(columns):
                self.cell(sheet, r, col, column, row)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(len(rows), 1), max(len(columns), 1) - 1)

    def cell(self, sheet, r: int, col: int, column: render.Column, row: dict) -> None:
        kind, value = column.kind, row.get(column.key)
        if kind == "name":
            self.text(sheet, r, col, bilingual_name(row, self.lang, column.key))
        elif kind in _FORMATS and kind not in ("instant", "date"):
            self.number(sheet, r, col, value, _FORMATS[kind])
        elif kind == "instant":
            self.number(sheet, r, col, render.instant(value, self.tz), _FORMATS[kind])
        elif kind == "date":
            self.number(sheet, r, col, render.day(value), _FORMATS[kind])
        elif kind == "flag":
            sheet.write_boolean(r, col, bool(value))
        elif kind == "issue":
            url, label = render.issue_url(row), render.text(value)
            if url and not runs_as_formula(label) and len(url) <= 2079:
                sheet.write_url(r, col, url, self.link, label)
            else:
                self.text(sheet, r, col, label)
        else:
            self.text(sheet, r, col, render.cell(column, row, self.lang, self.tz, self.names))

    def pareto(self) -> None:
        lang, pareto = self.lang, self.pack.get("pareto") or {}
        sheet = self.book.add_worksheet(t("pack_sheet_pareto", lang))
        heads = ["pack_col_dimension", "pack_col_code", "pack_col_name", "pack_col_this", "pack_col_avg4"]
        for col, word in enumerate(heads):
            sheet.write_string(0, col, t(word, lang), self.head)
        r = 1
        for n, (key, word) in enumerate(render.PARETO):
            rows = sorted(pareto.get(key) or [], key=lambda row: -(row.get("this") or 0))
            first = r
            for row in rows:
                sheet.write_string(r, 0, t(word, lang))
                self.text(sheet, r, 1, row.get("code"))
                self.text(sheet, r, 2, bilingual_name(row, lang) or row.get("code"))
                self.number(sheet, r, 3, row.get("this"), _FORMATS["count"])
                self.number(sheet, r, 4, row.get("avg4"), "#,##0.##")
                r += 1
            if rows:
                chart = self.book.add_chart({"type": "bar"})
                for col, colour in ((3, "#2F6DB5"), (4, "#8A94A0")):
                    chart.add_series({"name": [sheet.name, 0, col],
                                      "categories": [sheet.name, first, 2, r - 1, 2],
                                      "values": [sheet.name, first, col, r - 1, col],
                                      "fill": {"color": colour}})
                chart.set_title({"name": t(word, lang)})
                chart.set_y_axis({"reverse": True})
                chart.set_legend({"position": "bottom"})
                chart.set_size({"width": 560, "height": 90 + 22 * len(rows)})
                sheet.insert_chart(1 + 18 * n, 6, chart)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(r - 1, 1), len(heads) - 1)
        sheet.set_column(0, 2, 18)

    def daily(self) -> None:
        lang, daily = self.lang, self.pack.get("daily") or {}
        if not daily:
            return
        sheet = self.book.add_worksheet(t("pack_sheet_daily", lang))
        keys = list(daily)
        days = sorted({p["date"] for series in daily.values() for p in series})
        units = {kpi["key"]: kpi["unit"] for kpi in self.pack.get("kpis", [])}
        sheet.write_string(0, 0, t("pack_col_date", lang), self.head)
        for col, key in enumerate(keys, start=1):
            self.text(sheet, 0, col, self.names.get(key, key), self.head)
        for r, d in enumerate(days, start=1):
            self.number(sheet, r, 0, render.day(d), _FORMATS["date"])
        for col, key in enumerate(keys, start=1):
            values = {p["date"]: p.get("value") for p in daily[key]}
            for r, d in enumerate(days, start=1):
                self.number(sheet, r, col, values.get(d), _KPI_FORMATS.get(units.get(key), "General"))
            chart = self.book.add_chart({"type": "line"})
            chart.add_series({"name": [sheet.name, 0, col], "categories": [sheet.name, 1, 0, len(days), 0],
                              "values": [sheet.name, 1, col, len(days), col], "marker": {"type": "circle", "size": 3}})
            chart.set_legend({"none": True})
            chart.set_title({"name": self.names.get(key, key)})
            chart.set_x_axis({"date_axis": True, "num_format": "mm-dd"})
            chart.set_size({"width": 620, "height": 260})
            sheet.insert_chart(1 + 14 * (col - 1), len(keys) + 2, chart)
        sheet.freeze_panes(1, 1)
        sheet.autofilter(0, 0, max(len(days), 1), len(keys))
        sheet.set_column(0, len(keys), 16)
