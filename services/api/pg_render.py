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

from services.api import fields
from services.api.fields import RecordFields, Shown
from services.api.views import hot_columns

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


def _time_config(column: ColumnElement[Any]) -> ColumnElement[str]:
    merged = literal_column("""'{"timezone":"UTC"}'""", JSONB).op("||")(type_coerce(column, JSONB))
    return cast(merged, String)


def _stored(column: ColumnElement[Any]) -> ColumnElement[str]:
    # JSONB's text of a value is its JSON text; SQL NULL stays NULL (written `null`).
    return cast(type_coerce(column, JSONB), String)


_SHOWN: dict[Shown, Callable[[ColumnElement[Any]], ColumnElement[str]]] = {
    Shown.TEXT: _string,
    Shown.NUMBER: _number,
    Shown.INSTANT: _instant,
    Shown.TIME_CONFIG: _time_config,
    Shown.METADATA: _json,
    Shown.OBJECT: _stored,
}


def view_json(record: RecordFields) -> ColumnElement[str]:
    """A record's view as JSON text (`views.job_row_view`, `views.execution_row_view`)."""
    table = record.model.__table__.c
    always: list[tuple[str, ColumnElement[str]]] = []
    conditional: dict[tuple[str, str], list[tuple[str, ColumnElement[str]]]] = {}
    for field, column in zip(record.fields, record.columns, strict=True):
        rendered = (field.key, _SHOWN[field.shown](table[column.name]))
        if field.when is None:
            always.append(rendered)
        else:
            conditional.setdefault(field.when, []).append(rendered)
    if not conditional:
        return _object(always)
    # Conditional fields follow the others in the table (as in the Python view), so each
    # condition adds its fields at the end.
    mapped = record.model.__mapper__.columns
    return case(
        *(
            (mapped[attribute] == value, _object(always + extra))
            for (attribute, value), extra in conditional.items()
        ),
        else_=_object(always),
    )


def execution_json() -> ColumnElement[str]:
    """One execution's view as JSON text; MISSED executions add their missed-run fields."""
    return view_json(fields.EXECUTION)


def job_json() -> ColumnElement[str]:
    """One job's view as JSON text."""
    return view_json(fields.JOB)


def list_columns(dialect: str, record: RecordFields) -> tuple[ColumnElement[Any], ...]:
    """What a hot list selects: on PostgreSQL the row's view rendered as JSON (`view`), then
    its keyset (`created_at`, `id`); on SQLite the record's columns, built into the view in
    Python. Either way a row's keyset reads as `row.created_at` and `row.id`."""
    if dialect == "postgresql":
        keyset = [record.model.__mapper__.columns[name] for name in ("created_at", "id")]
        return (view_json(record).label("view"), *hot_columns(keyset, dialect))
    return hot_columns(record.columns, dialect)


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
