"""The digest's chart laid out once, drawn by the email (a table) and the console (SVG).

Pure: one column per span of the window, its commits, merged pull requests and closed
issues stacked, scaled to the busiest span. Heights are whole pixels so an email client
draws them as table cells of fixed height, with no script, style sheet or image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.events import Digest, DigestBucket

# (field of a bucket, the legend's words, its colour), stacked bottom up in this order.
KINDS = (
    ("commits", "Commits", "#0969da"),
    ("pull_requests", "Merged pull requests", "#8250df"),
    ("issues", "Closed issues", "#1a7f37"),
)
LABELS = 6


@dataclass(frozen=True)
class Segment:
    kind: str
    count: int
    height: int
    color: str


@dataclass(frozen=True)
class Column:
    label: str
    # Shown under the column: every few columns, so labels never crowd.
    labelled: bool
    total: int
    # Empty space above the stack, then the segments from the top down.
    gap: int
    segments: tuple[Segment, ...]
    description: str


def label(bucket: DigestBucket, span_seconds: int) -> str:
    start = bucket.start
    if span_seconds < 86_400:
        return start.strftime("%d %H:%M")
    if span_seconds >= 365 * 86_400:
        return start.strftime("%Y")
    return start.strftime("%b %d")


def columns(digest: Digest, height: int) -> list[Column]:
    """The chart's columns, oldest first, the busiest span `height` pixels tall."""
    buckets = digest.timeline
    totals = [bucket.commits + bucket.pull_requests + bucket.issues for bucket in buckets]
    tallest = max(totals, default=0) or 1
    every = max(1, math.ceil(len(buckets) / LABELS))
    laid = []
    for index, (bucket, total) in enumerate(zip(buckets, totals, strict=True)):
        segments = []
        for field, words, color in reversed(KINDS):
            count = int(getattr(bucket, field))
            if count:
                # A span with any activity shows it: at least a pixel per kind present.
                pixels = max(1, round(count / tallest * height))
                segments.append(Segment(words, count, pixels, color))
        used = sum(segment.height for segment in segments)
        text = label(bucket, digest.bucket_seconds)
        details = ", ".join(f"{segment.count} {segment.kind.lower()}" for segment in segments)
        laid.append(
            Column(
                label=text,
                labelled=index % every == 0 or index == len(buckets) - 1,
                total=total,
                gap=max(0, height - used),
                segments=tuple(segments),
                description=f"{text}: {details or 'no activity'}",
            )
        )
    return laid


def text_bars(digest: Digest, width: int = 30) -> list[str]:
    """The chart as plain-text lines (`Dec 01  ######## 8`), for the text part of emails."""
    buckets = digest.timeline
    totals = [bucket.commits + bucket.pull_requests + bucket.issues for bucket in buckets]
    tallest = max(totals, default=0) or 1
    labels = [label(bucket, digest.bucket_seconds) for bucket in buckets]
    pad = max((len(text) for text in labels), default=0)
    return [
        f"{text.ljust(pad)}  {'#' * (max(1, round(total / tallest * width)) if total else 0)}"
        f"{' ' if total else ''}{total}"
        for text, total in zip(labels, totals, strict=True)
    ]
