"""The prompt for one platform's post, and the validation of what the model answers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from services.generator.cut import fit
from shared.errors import PermanentError
from shared.events import ActivityItem, ActivitySummary, GitHubRelease
from shared.platforms import Platform

MAX_PROMPT_ITEMS = 40

RULES = {
    "x": "A post for X (Twitter): at most 280 characters, plain text, no markdown, "
    "at most two hashtags.",
    "mastodon": "A Mastodon toot: at most 500 characters, plain text, friendly tone.",
    "bluesky": "A Bluesky post: at most 300 characters, plain text.",
    "linkedin": "A LinkedIn post: at most 3000 characters, plain text paragraphs, "
    "professional tone, a short list of highlights is welcome.",
    "blog": "A markdown blog post with a title: an introduction, sections for the notable "
    "changes, and thanks to the contributors.",
    "newsletter": "A newsletter section in markdown with a title: a short summary paragraph "
    "and a bullet list of the highlights.",
    "changelog": "A changelog entry in markdown (Keep a Changelog style) with a title: group "
    "the changes by type under headings such as Breaking changes, Added, Fixed, Changed and "
    "Documentation; one bullet per change; no prose.",
}


class InvalidPostError(PermanentError):
    """The model's answer is not a usable post."""


@dataclass(frozen=True)
class Prompt:
    system: str
    user: str


def build_prompt(
    platform: Platform, summary: ActivitySummary, *, project: str, period: str
) -> Prompt:
    """Write the instructions and the facts for one platform's post."""
    shape = '{"title": "...", "body": "..."}' if platform.has_title else '{"body": "..."}'
    system = (
        "You write release and activity posts for software projects. Use only the facts "
        "given; never invent features, numbers or people. "
        f"{RULES.get(platform.name, '')} "
        f"Answer with one JSON object and nothing else, shaped {shape}."
    )
    lines = [
        f"Platform: {platform.name}",
        f"Project: {project}",
        f"Period: {period}",
        f"Commits: {summary.commits}, merged pull requests: {summary.pull_requests}, "
        f"closed issues: {summary.issues}, tags: {summary.tags}",
    ]
    if summary.release is not None:
        lines += _announced(summary.release)
    if summary.contributors:
        lines.append("Contributors: " + ", ".join(summary.contributors[:30]))
    if summary.releases:
        lines.append("Releases / version bumps: " + ", ".join(summary.releases))
    if summary.breaking_changes:
        lines.append("Breaking changes:")
        lines += [f"- {change}" for change in summary.breaking_changes]
    if summary.notable:
        lines.append("Notable:")
        lines += [_describe(item) for item in summary.notable]
    lines.append("Activity (newest first):")
    lines += [_describe(item) for item in summary.items[:MAX_PROMPT_ITEMS]]
    if platform.max_characters is not None:
        lines.append(f"The body must not exceed {platform.max_characters} characters.")
    return Prompt(system=system, user="\n".join(lines))


def _announced(release: GitHubRelease) -> list[str]:
    """The release the post announces: the activity below is what it brings."""
    named = f"{release.name} ({release.tag})" if release.name else release.tag
    since = f", the changes since {release.previous_tag}" if release.previous_tag else ""
    lines = [f"Announce release: {named}{since}"]
    if release.url:
        lines.append(f"Release page: {release.url}")
    if release.body:
        lines.append("Release notes:")
        lines += [f"  {line}" for line in release.body.splitlines() if line.strip()]
    return lines


def _describe(item: ActivityItem) -> str:
    ref = f" #{item.number}" if item.number else ""
    by = f" by {item.author}" if item.author else ""
    kind = f"[{item.kind}{ref}, {item.change_type or 'other'}]"
    return f"- {kind} {item.title}{by}"


_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.S)


def parse_post(text: str, platform: Platform) -> tuple[str | None, str]:
    """Return (title, body) from the model's JSON answer, trimmed to the platform's limit."""
    raw = text.strip()
    fenced = _FENCE.match(raw)
    if fenced:
        raw = fenced.group(1).strip()
    if not raw:
        raise InvalidPostError("the model returned an empty answer")
    try:
        answer = json.loads(raw)
    except ValueError as exc:
        raise InvalidPostError(f"the model returned malformed JSON: {raw[:80]!r}") from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("body"), str):
        raise InvalidPostError('the model answer has no string "body"')
    body = answer["body"].strip()
    if not body:
        raise InvalidPostError("the model returned an empty post")
    title = answer.get("title")
    title = title.strip() if isinstance(title, str) and title.strip() else None
    if platform.has_title and title is None:
        heading = re.match(r"^#+\s+(.+)$", body.splitlines()[0])
        if heading is None:
            raise InvalidPostError("the model returned a post without the title it needs")
        title = heading.group(1).strip()
    return (title if platform.has_title else None), fit(body, platform)
