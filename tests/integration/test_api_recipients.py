"""Alert email only to the account's own address and to addresses that confirmed by a link."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.schema import (
    CronJob,
    Execution,
    OutboxMessage,
    Project,
    RecipientConfirmation,
    User,
)
from shared.finished import finished_event
from shared.secrets import decrypt, generate_key
from shared.settings import Settings
from tests.support.api import api_client, problem, signed_in

PUBLIC = "http://herald.test"
KEY = generate_key()


@pytest.fixture
async def site(api_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_settings(secret_key=KEY, public_url=PUBLIC, max_pending_recipients_per_user=3)
    async for client in api_client(settings, base_url=PUBLIC):
        yield client


async def own_address(site: httpx.AsyncClient, headers: dict[str, str]) -> str:
    return str((await site.get("/api/me", headers=headers)).json()["data"]["email"])


async def questions(sessions: async_sessionmaker[AsyncSession], user_id: str) -> list[Any]:
    """The confirmation questions queued for the notifier for this user, oldest first."""
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.routing_key == "recipient.confirmation_requested")
                .order_by(OutboxMessage.id)
            )
        ).all()
    found = []
    for row in rows:
        payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
        if payload["userId"] == user_id:
            found.append(payload)
    return found


async def user_id_of(sessions: async_sessionmaker[AsyncSession], email: str) -> str:
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.email == email))
    assert user is not None
    return user.id


async def new_project(
    site: httpx.AsyncClient, headers: dict[str, str], recipients: list[str]
) -> dict[str, Any]:
    created = await site.post(
        "/api/projects",
        headers=headers,
        json={"name": "p", "notificationSettings": {"recipients": recipients}},
    )
    assert created.status_code == 201, created.text
    return dict(created.json()["data"])


async def answer(site: httpx.AsyncClient, question: dict[str, Any], choice: str) -> str:
    link = decrypt(question["link"], KEY)
    assert link.startswith(f"{PUBLIC}/console/recipients/confirm?token=")
    token = parse_qs(urlsplit(link).query)["token"][0]
    page = await site.get(urlsplit(link).path, params={"token": token})
    assert page.status_code == 200 and question["email"].lower() in page.text
    answered = await site.post(
        "/console/recipients/confirm",
        data={"token": token, "answer": choice},
        headers={"Origin": PUBLIC},
    )
    assert answered.status_code == 200, answered.text
    return answered.text


async def wire_recipients(sessions: async_sessionmaker[AsyncSession], project_id: str) -> list[str]:
    """The recipients an `execution.finished` for this project would carry."""
    async with sessions() as session:
        project = await session.get(Project, project_id)
    assert project is not None
    return list(project.notification_settings.get("confirmedRecipients", []))


async def test_a_stranger_is_asked_once_and_mailed_only_after_saying_yes(
    site: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    own = await own_address(site, headers)
    user_id = await user_id_of(sessions, own)

    project = await new_project(site, headers, [own, "Ops@example.com"])

    assert project["notificationSettings"]["recipients"] == [own, "Ops@example.com"]
    assert project["notificationSettings"]["pendingRecipients"] == ["Ops@example.com"]
    assert await wire_recipients(sessions, project["id"]) == [own]
    [question] = await questions(sessions, user_id)
    assert (question["email"], question["projectName"]) == ("Ops@example.com", "p")
    assert "token=" not in json.dumps(question)  # the link travels sealed

    # Saved again within the day: not asked again.
    again = await site.put(
        f"/api/projects/{project['id']}/notification-settings",
        headers=headers,
        json={"recipients": [own, "ops@example.com"]},
    )
    assert again.status_code == 200, again.text
    assert len(await questions(sessions, user_id)) == 1

    assert "will get the alerts" in await answer(site, question, "yes")
    shown = (await site.get(f"/api/projects/{project['id']}", headers=headers)).json()["data"]
    assert shown["notificationSettings"]["pendingRecipients"] == []
    assert await wire_recipients(sessions, project["id"]) == [own, "ops@example.com"]

    # Another project of the same user names the address: confirmed already, nobody asked.
    second = await new_project(site, headers, ["ops@example.com"])
    assert second["notificationSettings"]["pendingRecipients"] == []
    assert len(await questions(sessions, user_id)) == 1

    # The same link, opened again, lets its owner stop the alerts for good.
    assert "will get no alerts" in await answer(site, question, "no")
    assert await wire_recipients(sessions, project["id"]) == [own]
    assert await wire_recipients(sessions, second["id"]) == []
    async with sessions() as session, session.begin():
        await session.execute(
            update(RecipientConfirmation)
            .where(RecipientConfirmation.user_id == user_id)
            .values(requested_at=datetime.now(UTC) - timedelta(days=2))
        )
    await new_project(site, headers, ["ops@example.com"])
    assert len(await questions(sessions, user_id)) == 1  # a refusal is never asked again


async def test_an_unanswered_address_is_asked_again_after_a_day_and_never_gets_an_alert(
    site: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    user_id = await user_id_of(sessions, await own_address(site, headers))
    project = await new_project(site, headers, ["late@example.com"])
    async with sessions() as session, session.begin():
        await session.execute(
            update(RecipientConfirmation)
            .where(RecipientConfirmation.user_id == user_id)
            .values(requested_at=datetime.now(UTC) - timedelta(days=2))
        )
        stored = await session.get(Project, project["id"])
        assert stored is not None
        event = finished_event(
            _execution(stored, user_id),
            job=_job(stored, user_id),
            project=stored,
            consecutive_failures=0,
            previous_status=None,
            occurred_at=None,
            public_url=PUBLIC,
        )
    assert event.recipients == [] and event.notification_settings.recipients == []

    await site.put(
        f"/api/projects/{project['id']}/notification-settings",
        headers=headers,
        json={"recipients": ["late@example.com"]},
    )
    first, second = await questions(sessions, user_id)
    assert first["link"] != second["link"]
    # The first link no longer answers: a newer email replaced it.
    stale = await site.get(
        "/console/recipients/confirm",
        params={"token": parse_qs(urlsplit(decrypt(first["link"], KEY)).query)["token"][0]},
    )
    assert stale.status_code == 404


async def test_strangers_waiting_at_once_are_bounded_and_a_forged_link_answers_nothing(
    site: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    await new_project(site, headers, ["a@example.com", "b@example.com", "c@example.com"])
    refused = await site.post(
        "/api/projects",
        headers=headers,
        json={"name": "q", "notificationSettings": {"recipients": ["d@example.com"]}},
    )
    assert "HERALD_MAX_PENDING_RECIPIENTS_PER_USER" in problem(refused, 403)["detail"]

    assert (
        await site.get("/console/recipients/confirm", params={"token": "forged"})
    ).status_code == 404
    forged = await site.post(
        "/console/recipients/confirm",
        data={"token": "forged", "answer": "yes"},
        headers={"Origin": PUBLIC},
    )
    assert forged.status_code == 404
    elsewhere = await site.post(
        "/console/recipients/confirm",
        data={"token": "forged", "answer": "yes"},
        headers={"Origin": "https://elsewhere.example"},
    )
    assert elsewhere.status_code == 403


async def test_without_a_secret_key_a_stranger_cannot_be_named_but_the_own_address_can(
    database_url: str, fresh_amqp_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = Settings(database_url=database_url, amqp_url=fresh_amqp_url, secret_key="")
    async for site in api_client(settings):
        headers = await signed_in(sessions)
        own = await own_address(site, headers)
        assert (await new_project(site, headers, [own]))["notificationSettings"][
            "pendingRecipients"
        ] == []
        refused = await site.post(
            "/api/projects",
            headers=headers,
            json={"name": "p", "notificationSettings": {"recipients": ["ops@example.com"]}},
        )
        body = problem(refused, 422, "notificationSettings.recipients")
        assert "HERALD_SECRET_KEY" in body["detail"]


def _job(project: Project, user_id: str) -> CronJob:
    return CronJob(id="cron_1", project_id=project.id, user_id=user_id, name="daily")


def _execution(project: Project, user_id: str) -> Execution:
    return Execution(
        id="exec_1",
        job_id="cron_1",
        project_id=project.id,
        user_id=user_id,
        status="COMPLETED",
        trigger="MANUAL",
        attempt=1,
    )
