"""Schedule previews: the next runs of a saved job or an unsaved spec, with DST notes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query

from services.api.auth import UserDep
from services.api.deps import SessionDep
from services.api.problems import invalid_fields
from services.api.records import job_of
from services.api.requests import PreviewSchedule
from services.api.schedules import refusals_of, resolve_schedule
from shared.scheduling import (
    FOLD_FIELD,
    GAP_FIELD,
    ScheduleError,
    fixed_local_time,
    policy_of,
    preview_preset_runs,
    preview_runs,
)

router = APIRouter(prefix="/api/cron", tags=["schedules"])

MAX_PREVIEW = 100


def _preview(
    *,
    frequency: str,
    time_config: dict[str, Any],
    schedule: str | None,
    count: int,
    user_timezone: str,
    now: datetime,
) -> dict[str, Any]:
    expression, _ = resolve_schedule(
        frequency=frequency, time_config=time_config, schedule=schedule, now=now
    )
    timezone = str(time_config.get("timezone") or "UTC")
    try:
        if frequency == "CUSTOM":
            rows = preview_runs(
                expression,
                timezone,
                now,
                count,
                gap_policy=time_config.get(GAP_FIELD),
                fold_policy=time_config.get(FOLD_FIELD),
            )
        else:
            rows = preview_preset_runs(frequency, time_config, now, count)
    except ScheduleError as exc:
        raise invalid_fields(refusals_of(exc, frequency)) from None
    viewer = ZoneInfo(user_timezone)
    runs = [
        {
            "local": row["local"],
            "utc": row["utc"],
            "userLocal": datetime.fromisoformat(str(row["local"])).astimezone(viewer).isoformat(),
            "note": row["note"],
        }
        for row in rows
    ]
    # Valid by now (resolve_schedule judged it): the policy the runs follow, when it applies.
    fixed = bool(fixed_local_time(frequency, expression))
    policy = policy_of(time_config)
    return {
        "schedule": expression,
        "timezone": timezone,
        "userTimezone": user_timezone,
        "fixedLocalTime": fixed,
        GAP_FIELD: policy.gap if fixed else None,
        FOLD_FIELD: policy.fold if fixed else None,
        "runs": runs,
    }


@router.post("/schedule/preview", operation_id="previewSchedule")
async def preview_unsaved(body: PreviewSchedule, user: UserDep) -> dict[str, Any]:
    """The next runs of a schedule that is not saved: the fields a job is created with.

    A run's `note` says what daylight saving did to it: moved out of a gap, merged in a
    fold (at the first occurrence, or the second under `foldPolicy` SECOND), and before it
    the runs `gapPolicy` SKIP dropped ("skipped: 02:30 does not exist on 2026-03-29
    (gapPolicy SKIP)"). `fixedLocalTime` tells whether the schedule is at a fixed local
    time, so whether `gapPolicy` and `foldPolicy` apply (null when they do not).
    """
    data = _preview(
        frequency=body.frequency,
        time_config=body.time_config.stored(),
        schedule=body.schedule,
        count=body.count,
        user_timezone=user.timezone or "UTC",
        now=datetime.now(UTC),
    )
    return {"success": True, "data": data, "count": len(data["runs"])}


@router.get("/schedules/{job_id}/preview", operation_id="previewSavedSchedule")
async def preview_saved(
    job_id: Annotated[str, Path(max_length=40)],
    user: UserDep,
    session: SessionDep,
    count: Annotated[int, Query(ge=1, le=MAX_PREVIEW, description="Runs to show.")] = 10,
) -> dict[str, Any]:
    """The next runs of a saved job, in its zone, the user's zone and UTC, with DST notes as
    for the unsaved preview."""
    job = await job_of(session, user.id, job_id)
    data = _preview(
        frequency=job.frequency,
        time_config=job.time_config,
        schedule=job.schedule if job.frequency == "CUSTOM" else None,
        count=count,
        user_timezone=user.timezone or "UTC",
        now=datetime.now(UTC),
    )
    return {"success": True, "data": data, "count": len(data["runs"])}
