"""Abuse limits: records per user (403), manual runs per job (429), failed sign-ins (slowed, 429).

Failed authentications are counted in Redis, shared by two api apps as by two replicas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.main import create_app
from shared.settings import Settings
from tests.support.api import new_job, new_project, problem, signed_in

PUBLIC = "http://herald.test"


async def clients(settings: Settings, *addresses: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One app, and a client of it per client address (as a proxy would name them)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        opened = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=(address, 50_000)),
                base_url=PUBLIC,
            )
            for address in addresses
        ]
        try:
            yield opened
        finally:
            for client in opened:
                await client.aclose()


def refusals(limit: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "herald_api_refusals_total", {"limit": limit, "outcome": outcome}
    )
    return value or 0.0


async def test_projects_and_jobs_per_user_stop_at_the_limit_and_free_up_on_delete(
    api_settings: Callable[..., Settings],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    settings = api_settings(max_projects_per_user=2, max_jobs_per_user=2)
    async for (api,) in clients(settings, "10.0.0.1"):
        alice, bob = await signed_in(sessions), await signed_in(sessions)
        first, second = await new_project(api, alice), await new_project(api, alice)
        refused = problem(await api.post("/api/projects", headers=alice, json={"name": "3"}), 403)
        assert "HERALD_MAX_PROJECTS_PER_USER" in refused["detail"]
        # Another user has their own room.
        await new_project(api, bob)
        (await api.delete(f"/api/projects/{second}", headers=alice)).raise_for_status()
        await new_project(api, alice)

        job = await new_job(api, alice, first)
        await new_job(api, alice, first)
        body = {
            "projectId": first,
            "name": "3",
            "frequency": "DAILY",
            "timeConfig": {"hour": 9, "minute": 0},
        }
        refused = problem(await api.post("/api/cron/schedule", headers=alice, json=body), 403)
        assert "HERALD_MAX_JOBS_PER_USER" in refused["detail"]
        (await api.delete(f"/api/cron/schedules/{job['id']}", headers=alice)).raise_for_status()
        assert (await api.post("/api/cron/schedule", headers=alice, json=body)).status_code == 201


async def test_manual_runs_past_the_minutes_budget_answer_429_with_retry_after(
    api_settings: Callable[..., Settings],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    settings = api_settings(manual_triggers_per_minute=3)
    async for (api,) in clients(settings, "10.0.0.2"):
        headers = await signed_in(sessions)
        project_id = await new_project(api, headers)
        job = await new_job(api, headers, project_id, overlapPolicy="ALLOW")
        other = await new_job(api, headers, project_id, overlapPolicy="ALLOW")
        run = {"jobId": job["id"]}
        keyed = {**headers, "Idempotency-Key": "first-run"}
        first = await api.post("/api/cron/trigger", headers=keyed, json=run)
        assert first.status_code == 202
        for _ in range(2):
            assert (
                await api.post("/api/cron/trigger", headers=headers, json=run)
            ).status_code == 202

        refused = await api.post("/api/cron/trigger", headers=headers, json=run)
        problem(refused, 429)
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # A replay of an accepted run is not a new run; another job has its own budget.
        replay = await api.post("/api/cron/trigger", headers=keyed, json=run)
        assert replay.status_code == 202
        assert replay.json()["data"]["id"] == first.json()["data"]["id"]
        assert (
            await api.post("/api/cron/trigger", headers=headers, json={"jobId": other["id"]})
        ).status_code == 202
        listed = await api.get("/api/cron/executions", headers=headers, params={"jobId": job["id"]})
        assert listed.json()["count"] == 3


async def test_failed_authentications_are_slowed_then_refused_across_replicas(
    api_settings: Callable[..., Settings],
    sessions: async_sessionmaker[AsyncSession],
    redis_budgets: tuple[str, str],
) -> None:
    redis_url, prefix = redis_budgets
    settings = api_settings(
        auth_failures_per_minute=4,
        redis_url=redis_url,
        redis_prefix=prefix,
    )
    good = await signed_in(sessions)
    wrong = {"Authorization": "Bearer hrld_guess"}
    slowed_before = refusals("auth_failures", "slowed")
    async for attacker_a, bystander in clients(settings, "10.9.9.9", "10.1.1.1"):
        async for (attacker_b,) in clients(settings, "10.9.9.9"):
            # Four failures, split over two replicas, spend one shared budget.
            for client in (attacker_a, attacker_b, attacker_a, attacker_b):
                problem(await client.get("/api/me", headers=wrong), 401)
            assert refusals("auth_failures", "slowed") - slowed_before == 2

            refused = await attacker_a.get("/api/me", headers=wrong)
            problem(refused, 429)
            wait = int(refused.headers["retry-after"])
            assert 1 <= wait <= 60
            # Refused before the credential is read: even a good one, on this replica.
            problem(await attacker_a.get("/api/me", headers=good), 429)
            # The other replica refuses the address at its next failure.
            problem(await attacker_b.get("/api/me", headers=wrong), 429)
            problem(await attacker_b.get("/api/me", headers=good), 429)
            # The console's sign-in is refused alike.
            signin = await attacker_a.post(
                "/console/signin", data={"token": "hrld_guess"}, headers={"Origin": PUBLIC}
            )
            assert signin.status_code == 429
            assert "Too many failed sign-ins" in signin.text
            # Another address is not affected.
            assert (await bystander.get("/api/me", headers=good)).status_code == 200
            problem(await bystander.get("/api/me", headers=wrong), 401)


async def test_with_redis_gone_failures_still_count_in_each_process(
    api_settings: Callable[..., Settings],
) -> None:
    settings = api_settings(
        auth_failures_per_minute=2,
        # Nothing listens there: the shared budget is unreachable.
        redis_url="redis://127.0.0.1:1/0",
    )
    wrong = {"Authorization": "Bearer hrld_guess"}
    async for (attacker,) in clients(settings, "10.7.7.7"):
        for _ in range(2):
            problem(await attacker.get("/api/me", headers=wrong), 401)
        problem(await attacker.get("/api/me", headers=wrong), 429)
        # Redis gone is reported, and the api stays ready: its budgets have a fallback.
        ready = await attacker.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["advisory"] == {"loops": True, "redis": False}
