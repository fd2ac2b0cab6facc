"""One trace per execution across the five services, exported over OTLP/HTTP.

The five services run as processes on real RabbitMQ and PostgreSQL, exporting to a receiver
on loopback that decodes what arrives with `opentelemetry-proto`. A manual trigger is
followed from the api's request through the outbox, the scanner (and its GitHub requests),
the generator (its model calls, one of them failing and retried through the broker's delay
ladder), the api's state changes and the notifier's delivery, in one trace whose id the
execution records and whose log lines carry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.secrets import generate_key
from tests.support import processes
from tests.support.fakes import openai
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.otlp import CLIENT, CONSUMER, PRODUCER, SERVER, OtlpReceiver, ReceivedSpan
from tests.support.fakes.resend import FakeResend
from tests.support.fakes.server import ThreadedServer
from tests.support.pipeline import pipeline_env
from tests.support.polling import poll
from tests.support.runs import finished, seed

pytestmark = pytest.mark.e2e

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
TRACE_URL = "http://127.0.0.1:3000/explore?traceId={trace_id}&orgId=1"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as server:
        yield server


@pytest.fixture
def traced(
    fresh_database_url: str,
    fresh_amqp_url: str,
    tmp_path: Path,
    receiver: OtlpReceiver,
    resend: FakeResend,
    github: tuple[FakeGitHub, ThreadedServer],
    model: tuple[openai.FakeOpenAI, ThreadedServer],
) -> Iterator[dict[str, processes.Service]]:
    env = pipeline_env(
        fresh_database_url,
        fresh_amqp_url,
        str(tmp_path),
        github[1].url,
        model[1].url,
        # Any wait goes through the delay ladder.
        HERALD_AI_RETRY_MAX_WAIT="0",
        HERALD_RESEND_API_KEY=resend.api_key,
        HERALD_RESEND_API_URL=resend.url,
        HERALD_SECRET_KEY=generate_key(),
        HERALD_TRACE_URL_TEMPLATE=TRACE_URL,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_TRACES_SAMPLER="parentbased_always_on",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=e2e",
        # Spans leave every 100 ms, so the test reads them while the services run.
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    with processes.running(processes.SERVICES, env, tmp_path) as services:
        yield services


def children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [span for span in spans if span.parent_span_id == parent.span_id]


def descends(spans: list[ReceivedSpan], span: ReceivedSpan, ancestor: ReceivedSpan) -> bool:
    by_id = {s.span_id: s for s in spans}
    current: ReceivedSpan | None = span
    while current is not None:
        if current.parent_span_id == ancestor.span_id:
            return True
        current = by_id.get(current.parent_span_id)
    return False


def one(spans: list[ReceivedSpan], **where: Any) -> list[ReceivedSpan]:
    return [
        span
        for span in spans
        if all(
            span.attributes.get(key.replace("__", ".")) == value
            if key not in ("service", "name", "kind")
            else getattr(span, key) == value
            for key, value in where.items()
        )
    ]


def log_lines(service: processes.Service) -> list[dict[str, Any]]:
    lines = []
    for raw in service.logs().splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def test_a_manual_run_is_one_trace_across_the_five_services(
    traced: dict[str, processes.Service],
    receiver: OtlpReceiver,
    github: tuple[FakeGitHub, ThreadedServer],
    model: tuple[openai.FakeOpenAI, ThreadedServer],
    resend: FakeResend,
    fresh_database_url: str,
    request: pytest.FixtureRequest,
) -> None:
    now = datetime.now(UTC)
    seed(github[0], now)
    model[0].scripts.update(
        x=['{"body": "octo/herald shipped weekly digests and 120 fixes."}'],
        changelog=[
            openai.Failure(503, None, message="busy"),
            '{"title": "Changes", "body": "## Changes\\n\\n### Added\\n- Weekly digests"}',
        ],
    )
    api = processes.signed_in_client(traced["api"], fresh_database_url)
    request.addfinalizer(api.close)
    own = str(api.get("/api/me").json()["data"]["email"])
    project = api.post(
        "/api/projects",
        json={
            "name": "herald",
            "githubRepoOwner": "octo",
            "githubRepoName": "herald",
            "platforms": ["x", "changelog"],
            "notificationSettings": {"recipients": [own]},
        },
    )
    assert project.status_code == 201, project.text
    job = api.post(
        "/api/cron/schedule",
        json={
            "projectId": project.json()["data"]["id"],
            "name": "Daily digest",
            "frequency": "DAILY",
            "timeConfig": {"hour": (now.hour + 12) % 24, "minute": 0, "timezone": "UTC"},
            "maxRetries": 3,
            "retryDelay": 1,
        },
    )
    assert job.status_code == 201, job.text
    triggered = api.post("/api/cron/trigger", json={"jobId": job.json()["data"]["id"]})
    assert triggered.status_code == 202, triggered.text
    execution_id = triggered.json()["data"]["id"]

    execution = finished(api, execution_id)

    assert execution["status"] == "COMPLETED", execution
    assert execution["attempt"] == 2  # the changelog's 503 went round the delay ladder
    trace_id = execution["traceId"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id), trace_id
    assert execution["traceUrl"] == TRACE_URL.replace("{trace_id}", trace_id)
    poll(lambda: resend.sent, bool)  # the success alert went out

    def delivered(spans: list[ReceivedSpan]) -> bool:
        return any(s.service == "herald-notifier" and s.kind == CLIENT for s in spans)

    spans = poll(lambda: receiver.trace(trace_id), delivered, timeout=30)

    # Parent-child links intact: one root, the api's request; every other parent is here.
    ids = {span.span_id for span in spans}
    roots = [span for span in spans if not span.parent_span_id]
    assert len(roots) == 1, roots
    root = roots[0]
    assert (root.service, root.kind, root.name) == (
        "herald-api",
        SERVER,
        "POST /api/cron/trigger",
    )
    assert root.attributes["http.response.status_code"] == 202
    orphans = [span for span in spans if span.parent_span_id and span.parent_span_id not in ids]
    assert orphans == []
    # Both the api and the scheduler relay the outbox: either may have published a row.
    relays = {"herald-api", "herald-scheduler"}
    assert {span.service for span in spans} - {"herald-scheduler"} == {
        "herald-api",
        "herald-scanner",
        "herald-generator",
        "herald-notifier",
    }

    # The outbox publish of job.due, inside the request's trace.
    [due] = one(spans, kind=PRODUCER, messaging__rabbitmq__destination__routing_key="job.due")
    assert due.service in relays
    assert due.name == "send herald"
    assert due.attributes["messaging.system"] == "rabbitmq"
    assert due.attributes["messaging.destination.name"] == "herald"
    assert due.attributes["messaging.operation.type"] == "send"
    assert descends(spans, due, root)

    # The scanner consumed it, and its GitHub requests are its children.
    [scan] = [span for span in children(spans, due) if span.kind == CONSUMER]
    assert (scan.service, scan.name) == ("herald-scanner", "process herald.scanner")
    assert scan.attributes["messaging.destination.subscription.name"] == "herald.scanner"
    github_calls = [s for s in spans if s.service == "herald-scanner" and s.kind == CLIENT]
    assert github_calls
    assert all(descends(spans, call, scan) for call in github_calls)
    assert all(call.attributes["server.address"] == "127.0.0.1" for call in github_calls)

    # The generator's first delivery, its model calls, and its retry down the ladder.
    generations = one(spans, service="herald-generator", kind=CONSUMER)
    assert len(generations) == 2, generations
    first, retry = sorted(generations, key=lambda s: s.attributes.get("messaging.message.id", ""))
    model_calls = [s for s in spans if s.service == "herald-generator" and s.kind == CLIENT]
    assert {call.name for call in model_calls} == {"POST"}
    assert len(model_calls) == len(model[0].calls) == 3  # x, changelog twice
    assert all(descends(spans, call, first) or descends(spans, call, retry) for call in model_calls)
    assert any(c.attributes["http.response.status_code"] == 503 for c in model_calls)
    [delayed] = [
        s
        for s in spans
        if s.service == "herald-generator"
        and s.kind == PRODUCER
        and s.attributes["messaging.destination.name"] == ""
    ]
    assert delayed.name == "send amq.default"
    assert delayed.attributes["messaging.rabbitmq.destination.routing_key"].startswith(
        "herald.delay."
    )
    delayed_from, delayed_to = (
        (first, retry) if delayed.parent_span_id == first.span_id else (retry, first)
    )
    assert delayed.parent_span_id == delayed_from.span_id
    assert delayed_to.parent_span_id == delayed.span_id

    # The api's state changes: each event it consumed applied in the run's trace, and the
    # end written to the outbox from there.
    applied = [s for s in spans if s.service == "herald-api" and s.name.startswith("apply ")]
    assert {s.name for s in applied} >= {
        "apply step.started",
        "apply activity.scanned",
        "apply content.generated",
    }
    for span in applied:
        parent = next(s for s in spans if s.span_id == span.parent_span_id)
        assert (parent.kind, parent.name) == (CONSUMER, "process herald.api")
    [ended] = one(
        spans, kind=PRODUCER, messaging__rabbitmq__destination__routing_key="execution.finished"
    )
    assert ended.service in relays
    assert next(s for s in spans if s.span_id == ended.parent_span_id).name == (
        "apply content.generated"
    )

    # The notifier's consume and its delivery (Resend's API).
    [notify] = [span for span in children(spans, ended) if span.kind == CONSUMER]
    assert (notify.service, notify.name) == ("herald-notifier", "process herald.notifier")
    deliveries = [s for s in spans if s.service == "herald-notifier" and s.kind == CLIENT]
    assert deliveries and all(descends(spans, d, notify) for d in deliveries)

    # Log lines written for the execution carry its trace id: those written in a span with
    # the span's id, the api's line for the run's end (written after its batch) with the id
    # the run recorded.
    written = {
        name: [line for line in log_lines(traced[name]) if line.get("execution_id") == execution_id]
        for name in processes.SERVICES
    }
    assert written["generator"] and written["notifier"] and written["api"], written
    for name, lines in written.items():
        assert {line.get("trace_id") for line in lines} <= {trace_id}, (name, lines)
        assert all("trace_id" in line for line in lines), (name, lines)
    in_spans = [line for lines in written.values() for line in lines if "span_id" in line]
    assert in_spans and all(line["span_id"] in ids for line in in_spans)

    # Latency buckets name the trace behind them (OpenMetrics exemplars), when asked for
    # OpenMetrics; the plain text format stays as it was.
    def exemplars(service: processes.Service, metric: str) -> set[str]:
        text = httpx.get(f"{service.url}/metrics", headers={"Accept": OPENMETRICS}).text
        return {
            match
            for line in text.splitlines()
            if line.startswith(f"{metric}_bucket")
            for match in re.findall(r'# \{.*trace_id="([0-9a-f]{32})"', line)
        }

    assert exemplars(traced["api"], "herald_execution_duration_seconds") == {trace_id}
    assert exemplars(traced["generator"], "herald_ai_request_seconds") == {trace_id}
    assert exemplars(traced["notifier"], "herald_notification_attempt_seconds") == {trace_id}
    plain = httpx.get(f"{traced['api'].url}/metrics")
    assert plain.headers["content-type"].startswith("text/plain")
    assert "trace_id" not in plain.text
