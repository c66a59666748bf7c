"""The command line end to end, as a user runs it: the demo plant, the KPIs as JSON, and a
server that refuses a database whose schema it does not know (import: tests/test_import.py)."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACT_KEYS = {
    "raised", "response_median_min", "response_p90_min", "resolution_median_min",
    "resolution_p90_min", "response_sla_met", "response_sla_breached", "response_sla_compliance",
    "resolution_sla_met", "resolution_sla_breached", "resolution_sla_compliance",
    "resolution_rate", "open", "overdue", "handoffs_mean", "ping_pong_issues",
}


def run(*args: str, url: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, env=env, text=True,
                          capture_output=True, check=check, timeout=120)


def test_demo_then_kpis_json_tells_the_story(db_url):
    run("demo", "--days", "21", "--seed", "7", "--end", "2026-11-20T10:00", url=db_url)
    last_week = json.loads(run("kpis", "--as-of", "2026-11-20T10:00", "--json", url=db_url).stdout)
    first_week = json.loads(run("kpis", "--since", "2026-10-30T10:00", "--until", "2026-11-06T10:00",
                                "--as-of", "2026-11-20T10:00", "--json", url=db_url).stdout)
    assert last_week["as_of"] == "2026-11-20T10:00:00+08:00"
    assert last_week["since"] == "2026-11-13T10:00:00+08:00"
    assert set(last_week["overall"]) == CONTRACT_KEYS
    assert all(set(v) == CONTRACT_KEYS for v in last_week["by_department"].values())
    assert {"PRD", "QA", "WH", "PUR", "PLN", "MNT", "SAL"} <= set(last_week["by_department"])
    assert {"stagnant_lots", "on_hand"} <= set(last_week["material"])
    assert last_week["overall"]["response_median_min"] < first_week["overall"]["response_median_min"]
    assert last_week["overall"]["open"] > 0 and last_week["material"]["stagnant_lots"] > 0


def test_serve_refuses_a_database_without_the_schema(tmp_path):
    result = run("serve", "--port", "1", url=f"sqlite:///{tmp_path / 'empty.sqlite'}", check=False)
    assert result.returncode == 1
    assert "run `python app.py init-db`" in result.stderr



def test_a_bad_time_or_an_empty_window_is_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'any.sqlite'}"
    bad = run("kpis", "--as-of", "next monday", url=url, check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "Error: --as-of 'next monday' is not an ISO 8601 time such as 2026-11-20T08:00 (site time) "
        "or 2026-11-20T08:00+08:00"]
    inverted = run("kpis", "--since", "2026-11-20", "--until", "2026-11-10", url=url, check=False)
    assert inverted.returncode == 1
    assert inverted.stderr.strip().splitlines() == [
        "Error: the window is empty: --since 2026-11-20T00:00:00+08:00 is not before "
        "--until 2026-11-10T00:00:00+08:00"]
    assert run("kpis", "--since", "2026-11-10", "--until", "2026-11-10", url=url,
               check=False).returncode == 1


def test_import_help_lists_the_tables(tmp_path):
    shown = run("import", "--help", url=f"sqlite:///{tmp_path / 'any.sqlite'}").stdout
    for table in ("departments", "people", "sla_rules", "locations", "materials", "issues",
                  "issue_events", "movements", "production_plan"):
        assert table in shown
    assert "docs/import.md" in shown and (ROOT / "docs" / "import.md").exists()


def test_a_configured_database_gets_no_demo_plant_unasked(tmp_path):
    """`python app.py` with DATABASE_URL set serves that database as it is."""
    from sqlalchemy import func, select

    from data import db
    from data.models import Issue

    url = f"sqlite:///{tmp_path / 'plant.sqlite'}"
    db.upgrade_schema(db.get_engine(url))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        # The port is taken, so the server stops right after deciding what to write.
        env = {**os.environ, "DATABASE_URL": url, "PORT": str(taken.getsockname()[1]),
               "CACHE_DIR": str(tmp_path / "cache")}
        result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, text=True,
                                capture_output=True, timeout=120)
    assert "serving that database as it is" in result.stderr
    assert "add --demo" in result.stderr
    with db.get_engine(url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(Issue)).scalar() == 0
    db.get_engine(url).dispose()
