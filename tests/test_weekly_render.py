"""The weekly pack's files: the PDF a manager prints (text, fonts, pages, paper), the workbook
a planner works in (numbers, dates, filters, no formulas) and the HTML page (escaped), all
from one pack, and nothing half-written."""
from __future__ import annotations

import html.parser
import os
import re
import shutil
import subprocess
from datetime import datetime

import numpy as np
import openpyxl
import pytest

from data.exports import runs_as_formula
from data.reports import pack_html, render
from tests import hostile
from tests.weekly_sample import pack as sample_pack
from tools.databases import unavailable


def _poppler() -> None:
    if not (shutil.which("pdftotext") and shutil.which("pdftoppm") and shutil.which("pdffonts")):
        unavailable("PDF tests: poppler-utils (pdftotext, pdftoppm, pdffonts) is not installed")


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module", params=["zh", "en"])
def pdf(request, tmp_path_factory):
    _poppler()
    path = tmp_path_factory.mktemp("pdf") / f"pack-{request.param}.pdf"
    render.write(sample_pack(), path, request.param)
    return path, request.param


def test_pdf_text_holds_the_week_the_figures_and_the_departments_in_its_language(pdf):
    path, lang = pdf
    words = " ".join(_run("pdftotext", str(path), "-").split())
    pack = sample_pack()
    assert pack["week"] in words
    for kpi in pack["kpis"]:
        assert render.kpi_value(kpi["this"], kpi["unit"], lang) in words, kpi["key"]
        assert render.kpi_delta(kpi["delta"], kpi["unit"], lang) in words, kpi["key"]
    pp = "个百分点" if lang == "zh" else "pp"
    for shown in ("12.5", "-3.8", "88.7%", f"+5.6 {pp}", "212", "-24", "0.38"):
        assert shown in words, shown
    other = "en" if lang == "zh" else "zh"
    for department in pack["departments"]:
        assert department[f"name_{lang}"] in words
        assert department[f"name_{other}"] not in words


def test_pdf_embeds_only_noto_cjk(pdf):
    path, _ = pdf
    fonts = [line.split() for line in _run("pdffonts", str(path)).splitlines()[2:]]
    assert fonts
    for font in fonts:
        assert "Noto-Sans-CJK" in font[0], font
        assert font[-5] == "yes", f"{font[0]} is not embedded"


def test_pdf_pages_are_a4_landscape_and_none_is_blank(pdf, tmp_path):
    path, _ = pdf
    info = _run("pdfinfo", "-f", "1", "-l", "99", str(path))
    sizes = re.findall(r"Page +\d+ size: +([\d.]+) x ([\d.]+) pts", info)
    assert len(sizes) >= 3
    assert all((round(float(w)), round(float(h))) == (842, 595) for w, h in sizes)
    subprocess.run(["pdftoppm", "-r", "50", "-gray", str(path), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page*.pgm"))
    assert len(pages) == len(sizes)
    for page in pages:
        pixels = _pgm(page.read_bytes())
        assert pixels.shape[1] > pixels.shape[0]
        body = pixels[pixels.shape[0] // 10:]  # below the running header
        # Dark pixels are text and bars: table rules and shading alone are lighter.
        assert body.std() > 3 and (body < 128).mean() > 0.0002, page.name


def _pgm(data: bytes) -> np.ndarray:
    """A binary PGM (P5, 8 bits) as an array of grey levels."""
    header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+255\s", data)
    width, height = int(header[1]), int(header[2])
    return np.frombuffer(data[header.end():], dtype=np.uint8).reshape(height, width)


def test_workbook_holds_numbers_and_dates_equal_to_the_pack(tmp_path):
    pack = sample_pack()
    path = tmp_path / "pack.xlsx"
    render.write(pack, path, "en")
    book = openpyxl.load_workbook(path)
    summary = book["Summary"]
    rows = {row[0].value: row for row in summary.iter_rows(min_row=7, max_row=6 + len(pack["kpis"]))}
    for kpi in pack["kpis"]:
        cells = rows[kpi["name_en"]]
        assert [c.value for c in cells[1:5]] == [kpi["this"], kpi["last"], kpi["avg4"], kpi["delta"]]
    assert summary.freeze_panes == "A7" and summary.auto_filter.ref

    breaches = book["Worst response breaches"]
    head = [c.value for c in breaches[1]]
    for row, expected in zip(breaches.iter_rows(min_row=2), pack["worst_breaches"]):
        cells = dict(zip(head, row))
        assert cells["Issue"].value == expected["id"]
        assert cells["Issue"].hyperlink.target.endswith(expected["trace"])
        assert cells["Response (min)"].value == expected["response_min"]
        assert isinstance(cells["Raised at"].value, datetime)
        assert cells["Raised at"].value == datetime.fromisoformat(expected["raised_at"]).replace(tzinfo=None)
    actions = book["Action register"]
    due = [c.value for c in actions["G"][1:]]
    assert due == [datetime.fromisoformat(a["due"]) for a in pack["actions"]]
    for sheet in book.worksheets:
        assert sheet.freeze_panes, sheet.title
        assert sheet.auto_filter.ref, sheet.title


def test_workbook_keeps_hostile_text_as_text(tmp_path):
    pack = sample_pack()
    texts = list(hostile.FORMULAS) + list(hostile.TEXTS.values())
    rows = [dict(pack["worst_breaches"][0], title=text) for text in texts]
    pack["worst_breaches"] = rows
    path = tmp_path / "pack.xlsx"
    render.write(pack, path, "zh")
    sheet = openpyxl.load_workbook(path)["响应超时最严重的问题"]
    titles = [row[1] for row in sheet.iter_rows(min_row=2)]
    assert len(titles) == len(texts)
    for cell, text in zip(titles, texts):
        assert cell.data_type == "s", repr(text)
        assert cell.value == render.text(text), repr(text)
        assert cell.quotePrefix == runs_as_formula(render.text(text)), repr(text)


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_shows_hostile_text_as_text(monkeypatch):
    monkeypatch.setenv("PLANT_NAME", hostile.TEXTS["script"])
    pack = sample_pack()
    texts = list(hostile.TEXTS.values())
    pack["worst_breaches"] = [dict(pack["worst_breaches"][0], title=text, id=text,
                                   trace="javascript:window.__pwned=1") for text in texts]
    pack["departments"][0]["name_zh"] = hostile.TEXTS["img onerror"]
    pack["kpis"][0]["name_zh"] = hostile.TEXTS["svg onload"]
    pack["pareto"]["types"][0]["name_zh"] = hostile.TEXTS["iframe"]
    page = pack_html.html(pack, "zh")
    parser = _Tags()
    parser.feed(page)
    tags = {tag for tag, _ in parser.tags}
    assert not tags & {"script", "img", "iframe"}
    assert all(not name.startswith("on") for _, attrs in parser.tags for name in attrs)
    assert all(not attrs.get("href", "").startswith("javascript") for _, attrs in parser.tags)
    assert "&lt;script&gt;window.__pwned=1" in page
    assert "&lt;img src=x onerror=" in page
    svg_tags = [tag for tag, _ in parser.tags if tag == "svg"]
    assert len(svg_tags) == len(pack["daily"]) + len(render.PARETO)


def test_html_colours_changes_by_good_and_marks_signals():
    pack = sample_pack()
    parser = _Cells()
    parser.feed(pack_html.html(pack, "en"))
    rows = {row[0][1]: row for row in parser.rows if row and row[0][1] in {k["name_en"] for k in pack["kpis"]}}
    for kpi in pack["kpis"]:
        delta_class, delta_text = rows[kpi["name_en"]][4]
        expected = "" if kpi["good"] is None else "good" if kpi["good"] else "bad"
        assert expected in delta_class.split() or (not expected and not {"good", "bad"} & set(delta_class.split()))
        assert delta_text == render.kpi_delta(kpi["delta"], kpi["unit"], "en")
        assert (rows[kpi["name_en"]][6][1] == "signal") == kpi["signal"]


class _Cells(html.parser.HTMLParser):
    """Table rows as [(class, text)] per cell."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[tuple[str, str]]] = []
        self._cell: list | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = [dict(attrs).get("class") or "", ""]

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append((self._cell[0], self._cell[1].strip()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data


def test_html_is_standalone_a4_landscape_with_a_running_header():
    page = pack_html.html(sample_pack(), "en")
    assert "size: A4 landscape" in page
    assert "counter(page)" in page and "counter(pages)" in page and "string(plant)" in page
    assert '"Noto Sans CJK SC"' in page
    assert "<script" not in page and "src=" not in page


def test_an_unknown_extension_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(ValueError, match=r"\.pdf, \.xlsx, \.html"):
        render.write(sample_pack(), tmp_path / "pack.docx", "zh")
    with pytest.raises(ValueError, match="language"):
        render.write(sample_pack(), tmp_path / "pack.html", "fr")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "pack.html"
    path.write_bytes(b"last week's pack")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        render.write(sample_pack(), path, "zh")
    assert path.read_bytes() == b"last week's pack"
    assert [p.name for p in tmp_path.iterdir()] == ["pack.html"]
