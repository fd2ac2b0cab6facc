"""The api's background loops: a crash is seen (traceback, metric, /readyz) and mended by a
restart; the inbox of applied event ids is pruned past its retention, on an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from services.api import inbox, main, overdue
from services.api.delivery_pruning import prune_deliveries
from services.api.main import create_app
from shared.db.schema import GitHubAppDelivery, GitHubDelivery, ProcessedEvent
from shared.settings import Settings
from tests.support import factories
from tests.support.api import api_client
from tests.support.polling import poll_async

SWEEPER_CRASHES = 'herald_background_loop_crashes_total{loop="timeout sweeper",service="api"}'


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def crashing_once(module: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make `module.pause` raise on its first call (a bug outside the loop's own try), and
    behave on the next; return the list its calls are counted in."""
    real_pause = module.pause
    calls: list[int] = []

    async def pause_with_a_bug_once(seconds: float, *events: asyncio.Event) -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise AttributeError("'NoneType' object has no attribute 'set'")
        return bool(await real_pause(seconds, *events))

    monkeypatch.setattr(module, "pause", pause_with_a_bug_once)
    return calls


async def test_a_crashed_loop_is_logged_counted_not_ready_and_restarted(
    api_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = crashing_once(main, monkeypatch)  # the timeout sweeper's pause
    with capture_logs() as logs:
        async for api in api_client(api_settings(api_sweep_interval=60)):
            before = sample((await api.get("/metrics")).text, SWEEPER_CRASHES)
            down = await poll_async(
                lambda client=api: client.get("/readyz"),
                lambda response: response.json()["checks"]["loops"] is False,
            )
            assert down.status_code == 503 and down.json()["checks"]["database"] is True
            # Restarted after its backoff: ready again, and the sweeper's second pass waits.
            up = await poll_async(
                lambda client=api: client.get("/readyz"),
                lambda response: response.status_code == 200,
            )
            assert up.json()["checks"]["loops"] is True
            # Restarted: its first pass sweeps, then waits again (the pause's second call).
            await poll_async(lambda: len(calls), lambda count: count == 2)
            metrics = (await api.get("/metrics")).text
            assert sample(metrics, SWEEPER_CRASHES) >= before + 1
            assert 'herald_background_loop_up{loop="timeout sweeper",service="api"} 1.0' in metrics

    [crash] = [entry for entry in logs if entry["event"] == "background loop crashed"]
    assert crash["loop"] == "timeout sweeper" and crash["exc_info"] is True


async def test_a_crashed_housekeeping_loop_is_reported_but_the_api_keeps_serving(
    api_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    crashing_once(overdue, monkeypatch)  # the overdue gauge's pause
    with capture_logs():
        async for api in api_client(api_settings()):
            down = await poll_async(
                lambda client=api: client.get("/readyz"),
                lambda response: response.json()["advisory"]["loops"] is False,
            )
            assert down.json()["checks"]["loops"] is True  # still serving
            await poll_async(
                lambda client=api: client.get("/readyz"),
                lambda response: response.json()["advisory"]["loops"] is True,
            )


async def test_the_same_app_started_twice_runs_its_loops_at_their_pace_each_time(
    api_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(api_settings(api_sweep_interval=5))
    sweeps: list[int] = []
    real_sweep = main.sweep_timeouts

    async def counted(*args: Any, **kwargs: Any) -> int:
        sweeps.append(1)
        return int(await real_sweep(*args, **kwargs))

    monkeypatch.setattr(main, "sweep_timeouts", counted)
    for _ in range(2):
        sweeps.clear()

        def run_once() -> None:
            async def go() -> None:
                async with app.router.lifespan_context(app):
                    await asyncio.sleep(0.5)

            asyncio.run(go())

        # Each start on an event loop of its own, as a second server would.
        await asyncio.to_thread(run_once)
        assert len(sweeps) == 1  # one pass, then a 5 s pause: not a busy loop


async def test_without_a_crash_every_loop_reports_ready(
    api_settings: Callable[..., Settings],
) -> None:
    # The positive control of the test above: the same probe, nothing broken.
    async for api in api_client(api_settings()):
        ready = await poll_async(
            lambda client=api: client.get("/readyz"),
            lambda response: response.status_code == 200,
        )
        assert ready.json()["checks"] == {"database": True, "broker": True, "loops": True}
        assert ready.json()["advisory"] == {"loops": True}


async def stored_ids(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    async with sessions() as session:
        return set((await session.scalars(select(ProcessedEvent.event_id))).all())


async def seed(sessions: async_sessionmaker[AsyncSession], ages: dict[str, timedelta]) -> datetime:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    rows: list[dict[str, Any]] = [
        {"consumer": "api", "event_id": event_id, "processed_at": now - age}
        for event_id, age in ages.items()
    ]
    async with sessions() as session, session.begin():
        await session.execute(insert(ProcessedEvent), rows)
    return now


async def test_the_inbox_forgets_ids_past_the_retention_and_keeps_the_rest(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    retention = inbox.RETENTION
    assert retention > inbox.DLQ_REPLAY_WINDOW  # longer than any redelivery can arrive
    old = {f"evt_old_{n}": retention + timedelta(hours=n + 1) for n in range(7)}
    young = {
        "evt_just_inside": retention - timedelta(minutes=1),
        "evt_yesterday": timedelta(days=1),
        "evt_now": timedelta(0),
    }
    now = await seed(own_sessions, {**old, **young})

    # Chunks of three: seven old ids take three statements, each its own transaction.
    assert await inbox.prune(own_sessions, now=now, chunk=3) == 7
    assert await stored_ids(own_sessions) == set(young)
    assert await inbox.prune(own_sessions, now=now, chunk=3) == 0

    # Two minutes later the cut has moved past the id that was just inside it.
    assert await inbox.prune(own_sessions, now=now + timedelta(minutes=2)) == 1
    assert await stored_ids(own_sessions) == {"evt_yesterday", "evt_now"}


async def test_the_pruning_loop_prunes_on_its_clock_until_stopped(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = await seed(own_sessions, {"evt_a": timedelta(days=1), "evt_b": timedelta(days=2)})
    stop = asyncio.Event()
    instants = [now, now + inbox.RETENTION - timedelta(days=1, hours=12)]

    def clock() -> datetime:
        return instants.pop(0) if len(instants) > 1 else instants[0]

    loop = asyncio.create_task(inbox.run_pruning(own_sessions, stop, clock=clock, interval=0.05))
    # First pass at `now`: nothing is old enough. The next ones, 36 hours short of the
    # retention later: evt_b (2 days old then) is past it, evt_a is not.
    await poll_async(lambda: stored_ids(own_sessions), lambda ids: ids == {"evt_a"}, timeout=10)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)
    async with own_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ProcessedEvent)) == 1


async def stored_deliveries(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    async with sessions() as session:
        project = set(await session.scalars(select(GitHubDelivery.delivery_id)))
        app = set(await session.scalars(select(GitHubAppDelivery.delivery_id)))
    return project | {f"app:{delivery}" for delivery in app}


async def test_github_deliveries_are_pruned_past_their_retention_by_the_same_loop(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    user_id, _ = await factories.user_with_token(own_sessions)
    project = await factories.project(own_sessions, user_id)
    ages = {"d-old-1": 31, "d-old-2": 40, "d-young": 29}
    async with own_sessions() as session, session.begin():
        for delivery, days in ages.items():
            received = now - timedelta(days=days)
            session.add(
                GitHubDelivery(
                    project_id=project.id, delivery_id=delivery, event="push", received_at=received
                )
            )
            session.add(
                GitHubAppDelivery(delivery_id=delivery, event="installation", received_at=received)
            )

    # In chunks of one: each old row its own statement, none of the young ones touched.
    assert await prune_deliveries(own_sessions, now=now, retention=timedelta(days=30), chunk=1) == 4
    assert await stored_deliveries(own_sessions) == {"d-young", "app:d-young"}

    # The inbox's loop runs the pass on its own clock: 2 days on, d-young is past 30 days too.
    stop = asyncio.Event()
    loop = asyncio.create_task(
        inbox.run_pruning(
            own_sessions,
            stop,
            clock=lambda: now + timedelta(days=2),
            interval=0.05,
            delivery_retention=timedelta(days=30),
        )
    )
    await poll_async(lambda: stored_deliveries(own_sessions), lambda ids: not ids, timeout=10)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)


def test_the_delivery_retention_keeps_at_least_githubs_redelivery_window() -> None:
    assert Settings().github_delivery_retention_days == 30
    with pytest.raises(ValueError, match="greater than or equal to 7"):
        Settings(github_delivery_retention_days=3)
