"""The weekly review pack as one standalone HTML document, the source of the printed PDF too.

A4 landscape with a running header (plant, week, page n / N) for the meeting's paper copy;
inline CSS and no script, so the file opens anywhere and runs nothing. Every value from the pack
reaches the page through Jinja2 with autoescaping, and the charts are SVG drawn here with every
label escaped: vector on paper at any zoom, and no browser needed to make them. The CJK font is
named explicitly: a generic family may pick a face without the glyphs.
"""
from __future__ import annotations

import math
from datetime import date, timedelta

import jinja2
from markupsafe import Markup, escape

from data.reports import render
from data.words import bilingual_name, format_count, t

FONT = '"Noto Sans CJK SC", "Noto Sans SC", "Noto Sans", sans-serif'
SVG_FONT = "'Noto Sans CJK SC', 'Noto Sans SC', sans-serif"
BLUE, GREY, INK, ORANGE, SHADE = "#2f6db5", "#8a94a0", "#1b1f24", "#d9822b", "#eef2f7"

_TEMPLATE = """<!DOCTYPE html>
<html lang="{{ html_lang }}">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{{ title }} · {{ week }}</title>
<style>
@page {
  size: A4 landscape;
  margin: 15mm 11mm 11mm 11mm;
  @top-left { content: string(plant) "  ·  " string(week); font: 8pt {{ font }}; color: #555; }
  @top-right { content: {{ page_css }}; font: 8pt {{ font }}; color: #555; }
}
html { font-family: {{ font }}; font-size: 8.5pt; color: #1b1f24; }
body { margin: 0; }
h1 { font-size: 15pt; margin: 0 0 2pt 0; }
h2 { font-size: 11pt; margin: 10pt 0 4pt 0; padding-bottom: 2pt; border-bottom: 1.5pt solid #2f6db5;
     break-after: avoid; }
h3 { font-size: 9pt; margin: 4pt 0 2pt 0; break-after: avoid; }
.masthead { display: flex; justify-content: space-between; align-items: baseline;
            border-bottom: 2pt solid #1b1f24; padding-bottom: 3pt; }
.masthead .plant { string-set: plant content(); font-size: 10pt; }
.masthead .week { string-set: week content(); }
.masthead .meta { color: #555; text-align: right; }
table { width: 100%; border-collapse: collapse; margin-bottom: 4pt; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
th { text-align: left; font-weight: 700; background: #eef2f7; border-bottom: 0.75pt solid #8a94a0;
     padding: 2pt 4pt; }
td { padding: 1.5pt 4pt; border-bottom: 0.5pt solid #d5dbe2; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.when { white-space: nowrap; }
.good { color: #17803d; }
.bad { color: #c0262d; font-weight: 700; }
.flag { color: #c0262d; font-weight: 700; }
.signal { font-weight: 700; }
.signal::before { content: "● "; color: #d9822b; }
.legend, .note { color: #555; font-size: 7.5pt; }
.row { display: flex; gap: 6mm; }
.row > div { flex: 1; }
.keep { break-inside: avoid; }
.star { border: 1pt solid #d9822b; padding: 3pt 6pt; margin: 4pt 0; break-inside: avoid; }
.star b { font-size: 10pt; }
a { color: inherit; text-decoration: none; border-bottom: 0.5pt dotted #8a94a0; }
svg { display: block; }
</style>
</head>
<body>
<div class="masthead">
  <div><h1>{{ title }}</h1><span class="plant">{{ plant }}</span></div>
  <div class="meta"><b class="week">{{ week_label }}</b><br>
    {{ words.as_of }} {{ as_of }} · {{ words.built_at }} {{ built_at }}</div>
</div>

<h2>{{ words.kpis }}</h2>
<table class="kpis">
<thead><tr><th>{{ words.col_kpi }}</th><th class="num">{{ words.col_this }}</th>
<th class="num">{{ words.col_last }}</th><th class="num">{{ words.col_avg4 }}</th>
<th class="num">{{ words.col_delta }}</th><th>{{ words.col_better }}</th><th>{{ words.col_signal }}</th></tr></thead>
<tbody>
{% for k in kpis %}
<tr><td>{{ k.name }}</td><td class="num"><b>{{ k.this }}</b></td><td class="num">{{ k.last }}</td>
<td class="num">{{ k.avg4 }}</td><td class="num {{ k.tone }}">{{ k.delta }}</td><td>{{ k.better }}</td>
<td>{% if k.signal %}<span class="signal">{{ words.signal }}</span>{% endif %}</td></tr>
{% endfor %}
</tbody>
</table>
<p class="legend">{{ words.legend }}</p>

{% if daily %}
<h2>{{ words.daily }}</h2>
<div class="row">
{% for chart in daily %}<div class="keep"><h3>{{ chart.title }}</h3>{{ chart.svg }}</div>{% if loop.index is even and not loop.last %}</div><div class="row">{% endif %}{% endfor %}
</div>
{% endif %}

{% for list in lists if list.name == "actions" %}
<h2>{{ list.title }}</h2>
{{ table(list) }}
{% endfor %}

<section class="keep">
<h2>{{ words.departments }}</h2>
{% if star %}
<div class="star"><b>★ {{ words.star }}: {{ star.name }}</b> — {{ star.why }}
{% for label, value in star.figures %} · {{ label }} {{ value }}{% endfor %}</div>
{% else %}<p class="note">{{ words.no_star }}</p>{% endif %}
{{ table(departments) }}
</section>

{% for list in lists[:3] %}
<h2>{{ list.title }}</h2>
{{ table(list) }}
{% endfor %}

<h2>{{ words.pareto }}</h2>
<div class="row">
{% for chart in pareto %}<div class="keep"><h3>{{ chart.title }}</h3>{{ chart.svg }}</div>{% if loop.index is even and not loop.last %}</div><div class="row">{% endif %}{% endfor %}
</div>

{% for list in lists[3:] if list.name != "actions" %}
{% if list.name == "stagnant" %}<h2>{{ words.material }}</h2>
<p>{{ words.turnover }}: <b>{{ turnover }}</b></p>{% endif %}
{% if list.name == "stagnant" %}<h3>{{ list.title }}{% if stagnant_note %} <span class="note">{{ stagnant_note }}</span>{% endif %}</h3>
{% elif list.name == "line_stops" %}<h3>{{ list.title }}{% if line_stops_note %} <span class="note">{{ line_stops_note }}</span>{% endif %}</h3>{% else %}<h2>{{ list.title }}</h2>{% endif %}
{{ table(list) }}
{% endfor %}
</body>
</html>
"""

_TABLE = """{% if not rows %}<p class="note">{{ nothing }}</p>{% else %}
<table class="{{ name }}">
<thead><tr>{% for h in heads %}<th{% if h.num %} class="num"{% endif %}>{{ h.text }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in rows %}<tr>{% for c in row %}<td{% if c.cls %} class="{{ c.cls }}"{% endif %}>{% if c.href %}<a href="{{ c.href }}">{{ c.text }}</a>{% else %}{{ c.text }}{% endif %}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>{% endif %}"""

_env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True)
_page = _env.from_string(_TEMPLATE)
_table = _env.from_string(_TABLE)

_NUMERIC = {"count", "qty", "min", "ratio", "level"}


def document(pack: dict, lang: str) -> bytes:
    return html(pack, lang).encode("utf-8")


def html(pack: dict, lang: str) -> str:
    tz = pack["tz"]
    names = render.kpi_names(pack, lang)
    since, until = render.day(pack["since"]), render.day(pack["until"])
    kpis = [_kpi_row(kpi, lang) for kpi in pack.get("kpis", [])]
    material = pack.get("material") or {}
    return _page.render(
        html_lang="zh-Hans" if lang == "zh" else "en", font=Markup(FONT),
        page_css=Markup(_page_counter(t("pack_page", lang))),
        title=t("pack_title", lang), plant=render.text(render.plant(lang)), week=pack["week"],
        week_label=f"{pack['week']}（{since:%m-%d} — {until - timedelta(days=1):%m-%d}）" if lang == "zh"
        else f"{pack['week']} ({since:%d %b} – {until - timedelta(days=1):%d %b %Y})",
        as_of=render.instant(pack["as_of"], tz).strftime("%Y-%m-%d %H:%M"),
        built_at=render.instant(pack["built_at"], tz).strftime("%Y-%m-%d %H:%M"),
        words=_Words(lang), kpis=kpis,
        daily=[{"title": names.get(key, key), "svg": line_chart(pack, key, lang)}
               for key in pack.get("daily", {})],
        star=_star(pack.get("star"), lang),
        departments=_table_view(render.DEPARTMENTS, pack, lang, names),
        lists=[_table_view(table, pack, lang, names) for table in render.LISTS],
        pareto=[{"title": t(word, lang), "svg": pareto_chart(pack["pareto"].get(key, []), lang)}
                for key, word in render.PARETO],
        turnover=render.kpi_value(material.get("turnover"), "count", lang),
        stagnant_note=_shown_of(material.get("stagnant_total"), len(material.get("stagnant") or []), lang),
        line_stops_note=_shown_of(material.get("line_stops_total"), len(material.get("line_stops") or []), lang),
        table=lambda view: Markup(_table.render(nothing=t("pack_none", lang), **view)),
    )


class _Words:
    """The page's words by short name: words.kpis is t("pack_kpis", lang)."""

    def __init__(self, lang: str):
        self._lang = lang

    def __getattr__(self, name: str) -> str:
        return t(f"pack_{name}", self._lang)


def _page_counter(words: str) -> str:
    """'page {page} / {pages}' as a CSS content value: the words as escaped CSS strings."""
    parts = []
    for piece in words.replace("{pages}", "\0pages\0").replace("{page}", "\0page\0").split("\0"):
        if piece in ("page", "pages"):
            parts.append(f"counter({piece})")
        elif piece:
            parts.append('"' + "".join(f"\\{ord(ch):06x}" for ch in piece) + '"')
    return " ".join(parts)


def _shown_of(total: int | None, shown: int, lang: str) -> str:
    """'10 of 23 shown' when a list is cut; nothing when it is whole."""
    if total is None or total <= shown:
        return ""
    return t("pack_shown_of", lang).format(total=format_count(total), shown=format_count(shown))


def _kpi_row(kpi: dict, lang: str) -> dict:
    unit = kpi["unit"]
    good = kpi.get("good")
    return {"name": render.text(bilingual_name(kpi, lang)),
            "this": render.kpi_value(kpi.get("this"), unit, lang),
            "last": render.kpi_value(kpi.get("last"), unit, lang),
            "avg4": render.kpi_value(kpi.get("avg4"), unit, lang),
            "delta": render.kpi_delta(kpi.get("delta"), unit, lang),
            "tone": "" if good is None else "good" if good else "bad",
            "better": t(f"pack_better_{kpi['better']}", lang) if kpi.get("better") else "",
            "signal": bool(kpi.get("signal"))}


def _star(star: dict | None, lang: str) -> dict | None:
    if not star:
        return None
    figures = [(t(column.word, lang), render.cell(column, star, lang, "UTC", {}))
               for column in render.DEPARTMENTS.columns
               if column.kind != "name" and column.key != "rank" and column.key in star]
    return {"name": render.text(bilingual_name(star, lang)),
            "why": render.text(star.get("why_en") if lang == "en" else star.get("why_zh")),
            "figures": figures}


def _table_view(table: render.Table, pack: dict, lang: str, names: dict[str, str]) -> dict:
    columns = table.shown(pack)
    rows = []
    for row in table.rows(pack):
        cells = []
        for column in columns:
            value = render.cell(column, row, lang, pack["tz"], names)
            cls = "num" if column.kind in _NUMERIC else "when" if column.kind in ("instant", "date") else ""
            if column.key == "overdue" and value:
                cls = "flag"
            href = render.issue_url(row) if column.kind == "issue" else None
            cells.append({"text": value, "cls": cls, "href": href})
        rows.append(cells)
    return {"name": table.name, "title": t(table.title, lang), "rows": rows,
            "heads": [{"text": t(c.word, lang), "num": c.kind in _NUMERIC} for c in columns]}


def _svg(width: int, height: int, body: list[str]) -> Markup:
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                  f'viewBox="0 0 {width} {height}" font-family="{SVG_FONT}" font-size="9">'
                  + "".join(body) + "</svg>")


def _label(text: str, room_em: float) -> str:
    """A label cut to the room it has (a CJK character is about 1 em, others about 0.55)."""
    used, out = 0.0, []
    for ch in text:
        used += 1.0 if ord(ch) > 0x2E7F else 0.55
        if used > room_em:
            return "".join(out) + "…"
        out.append(ch)
    return text


def pareto_chart(rows: list[dict], lang: str, width: int = 480) -> Markup:
    """Bars of this week, largest first, with the 4-week average as a tick on each bar and
    the cumulative share of this week at the right."""
    rows = sorted(rows, key=lambda row: -(row.get("this") or 0))
    if not rows:
        return Markup(f'<p class="note">{escape(t("pack_none", lang))}</p>')
    label_w, right_w, row_h, top = 120, 72, 17, 18
    area = width - label_w - right_w
    biggest = max(max(row.get("this") or 0, row.get("avg4") or 0) for row in rows) or 1
    total = sum(row.get("this") or 0 for row in rows) or 1
    height = top + row_h * len(rows) + 4
    body = [f'<rect x="{label_w}" y="3" width="9" height="9" fill="{BLUE}"/>',
            f'<text x="{label_w + 13}" y="11">{escape(t("pack_col_this", lang))}</text>',
            f'<line x1="{label_w + 90}" y1="2" x2="{label_w + 90}" y2="13" stroke="{INK}" stroke-width="2"/>',
            f'<text x="{label_w + 95}" y="11">{escape(t("pack_col_avg4", lang))}</text>',
            f'<text x="{width - 2}" y="11" text-anchor="end">{escape(t("pack_col_share", lang))}</text>']
    running = 0
    for i, row in enumerate(rows):
        y = top + i * row_h
        this, avg4 = row.get("this") or 0, row.get("avg4")
        running += this
        bar = area * this / biggest
        name = render.text(bilingual_name(row, lang) or row.get("code"))
        body.append(f'<text x="{label_w - 5}" y="{y + 11}" text-anchor="end">'
                    f'{escape(_label(name, (label_w - 8) / 9))}</text>')
        body.append(f'<rect x="{label_w}" y="{y + 2}" width="{bar:.1f}" height="{row_h - 5}" fill="{BLUE}"/>')
        body.append(f'<text x="{label_w + bar + 4:.1f}" y="{y + 11}">{format_count(this)}</text>')
        if avg4 is not None:
            x = label_w + area * avg4 / biggest
            body.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + row_h - 1}" '
                        f'stroke="{INK}" stroke-width="2"/>')
        body.append(f'<text x="{width - 2}" y="{y + 11}" text-anchor="end" fill="#555">'
                    f'{running / total * 100:.0f}%</text>')
    return _svg(width, height, body)


def line_chart(pack: dict, key: str, lang: str, width: int = 500, height: int = 185) -> Markup:
    """A KPI day by day: the week shaded, the mean of the days of the four weeks before as a
    dashed line (a weekly figure such as issues raised is no reference for a day's), and a mark
    on each day an action about this KPI started."""
    kpi = next((k for k in pack.get("kpis", []) if k["key"] == key), {})
    unit = kpi.get("unit", "count")
    points = [(render.day(p["date"]), p.get("value")) for p in pack["daily"][key]]
    points = [(d, v) for d, v in points if d is not None]
    if not points:
        return Markup(f'<p class="note">{escape(t("pack_none", lang))}</p>')
    since, until = render.day(pack["since"]), render.day(pack["until"])
    before = [v for d, v in points if since - timedelta(days=28) <= d < since and v is not None]
    reference = sum(before) / len(before) if before else None
    values = [v for _, v in points if v is not None] + ([reference] if reference is not None else [])
    low, high = (min(values), max(values)) if values else (0, 1)
    pad = (high - low) * 0.12 or abs(high) * 0.1 or 1
    low, high = low - pad, high + pad
    if unit != "min" or low < 0:
        low = max(low, 0) if min(values or [0]) >= 0 else low
    left, right, top, bottom = 46, 10, 16, 22
    first, last = points[0][0], points[-1][0]
    span = max((last - first).days, 1)

    def x(d: date) -> float:
        return left + (d - first).days / span * (width - left - right)

    def y(v: float) -> float:
        return top + (high - v) / (high - low) * (height - top - bottom)

    body = []
    step = (width - left - right) / span
    x0, x1 = max(x(since) - step / 2, left), min(x(until - timedelta(days=1)) + step / 2, width - right)
    if x1 > x0:
        body.append(f'<rect x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{height - top - bottom}" '
                    f'fill="{SHADE}"/>')
        body.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{top + 10}" text-anchor="middle" fill="#555">'
                    f'{escape(t("pack_this_week", lang))}</text>')
    for i in range(5):
        value = low + (high - low) * i / 4
        body.append(f'<line x1="{left}" y1="{y(value):.1f}" x2="{width - right}" y2="{y(value):.1f}" '
                    f'stroke="#d5dbe2" stroke-width="0.5"/>')
        body.append(f'<text x="{left - 4}" y="{y(value) + 3:.1f}" text-anchor="end" fill="#555">'
                    f'{escape(_axis(value, unit))}</text>')
    d = first
    while d <= last:
        if d.weekday() == 0:
            body.append(f'<line x1="{x(d):.1f}" y1="{height - bottom}" x2="{x(d):.1f}" y2="{height - bottom + 3}" '
                        f'stroke="{GREY}"/>')
            body.append(f'<text x="{x(d):.1f}" y="{height - bottom + 13}" text-anchor="middle" fill="#555">'
                        f'{d:%m-%d}</text>')
        d += timedelta(days=1)
    if reference is not None:
        body.append(f'<line x1="{left}" y1="{y(reference):.1f}" x2="{width - right}" y2="{y(reference):.1f}" '
                    f'stroke="{INK}" stroke-width="1" stroke-dasharray="4 3"/>')
        body.append(f'<text x="{left + 4}" y="{y(reference) - 3:.1f}">'
                    f'{escape(t("pack_reference", lang).format(value=render.kpi_value(reference, unit, lang)))}</text>')
    for segment in _segments(points):
        body.append(f'<polyline fill="none" stroke="{BLUE}" stroke-width="1.5" points="'
                    + " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in segment) + '"/>')
        body += [f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="1.8" fill="{BLUE}"/>' for d, v in segment]
    for marker in pack.get("markers", []):
        when = render.day(marker.get("date"))
        if marker.get("kpi") != key or when is None or not first <= when <= last:
            continue
        body.append(f'<line x1="{x(when):.1f}" y1="{top}" x2="{x(when):.1f}" y2="{height - bottom}" '
                    f'stroke="{ORANGE}" stroke-width="1.5"/>')
        body.append(f'<text x="{x(when) + 3:.1f}" y="{top + 21}" fill="{ORANGE}">'
                    f'{escape(t("pack_marker", lang).format(id=render.text(marker.get("action_id"))))}</text>')
    body.append(f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
                f'stroke="{GREY}"/>')
    return _svg(width, height, body)


def _segments(points: list[tuple[date, float | None]]) -> list[list[tuple[date, float]]]:
    """The runs of days with a value: a day without one breaks the line."""
    runs, run = [], []
    for d, v in points:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            if run:
                runs.append(run)
            run = []
        else:
            run.append((d, v))
    return runs + ([run] if run else [])


def _axis(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value * 100:.0f}%"
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.1f}"
