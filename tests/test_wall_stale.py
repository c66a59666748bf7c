"""The stale banner when the database goes away, on a throwaway PostgreSQL server that this
test starts and stops itself (never the machine's shared one)."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import create_engine, text

from conftest import require_browser, unavailable
from data import db, demo
from tools.browser import AppServer, chromium, free_port, wait_until

pytestmark = pytest.mark.browser

REFRESH_S = 2


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary folder on a free port, run as the postgres user."""

    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            unavailable("PostgreSQL server binaries (pg_ctl) are not installed")
        self.bin = Path(bins[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="floorlink-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/floorlink"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_postgres, str(self.bin / tool), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.root)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        subprocess.run([*self.as_postgres, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m",
                        "immediate", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def postgres_that_can_vanish():
    server = ThrowawayPostgres()
    try:
        server.start()
        admin = create_engine(server.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE floorlink"))
        admin.dispose()
        yield server
    finally:
        db.dispose_all()
        server.remove()


def test_stale_banner_while_the_database_is_gone_and_recovery_without_reload(
        postgres_that_can_vanish, tmp_path):
    require_browser()
    pg = postgres_that_can_vanish
    engine = db.get_engine(pg.url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=2, seed=5)
    db.dispose_all()
    app = AppServer(pg.url, tmp_path, REFRESH_S=str(REFRESH_S)).start()
    driver = chromium()
    try:
        driver.get(app.url + "/")
        wait_until(lambda: driver.find_element(By.ID, "wall-updated").text, message="first refresh")
        wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, ".score-table .rows > .row"),
                   message="scoreboard")
        open_before = driver.find_element(By.CSS_SELECTOR, "#overview-tile-open .tile-value").text
        driver.execute_script("window.__still_same_page = true;")

        pg.stop()
        banner = wait_until(lambda: driver.find_element(By.ID, "stale-banner").text,
                            timeout=3 * REFRESH_S + 5, message="stale banner")
        assert "数据库无法连接" in banner and "最后有效数据" in banner
        # The last good figures stay on screen.
        assert driver.find_element(By.CSS_SELECTOR, "#overview-tile-open .tile-value").text == open_before
        assert driver.find_elements(By.CSS_SELECTOR, ".score-table .rows > .row")

        pg.start()
        wait_until(lambda: not driver.find_element(By.ID, "stale-banner").text,
                   timeout=4 * REFRESH_S + 10, message="banner gone once the database is back")
        assert driver.execute_script("return window.__still_same_page === true;")
    finally:
        driver.quit()
        app.stop()
