"""Logged pauses of a long benchmark, so its timings leave them out.

A comparison run takes many hours over several sittings, and now and then it must be stopped
(``kill -STOP``) while something else uses the CPU: a test, a measurement. Wall clocks go on
during a stop, so an answer in flight (timed by the recording proxy) and the row running (timed
by the harness) would count the pause as work. Whoever stops the run appends one line per pause
to a log, written before the run is continued::

    2026-12-07T09:42:26.512Z paused 339.4 s: <what ran meanwhile>

(the pause's start in UTC, then its length). :class:`PauseLog` reads that file when asked, so a
pause logged while the run was stopped is known as soon as the run goes on, and
:meth:`PauseLog.within` gives the paused seconds inside any wall-clock interval.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

_LINE = re.compile(r"^(\S+) paused ([0-9.]+) s\b")


def parse_pauses(text: str) -> list[tuple[float, float]]:
    """``(start, end)`` in seconds since the epoch for each pause line of ``text`` (other
    lines are ignored).

    Raises:
        ValueError: a pause line whose start is no time, naming the line."""
    out: list[tuple[float, float]] = []
    for i, line in enumerate(text.splitlines(), 1):
        m = _LINE.match(line.strip())
        if m is None:
            continue
        try:
            start = datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise ValueError(f"line {i}: {m.group(1)!r} is not a UTC time") from None
        out.append((start, start + float(m.group(2))))
    return out


class PauseLog:
    """The pauses logged in ``path`` (``None``, or a file not there yet: no pauses)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def pauses(self) -> list[tuple[float, float]]:
        if self.path is None or not self.path.is_file():
            return []
        return parse_pauses(self.path.read_text(encoding="utf-8", errors="replace"))

    def within(self, start: float, end: float) -> float:
        """Seconds of logged pauses between wall-clock times ``start`` and ``end``."""
        return sum(max(0.0, min(b, end) - max(a, start)) for a, b in self.pauses())
