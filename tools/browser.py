"""The app as a real server process and a real headless Chromium, for browser tests and
the README's screenshots.

The server runs as `python app.py serve` in its own process, so a test can stop it and start
it again (a restart, a network drop) while the browser keeps the page open.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def missing_browser() -> str | None:
    """Why no browser can be driven here, or None when Chromium and its driver are installed."""
    missing = [b for b in ("chromium", "chromedriver") if shutil.which(b) is None]
    if missing:
        return f"Debian's chromium and chromium-driver are needed ({', '.join(missing)} missing)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`python app.py serve` on a free port, with its own settings; without the sender of
    pushed messages unless NOTIFY_SENDER=1 is given (it would escalate the test's issues)."""

    def __init__(self, database_url: str, tmp_path: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": database_url, "CACHE_DIR": str(tmp_path / "cache"),
                    "REFRESH_S": "2", "PYTHONUNBUFFERED": "1", "NOTIFY_SENDER": "0", **env}
        if "REDIS_URL" not in env:
            self.env.pop("REDIS_URL", None)
        self.log = tmp_path / f"server-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "AppServer":
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "app.py", "serve", "--port", str(self.port)], cwd=ROOT,
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"server did not listen within 30 s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None


def chromium(width: int = 1920, height: int = 1080, performance_log: bool = False, flags: tuple[str, ...] = ()):
    """Headless Debian Chromium through its chromedriver, with the flags this network needs
    and `flags` (a kiosk's, such as its autoplay policy)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--hide-scrollbars", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", f"--window-size={width},{height}",
                 "--force-device-scale-factor=1", *flags):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    logging_prefs = {"browser": "ALL"}
    if performance_log:
        logging_prefs["performance"] = "ALL"
    options.set_capability("goog:loggingPrefs", logging_prefs)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    # The viewport itself, not the window around it, is what a TV shows.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return driver


def console_errors(driver) -> list[str]:
    """Severe console messages, except the network errors a test causes on purpose."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def wait_until(predicate, timeout: float = 15, interval: float = 0.25, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - elements come and go while Dash renders
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


# Where on its graph a data point is drawn, from plotly's own axes.
_PLOT_POINT = """
const gd = document.getElementById(arguments[0]).querySelector('.js-plotly-plot');
const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
return [xa._offset + xa.l2p(arguments[1]), ya._offset + ya.l2p(arguments[2])];
"""


def click_plot(driver, graph_id: str, x: float, y: float) -> None:
    """Click the point (x, y), in the axes' own units, of the plotly graph inside `graph_id`,
    with the mouse, as a person would."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    graph = driver.find_element(By.ID, graph_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", graph)
    time.sleep(0.5)
    px, py = driver.execute_script(_PLOT_POINT, graph_id, x, y)
    plot = graph.find_element(By.CSS_SELECTOR, ".js-plotly-plot")
    # Selenium 4.2 measures the offset from the element's top left corner.
    ActionChains(driver).move_to_element_with_offset(plot, int(px), int(py)).pause(0.3).click().perform()
