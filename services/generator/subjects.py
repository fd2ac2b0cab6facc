"""Read one commit or pull request subject: its kind, text, scope and whether it breaks.

The kind comes, in this order, from a Conventional Commits type, a leading gitmoji, the
English wording, the scanner's classification, and else "other" (Keep a Changelog's Changed).
"""

from __future__ import annotations

import re
from typing import Literal

Kind = Literal[
    "security",
    "feature",
    "fix",
    "removed",
    "deprecated",
    "perf",
    "other",
    "revert",
    "docs",
    "refactor",
    "maintenance",
]
_CONVENTIONAL_TYPES: dict[str, Kind | None] = {
    "feat": "feature",
    "feature": "feature",
    "fix": "fix",
    "bugfix": "fix",
    "hotfix": "fix",
    "security": "security",
    "sec": "security",
    "perf": "perf",
    "refactor": "refactor",
    "revert": "revert",
    "docs": "docs",
    "doc": "docs",
    "chore": "maintenance",
    "build": "maintenance",
    "ci": "maintenance",
    "test": "maintenance",
    "tests": "maintenance",
    "style": "maintenance",
    "deps": "maintenance",
    "release": None,
}
_CONVENTIONAL = re.compile(
    r"^(?P<type>[A-Za-z]+)(?:\((?P<scope>[^()]*)\))?(?P<bang>!)?:\s*(?P<text>\S.*)$"
)
# "area: text" without a known type: the area is a scope, the text is what to classify.
_AREA = re.compile(r"^(?P<scope>[\w./-]{1,40}):\s+(?P<text>\S.*)$")
_MERGE = re.compile(
    r"^Merge (?:pull request #\d+|(?:remote-tracking )?branch\b|tag\b|commit\b|\S+ into \S+)"
    r"|^Merged? in \S+",
    re.IGNORECASE,
)
_VERSION = r"v?\d+\.\d+(?:\.\d+)?(?:[-+.]?[0-9A-Za-z.-]+)?"
_RELEASE = re.compile(
    r"^(?:(?:chore:\s*)?(?:release|version|bump(?:ed)? version(?: to)?|prepare(?: for)? release)"
    rf"\s+(?:version\s+)?{_VERSION}|{_VERSION}|(?:chore|build)\(release\):.*|release:.*)\W*$",
    re.IGNORECASE,
)
_BREAKING = re.compile(r"BREAKING[ -]CHANGE|^\[?BREAKING\]?:?\s", re.IGNORECASE)
_SHORTCODE = re.compile(r"^:(?P<code>[a-z0-9_+-]+):\s*")
_GITMOJI: dict[str, Kind | Literal["breaking"]] = {
    "✨": "feature",
    "🎉": "feature",
    "🐛": "fix",
    "🚑": "fix",
    "🩹": "fix",
    "🔒": "security",
    "🔐": "security",
    "🔥": "removed",
    "🗑": "deprecated",
    "⚡": "perf",
    "♻": "refactor",
    "📝": "docs",
    "✏": "docs",
    "⏪": "revert",
    "💥": "breaking",
    "⬆": "maintenance",
    "⬇": "maintenance",
    "📌": "maintenance",
    "🔧": "maintenance",
    "✅": "maintenance",
    "🎨": "maintenance",
    "👷": "maintenance",
    "💚": "maintenance",
    "🚨": "maintenance",
    "🔖": "maintenance",
}
_SHORTCODES: dict[str, Kind | Literal["breaking"]] = {
    "sparkles": "feature",
    "tada": "feature",
    "bug": "fix",
    "ambulance": "fix",
    "adhesive_bandage": "fix",
    "lock": "security",
    "fire": "removed",
    "wastebasket": "deprecated",
    "zap": "perf",
    "recycle": "refactor",
    "memo": "docs",
    "pencil2": "docs",
    "rewind": "revert",
    "boom": "breaking",
    "arrow_up": "maintenance",
    "arrow_down": "maintenance",
    "pushpin": "maintenance",
    "wrench": "maintenance",
    "white_check_mark": "maintenance",
    "art": "maintenance",
    "construction_worker": "maintenance",
    "green_heart": "maintenance",
    "rotating_light": "maintenance",
    "bookmark": "maintenance",
}


def _words(*words: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(words) + r")\b", re.IGNORECASE)


# Wording rules, tried in order; the first verb decides most, a few words anywhere decide some.
_SECURITY = _words(
    "security", r"vulnerab\w*", r"cve-\d{4}-\d+", r"ghsa(?:-\w{4}){3}", "xss", "csrf", "ssrf"
)
_DOCS = _words(
    r"docs?", "documentation", "document", "documented", "readme", "changelog", "faq",
    r"docstrings?", r"typos?", r"[\w.-]+\.(?:rst|md)",
)  # fmt: skip
_UPKEEP = _words(
    r"ci", r"tests?", r"lint(?:ing|er)?", "mypy", "ruff", "flake8", "pre-commit", "dependabot",
    "renovate", r"workflows?", "dependencies", "dependency", "deps", "typing", "coverage",
    "github actions",
)  # fmt: skip
_FIX_WORDS = _words(r"bugs?", r"crash(?:es)?", r"regressions?", "hotfix")


def _verbs(words: str) -> frozenset[str]:
    return frozenset(words.split(" "))


_FIRST_VERBS: tuple[tuple[Kind, frozenset[str]], ...] = (
    (
        "removed",
        _verbs("remove removes removed removing drop drops dropped delete deletes deleted"),
    ),
    ("deprecated", _verbs("deprecate deprecates deprecated deprecating")),
    (
        "fix",
        _verbs(
            "fix fixes fixed fixing bugfix hotfix correct corrects corrected resolve resolves "
            "resolved repair repairs repaired"
        ),
    ),
    (
        "feature",
        _verbs(
            "add adds added adding introduce introduces introduced implement implements "
            "implemented support supports allow allows enable enables new"
        ),
    ),
    ("perf", _verbs("speed optimize optimizes optimized optimise optimises optimised")),
    (
        "refactor",
        _verbs(
            "refactor refactors refactored refactoring move moves moved rename renames renamed "
            "simplify simplifies simplified tidy cleanup clean reorganize reorganise regroup "
            "extract restructure"
        ),
    ),
    ("maintenance", _verbs("bump bumps bumped lint format reformat chore wip")),
)
_SCANNER_KINDS: dict[str, Kind] = {"feature": "feature", "fix": "fix", "docs": "docs"}


KIND_VERBS: dict[Kind, frozenset[str]] = dict(_FIRST_VERBS)
PULL_SUFFIX = re.compile(r"\s*\(#(?P<number>\d+)\)\s*$")
REVERT = re.compile(r'^Revert\s+"(?P<reverted>.+)"\s*$', re.IGNORECASE)


def is_merge(title: str) -> bool:
    return bool(_MERGE.match(title.strip()))


def is_release(title: str) -> bool:
    return bool(_RELEASE.match(PULL_SUFFIX.sub("", title).strip()))


def read_subject(subject: str, scanner_kind: str | None) -> tuple[str, str | None, Kind, bool]:
    """The display text, scope, kind and breaking flag of one subject line."""
    breaking = bool(_BREAKING.search(subject))
    text, mark = _strip_gitmoji(subject)
    if mark == "breaking":
        breaking, mark = True, None
    conventional = _CONVENTIONAL.match(text)
    if conventional and conventional.group("type").lower() in _CONVENTIONAL_TYPES:
        kind = _CONVENTIONAL_TYPES[conventional.group("type").lower()] or "maintenance"
        text = conventional.group("text")
        breaking = breaking or bool(conventional.group("bang"))
        scope = conventional.group("scope") or None
        if kind == "revert":
            return text, scope, kind, breaking
        # A feature that removes or deprecates is told as such; a security fix as security.
        worded = _by_wording(text)
        if worded in ("removed", "deprecated") and (kind == "feature" or breaking):
            kind = worded
        if worded == "security" and kind in ("fix", "feature", "maintenance"):
            kind = "security"
        return text, scope, kind, breaking
    if REVERT.match(text):
        return text, None, "revert", breaking
    scope = None
    area = _AREA.match(text)
    if area:
        scope, text = area.group("scope"), area.group("text")
        if scope.upper() == "BREAKING":
            scope = None
    kind = mark or _by_wording(text)
    if kind == "other" and scanner_kind in _SCANNER_KINDS:
        kind = _SCANNER_KINDS[scanner_kind]
    return text, scope, kind, breaking


def _strip_gitmoji(subject: str) -> tuple[str, Kind | Literal["breaking"] | None]:
    shortcode = _SHORTCODE.match(subject)
    if shortcode:
        return subject[shortcode.end() :], _SHORTCODES.get(shortcode.group("code"))
    for emoji, kind in _GITMOJI.items():
        if subject.startswith(emoji):
            return subject[len(emoji) :].lstrip("\ufe0f ").strip(), kind
    return subject, None


def _by_wording(text: str) -> Kind:
    """Classify an English subject by its words; anything else is "other" (Changed)."""
    if _SECURITY.search(text):
        return "security"
    first = re.match(r"[A-Za-z]+", text)
    verb = first.group(0).lower() if first else ""
    if verb.startswith("revert"):
        return "revert"
    if _DOCS.search(text):
        return "docs"
    if _UPKEEP.search(text):
        return "maintenance"
    for kind, verbs in _FIRST_VERBS:
        if verb in verbs:
            return kind
    if _FIX_WORDS.search(text):
        return "fix"
    return "other"


def capitalised(text: str) -> str:
    """Capitalise a plain first word ("add x" → "Add x"), never code ("presetConfig", "`x`")."""
    first = text.split(" ", 1)[0]
    if first.isascii() and first.isalpha() and first.islower():
        return text[0].upper() + text[1:]
    return text
