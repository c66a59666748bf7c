"""The explorer's history in memory answers exactly what a read answers: its rows equal
rows.load's and its holding intervals equal holding.holding_intervals' on the demo plant, on
SQLite and PostgreSQL, for random filters and windows, as_of now and in the past, after
writes through data.store and after plain SQL from another connection."""
from __future__ import annotations

import random
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import select, text

from data import db, demo, kpis, store, timezones
from data.analysis import holding
from data.explorer import history, rows
from data.explorer import view as explorer_view
from data.explorer.state import NO_VALUE, Window
from data.models import Issue

FRAMES = ("issues", "open_now", "events", "shifts")


@pytest.fixture
def plant(engine, monkeypatch):
    """Twelve days of the demo plant ending this hour. No writer here commits late, so a
    follow reads only what was written after the last read (not the plant just built)."""
    end = timezones.utc_now().replace(minute=0, second=0, microsecond=0)
    demo.build_demo_plant(engine, days=12, seed=5, end=end)
    monkeypatch.setenv("FOLLOW_OVERLAP_S", "0")
    return engine


def _known(loaded: rows.Rows) -> pd.DataFrame:
    extra = loaded.open_now[~loaded.open_now["id"].isin(loaded.issues["id"])]
    return pd.concat([loaded.issues, extra], ignore_index=True)


def _as_objects(frame: pd.DataFrame) -> pd.DataFrame:
    """Values alike whether a text column came typed as text or as objects."""
    frame = frame.astype(object)
    return frame.where(frame.notna(), None)


def _draw(rng: random.Random, issues: pd.DataFrame) -> tuple:
    """A random window (since, until, as_of) and filters over the plant's values."""
    now = timezones.utc_now().replace(second=0, microsecond=0)
    as_of = now if rng.random() < 0.4 else now - timedelta(hours=rng.uniform(1, 240))
    until = as_of if rng.random() < 0.7 else as_of - timedelta(hours=rng.uniform(1, 48))
    since = until - timedelta(days=rng.choice([0.3, 1, 3, 7, 12]))
    filters = {}
    for name, column in history.FILTER_FIELDS.items():
        if rng.random() < 0.3:
            values = sorted(issues[column].dropna().unique())
            chosen = rng.sample(values, min(len(values), rng.randint(1, 3)))
            filters[name] = tuple(chosen + ([NO_VALUE] if rng.random() < 0.3 else []))
    return since, until, as_of, filters


def assert_same_as_a_read(engine, snapshot: history.Snapshot, draws: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(draws):
        assert_one_same(engine, snapshot, *_draw(rng, snapshot.issues))


def assert_one_same(engine, snapshot: history.Snapshot, since, until, as_of, filters) -> None:
    with engine.connect() as conn:
        read = rows.load(conn, since, until, as_of, filters)
    kept = snapshot.rows(since, until, as_of, filters)
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(kept, name), getattr(read, name),
                                      obj=f"{name} for {since}..{until} at {as_of}, {filters}")
    assert len(kept.left_out) == len(read.left_out)
    known = _known(kept)
    pd.testing.assert_frame_equal(_as_objects(kept.known), _as_objects(known))
    computed = holding.holding_intervals(known, kept.events, as_of, kept.shifts)
    pd.testing.assert_frame_equal(snapshot.intervals(known, kept.events, as_of, kept.shifts),
                                  computed, obj=f"hops at {as_of}, {filters}")
    # A view takes only the events of the issues whose hops are computed again, of the open
    # issues (their ageing) and the hand-offs.
    cut = snapshot.cut(since, until, as_of, filters)
    pd.testing.assert_frame_equal(cut.intervals(known, as_of, kept.shifts), computed,
                                  obj=f"hops of a cut at {as_of}, {filters}")
    events = kept.events
    pd.testing.assert_frame_equal(
        cut.open_events, events[events["issue_id"].isin(kept.open_now["id"])].reset_index(drop=True))
    pd.testing.assert_frame_equal(
        cut.handoff_events, events[events["kind"] == kpis.HANDOFF_KIND].reset_index(drop=True))


def test_the_history_answers_as_a_read_for_random_windows_and_filters(plant, db_url):
    kept = history.History(db_url)
    snapshot = kept.current()
    assert len(snapshot.issues) > 500 and len(snapshot.events) > 3000
    assert_same_as_a_read(plant, snapshot, draws=30, seed=1)


def test_hops_are_computed_again_only_for_issues_with_something_after_as_of(plant, db_url, monkeypatch):
    snapshot = history.History(db_url).current()
    computed = []
    real = holding.holding_intervals
    monkeypatch.setattr(holding, "holding_intervals",
                        lambda issues, *rest: computed.append(len(issues)) or real(issues, *rest))
    now = timezones.utc_now().replace(second=0, microsecond=0)
    loaded = snapshot.rows(now - timedelta(days=10), now, now)
    snapshot.intervals(_known(loaded), loaded.events, now, loaded.shifts)
    assert computed == []
    past = now - timedelta(days=2)
    loaded = snapshot.rows(past - timedelta(days=7), past, past)
    snapshot.intervals(_known(loaded), loaded.events, past, loaded.shifts)
    known = _known(loaded)
    later = snapshot.events[snapshot.events["at"] > past]["issue_id"]
    touched = known[known["id"].isin(later) | (known["resolved_at"] > past) | (known["closed_at"] > past)]
    assert computed == [len(touched)] and 0 < len(touched) < len(known)


def _open_ids(engine, n: int) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(Issue.id).where(Issue.resolved_at.is_(None),
                                                        Issue.status != "cancelled")
                                 .order_by(Issue.raised_at.desc(), Issue.id).limit(n)).scalars())


def test_writes_through_the_store_are_followed_without_a_reload(plant, db_url):
    kept = history.History(db_url)
    kept.current()
    first, second, third, fourth = _open_ids(plant, 4)
    now = timezones.utc_now()
    with db.session_scope(plant) as s:
        store.raise_issue(s, issue_id="NEW-1", issue_type="quality_anomaly", title="<b>毛刺</b>",
                          severity="P1", at=now - timedelta(minutes=3), location_code=None)
        # The plant ends this hour: whoever owns its newest issue, hand it to another department.
        other = "QA" if s.get(Issue, first).owner_department_code == "PRD" else "PRD"
        store.reassign(s, first, now - timedelta(minutes=2), other, actor="qa1")
        store.resolve(s, second, now - timedelta(minutes=2), actor="qa1", cause="新原因")
        store.cancel(s, third, now - timedelta(minutes=2), actor="qa1")
        store.escalate(s, fourth, now - timedelta(minutes=1), actor="qa1")
    with db.session_scope(plant) as s:
        store.reopen(s, second, now - timedelta(minutes=1), actor="qa1")
    snapshot = kept.refresh()
    assert kept.loads == 1
    assert "NEW-1" in set(snapshot.issues["id"]) and third not in set(snapshot.issues["id"])
    assert_same_as_a_read(plant, snapshot, draws=20, seed=2)


def test_plain_sql_from_another_connection_is_followed(plant, db_url):
    kept = history.History(db_url)
    before = kept.current()
    first, second = _open_ids(plant, 2)
    now = timezones.utc_now()

    def stored(instant):
        return instant.strftime("%Y-%m-%d %H:%M:%S.%f")

    stamp = stored(now - timedelta(minutes=1))
    with plant.begin() as conn:
        conn.execute(text("INSERT INTO issue_events (issue_id, at, kind, department_code, actor) "
                          "VALUES (:issue, :at, 'reassigned', 'ENG', 'mes')"),
                     {"issue": first, "at": stamp})
        conn.execute(text("UPDATE issues SET resolved_at = :at, status = 'resolved' WHERE id = :issue"),
                     {"issue": second, "at": stamp})
        conn.execute(text("INSERT INTO issues (id, issue_type, title, severity, raised_at, "
                          "owner_department_code, status) VALUES ('OUT-1', 'quality_anomaly', "
                          "'x', 'P2', :at, 'QA', 'open')"), {"at": stamp})
        # Without any event: held by its owner from raised to resolved.
        conn.execute(text("INSERT INTO issues (id, issue_type, title, severity, raised_at, "
                          "resolved_at, owner_department_code, status) VALUES ('OUT-2', "
                          "'quality_anomaly', 'y', 'P2', :raised, :resolved, 'QA', 'resolved')"),
                     {"raised": stored(now - timedelta(days=3)), "resolved": stored(now - timedelta(days=1))})
    after = kept.refresh()
    assert kept.loads == 1
    assert len(after.events) == len(before.events) + 1
    assert after.issues.set_index("id").loc[second, "status"] == "resolved"
    assert {"OUT-1", "OUT-2"} <= set(after.issues["id"])
    as_of = (now - timedelta(days=2)).replace(second=0, microsecond=0)
    assert_one_same(plant, after, as_of - timedelta(days=2), as_of, as_of, {})
    assert_same_as_a_read(plant, after, draws=20, seed=3)


def test_a_bulk_write_reloads_the_history(plant, db_url):
    kept = history.History(db_url)
    kept.current()
    with plant.begin() as conn:
        store.bump_bulk_version(conn)
    kept.refresh()
    assert kept.loads == 2


def test_a_window_older_than_the_history_is_read_from_the_database(plant, db_url, monkeypatch):
    monkeypatch.setenv("EXPLORER_HISTORY_DAYS", "3")
    history.forget(db_url)
    now = timezones.utc_now().replace(second=0, microsecond=0)
    window = Window(now - timedelta(days=5), now, now, "custom", now - timedelta(days=28))
    assert not history.snapshot_for(db_url).covers(window.history_since)
    view = explorer_view._build(db_url, window, {}, (), timezones.site_zone())
    with plant.connect() as conn:
        read = rows.load(conn, window.history_since, now, now)
    pd.testing.assert_frame_equal(view.frames.history, read.issues)
    pd.testing.assert_frame_equal(view.frames.events, read.events)
    history.forget(db_url)
