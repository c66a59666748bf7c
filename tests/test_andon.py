"""The andon (dashboards/andon.py), on SQLite and PostgreSQL: a station raises an issue in two
taps, recorded as the station (or the person signed in); a photo is kept and served with its
type, anything but a JPEG or PNG of at most 5 MB is refused and nothing raised; a station
acknowledges one of its issues once; the QR sheet holds one code per station, each naming its
station's address; the doors are the operator's."""
from __future__ import annotations

import hashlib
import io
import re
import pytest
from sqlalchemy import select

import floor_plant
from data import db, timezones
from data.auth import users
from data.models import Issue, IssueEvent, IssuePhoto

# The rules here are the same on both databases; SQLite keeps the suite within its time.
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def settings(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "andon-tests")
    monkeypatch.setenv("PUBLIC_URL", "http://andon.plant.example:8050")
    monkeypatch.setenv("REFRESH_S", "10")
    monkeypatch.setattr(users, "_known", {})       # sign-in as each test's database has it


@pytest.fixture
def plant(db_url):
    floor_plant.build(db_url)
    return db_url


@pytest.fixture
def client(plant):
    from app import create_app

    return create_app(plant).server.test_client()


def hidden(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))


def confirm_step(client, station: str = "L1-ST1", issue_type: str = "equipment_failure", lang: str = "zh") -> str:
    """The first tap: the issue type; answers the confirm step."""
    page = client.get(f"/andon/{station}?lang={lang}").get_data(as_text=True)
    href = re.search(rf'href="(/andon/{station}\?type={issue_type}[^"]*)"', page).group(1)
    return client.get(href.replace("&amp;", "&")).get_data(as_text=True)


def raise_from(client, station: str = "L1-ST1", issue_type: str = "equipment_failure", **form):
    """The second tap: Raise, with the confirm step's hidden fields and `form`."""
    page = confirm_step(client, station, issue_type)
    return client.post(f"/andon/{station}?lang=zh", data={**hidden(page), **form},
                       content_type="multipart/form-data")


def issues(url: str) -> list:
    with db.get_engine(url).connect() as conn:
        return conn.execute(select(Issue).order_by(Issue.raised_at)).all()


def events(url: str, issue_id: str) -> list[tuple]:
    with db.get_engine(url).connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(IssueEvent.kind, IssueEvent.actor, IssueEvent.source, IssueEvent.note)
            .where(IssueEvent.issue_id == issue_id).order_by(IssueEvent.at, IssueEvent.id))]


def photos(url: str) -> list:
    with db.get_engine(url).connect() as conn:
        return conn.execute(select(IssuePhoto)).all()


def test_the_stations_are_listed_by_line(client):
    page = client.get("/andon").get_data(as_text=True)
    assert page.index("产线 L1") < page.index("L1 工位 1 上料") < page.index("L1 工位 2 装配") \
        < page.index("产线 L2") < page.index("L2 工位 1 上料")
    assert "原料仓" not in page and 'href="/andon/qr?lang=zh"' in page
    unknown = client.get("/andon/NOPE?lang=en")
    assert unknown.status_code == 404 and "There is no station “NOPE”" in unknown.get_data(as_text=True)


def test_two_taps_raise_an_open_issue_at_the_station_recorded_as_the_station(client, plant):
    page = client.get("/andon/L1-ST1").get_data(as_text=True)
    assert "设备故障" in page and "质量异常" in page and "本工位没有未解决的问题" in page
    assert '<meta http-equiv="refresh" content="10;url=/andon/L1-ST1?lang=zh">' in page
    confirm = confirm_step(client)
    assert 'value="P2" checked' in confirm and "确认发起：设备故障" in confirm
    answer = raise_from(client, note="主轴异响\n已停机等待")
    assert answer.status_code == 303
    raised = re.search(r"raised=(AN-\d{6}-[0-9a-f]{6})", answer.headers["Location"]).group(1)
    assert raised[3:9] == timezones.to_site(timezones.utc_now()).strftime("%y%m%d")
    [row] = issues(plant)
    assert (row.id, row.location_code, row.issue_type, row.status, row.severity, row.owner_department_code,
            row.title, row.raised_by) == (raised, "L1-ST1", "equipment_failure", "open", "P2", "MNT",
                                          "主轴异响", None)
    assert events(plant, raised) == [("raised", None, "andon:L1-ST1", None),
                                     ("commented", None, "andon:L1-ST1", "主轴异响\n已停机等待")]
    after = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert f"已发起 {raised}" in after and f"take={raised}" in after and "剩余 9分" in after


def test_a_raise_without_a_note_is_titled_by_its_type_and_station_and_takes_its_severity(client, plant):
    assert raise_from(client, "L2-ST1", "quality_anomaly", severity="P1").status_code == 303
    [row] = issues(plant)
    assert (row.title, row.severity, row.owner_department_code) == ("质量异常 · L2 工位 1 上料", "P1", "QA")


def test_a_photo_is_kept_and_served_with_its_type(client, plant):
    for data, name, kind in ((PNG, "snap.jpg", "image/png"), (JPEG, "snap", "image/jpeg")):
        answer = raise_from(client, photo=(io.BytesIO(data), name))
        assert answer.status_code == 303
    kept = {p.content_type: p for p in photos(plant)}
    assert kept["image/png"].sha256 == hashlib.sha256(PNG).hexdigest()
    assert kept["image/jpeg"].issue_id != kept["image/png"].issue_id
    for content_type, data in (("image/png", PNG), ("image/jpeg", JPEG)):
        served = client.get(f"/andon/photo/{kept[content_type].id}")
        assert served.status_code == 200 and served.data == data
        assert served.mimetype == content_type and served.headers["X-Content-Type-Options"] == "nosniff"
    page = client.get("/andon/L1-ST1").get_data(as_text=True)
    assert f'href="/andon/photo/{kept["image/png"].id}"' in page
    assert client.get("/andon/photo/999999").status_code == 404


def test_a_photo_larger_than_the_usual_request_limit_is_taken(client, plant):
    big = PNG + bytes(2 * 1024 * 1024)
    assert raise_from(client, photo=(io.BytesIO(big), "big.png")).status_code == 303
    assert len(photos(plant)[0].data) == len(big)


@pytest.mark.parametrize("data, status", [
    (b"GIF89a" + bytes(100), 400),
    (b"<svg onload=alert(1)></svg>", 400),
    (b"%PDF-1.7\n", 400),
    (PNG + bytes(5 * 1024 * 1024), 400),            # past 5 MB, within the request's room
    (PNG + bytes(6 * 1024 * 1024), 413),            # past the request's room
], ids=["gif", "svg", "pdf", "png-over-5mb", "png-over-the-request"])
def test_anything_but_a_jpeg_or_png_of_at_most_5_mb_is_refused_with_a_message(client, plant, data, status):
    answer = raise_from(client, note="看照片", photo=(io.BytesIO(data), "photo.jpg"))
    text = answer.get_data(as_text=True)
    assert answer.status_code == status
    assert ("照片必须是不超过 5 MB 的 JPEG 或 PNG 图片，未发起" if status == 400 else "提交的内容过大") in text
    if status == 400:
        assert "看照片" in text      # the note typed is kept for the next try
    assert issues(plant) == [] and photos(plant) == []


def test_a_raise_without_its_csrf_token_or_with_an_unknown_type_raises_nothing(client, plant):
    page = confirm_step(client)
    form = {k: v for k, v in hidden(page).items() if k != "csrf"}
    answer = client.post("/andon/L1-ST1", data=form)
    assert answer.status_code == 400 and "表单已过期" in answer.get_data(as_text=True)
    answer = client.post("/andon/L1-ST1", data={**hidden(page), "issue_type": "no_such_type"})
    assert answer.status_code == 400 and "未知的问题类型" in answer.get_data(as_text=True)
    assert client.get("/andon/L1-ST1?type=no_such_type").status_code == 404
    assert issues(plant) == []


def test_a_station_acknowledges_its_issue_once(client, plant):
    floor_plant.raise_one(plant, "EQ-1")
    page = client.get("/andon/L1-ST1").get_data(as_text=True)
    assert "EQ-1" in page and "已超时 20分" in page and 'href="/andon/L1-ST1?take=EQ-1&amp;lang=zh"' in page
    take = client.get("/andon/L1-ST1?take=EQ-1&lang=zh").get_data(as_text=True)
    assert "响应 EQ-1" in take and "张三" in take and "王芳" not in take
    answer = client.post("/andon/L1-ST1/ack?lang=zh", data={**hidden(take), "who": "MNT-01", "note": "到了"})
    assert answer.status_code == 303 and "acknowledged=EQ-1" in answer.headers["Location"]
    assert events(plant, "EQ-1")[1:] == [("commented", "MNT-01", "andon:L1-ST1", "到了"),
                                         ("acknowledged", "MNT-01", "andon:L1-ST1", None)]
    after = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "已确认响应 EQ-1" in after and "take=EQ-1" not in after and "处理中" in after
    again = client.post("/andon/L1-ST1/ack?lang=zh", data={**hidden(take), "who": "MNT-02"})
    text = again.get_data(as_text=True)
    assert again.status_code == 409 and "已由 张三 于" in text and "确认" in text
    assert [e[0] for e in events(plant, "EQ-1")] == ["raised", "commented", "acknowledged"]


def test_a_station_acknowledges_only_its_own_issues_and_only_with_a_name(client, plant):
    floor_plant.raise_one(plant, "EQ-1")
    take = client.get("/andon/L1-ST1?take=EQ-1").get_data(as_text=True)
    assert client.post("/andon/L2-ST1/ack", data={**hidden(take), "who": "MNT-01"}).status_code == 404
    assert client.get("/andon/L2-ST1?take=EQ-1").status_code == 404
    nobody = client.post("/andon/L1-ST1/ack", data={**hidden(take), "who": "PRD-01"})
    assert nobody.status_code == 400 and "请说明你是谁" in nobody.get_data(as_text=True)
    assert [e[0] for e in events(plant, "EQ-1")] == ["raised"]


def test_the_qr_sheet_has_one_code_per_station_naming_its_address(client):
    page = client.get("/andon/qr").get_data(as_text=True)
    assert page.count("<svg") == len(floor_plant.STATIONS)
    titles = re.findall(r"<svg[^>]*><title>([^<]+)</title>", page)
    assert titles == [f"http://andon.plant.example:8050/andon/{code}" for code, _, _ in floor_plant.STATIONS]
    for code, name, line in floor_plant.STATIONS:
        assert name in page and f"产线 {line} · {code}" in page


def test_with_sign_in_on_the_andon_is_the_operators_and_records_their_name(client, plant):
    engine = db.get_engine(plant)
    users.create(engine, "zhao.lei", "operator", PASSWORD, timezones.utc_now())
    users.create(engine, "tv.l1", "viewer", PASSWORD, timezones.utc_now())
    assert "/signin" in client.get("/andon/L1-ST1").headers["Location"]
    assert client.post("/andon/L1-ST1", data={}).status_code == 401

    def sign_in(name: str) -> None:
        client.post("/signout", data={"csrf": re.search(r"name='csrf' value='([^']+)'",
                                                         client.get("/signout").get_data(as_text=True)).group(1)})
        page = client.get("/signin").get_data(as_text=True)
        csrf = re.search(r"name='csrf' value='([^']+)'", page).group(1)
        assert client.post("/signin", data={"name": name, "password": PASSWORD, "csrf": csrf}).status_code == 302

    sign_in("tv.l1")
    assert client.get("/andon/L1-ST1").status_code == 403
    sign_in("zhao.lei")
    assert raise_from(client).status_code == 303
    [row] = issues(plant)
    assert row.raised_by == "zhao.lei"
    assert events(plant, row.id) == [("raised", "zhao.lei", "user:zhao.lei", None)]
