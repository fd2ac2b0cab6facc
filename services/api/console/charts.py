"""A small bar chart of recent runs: height is the duration, colour and pattern the outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.api.console.wording import duration
from shared import digest_chart
from shared.events import Digest

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


DIGEST_WIDTH, DIGEST_HEIGHT = 320, 90
# The legend's words of `shared.digest_chart.KINDS`, as the style sheet's classes.
DIGEST_CLASSES = {
    "Commits": "commits",
    "Merged pull requests": "pulls",
    "Closed issues": "issues",
}


@dataclass(frozen=True)
class DigestRect:
    x: float
    y: float
    width: float
    height: float
    kind: str
    label: str


def digest_rects(stored: dict[str, Any] | None) -> tuple[list[DigestRect], str]:
    """The digest's chart as SVG rectangles (stacked per span), and what it shows in words."""
    if not stored:
        return [], ""
    digest = Digest.model_validate(stored)
    columns = digest_chart.columns(digest, DIGEST_HEIGHT)
    if not columns:
        return [], "No activity."
    width = (DIGEST_WIDTH - GAP * (len(columns) - 1)) / len(columns)
    rects = []
    for index, column in enumerate(columns):
        y = float(column.gap)
        for segment in column.segments:
            rects.append(
                DigestRect(
                    x=round(index * (width + GAP), 1),
                    y=round(y, 1),
                    width=round(width, 1),
                    height=float(segment.height),
                    kind=DIGEST_CLASSES[segment.kind],
                    label=column.description,
                )
            )
            y += segment.height
    described = "; ".join(column.description for column in columns)
    return rects, f"Activity over the window, oldest first: {described}"


SPAN_WORDS = {
    3_600: "hour",
    6 * 3_600: "six hours",
    86_400: "day",
    7 * 86_400: "week",
    30 * 86_400: "30 days",
    365 * 86_400: "year",
}


def digest_axis(stored: dict[str, Any] | None) -> str:
    """What a bar stands for, and from when to when (UTC): "One bar per day, Nov 30 to Dec 06"."""
    if not stored or not stored.get("timeline"):
        return ""
    digest = Digest.model_validate(stored)
    first = digest_chart.label(digest.timeline[0], digest.bucket_seconds)
    last = digest_chart.label(digest.timeline[-1], digest.bucket_seconds)
    span = SPAN_WORDS.get(digest.bucket_seconds, f"{digest.bucket_seconds} s")
    return f"One bar per {span}, {first} to {last} (UTC)."
