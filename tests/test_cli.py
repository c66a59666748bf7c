"""The command line end to end, as a user runs it: the demo plant, the KPIs as JSON, and a
server that refuses a database whose schema it does not know (import: tests/test_import.py)."""
import json
import os
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

