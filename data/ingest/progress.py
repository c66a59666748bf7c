"""Progress of a long import on a terminal: rows, rate, time left; silent in scripts."""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


class Progress:
    """One line on `stream`, rewritten at most every `every_s`, once the import has run for
    `after_s` (a quick import prints nothing). Off unless `stream` is a terminal."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None,
                 after_s: float = 2.0, every_s: float = 0.5, clock: Callable[[], float] = time.monotonic):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.after_s, self.every_s, self.clock = after_s, every_s, clock
        self.started = clock()
        self.next_at = self.started + after_s
        self.shown = False

    def update(self, rows: int, fraction: float | None) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if now < self.next_at:
            return
        self.next_at = now + self.every_s
        self.stream.write("\r" + self.line(rows, fraction, now - self.started))
        self.stream.flush()
        self.shown = True

    @staticmethod
    def line(rows: int, fraction: float | None, elapsed: float) -> str:
        rate = rows / elapsed if elapsed > 0 else 0.0
        text = f"{rows:,} rows read, {rate:,.0f} rows/s"
        if fraction:
            left = elapsed * (1 - fraction) / fraction
            text += f", {fraction:.0%}, about {left:,.0f} s left"
        return text.ljust(60)

    def done(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
