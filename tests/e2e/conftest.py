"""The five services as real processes on a real broker and database."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.secrets import generate_key
from tests.support import processes
from tests.support.fakes.resend import FakeResend


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


@pytest.fixture
def resend() -> Iterator[FakeResend]:
    """A local server speaking Resend's API, where the stack's notifier sends email."""
    with FakeResend() as server:
        yield server


@pytest.fixture
def stack(
    fresh_database_url: str, fresh_amqp_url: str, tmp_path: Path, resend: FakeResend
) -> Iterator[dict[str, processes.Service]]:
    repos = tmp_path / "repos"
    make_repository(repos)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        "DATABASE_URL": fresh_database_url,
        "AMQP_URL": fresh_amqp_url,
        "HERALD_LOCAL_REPOS_ROOT": str(repos),
        "HERALD_SCHEDULER_MAX_SLEEP": "5",
        "HERALD_RESEND_API_KEY": resend.api_key,
        "HERALD_RESEND_API_URL": resend.url,
        # Asking an alert address to confirm seals the link in the event.
        "HERALD_SECRET_KEY": generate_key(),
    }
    with processes.running(processes.SERVICES, env, logs) as services:
        yield services
