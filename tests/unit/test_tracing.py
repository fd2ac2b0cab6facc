"""Tracing: off unless configured, refused when it cannot work, and carried through the
in-process bus, its stored queue and its delays as through RabbitMQ."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.api.routes.executions import trace_url
from services.standalone.membus import MemoryBroker
from services.standalone.queuestore import QueueStore
from shared import topology, tracing, tracing_http
from shared.events import Event
from tests.support.events import job_due
from tests.support.polling import poll_async

COLLECTOR = "http://127.0.0.1:4318"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
            False,
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                "OTEL_TRACES_EXPORTER": "none",
            },
            False,
        ),
    ],
)
def test_tracing_is_on_only_when_a_collector_is_named(
    environ: dict[str, str], expected: bool
) -> None:
    assert tracing.wanted(environ) is expected


def test_off_nothing_is_made() -> None:
    assert not tracing.enabled()
    assert tracing.traceparent() is None
    assert tracing.sampled_trace_id() is None
    assert tracing.begin_run("exec_1", "cron_1", "SCHEDULE") == (None, None)
    with tracing.producing("herald", "job.due", message_id="m", size=2) as headers:
        assert headers == {}


@pytest.mark.parametrize("protocol", ["grpc", "http/json"])
def test_a_protocol_other_than_http_protobuf_is_refused_naming_the_variable(protocol: str) -> None:
    with pytest.raises(tracing.TracingConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        tracing.check_protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": protocol})
    tracing.check_protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    # The traces-only variable wins over the general one, as the SDK reads them.
    tracing.check_protocol(
        {
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        }
    )


def test_a_service_asked_for_grpc_does_not_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.scanner"],
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            # Nothing to reach: the refusal comes before any connection.
            "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/",
        },
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "OTEL_EXPORTER_OTLP_PROTOCOL='grpc' is not supported" in result.stderr
    assert "http/protobuf" in result.stderr


def test_a_trace_url_fills_in_the_id_and_leaves_other_braces_alone() -> None:
    template = 'http://127.0.0.1:3000/explore?left={"queries":[{"query":"{trace_id}"}]}'
    assert trace_url(template, "ab" * 16) == (
        'http://127.0.0.1:3000/explore?left={"queries":[{"query":"' + "ab" * 16 + '"}]}'
    )
    assert trace_url("", "ab" * 16) is None
    assert trace_url(template, None) is None


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider, "standalone")
    yield exporter
    tracing.shutdown()


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MemoryBroker]:
    broker = MemoryBroker(QueueStore(tmp_path / "queue.db"), prefetch=4, delivery_limit=2)
    await broker.open()
    yield broker
    await broker.close()


async def test_the_in_process_bus_carries_the_trace_through_a_handler_and_a_delay(
    spans: InMemorySpanExporter, broker: MemoryBroker
) -> None:
    bus = broker.client()
    await bus.start()
    handled: list[tuple[Event, Any]] = []

    async def handler(event: Event) -> None:
        handled.append((event, tracing.current_ids()))
        if len(handled) == 1:
            await bus.publish_delayed(
                event, topology.SCANNER_QUEUE, datetime.now(UTC) + timedelta(milliseconds=50)
            )

    await bus.consume(topology.SCANNER_QUEUE, handler)
    with tracing.internal("request") as request:
        assert request is not None
        await bus.publish(job_due())
    await poll_async(lambda: len(handled) == 2)
    await bus.close(grace=1)

    finished = {span.context.span_id: span for span in spans.get_finished_spans()}
    by_name: dict[str, list[Any]] = {}
    for span in finished.values():
        by_name.setdefault(span.name, []).append(span)
    [sent] = by_name["send herald"]
    [delayed] = by_name["send amq.default"]
    first, retry = sorted(by_name["process herald.scanner"], key=lambda s: s.start_time)
    trace_id = request.get_span_context().trace_id
    assert {span.context.trace_id for span in finished.values()} == {trace_id}
    assert sent.parent.span_id == request.get_span_context().span_id
    assert (sent.kind, first.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert first.parent.span_id == sent.context.span_id
    assert delayed.parent.span_id == first.context.span_id
    assert retry.parent.span_id == delayed.context.span_id
    assert sent.attributes["messaging.system"] == "herald"  # no broker claimed
    assert sent.attributes["messaging.rabbitmq.destination.routing_key"] == "job.due"
    assert delayed.attributes["messaging.rabbitmq.destination.routing_key"] == "herald.scanner"
    # The handler ran inside its delivery's span.
    assert handled[0][1] == (format(trace_id, "032x"), format(first.context.span_id, "016x"))


async def test_a_stored_message_keeps_its_trace_across_a_restart(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    store_path = tmp_path / "kept.db"
    broker = MemoryBroker(QueueStore(store_path))
    await broker.open()
    bus = broker.client()
    await bus.start()
    with tracing.internal("request"):
        await bus.publish(job_due())
    await bus.close(grace=0)
    await broker.close()
    [sent] = [s for s in spans.get_finished_spans() if s.name == "send herald"]

    again = MemoryBroker(QueueStore(store_path))
    assert await again.open() == 1
    bus = again.client()
    await bus.start()
    seen: list[Any] = []

    async def handler(event: Event) -> None:
        seen.append(tracing.current_ids())

    await bus.consume(topology.SCANNER_QUEUE, handler)
    await poll_async(lambda: seen)
    await bus.close(grace=1)
    await again.close()
    [process] = [s for s in spans.get_finished_spans() if s.name == "process herald.scanner"]
    assert process.parent.span_id == sent.context.span_id
    assert process.context.trace_id == sent.context.trace_id


def test_log_lines_in_a_span_carry_its_ids(spans: InMemorySpanExporter) -> None:
    with tracing.internal("work") as span:
        assert span is not None
        event = tracing.add_log_ids(None, "info", {"event": "x"})
    context = span.get_span_context()
    assert event["trace_id"] == format(context.trace_id, "032x")
    assert event["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in tracing.add_log_ids(None, "info", {"event": "outside"})


def test_a_run_started_by_another_begins_its_own_trace_linked_to_it(
    spans: InMemorySpanExporter,
) -> None:
    with tracing.internal("upstream") as upstream:
        link = tracing.traceparent()
    assert upstream is not None and link is not None
    trace_id, parent = tracing.begin_run("exec_2", "cron_2", "DEPENDENCY", link=link)
    assert trace_id is not None and parent is not None
    assert trace_id != format(upstream.get_span_context().trace_id, "032x")
    assert parent.split("-")[1] == trace_id
    [started] = [s for s in spans.get_finished_spans() if s.name == "start run"]
    assert started.parent is None
    assert [link.context.trace_id for link in started.links] == [
        upstream.get_span_context().trace_id
    ]


async def test_a_webhook_url_never_reaches_a_span(spans: InMemorySpanExporter) -> None:
    secret = "http://127.0.0.1:9/services/T000/B000/very-secret-token"
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200)))
    tracing_http.instrument_httpx(client, secret_urls=True)
    async with client:
        assert (await client.post(secret, json={})).status_code == 200
    [span] = spans.get_finished_spans()
    assert span.kind == SpanKind.CLIENT
    assert span.attributes is not None
    # The stable conventions' attribute or the older one, as the process opted in.
    url = span.attributes.get("url.full", span.attributes.get("http.url"))
    assert url == "http://127.0.0.1:9/REDACTED"
    assert not any("very-secret" in str(value) for value in span.attributes.values())
    assert "very-secret" not in span.name


async def test_a_request_s_query_values_never_reach_a_span(spans: InMemorySpanExporter) -> None:
    app = FastAPI()

    @app.get("/console/recipients/confirm")
    async def confirm() -> dict[str, str]:
        return {}

    tracing_http.instrument_fastapi(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as client:
        answer = await client.get("/console/recipients/confirm?token=sealed-secret&x=1")
    assert answer.status_code == 200
    [server] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server.attributes is not None
    query = server.attributes.get("url.query") or str(server.attributes["http.url"]).split("?")[1]
    assert query == "token=REDACTED&x=REDACTED"
    for span in spans.get_finished_spans():
        assert not any("sealed-secret" in str(v) for v in (span.attributes or {}).values())


def test_a_buffered_run_released_later_stays_in_its_recorded_trace(
    spans: InMemorySpanExporter,
) -> None:
    trace_id, _ = tracing.begin_run("exec_3", "cron_3", "SCHEDULE")
    assert trace_id is not None

    parent = tracing.resume_run("exec_3", trace_id)

    assert parent is not None and parent.split("-")[1] == trace_id
    [released] = [s for s in spans.get_finished_spans() if s.name == "release run"]
    assert format(released.context.trace_id, "032x") == trace_id
    assert tracing.resume_run("exec_3", None) is None
    assert tracing.resume_run("exec_3", "not hex") is None
