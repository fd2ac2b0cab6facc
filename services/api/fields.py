"""The fields of a job's and an execution's view, declared once.

Each view is a table of fields: the attribute it reads, how its value is shown, and when it
is shown at all. `views` builds a view from an ORM object or a row in Python; `pg_render`
builds the same view as SQL; the hot lists select `columns` in the table's order, so a row
and its view can never disagree on where a value is.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column

from shared.db.schema import CronJob, Execution


class Shown(enum.Enum):
    """How a stored value appears in a view."""

    TEXT = "text"  # as stored: a string, or null
    NUMBER = "number"  # as stored: a number or a boolean, or null
    INSTANT = "instant"  # an ISO 8601 UTC instant ending in `Z` (`views.iso`)
    TIME_CONFIG = "time_config"  # the stored object, its `timezone` defaulting to UTC
    METADATA = "metadata"  # the stored object with its counters present and whole
    OBJECT = "object"  # the stored JSON value as it is, or null


@dataclass(frozen=True)
class Field:
    attribute: str
    shown: Shown = Shown.TEXT
    # Shown only when the record's `when[0]` attribute equals `when[1]`.
    when: tuple[str, str] | None = None

    @property
    def key(self) -> str:
        """The field's name in the API: the attribute in camelCase (`metadata_` is `metadata`)."""
        first, *rest = self.attribute.rstrip("_").split("_")
        return first + "".join(word.capitalize() for word in rest)


@dataclass(frozen=True)
class RecordFields:
    model: type[CronJob] | type[Execution]
    fields: tuple[Field, ...]

    @functools.cached_property
    def columns(self) -> tuple[Column[Any], ...]:
        """The table's columns of the fields, in their order."""
        mapped = self.model.__mapper__.columns
        return tuple(mapped[field.attribute] for field in self.fields)

    @functools.cached_property
    def attributes(self) -> tuple[str, ...]:
        return tuple(field.attribute for field in self.fields)


_T, _N, _I = Shown.TEXT, Shown.NUMBER, Shown.INSTANT
_MISSED = ("status", "MISSED")

JOB = RecordFields(
    CronJob,
    (
        Field("id"),
        Field("project_id"),
        Field("type"),
        Field("name"),
        Field("description"),
        Field("frequency"),
        Field("time_config", Shown.TIME_CONFIG),
        Field("schedule"),
        Field("is_enabled", _N),
        Field("max_retries", _N),
        Field("retry_delay", _N),
        Field("timeout_seconds", _N),
        Field("overlap_policy"),
        Field("catchup_window", _N),
        Field("jitter", _N),
        Field("conditions", Shown.OBJECT),
        Field("webhook_triggers", Shown.OBJECT),
        Field("depends_on", Shown.OBJECT),
        # Where a WEBHOOK job delivers (host, and port when not the usual): its URL is secret.
        Field("webhook_host"),
        Field("next_run_at", _I),
        Field("last_run_at", _I),
        Field("disabled_reason"),
        Field("created_at", _I),
        Field("updated_at", _I),
    ),
)

EXECUTION = RecordFields(
    Execution,
    (
        Field("id"),
        Field("job_id"),
        Field("project_id"),
        Field("scheduled_for", _I),
        Field("trigger"),
        Field("triggered_by"),
        Field("upstream_execution_id"),
        Field("status"),
        Field("attempt", _N),
        Field("window_start", _I),
        Field("window_end", _I),
        Field("started_at", _I),
        Field("completed_at", _I),
        Field("duration", _N),
        Field("items_processed", _N),
        Field("items_success", _N),
        Field("items_failed", _N),
        Field("error_message"),
        Field("error_stack"),
        Field("skip_reason"),
        Field("trace_id"),
        Field("metadata_", Shown.METADATA),
        Field("created_at", _I),
        Field("missed_count", _N, when=_MISSED),
        Field("first_missed_at", _I, when=_MISSED),
        Field("last_missed_at", _I, when=_MISSED),
    ),
)
