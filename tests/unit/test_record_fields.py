"""The declared fields of the job and execution views against the schema and the API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.api import fields
from services.api.fields import Field, RecordFields, Shown
from services.api.views import execution_row_view, job_row_view
from shared.db.types import UTCDateTime


@pytest.mark.parametrize("record", [fields.JOB, fields.EXECUTION], ids=["job", "execution"])
def test_every_field_reads_a_column_of_its_model_once(record: RecordFields) -> None:
    assert len(set(record.attributes)) == len(record.attributes)
    assert len({field.key for field in record.fields}) == len(record.fields)
    for field, column in zip(record.fields, record.columns, strict=True):
        # An instant is shown only from a timestamp column, and a timestamp only as one.
        is_instant = isinstance(column.type, UTCDateTime)
        assert (field.shown is Shown.INSTANT) == is_instant, field.attribute
        if field.when is not None:
            assert field.when[0] in record.attributes


def test_keys_are_the_api_names() -> None:
    assert Field("metadata_").key == "metadata"
    assert Field("items_processed").key == "itemsProcessed"
    assert [f.key for f in fields.JOB.fields][:8] == [
        "id",
        "projectId",
        "type",
        "name",
        "description",
        "frequency",
        "timeConfig",
        "schedule",
    ]


def _row(record: RecordFields, **values: object) -> list[object]:
    return [values.get(name) for name in record.attributes]


def test_missed_run_fields_only_on_missed_executions() -> None:
    at = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    common = {"id": "exec_1", "metadata_": {}, "missed_count": 3, "first_missed_at": at}
    missed = execution_row_view(_row(fields.EXECUTION, status="MISSED", **common))
    skipped = execution_row_view(_row(fields.EXECUTION, status="SKIPPED", **common))
    assert missed["missedCount"] == 3
    assert missed["firstMissedAt"] == "2026-03-29T01:30:00Z"
    assert missed["lastMissedAt"] is None
    assert "missedCount" not in skipped and "firstMissedAt" not in skipped
    assert list(missed)[-3:] == ["missedCount", "firstMissedAt", "lastMissedAt"]
    assert missed["metadata"]["dbQueries"] == 0


def test_a_job_row_shows_its_zone_and_instants() -> None:
    view = job_row_view(
        _row(
            fields.JOB,
            id="job_1",
            time_config='{"hour": 9}',
            is_enabled=True,
            next_run_at=datetime(2026, 12, 7, 8, 0, 0, 250_000, tzinfo=UTC),
        )
    )
    assert view["timeConfig"] == {"timezone": "UTC", "hour": 9}
    assert view["nextRunAt"] == "2026-12-07T08:00:00.250Z"
    assert view["isEnabled"] is True
    assert view["lastRunAt"] is None
