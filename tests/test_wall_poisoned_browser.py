"""One row the wall cannot compute with does not take the wall down: a demo plant with an
issue dated 3026 and an SLA rule of 999999999 minutes, opened in a real browser. Every page
refreshes, shows its figures, says that rows were left out, and blames nobody for being down."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select, update

from conftest import require_browser
from data import db, demo
from data.models import Issue, SlaRule
from tools.browser import AppServer, chromium, console_errors, wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def poisoned_server(tmp_path_factory):
    require_browser()
    folder = tmp_path_factory.mktemp("poisoned")
    url = f"sqlite:///{folder / 'plant.sqlite'}"
    engine = db.get_engine(url)
    db.upgrade_schema(engine)
    demo.build_demo_plant(engine, days=14, seed=3)
    with engine.begin() as conn:
        first, second = conn.execute(select(Issue.id).order_by(Issue.id).limit(2)).scalars()
        conn.execute(update(Issue).where(Issue.id == first)
                     .values(raised_at=datetime(3026, 1, 5, tzinfo=timezone.utc)))
        rule = conn.execute(select(Issue.issue_type).where(Issue.id == second)).scalar()
        conn.execute(update(SlaRule).where(SlaRule.issue_type == rule).values(resolve_minutes=999999999))
    engine.dispose()
    server = AppServer(url, folder, REFRESH_S="2").start()
    yield server
    server.stop()


PAGE_READY = {
    "/": "#overview-tiles .tile-value",
    "/issues": "#issues-board-rows > *",
    "/material": "#material-tiles .tile-value",
}


@pytest.mark.parametrize("path", list(PAGE_READY))
def test_every_page_refreshes_and_marks_the_data_error(poisoned_server, path):
    driver = chromium(1920, 1080)
    try:
        driver.get(poisoned_server.url + path)
        wait_until(lambda: driver.find_element(By.ID, "wall-updated").text, timeout=30,
                   message="the first refresh")
        marker = wait_until(lambda: driver.find_element(By.ID, "wall-data-errors").text, timeout=30,
                            message="the data-error marker")
        assert "数据异常" in marker
        count = int("".join(ch for ch in marker if ch.isdigit()))
        assert count >= 2          # the issue of 3026 and the issues of the rule past a year
        values = wait_until(lambda: [e.text for e in driver.find_elements(By.CSS_SELECTOR, PAGE_READY[path])
                                     if e.text.strip()], message="the page's figures")
        assert values and all(v != "—" for v in values[:1])
        first = driver.find_element(By.ID, "wall-updated").text
        # Still live two intervals later: a later update and no banner blaming anyone.
        wait_until(lambda: driver.find_element(By.ID, "wall-updated").text != first, timeout=15,
                   message="a later refresh")
        assert "show" not in driver.find_element(By.ID, "stale-banner").get_attribute("class")
        assert not driver.find_elements(By.CSS_SELECTOR, ".panel-failed")
        assert console_errors(driver) == []
    finally:
        driver.quit()
