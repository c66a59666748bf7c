"""Every write is attributable (docs/security.md, "Who recorded each event"): each event keeps
who recorded it, whichever way it came in: the ingest API its token's source, an import the
file and the account that ran it, the demo plant and the simulator their names, a person
signed in `user:<name>`; and the issue page says it, in Chinese and English. On SQLite and
PostgreSQL."""
from __future__ import annotations

import csv
import getpass
import importlib
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

import app as floorlink
from data import db, demo, store
from data.demo import reference, simulator
from data.ingest import importer
from data.models import IssueEvent
from tests.test_api import client, issue_body, plant, post, token  # noqa: F401 - fixtures
from tests.test_event_log import LOG_ROWS, write_log
from tests.test_issue_page import find, text_of, walk, write_plant
from tests.test_simulator import END, STEP

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


def writers(engine, *where) -> dict[str | None, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(IssueEvent.source, func.count()).where(*where)
                                 .group_by(IssueEvent.source)).all())


# ---- who each writer is --------------------------------------------------------------------

def test_each_writer_is_named_apart_and_fits_its_column():
    assert store.api_writer("andon-L2") == "andon-L2"
    assert store.import_writer("issue_events.csv", "wang") == "import:issue_events.csv (wang)"
    assert store.user_writer("li.si") == "user:li.si"
    assert (store.DEMO_PLANT, store.SIMULATOR) == ("demo:plant", "demo:simulator")
    long_file = store.import_writer("事件" * 80 + ".csv", "operator")
    assert len(long_file) == store.RECORDED_BY_CHARS and long_file.endswith("… (operator)")
    assert store.import_writer("a\u202eb\x1b.csv", "x\ny") == "import:a\ufffdb\ufffd.csv (x\ufffdy)"
    assert len(store.user_writer("u" * 64)) == store.RECORDED_BY_CHARS
    for kind in (store.api_writer("mes"), store.import_writer("f.csv", "a"), store.user_writer("b"),
                 store.DEMO_PLANT, store.SIMULATOR):
        assert (":" in kind) != (kind == "mes")
    for refused in ("demo:plant", "a b", "", "x" * 65):
        with pytest.raises(ValueError):
            store.api_writer(refused)
    for refused in ("", "a\u202eb", "a\nb"):
        with pytest.raises(ValueError):
            store.user_writer(refused)


def test_a_page_names_an_api_source_apart_from_the_other_writers():
    assert store.writer_shown("andon-L2") == "api:andon-L2"
    for writer in ("import:f.csv (wang)", "demo:plant", "demo:simulator", "user:li.si"):
        assert store.writer_shown(writer) == writer


# ---- each way in -----------------------------------------------------------------------------

def test_a_person_signed_in_records_their_events(db_url, engine):
    write_plant(db_url)
    with db.session_scope(engine) as session:
        store.record_as(session, store.user_writer("li.si"))
        store.raise_issue(session, issue_id="U-1", issue_type="quality", title="by hand",
                          severity="P3", at=T0 + timedelta(hours=3))
        store.acknowledge(session, "U-1", T0 + timedelta(hours=3, minutes=1), actor="Q1")
    assert writers(engine, IssueEvent.issue_id == "U-1") == {"user:li.si": 2}
    with db.session_scope(engine) as session:
        with pytest.raises(ValueError, match="1 to 64 characters"):
            store.record_as(session, "user:" + "x" * 64)


def test_the_api_records_the_token_s_source(client, token, plant):
    assert post(client, "/issues", issue_body("A-1"), token).status_code == 201
    assert post(client, "/issues/A-1/events", {"kind": "acknowledged", "actor": "QA-01"},
                token).status_code == 201
    assert writers(plant) == {"andon-L2": 2}
    events = client.get("/api/v1/issues/A-1", headers={"Authorization": f"Bearer {token}"}).get_json()["events"]
    assert [e["source"] for e in events] == ["andon-L2", "andon-L2"]


def test_an_import_records_its_file_and_who_ran_it(db_url, engine, tmp_path):
    write_plant(db_url)
    path = tmp_path / "events.csv"
    rows = [["I-2", "2026-11-20T09:05:00+00:00", "acknowledged", "PRD", "P1", ""],
            ["I-2", "2026-11-20T09:10:00+00:00", "commented", "PRD", "P1", "看过了"]]
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["issue_id", "at", "kind", "department_code", "actor", "note"], *rows])
    importer.import_file(engine, "issue_events", path)
    assert writers(engine, IssueEvent.issue_id == "I-2", IssueEvent.kind != "raised") == {
        f"import:events.csv ({getpass.getuser()})": 2}
    # The same rows imported again by someone else: each event keeps its last writer.
    importer.import_file(engine, "issue_events", path, account="zhao")
    assert writers(engine, IssueEvent.issue_id == "I-2", IssueEvent.kind != "raised") == {
        "import:events.csv (zhao)": 2}


def test_an_event_log_import_records_its_file(engine, tmp_path):
    path, mapping = write_log(tmp_path, LOG_ROWS, name="tickets.csv")
    result = importer.import_file(engine, "event_log", path, mapping, account="ops")
    assert writers(engine) == {"import:tickets.csv (ops)": result.summary["events"]}


def test_the_demo_plant_and_the_simulator_record_their_names(engine):
    demo.build_demo_plant(engine, days=2, seed=7, end=END)
    assert set(writers(engine)) == {store.DEMO_PLANT}
    with engine.connect() as conn:
        built = conn.scalar(select(func.max(IssueEvent.id)))
    live = simulator.LiveSimulator(engine, seed=1, issues_per_hour=30.0, moves_per_hour=0.0)
    for n in range(1, 13):
        live.step(END + n * STEP)
    # Its own issues, and the demo's it carried on.
    simulated = writers(engine, IssueEvent.id > built)
    assert set(simulated) == {store.SIMULATOR} and simulated[store.SIMULATOR] > 10
    assert writers(engine, IssueEvent.issue_id.startswith(reference.LIVE_ID_PREFIX)).keys() == {store.SIMULATOR}


# ---- the issue page says it ------------------------------------------------------------------

@pytest.fixture(scope="module")
def attributed(tmp_path_factory):
    """The hand-worked issue of tests/test_issue_page.py, its events recorded by an import, a
    person, the API and the demo; and an event from before writers were recorded."""
    url = f"sqlite:///{tmp_path_factory.mktemp('attributed') / 'issue.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    write_plant(url)
    kinds = {"raised": "import:issues.csv (wang)", "reassigned": "user:li.si",
             "acknowledged": store.DEMO_PLANT, "resolved": "mes-line1", "closed": None}
    with engine.begin() as conn:
        for kind, writer in kinds.items():
            conn.execute(IssueEvent.__table__.update()
                         .where(IssueEvent.issue_id == "I-1", IssueEvent.kind == kind).values(source=writer))
    return floorlink.create_app(url)


@pytest.mark.parametrize("lang, head", [("zh", "记录者"), ("en", "Recorded by")])
def test_the_trace_says_who_recorded_each_event(attributed, lang, head):
    page_module = importlib.import_module("dashboards.issue")
    with attributed.server.test_request_context():
        page = page_module.layout(issue_id="I-1", lang=lang)
    table = find(page, "issue-events")[0]
    heads = [text_of(cell) for cell in next(n for n in walk(table) if type(n).__name__ == "Tr").children]
    assert heads[-1] == head
    assert [text_of(cell) for cell in find(page, "event-recorded-by")] == [
        "import:issues.csv (wang)", "user:li.si", "demo:plant", "user:li.si", "api:mes-line1", "—"]
