"""Tenant-scoped lookups: another user's id is simply not found."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.problems import not_found
from shared.db.schema import CronJob, Execution, Project


async def project_of(session: AsyncSession, user_id: str, project_id: str) -> Project:
    project = await session.scalar(
        select(Project).where(
            Project.id == project_id, Project.user_id == user_id, Project.deleted_at.is_(None)
        )
    )
    if project is None:
        raise not_found("project")
    return project


async def job_of(
    session: AsyncSession, user_id: str, job_id: str, *, for_update: bool = False
) -> CronJob:
    statement = select(CronJob).where(
        CronJob.id == job_id, CronJob.user_id == user_id, CronJob.deleted_at.is_(None)
    )
    if for_update:
        statement = statement.with_for_update()
    job = await session.scalar(statement)
    if job is None:
        raise not_found("job")
    return job


async def execution_of(
    session: AsyncSession, user_id: str, execution_id: str, *, for_update: bool = False
) -> Execution:
    statement = select(Execution).where(Execution.id == execution_id, Execution.user_id == user_id)
    if for_update:
        statement = statement.with_for_update()
    execution = await session.scalar(statement)
    if execution is None:
        raise not_found("execution")
    return execution
