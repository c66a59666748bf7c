"""The weekly pack on schedule, on an explicit clock: nothing before its Monday time, then the
week's six files written whole, once, and the plant's channel told once with the week's
headline figures and the review page's link; the sender runs it beside its ticks."""
from __future__ import annotations

import json
import zipfile
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import select

from data import store
from data.demo import build_demo_plant
from data.models import Delivery, WeeklyPack
from data.notify import channels, messages, outbox, sender as senders
from data.notify.messages import Message
from data.reports import schedule, weekly

SITE = ZoneInfo("Asia/Shanghai")
# Monday 30 Nov 2026: the morning after week 48.
MONDAY = datetime(2026, 11, 30, tzinfo=SITE)
DUE = MONDAY.replace(hour=7, minute=30)
WEEK = "2026-W48"


def test_the_week_is_due_from_its_time_in_the_week_after_it_in_site_time():
    at = "mon 07:30"
    assert schedule.due_week(DUE - timedelta(minutes=1), at) is None
    assert schedule.due_week(DUE, at) == WEEK
    # Due all that week, until the next one is.
    assert schedule.due_week(MONDAY + timedelta(days=6, hours=23), at) == WEEK
    assert schedule.due_week(MONDAY + timedelta(days=7, hours=7), at) is None
    assert schedule.due_week(MONDAY + timedelta(days=7, hours=8), at) == "2026-W49"
    # The site's Monday, not UTC's: 07:30 in Shanghai is Sunday 23:30 UTC.
    assert schedule.due_week(datetime(2026, 11, 29, 23, 30, tzinfo=ZoneInfo("UTC")), at) == WEEK
    assert schedule.due_week(MONDAY.replace(hour=23), "tue 09:00") is None
    assert schedule.due_week(MONDAY + timedelta(days=1, hours=9), "TUE 09:00") == WEEK
    assert schedule.due_week(MONDAY + timedelta(days=6, hours=19), "sun 20:00") is None
    assert schedule.due_week(MONDAY + timedelta(days=6, hours=20), "sun 20:00") == WEEK
    for bad in ("", "mon", "07:30", "monday 07:30", "mon 24:00", "mon 7:5", "xyz 07:30"):
        with pytest.raises(ValueError, match="WEEKLY_PACK_AT"):
            schedule.due_week(DUE, bad)


@pytest.fixture
def plant(engine, tmp_path, monkeypatch):
    """Two weeks of the demo plant up to the Monday morning, its policy (the plant's channel:
    e-mail in both languages), and the schedule on."""
    monkeypatch.setattr(store, "EVENT_LISTENERS", [])
    monkeypatch.setenv("WEEKLY_PACK_DIR", str(tmp_path / "packs"))
    monkeypatch.setenv("PUBLIC_URL", "https://floorlink.plant.example")
    # The plant's channel is e-mail, left out of the policy until a mail server is named.
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    build_demo_plant(engine, days=14, seed=7, end=MONDAY.replace(hour=7))
    return engine


def _weekly(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(Delivery.__table__).where(Delivery.key.like("weekly|%"))).all()


def _whole(path) -> None:
    content = path.read_bytes()
    if path.suffix == ".pdf":
        assert content.startswith(b"%PDF-") and content.rstrip().endswith(b"%%EOF")
    elif path.suffix == ".xlsx":
        assert zipfile.ZipFile(path).testzip() is None
        assert openpyxl.load_workbook(path, read_only=True).sheetnames
    else:
        assert content.rstrip().endswith(b"</html>")
    assert WEEK.encode() in content or path.suffix != ".html"


def test_the_pack_is_written_once_after_its_time_and_the_plant_told_once(plant, tmp_path):
    root = tmp_path / "packs"
    assert schedule.build_scheduled(plant, DUE - timedelta(seconds=1), tell=outbox.owe_weekly) is None
    assert not root.exists() and weekly.frozen(plant, WEEK) is None and _weekly(plant) == []

    assert schedule.build_scheduled(plant, DUE, tell=outbox.owe_weekly) == WEEK
    written = sorted(p.name for p in (root / WEEK).iterdir())
    assert written == sorted(f"floorlink-{WEEK}-{lang}{ext}" for lang in ("zh", "en")
                             for ext in (".pdf", ".xlsx", ".html"))
    for path in (root / WEEK).iterdir():
        _whole(path)
    kept = weekly.frozen(plant, WEEK)
    assert kept["as_of"] == DUE.isoformat()

    [row] = _weekly(plant)
    assert (row.key, row.issue_id, row.step, row.channel_code, row.status) == (
        f"weekly|{WEEK}|plant-mail", None, WEEK, "plant-mail", "pending")
    message = Message.from_json(row.message)
    assert message.event == "report.weekly" and message.event in messages.EVENTS
    assert message.link == f"https://floorlink.plant.example/review?week={WEEK}"
    assert WEEK in message.title and "周例会" in message.title and "Weekly review" in message.title
    raised = next(k for k in kept["kpis"] if k["key"] == "raised")
    sla = next(k for k in kept["kpis"] if k["key"] == "response_sla_compliance")
    # Three headline figures against last week's, in each of the channel's two languages.
    assert len(message.lines) == 6
    assert message.lines[0] == f"发起：{raised['this']:,}（上周 {raised['last']:,}）"
    assert message.lines[3] == f"raised: {raised['this']:,} (last week {raised['last']:,})"
    assert f"{sla['this'] * 100:.1f}%" in message.lines[2]

    # Asked again the same morning, and later that week: nothing more.
    stamps = {p.name: p.stat().st_mtime_ns for p in (root / WEEK).iterdir()}
    for later in (DUE, DUE + timedelta(hours=1), DUE + timedelta(days=3)):
        assert schedule.build_scheduled(plant, later, tell=outbox.owe_weekly) is None
    assert {p.name: p.stat().st_mtime_ns for p in (root / WEEK).iterdir()} == stamps
    assert len(_weekly(plant)) == 1

    # A file lost is written again from the frozen pack, and nobody is told twice.
    (root / WEEK / f"floorlink-{WEEK}-en.xlsx").unlink()
    assert schedule.build_scheduled(plant, DUE + timedelta(hours=2), tell=outbox.owe_weekly) == WEEK
    _whole(root / WEEK / f"floorlink-{WEEK}-en.xlsx")
    del stamps[f"floorlink-{WEEK}-en.xlsx"]
    assert {name: (root / WEEK / name).stat().st_mtime_ns for name in stamps} == stamps
    assert weekly.frozen(plant, WEEK) == kept and len(_weekly(plant)) == 1
    assert not [p for p in (root / WEEK).iterdir() if p.name.startswith(".")]
    with plant.connect() as conn:
        assert conn.execute(select(WeeklyPack.built_by)).scalars().all() == [schedule.BUILT_BY]


def test_off_without_a_folder_and_silent_without_a_plant_channel(plant, tmp_path, monkeypatch):
    monkeypatch.setenv("WEEKLY_PACK_DIR", "")
    assert schedule.pending(DUE) is None
    assert schedule.build_scheduled(plant, DUE, tell=outbox.owe_weekly) is None
    assert weekly.frozen(plant, WEEK) is None
    monkeypatch.setenv("WEEKLY_PACK_DIR", str(tmp_path / "packs"))
    pack = weekly.freeze(plant, WEEK, as_of=DUE, built_by="test")
    assert outbox.owe_weekly(plant, pack, DUE) == 1
    assert outbox.owe_weekly(plant, pack, DUE) == 0
    assert len(_weekly(plant)) == 1


def test_the_sender_builds_it_beside_its_ticks_and_delivers_the_message(plant, tmp_path):
    sent: list[Message] = []

    def send(channel, message, *, now):
        sent.append(message)
        return channels.Outcome(True, None, None)

    clock = {"now": DUE - timedelta(minutes=1)}
    sender = senders.Sender(plant, send=send, clock=lambda: clock["now"], holder="test")
    sender.tick()
    assert sender.packing is None and not (tmp_path / "packs").exists()
    clock["now"] = DUE
    sender.tick()
    sender.packing.join(timeout=300)
    assert not sender.packing.is_alive()
    assert len(list((tmp_path / "packs" / WEEK).iterdir())) == 6
    clock["now"] += timedelta(seconds=1)
    sender.tick()
    weekly_sent = [m for m in sent if m.event == "report.weekly"]
    assert len(weekly_sent) == 1 and WEEK in weekly_sent[0].title
    [row] = _weekly(plant)
    assert row.status == "sent"
    first = sender.packing
    clock["now"] += timedelta(seconds=1)
    sender.tick()
    assert sender.packing is first


def test_a_failed_pack_is_tried_again_later_and_the_ladder_goes_on(plant, monkeypatch):
    monkeypatch.setenv("WEEKLY_PACK_AT", "mon 7.30")
    clock = {"now": DUE}
    sender = senders.Sender(plant, send=lambda *a, **k: channels.Outcome(True, None, None),
                            clock=lambda: clock["now"], holder="test")
    counted, _ = sender.tick()
    assert counted is not None and sender.packing is None
    assert sender.pack_retry_at == DUE + timedelta(seconds=senders.PACK_RETRY_S)

    monkeypatch.setenv("WEEKLY_PACK_AT", "mon 07:30")
    failures = []
    monkeypatch.setattr(schedule.weekly, "freeze",
                        lambda *a, **k: failures.append(1) or (_ for _ in ()).throw(weekly.SourcesBehind("behind")))
    clock["now"] = DUE + timedelta(seconds=senders.PACK_RETRY_S)
    sender.tick()
    sender.packing.join(timeout=60)
    assert failures == [1] and _weekly(plant) == []
    assert sender.pack_retry_at == clock["now"] + timedelta(seconds=senders.PACK_RETRY_S)
    clock["now"] += timedelta(seconds=1)
    sender.tick()
    assert failures == [1]


def test_the_delivery_log_lists_a_message_about_a_week(plant, tmp_path, monkeypatch):
    from app import create_app
    from data import db
    from data.notify import deliveries

    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SECRET_KEY", "schedule-test-key")
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    db.upgrade_schema(db.get_engine(url))
    create_app(url)
    from dashboards import deliveries as page

    pack = weekly.freeze(plant, WEEK, as_of=DUE, built_by="test")
    outbox.owe_weekly(plant, pack, DUE)
    with plant.connect() as conn:
        listing = deliveries.latest(conn, DUE + timedelta(minutes=1))
    [row] = [r for r in listing.rows if r.issue_id is None]
    assert row.step == WEEK and WEEK in row.title
    rendered = json.dumps(page.delivery_row(row, DUE, "zh").to_plotly_json(), default=str)
    assert f"/review?week={WEEK}" in rendered
