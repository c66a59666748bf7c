"""One corpus of hostile input, sent through every door by tests/test_hostile_doors.py and
tests/test_hostile_doors_browser.py: HTML and script, links, formulas, direction controls,
control characters, very long text, NUL, and bytes that are not UTF-8.

A payload that would run sets `window.__pwned` (and calls alert): a page that shows it as
text leaves both alone."""
from __future__ import annotations

# Text a wall, a trace, an export or an answer must carry as text, by name.
TEXTS: dict[str, str] = {
    "script": "<script>window.__pwned=1;alert(1)</script>",
    "img onerror": '<img src=x onerror="window.__pwned=2;alert(2)">',
    "svg onload": '<svg onload="window.__pwned=3;alert(3)"></svg>',
    "iframe": '<iframe src="javascript:parent.__pwned=4"></iframe>',
    "javascript url": "javascript:window.__pwned=5;alert(5)",
    "markdown": "[点我](javascript:window.__pwned=6) **粗体** ![x](http://127.0.0.1:9/x.png)",
    "hyperlink formula": '=HYPERLINK("http://x","y")',
    "at formula": "@SUM(1+1)",
    "dde": "+cmd|' /C calc'!A0",
    "minus formula": "-2+3",
    "tab formula": "\t=1",
    "spaced formula": "  =1+1",
    "right-to-left override": "\u202eexe.txt\u202c 泄漏",
    "isolates": "L2 \u2067مشكلة\u2069 ok \u2066x",
    "sql": "x'); DROP TABLE issues; --",
    "templates": "{{7*7}} ${7*7} %s %(x)s {0} <%= 7 %>",
    "control": "bell\x07 esc\x1b[31m del\x7f",
    "zero width": "a\u200bb\u200dc\ufeffd",
    "emoji": "🔥 泄漏 👍🏽 e\u0301",
    "long": "长" * 390,
}

# Text no door takes: each refused, naming the field, and nothing written.
NUL = "a\x00b"
TOO_LONG = "x" * (200 * 1024)

# Bytes that are not UTF-8, where a door takes bytes (a file, a request body).
NOT_UTF8 = {
    "high bytes": b"\xff\xfe\xfd",
    "cut sequence": b"caf\xc3",
    "surrogate": b"\xed\xa0\x80",
    "overlong slash": b"\xc0\xaf",
}

# Cells a spreadsheet would run, and what the CSV must hold instead.
FORMULAS = {
    '=HYPERLINK("http://x","y")': '\'=HYPERLINK("http://x","y")',
    "@SUM(1+1)": "'@SUM(1+1)",
    "+cmd|' /C calc'!A0": "'+cmd|' /C calc'!A0",
    "-2+3": "'-2+3",
    "\t=1": "'\t=1",
    "  =1+1": "'  =1+1",
    "\r=1": "'\r=1",
    "\n@x": "'\n@x",
}
# Text that only looks like one: left as it is.
NOT_FORMULAS = ["-3", "+5", " -1.5e3 ", "泄漏 =1", "a-b", "", "'=already"]
