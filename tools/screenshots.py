"""Take the README's screenshots: each wall page at 1920x1080 and 3840x2160, in Chinese and
English, from a demo plant built for the purpose (seeded, so the pictures are reproducible
but for the clock).

    .venv/bin/python -m tools.screenshots [--out docs/screenshots]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from data import db, demo
from tools.browser import AppServer, chromium, missing_browser, wait_until

SHOTS = [
    ("overview", "/", (1920, 1080)), ("overview", "/", (3840, 2160)),
    ("issues", "/issues", (1920, 1080)), ("material", "/material", (1920, 1080)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    reason = missing_browser()
    if reason:
        raise SystemExit(reason)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'plant.sqlite'}"
        engine = db.get_engine(url)
        db.upgrade_schema(engine)
        demo.build_demo_plant(engine, days=90, seed=7)
        server = AppServer(url, Path(tmp)).start()
        try:
            for name, path, (width, height) in SHOTS:
                for lang in ("zh", "en"):
                    driver = chromium(width, height)
                    try:
                        driver.get(f"{server.url}{path}?lang={lang}")
                        wait_until(lambda: driver.execute_script(
                            "return document.getElementById('wall-updated').textContent"), timeout=30)
                        time.sleep(3)
                        out = args.out / f"{name}-{width}x{height}-{lang}.png"
                        driver.save_screenshot(str(out))
                        print(out)
                    finally:
                        driver.quit()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
