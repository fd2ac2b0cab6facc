"""What an operator's terminal says about runs: fired, completed, failed, once each, at INFO."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from services.api.lifecycle import apply_event
from services.scheduler.claims import fire_due
from shared.events import StepFailed, StepStarted
from shared.run_log import PER_RUN_LINES
from tests.support import factories
from tests.support.lifecycle import PUBLIC, scanned, started_execution


def lines(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


async def test_a_fired_run_logs_its_job_execution_trigger_and_slot_at_info(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, _ = await factories.user_with_token(own_sessions)
    project = await factories.project(own_sessions, user_id, local_repo_path="/srv/repo")
    slot = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    job = await factories.job(own_sessions, project, next_run_at=slot)
    with capture_logs() as logs:
        await fire_due(own_sessions, now=slot + timedelta(seconds=1), batch=100)
        await fire_due(own_sessions, now=slot + timedelta(seconds=2), batch=100)
    [fired] = lines(logs, "run fired")
    assert fired["log_level"] == "info"
    assert fired["job_id"] == job.id
    assert fired["job_name"] == job.name
    assert fired["execution_id"].startswith("exec")
    assert fired["trigger"] == "SCHEDULE"
    assert fired["scheduled_for"] == slot.isoformat()


async def test_a_large_batch_logs_one_summary_at_info_and_each_run_at_debug(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, _ = await factories.user_with_token(own_sessions)
    project = await factories.project(own_sessions, user_id, local_repo_path="/srv/repo")
    slot = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    many = PER_RUN_LINES + 2
    for _ in range(many):
        await factories.job(own_sessions, project, next_run_at=slot)
    with capture_logs() as logs:
        await fire_due(own_sessions, now=slot + timedelta(seconds=1), batch=100)
    [summary] = [entry for entry in logs if entry["log_level"] == "info"]
    assert summary["event"] == "runs fired"
    assert summary["runs"] == many
    assert summary["outcomes"] == {"run fired": many}
    each = lines(logs, "run fired")
    assert len(each) == many
    assert {entry["log_level"] for entry in each} == {"debug"}


async def test_a_completed_run_logs_status_duration_and_items_once_at_info(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    execution, envelope = await started_execution(sessions)
    events = [StepStarted(**envelope, step="scan"), scanned(envelope, commits=0)]
    with capture_logs() as logs:
        for event in events + events:  # a redelivery ends nothing twice
            await apply_event(sessions, event, public_url=PUBLIC)
    [completed] = lines(logs, "run completed")
    assert completed["log_level"] == "info"
    assert completed["execution_id"] == execution.id
    assert completed["job_id"] == envelope["job_id"]
    assert completed["status"] == "COMPLETED"
    assert completed["trigger"] == "MANUAL"
    assert isinstance(completed["duration_ms"], int)
    assert (completed["items_processed"], completed["items_failed"]) == (0, 0)
    assert "reason" not in completed


async def test_a_failed_run_logs_its_reason_once_at_info(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    execution, envelope = await started_execution(sessions)
    failed = StepFailed(
        **envelope, step="scan", retriable=False, final=True, error="GitHub 404: Not Found"
    )
    with capture_logs() as logs:
        for event in (StepStarted(**envelope, step="scan"), failed, failed):
            await apply_event(sessions, event, public_url=PUBLIC)
    [line] = lines(logs, "run failed")
    assert line["log_level"] == "info"
    assert line["execution_id"] == execution.id
    assert line["status"] == "FAILED"
    assert line["reason"] == "GitHub 404: Not Found"
