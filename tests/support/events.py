"""Events as tests build them: valid, small, and overridable field by field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.events import JobDue, Repository, Trigger


def job_due(**overrides: object) -> JobDue:
    """A manual run's `job.due` for a local repository, due now."""
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "execution_id": "exec_1",
        "job_id": "cron_1",
        "project_id": "prj_1",
        "scheduled_for": now,
        "trigger": Trigger.MANUAL,
        "window_start": None,
        "window_end": now,
        "repository": Repository(local_path="demo"),
        "platforms": ["x"],
        "deadline": now + timedelta(minutes=15),
    }
    values.update(overrides)
    return JobDue.model_validate(values)
