"""The built-in template writer: deterministic, offline posts from an activity summary."""

from __future__ import annotations

import time
from datetime import datetime

from shared.events import ActivityItem, ActivitySummary, PostResult
from shared.platforms import PLATFORMS, Platform

MODEL = "herald-template-writer"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def headline(summary: ActivitySummary) -> str:
    parts = []
    if summary.commits:
        parts.append(_plural(summary.commits, "commit"))
    if summary.pull_requests:
        parts.append(_plural(summary.pull_requests, "merged pull request"))
    if summary.issues:
        parts.append(_plural(summary.issues, "closed issue"))
    if summary.tags:
        parts.append(_plural(summary.tags, "release"))
    return ", ".join(parts) if parts else "no new activity"


def period(start: datetime | None, end: datetime) -> str:
    """Name the window a post covers."""
    if start is None:
        return f"up to {end:%Y-%m-%d}"
    return f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"


def trim(text: str, limit: int | None) -> str:
    """Cut text to `limit` characters at a word boundary, marking the cut with an ellipsis."""
    if limit is None or len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def _bullets(items: list[ActivityItem], limit: int) -> list[str]:
    lines = []
    for item in items[:limit]:
        ref = f"#{item.number} " if item.number else ""
        by = f" ({item.author})" if item.author else ""
        lines.append(f"- {ref}{item.title}{by}")
    return lines


def _short_post(platform: Platform, summary: ActivitySummary, project: str) -> str:
    picked = (summary.notable + [i for i in summary.items if i not in summary.notable])[:3]
    highlights = "; ".join(item.title for item in picked)
    text = f"{project}: {headline(summary)}."
    if summary.releases:
        text += f" Released {', '.join(summary.releases[:3])}."
    if summary.breaking_changes:
        text += f" ⚠ {_plural(len(summary.breaking_changes), 'breaking change')}."
    if highlights:
        text += f" Highlights: {highlights}."
    if summary.contributors:
        text += f" Thanks to {_plural(len(summary.contributors), 'contributor')}!"
    return trim(text, platform.max_characters)


def _long_post(
    platform: Platform, summary: ActivitySummary, project: str, period: str
) -> tuple[str, str]:
    title = f"{project}: what changed, {period}"
    sections = [f"# {title}", "", f"{headline(summary).capitalize()}."]
    by_kind = {
        "Releases": [i for i in summary.items if i.kind == "tag"],
        "Merged pull requests": [i for i in summary.items if i.kind == "pull_request"],
        "Closed issues": [i for i in summary.items if i.kind == "issue"],
        "Commits": [i for i in summary.items if i.kind == "commit"],
    }
    if platform.name == "changelog":
        return title, _changelog(summary, period)
    if platform.name == "newsletter":
        sections = [f"## {title}", "", f"{headline(summary).capitalize()}."]
        if summary.releases:
            sections.append("Released: " + ", ".join(summary.releases) + ".")
        if summary.notable:
            sections += ["", "Highlights:", *_bullets(summary.notable, 10)]
    for heading, items in by_kind.items():
        if items:
            sections += ["", f"### {heading}", *_bullets(items, 20)]
    if summary.contributors:
        sections += ["", "Contributors: " + ", ".join(summary.contributors[:20])]
    return title, "\n".join(sections).strip() + "\n"


CHANGE_HEADINGS = {
    "breaking": "Breaking changes",
    "feature": "Added",
    "fix": "Fixed",
    "other": "Changed",
    "docs": "Documentation",
}


def _changelog(summary: ActivitySummary, period: str) -> str:
    """A Keep-a-Changelog entry: releases first, then changes grouped by their type."""
    sections = [f"## {period}"]
    if summary.releases:
        sections += ["", "Releases: " + ", ".join(summary.releases)]
    changes = [i for i in summary.items if i.kind != "tag"]
    for change_type, heading in CHANGE_HEADINGS.items():
        grouped = [i for i in changes if (i.change_type or "other") == change_type]
        if grouped:
            sections += ["", f"### {heading}", *_bullets(grouped, 30)]
    return "\n".join(sections).strip() + "\n"


def write_post(
    platform_name: str,
    summary: ActivitySummary,
    *,
    project: str,
    window_start: datetime | None,
    window_end: datetime,
) -> PostResult:
    """Write one platform's post; an unknown platform is a failed result, not an exception."""
    started = time.perf_counter()
    platform = PLATFORMS.get(platform_name)
    if platform is None:
        return PostResult(
            platform=platform_name, status="FAILED", error=f"unknown platform {platform_name!r}"
        )
    title: str | None = None
    if platform.has_title:
        title, body = _long_post(platform, summary, project, period(window_start, window_end))
    else:
        body = _short_post(platform, summary, project)
    return PostResult(
        platform=platform_name,
        status="GENERATED",
        title=title,
        body=body,
        characters=len(body),
        model=MODEL,
        generation_ms=int((time.perf_counter() - started) * 1000),
    )
