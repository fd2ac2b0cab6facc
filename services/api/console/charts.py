"""A small bar chart of recent runs: height is the duration, colour and pattern the outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.api.console.wording import duration

WIDTH, HEIGHT, GAP = 300, 80, 4
SLOTS = 10  # the statistics' recent executions: a lone first run stays one bar wide
MIN_BAR = 3  # a run with no duration still shows as a sliver, so every outcome is visible


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    outcome: str
    label: str


def duration_bars(executions: Sequence[dict[str, Any]]) -> list[Bar]:
    """Lay out one bar per execution, oldest on the left, scaled to the longest run."""
    runs = list(reversed(executions))
    if not runs:
        return []
    longest = max((run.get("duration") or 0 for run in runs), default=0) or 1
    slots = max(SLOTS, len(runs))
    width = (WIDTH - GAP * (slots - 1)) / slots
    bars = []
    for index, run in enumerate(runs):
        millis = run.get("duration")
        height = max(MIN_BAR, (millis or 0) / longest * HEIGHT)
        status = str(run.get("status"))
        bars.append(
            Bar(
                x=round(index * (width + GAP), 1),
                y=round(HEIGHT - height, 1),
                width=round(width, 1),
                height=round(height, 1),
                outcome=status.lower(),
                label=f"{status}, {duration(millis)}",
            )
        )
    return bars


def summary(bars: Sequence[Bar]) -> str:
    """Say what the chart shows, for screen readers."""
    if not bars:
        return "No runs yet."
    return f"Last {len(bars)} runs, oldest first: " + "; ".join(bar.label for bar in bars)
