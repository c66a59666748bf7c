"""The weekly review pack as a PDF: the pack's HTML page laid out by WeasyPrint.

WeasyPrint prints HTML and CSS without a browser (no Chromium on the server, no screenshot):
the text stays text (selectable, searchable), the SVG charts stay vector, and the Noto CJK
font the page names is embedded, subset to the glyphs used. The page loads nothing: the
fetcher refuses every address, so no value in the pack can make the server fetch a URL.
"""
from __future__ import annotations

from data.reports import pack_html


def document(pack: dict, lang: str) -> bytes:
    import weasyprint

    return weasyprint.HTML(string=pack_html.html(pack, lang), url_fetcher=_refuse).write_pdf()


def _refuse(url: str, *args, **kwargs):
    raise ValueError(f"the weekly pack loads nothing, not {url[:80]!r}")
