"""The issue page (/issue/<id>) against a hand-worked issue: PRD raises it, passes it to QA,
QA acknowledges late and passes it back (a return), PRD resolves it late and closes it.

    08:00 raised (PRD)       08:05 reassigned -> QA   08:20 acknowledged (QA)
    08:30 reassigned -> PRD  09:10 resolved (PRD)     09:30 closed (PRD)
    limits: acknowledge within 10 min (08:10), resolve within 60 min (09:00)

Hops: PRD 08:00-08:05 (5 min), QA 08:05-08:30 (25 min), PRD 08:30-09:10 (40 min, a return).
Times are UTC; the site (Asia/Shanghai) reads them 8 hours later."""
from __future__ import annotations

import importlib
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

import app as floorlink
from data import db, figures, kpis, queries, store, timeline, words
from data.analysis.holding import holding_intervals
from data.models import Department, Location, Person, SlaRule

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
AFTER_ALL = T0 + timedelta(hours=2)           # 10:00, everything has happened
MIDWAY = T0 + timedelta(minutes=25)           # 08:25, QA holds it, acknowledged
NOTE_HTML = "<b>x</b>"
ACCENT, RED = figures.theme.PALETTE["accent"], figures.theme.PALETTE["bad"]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def site(minutes: float) -> str:
    """The instant T0 + minutes as the site's clock writes it (UTC+8)."""
    return (at(minutes) + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture(autouse=True)
def site_zone(monkeypatch):
    monkeypatch.setenv("SITE_TZ", "Asia/Shanghai")


def write_plant(url: str) -> None:
    engine = db.get_engine(url)
    with engine.begin() as conn:
        store.upsert_rows(conn, Department, [
            {"code": "PRD", "name_zh": "生产部", "name_en": "Production"},
            {"code": "QA", "name_zh": "质量部", "name_en": "Quality"}])
        store.upsert_rows(conn, SlaRule, [
            {"issue_type": "quality", "name_zh": "质量异常", "name_en": "Quality problem",
             "owner_department_code": "PRD", "notify_department_codes": "",
             "ack_minutes": 10, "resolve_minutes": 60}])
        store.upsert_rows(conn, Location, [
            {"code": "L1-ST1", "name": "L1 工位 1", "kind": "wip", "line": "L1",
             "max_dwell_minutes": None}])
        store.upsert_rows(conn, Person, [
            {"id": "P1", "name": "张三", "department_code": "PRD", "im_handle": None},
            {"id": "Q1", "name": "李四", "department_code": "QA", "im_handle": None}])
    with db.session_scope(engine) as session:
        store.raise_issue(session, issue_id="I-1", issue_type="quality", title="扭力异常 <i>L1</i>",
                          severity="P2", at=at(0), location_code="L1-ST1", raised_by="P1")
        store.reassign(session, "I-1", at(5), "QA", actor="P1", note=NOTE_HTML)
        store.acknowledge(session, "I-1", at(20), actor="Q1")
        store.reassign(session, "I-1", at(30), "PRD", actor="Q1", note="not ours")
        store.resolve(session, "I-1", at(70), actor="P1", cause="loose screw")
        # Still open at 10:00, never acknowledged: overdue on both limits.
        store.raise_issue(session, issue_id="I-2", issue_type="quality", title="second",
                          severity="P3", at=at(60), raised_by="nobody-known")
    with db.session_scope(engine) as session:
        session.info["source"] = "mes-line1"
        store.close(session, "I-1", at(90), actor="P1")


@pytest.fixture
def plant(db_url):
    write_plant(db_url)
    return db_url


def read(url: str, issue_id: str, left_out=None):
    with db.get_engine(url).connect() as conn:
        return queries.issue_timeline(conn, issue_id, left_out=left_out)


# ---- the loader, on SQLite and PostgreSQL --------------------------------------------------

def test_the_timeline_is_the_issue_with_its_names_and_every_event_in_order(plant):
    record = read(plant, "I-1")
    row = record.row
    assert (row["id"], row["title"], row["severity"], row["status"]) == ("I-1", "扭力异常 <i>L1</i>", "P2", "closed")
    assert (row["type_name_zh"], row["type_name_en"]) == ("质量异常", "Quality problem")
    assert (row["ack_minutes"], row["resolve_minutes"]) == (10.0, 60.0)
    assert (row["location_name"], row["line"]) == ("L1 工位 1", "L1")
    assert (row["owner_department_code"], row["owner_name_zh"], row["owner_name_en"]) == ("PRD", "生产部", "Production")
    assert (row["raised_by"], row["raised_by_name"], row["cause"]) == ("P1", "张三", "loose screw")
    assert row["raised_at"] == pd.Timestamp(at(0)) and row["closed_at"] == pd.Timestamp(at(90))
    events = record.events
    assert list(events["kind"]) == ["raised", "reassigned", "acknowledged", "reassigned", "resolved", "closed"]
    assert list(events["at"]) == [pd.Timestamp(at(m)) for m in (0, 5, 20, 30, 70, 90)]
    assert list(events["department_code"]) == ["PRD", "QA", "QA", "PRD", "PRD", "PRD"]
    assert list(events["department_name_en"]) == ["Production", "Quality", "Quality", "Production",
                                                  "Production", "Production"]
    assert list(events["actor"]) == ["P1", "P1", "Q1", "Q1", "P1", "P1"]
    assert list(events["actor_name"]) == ["张三", "张三", "李四", "李四", "张三", "张三"]
    assert events["note"].iloc[1] == NOTE_HTML and events["note"].iloc[4] == "loose screw"
    assert [s if isinstance(s, str) else None for s in events["source"]] == [None] * 5 + ["mes-line1"]
    assert events["event_id"].is_monotonic_increasing


def test_an_unknown_id_is_none_and_a_person_not_on_file_keeps_the_id(plant):
    assert read(plant, "NO-SUCH") is None
    assert read(plant, "I-1' OR '1'='1") is None
    record = read(plant, "I-2")
    assert record.row["raised_by_name"] == "nobody-known"
    assert pd.isna(record.row["location_name"]) or record.row["location_name"] is None
    assert list(record.events["kind"]) == ["raised"]


def test_an_issue_whose_row_cannot_be_used_is_named_with_the_reason(db_url):
    write_plant(db_url)
    with db.session_scope(db.get_engine(db_url)) as session:
        store.raise_issue(session, issue_id="OLD", issue_type="quality", title="typo in the year",
                          severity="P3", at=datetime(1990, 1, 1, tzinfo=timezone.utc))
    left_out = []
    assert read(db_url, "OLD", left_out) is None
    assert [(left.table, left.key, left.column) for left in left_out] == [("issues", "OLD", "raised_at")]
    assert "PLAUSIBLE_FROM" in left_out[0].reason


# ---- the summary: the KPI rules for one issue ------------------------------------------------

@pytest.fixture(scope="module")
def plant_file(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('issue') / 'issue.sqlite'}"
    db.upgrade_schema(db.get_engine(url))
    write_plant(url)
    return url


@pytest.mark.parametrize("as_of", [MIDWAY, AFTER_ALL, at(-1)])
@pytest.mark.parametrize("issue_id", ["I-1", "I-2"])
def test_the_summary_is_what_the_kpi_rules_count_for_the_issue(plant_file, issue_id, as_of):
    record = read(plant_file, issue_id)
    issue, events = record.issue, record.events
    hops = holding_intervals(issue, events, as_of)
    summary = timeline.issue_summary(record, hops, as_of)

    def same(value, rule):
        return value is None if pd.isna(rule) else value == rule

    assert same(summary["response_min"], kpis.response_minutes(issue, as_of).iloc[0])
    assert same(summary["resolution_min"], kpis.resolution_minutes(issue, as_of).iloc[0])
    assert summary["response_outcome"] == kpis.response_sla_outcomes(issue, as_of).iloc[0]
    assert summary["resolution_outcome"] == kpis.resolution_sla_outcomes(issue, as_of).iloc[0]
    assert summary["overdue"] == bool(kpis.overdue_mask(issue, as_of).iloc[0])
    assert summary["handoffs"] == kpis.handoff_counts(issue, events, as_of).iloc[0]
    assert summary["ping_pong"] == (issue_id in kpis.ping_pong_issue_ids(events, as_of))
    assert (summary["returns"] > 0) == summary["ping_pong"]


def test_the_summary_by_hand_midway_and_after_all(plant_file):
    record = read(plant_file, "I-1")
    cases = {
        MIDWAY: {"status": "acknowledged", "overdue": False, "response_min": 20.0,
                 "response_outcome": "breached", "resolution_min": None, "resolution_outcome": "pending",
                 "handoffs": 1, "returns": 0, "ping_pong": False, "holder": "QA", "later_events": 3},
        AFTER_ALL: {"status": "closed", "overdue": False, "response_min": 20.0,
                    "response_outcome": "breached", "resolution_min": 70.0,
                    "resolution_outcome": "breached", "handoffs": 2, "returns": 1, "ping_pong": True,
                    "holder": None, "later_events": 0},
        # Exactly at the hand-back: that event has happened, the two after it have not.
        at(30): {"status": "acknowledged", "overdue": False, "response_min": 20.0,
                 "response_outcome": "breached", "resolution_min": None, "resolution_outcome": "pending",
                 "handoffs": 2, "returns": 1, "ping_pong": True, "holder": "PRD", "later_events": 2},
        at(-1): {"status": "not_raised", "overdue": False, "response_min": None,
                 "response_outcome": "pending", "resolution_min": None, "resolution_outcome": "pending",
                 "handoffs": 0, "returns": 0, "ping_pong": False, "holder": None, "later_events": 6},
    }
    for as_of, expected in cases.items():
        summary = timeline.issue_summary(record, holding_intervals(record.issue, record.events, as_of), as_of)
        assert {key: summary[key] for key in expected} == expected, as_of
    second = read(plant_file, "I-2")
    summary = timeline.issue_summary(second, holding_intervals(second.issue, second.events, AFTER_ALL), AFTER_ALL)
    assert (summary["status"], summary["overdue"], summary["waited_min"], summary["holder"]) == (
        "open", True, 60.0, "PRD")
    assert (summary["response_outcome"], summary["resolution_outcome"]) == ("breached", "pending")


def test_status_at_an_instant_reads_the_stamps_as_the_kpi_rules_do(plant_file):
    row = read(plant_file, "I-1").row
    assert [timeline.status_at(row, at(m)) for m in (-1, 0, 19, 20, 69, 70, 89, 90)] == [
        "not_raised", "open", "open", "acknowledged", "acknowledged", "resolved", "resolved", "closed"]
    cancelled = {**row, "status": "cancelled", "resolved_at": pd.NaT}
    assert [timeline.status_at(cancelled, at(m)) for m in (89, 90)] == ["acknowledged", "cancelled"]
    # Cancelled without a closing time (an imported row): cancelled whenever it is read.
    assert timeline.status_at({**cancelled, "closed_at": pd.NaT}, at(1)) == "cancelled"


# ---- the page, without a browser -------------------------------------------------------------

@pytest.fixture(scope="module")
def page_app(plant_file):
    return floorlink.create_app(plant_file)


@pytest.fixture
def issue_page(page_app):
    return importlib.import_module("dashboards.issue")


def render(page_app, issue_page, issue_id, lang="en", **params):
    with page_app.server.test_request_context():
        return issue_page.layout(issue_id=issue_id, lang=lang, **params)


def walk(node):
    yield node
    children = getattr(node, "children", None)
    if isinstance(children, (list, tuple)):
        for child in children:
            yield from walk(child)
    elif children is not None:
        yield from walk(children)


def text_of(node) -> str:
    if node is None:
        return ""
    if isinstance(node, (str, int, float)):
        return str(node)
    children = getattr(node, "children", None)
    if isinstance(children, (list, tuple)):
        return "".join(text_of(child) for child in children)
    return text_of(children)


def find(tree, class_name: str) -> list:
    return [n for n in walk(tree) if class_name in (getattr(n, "className", "") or "").split()]


def graph(tree) -> dict:
    (found,) = [n for n in walk(tree) if getattr(n, "id", None) == "issue-trace-graph"]
    return found.figure


def test_the_swimlane_has_a_bar_per_hop_on_its_department_s_lane(page_app, issue_page, plant_file):
    page = render(page_app, issue_page, "I-1", at=AFTER_ALL.isoformat())
    figure = graph(page)
    bars, markers = figure["data"]
    assert bars["y"] == ["Production", "Quality", "Production"]
    assert figure["layout"]["yaxis"]["categoryarray"] == ["Production", "Quality"]
    assert bars["base"] == [site(0), site(5), site(30)]
    assert bars["x"] == [5 * 60_000, 25 * 60_000, 40 * 60_000]
    assert bars["marker"]["color"] == [ACCENT, ACCENT, RED]
    assert [("⇄" in text) for text in bars["text"]] == [False, False, True]
    assert bars["marker"]["pattern"]["shape"] == ["", "", ""]
    assert "40 min" in bars["hovertext"][2] and "return" in bars["hovertext"][2]
    assert markers["x"] == [site(m) for m in (0, 5, 20, 30, 70, 90)]
    assert markers["y"] == ["Production", "Quality", "Quality", "Production", "Production", "Production"]


def test_the_limits_and_moments_stand_where_they_fall(page_app, issue_page, plant_file):
    figure = graph(render(page_app, issue_page, "I-1", at=AFTER_ALL.isoformat()))
    lines = {label["text"]: shape["x0"] for shape, label in
             zip(figure["layout"]["shapes"], figure["layout"]["annotations"])}
    local = {minutes: (at(minutes) + timedelta(hours=8)).strftime("%H:%M") for minutes in (0, 10, 20, 60, 70)}
    assert lines == {f"Raised {local[0]}": site(0), f"Response limit {local[10]}": site(10),
                     f"Acknowledged {local[20]}": site(20), f"Resolution limit {local[60]}": site(60),
                     f"Resolved {local[70]}": site(70)}
    dashes = {label["text"].rsplit(" ", 1)[0]: shape["line"]["dash"] for shape, label in
              zip(figure["layout"]["shapes"], figure["layout"]["annotations"])}
    assert dashes["Response limit"] == dashes["Resolution limit"] == "dash"
    assert dashes["Acknowledged"] == dashes["Resolved"] == "solid"
    assert "site time" in figure["layout"]["title"]["text"]


def test_midway_the_holder_s_bar_runs_to_the_instant_hatched_and_later_events_are_left_out(
        page_app, issue_page, plant_file):
    page = render(page_app, issue_page, "I-1", at=MIDWAY.isoformat())
    bars, markers = graph(page)["data"]
    assert bars["y"] == ["Production", "Quality"] and bars["x"] == [5 * 60_000, 20 * 60_000]
    assert bars["marker"]["pattern"]["shape"] == ["", "/"]
    assert len(markers["x"]) == 3
    assert len(find(page, "event-row")) == 3
    notes = [text_of(n) for n in find(page, "issue-notice")]
    assert notes == [f"As of {site(25)} (site time)", "3 later event(s) not counted"]
    # The resolution limit (09:00) lies further past 08:25 than half the trace's span: it is
    # named at the right edge, not drawn; nothing was resolved yet.
    labels = [a["text"] for a in graph(page)["layout"]["annotations"]]
    local = {minutes: (at(minutes) + timedelta(hours=8)).strftime("%H:%M") for minutes in (0, 10, 20, 25, 60)}
    assert labels == [f"Raised {local[0]}", f"Response limit {local[10]}", f"Acknowledged {local[20]}",
                      f"As of {local[25]}", f"Resolution limit 11-20 {local[60]} → (beyond the chart)"]


def test_html_in_data_stays_text_in_the_table_and_in_the_figure(page_app, issue_page, plant_file):
    page = render(page_app, issue_page, "I-1")
    cells = [n for n in walk(page) if type(n).__name__ == "Td"]
    assert NOTE_HTML in [n.children for n in cells]
    assert not [n for n in walk(page) if type(n).__name__ in ("Markdown", "Iframe")
                or getattr(n, "dangerously_allow_html", False)]
    headings = [n.children for n in walk(page) if type(n).__name__ == "H2"]
    assert "扭力异常 <i>L1</i>" in headings
    hover = " ".join(graph(page)["data"][1]["hovertext"])
    assert "&lt;b&gt;x&lt;/b&gt;" in hover and NOTE_HTML not in hover
    assert figures.plain("<b>x</b> & <br>") == "&lt;b&gt;x&lt;/b&gt; &amp; &lt;br&gt;"


def test_the_event_table_marks_the_return_and_names_everyone(page_app, issue_page, plant_file):
    page = render(page_app, issue_page, "I-1", lang="en")
    rows = find(page, "event-row")
    assert [("return" in r.className.split()) for r in rows] == [False, False, False, True, False, False]
    cells = [[text_of(td) for td in row.children] for row in rows]
    assert cells[0] == [site(0), "raised", "Production", "张三 (P1)", "", "—"]
    assert cells[3] == [site(30), "⇄ return reassigned", "Production", "李四 (Q1)", "not ours", "—"]
    assert cells[5][-1] == "api:mes-line1"
    facts = {text_of(n.children[0]): text_of(n.children[1]) for n in find(page, "desk-facts")[0].children}
    assert facts["Response / limit"] == "20 min / 10 min · breached"
    assert facts["Resolution / limit"] == "70 min / 60 min · breached"
    assert facts["Hand-offs"] == "2" and facts["Returns (ping-pong)"] == "1 · ⇄ ping-pong"
    assert facts["Status"] == "closed" and facts["Raised"] == f"{site(0)} · 张三 (P1)"


def test_an_open_issue_says_how_long_it_has_waited(page_app, issue_page, plant_file):
    page = render(page_app, issue_page, "I-2", at=AFTER_ALL.isoformat())
    facts = {text_of(n.children[0]): n.children[1] for n in find(page, "desk-facts")[0].children}
    assert text_of(facts["Status"]) == "open · overdue" and facts["Status"].className == "bad"
    assert text_of(facts["Response / limit"]) == "waiting 60 min / 10 min · breached"
    assert text_of(facts["Resolution / limit"]) == "waiting 60 min / 60 min · pending"
    assert text_of(facts["Held now by"]) == "Production"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_an_unknown_id_gets_a_page_that_says_so(page_app, issue_page, lang):
    page = render(page_app, issue_page, "NOPE-<b>1</b>", lang=lang)
    assert text_of(find(page, "desk-title")[0]) == words.t("issue_not_found_title", lang)
    said = text_of(find(page, "issue-missing")[0])
    assert "NOPE-<b>1</b>" in said
    assert said == words.t("issue_not_found_text", lang).format(value="NOPE-<b>1</b>")
    assert not find(page, "desk-graph")


def test_a_bad_at_is_said_and_now_is_shown(page_app, issue_page, plant_file):
    page = render(page_app, issue_page, "I-1", at="yesterday")
    assert [text_of(n) for n in find(page, "issue-notice")] == [
        "at=yesterday is not a usable time (such as 2026-11-20T08:00); showing now"]
    assert len(find(page, "event-row")) == 6
    for ancient in ("0001-01-01T00:00", "1600-01-01"):
        page = render(page_app, issue_page, "I-1", at=ancient)
        assert [text_of(n) for n in find(page, "issue-notice")] == [
            f"at={ancient} is not a usable time (such as 2026-11-20T08:00); showing now"]
    page = render(page_app, issue_page, "I-1", at="2200-01-01T00:00")
    assert [text_of(n) for n in find(page, "issue-notice")] == [
        "at=2200-01-01T00:00 is later than now; showing now"]
    assert len(find(page, "event-row")) == 6


def test_the_desk_frame_leads_to_the_explorer_and_the_wall_and_switches_language(page_app, issue_page):
    page = render(page_app, issue_page, "I-1", lang="zh")
    assert "desk-frame" in page.className.split() and "desk-page" in page.className.split()
    links = {text_of(link): link.href for link in walk(page) if type(link).__name__ == "Link"}
    assert links["瓶颈分析"] == "/explorer?lang=zh" and links["返回看板"] == "/?lang=zh"
    assert links["English"] == "?lang=en" and links["中文"] == "?lang=zh"


def test_every_word_of_the_page_is_in_both_languages(page_app, issue_page, plant_file):
    for lang in ("zh", "en"):
        page = render(page_app, issue_page, "I-1", lang=lang, at=MIDWAY.isoformat())
        shown = text_of(page) + " ".join(a["text"] for a in graph(page)["layout"]["annotations"])
        shown += graph(page)["layout"]["title"]["text"] + " ".join(graph(page)["data"][0]["hovertext"])
        if lang == "en":
            data_words = ("扭力异常", "张三", "李四", "质量异常", "L1 工位 1", "中文")
            for word in data_words:
                shown = shown.replace(word, "")
            assert not any("\u4e00" <= ch <= "\u9fff" for ch in shown), shown
        else:
            assert "Quality" not in shown and "hop" not in shown


def test_only_the_event_that_took_it_back_is_marked_when_another_shares_its_instant(issue_page, plant_file):
    record = read(plant_file, "I-1")
    hand_back = record.events.iloc[3]
    remark = {**hand_back.to_dict(), "event_id": 99, "kind": "commented", "note": "same minute"}
    events = pd.concat([record.events, pd.DataFrame([remark])], ignore_index=True).sort_values(
        ["at", "event_id"], ignore_index=True)
    page = issue_page.issue_view(queries.IssueTimeline(record.issue, events), None, AFTER_ALL, "en", [])
    rows = find(page, "event-row")
    assert [text_of(r.children[1]) for r in rows if "return" in r.className.split()] == ["⇄ return reassigned"]
    assert len(rows) == 7


def test_a_database_that_does_not_answer_is_said(tmp_path, issue_page, plant_file):
    gone = floorlink.create_app(f"sqlite:///{tmp_path / 'no-such-folder' / 'x.sqlite'}")
    with gone.server.test_request_context():
        page = issue_page.layout(issue_id="I-1", lang="en")
    assert text_of(find(page, "issue-missing")[0]) == "Database unreachable"
    assert text_of(find(page, "desk-title")[0]) == "Database unreachable"


def test_rows_that_cannot_be_used_are_said_on_the_page(tmp_path, issue_page):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    db.upgrade_schema(db.get_engine(url))
    write_plant(url)
    with db.session_scope(db.get_engine(url)) as session:
        store.raise_issue(session, issue_id="OLD", issue_type="quality", title="typo in the year",
                          severity="P3", at=datetime(1990, 1, 1, tzinfo=timezone.utc))
        store.comment(session, "I-1", datetime(3026, 1, 1, tzinfo=timezone.utc), note="typo")
    with floorlink.create_app(url).server.test_request_context():
        page = issue_page.layout(issue_id="OLD", lang="en")
        with_typo = issue_page.layout(issue_id="I-1", lang="en")
    assert text_of(find(page, "desk-title")[0]) == "Issue OLD · responsibility trace"
    said = text_of(find(page, "issue-missing")[0])
    assert said.startswith("This issue's row cannot be used: raised_at before PLAUSIBLE_FROM"), said
    assert [text_of(n) for n in find(with_typo, "issue-notice")] == [
        "1 event(s) cannot be used and are not shown: at not before PLAUSIBLE_UNTIL (2100-01-01)"]
    assert len(find(with_typo, "event-row")) == 6
