"""The titled posts: a blog post, a newsletter section and a Keep a Changelog entry."""

from __future__ import annotations

from services.generator import wording
from services.generator.changes import Activity, Change, read_activity
from services.generator.subjects import Kind
from shared.events import ActivitySummary
from shared.platforms import Platform

# The blog's sections; "changed" gathers performance, reverts and everything unclassified.
BLOG_SECTIONS = (
    ("breaking", "Breaking changes"),
    ("security", "Security"),
    ("feature", "New features"),
    ("fix", "Fixes"),
    ("changed", "Other changes"),
    ("deprecated", "Deprecations"),
    ("removed", "Removals"),
    ("docs", "Documentation"),
)
# Keep a Changelog's six sections, in its order.
CHANGELOG_SECTIONS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")
_CHANGELOG_OF: dict[Kind, str] = {
    "feature": "Added",
    "deprecated": "Deprecated",
    "removed": "Removed",
    "fix": "Fixed",
    "security": "Security",
}
BLOG_PER_SECTION = 10
NEWSLETTER_HIGHLIGHTS = 8
CHANGELOG_PER_SECTION = 25


def reference(change: Change) -> str:
    """' ([#12](url))', ' (#12)' or '': the pull request a change came from."""
    if change.number is None:
        return ""
    if change.url:
        return f" ([#{change.number}]({change.url}))"
    return f" (#{change.number})"


def markdown_line(change: Change, *, mark_breaking: bool = False) -> str:
    scope = f"**{change.scope}:** " if change.scope else ""
    breaking = "**BREAKING:** " if mark_breaking and change.breaking else ""
    return f"- {breaking}{scope}{change.text}{reference(change)}"


def blog_section(change: Change) -> str:
    if change.breaking:
        return "breaking"
    if change.kind in ("security", "feature", "fix", "deprecated", "removed", "docs"):
        return change.kind
    return "changed" if change.listed else "internal"


def _listing(changes: list[Change], cap: int, *, mark_breaking: bool = False) -> list[str]:
    """Up to `cap` lines, then one counting the rest of the section."""
    ranked = sorted(changes, key=Change.rank)
    lines = [markdown_line(change, mark_breaking=mark_breaking) for change in ranked[:cap]]
    if len(ranked) > cap:
        lines.append(f"- {wording.more(ranked[cap:], 0)}.")
    return lines


def _counted(activity: Activity, kinds: tuple[Kind, ...]) -> str:
    """'Also in this period: 3 refactorings and 40 further commits.' for what is not listed."""
    parts = []
    for kind in kinds:
        count = sum(c.kind == kind and not c.breaking for c in activity.changes)
        if count:
            parts.append(wording.kind_count(kind, count))
    if activity.branch_commits:
        parts.append(wording.plural(activity.branch_commits, "further commit"))
    if activity.unseen:
        parts.append(wording.plural(activity.unseen, "earlier change"))
    return f"Also in this period: {wording.joined(parts)}." if parts else ""


def _link(activity: Activity) -> str:
    return f"[See every change]({activity.compare_url})" if activity.compare_url else ""


def long_post(platform: Platform, summary: ActivitySummary, project: str, title: str) -> str:
    """A blog post (sections by kind) or a newsletter section (a list of highlights)."""
    activity = read_activity(summary)
    intro = wording.opening(project, activity, summary.issues, "", short=False)
    if platform.name == "newsletter":
        blocks = [f"## {title}", intro]
        picks = [change for change in activity.ranked() if change.listed]
        if picks:
            lines = [_newsletter_line(c) for c in picks[:NEWSLETTER_HIGHLIGHTS]]
            rest = len(activity.changes) - len(lines) + activity.branch_commits + activity.unseen
            if rest > 0:
                shown = picks[:NEWSLETTER_HIGHLIGHTS]
                others = [c for c in activity.changes if c not in shown]
                tail = wording.more(others, activity.branch_commits + activity.unseen)
                lines.append(f"- {tail}.")
            blocks.append("\n".join(["Highlights:", "", *lines]))
        names = 20
    else:
        blocks = [f"# {title}", intro]
        for key, heading in BLOG_SECTIONS:
            members = [change for change in activity.changes if blog_section(change) == key]
            if members:
                blocks.append(
                    "\n".join([f"## {heading}", "", *_listing(members, BLOG_PER_SECTION)])
                )
        names = 20
        counted = _counted(activity, ("refactor", "maintenance"))
        if counted:
            blocks.append(counted)
    blocks.append(_link(activity))
    blocks.append(wording.thanks(activity.people, names=names))
    return "\n\n".join(block for block in blocks if block) + "\n"


def _newsletter_line(change: Change) -> str:
    label = "Breaking" if change.breaking else ""
    if not label and not change.names_its_kind:
        label = _NEWSLETTER_LABELS.get(change.kind, "")
    line = markdown_line(change)
    return f"- **{label}:** {line[2:]}" if label else line


_NEWSLETTER_LABELS = {
    "security": "Security",
    "feature": "New",
    "fix": "Fixed",
    "removed": "Removed",
    "deprecated": "Deprecated",
    "perf": "Faster",
}


def changelog(summary: ActivitySummary, period: str) -> str:
    """A Keep a Changelog entry: its six sections, breaking changes marked and first."""
    activity = read_activity(summary)
    blocks = [f"## {period}"]
    if activity.releases:
        blocks.append("Releases: " + ", ".join(activity.releases))
    breaking = sum(change.breaking for change in activity.changes)
    if breaking:
        noun = wording.plural(breaking, "breaking change")
        blocks.append(f"**{noun[0].upper()}{noun[1:]}**, marked **BREAKING** below.")
    for heading in CHANGELOG_SECTIONS:
        members = [c for c in activity.changes if _changelog_section(c) == heading]
        if members:
            lines = _listing(members, CHANGELOG_PER_SECTION, mark_breaking=True)
            blocks.append("\n".join([f"### {heading}", "", *lines]))
    counted = _counted(activity, ("docs", "refactor", "maintenance"))
    if counted:
        blocks.append(counted.replace("Also in this period", "Not listed"))
    blocks.append(_link(activity))
    return "\n\n".join(block for block in blocks if block) + "\n"


def _changelog_section(change: Change) -> str | None:
    if change.kind in _CHANGELOG_OF:
        return _CHANGELOG_OF[change.kind]
    # Documentation, refactoring and upkeep change no behaviour: counted, unless breaking.
    return "Changed" if change.listed else None
