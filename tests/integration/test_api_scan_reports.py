"""A repository GitHub says moved: the project renamed once, its owner told once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.batch import apply_events
from services.api.lifecycle import apply_event
from services.api.triggers import trigger_manually
from shared.db.schema import CronJob, Execution, ExecutionStep, Notification, Project
from shared.events import ActivityScanned, ActivitySummary, Repository, StepStarted
from tests.support import factories

PUBLIC = "http://herald.test"


async def github_execution(
    sessions: async_sessionmaker[AsyncSession], project: Project | None = None
) -> tuple[Execution, dict[str, str]]:
    if project is None:
        user_id, _ = await factories.user_with_token(sessions)
        project = await factories.project(
            sessions, user_id, name="site", github_repo_owner="octo", github_repo_name="repo"
        )
    job = await factories.job(sessions, project, next_run_at=None)
    async with sessions() as session, session.begin():
        job_row = await session.get(CronJob, job.id)
        project_row = await session.get(Project, project.id)
        assert job_row is not None and project_row is not None
        execution = await trigger_manually(
            session, job=job_row, project=project_row, user_id=project.user_id
        )
    return execution, {"execution_id": execution.id, "job_id": job.id, "project_id": project.id}


def scanned(envelope: dict[str, str], moved_to: tuple[str, str] | None) -> ActivityScanned:
    return ActivityScanned(
        **envelope,
        summary=ActivitySummary(commits=0),
        platforms=["x"],
        repository=Repository(owner="octo", name="repo"),
        repository_moved_to=Repository(owner=moved_to[0], name=moved_to[1]) if moved_to else None,
        window_start=None,
        window_end=datetime.now(UTC),
        deadline=datetime.now(UTC) + timedelta(minutes=15),
    )


async def alerts_of(sessions: async_sessionmaker[AsyncSession], user_id: str) -> list[Notification]:
    async with sessions() as session:
        found = await session.scalars(select(Notification).where(Notification.user_id == user_id))
        return list(found.all())


async def test_a_moved_repository_renames_the_project_with_a_step_and_one_alert(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    execution, envelope = await github_execution(sessions)
    event = scanned(envelope, ("octo-org", "renamed"))
    await apply_event(sessions, StepStarted(**envelope, step="scan"), public_url=PUBLIC)
    await apply_event(sessions, event, public_url=PUBLIC)
    await apply_event(sessions, event, public_url=PUBLIC)  # delivered twice

    async with sessions() as session:
        project = await session.get(Project, envelope["project_id"])
        stored = await session.get(Execution, execution.id)
        steps = (
            await session.scalars(
                select(ExecutionStep).where(ExecutionStep.execution_id == execution.id)
            )
        ).all()
    assert project is not None and stored is not None
    assert (project.github_repo_owner, project.github_repo_name) == ("octo-org", "renamed")
    assert stored.status == "COMPLETED"  # a move is no failure
    moved = [step for step in steps if step.kind == "moved"]
    assert len(moved) == 1 and moved[0].step == "scan"
    assert moved[0].detail is not None and "octo/repo moved to octo-org/renamed" in moved[0].detail
    alerts = await alerts_of(sessions, project.user_id)
    assert [(alert.kind, alert.title) for alert in alerts] == [
        ("repository_moved", "site: repository moved to octo-org/renamed")
    ]
    assert alerts[0].link == f"{PUBLIC}/console/executions/{execution.id}"
    assert alerts[0].body is not None and "octo/repo" in alerts[0].body


async def test_two_runs_reporting_the_same_move_alert_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    _, one = await github_execution(sessions)
    async with sessions() as session:
        project = await session.get(Project, one["project_id"])
    assert project is not None
    _, two = await github_execution(sessions, project)

    # In one batch and then again in another: the project is renamed by whichever comes first.
    await apply_events(
        sessions,
        [scanned(one, ("octo-org", "renamed")), scanned(two, ("octo-org", "renamed"))],
        public_url=PUBLIC,
    )
    _, three = await github_execution(sessions, project)
    await apply_event(sessions, scanned(three, ("octo-org", "renamed")), public_url=PUBLIC)

    alerts = await alerts_of(sessions, project.user_id)
    assert [alert.kind for alert in alerts] == ["repository_moved"]
    assert alerts[0].count == 1


async def test_a_project_its_owner_renamed_meanwhile_is_left_as_the_owner_set_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    _, envelope = await github_execution(sessions)
    async with sessions() as session, session.begin():
        project = await session.get(Project, envelope["project_id"])
        assert project is not None
        project.github_repo_name = "chosen"

    await apply_event(sessions, scanned(envelope, ("octo-org", "renamed")), public_url=PUBLIC)

    async with sessions() as session:
        project = await session.get(Project, envelope["project_id"])
    assert project is not None
    assert (project.github_repo_owner, project.github_repo_name) == ("octo", "chosen")
    assert await alerts_of(sessions, project.user_id) == []


async def test_no_move_changes_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    execution, envelope = await github_execution(sessions)

    await apply_event(sessions, scanned(envelope, None), public_url=PUBLIC)

    async with sessions() as session:
        project = await session.get(Project, envelope["project_id"])
        kinds = (
            await session.scalars(
                select(ExecutionStep.kind).where(ExecutionStep.execution_id == execution.id)
            )
        ).all()
    assert project is not None and project.github_repo_name == "repo"
    assert "moved" not in kinds


async def test_batches_writing_the_same_projects_in_opposite_orders_both_apply(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # Each batch completes a run of both projects (their sync marks) and records a move of
    # one: in opposite orders, as two api replicas may get them. Projects are locked in id
    # order first, so neither waits on the other for good.
    first, first_envelope = await github_execution(sessions)
    async with sessions() as session:
        project = await session.get(Project, first_envelope["project_id"])
    user_id, _ = await factories.user_with_token(sessions)
    other = await factories.project(
        sessions, user_id, name="other", github_repo_owner="octo", github_repo_name="repo"
    )
    second, second_envelope = await github_execution(sessions, other)
    assert project is not None
    third, third_envelope = await github_execution(sessions, project)
    fourth, fourth_envelope = await github_execution(sessions, other)

    await asyncio.gather(
        apply_events(
            sessions,
            [scanned(first_envelope, ("octo", "one")), scanned(second_envelope, None)],
            public_url=PUBLIC,
        ),
        apply_events(
            sessions,
            [scanned(fourth_envelope, ("octo", "two")), scanned(third_envelope, None)],
            public_url=PUBLIC,
        ),
    )

    async with sessions() as session:
        statuses = [
            (await session.get(Execution, run.id)).status  # type: ignore[union-attr]
            for run in (first, second, third, fourth)
        ]
        synced = [
            (await session.get(Project, envelope["project_id"])).last_synced_at  # type: ignore[union-attr]
            for envelope in (first_envelope, second_envelope)
        ]
    assert statuses == ["COMPLETED"] * 4
    assert all(mark is not None for mark in synced)
