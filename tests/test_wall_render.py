"""The wall's panels as drawn from a fixed snapshot, against hand-computed expectations:
tile colours at each threshold, every department on the scoreboard, "+N more", the
collaboration star's reason, durations that cannot be read as a time of day, and charts
without an invented axis."""
from __future__ import annotations

import importlib

import pytest

import app as floorlink
from data import figures, words

# The thresholds spelled out here, so a change of their defaults does not move the cases.
THRESHOLDS = {"THRESHOLD_OPEN": "20,40", "THRESHOLD_OVERDUE": "1,5",
              "THRESHOLD_MEDIAN_RESPONSE_MIN": "15,30", "THRESHOLD_RESPONSE_SLA": "0.9,0.75",
              "THRESHOLD_RESOLUTION_RATE": "0.8,0.6", "THRESHOLD_PLAN_ATTAINMENT": "0.95,0.85",
              "THRESHOLD_STAGNANT_LOTS": "1,10", "THRESHOLD_SHORTAGES": "1,3"}
AMBER, RED = "#f5b301", "#ff4d4f"

DEPARTMENTS = {"PRD": ("生产部", "Production"), "QA": ("质量部", "Quality"),
               "WH": ("仓储物流部", "Warehouse"), "PUR": ("采购部", "Procurement"),
               "PLN": ("计划部", "Planning"), "MNT": ("设备维修部", "Maintenance"),
               "ENG": ("工程技术部", "Engineering"), "EHS": ("安全环保部", "EHS (Safety)"),
               "SAL": ("销售与售后部", "Sales & After-sales")}


@pytest.fixture(autouse=True)
def thresholds(monkeypatch):
    for name, value in THRESHOLDS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def wall_app(tmp_path_factory):
    """The pages register themselves with an app, so one is made before they are read."""
    return floorlink.create_app(f"sqlite:///{tmp_path_factory.mktemp('render') / 'none.sqlite'}")


@pytest.fixture
def overview(wall_app):
    return importlib.import_module("dashboards.overview")


@pytest.fixture
def material(wall_app):
    return importlib.import_module("dashboards.material")


@pytest.fixture
def _ui(wall_app):
    return importlib.import_module("dashboards._ui")


def text_of(node) -> str:
    """The text a component shows, its children's in order."""
    if node is None:
        return ""
    if isinstance(node, (str, int, float)):
        return str(node)
    if isinstance(node, (list, tuple)):
        return "".join(text_of(n) for n in node)
    return text_of(getattr(node, "children", None))


def tile(value, yesterday=None) -> dict:
    return {"value": value, "yesterday": yesterday}


def scoreboard_row(code: str, **figures_) -> dict:
    zh, en = DEPARTMENTS[code]
    return {"department_code": code, "name_zh": zh, "name_en": en, "raised": 6, "open": 1,
            "overdue": 0, "median_response_min": 10.0, "response_sla_compliance": 0.95,
            "ping_pong": 0, **figures_}


def snapshot(**overrides) -> dict:
    """An overview snapshot as data/wall/overview.py makes it, built by hand."""
    base = {
        "as_of_ms": 1_790_000_000_000, "goal_min": 15.0, "no_data": False,
        "names": {"departments": {c: {"name_zh": zh, "name_en": en} for c, (zh, en) in DEPARTMENTS.items()},
                  "issue_types": {"quality_anomaly": {"name_zh": "质量异常", "name_en": "Quality anomaly"}},
                  "locations": {"L2-ST1": "L2 工位 1 上料"}, "materials": {}},
        "tiles": {"open": tile(16, 10), "overdue": tile(3, 5), "median_response_min": tile(13.2, 17.0),
                  "response_sla_compliance": tile(0.61, 0.42), "resolution_rate": tile(None, 0.5),
                  "plan_attainment": tile(0.75, 0.92)},
        "board": [
            {"id": "Q-1", "severity": "P1", "issue_type": "quality_anomaly", "title": "首件不合格",
             "location_code": "L2-ST1", "line": "L2", "owner_department_code": "QA",
             "contact": "张伟", "ping_pong": True, "raised_ms": 1, "acknowledged_ms": 2,
             "ack_due_ms": 3, "resolve_due_ms": 4},
            {"id": "Q-2", "severity": "P4", "issue_type": "quality_anomaly", "title": "外观",
             "location_code": None, "line": None, "owner_department_code": "SAL",
             "contact": None, "ping_pong": False, "raised_ms": 1, "acknowledged_ms": None,
             "ack_due_ms": 3, "resolve_due_ms": 4}],
        "scoreboard": [scoreboard_row(code) for code in DEPARTMENTS],
        "star": None, "star_reason": None,
        "shortages": [{"id": "S-1", "title": "条码标签纸 送货单缺失", "line": "L2",
                       "location_name": "L2 工位 1 上料", "waiting_min": 130.5}],
        "shortages_total": 3,
        "stagnant": [{"lot": "1004-261129-034", "material_code": "M-1", "material_name": "不锈钢安装支架",
                      "location_code": "IQC", "location_name": "来料检验区", "qty": 26119.0,
                      "dwell_min": 2640.0, "limit_min": 720.0}],
        "stagnant_total": 62,
        "trend": {"days": ["11-03", "11-04", "11-05"], "median_min": [10.0, 20.0, 40.0]},
    }
    return {**base, **overrides}


def tile_class(tiles: list, tile_id: str) -> str:
    slot = next(s for s in tiles if s.id["tile"] == tile_id)
    return slot.children.className


@pytest.mark.parametrize("name, value, level", [
    ("open", 19, "ok"), ("open", 20, "warn"), ("open", 39, "warn"), ("open", 40, "bad"),
    ("overdue", 0, "ok"), ("overdue", 1, "warn"), ("overdue", 4, "warn"), ("overdue", 5, "bad"),
    ("median_response_min", 15.0, "ok"), ("median_response_min", 15.01, "warn"),
    ("median_response_min", 30.0, "warn"), ("median_response_min", 30.01, "bad"),
    ("response_sla_compliance", 0.9, "ok"), ("response_sla_compliance", 0.8999, "warn"),
    ("response_sla_compliance", 0.75, "warn"), ("response_sla_compliance", 0.7499, "bad"),
    ("resolution_rate", 0.8, "ok"), ("resolution_rate", 0.79, "warn"),
    ("resolution_rate", 0.6, "warn"), ("resolution_rate", 0.59, "bad"),
    ("plan_attainment", 0.95, "ok"), ("plan_attainment", 0.9499, "warn"),
    ("plan_attainment", 0.85, "warn"), ("plan_attainment", 0.8499, "bad"),
])
def test_overview_tiles_take_their_level_at_each_threshold(name, value, level, overview):
    snap = snapshot()
    snap["tiles"] = {**snap["tiles"], name: tile(value, None)}
    assert tile_class(overview._tiles(snap, "zh"), f"overview-tile-{name}") == f"tile {level}"


def test_a_tile_without_a_value_has_no_colour_and_says_so(overview):
    tiles = overview._tiles(snapshot(), "en")
    assert tile_class(tiles, "overview-tile-resolution_rate") == "tile"
    shown = text_of(next(s for s in tiles if s.id["tile"] == "overview-tile-resolution_rate"))
    assert shown == "Resolved today—— vs same time yesterday"


def test_tiles_compare_with_the_same_time_yesterday_in_both_languages(overview):
    snap = snapshot(tiles={**snapshot()["tiles"], "open": tile(1234, 1000)})
    zh = {s.id["tile"]: text_of(s.children.children[1:]) for s in overview._tiles(snap, "zh")}
    en = {s.id["tile"]: text_of(s.children.children[1:]) for s in overview._tiles(snap, "en")}
    assert zh["overview-tile-open"] == "1,234▲ +234 较昨日同时段"
    assert en["overview-tile-overdue"] == "3▼ -2 vs same time yesterday"
    assert en["overview-tile-median_response_min"] == "13 min▼ -4 min vs same time yesterday"
    assert zh["overview-tile-response_sla_compliance"] == "61%▲ +19 pt 较昨日同时段"
    # Green when the figure got better, red when worse: fewer overdue is better, a lower
    # attainment worse, the same is neither.
    deltas = {s.id["tile"]: s.children.children[2].children[0].className
              for s in overview._tiles(snap, "zh")}
    assert deltas == {"overview-tile-open": "delta worse", "overview-tile-overdue": "delta better",
                      "overview-tile-median_response_min": "delta better",
                      "overview-tile-response_sla_compliance": "delta better",
                      "overview-tile-resolution_rate": "delta",
                      "overview-tile-plan_attainment": "delta worse"}


def test_a_tile_is_steady_and_pulses_only_through_its_slot(overview):
    """Tiles carry their level and nothing that animates; the slot alone pulses (wall.js)."""
    snap = snapshot(tiles={**snapshot()["tiles"], "overdue": tile(9, 9)})
    slot = next(s for s in overview._tiles(snap, "zh") if s.id["tile"] == "overview-tile-overdue")
    assert (slot.className, slot.children.className) == ("tile-slot", "tile bad")


def test_the_scoreboard_has_a_row_for_every_department_coloured_by_the_one_rule(overview, _ui):
    rows = [scoreboard_row(code) for code in DEPARTMENTS]
    rows[0].update(response_sla_compliance=0.9)      # exactly amber's threshold: still green
    rows[1].update(response_sla_compliance=0.8999)   # just below: amber
    rows[2].update(response_sla_compliance=0.75, overdue=5, median_response_min=30.5)
    rows[3].update(response_sla_compliance=None, median_response_min=None)
    drawn = overview._scoreboard(snapshot(scoreboard=rows), "zh")
    assert drawn["total"] == 9 and drawn["page_s"] == _ui.PAGE_S
    assert [text_of(r.children[0]) for r in drawn["rows"]] == [zh for zh, _ in DEPARTMENTS.values()]
    cells = [[c.className for c in r.children] for r in drawn["rows"]]
    assert [row[4] for row in cells[:4]] == ["num ok", "num warn", "num warn", "num"]
    assert cells[2][2:4] == ["num bad", "num bad"]          # 5 overdue, 30.5 minutes
    assert cells[0][2:4] == ["num ok", "num ok"]             # none overdue, 10 minutes
    assert [text_of(c) for c in drawn["rows"][3].children[1:]] == ["1", "0", "—", "—", "0"]


def test_the_star_says_why_it_was_given(overview):
    reason = {"department_code": "WH", "raised": 1234, "median_response_min": 8.2,
              "response_sla_compliance": 0.96, "tied_with": ["QA", "EHS"], "min_issues": 5}
    snap = snapshot(star="WH", star_reason=reason)
    assert text_of(overview._star(snap, "zh")) == \
        "★ 协同之星：仓储物流部 · 响应中位数 8 分 · 达成率 96% · 1,234 单 · 同速：质量部、安全环保部"
    assert text_of(overview._star(snap, "en")) == \
        "★ Collaboration star: Warehouse · median response 8 min · SLA 96% · 1,234 issues" \
        " · same median: Quality, EHS (Safety)"
    rows = overview._scoreboard(snap, "zh")["rows"]
    assert [text_of(r.children[0]) for r in rows if "★" in text_of(r.children[0])] == ["★ 仓储物流部"]


def test_no_star_says_no_department_qualifies(overview):
    assert text_of(overview._star(snapshot(), "zh")) == "★ 协同之星：暂无部门符合条件"
    assert text_of(overview._star(snapshot(), "en")) == "★ Collaboration star: no department qualifies"


def test_material_alerts_say_how_many_more_there_are(overview, _ui):
    drawn = overview._material(snapshot(), "zh")
    assert len(drawn["rows"]) == 2 and drawn["total"] == 3 + 62
    assert drawn["page_s"] == 0       # the first ones and "+N more"; the material page pages
    shortage, stagnant = ([text_of(c) for c in r.children] for r in drawn["rows"])
    assert shortage == ["缺料", "L2 工位 1 上料", "条码标签纸 送货单缺失", "S-1", "2时10分"]
    assert stagnant == ["物料滞留", "来料检验区", "不锈钢安装支架", "1004-261129-034", "44 时 / 12 时"]
    # The same state has the same colour on every page: a shortage red, a stagnant lot amber.
    assert [r.children[0].className for r in drawn["rows"]] == ["tag bad", "tag warn"]
    assert drawn["texts"]["more"].format(n=63) == "还有 63 项"
    assert _ui.list_data([], "en", empty="x")["texts"]["more"].format(n=2) == "+2 more"


def test_the_material_page_lists_every_lot_it_was_sent_and_counts_the_rest(material, _ui):
    snap = {"stagnant": snapshot()["stagnant"] * 50, "stagnant_total": 62,
            "shortages": [], "shortages_total": 0}
    drawn = material._stagnant(snap, "en")
    assert len(drawn["rows"]) == 50 and drawn["total"] == 62 and drawn["page_s"] == _ui.PAGE_S
    cells = drawn["rows"][0].children
    assert [text_of(c) for c in cells] == ["来料检验区", "不锈钢安装支架", "1004-261129-034", "26,119",
                                           "44 h / 12 h"]
    assert cells[-1].className == "num warn"
    assert text_of(material._shortages(snap, "zh")["empty"]) == "没有未解决的缺料"


@pytest.mark.parametrize("name, value, level", [
    ("stagnant_lots", 0, "ok"), ("stagnant_lots", 1, "warn"), ("stagnant_lots", 9, "warn"),
    ("stagnant_lots", 10, "bad"), ("shortages", 0, "ok"), ("shortages", 1, "warn"),
    ("shortages", 2, "warn"), ("shortages", 3, "bad"),
])
def test_material_tiles_take_their_level_by_the_same_rule(name, value, level, material):
    figures_now = {"stagnant_lots": 0, "shortages": 0, "lots_at_iqc": 4, "turnover_week": 1.5}
    tiles = material._tiles({"tiles": {**figures_now, name: value}}, "zh")
    assert tile_class(tiles, f"material-tile-{name}") == f"tile {level}"
    assert tile_class(tiles, "material-tile-lots_at_iqc") == "tile"


def test_turnover_has_its_unit(material):
    tiles = material._tiles({"tiles": {"stagnant_lots": 0, "shortages": 0, "lots_at_iqc": 1234,
                                       "turnover_week": 1.375}}, "zh")
    shown = {s.id["tile"]: text_of(s.children.children[1]) for s in tiles}
    assert shown["material-tile-turnover_week"] == "1.38次/周"
    assert shown["material-tile-lots_at_iqc"] == "1,234"
    en = material._tiles({"tiles": {"stagnant_lots": 0, "shortages": 0, "lots_at_iqc": 0,
                                    "turnover_week": None}}, "en")
    assert text_of(en[3].children.children[1]) == "—"


def test_board_rows_name_whom_to_call_and_mark_ping_pong(_ui):
    drawn = _ui.board_data(snapshot(), "en")
    first, second = drawn["rows"]
    assert (first["contact"], first["owner"], first["ping_pong"]) == ("张伟", "Quality", True)
    assert (second["contact"], second["owner"], second["ping_pong"]) == (None, "Sales & After-sales", False)
    assert (first["location"], second["location"]) == ("L2 工位 1 上料", "")
    assert drawn["texts"]["ping_pong_mark"] == "⇄ ping-pong"
    assert drawn["texts"]["page_of"].format(page=2, pages=3) == "page 2 of 3"
    assert _ui.board_data(snapshot(), "zh")["texts"]["page_of"].format(page=2, pages=3) == "第 2/3 页"


@pytest.mark.parametrize("minutes, zh, en", [
    (0.5, "0分", "0 min"), (9.6, "9分", "9 min"), (59.99, "59分", "59 min"),
    (60, "1时0分", "1 h 0 min"), (130, "2时10分", "2 h 10 min"), (1439, "23时59分", "23 h 59 min"),
    (1440, "1天0时", "1 d 0 h"), (32 * 60, "1天8时", "1 d 8 h"),
])
def test_durations_cannot_be_read_as_a_time_of_day(minutes, zh, en):
    assert (words.format_duration(minutes, "zh"), words.format_duration(minutes, "en")) == (zh, en)
    assert ":" not in zh + en


def test_a_dwell_and_its_limit_read_in_one_unit(_ui):
    assert _ui.dwell({"dwell_min": 2880.0, "limit_min": 1440.0}, "zh") == "48 时 / 24 时"
    assert _ui.dwell({"dwell_min": 45.0, "limit_min": 30.0}, "en") == "45 min / 30 min"
    assert _ui.dwell({"dwell_min": 90_000.0, "limit_min": 60.0}, "en") == "90,000 min / 60 min"
    # Just past its limit, a dwell never reads as the limit itself.
    assert _ui.dwell({"dwell_min": 14.2 * 1440, "limit_min": 14 * 1440}, "zh") == "14.2 天 / 14 天"
    assert _ui.dwell({"dwell_min": 14.04 * 1440, "limit_min": 14 * 1440}, "en") == "14.04 d / 14 d"
    assert _ui.dwell({"dwell_min": 150.4, "limit_min": 150.0}, "en") == "2.51 h / 2.5 h"


def font_sizes(node) -> list[float]:
    """Every font size a figure sets, wherever it sets one."""
    if isinstance(node, list):
        return [size for item in node for size in font_sizes(item)]
    if not isinstance(node, dict):
        return []
    found = [v["size"] for k, v in node.items() if k.endswith("font") and isinstance(v, dict) and "size" in v]
    return found + [size for v in node.values() for size in font_sizes(v)]


def test_the_trend_is_coloured_by_the_tile_rule_with_the_goal_drawn(overview):
    figure = overview._trend(snapshot(), "zh")
    bars = figure["data"][0]
    assert bars["marker"]["color"] == ["#22c55e", AMBER, RED]      # 10, 20, 40 minutes
    goal = figure["layout"]["shapes"][0]
    assert (goal["y0"], goal["y1"]) == (15.0, 15.0)
    assert min(font_sizes(figure)) >= 28
    assert figure["layout"]["xaxis"]["automargin"] and figure["layout"]["yaxis"]["automargin"]


def test_an_empty_chart_has_no_axis_and_says_so(overview):
    figure = overview._trend(snapshot(trend={"days": ["11-03"], "median_min": [None]}), "en")
    assert figure["data"] == []
    assert figure["layout"]["xaxis"] == {"visible": False} == figure["layout"]["yaxis"]
    assert [a["text"] for a in figure["layout"]["annotations"]] == ["No data yet"]
    empty_stages = figures.lots_by_stage([{"kind": "iqc", "lots": 0, "stagnant": 0}], "zh")
    assert [a["text"] for a in empty_stages["layout"]["annotations"]] == ["暂无数据"]
    assert min(font_sizes(figure)) >= 28


def test_lots_by_stage_shows_stagnant_lots_in_amber_with_their_counts(material):
    figure = material._stages({"stages": [{"kind": "iqc", "lots": 1234, "stagnant": 3},
                                          {"kind": "wip", "lots": 4, "stagnant": 0}]}, "en")
    flowing, stagnant = figure["data"]
    assert stagnant["marker"]["color"] == AMBER
    assert (flowing["x"], stagnant["x"]) == ([1231, 4], [3, 0])
    assert flowing["y"] == ["Incoming inspection<br>1,234 lots · 3 stagnant", "WIP<br>4 lots"]
    assert min(font_sizes(figure)) >= 28
