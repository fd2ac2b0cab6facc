"""A run's line at INFO in a small batch; a summary at INFO and each run at DEBUG in a big one."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from structlog.testing import capture_logs

from shared.run_log import PER_RUN_LINES, REASON_CHARS, ended_line, fired_line, log_runs

SLOT = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
log = structlog.get_logger(__name__)


def fired(n: int) -> tuple[str, dict[str, object]]:
    return fired_line(
        "run fired",
        execution_id=f"exec_{n}",
        job_id=f"job_{n}",
        job_name="daily",
        trigger="SCHEDULE",
        scheduled_for=SLOT,
    )


def test_each_run_of_a_small_batch_logs_at_info() -> None:
    with capture_logs() as logs:
        log_runs(log, "runs fired", [fired(n) for n in range(PER_RUN_LINES)])
    assert [(entry["event"], entry["log_level"]) for entry in logs] == [
        ("run fired", "info")
    ] * PER_RUN_LINES
    assert [entry["execution_id"] for entry in logs] == [f"exec_{n}" for n in range(PER_RUN_LINES)]


def test_a_big_batch_logs_its_counts_at_info_and_each_run_at_debug() -> None:
    batch = [fired(n) for n in range(PER_RUN_LINES + 1)]
    batch.append(
        ended_line(
            "SKIPPED",
            execution_id="exec_s",
            job_id="job_s",
            job_name="daily",
            trigger="SCHEDULE",
            scheduled_for=SLOT,
            duration_ms=None,
            items_processed=0,
            items_success=0,
            items_failed=0,
            reason="skipped: the previous run has not finished",
        )
    )
    with capture_logs() as logs:
        log_runs(log, "runs fired", batch)
    info = [entry for entry in logs if entry["log_level"] == "info"]
    assert info == [
        {
            "event": "runs fired",
            "log_level": "info",
            "runs": PER_RUN_LINES + 2,
            "outcomes": {"run fired": PER_RUN_LINES + 1, "run skipped": 1},
        }
    ]
    assert len([entry for entry in logs if entry["log_level"] == "debug"]) == len(batch)


def test_a_long_reason_is_cut_in_the_line() -> None:
    event, fields = ended_line(
        "FAILED",
        execution_id="exec_f",
        job_id="job_f",
        job_name="daily",
        trigger="MANUAL",
        scheduled_for=SLOT,
        duration_ms=1500,
        items_processed=2,
        items_success=1,
        items_failed=1,
        reason="x" * (REASON_CHARS * 2),
    )
    assert event == "run failed"
    assert fields["reason"] == "x" * REASON_CHARS
    assert (fields["status"], fields["duration_ms"]) == ("FAILED", 1500)
