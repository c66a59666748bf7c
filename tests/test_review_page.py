"""The review page (dashboards/review.py) on a demo plant: its figures are the week's pack,
drawn with the files' formats; a week without a pack says why instead of showing figures; and
through the real doors a viewer reads but cannot change the register or take a file, while a
manager's action is stored, an error is said next to its field, and the page's XLSX (recorded
in the audit log) carries the action."""
from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest

from data import db, demo, timezones
from data.auth import audit, users
from data.reports import actions, render, review, weekly

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('review') / 'plant.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=21, seed=3)
    return url


@pytest.fixture(scope="module")
def wall(plant, tmp_path_factory):
    from app import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.setenv("SECRET_KEY", "review-test-key")
        yield create_app(plant)


@pytest.fixture(scope="module")
def page(wall):
    from dashboards import review as module

    return module


def texts(component) -> list[str]:
    """Every text child of a rendered component, in order."""
    if isinstance(component, str):
        return [component]
    if isinstance(component, (list, tuple)):
        return [text for child in component for text in texts(child)]
    if hasattr(component, "to_plotly_json"):
        return texts(component.to_plotly_json())
    if isinstance(component, dict):
        return texts(component.get("props", {}).get("children"))
    return []


def find(component, component_id: str):
    """The component with this id inside a rendered tree."""
    if hasattr(component, "to_plotly_json"):
        component = component.to_plotly_json()
    if isinstance(component, (list, tuple)):
        return next((found for child in component if (found := find(child, component_id)) is not None), None)
    if isinstance(component, dict):
        props = component.get("props", {})
        if props.get("id") == component_id:
            return component
        return find(props.get("children"), component_id)
    return None


def plain(component):
    """A rendered tree as plain JSON."""
    return json.loads(json.dumps(component, default=lambda c: c.to_plotly_json()))


def rows_of(component) -> list[list[str]]:
    """The cells' texts of each body row of the first table inside `component`; none when
    it holds no table (an empty list is said in words)."""
    table = component if component.get("type") == "Table" else next(
        (child for child in plain(component)["props"]["children"] if child.get("type") == "Table"), None)
    if table is None:
        return []
    body = plain(table)["props"]["children"][1]
    return [[" ".join(texts(cell)) for cell in row["props"]["children"]] for row in body["props"]["children"]]


def hrefs(component) -> list[str]:
    found = []
    if isinstance(component, list):
        for child in component:
            found += hrefs(child)
    elif isinstance(component, dict):
        props = component.get("props", {})
        found += [props["href"]] if "href" in props else []
        found += hrefs(props.get("children"))
    return found


def test_the_figures_are_the_weeks_pack(plant, wall, page):
    now = timezones.utc_now()
    week = weekly.last_complete_week(now)
    expected = weekly.build_pack(db.get_engine(plant), week, as_of=review.as_of_for(week, now))
    with wall.server.test_request_context("/"):
        seen = review.shown(plant, week, now)
        view = page.pack_view(seen, "en")
    assert not seen.frozen and seen.pack["kpis"] == expected["kpis"]
    assert texts(find(view, "review-source"))[0].startswith("Not frozen")
    table = rows_of(find(view, "review-kpi-table"))
    assert len(table) == len(weekly.KPIS)
    for row, kpi in zip(table, expected["kpis"]):
        assert row[1:5] == [render.kpi_value(kpi["this"], kpi["unit"], "en"),
                            render.kpi_value(kpi["last"], kpi["unit"], "en"),
                            render.kpi_value(kpi["avg4"], kpi["unit"], "en"),
                            render.kpi_delta(kpi["delta"], kpi["unit"], "en")], kpi["key"]
        assert row[5] == ("signal" if kpi["signal"] else "")
    delta = plain(find(view, "review-kpi-table"))["props"]["children"][1]["props"]["children"]
    tones = [r["props"]["children"][4]["props"]["className"] for r in delta]
    assert tones == [f"num delta {'good' if k['good'] else 'bad'}" if k["good"] is not None else "num delta"
                     for k in expected["kpis"]]
    # Each list links every issue to its trace, in the page's language.
    for name in ("worst_breaches", "longest_open", "ping_pong"):
        assert hrefs(plain(find(view, f"review-{name}"))) == [
            f"/issue/{row['id']}?lang=en" for row in expected[name]], name
    assert expected["worst_breaches"] and expected["longest_open"]
    assert [row[1] for row in rows_of(find(view, "review-departments"))] == [
        d["name_en"] for d in expected["departments"]]
    star = texts(plain(find(view, "review-star")))
    assert star[1:3] == (["★ ", expected["star"]["name_en"]] if expected["star"] else
                         ["No collaboration star this week"])
    assert [row[2] for row in rows_of(find(view, "review-pareto-types"))] == [
        render.cell(render.Column("this", "", "count"), p, "en", "UTC", {}) for p in expected["pareto"]["types"]]
    assert [row[1] for row in rows_of(find(view, "review-escalations"))] == [
        str(e["count"]) for e in expected["escalations"]]
    # In Chinese, the same figures under the pack's Chinese names.
    with wall.server.test_request_context("/"):
        chinese = page.pack_view(seen, "zh")
    assert [r[0] for r in rows_of(find(chinese, "review-kpi-table"))] == [k["name_zh"] for k in expected["kpis"]]


def test_a_frozen_week_is_shown_as_frozen_whatever_is_written_later(plant, wall, page):
    now = timezones.utc_now()
    week = weekly.shifted(weekly.last_complete_week(now), -1)
    engine = db.get_engine(plant)
    kept = weekly.freeze(engine, week, as_of=review.as_of_for(week, now), built_by="test")
    seen = review.shown(plant, week, now + timedelta(hours=1))
    assert seen.frozen and seen.pack == kept
    with wall.server.test_request_context("/"):
        view = page.pack_view(seen, "zh")
    assert texts(find(view, "review-source"))[0].startswith("已冻结的资料")


def test_a_week_without_a_pack_says_why_and_shows_no_figures(db_url, wall, page):
    now = timezones.utc_now()
    current = weekly.week_of(timezones.to_site(now).date())
    last = weekly.last_complete_week(now)
    _, until = weekly.week_window(last)
    with wall.server.test_request_context("/"):
        not_over = page.pack_view(review.shown(db_url, current, now), "en")
        # An hour after the week's end, with no record since long before it: behind.
        behind = page.pack_view(review.shown(db_url, last, until + timedelta(hours=1)), "en")
    for view, opening in ((not_over, f"Week {current} is not over"),
                          (behind, f"The sources have not caught up with the end of week {last}")):
        assert texts(find(view, "review-refused"))[0].startswith(opening)
        assert find(view, "review-kpi-table") is None


# The page through the doors, in a fresh interpreter (Dash gives a module's callbacks to the
# first app of a process only): a viewer and a manager each sign in and use the page.
DOORS = r"""
import base64, json, re, sys
import app as floorlink

wall = floorlink.create_app(sys.argv[1])
from dashboards.review import ADD_ERRORS, ADD_INPUTS, CHANGE_ERRORS
week, action = sys.argv[2], json.loads(sys.argv[3])
deps = []
FIELDS = {"review-add-error": ADD_ERRORS, "review-change-error": CHANGE_ERRORS, "review-add": ADD_INPUTS}

def items(spec, values):
    out = []
    for item in spec:
        kind = json.loads(item["id"])["type"] if item["id"].startswith("{") else None
        if kind in FIELDS:
            out.append([{"id": {"type": kind, "field": f}, "property": item["property"],
                         "value": values.get(f)} for f in FIELDS[kind]])
        else:
            out.append({**item, "value": values.get(item["id"])})
    return out

def body(output, inputs, states):
    cb = next(c for c in deps if output in c["output"])
    spec = cb["output"]
    parts = spec[2:-2].split("...") if spec.startswith("..") else [spec]
    outputs = []
    for part in parts:
        cid, prop = part.split("@")[0].rsplit(".", 1)
        if cid.startswith("{"):
            kind = json.loads(cid)["type"]
            outputs.append([{"id": {"type": kind, "field": f}, "property": prop} for f in FIELDS[kind]])
        else:
            outputs.append({"id": cid, "property": prop})
    return {"output": spec, "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": items(cb["inputs"], inputs), "state": items(cb["state"], states),
            "changedPropIds": [f"{k}.n_clicks" for k in inputs if k.endswith("button") or "export" in k]}

def session(name):
    client = wall.server.test_client()
    csrf = re.search(r"name='csrf' value='([^']+)'", client.get("/signin").get_data(as_text=True)).group(1)
    client.post("/signin", data={"name": name, "password": "correct horse battery", "csrf": csrf})
    deps[:] = deps or client.get("/_dash-dependencies").get_json()
    page = client.post("/_dash-update-component", json=body("_pages_content", {"url": None}, {}) | {
        "inputs": [{"id": "url", "property": "pathname", "value": "/review"},
                   {"id": "url", "property": "search", "value": f"?week={week}&lang=en"}]})
    text = json.dumps(page.get_json())
    state = json.loads(re.search(r'"id": "review-state", "data": (\{[^}]*\})', text).group(1))
    return client, text, state

def post(client, output, inputs, states):
    answer = client.post("/_dash-update-component", json=body(output, inputs, states))
    return [answer.status_code, answer.get_json()]

found = {}
for name in ("zhao.liu", "li.na"):
    client, text, state = session(name)
    found[name] = {
        "form": '"review-add-button"' in text, "readonly": "review-readonly" in text,
        "buttons": '"review-export-xlsx"' in text,
        "body": post(client, "review-body", {"review-state": state}, {})[0],
        "empty": post(client, "review-register", {"review-add-button": 1},
                      {**action, "problem": "", "review-state": state}),
        "add": post(client, "review-register", {"review-add-button": 1}, {**action, "review-state": state}),
        "xlsx": post(client, "review-download", {"review-export-xlsx": 1}, {"review-state": state}),
    }
print(json.dumps(found))
"""


def test_a_viewer_reads_and_a_manager_writes_through_the_doors(plant):
    engine = db.get_engine(plant)
    now = timezones.utc_now()
    users.create(engine, "zhao.liu", "viewer", PASSWORD, now)
    users.create(engine, "li.na", "manager", PASSWORD, now)
    week = weekly.last_complete_week(now)
    action = {"problem": "响应慢：夜班维修无人接单", "about_kpi": "response_median_min", "about_issues": "",
              "countermeasure": "夜班设维修值班并接入升级", "owner": "王工", "department_code": "MNT",
              "due": "2026-12-04"}
    before = actions.carried(engine, week)
    run = subprocess.run([sys.executable, "-c", DOORS, plant, week, json.dumps(action)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.splitlines()[-1])
    viewer, manager = found["zhao.liu"], found["li.na"]
    # The viewer reads the pack and the register, and no door to a change or a file opens.
    assert viewer["body"] == 200 and viewer["readonly"] and not viewer["form"] and not viewer["buttons"]
    assert viewer["empty"][0] == viewer["add"][0] == viewer["xlsx"][0] == 403
    assert manager["form"] and manager["buttons"] and not manager["readonly"]
    # An empty problem: said next to its field, nothing stored.
    status, answer = manager["empty"]
    errors = {json.loads(k)["field"]: v["children"] for k, v in answer["response"].items()
              if "review-add-error" in k}
    assert status == 200 and errors.pop("problem") == "problem: must not be empty"
    assert set(errors) == {"about", "countermeasure", "owner", "department_code", "due"}
    assert not any(errors.values())
    status, answer = manager["add"]
    assert status == 200
    after = actions.carried(engine, week)
    assert len(after) == len(before) + 1
    stored = after[-1]
    assert (stored["problem"], stored["about"], stored["owner"], stored["department_code"], stored["due"],
            stored["created_by"], stored["opened_week"], stored["status"]) == (
        action["problem"], "response_median_min", "王工", "MNT", "2026-12-04", "li.na", week, "open")
    assert f"Action #{stored['id']} added" in json.dumps(answer["response"]["review-saved"])
    # The page's workbook carries the action, and the audit log records the file.
    status, answer = manager["xlsx"]
    data = answer["response"]["review-download"]["data"]
    assert status == 200 and data["filename"] == f"floorlink-review-{week}-en.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(base64.b64decode(data["content"])))
    cells = [c for sheet in book for row in sheet.iter_rows(values_only=True) for c in row]
    assert action["problem"] in cells and action["countermeasure"] in cells
    exports = [(row.who, row.detail) for row in audit.listed(engine) if row.kind == "export"]
    assert exports == [("li.na", data["filename"])]


def test_a_manager_changes_an_actions_status_and_evidence_on_the_page(plant, wall, page):
    now = timezones.utc_now()
    week = weekly.last_complete_week(now)
    action, errors = page.add_action(plant, week, "li.na", now, {
        "problem": "来料检验积压", "about_kpi": None, "about_issues": "", "countermeasure": "增加检验员",
        "owner": "李工", "department_code": "QA", "due": "2026-12-04"})
    assert action is None and errors["about"].startswith("about:")
    _, errors = page.add_action(plant, week, "li.na", now, {"about_kpi": "raised", "about_issues": "X-1"})
    assert errors == {"about": "review_about_both"}
    action, errors = page.add_action(plant, week, "li.na", now, {
        "problem": "来料检验积压", "about_kpi": "raised", "about_issues": "", "countermeasure": "增加检验员",
        "owner": "李工", "department_code": "QA", "due": "2026-12-04"})
    assert errors == {} and action["status"] == "open"
    changed, errors = page.change_action(plant, week, "li.na", now, action["id"], "verified", "")
    assert changed is None and errors == {"evidence": "evidence: a verified action says what shows it worked"}
    changed, errors = page.change_action(plant, week, "li.na", now, action["id"], "verified", "响应中位数降至 9 分")
    assert errors == {} and changed["status"] == "verified" and changed["closed_week"] == week
    assert page.change_action(plant, week, "li.na", now, None, "done", "")[1] == {"id": "review_pick_action"}
