"""Git repositories the tests scan, made on disk."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_repository(root: Path) -> Path:
    """A small git repository with a few commits and a tag, under the repos root."""
    repo = root / "demo"
    repo.mkdir(parents=True)

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(repo), *args],
            check=True,
            capture_output=True,
            env={
                "GIT_AUTHOR_NAME": "Ada",
                "GIT_AUTHOR_EMAIL": "ada@example.test",
                "GIT_COMMITTER_NAME": "Ada",
                "GIT_COMMITTER_EMAIL": "ada@example.test",
                "HOME": str(root),
            },
        )

    git("init", "-q", "-b", "main")
    for n, message in enumerate(["Add scheduler", "Fix DST bug <b>bold</b>", "Release notes"]):
        (repo / f"file{n}.txt").write_text(message)
        git("add", ".")
        git("commit", "-q", "-m", message)
    git("tag", "-a", "v1.0.0", "-m", "v1.0.0")
    return repo
