"""A job's schedule problems: all named at once, joined with the body's other refusals."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from services.api.console.client import ApiError
from services.api.requests import CreateJob, PreviewSchedule, UpdateJob
from services.api.schedules import schedule_refusals


def _refusals(model: type[BaseModel], body: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields and messages a body is refused with, as the API's 422 names them."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return [
        (".".join(str(part) for part in error["loc"]), error["msg"])
        for error in caught.value.errors()
    ]


def test_every_schedule_field_of_a_preset_is_named() -> None:
    assert schedule_refusals(
        frequency="WEEKLY", time_config={"hour": 25, "timezone": "Mars/Base"}, schedule=None
    ) == [
        {"field": "timeConfig.hour", "message": "hour 25 out of range 0-23"},
        {"field": "timeConfig.minute", "message": "minute required for WEEKLY"},
        {"field": "timeConfig.dayOfWeek", "message": "dayOfWeek required for WEEKLY"},
        {"field": "timeConfig.timezone", "message": "unknown time zone 'Mars/Base'"},
    ]


@pytest.mark.parametrize(
    ("schedule", "schedule_messages"),
    [
        (None, ["schedule required for CUSTOM"]),
        ("61 25 * * *", ["minute 61 out of range 0-59", "hour 25 out of range 0-23"]),
        (
            "@sometimes",
            [
                "unknown macro '@sometimes'; herald knows @yearly, @annually, @monthly,"
                " @weekly, @daily, @midnight, @hourly"
            ],
        ),
    ],
)
def test_a_custom_schedule_and_its_zone_are_named_together(
    schedule: str | None, schedule_messages: list[str]
) -> None:
    refusals = schedule_refusals(
        frequency="CUSTOM", time_config={"timezone": "Mars/Base"}, schedule=schedule
    )
    assert refusals == [
        *({"field": "schedule", "message": message} for message in schedule_messages),
        {"field": "timeConfig.timezone", "message": "unknown time zone 'Mars/Base'"},
    ]


def test_a_valid_schedule_has_no_refusals() -> None:
    assert schedule_refusals(frequency="CUSTOM", time_config={}, schedule="@daily") == []
    assert (
        schedule_refusals(frequency="DAILY", time_config={"hour": 9, "minute": 0}, schedule=None)
        == []
    )


def test_a_new_job_is_refused_for_its_other_fields_and_its_schedule_at_once() -> None:
    body = {
        "projectId": "prj_1",
        "type": "BACKUP",
        "frequency": "WEEKLY",
        "timeConfig": {"hour": 9, "timezone": "Mars/Base"},
        "maxRetries": 11,
    }
    assert _refusals(CreateJob, body) == [
        ("maxRetries", "Input should be less than or equal to 10"),
        (
            "type",
            "Input should be 'GENERATE_CONTENT', 'PUBLISH_CONTENT', 'SYNC_GITHUB', "
            "'ANALYTICS' or 'WEBHOOK'",
        ),
        ("name", "Field required"),
        ("timeConfig.minute", "minute required for WEEKLY"),
        ("timeConfig.dayOfWeek", "dayOfWeek required for WEEKLY"),
        ("timeConfig.timezone", "unknown time zone 'Mars/Base'"),
    ]


def test_a_field_refused_already_keeps_its_own_refusal() -> None:
    # pydantic's word on a field stands; the schedule adds only what it alone sees.
    body = {
        "projectId": "prj_1",
        "frequency": "HOURLY",
        "timeConfig": {"hour": "9", "minute": 60},
        "schedule": ["not", "text"],
    }
    assert _refusals(CreateJob, body) == [
        ("name", "Field required"),
        ("frequency", "Input should be 'DAILY', 'WEEKLY', 'MONTHLY' or 'CUSTOM'"),
        ("timeConfig.hour", "Input should be a valid integer"),
        ("schedule", "Input should be a valid string"),
        ("timeConfig.minute", "minute 60 out of range 0-59"),
    ]
    not_an_object = {"projectId": "prj_1", "name": "n", "frequency": "DAILY", "timeConfig": 9}
    assert [field for field, _ in _refusals(CreateJob, not_an_object)] == ["timeConfig"]


def test_a_preview_is_refused_for_its_count_and_schedule_at_once() -> None:
    body = {"frequency": "CUSTOM", "schedule": "* * 0 * *", "count": 0}
    assert _refusals(PreviewSchedule, body) == [
        ("count", "Input should be greater than or equal to 1"),
        ("schedule", "day-of-month 0 out of range 1-31"),
    ]


def test_an_update_joins_only_a_schedule_it_gives_whole() -> None:
    whole = {"jobId": "cron_1", "name": "", "frequency": "WEEKLY", "timeConfig": {"hour": 9}}
    assert _refusals(UpdateJob, whole) == [
        ("name", "String should have at least 1 character"),
        ("timeConfig.minute", "minute required for WEEKLY"),
        ("timeConfig.dayOfWeek", "dayOfWeek required for WEEKLY"),
    ]
    # The stored job's frequency (or cron expression) would decide: the route judges it.
    for partial in (
        {"jobId": "cron_1", "name": "", "timeConfig": {"hour": 9}},
        {"jobId": "cron_1", "name": "", "frequency": "CUSTOM", "timeConfig": {}},
        {"jobId": "cron_1", "name": "", "frequency": "WEEKLY"},
    ):
        assert [field for field, _ in _refusals(UpdateJob, partial)] == ["name"]


def test_the_console_shows_every_message_of_a_field() -> None:
    refusal = ApiError(
        422,
        "refused",
        [
            {"field": "schedule", "message": "minute 61 out of range 0-59"},
            {"field": "timeConfig.timezone", "message": "unknown time zone 'Mars/Base'"},
            {"field": "schedule", "message": "hour 25 out of range 0-23"},
        ],
    )
    assert refusal.field_errors() == {
        "schedule": "minute 61 out of range 0-59; hour 25 out of range 0-23",
        "timeConfig.timezone": "unknown time zone 'Mars/Base'",
    }
