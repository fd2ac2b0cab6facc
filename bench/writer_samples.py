"""Before/after samples of the template writer on real repositories' histories.

Builds an activity summary from a window of each repository's `git log`, as the scanner would
from GitHub (commit pages, authors, the scanner's own change classification and summarising),
and writes the posts of the writer at commit 4adcf4d (before) and of this tree (after) into
docs/template-writer.md, between its sample markers.

    git clone --bare https://github.com/encode/httpx httpx.git   # and the others, once
    python -m bench.writer_samples --git encode/httpx=httpx.git \\
        --git pallets/click=click.git --git conventional-changelog/commitlint=commitlint.git
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.generator import writer
from services.scanner.github import change_type
from services.scanner.scan import summarise
from services.scanner.window import in_window
from shared.events import ActivityItem, ActivitySummary, PostResult

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "template-writer.md"
BEFORE_COMMIT = "4adcf4d"
START_MARK, END_MARK = "<!-- samples:start -->", "<!-- samples:end -->"
PLATFORMS = ("x", "linkedin", "blog", "changelog")
_FIELD, _RECORD = "\x1f", "\x1e"

Writer = Callable[..., PostResult]


@dataclass(frozen=True)
class Sample:
    repository: str
    start: datetime
    end: datetime
    why: str


SAMPLES = (
    Sample(
        "encode/httpx",
        datetime(2024, 11, 1, tzinfo=UTC),
        datetime(2024, 11, 29, tzinfo=UTC),
        "free-form subjects, squashed pull requests `(#123)`, a release tag",
    ),
    Sample(
        "pallets/click",
        datetime(2025, 8, 20, tzinfo=UTC),
        datetime(2025, 9, 15, tzinfo=UTC),
        "merge commits and their branches' own steps ('Lint', 'Typo'), a release commit",
    ),
    Sample(
        "conventional-changelog/commitlint",
        datetime(2026, 4, 20, tzinfo=UTC),
        datetime(2026, 5, 12, tzinfo=UTC),
        "Conventional Commits, a major release with breaking changes, bot dependency updates",
    ),
)


def git(*args: str) -> str:
    # git from PATH, with arguments this script builds: nothing here comes from a stranger.
    done = subprocess.run(["git", *args], check=True, capture_output=True, text=True)  # noqa: S603, S607
    return done.stdout


def history(git_dir: str, sample: Sample) -> list[ActivityItem]:
    """The window's commits and tags, as the GitHub scanner would report them."""
    owner_name = sample.repository
    log = git(
        f"--git-dir={git_dir}",
        "log",
        "HEAD",
        f"--since={sample.start.isoformat()}",
        f"--until={sample.end.isoformat()}",
        f"--format=%H{_FIELD}%an{_FIELD}%cI{_FIELD}%B{_RECORD}",
    )
    items = []
    for record in log.split(_RECORD):
        if not record.strip():
            continue
        sha, author, date, message = record.strip("\n").split(_FIELD, 3)
        at = datetime.fromisoformat(date).astimezone(UTC)
        if not in_window(at, sample.start, sample.end):
            continue
        items.append(
            ActivityItem(
                kind="commit",
                title=message.splitlines()[0] if message else sha,
                url=f"https://github.com/{owner_name}/commit/{sha}",
                author=author,
                sha=sha,
                at=at,
                change_type=change_type(message, []),
            )
        )
    tags = git(
        f"--git-dir={git_dir}",
        "for-each-ref",
        "refs/tags",
        f"--format=%(refname:short){_FIELD}%(creatordate:iso-strict)",
    )
    for line in tags.splitlines():
        name, _, date = line.partition(_FIELD)
        at = datetime.fromisoformat(date).astimezone(UTC)
        if in_window(at, sample.start, sample.end):
            items.append(ActivityItem(kind="tag", title=name, at=at))
    return items


def writer_before() -> Writer:
    """The template writer as it was at BEFORE_COMMIT, loaded from git."""
    source = git("-C", str(ROOT), "show", f"{BEFORE_COMMIT}:services/generator/writer.py")
    module = types.ModuleType("writer_before")
    exec(compile(source, "writer_before.py", "exec"), module.__dict__)  # noqa: S102
    return module.write_post  # type: ignore[no-any-return]


def fenced(result: PostResult, platform: str) -> str:
    language = "text" if platform in ("x", "linkedin") else "markdown"
    body = result.body or ""
    title = f"Title: {result.title}\n\n" if result.title else ""
    return f"````{language}\n{title}{body.rstrip()}\n````\n({result.characters} characters)"


def render(sample: Sample, summary: ActivitySummary, before: Writer) -> str:
    project = sample.repository
    blocks = [
        f"### {project}, {sample.start:%Y-%m-%d} to {sample.end:%Y-%m-%d}",
        f"Why this one: {sample.why}. {summary.commits} commits, "
        f"{len(summary.contributors)} authors, releases: {', '.join(summary.releases) or 'none'}.",
    ]
    for platform in PLATFORMS:
        kwargs = {"project": project, "window_start": sample.start, "window_end": sample.end}
        old = before(platform, summary, **kwargs)
        new = writer.write_post(platform, summary, **kwargs)
        blocks += [
            f"#### {platform}",
            "Before:",
            fenced(old, platform),
            "After:",
            fenced(new, platform),
        ]
    return "\n\n".join(blocks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--git", action="append", default=[], metavar="OWNER/NAME=GIT_DIR", required=True
    )
    arguments = parser.parse_args()
    git_dirs = dict(entry.split("=", 1) for entry in arguments.git)
    before = writer_before()
    sections = []
    for sample in SAMPLES:
        if sample.repository not in git_dirs:
            sys.exit(f"no --git {sample.repository}=GIT_DIR given")
        summary = summarise(history(git_dirs[sample.repository], sample))
        sections.append(render(sample, summary, before))
    text = DOCS.read_text()
    head, _, rest = text.partition(START_MARK)
    _, _, tail = rest.partition(END_MARK)
    DOCS.write_text(f"{head}{START_MARK}\n\n" + "\n\n".join(sections) + f"\n\n{END_MARK}{tail}")
    print(f"wrote {len(sections)} samples into {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
