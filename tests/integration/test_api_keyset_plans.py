"""A page after a cursor starts at the cursor in the index, however deep in history it is.

With `created < at OR (created = at AND id < last)` PostgreSQL could only filter the rows it
read from the newest down, so the n-th page read n pages. The plans are read with sequential
scans and sorts priced out, so the check is what the index scan is bounded by, whatever the
table's size: the cursor must be part of the index condition, not a filter.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Select
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from services.api.routes import executions, jobs

pytestmark = pytest.mark.postgresql_only(reason="PostgreSQL's plans are what is checked")

PARAMS: dict[str, Any] = {
    "user_id": "u_1",
    "token_hash": "0" * 64,
    "job_id": "cron_1",
    "page_rows": 51,
    "cursor_id": "exec_1",
}

AFTER_CURSOR = {
    **{
        f"executions (token {by_token}, one job {of_job})": statement
        for (dialect, by_token, of_job, after), statement in executions._PAGES.items()
        if dialect == "postgresql" and after
    },
    **{
        f"schedules (token {by_token})": statement
        for (dialect, by_token, after), statement in jobs._SCHEDULES.items()
        if dialect == "postgresql" and after
    },
}


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(child for plan in node.get("Plans", []) for child in _nodes(plan))]


@pytest.mark.parametrize("name", sorted(AFTER_CURSOR))
async def test_a_page_after_a_cursor_starts_at_the_cursor(name: str, database_url: str) -> None:
    statement: Select[Any] = AFTER_CURSOR[name]
    compiled = statement.compile(dialect=asyncpg_dialect.dialect())
    values = {
        **{key: bound.value for key, bound in compiled.binds.items()},
        **PARAMS,
        "cursor_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        await connection.execute("SET enable_seqscan = off; SET enable_sort = off")
        prepared = await connection.prepare(str(compiled))
        plan = await prepared.explain(*(values[key] for key in compiled.positiontup))
    finally:
        await connection.close()
    scans = [
        node
        for node in _nodes(plan[0]["Plan"])
        if node.get("Index Name", "").startswith(("ix_cron_executions_", "ix_cron_jobs_"))
    ]
    assert scans, json.dumps(plan)
    for scan in scans:
        assert "created_at" in scan.get("Index Cond", ""), json.dumps(scan)
        assert "created_at" not in scan.get("Filter", ""), json.dumps(scan)
