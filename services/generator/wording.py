"""The sentences every post shares: counts, the period, releases, thanks and "and N more"."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.generator.changes import Activity, Change
from services.generator.subjects import Kind

# One bucket per change for the counts a post opens with, most important first.
_BUCKETS: tuple[tuple[str, str, str], ...] = (
    ("breaking", "breaking change", "breaking changes"),
    ("security", "security fix", "security fixes"),
    ("feature", "new feature", "new features"),
    ("fix", "fix", "fixes"),
    ("other", "other change", "other changes"),
)
_NOUNS: dict[Kind, tuple[str, str]] = {
    "security": ("security fix", "security fixes"),
    "feature": ("new feature", "new features"),
    "fix": ("fix", "fixes"),
    "removed": ("removal", "removals"),
    "deprecated": ("deprecation", "deprecations"),
    "perf": ("performance change", "performance changes"),
    "revert": ("revert", "reverts"),
    "docs": ("documentation update", "documentation updates"),
    "refactor": ("refactoring", "refactorings"),
    "maintenance": ("maintenance change", "maintenance changes"),
}


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else (words or word + 's')}"


def joined(parts: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def bucket(change: Change) -> str:
    if change.breaking:
        return "breaking"
    return change.kind if change.kind in ("security", "feature", "fix") else "other"


def counts(activity: Activity) -> str:
    """'1 breaking change, 3 new features and 12 other changes'; '' when nothing changed."""
    tally = {name: 0 for name, _, _ in _BUCKETS}
    for change in activity.changes:
        tally[bucket(change)] += 1
    tally["other"] += activity.branch_commits + activity.unseen
    if tally["other"] == sum(tally.values()):
        return plural(tally["other"], "change") if tally["other"] else ""
    return joined([plural(tally[name], one, many) for name, one, many in _BUCKETS if tally[name]])


def kind_count(kind: Kind, count: int, *, more: bool = False) -> str:
    """'3 fixes', or with `more` '3 more fixes'."""
    one, many = _NOUNS[kind]
    return f"{count} {'more ' if more else ''}{one if count == 1 else many}"


def span(start: datetime | None, end: datetime) -> str:
    """'in the past week': how a short post names its window; '' without a start."""
    if start is None or end <= start:
        return ""
    days = round((end - start).total_seconds() / 86_400)
    if days <= 1:
        return "in the past day"
    if days % 7 == 0 and days <= 28:
        weeks = days // 7
        return "in the past week" if weeks == 1 else f"in the past {weeks} weeks"
    if 28 <= days <= 31:
        return "in the past month"
    return f"in the past {days} days"


def opening(project: str, activity: Activity, issues: int, when: str, *, short: bool) -> str:
    """The first sentence(s): the releases if any, then what changed in the window.

    A short post names the project by its own name ("httpx", not "encode/httpx") and only
    the newest release.
    """
    sentences = []
    if short:
        project = project.rsplit("/", 1)[-1] or project
    if activity.releases:
        names = activity.releases[-1:] if short else activity.releases[-3:]
        verb = "is" if len(names) == 1 else "are"
        earlier = len(activity.releases) - len(names)
        after = f" after {plural(earlier, 'earlier release')}" if earlier and not short else ""
        sentences.append(f"{project} {joined(names)} {verb} out{after}.")
    told = counts(activity)
    if issues:
        closed = f"{plural(issues, 'issue')} closed"
        told = f"{told}; {closed}" if told else closed
    if told:
        if activity.releases:
            sentences.append(f"{when[0].upper()}{when[1:]}: {told}." if when else f"{told}.")
        else:
            sentences.append(f"{project} {when}: {told}." if when else f"{project}: {told}.")
    return " ".join(sentences) or f"{project}: no new activity."


def more(remaining: Sequence[Change], extra: int) -> str:
    """'…and 14 more fixes' when the rest are all of one kind, else '…and 14 more changes'."""
    total = len(remaining) + extra
    kinds = {change.kind for change in remaining}
    kind = next(iter(kinds)) if len(kinds) == 1 else None
    if extra == 0 and kind in _NOUNS and not any(change.breaking for change in remaining):
        return "…and " + kind_count(kind, total, more=True)
    return f"…and {total} more {'change' if total == 1 else 'changes'}"


def thanks(people: Sequence[str], *, names: int) -> str:
    """'Thanks to ada, bob and 3 others!'; a count alone when `names` is 0."""
    if not people:
        return ""
    if names <= 0:
        return f"Thanks to {plural(len(people), 'contributor')}!"
    shown = list(people[:names])
    if len(people) > names:
        shown.append(plural(len(people) - names, "other"))
    return f"Thanks to {joined(shown)}!"
