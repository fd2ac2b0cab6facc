"""PostgreSQL renders an execution's view exactly as the Python view builds it.

The hot lists take each row's JSON from PostgreSQL (`services.api.pg_render`); the single
record views and SQLite build it in Python (`views.execution_view`). Rows chosen to be
awkward: instants on the second, with a fraction below a millisecond and just under the next
second, before 1970 and in year 1000; NULLs; a MISSED run's extra fields; metadata with
fractions, strings, missing and null counters and nested values; text with quotes,
backslashes, control characters, emoji and right-to-left script.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import pg_render
from services.api.views import execution_view, job_view
from shared.db.schema import CronJob, Execution
from shared.ids import new_id
from tests.support import factories

ON_SECOND = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)

AWKWARD: list[dict[str, Any]] = [
    {"started_at": ON_SECOND, "completed_at": ON_SECOND + timedelta(microseconds=500)},
    {
        "started_at": ON_SECOND + timedelta(microseconds=999_999),
        "completed_at": ON_SECOND + timedelta(milliseconds=1, microseconds=1),
        "duration": 2**40,
    },
    {"window_start": datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)},
    {
        "window_start": datetime(1000, 1, 1, tzinfo=UTC),
        "scheduled_for": datetime.max.replace(tzinfo=UTC, microsecond=0),
    },
    {
        "status": "MISSED",
        "trigger": "CATCHUP",
        "missed_count": 17,
        "first_missed_at": ON_SECOND - timedelta(days=3, microseconds=1),
        "last_missed_at": ON_SECOND - timedelta(hours=1),
    },
    {"status": "MISSED", "missed_count": None},
    {"metadata_": {"githubApiCalls": 3.9, "aiTokens": {"prompt": "12", "completion": 4}}},
    {"metadata_": {"aiTokens": None, "dbQueries": -2.5, "extra": {"nested": [1, "ü", None]}}},
    {"metadata_": {"aiTokens": {}, "generationMs": 10**15, "note": 'a "quoted" \\ value'}},
    {
        "status": "FAILED",
        "error_message": 'quote " backslash \\ tab \t newline \n bell \x07 🚀 مرحبا',
        "error_stack": "Traceback:\r\n  ' ; DROP TABLE cron_executions; --",
        "triggered_by": "user_\u202eRTL",
    },
    {"status": "SKIPPED", "skip_reason": '3 commits, fewer than the 5 required; "q" \\ ✗'},
]


def _execution(job_id: str, project_id: str, user_id: str, n: int, **fields: Any) -> Execution:
    values: dict[str, Any] = {
        "id": f"exec_{n:04d}_{new_id('x')[-6:]}",
        "job_id": job_id,
        "project_id": project_id,
        "user_id": user_id,
        "scheduled_for": ON_SECOND + timedelta(seconds=n),
        "trigger": "SCHEDULE",
        "status": "COMPLETED",
        "attempt": 1,
        "window_end": ON_SECOND,
        "items_processed": n,
        "items_success": n,
        "items_failed": 0,
        "metadata_": {},
        "created_at": ON_SECOND + timedelta(seconds=n, microseconds=n * 1001),
        "updated_at": ON_SECOND,
        **fields,
    }
    return Execution(**values)


@pytest.mark.postgresql_only(reason="PostgreSQL's rendering is what is checked")
async def test_rendered_view_equals_python_view(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, _ = await factories.user_with_token(own_sessions)
    project = await factories.project(own_sessions, user_id)
    job = await factories.job(own_sessions, project, next_run_at=None)
    async with own_sessions() as session, session.begin():
        for n, fields in enumerate(AWKWARD):
            session.add(_execution(job.id, project.id, user_id, n, **fields))

    async with own_sessions() as session:
        executions = (await session.scalars(select(Execution).order_by(Execution.id))).all()
        rendered = dict(
            (
                await session.execute(
                    select(Execution.id, pg_render.execution_json()).order_by(Execution.id)
                )
            ).all()
        )

    assert len(executions) == len(AWKWARD)
    for execution in executions:
        expected = execution_view(execution)
        assert json.loads(rendered[execution.id]) == expected, execution.id


AWKWARD_JOBS: list[dict[str, Any]] = [
    {"next_run_at": None, "is_enabled": False, "disabled_reason": 'bad "schedule" \\ ✗'},
    {
        "next_run_at": ON_SECOND + timedelta(microseconds=1),
        "last_run_at": ON_SECOND,
        "description": "línea\nنص 🚀 \t' OR 1=1 --",
        "time_config": {"hour": 2, "minute": 30, "timezone": "America/New_York"},
    },
    {"time_config": {"hour": 9, "minute": 0}, "description": None, "jitter": 3600},
    {
        "frequency": "CUSTOM",
        "schedule": "*/5 * * * *",
        "time_config": {"timezone": "Asia/Kolkata", "days": [1, 3], "note": None},
        "overlap_policy": "BUFFER_ONE",
        "max_retries": 0,
    },
    {
        "conditions": {
            "minCommits": 5,
            "minTotal": None,
            "includePaths": ["src/**", 'q"uo\\te/*.py', "ünï/🚀/**"],
            "excludeLabels": ["chore", "dépendances"],
            "ignoreAuthors": ["dependabot[bot]"],
            "accumulate": True,
        }
    },
    {"conditions": {}},
    # Stored as JSON null (the ORM writes None so), where jobs left alone hold SQL NULL.
    {"conditions": None},
]


@pytest.mark.postgresql_only(reason="PostgreSQL's rendering is what is checked")
async def test_rendered_job_view_equals_python_view(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, _ = await factories.user_with_token(own_sessions)
    project = await factories.project(own_sessions, user_id)
    for fields in AWKWARD_JOBS:
        await factories.job(
            own_sessions,
            project,
            **{"next_run_at": ON_SECOND + timedelta(milliseconds=999), **fields},
        )

    async with own_sessions() as session:
        jobs = (await session.scalars(select(CronJob))).all()
        rendered = dict((await session.execute(select(CronJob.id, pg_render.job_json()))).all())

    assert len(jobs) == len(AWKWARD_JOBS)
    for job in jobs:
        assert json.loads(rendered[job.id]) == job_view(job), job.id


def test_statistics_json_puts_recent_views_last() -> None:
    recent = [b'{"id":"a"}', b'{"id":"b"}']
    body = pg_render.statistics_json({"totalRuns": 2, "recentExecutions": ["ignored"]}, recent)
    assert json.loads(body) == {"totalRuns": 2, "recentExecutions": [{"id": "a"}, {"id": "b"}]}
    assert list(json.loads(body)) == ["totalRuns", "recentExecutions"]


def test_page_body_is_the_list_envelope() -> None:
    body = pg_render.page_body([b'{"id":"a"}'], next_cursor=None)
    assert json.loads(body) == {
        "success": True,
        "data": [{"id": "a"}],
        "count": 1,
        "nextCursor": None,
    }
    assert json.loads(pg_render.page_body([], next_cursor="c", statistics={"n": 0}))[
        "statistics"
    ] == {"n": 0, "recentExecutions": []}
