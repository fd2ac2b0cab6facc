"""The seed's REST contract on real PostgreSQL and RabbitMQ."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.schema import Execution, Notification, OutboxMessage
from shared.ids import new_id
from tests.support.api import new_job, new_project, problem, signed_in


async def test_creating_a_daily_job_answers_the_seed_shape_with_defaults(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    response = await api.post(
        "/api/cron/schedule",
        headers=headers,
        json={
            "projectId": project_id,
            "type": "GENERATE_CONTENT",
            "name": "Daily Content Generation",
            "frequency": "DAILY",
            "timeConfig": {"hour": 9, "minute": 0, "timezone": "UTC"},
            "isEnabled": True,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["success"] is True
    job = body["data"]
    assert job["id"].startswith("cron_")
    assert job["projectId"] == project_id
    assert job["schedule"] == "0 9 * * *"
    assert job["isEnabled"] is True
    next_run = datetime.fromisoformat(job["nextRunAt"].replace("Z", "+00:00"))
    assert job["nextRunAt"].endswith("Z")
    assert (next_run.hour, next_run.minute) == (9, 0)
    assert next_run > datetime.now(UTC)
    assert {
        key: job[key]
        for key in (
            "maxRetries",
            "retryDelay",
            "timeoutSeconds",
            "overlapPolicy",
            "catchupWindow",
            "jitter",
        )
    } == {
        "maxRetries": 3,
        "retryDelay": 300,
        "timeoutSeconds": 900,
        "overlapPolicy": "SKIP",
        "catchupWindow": 86400,
        "jitter": 0,
    }


async def test_presets_and_custom_expressions_render_their_cron(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    cases = [
        (
            {"frequency": "WEEKLY", "timeConfig": {"hour": 9, "minute": 0, "dayOfWeek": 1}},
            "0 9 * * 1",
        ),
        (
            {
                "frequency": "MONTHLY",
                "timeConfig": {"hour": 10, "minute": 30, "dayOfMonth": 1, "timezone": "UTC"},
            },
            "30 10 1 * *",
        ),
        (
            {
                "frequency": "CUSTOM",
                "schedule": "*/15 9-17 * * MON-FRI",
                "timeConfig": {"timezone": "Europe/London"},
            },
            "*/15 9-17 * * MON-FRI",
        ),
    ]
    for spec, expected in cases:
        response = await api.post(
            "/api/cron/schedule",
            headers=headers,
            json={"projectId": project_id, "name": "j", **spec},
        )
        assert response.status_code == 201, response.text
        assert response.json()["data"]["schedule"] == expected
    # timeConfig.timezone defaults to UTC
    weekly = (await api.get("/api/cron/schedules", headers=headers)).json()["data"][-1]
    assert weekly["timeConfig"]["timezone"] == "UTC"


async def test_update_toggle_delete_follow_the_seed(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    created = await api.post(
        "/api/cron/schedule",
        headers=headers,
        json={
            "projectId": project_id,
            "name": "j",
            "frequency": "DAILY",
            "timeConfig": {"hour": 9, "minute": 0},
        },
    )
    job_id = created.json()["data"]["id"]
    updated = await api.patch(
        "/api/cron/schedule",
        headers=headers,
        json={
            "jobId": job_id,
            "frequency": "WEEKLY",
            "timeConfig": {"hour": 10, "minute": 30, "dayOfWeek": 1, "timezone": "UTC"},
        },
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["data"]["schedule"] == "30 10 * * 1"
    off = await api.patch(
        f"/api/cron/schedules/{job_id}", headers=headers, json={"isEnabled": False}
    )
    assert off.json()["data"]["isEnabled"] is False
    assert off.json()["data"]["nextRunAt"] is None
    on = await api.patch(f"/api/cron/schedules/{job_id}", headers=headers, json={"isEnabled": True})
    assert on.json()["data"]["nextRunAt"] is not None
    listed = await api.get("/api/cron/schedules", headers=headers)
    assert listed.json()["count"] == 1
    deleted = await api.delete(f"/api/cron/schedules/{job_id}", headers=headers)
    assert deleted.status_code == 200
    problem(await api.get(f"/api/cron/schedules/{job_id}", headers=headers), 404)
    listed = await api.get("/api/cron/schedules", headers=headers)
    assert listed.json() == {"success": True, "data": [], "count": 0, "nextCursor": None}


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        (
            {"frequency": "DAILY", "timeConfig": {"hour": 24, "minute": 0}},
            "timeConfig.hour",
            "hour 24 out of range 0-23",
        ),
        (
            {"frequency": "MONTHLY", "timeConfig": {"hour": 1, "minute": 0, "dayOfMonth": 32}},
            "timeConfig.dayOfMonth",
            "dayOfMonth 32 out of range 1-31",
        ),
        (
            {"frequency": "WEEKLY", "timeConfig": {"hour": 1, "minute": 0}},
            "timeConfig.dayOfWeek",
            "dayOfWeek required for WEEKLY",
        ),
        (
            {
                "frequency": "DAILY",
                "timeConfig": {"hour": 1, "minute": 0, "timezone": "Mars/Olympus"},
            },
            "timeConfig.timezone",
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            {"frequency": "CUSTOM", "schedule": "60 * * * *"},
            "schedule",
            "minute 60 out of range 0-59",
        ),
        ({"frequency": "CUSTOM", "schedule": "0 0 30 2 *"}, "schedule", "never fires"),
        (
            {"frequency": "DAILY", "timeConfig": {"hour": 1, "minute": 0}, "maxRetries": 11},
            "maxRetries",
            "less than or equal to 10",
        ),
        (
            {
                "frequency": "DAILY",
                "timeConfig": {"hour": 1, "minute": 0},
                "type": "BACKUP",
            },
            "type",
            "Input should be 'GENERATE_CONTENT'",
        ),
        ({"frequency": "HOURLY"}, "frequency", "DAILY"),
    ],
)
async def test_bad_schedules_are_422_problems_naming_the_field_and_rule(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    spec: dict[str, Any],
    field: str,
    words: str,
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    response = await api.post(
        "/api/cron/schedule", headers=headers, json={"projectId": project_id, "name": "bad", **spec}
    )
    body = problem(response, 422, field)
    assert words in body["detail"]


def _fields_and_messages(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(error["field"], error["message"]) for error in body["errors"]]


async def test_one_answer_names_every_schedule_field_at_fault(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    weekly = {"projectId": project_id, "name": "weekly", "frequency": "WEEKLY"}
    response = await api.post(
        "/api/cron/schedule", headers=headers, json={**weekly, "timeConfig": {"hour": 9}}
    )
    body = problem(response, 422)
    assert _fields_and_messages(body) == [
        ("timeConfig.minute", "minute required for WEEKLY"),
        ("timeConfig.dayOfWeek", "dayOfWeek required for WEEKLY"),
    ]
    assert body["detail"] == (
        "timeConfig.minute: minute required for WEEKLY; "
        "timeConfig.dayOfWeek: dayOfWeek required for WEEKLY"
    )

    custom = {
        "projectId": project_id,
        "name": "custom",
        "frequency": "CUSTOM",
        "schedule": "61 * * * *",
        "timeConfig": {"timezone": "Mars/Base"},
    }
    body = problem(await api.post("/api/cron/schedule", headers=headers, json=custom), 422)
    assert _fields_and_messages(body) == [
        ("schedule", "minute 61 out of range 0-59"),
        ("timeConfig.timezone", "unknown time zone 'Mars/Base'"),
    ]
    listed = await api.get("/api/cron/schedules", headers=headers)
    assert listed.json()["count"] == 0


async def test_the_schedule_joins_the_other_fields_refusals(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    response = await api.post(
        "/api/cron/schedule",
        headers=headers,
        json={
            "projectId": project_id,
            "frequency": "MONTHLY",
            "timeConfig": {"hour": 25, "minute": 0, "dayOfMonth": 1, "timezone": "Mars/Base"},
            "retryDelay": 0,
        },
    )
    body = problem(response, 422)
    assert [error["field"] for error in body["errors"]] == [
        "retryDelay",
        "name",
        "timeConfig.hour",
        "timeConfig.timezone",
    ]
    assert ("timeConfig.hour", "hour 25 out of range 0-23") in _fields_and_messages(body)
    assert "name: Field required" in body["detail"]


async def test_an_update_and_a_preview_name_every_schedule_field_at_fault(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    job = await new_job(api, headers, project_id)
    # The job stays DAILY: the new timeConfig replaces the old one, so minute is missing too.
    response = await api.patch(
        "/api/cron/schedule",
        headers=headers,
        json={"jobId": job["id"], "timeConfig": {"hour": 24, "timezone": "Mars/Base"}},
    )
    assert _fields_and_messages(problem(response, 422)) == [
        ("timeConfig.hour", "hour 24 out of range 0-23"),
        ("timeConfig.minute", "minute required for DAILY"),
        ("timeConfig.timezone", "unknown time zone 'Mars/Base'"),
    ]
    unchanged = (await api.get(f"/api/cron/schedules/{job['id']}", headers=headers)).json()
    assert unchanged["data"]["timeConfig"] == job["timeConfig"]

    response = await api.post(
        "/api/cron/schedule/preview",
        headers=headers,
        json={"frequency": "CUSTOM", "timeConfig": {"timezone": "Mars/Base"}},
    )
    assert _fields_and_messages(problem(response, 422)) == [
        ("schedule", "schedule required for CUSTOM"),
        ("timeConfig.timezone", "unknown time zone 'Mars/Base'"),
    ]


async def test_every_endpoint_needs_a_valid_token(api: httpx.AsyncClient) -> None:
    problem(await api.get("/api/cron/schedules"), 401)
    problem(
        await api.get("/api/cron/schedules", headers={"Authorization": "Bearer hrld_nope"}), 401
    )
    assert (await api.get("/livez")).status_code == 200


async def test_another_tenants_ids_answer_404(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    alice, bob = await signed_in(sessions), await signed_in(sessions)
    project_id = await new_project(api, alice)
    job_id = (
        await api.post(
            "/api/cron/schedule",
            headers=alice,
            json={
                "projectId": project_id,
                "name": "j",
                "frequency": "DAILY",
                "timeConfig": {"hour": 9, "minute": 0},
            },
        )
    ).json()["data"]["id"]
    execution_id = (
        await api.post("/api/cron/trigger", headers=alice, json={"jobId": job_id})
    ).json()["data"]["id"]
    notification_id = new_id("ntf")
    async with sessions() as session, session.begin():
        alice_id = (await session.get(Execution, execution_id)).user_id  # type: ignore[union-attr]
        session.add(
            Notification(
                id=notification_id, user_id=alice_id, kind="job_success", title="t", body="b"
            )
        )
    for response in (
        await api.get(f"/api/projects/{project_id}", headers=bob),
        await api.get(f"/api/cron/schedules/{job_id}", headers=bob),
        await api.patch(f"/api/cron/schedules/{job_id}", headers=bob, json={"isEnabled": False}),
        await api.delete(f"/api/cron/schedules/{job_id}", headers=bob),
        await api.post("/api/cron/trigger", headers=bob, json={"jobId": job_id}),
        await api.get(f"/api/cron/executions/{execution_id}", headers=bob),
        await api.get("/api/cron/executions", headers=bob, params={"jobId": job_id}),
        await api.get(
            "/api/cron/executions", headers=bob, params={"jobId": job_id, "stats": "true"}
        ),
        await api.get(f"/api/cron/executions/{execution_id}/content", headers=bob),
        await api.post(f"/api/cron/executions/{execution_id}/cancel", headers=bob),
        await api.get(f"/api/cron/schedules/{job_id}/statistics", headers=bob),
        await api.get(f"/api/cron/schedules/{job_id}/preview", headers=bob),
        await api.patch("/api/cron/schedule", headers=bob, json={"jobId": job_id, "name": "x"}),
        await api.post(
            "/api/cron/trigger",
            headers={**bob, "Idempotency-Key": "k1"},
            json={"jobId": job_id},
        ),
        await api.patch(f"/api/projects/{project_id}", headers=bob, json={"name": "mine"}),
        await api.get(f"/api/projects/{project_id}/notification-settings", headers=bob),
        await api.put(
            f"/api/projects/{project_id}/notification-settings",
            headers=bob,
            json={"emailNotifications": False},
        ),
        await api.delete(f"/api/projects/{project_id}", headers=bob),
        await api.post(f"/api/notifications/{notification_id}/read", headers=bob),
        await api.post(
            "/api/cron/schedule",
            headers=bob,
            json={
                "projectId": project_id,
                "name": "j",
                "frequency": "DAILY",
                "timeConfig": {"hour": 9, "minute": 0},
            },
        ),
    ):
        problem(response, 404)
    assert (await api.get("/api/cron/executions", headers=bob)).json()["count"] == 0
    assert (await api.get("/api/cron/schedules", headers=bob)).json()["count"] == 0
    assert (await api.get("/api/projects", headers=bob)).json()["count"] == 0
    assert (await api.get("/api/notifications", headers=bob)).json()["count"] == 0
    await api.post("/api/notifications/read-all", headers=bob)
    # Nothing bob did changed alice's records.
    job = (await api.get(f"/api/cron/schedules/{job_id}", headers=alice)).json()["data"]
    assert (job["name"], job["isEnabled"]) == ("j", True)
    execution = (await api.get(f"/api/cron/executions/{execution_id}", headers=alice)).json()
    assert execution["data"]["status"] == "PENDING"
    assert (await api.get("/api/notifications", headers=alice)).json()["unreadCount"] == 1
    settings = await api.get(f"/api/projects/{project_id}/notification-settings", headers=alice)
    assert settings.json()["data"]["emailNotifications"] is True


async def test_a_manual_trigger_records_a_pending_execution_and_its_job_due(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    job_id = (
        await api.post(
            "/api/cron/schedule",
            headers=headers,
            json={
                "projectId": project_id,
                "name": "j",
                "frequency": "DAILY",
                "isEnabled": False,
                "timeConfig": {"hour": 9, "minute": 0},
            },
        )
    ).json()["data"]["id"]
    response = await api.post("/api/cron/trigger", headers=headers, json={"jobId": job_id})
    assert response.status_code == 202, response.text
    execution = response.json()["data"]
    assert (execution["status"], execution["trigger"]) == ("PENDING", "MANUAL")
    assert execution["triggeredBy"].startswith("usr_")
    assert execution["windowEnd"] == execution["scheduledFor"]
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.payload.contains(execution["id"]))
            )
        ).all()
    assert [row.routing_key for row in rows] == ["job.due"]


async def test_lists_page_with_a_cursor(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    for n in range(5):
        await api.post(
            "/api/cron/schedule",
            headers=headers,
            json={
                "projectId": project_id,
                "name": f"j{n}",
                "frequency": "DAILY",
                "timeConfig": {"hour": 9, "minute": n},
            },
        )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = (await api.get("/api/cron/schedules", headers=headers, params=params)).json()
        seen += [job["name"] for job in body["data"]]
        assert body["count"] == len(body["data"]) <= 2
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == ["j4", "j3", "j2", "j1", "j0"]
    problem(
        await api.get("/api/cron/schedules", headers=headers, params={"limit": 0}), 422, "limit"
    )
    problem(
        await api.get("/api/cron/schedules", headers=headers, params={"limit": 201}), 422, "limit"
    )
