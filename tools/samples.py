"""Write the weekly review pack's samples: one week of the demo plant (42 days, seed 7, ending
on the Monday morning after it) as the meeting gets it, with three decisions of earlier reviews
in its action register, to docs/samples/ (floorlink-<week>-zh.pdf, .xlsx, .html and -en.pdf),
and each page of the Chinese PDF as a PNG at 60 dpi in docs/screenshots/
(pack-<week>-zh-p<n>.png), to look at as a plant manager printing it would.

    .venv/bin/python -m tools.samples [--samples docs/samples] [--screenshots docs/screenshots]

Same seed, same end, same files: the pack says it was built at its as_of.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from data import db
from data.demo import build_demo_plant
from data.reports import actions, render, weekly

ROOT = Path(__file__).resolve().parent.parent
# Monday 30 Nov 2026, 08:00 at the site: week 48 is over and past its grace.
END = datetime(2026, 11, 30, 0, 0, tzinfo=timezone.utc)
DAYS = 42
SEED = 7
FILES = (("zh", ".pdf"), ("zh", ".xlsx"), ("zh", ".html"), ("en", ".pdf"))


def _decisions(engine, week: str) -> None:
    """What earlier reviews decided: one countermeasure on a KPI (marked on its chart), one
    overdue, one done and waiting for the figures."""
    opened = weekly.shifted(week, -2)
    monday = weekly.week_window(opened)[1]
    for problem, about, countermeasure, owner, department, due, status in (
            ("夜班设备故障响应慢，响应中位数超过 20 分钟", "response_median_min",
             "夜班增设一名维修值班，故障呼叫直达值班手机", "赵强", "MNT", date(2026, 11, 20), "in_progress"),
            ("L2 换线物料经常晚到，计划达成率低", "plan_attainment",
             "换线前 2 小时由仓储按计划备料到线边", "孙丽", "WH", date(2026, 11, 25), "open"),
            ("来料检验积压导致停线", "stagnant_lots",
             "IQC 早班提前 30 分钟开始，先检急料", "周敏", "QA", date(2026, 12, 4), "done")):
        actions.create(engine, problem=problem, about=about, countermeasure=countermeasure,
                       owner=owner, department_code=department, due=due, opened_week=opened,
                       created_by="sample", now=monday + timedelta(hours=9), status=status)


def build(samples: Path, screenshots: Path) -> list[Path]:
    """Build the demo week and write its files and page images; returns what was written."""
    week = weekly.last_complete_week(END)
    written = []
    with tempfile.TemporaryDirectory(prefix="floorlink-samples-") as folder:
        engine = db.make_engine(f"sqlite:///{Path(folder) / 'demo.sqlite'}")
        try:
            db.upgrade_schema(engine)
            build_demo_plant(engine, days=DAYS, seed=SEED, end=END)
            _decisions(engine, week)
            pack = weekly.build_pack(engine, week, as_of=END)
        finally:
            engine.dispose()
    pack["built_at"] = pack["as_of"]
    samples.mkdir(parents=True, exist_ok=True)
    for lang, ext in FILES:
        path = samples / f"floorlink-{week}-{lang}{ext}"
        render.write(pack, path, lang)
        written.append(path)
    screenshots.mkdir(parents=True, exist_ok=True)
    for old in screenshots.glob(f"pack-{week}-zh-p*.png"):
        old.unlink()
    stem = screenshots / f"pack-{week}-zh-p"
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(samples / f"floorlink-{week}-zh.pdf"),
                    str(stem)], check=True)
    # pdftoppm numbers pages with as many digits as the last needs (p01): name them p1, p2 ...
    for page in sorted(screenshots.glob(f"pack-{week}-zh-p-*.png")):
        number = int(page.stem.rsplit("-", 1)[1])
        target = screenshots / f"pack-{week}-zh-p{number}.png"
        page.replace(target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.samples", description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=Path, default=ROOT / "docs" / "samples")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    if shutil.which("pdftoppm") is None:
        print("pdftoppm is missing: apt-get install poppler-utils", file=sys.stderr)
        return 1
    for path in build(args.samples, args.screenshots):
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
