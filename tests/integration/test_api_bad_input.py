"""Hostile and odd input: every answer a 4xx problem naming the field, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.api import new_job, new_project, problem, signed_in


async def test_a_body_over_the_limit_answers_413(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    headers = await signed_in(sessions)
    huge = {"name": "x" * (70 * 1024), "frequency": "DAILY", "projectId": "p"}
    problem(await api.post("/api/cron/schedule", headers=headers, json=huge), 413, "body")

    async def streamed() -> Any:
        for _ in range(70):
            yield b"x" * 1024

    response = await api.post(
        "/api/cron/schedule",
        headers={**headers, "Content-Type": "application/json"},
        content=streamed(),
    )
    problem(response, 413, "body")


async def test_nul_bytes_answer_422_wherever_they_hide(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    body = {"projectId": project_id, "name": "a\x00b", "frequency": "DAILY"}
    problem(await api.post("/api/cron/schedule", headers=headers, json=body), 422, "name")
    problem(
        await api.post(
            "/api/projects", headers=headers, json={"name": "p", "platforms": ["x\x00"]}
        ),
        422,
    )
    problem(
        await api.get("/api/cron/executions", headers=headers, params={"jobId": "cron_\x00"}),
        422,
        "query",
    )
    problem(await api.get("/api/cron/schedules/cron_%00", headers=headers), 422, "path")


@pytest.mark.parametrize("limit", ["-1", "0", "201", "99999999999999999999999", "ten", "1e3"])
async def test_limits_out_of_range_answer_422(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    limit: str,
) -> None:
    headers = await signed_in(sessions)
    for path in ("/api/cron/schedules", "/api/cron/executions", "/api/projects"):
        problem(await api.get(path, headers=headers, params={"limit": limit}), 422, "limit")


async def test_odd_strings_are_stored_verbatim(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    for name in (
        "'; DROP TABLE cron_jobs; --",
        "Robert'); SELECT pg_sleep(5);--",
        "🚀 launch day 🎉",
        "تقرير يومي",  # right-to-left
        "\u202etxt.exe",
    ):
        job = await new_job(api, headers, project_id, name=name, description=name)
        shown = (await api.get(f"/api/cron/schedules/{job['id']}", headers=headers)).json()
        assert (shown["data"]["name"], shown["data"]["description"]) == (name, name)
    problem(
        await api.get("/api/cron/schedules/' OR 1=1 --", headers=headers),
        404,
    )
    problem(
        await api.get("/api/cron/schedules", headers=headers, params={"cursor": "💥"}),
        422,
        "cursor",
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"frequency": "CUSTOM", "schedule": "61 * * * *"}, "schedule"),
        ({"frequency": "CUSTOM"}, "schedule"),
        ({"timeConfig": {"hour": 24, "minute": 0}}, "timeConfig.hour"),
        (
            {"frequency": "MONTHLY", "timeConfig": {"hour": 1, "minute": 0, "dayOfMonth": 32}},
            "timeConfig.dayOfMonth",
        ),
        ({"frequency": "WEEKLY", "timeConfig": {"hour": 1, "minute": 0}}, "timeConfig.dayOfWeek"),
        (
            {"timeConfig": {"hour": 1, "minute": 0, "timezone": "Nowhere/Land"}},
            "timeConfig.timezone",
        ),
        ({"maxRetries": 11}, "maxRetries"),
        ({"maxRetries": -1}, "maxRetries"),
        ({"retryDelay": 0}, "retryDelay"),
        ({"type": "BACKUP"}, "type"),
        ({"overlapPolicy": "SOMETIMES"}, "overlapPolicy"),
        ({"surprise": True}, "surprise"),
        ({"timeConfig": {"hour": "9", "minute": 0}}, "timeConfig.hour"),
        ({"frequency": "CUSTOM", "schedule": "*/99999999999999999999 * * * *"}, "schedule"),
        ({"frequency": "CUSTOM", "schedule": "0 */25 * * *"}, "schedule"),
        ({"timeConfig": {"hour": 9, "minute": 0, "timezone": ""}}, "timeConfig.timezone"),
        ({"timeConfig": {"hour": 9, "minute": 0, "timezone": "Factory"}}, "timeConfig.timezone"),
        ({"timeConfig": {"hour": 9, "timezone": "posix/Europe/Paris"}}, "timeConfig.timezone"),
        ({"timeConfig": {"hour": 9, "minute": 0, "timezone": "right/UTC"}}, "timeConfig.timezone"),
        ({"isEnabled": "yes"}, "isEnabled"),
        ({"isEnabled": 1}, "isEnabled"),
    ],
)
async def test_bad_jobs_name_the_field(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    fields: dict[str, Any],
    field: str,
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    body = {
        "projectId": project_id,
        "name": "j",
        "frequency": "DAILY",
        "timeConfig": {"hour": 9, "minute": 0},
        **fields,
    }
    problem(await api.post("/api/cron/schedule", headers=headers, json=body), 422, field)


async def test_malformed_json_is_a_problem_too(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    headers = {**(await signed_in(sessions)), "Content-Type": "application/json"}
    response = await api.post("/api/cron/trigger", headers=headers, content=b'{"jobId": ')
    assert response.status_code == 422, response.text
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"githubRepoOwner": "..", "githubRepoName": "repo"}, "githubRepoOwner"),
        ({"githubRepoOwner": "octo", "githubRepoName": ".."}, "githubRepoName"),
        ({"githubRepoOwner": "octo", "githubRepoName": "."}, "githubRepoName"),
        ({"githubRepoOwner": "-octo", "githubRepoName": "repo"}, "githubRepoOwner"),
        ({"githubRepoOwner": "o" * 40, "githubRepoName": "repo"}, "githubRepoOwner"),
        ({"githubRepoOwner": "octo", "githubRepoName": "a/b"}, "githubRepoName"),
        ({"notificationSettings": {"emailNotifications": "yes"}}, "notificationSettings"),
    ],
)
async def test_bad_projects_name_the_field(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    fields: dict[str, Any],
    field: str,
) -> None:
    headers = await signed_in(sessions)
    response = await api.post("/api/projects", headers=headers, json={"name": "p", **fields})
    body = problem(response, 422)
    assert any(error["field"].startswith(field) for error in body["errors"]), body


async def test_a_toggle_and_a_profile_take_only_real_booleans_and_zones(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    headers = await signed_in(sessions)
    job = await new_job(api, headers, await new_project(api, headers))
    toggled = await api.patch(
        f"/api/cron/schedules/{job['id']}", headers=headers, json={"isEnabled": "false"}
    )
    problem(toggled, 422, "isEnabled")
    for zone in ("Factory", "posix/UTC", "right/UTC", ""):
        problem(await api.patch("/api/me", headers=headers, json={"timezone": zone}), 422)
