"""The load benches themselves: the mixed load accounts for every row and every request, and
the browser soak counts the refreshes a page missed."""
from __future__ import annotations

from sqlalchemy import create_engine, text

from bench import mixed
from bench.soak import missed_refreshes
from tools.databases import PG_ADMIN_URL, unavailable


def test_a_refresh_that_never_came_is_missed_and_so_is_every_one_after_a_page_went_quiet():
    every_second = [1_000 * k + 300 for k in range(10)]
    assert missed_refreshes(every_second, 1, 0, 10_000) == {"expected": 10, "seen": 10, "missed": 0}
    gap = every_second[:4] + every_second[6:]
    assert missed_refreshes(gap, 1, 0, 10_000) == {"expected": 10, "seen": 8, "missed": 2}
    # An answer less than half an interval late is in time; more, and its refresh is missed.
    assert missed_refreshes(every_second[:5] + [5_700] + every_second[6:], 1, 0, 10_000)["missed"] == 0
    assert missed_refreshes(every_second[:5] + [5_900] + every_second[6:], 1, 0, 10_000)["missed"] == 1
    # A page whose answers arrive around the boundary itself (a long round trip).
    around = [1_000 * k + (950 if k % 2 else 1_050) for k in range(10)]
    assert missed_refreshes(around, 1, 500, 10_500) == {"expected": 10, "seen": 10, "missed": 0}
    # The page stopped answering at 4.3 s of a 10 s soak.
    assert missed_refreshes(every_second[:5], 1, 0, 10_000) == {"expected": 10, "seen": 5, "missed": 5}


def test_a_short_mixed_load_accounts_for_every_row_and_request(tmp_path, monkeypatch):
    import redis

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0").ping()
    except redis.RedisError as exc:
        unavailable(f"Redis not reachable: {exc}")
    server = PG_ADMIN_URL.rsplit("/", 1)[0]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means "no PostgreSQL"
        unavailable(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}")
    # A plant built moments ago settles within the overlap: a short one, for a short run.
    monkeypatch.setenv("FOLLOW_OVERLAP_S", "3")
    report = mixed.main(["--pg", server, "--days", "2", "--minutes", "0.25", "--refresh-s", "3",
                         "--screens", "10", "--clients", "2", "--ingest-every-s", "0.5", "--managers", "1",
                         "--think-s", "2", "--out", str(tmp_path / "mixed.json")])
    with admin.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM pg_database WHERE datname = :name"),
                            {"name": report["database"]}).scalar()
    admin.dispose()
    assert report["database"].startswith("floorlink_bench_mixed_") and left == 0, \
        "the run's database was not dropped"
    screens, ingest, explorer = report["screens"], report["ingest"], report["explorer"]
    assert report["verdicts"]["no_error"] and report["verdicts"]["no_row_lost_or_duplicated"]
    # Every page and scope of the mix was shown and refreshed.
    assert len(screens["pages"]) == 6 and screens["answered"] >= 10 * 4
    assert ingest["events_answered"] == ingest["events_in_database"] > 0
    assert ingest["requests"] >= 2 * 25 and ingest["p95_ms"] is not None
    assert explorer["views"] >= 1 and explorer["callbacks"] == explorer["views"] * len(mixed.EXPLORER_CALLBACKS)
    # The workers' record tells the three kinds of request apart.
    server_side = report["server"]
    assert server_side["refresh_ms"]["count"] >= screens["answered"] - screens["screens"]
    assert server_side["ingest_ms"]["count"] >= 0.9 * ingest["requests"]
    assert server_side["explorer_ms"]["count"] >= explorer["callbacks"] > 0
    assert server_side["computations_ahead"] > 0
    assert (tmp_path / "mixed.json").exists()
