"""Forged cursors and arbitrary values on every list and id route never answer 5xx.

The routes come from the app's own route table (not its OpenAPI document), so a route added
tomorrow is fuzzed tomorrow. Requests go over real HTTP on one keep-alive connection: an
error that broke the connection would fail the next request too.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.api.main import create_app
from shared.settings import Settings
from tests.support.api import problem


def _b64(text: str | bytes) -> str:
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode()


# The forgeries the security review sent, and their kin.
FORGED_CURSORS = [
    _b64("2020-01-01T00:00:00|cron_x"),  # a naive instant
    _b64("0001-01-01T00:00:00+14:00|x"),  # before year 1 in UTC
    _b64("9999-12-31T23:59:59-14:00|x"),  # after year 9999 in UTC
    _b64("2026-01-01T00:00:00+00:00|cron_\x00x"),  # a NUL in the id
    _b64("2026-01-01"),  # no separator
    _b64("2026-01-01T00:00:00+00:00|"),  # no id
    _b64("2026-01-01T00:00:00+00:00|x' OR 1=1 --"),
    _b64(b"\xff\xfe\x00"),
    "not base64 at all!",
    "====",
    "",
]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]


def _api_operations() -> list[Operation]:
    app = create_app(Settings())
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not (context.path or "").startswith("/api/"):
            continue
        for method in sorted(route.methods):
            found.append(
                Operation(
                    method,
                    str(context.path),
                    tuple(param.alias for param in route.dependant.path_params),
                    tuple(param.alias for param in route.dependant.query_params),
                )
            )
    return found


OPERATIONS = _api_operations()
LISTS = [op for op in OPERATIONS if "cursor" in op.query_params]
TOUCHED = [op for op in OPERATIONS if op.path_params or op.query_params]

offsets = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
).map(timezone)
instants = st.datetimes(timezones=st.none() | offsets | st.just(UTC))
cursor_texts = st.builds(
    lambda at, separator, row_id: f"{at.isoformat()}{separator}{row_id}",
    instants,
    st.sampled_from(["|", "", "||", " | "]),
    st.text(max_size=60),
)
cursors = st.one_of(
    st.sampled_from(FORGED_CURSORS),
    cursor_texts.map(_b64),
    st.binary(max_size=100).map(_b64),
    st.text(max_size=200),
)
values = st.one_of(
    st.text(max_size=80),
    st.integers().map(str),
    st.sampled_from(["true", "false", "yes", "1e3", "-1", "\x00", "%00", "../..", "NaN"]),
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str]]:
    operation = draw(st.sampled_from(TOUCHED))
    path = operation.path
    for name in operation.path_params:
        path = path.replace("{" + name + "}", quote(draw(values), safe=""))
    query = {}
    for name in operation.query_params:
        if draw(st.booleans()):
            query[name] = draw(cursors if name == "cursor" else values)
    return operation.method, path, query


@pytest.fixture(scope="module")
def client(api_server: str, api_headers: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server, headers=api_headers, timeout=30) as http:
        yield http


def test_the_route_table_has_the_lists_and_ids_to_fuzz() -> None:
    assert {op.path for op in LISTS} >= {
        "/api/projects",
        "/api/cron/schedules",
        "/api/cron/executions",
    }
    assert len(TOUCHED) >= 15


@pytest.mark.parametrize("cursor", FORGED_CURSORS[:-1])
@pytest.mark.parametrize(
    "params",
    [{}, {"stats": "true"}, {"jobId": "cron_01m8xkzd7fyhb2dvyqb3nt80p3"}],
    ids=["plain", "stats", "job"],
)
def test_every_list_answers_a_forged_cursor_with_422_naming_it(
    client: httpx.Client, cursor: str, params: dict[str, str]
) -> None:
    for operation in LISTS:
        query = {k: v for k, v in params.items() if k in operation.query_params}
        response = client.get(operation.path, params={**query, "cursor": cursor})
        problem(response, 422, "cursor")


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests())
def test_arbitrary_cursors_and_values_never_answer_5xx(
    client: httpx.Client, request: tuple[str, str, dict[str, str]]
) -> None:
    method, path, query = request
    body = None if method in ("GET", "DELETE") else {}
    response = client.request(method, path, params=query, json=body)

    assert response.status_code < 500, (method, path, query, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")


def test_a_valid_cursor_still_pages(client: httpx.Client) -> None:
    first = client.get("/api/projects", params={"limit": 1}).json()
    assert first["count"] == 1
    if first["nextCursor"]:
        assert client.get("/api/projects", params={"cursor": first["nextCursor"]}).is_success
    encoded = _b64(f"{datetime(2026, 1, 1, tzinfo=UTC).isoformat()}|prj_0")
    assert client.get("/api/projects", params={"cursor": encoded}).json()["count"] == 0
