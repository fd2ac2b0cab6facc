"""CUSTOM jobs in the forms other schedulers use: stored as given, previewed, or refused."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.api import new_job, new_project, problem, signed_in


def last_weekday(day: date) -> date:
    last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    while last.weekday() >= calendar.SATURDAY:
        last -= timedelta(days=1)
    return last


async def test_calendar_forms_round_trip_through_create_and_preview(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    zone = {"timezone": "Europe/Berlin"}

    job = await new_job(
        api, headers, project_id, frequency="CUSTOM", schedule=" 0  9 lw * * ", timeConfig=zone
    )
    assert job["schedule"] == "0 9 lw * *"
    saved = await api.get(
        f"/api/cron/schedules/{job['id']}/preview", headers=headers, params={"count": 12}
    )
    assert saved.status_code == 200, saved.text
    data = saved.json()["data"]
    assert data["schedule"] == "0 9 lw * *"
    assert data["runs"][0]["utc"] == job["nextRunAt"].replace(".000Z", "Z")
    for run in data["runs"]:
        local = datetime.fromisoformat(run["local"])
        assert (local.hour, local.minute) == (9, 0)
        assert local.date() == last_weekday(local.date())
        assert run["note"] is None

    # The last Sunday of March is Berlin's spring-forward day: 02:30 runs at 03:00 CEST.
    unsaved = await api.post(
        "/api/cron/schedule/preview",
        headers=headers,
        json={"frequency": "CUSTOM", "schedule": "30 2 * 3 0L", "timeConfig": zone, "count": 3},
    )
    assert unsaved.status_code == 200, unsaved.text
    for run in unsaved.json()["data"]["runs"]:
        local = datetime.fromisoformat(run["local"])
        assert local.isoformat().endswith("T03:00:00+02:00")
        assert local.weekday() == calendar.SUNDAY and local.month == 3 and local.day > 31 - 7
        assert run["note"].startswith("moved: 02:30 does not exist")

    second_monday = await new_job(
        api, headers, project_id, frequency="CUSTOM", schedule="0 12 * * MON#2"
    )
    assert second_monday["schedule"] == "0 12 * * MON#2"
    next_run = datetime.fromisoformat(second_monday["nextRunAt"].replace("Z", "+00:00"))
    assert next_run.weekday() == calendar.MONDAY and 8 <= next_run.day <= 14

    weekly = await new_job(api, headers, project_id, frequency="CUSTOM", schedule="@weekly")
    assert weekly["schedule"] == "@weekly"
    next_run = datetime.fromisoformat(weekly["nextRunAt"].replace("Z", "+00:00"))
    assert next_run.weekday() == calendar.SUNDAY
    assert (next_run.hour, next_run.minute) == (0, 0)


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("@reboot", "@reboot is not supported"),
        ("0 30 9 * * MON-FRI", "a seconds or year field is not supported"),
        ("0 0 30W 2 *", "never fires"),
        ("0 0 * * 5#6", "the week after '#' must be 1-5"),
    ],
)
async def test_unsupported_forms_are_422_problems_naming_the_schedule(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], schedule: str, words: str
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    spec = {"frequency": "CUSTOM", "schedule": schedule}
    created = await api.post(
        "/api/cron/schedule", headers=headers, json={"projectId": project_id, "name": "j", **spec}
    )
    assert words in problem(created, 422, "schedule")["detail"]
    previewed = await api.post("/api/cron/schedule/preview", headers=headers, json=spec)
    assert words in problem(previewed, 422, "schedule")["detail"]
