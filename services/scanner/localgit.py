"""Activity from a local git repository: commits and tags in the window."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from services.scanner.window import in_window
from shared.errors import ConfigurationError, PermanentError, TransientError
from shared.events import ActivityItem

_SEP = "\x1f"
# Opens each commit's record in `git log --name-only` output: git quotes a path holding a
# control character, so no path line contains it.
_RECORD = "\x1e"
_GIT_TIMEOUT = 60.0


def resolve_repository(path: str, root: str) -> Path:
    """Return the repository path if it lies under the configured root, else refuse."""
    resolved_root = Path(root).resolve()
    resolved = (
        (resolved_root / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
    )
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise ConfigurationError(f"localRepoPath {path!r} is outside HERALD_LOCAL_REPOS_ROOT")
    if not (resolved / ".git").exists() and not (resolved / "HEAD").exists():
        raise ConfigurationError(f"localRepoPath {path!r} is not a git repository")
    return resolved


async def _git(repo: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "git",
        "-C",
        str(repo),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=_GIT_TIMEOUT)
    except TimeoutError:
        process.kill()
        raise TransientError("git timed out") from None
    if process.returncode != 0:
        message = err.decode(errors="replace").strip()
        command = next((a for a in args if not a.startswith("-") and "=" not in a), "")
        raise PermanentError(f"git {command} failed: {message}")
    return out.decode(errors="replace")


async def _has_commits(repo: Path) -> bool:
    process = await asyncio.create_subprocess_exec(
        "git",
        "-C",
        str(repo),
        "rev-parse",
        "-q",
        "--verify",
        "HEAD",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait() == 0


async def commits(repo: Path, start: datetime | None, end: datetime) -> list[ActivityItem]:
    """Commits on HEAD whose committer date lies in (start, end]; none in an empty repository."""
    if not await _has_commits(repo):
        return []
    args = ["log", "HEAD", f"--format=%H{_SEP}%an{_SEP}%cI{_SEP}%s", f"--until={end.isoformat()}"]
    if start is not None:
        args.append(f"--since={start.isoformat()}")
    items = []
    for line in (await _git(repo, *args)).splitlines():
        sha, author, date, subject = line.split(_SEP, 3)
        at = datetime.fromisoformat(date).astimezone(UTC)
        if in_window(at, start, end):
            items.append(ActivityItem(kind="commit", title=subject, author=author, sha=sha, at=at))
    return items


async def tags(repo: Path, start: datetime | None, end: datetime) -> list[ActivityItem]:
    """Tags created in (start, end], by their creator date."""
    out = await _git(
        repo,
        "for-each-ref",
        "refs/tags",
        f"--format=%(refname:short){_SEP}%(creatordate:iso-strict)",
    )
    items = []
    for line in out.splitlines():
        name, _, date = line.partition(_SEP)
        if not date:
            continue
        at = datetime.fromisoformat(date).astimezone(UTC)
        if in_window(at, start, end):
            items.append(ActivityItem(kind="tag", title=name, at=at))
    return items


async def changed_paths(repo: Path, start: datetime | None, end: datetime) -> dict[str, list[str]]:
    """Per commit in (start, end] (as `commits` finds them), the paths it changed: one `git log`."""
    if not await _has_commits(repo):
        return {}
    # Paths in UTF-8 as they are, not octal-escaped, so globs match what people typed.
    # A merge lists what it brought in against its first parent (as GitHub's commit page
    # does); plain `--name-only` lists nothing for a merge.
    args = [
        "-c",
        "core.quotePath=false",
        "log",
        "HEAD",
        f"--format={_RECORD}%H",
        "--name-only",
        "--diff-merges=first-parent",
    ]
    args.append(f"--until={end.isoformat()}")
    if start is not None:
        args.append(f"--since={start.isoformat()}")
    found: dict[str, list[str]] = {}
    for record in (await _git(repo, *args)).split(_RECORD)[1:]:
        sha, *paths = record.splitlines()
        changed = [path for path in paths if path]
        if changed:  # an empty commit's paths stay unknown: it counts, as documented
            found[sha] = changed
    return found
