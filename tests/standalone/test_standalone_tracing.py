"""`herald standalone` with tracing on: the demo's run is one trace through the in-process
bus, its messages named as the in-process bus's (not RabbitMQ's), exported over OTLP/HTTP."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.standalone.conftest import (
    demo_token,
    first_run_id,
    standalone_env,
    start,
    wait_status,
)
from tests.support import processes
from tests.support.fakes.otlp import CONSUMER, PRODUCER, OtlpReceiver, ReceivedSpan
from tests.support.polling import poll

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("standalone")]


def test_the_demo_run_is_one_trace_through_the_in_process_bus(tmp_path: Path) -> None:
    port = processes.free_port()
    with OtlpReceiver() as receiver:
        env = standalone_env(
            tmp_path / "data",
            port,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        service = start(tmp_path / "work", env)
        try:
            processes.wait_ready(service)
            token = demo_token(service)
            execution_id = first_run_id(service)
            execution = wait_status(service, token, execution_id, "COMPLETED")
            trace_id = str(execution["traceId"])
            assert re.fullmatch(r"[0-9a-f]{32}", trace_id), execution

            def notified(spans: list[ReceivedSpan]) -> bool:
                return any(s.name == "process herald.notifier" for s in spans)

            spans = poll(lambda: receiver.trace(trace_id), notified, timeout=30)
        finally:
            code = processes.stop(service)
    assert code == 0, service.logs()

    ids = {span.span_id for span in spans}
    roots = [span for span in spans if not span.parent_span_id]
    assert [root.name for root in roots] == ["start run"]  # fired by the process, not a request
    assert all(span.parent_span_id in ids for span in spans if span.parent_span_id)
    assert {span.service for span in spans} == {"herald-standalone"}
    sends = [span for span in spans if span.kind == PRODUCER]
    assert sends and all(span.attributes["messaging.system"] == "herald" for span in sends)
    consumers = {span.name for span in spans if span.kind == CONSUMER}
    assert {
        "process herald.scanner",
        "process herald.generator",
        "process herald.api",
        "process herald.notifier",
    } <= consumers
    for span in spans:
        if span.kind == CONSUMER:
            parent = next(s for s in spans if s.span_id == span.parent_span_id)
            assert parent.kind == PRODUCER, span
