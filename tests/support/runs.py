"""Runs through a real api: a project on the local GitHub repository, a job, a manual run."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.support.fakes.github import FakeGitHub, commit, issue, pull
from tests.support.polling import poll


def create_project(api: httpx.Client, owner: str, name: str, platforms: list[str]) -> str:
    project = api.post(
        "/api/projects",
        json={
            "name": name,
            "githubRepoOwner": owner,
            "githubRepoName": name,
            "platforms": platforms,
        },
    )
    assert project.status_code == 201, project.text
    return str(project.json()["data"]["id"])


def run_daily_job(api: httpx.Client, project_id: str, hour: int) -> str:
    """Create a daily job on the project, trigger it, return the execution id."""
    job = api.post(
        "/api/cron/schedule",
        json={
            "projectId": project_id,
            "name": "Daily digest",
            "frequency": "DAILY",
            # The previous slot, and so the window's start, lies about twelve hours back.
            "timeConfig": {"hour": hour, "minute": 0, "timezone": "UTC"},
            "maxRetries": 3,
            "retryDelay": 1,
        },
    )
    assert job.status_code == 201, job.text
    triggered = api.post("/api/cron/trigger", json={"jobId": job.json()["data"]["id"]})
    assert triggered.status_code == 202, triggered.text
    return str(triggered.json()["data"]["id"])


def trigger(api: httpx.Client, owner: str, name: str, platforms: list[str], hour: int) -> str:
    """Create a project and a daily job on it, trigger the job, return the execution id."""
    return run_daily_job(api, create_project(api, owner, name, platforms), hour)


def finished(api: httpx.Client, execution_id: str) -> dict[str, Any]:
    return dict(
        poll(
            lambda: api.get(f"/api/cron/executions/{execution_id}").json()["data"],
            lambda data: data["status"] not in ("PENDING", "RUNNING"),
        )
    )


def seed(github: FakeGitHub, now: datetime) -> None:
    recent, old = now - timedelta(hours=1), now - timedelta(days=3)
    github.add_repo(
        "octo",
        "herald",
        commits=[
            commit(f"{n:040x}", f"fix: edge case {n}", recent + timedelta(seconds=n))
            for n in range(120)
        ]
        + [commit("a" * 40, "Ancient", old)],
        pulls=[
            pull(11, "feat: weekly digests", updated=recent, merged=recent, login="zoe"),
            pull(12, "Abandoned idea", updated=recent, merged=None),
            pull(13, "Old merge", updated=old, merged=old),
        ],
        issues=[issue(21, "Crash when the window is empty", closed=recent, labels=("bug",))],
    )
