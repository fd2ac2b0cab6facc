"""An execution's trace: the API returns its id and, with HERALD_TRACE_URL_TEMPLATE, its link;
the console's run page shows both (and neither for a run without a trace)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.lifecycle import cancel
from services.api.triggers import trigger_manually
from shared import tracing
from shared.db.schema import CronJob, Execution, OutboxMessage, Project
from shared.settings import Settings
from tests.support import factories
from tests.support.api import api_client

PUBLIC = "http://herald.test"
TEMPLATE = 'http://127.0.0.1:3000/explore?left={"queries":[{"query":"{trace_id}"}]}'
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


async def client_with(
    database_url: str, amqp_url: str, tmp_path: Path, template: str
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        amqp_url=amqp_url,
        local_repos_root=str(tmp_path),
        trace_url_template=template,
    )
    async for client in api_client(settings, base_url=PUBLIC):
        yield client


@pytest.fixture
async def api(
    database_url: str, fresh_amqp_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_with(database_url, fresh_amqp_url, tmp_path, TEMPLATE):
        yield client


async def run_with_trace(
    sessions: async_sessionmaker[AsyncSession], trace_id: str | None
) -> tuple[str, str]:
    """A user's token and one execution of theirs, recorded with `trace_id`."""
    user_id, token = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")
    job = await factories.job(sessions, project, next_run_at=None)
    async with sessions() as session, session.begin():
        job_row = await session.get(CronJob, job.id)
        project_row = await session.get(Project, project.id)
        assert job_row is not None and project_row is not None
        execution = await trigger_manually(
            session, job=job_row, project=project_row, user_id=user_id
        )
    async with sessions() as session, session.begin():
        await session.execute(
            update(Execution).where(Execution.id == execution.id).values(trace_id=trace_id)
        )
    return token, execution.id


async def console_page(api: httpx.AsyncClient, token: str, execution_id: str) -> str:
    signed_in = await api.post(
        "/console/signin",
        data={"token": token, "next": "/console/jobs"},
        headers={"Origin": PUBLIC},
    )
    assert signed_in.status_code == 303, signed_in.text
    page = await api.get(f"/console/executions/{execution_id}")
    assert page.status_code == 200, page.text
    return page.text


async def test_a_traced_run_names_and_links_its_trace(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token, execution_id = await run_with_trace(sessions, TRACE)

    answer = await api.get(
        f"/api/cron/executions/{execution_id}", headers={"Authorization": f"Bearer {token}"}
    )

    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    link = TEMPLATE.replace("{trace_id}", TRACE)
    assert (data["traceId"], data["traceUrl"]) == (TRACE, link)
    listed = await api.get("/api/cron/executions", headers={"Authorization": f"Bearer {token}"})
    assert [row["traceId"] for row in listed.json()["data"]] == [TRACE]
    page = await console_page(api, token, execution_id)
    escaped = link.replace("&", "&amp;").replace('"', "&#34;")
    assert f'<a href="{escaped}"' in page
    assert f"<code>{TRACE}</code>" in page


async def test_a_run_without_a_trace_shows_none(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token, execution_id = await run_with_trace(sessions, None)

    data = (
        await api.get(
            f"/api/cron/executions/{execution_id}", headers={"Authorization": f"Bearer {token}"}
        )
    ).json()["data"]

    assert (data["traceId"], data["traceUrl"]) == (None, None)
    assert 'id="trace"' not in await console_page(api, token, execution_id)


async def test_without_a_template_the_id_is_shown_unlinked(
    database_url: str,
    fresh_amqp_url: str,
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    token, execution_id = await run_with_trace(sessions, TRACE)
    async for api in client_with(database_url, fresh_amqp_url, tmp_path, ""):
        data = (
            await api.get(
                f"/api/cron/executions/{execution_id}",
                headers={"Authorization": f"Bearer {token}"},
            )
        ).json()["data"]
        assert (data["traceId"], data["traceUrl"]) == (TRACE, None)
        page = await console_page(api, token, execution_id)
        assert f'<dd id="trace"><code>{TRACE}</code></dd>' in page


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider, "api")
    yield exporter
    tracing.shutdown()


async def test_a_run_records_its_request_s_trace_and_a_cancel_ends_it_there(
    own_sessions: async_sessionmaker[AsyncSession], spans: InMemorySpanExporter
) -> None:
    sessions = own_sessions  # a database of its own: every outbox row read is this run's
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")
    job = await factories.job(sessions, project, next_run_at=None)
    with tracing.internal("POST /api/cron/trigger") as request:
        assert request is not None
        async with sessions() as session, session.begin():
            job_row = await session.get(CronJob, job.id)
            project_row = await session.get(Project, project.id)
            assert job_row is not None and project_row is not None
            execution = await trigger_manually(
                session, job=job_row, project=project_row, user_id=user_id
            )
    trace_id = format(request.get_span_context().trace_id, "032x")
    assert execution.trace_id == trace_id

    with tracing.internal("POST /api/cron/executions/{id}/cancel") as cancelling:
        assert cancelling is not None
        async with sessions() as session, session.begin():
            stored = await session.get(Execution, execution.id)
            assert stored is not None
            await cancel(session, stored, now=datetime.now(UTC), public_url=PUBLIC, by=user_id)

    async with sessions() as session:
        rows = {
            row.routing_key: row.traceparent
            for row in (await session.scalars(select(OutboxMessage))).all()
        }
    traces = {key: (value or "").split("-")[1] for key, value in rows.items()}
    # The run's job.due and its end are in its trace; the cancellation's fan-out is the
    # cancel request's.
    assert traces["job.due"] == traces["execution.finished"] == trace_id
    assert traces["execution.cancelled"] == format(cancelling.get_span_context().trace_id, "032x")
