"""The built-in template writer: deterministic, offline posts from an activity summary.

A short post (X, Bluesky, Mastodon, LinkedIn) opens with the releases and the counts, names
the changes that matter most (breaking, then merged pull requests before bare commits, by
kind), counts the rest and links to the full comparison; it is built to fit its platform's
limit, and dropping a whole line comes before cutting one. The titled posts are in longform.
"""

from __future__ import annotations

import time
from datetime import datetime

from services.generator import wording
from services.generator.changes import Activity, Change, read_activity
from services.generator.cut import fit, fits, trim
from services.generator.longform import changelog, long_post
from shared.events import ActivitySummary, PostResult
from shared.platforms import PLATFORMS, Platform

MODEL = "herald-template-writer"

__all__ = ["MODEL", "headline", "period", "trim", "write_post"]

LABELS = {
    "security": "Security: ",
    "feature": "New: ",
    "fix": "Fixed: ",
    "removed": "Removed: ",
    "deprecated": "Deprecated: ",
    "perf": "Faster: ",
}
# LinkedIn groups its highlights under these; the short platforms label each line instead.
GROUPS = (
    ("breaking", "Breaking changes"),
    ("security", "Security"),
    ("feature", "New"),
    ("fix", "Fixed"),
    ("removed", "Removed"),
    ("deprecated", "Deprecated"),
    ("changed", "Changed"),
)


def headline(summary: ActivitySummary) -> str:
    """Count what the scanner saw: commits, pull requests, issues and releases."""
    parts = []
    if summary.commits:
        parts.append(wording.plural(summary.commits, "commit"))
    if summary.pull_requests:
        parts.append(wording.plural(summary.pull_requests, "merged pull request"))
    if summary.issues:
        parts.append(wording.plural(summary.issues, "closed issue"))
    if summary.tags:
        parts.append(wording.plural(summary.tags, "release"))
    return ", ".join(parts) if parts else "no new activity"


def period(start: datetime | None, end: datetime) -> str:
    """Name the window a post covers."""
    if start is None:
        return f"up to {end:%Y-%m-%d}"
    return f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"


def group(change: Change) -> str:
    if change.breaking:
        return "breaking"
    return change.kind if change.kind in dict(GROUPS) else "changed"


def plain_line(change: Change, width: int, *, labelled: bool) -> str:
    """'• Fixed: crash on empty input': the label only where no heading or verb says it."""
    label = ""
    if labelled and change.breaking:
        label = "Breaking: "
    elif labelled and not change.names_its_kind:
        label = LABELS.get(change.kind, "")
    return "• " + trim(label + change.text, width)


def _short_post(platform: Platform, summary: ActivitySummary, project: str, when: str) -> str:
    limit = platform.max_characters or 3000
    activity = read_activity(summary)
    opening = wording.opening(project, activity, summary.issues, when, short=True)
    grouped = limit > 1000
    # A short post names a few changes; LinkedIn a dozen, under headings.
    cap = 12 if grouped else 3 if limit <= 300 else 5
    picks = [change for change in activity.ranked() if change.listed][:cap]
    width = 200 if grouped else max(40, limit // 2)
    names = 10 if grouped else 3
    # Give up, in order: the thanks, then the least important highlights, then the link.
    for link in (True, False):
        for count in range(len(picks), -1, -1):
            for thanks in (True, False):
                text = _compose(
                    opening,
                    picks[:count],
                    activity,
                    grouped=grouped,
                    width=width,
                    link=link,
                    thanks=wording.thanks(activity.people, names=names) if thanks else "",
                )
                if len(text) <= limit and fits(platform, text):
                    return text
    return fit(opening, platform)


def _compose(
    opening: str,
    shown: list[Change],
    activity: Activity,
    *,
    grouped: bool,
    width: int,
    link: bool,
    thanks: str,
) -> str:
    blocks = [opening]
    if grouped:
        for key, heading in GROUPS:
            lines = [plain_line(c, width, labelled=False) for c in shown if group(c) == key]
            if lines:
                blocks.append("\n".join([f"{heading}:", *lines]))
    elif shown:
        blocks.append("\n".join(plain_line(c, width, labelled=True) for c in shown))
    rest = [change for change in activity.changes if change not in shown]
    extra = activity.branch_commits + activity.unseen
    url = activity.compare_url if link else None
    if shown and (rest or extra):
        tail = wording.more(rest, extra)
        blocks.append(f"{tail}: {url}" if url else f"{tail}.")
    elif url:
        blocks.append(f"Every change: {url}")
    if thanks:
        blocks.append(thanks)
    return "\n\n".join(blocks)


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
    window = period(window_start, window_end)
    if platform.name == "changelog":
        title, body = f"{project}: what changed, {window}", changelog(summary, window)
    elif platform.has_title:
        title = f"{project}: what changed, {window}"
        body = long_post(platform, summary, project, title)
    else:
        body = _short_post(platform, summary, project, wording.span(window_start, window_end))
    return PostResult(
        platform=platform_name,
        status="GENERATED",
        title=title,
        body=body,
        characters=len(body),
        model=MODEL,
        generation_ms=int((time.perf_counter() - started) * 1000),
    )
