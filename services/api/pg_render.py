"""Job and execution views rendered as JSON text by PostgreSQL, for the hot lists.

Building a page in Python costs more than the query: a datetime decoded and formatted per
instant (four to six a row), stored JSON decoded and re-encoded, the whole page encoded
again. PostgreSQL renders the same view in C for a fraction of that, so on PostgreSQL the
lists select each row's view as JSON text and the API splices the texts into the envelope
(`page_body`). The views are those `views.job_row_view` and `views.execution_row_view`
build, value for value (`tests/integration/test_pg_render.py` compares them over awkward
rows); SQLite, for the standalone mode, keeps the Python path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic_core import to_json
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Numeric,
    String,
    case,
    cast,
    func,
    literal_column,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from services.api.views import hot_columns
from shared.db.schema import CronJob, Execution

_COLUMNS = Execution.__table__.c

# `views.iso`: UTC, milliseconds (truncated) only when the instant has a fraction of a second.
_WHOLE_SECONDS: ColumnElement[str] = literal_column("""'YYYY-MM-DD"T"HH24:MI:SS"Z"'""")
_WITH_MILLISECONDS: ColumnElement[str] = literal_column("""'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'""")


def instant(column: ColumnElement[Any]) -> ColumnElement[str]:
    """`views.iso` of a timestamptz column, as SQL (NULL stays NULL)."""
    utc = func.timezone(literal_column("'UTC'"), column)
    whole = func.date_trunc(literal_column("'second'"), column) == column
    return case(
        (whole, func.to_char(utc, _WHOLE_SECONDS)),
        else_=func.to_char(utc, _WITH_MILLISECONDS),
    )


def _text(value: str) -> ColumnElement[str]:
    # Inlined, not bound: constants of the statement, sent once with its text.
    assert "'" not in value
    return literal_column(f"'{value}'", String)


def _count(value: ColumnElement[Any]) -> ColumnElement[int]:
    """`int(value or 0)` of a JSON scalar: absent or null counts 0, a fraction is truncated."""
    return cast(func.trunc(func.coalesce(cast(value, Numeric), 0)), BigInteger)


def metadata(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """`views._metadata`: the stored object with its counters present and whole."""
    stored = type_coerce(column, JSONB)
    tokens = stored["aiTokens"]
    return stored.op("||")(
        func.jsonb_build_object(
            _text("githubApiCalls"),
            _count(stored["githubApiCalls"].astext),
            _text("aiTokens"),
            func.jsonb_build_object(
                _text("prompt"),
                _count(tokens["prompt"].astext),
                _text("completion"),
                _count(tokens["completion"].astext),
            ),
            _text("generationMs"),
            _count(stored["generationMs"].astext),
            _text("dbQueries"),
            _count(stored["dbQueries"].astext),
        )
    )


# How each kind of value becomes JSON text. Built by concatenation rather than
# json_build_object, which looks up every argument's type output function on every row and
# cost PostgreSQL about twice as much here.
def _string(column: ColumnElement[Any]) -> ColumnElement[str]:
    return func.to_json(column).op("::")(literal_column("text"))


def _number(column: ColumnElement[Any]) -> ColumnElement[str]:
    # Numbers and booleans: PostgreSQL's text of both is their JSON text.
    return cast(column, String)


def _instant(column: ColumnElement[Any]) -> ColumnElement[str]:
    return _text('"').op("||")(instant(column)).op("||")(_text('"'))


def _json(column: ColumnElement[Any]) -> ColumnElement[str]:
    return cast(metadata(column), String)


def _object(fields: Sequence[tuple[str, ColumnElement[str]]]) -> ColumnElement[str]:
    """`{"key":value,...}`; a NULL value is written `null` (concat would drop it)."""
    parts: list[ColumnElement[Any]] = []
    for n, (key, value) in enumerate(fields):
        parts.append(_text(("{" if n == 0 else ",") + f'"{key}":'))
        parts.append(func.coalesce(value, _text("null")))
    parts.append(_text("}"))
    return func.concat(*parts)


def execution_json() -> ColumnElement[str]:
    """One execution's view as JSON text; MISSED executions add their missed-run fields."""
    c = _COLUMNS
    fields: list[tuple[str, ColumnElement[str]]] = [
        ("id", _string(c.id)),
        ("jobId", _string(c.job_id)),
        ("projectId", _string(c.project_id)),
        ("scheduledFor", _instant(c.scheduled_for)),
        ("trigger", _string(c.trigger)),
        ("triggeredBy", _string(c.triggered_by)),
        ("status", _string(c.status)),
        ("attempt", _number(c.attempt)),
        ("windowStart", _instant(c.window_start)),
        ("windowEnd", _instant(c.window_end)),
        ("startedAt", _instant(c.started_at)),
        ("completedAt", _instant(c.completed_at)),
        ("duration", _number(c.duration)),
        ("itemsProcessed", _number(c.items_processed)),
        ("itemsSuccess", _number(c.items_success)),
        ("itemsFailed", _number(c.items_failed)),
        ("errorMessage", _string(c.error_message)),
        ("errorStack", _string(c.error_stack)),
        ("metadata", _json(c.metadata)),
        ("createdAt", _instant(c.created_at)),
    ]
    missed: list[tuple[str, ColumnElement[str]]] = [
        ("missedCount", _number(c.missed_count)),
        ("firstMissedAt", _instant(c.first_missed_at)),
        ("lastMissedAt", _instant(c.last_missed_at)),
    ]
    return case(
        (c.status == "MISSED", _object(fields + missed)),
        else_=_object(fields),
    )


def job_json() -> ColumnElement[str]:
    """One job's view as JSON text (`views.job_row_view`)."""
    c = CronJob.__table__.c
    time_config = literal_column("""'{"timezone":"UTC"}'""", JSONB).op("||")(
        type_coerce(c.time_config, JSONB)
    )
    fields: list[tuple[str, ColumnElement[str]]] = [
        ("id", _string(c.id)),
        ("projectId", _string(c.project_id)),
        ("type", _string(c.type)),
        ("name", _string(c.name)),
        ("description", _string(c.description)),
        ("frequency", _string(c.frequency)),
        ("timeConfig", cast(time_config, String)),
        ("schedule", _string(c.schedule)),
        ("isEnabled", _number(c.is_enabled)),
        ("maxRetries", _number(c.max_retries)),
        ("retryDelay", _number(c.retry_delay)),
        ("timeoutSeconds", _number(c.timeout_seconds)),
        ("overlapPolicy", _string(c.overlap_policy)),
        ("catchupWindow", _number(c.catchup_window)),
        ("jitter", _number(c.jitter)),
        ("nextRunAt", _instant(c.next_run_at)),
        ("lastRunAt", _instant(c.last_run_at)),
        ("disabledReason", _string(c.disabled_reason)),
        ("createdAt", _instant(c.created_at)),
        ("updatedAt", _instant(c.updated_at)),
    ]
    return _object(fields)


def list_columns(
    dialect: str,
    view: Callable[[], ColumnElement[str]],
    model: type[CronJob] | type[Execution],
    columns: Sequence[Column[Any]],
) -> tuple[ColumnElement[Any], ...]:
    """What a hot list selects: on PostgreSQL the row's view rendered by `view`, then its
    keyset (created, id); on SQLite the view's `columns`, built into the view in Python."""
    if dialect == "postgresql":
        keyset = [model.__mapper__.columns[name] for name in ("created_at", "id")]
        return (view().label("view"), *hot_columns(keyset, dialect))
    return hot_columns(columns, dialect)


def page_body(
    rows: Sequence[bytes],
    *,
    next_cursor: str | None,
    statistics: dict[str, Any] | None = None,
    recent: Sequence[bytes] = (),
) -> bytes:
    """The list envelope around views already encoded as JSON (see the module docstring).

    With `statistics`, its `recentExecutions` are the views in `recent`.
    """
    parts = [
        b'{"success":true,"data":[',
        b",".join(rows),
        b'],"count":',
        str(len(rows)).encode(),
        b',"nextCursor":',
        to_json(next_cursor),
    ]
    if statistics is not None:
        parts += [b',"statistics":', statistics_json(statistics, recent)]
    parts.append(b"}")
    return b"".join(parts)


def statistics_json(statistics: dict[str, Any], recent: Sequence[bytes]) -> bytes:
    """Statistics as JSON, `recentExecutions` (last, as the seed orders them) being `recent`."""
    encoded = to_json({k: v for k, v in statistics.items() if k != "recentExecutions"})
    return b"".join((encoded[:-1], b',"recentExecutions":[', b",".join(recent), b"]}"))
