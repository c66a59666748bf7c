"""The explorer's charts drawn from small frames whose every figure is written out by hand:
what each mark shows, says in its hover and carries as its mark, in both languages, with
text from the data escaped, and the mark a click lands on."""
from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from data import theme
from data.explorer import figures
from data.explorer.figures import Names, mark_at

REFERENCE = {
    "departments": {"QA": {"name_zh": "质量部", "name_en": "Quality"},
                    "PRD": {"name_zh": "生产部", "name_en": "Production"},
                    "EVIL": {"name_zh": "<b>坏</b>", "name_en": "<script>x</script>"}},
    "issue_types": {"quality_anomaly": {"name_zh": "质量异常", "name_en": "Quality anomaly"}},
    "locations": {"L1-ST1": {"name": "L1 工位 1", "line": "L1"}},
    "lines": ["L1"], "severities": ["P1", "P2", "P3", "P4"],
}
RED = theme.PALETTE[theme.BAD]


def names(lang: str = "zh") -> Names:
    return Names(REFERENCE, lang)


def test_names_follow_the_language_and_say_when_there_is_no_value():
    assert names("zh").value("department", "QA") == "质量部"
    assert names("en").value("department", "QA") == "Quality"
    assert names("en").value("issue_type", "quality_anomaly") == "Quality anomaly"
    assert names("zh").value("location", "L1-ST1") == "L1 工位 1"
    assert names("en").value("location", "L1-ST1") == "L1-ST1"
    assert names("zh").value("line", None) == "（未填写）"
    assert names("en").value("cause", "-") == "(none)"
    assert names("en").value("department", "UNKNOWN") == "UNKNOWN"


FLOW = pd.DataFrame({"source": ["PRD·1", "QA·2", "PRD·3", "QA·2"],
                     "target": ["QA·2", "PRD·3", "resolved", "open"],
                     "count": [3, 2, 2, 1], "returns": [0, 2, 0, 0]})


def test_the_flow_draws_returns_apart_in_red_and_counts_them():
    figure = figures.handoff_flow(FLOW, names("en"))
    sankey = figure["data"][0]
    assert sankey["node"]["label"] == ["Production·1", "Quality·2", "Production·3", "resolved", "open now"]
    link = sankey["link"]
    assert list(zip(link["source"], link["target"], link["value"])) == [(0, 1, 3), (1, 2, 2), (2, 3, 2), (1, 4, 1)]
    # The only link with returns is QA·2 -> PRD·3, all of it a return.
    assert [c.startswith("rgba(255,77,79") for c in link["color"]] == [False, True, False, False]
    assert [c[0] for c in link["customdata"]] == ["flow:PRD·1|QA·2", "flow:QA·2|PRD·3",
                                                  "flow:PRD·3|resolved", "flow:QA·2|open"]
    assert "in red: 2" in figure["layout"]["title"]["text"]


def test_a_link_partly_of_returns_is_two_links():
    flow = pd.DataFrame({"source": ["QA·2"], "target": ["PRD·3"], "count": [5], "returns": [2]})
    link = figures.handoff_flow(flow, names("zh"))["data"][0]["link"]
    assert link["value"] == [3, 2]
    assert [c.startswith("rgba(255,77,79") for c in link["color"]] == [False, True]
    assert link["customdata"][0][0] == link["customdata"][1][0] == "flow:QA·2|PRD·3"


def test_the_flow_keeps_the_most_travelled_links_and_says_so():
    flow = pd.DataFrame({"source": [f"QA·{i}" for i in range(1, 6)], "target": ["resolved"] * 5,
                         "count": [5, 4, 3, 2, 1], "returns": [0] * 5})
    figure = figures.handoff_flow(flow, names("en"), most=3)
    assert figure["data"][0]["link"]["value"] == [5, 4, 3]
    assert "the 3 largest of 5" in figure["layout"]["title"]["text"]


MATRIX = pd.DataFrame({"from_department": ["QA", "PRD", "QA"], "to_department": ["PRD", "QA", None],
                       "count": [4, 3, 1], "returns": [1, 3, 0],
                       "median_wait_min": [12.0, 150.0, 5.0], "median_wait_work_min": [10.0, 60.0, np.nan]})


def test_the_matrix_counts_each_pair_with_the_wait_in_the_hover():
    figure = figures.handoff_matrix(MATRIX, names("en"))
    heat = figure["data"][0]
    # Busiest first: QA (4 + 3 + 1 = 8), PRD (7), then the hand-off to no department.
    assert heat["x"] == heat["y"] == ["QA", "PRD", "-"]
    assert heat["z"] == [[None, 4, 1], [3, None, None], [None, None, None]]
    assert heat["customdata"][0][1][0] == "matrix:QA|PRD"
    assert heat["customdata"][1][0][1] == ("Production → Quality<br>3 hand-offs, 3 of them returns<br>"
                                           "median wait before the hand-off 2.5 h (in shifts 60 min)")
    assert heat["customdata"][0][2][0] == "matrix:QA|-"
    assert figure["layout"]["xaxis"]["ticktext"] == ["Quality", "Production", "(none)"]


def test_pairs_rank_returns_and_name_both_departments():
    pairs = pd.DataFrame({"department_a": ["PRD", "?"], "department_b": ["QA", "QA"], "returns": [5, 1],
                          "issues": [3, 1], "handoffs": [9, 2], "issue_ids": [("A", "B", "C"), ("D",)]})
    bars = figures.ping_pong_pairs(pairs, names("zh"))["data"][0]
    assert bars["y"] == ["生产部 ⇄ 质量部", "（未填写） ⇄ 质量部"]
    assert bars["x"] == [5, 1]
    assert [c[0] for c in bars["customdata"]] == ["pair:PRD|QA", "pair:?|QA"]


def test_pareto_bars_and_cumulative_line_with_the_tail_as_one_bar():
    frame = pd.DataFrame({"value": ["QA", "PRD", "EVIL", None], "count": [5, 3, 1, 1],
                          "share": [0.5, 0.3, 0.1, 0.1], "cumulative_share": [0.5, 0.8, 0.9, 1.0]})
    figure = figures.pareto(frame, "department", names("en"), most=2)
    bars, line = figure["data"]
    assert bars["x"] == ["Quality", "Production", "the other 2"]
    assert bars["y"] == [5, 3, 2]
    assert line["y"] == [50.0, 80.0, 100.0]
    assert [c[0] for c in bars["customdata"]] == ["dim:department|QA", "dim:department|PRD", ""]
    assert figure["layout"]["title"]["text"] == "Pareto by department (issues, cumulative %)"
    whole = figures.pareto(frame, "department", names("en"))["data"][0]
    assert whole["x"][2:] == ["&lt;script&gt;x&lt;/script&gt;", "(none)"]
    assert whole["customdata"][3][0] == "dim:department|-"


def test_time_held_places_each_department_and_hop_with_its_limit():
    boxes = pd.DataFrame({"department": ["QA", "QA", "PRD"], "hop": [1, 3, 2], "count": [10, 2, 4],
                          "p10": [6.0, 60, 1], "q1": [12.0, 90, 2], "median": [30.0, 120, 3],
                          "q3": [60.0, 240, 4], "p90": [120.0, 600, 5]})
    longest = pd.DataFrame({"department": ["QA"], "hop": [1], "issue_id": ["DEMO-1"], "minutes": [600.0]})
    limits = pd.Series({"QA": 240.0, "PRD": 120.0})
    figure = figures.time_held(boxes, longest, limits, names("en"))
    qa1, median1, point, prd2, median2, qa3, median3, limit = figure["data"]
    assert qa1["x"] == ["Quality·1"] and qa1["median"] == [0.5] and qa1["upperfence"] == [2.0]
    assert qa3["x"] == ["Quality·3+"] and qa3["q3"] == [4.0]
    assert prd2["x"] == ["Production·2"]
    assert median3["customdata"][0][0] == "held:QA|3"
    assert point["customdata"][0][0] == "issue:DEMO-1" and point["y"] == [10.0]
    assert limit["x"] == ["Quality·1", "Quality·3+", "Production·2"] and limit["y"] == [4.0, 4.0, 2.0]
    # Departments with the longest median first, hops in order within each.
    assert figure["layout"]["xaxis"]["categoryarray"] == ["Quality·1", "Quality·3+", "Production·2"]
    assert "median 30 min · p90 2 h" in median1["customdata"][0][1]


def test_the_heatmaps_put_each_hour_of_each_weekday_in_its_cell():
    cells = pd.DataFrame({"weekday": np.repeat(np.arange(7), 24), "hour": np.tile(np.arange(24), 7),
                          "raised": 0, "response_median_min": np.nan})
    cells.loc[(cells["weekday"] == 6) & (cells["hour"] == 2), ["raised", "response_median_min"]] = [4, 95.0]
    cells.loc[(cells["weekday"] == 0) & (cells["hour"] == 8), ["raised", "response_median_min"]] = [2, 7.5]
    raised = figures.heatmap(cells, names("en"), "raised")["data"][0]
    response = figures.heatmap(cells, names("en"), "response_median_min")["data"][0]
    assert raised["y"][6] == "Sun" and raised["x"][2] == "02"
    assert raised["z"][6][2] == 4 and raised["z"][0][8] == 2 and raised["z"][3][3] is None
    assert response["z"][6][2] == 95.0 and response["z"][0][8] == 7.5
    assert raised["customdata"][6][2][0] == "hour:7|2"
    assert raised["customdata"][3][3][0] == ""
    assert response["customdata"][6][2][1] == "Sun 02:00 · 4 raised · median response 1.6 h"


def test_the_control_chart_flags_rules_and_draws_countermeasures():
    index = pd.Index([date(2026, 11, d) for d in (1, 2, 3)])
    chart = pd.DataFrame({"value": [10.0, 30.0, 12.0], "moving_range": [np.nan, 20.0, 18.0],
                          "segment": [0, 0, 1], "segment_start": [date(2026, 11, 1)] * 2 + [date(2026, 11, 3)],
                          "centre": [20.0, 20.0, 12.0], "ucl": [73.2, 73.2, np.nan],
                          "lcl": [-33.2, -33.2, np.nan], "mr_centre": [20.0, 20.0, np.nan],
                          "mr_ucl": [65.3, 65.3, np.nan], "sigma": [17.7, 17.7, np.nan],
                          "rule_1": [False, True, False], "rule_2": [False, False, False],
                          "rule_3": [False, True, False], "rule_4": [False] * 3,
                          "signal": [False, True, False]}, index=index)
    figure = figures.control_chart(chart, [date(2026, 11, 3)], names("en"))
    centre, ucl, lcl, daily = figure["data"]
    assert centre["x"] == ["2026-11-01", "2026-11-02", None, "2026-11-03", None]
    assert centre["y"] == [20.0, 20.0, None, 12.0, None]
    assert daily["marker"]["color"] == [figures.SERIES[0], RED, figures.SERIES[0]]
    hover = daily["customdata"][1][1]
    assert "rule 1: beyond a limit" in hover and "rule 3" in hover and "rule 2" not in hover
    assert daily["customdata"][0][0] == "day:2026-11-01"
    assert figure["layout"]["shapes"][0]["x0"] == "2026-11-03"
    assert "a Western Electric rule met on 1 days" in figure["layout"]["title"]["text"]


def test_week_over_week_colours_worse_red_and_carries_the_week_mark():
    frame = pd.DataFrame({"count_last": [2, 5, 3], "count_this": [6, 1, 3], "count_change": [4, -4, 0],
                          "median_last_min": [10.0, 20.0, 5.0], "median_this_min": [30.0, 10.0, 5.0],
                          "median_contribution_min": [3.5, -1.5, 0.0]},
                         index=pd.Index(["QA", "PRD", "EVIL"], name="department"))
    frame.attrs.update(count_change=0, median_change_min=2.0)
    figure = figures.week_over_week(frame, "department", names("en"))
    count, median = figure["data"]
    assert count["x"] == [4, -4, 0] and median["x"] == [3.5, -1.5, 0.0]
    assert count["marker"]["color"] == [theme.color(theme.BAD), theme.color(theme.OK), theme.color(None)]
    assert count["customdata"][1][0] == "week:department|PRD"
    assert "+0 issues, median response +2.0 min" in figure["layout"]["title"]["text"]


def test_ageing_stacks_holders_in_each_bucket():
    frame = pd.DataFrame({"bucket": [0, 2, 2, 5], "from_h": [0.0, 4, 4, 72], "to_h": [1.0, 8, 8, math.inf],
                          "holder": ["QA", "QA", "PRD", None], "count": [1, 3, 2, 1]})
    figure = figures.ageing(frame, names("en"))
    qa, prd, nobody = figure["data"]
    assert qa["x"] == ["under 60 min", "4 h – 8 h"] and qa["y"] == [1, 3]
    assert prd["y"] == [2] and nobody["x"] == ["3 d and more"]
    assert qa["customdata"][1][0] == "ageing:2|QA" and nobody["customdata"][0][0] == "ageing:5|-"
    assert figure["layout"]["xaxis"]["categoryarray"] == ["under 60 min", "4 h – 8 h", "3 d and more"]


def test_unresolved_after_draws_one_line_per_t():
    frame = pd.DataFrame({"week_start": [date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 2)],
                          "hours": [4, 4, 24], "raised": [10, 20, 10], "unresolved": [3, 5, 1],
                          "share": [0.3, 0.25, 0.1]})
    four, day = figures.unresolved_after(frame, names("en"))["data"]
    assert four["x"] == ["week of 11-02", "week of 11-09"] and four["y"] == [30.0, 25.0]
    assert day["y"] == [10.0] and four["customdata"][1][0] == "unresolved:2026-11-09|4"


def test_empty_frames_say_so_under_their_title():
    empty_flow = figures.handoff_flow(FLOW.iloc[:0], names("en"))
    assert empty_flow["data"] == []
    assert empty_flow["layout"]["annotations"][0]["text"] == "Nothing in this view"
    assert empty_flow["layout"]["title"]["text"] == "Hand-off flow by hop (issues)"


def test_text_from_the_data_is_escaped_everywhere_it_is_drawn():
    flow = pd.DataFrame({"source": ["EVIL·1"], "target": ["resolved"], "count": [1], "returns": [0]})
    sankey = figures.handoff_flow(flow, names("zh"))["data"][0]
    assert sankey["node"]["label"][0] == "&lt;b&gt;坏&lt;/b&gt;·1"
    assert "<b>坏" not in sankey["link"]["customdata"][0][1]


@pytest.mark.parametrize("point, mark", [
    ({"curveNumber": 0, "x": "PRD", "y": "QA", "z": 4}, "matrix:QA|PRD"),
    ({"curveNumber": 0, "x": "QA", "y": "QA", "z": None}, None),
    ({"curveNumber": 0, "x": "nowhere", "y": "QA"}, None),
])
def test_a_click_on_a_heatmap_cell_is_its_mark(point, mark):
    assert mark_at(figures.handoff_matrix(MATRIX, names("en")), point) == mark


def test_a_click_on_the_flow_is_a_link_or_a_node():
    figure = figures.handoff_flow(FLOW, names("en"))
    assert mark_at(figure, {"curveNumber": 0, "pointNumber": 1, "label": "", "value": 2}) == "flow:QA·2|PRD·3"
    assert mark_at(figure, {"curveNumber": 0, "pointNumber": 1, "label": "Quality·2"}) == "node:QA·2"


def test_a_click_on_a_bar_is_its_customdata_and_the_tail_is_no_mark():
    assert mark_at({}, {"customdata": ["dim:department|QA", "..."]}) == "dim:department|QA"
    assert mark_at({}, {"customdata": ["", "the other 2"]}) is None
    assert mark_at({"data": []}, {"curveNumber": 3}) is None
