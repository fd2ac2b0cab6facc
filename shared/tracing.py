"""Distributed traces (OpenTelemetry): set up from the standard OTEL_* variables, off unless set.

Tracing is on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) names
a collector, and neither `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` says otherwise.
Spans go out over OTLP/HTTP (protobuf); `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` is refused at start-up
rather than silently exporting nowhere. The SDK reads the rest of the standard variables itself:
`OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` (a process without a name is
`herald-<service>`), `OTEL_TRACES_SAMPLER`/`_ARG` (default: parent-based, always on),
`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`.

Off, every function here returns at its first line: no span, no header, no column written, so a
process without a collector does what it did before tracing existed.

Messages carry W3C `traceparent` (and `tracestate`) in their AMQP headers. Herald's messaging
spans are its own, not aio-pika's instrumentation (which does not cover aio-pika 10, nor the
scheduler's frames publisher, nor the in-process bus): one producer span per message sent, one
consumer span per delivery handled, named and attributed after OpenTelemetry's messaging
conventions (`send herald`, `process herald.scanner`; `messaging.*`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import random
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
#: The tracer every herald span is made with (its instrumentation scope).
SCOPE = "herald"

_W3C = TraceContextTextMapPropagator()
_enabled = False
_messaging_system = "rabbitmq"
_provider: Any = None


class TracingConfigError(ValueError):
    """The OTEL_* variables ask for something herald cannot do; the process does not start."""


def enabled() -> bool:
    return _enabled


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment configures tracing (a collector is named and nothing turns it
    off)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    )


def check_protocol(environ: Mapping[str, str] | None = None) -> None:
    """Refuse an OTLP protocol other than HTTP/protobuf, naming the variable to change."""
    env = os.environ if environ is None else environ
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = env.get(name, "").strip().lower()
        if not value:
            continue
        if value != "http/protobuf":
            raise TracingConfigError(
                f"{name}={value!r} is not supported: herald exports traces over OTLP/HTTP "
                "only; set it to 'http/protobuf' (a collector's port 4318) or unset it"
            )
        return


def configure(service: str, *, environ: Mapping[str, str] | None = None) -> bool:
    """Set up tracing for this process when the environment asks for it; return whether on.

    `service` names the process (`herald-<service>`) unless `OTEL_SERVICE_NAME` or a
    `service.name` in `OTEL_RESOURCE_ATTRIBUTES` does. Raises `TracingConfigError` for a
    configuration that cannot work.
    """
    if _enabled:
        return True
    env = os.environ if environ is None else environ
    if not wanted(env):
        return False
    check_protocol(env)
    # The instrumentations speak the stable HTTP conventions (`http.request.method`,
    # `http.response.status_code`, `url.*`) only when asked; an operator's choice stands.
    if environ is None:
        os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.namespace": "herald"})
    name = str(resource.attributes.get(SERVICE_NAME, ""))
    if not name or name.startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: f"herald-{service}"}))
    provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)  # the instrumentations' spans go there too
    install(provider, service)
    return True


def install(provider: Any, service: str) -> None:
    """Make herald's spans with `provider` (the process's, or a test's in-memory one)."""
    global _enabled, _provider, _messaging_system
    _provider = provider
    # The standalone mode's bus is no broker: its spans do not claim to be RabbitMQ's.
    _messaging_system = "herald" if service == "standalone" else "rabbitmq"
    _enabled = True


def shutdown() -> None:
    """Export what is still buffered and stop making spans."""
    global _enabled, _provider
    if _provider is not None:
        _provider.shutdown()
    _provider = None
    _enabled = False


def provider() -> Any:
    """The tracer provider herald's spans go to (None while tracing is off)."""
    return _provider


def tracer() -> trace.Tracer:
    if _provider is not None:
        return cast(trace.Tracer, _provider.get_tracer(SCOPE))
    return trace.get_tracer(SCOPE)


# --- identifiers of the current span -------------------------------------------------------


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex, or None outside a valid span."""
    if not _enabled:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def sampled_trace_id(span: Span | None = None) -> str | None:
    """The trace id a record may link to: only a sampled trace reaches the backend."""
    if not _enabled:
        return None
    context = (span or trace.get_current_span()).get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return format(context.trace_id, "032x")


def traceparent(span: Span | None = None) -> str | None:
    """The W3C traceparent of `span` (default: the current one), for a row written now and
    published later; None when tracing is off or there is no span."""
    if not _enabled:
        return None
    carrier: dict[str, str] = {}
    ctx = None if span is None else trace.set_span_in_context(span)
    _W3C.inject(carrier, context=ctx)
    return carrier.get(TRACEPARENT)


def context_from(headers: Mapping[str, Any] | None) -> otel_context.Context | None:
    """The trace context a message's headers carry (or None)."""
    if not _enabled or not headers:
        return None
    carrier = {
        key: value.decode() if isinstance(value, bytes) else value
        for key in (TRACEPARENT, TRACESTATE)
        if isinstance(value := headers.get(key), str | bytes)
    }
    if not carrier:
        return None
    return _W3C.extract(carrier)


def trace_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """Just the trace headers of a message, to carry them along unchanged (a delayed message
    sent down the ladder again)."""
    if not headers:
        return {}
    return {
        key: value.decode() if isinstance(value, bytes) else value
        for key in (TRACEPARENT, TRACESTATE)
        if isinstance(value := headers.get(key), str | bytes)
    }


def inject(carrier: MutableMapping[str, Any], span: Span | None = None) -> None:
    if _enabled:
        ctx = None if span is None else trace.set_span_in_context(span)
        _W3C.inject(carrier, context=ctx)


# --- spans -----------------------------------------------------------------------------


def _messaging(
    operation: str, destination: str, routing_key: str, message_id: str | None, size: int
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": _messaging_system,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": destination,
        "messaging.message.body.size": size,
    }
    if routing_key:
        attributes["messaging.rabbitmq.destination.routing_key"] = routing_key
    if message_id:
        attributes["messaging.message.id"] = message_id
    return attributes


def start_producer(
    destination: str,
    routing_key: str,
    *,
    message_id: str | None,
    size: int,
    parent: str | bool | None = True,
) -> Span | None:
    """Start (not enter) the span of one message sent; None when tracing is off.

    `parent`: True, the current span; a traceparent string, that context (an outbox row's);
    None or False, none: the message starts its own trace.
    """
    if not _enabled:
        return None
    if parent is True:
        ctx = None
    elif isinstance(parent, str):
        ctx = _W3C.extract({TRACEPARENT: parent})
    else:
        ctx = otel_context.Context()
    # The default exchange has no name; conventions name the span after the operation then,
    # and RabbitMQ itself calls it amq.default.
    name = f"send {destination or 'amq.default'}"
    return tracer().start_span(
        name,
        context=ctx,
        kind=SpanKind.PRODUCER,
        attributes=_messaging("send", destination, routing_key, message_id, size),
    )


def end(span: Span | None, error: BaseException | None = None) -> None:
    if span is None:
        return
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, str(error) or type(error).__name__))
        span.set_attribute("error.type", type(error).__qualname__)
    span.end()


@contextlib.contextmanager
def producing(
    destination: str, routing_key: str, *, message_id: str | None, size: int
) -> Iterator[dict[str, str]]:
    """A producer span around one publish, child of the current span; yields the headers
    (traceparent of the producer span) to send with the message (empty when off)."""
    span = start_producer(destination, routing_key, message_id=message_id, size=size)
    if span is None:
        yield {}
        return
    headers: dict[str, str] = {}
    inject(headers, span)
    try:
        yield headers
    except BaseException as exc:
        end(span, exc)
        raise
    end(span)


@contextlib.contextmanager
def consuming(
    queue: str,
    routing_key: str,
    headers: Mapping[str, Any] | None,
    *,
    message_id: str | None,
    size: int,
    delivery: int,
) -> Iterator[Span | None]:
    """The consumer span of one delivery, current while it is handled: a child of the span
    that sent it, so a handler's own requests and messages stay in the message's trace."""
    if not _enabled:
        yield None
        return
    attributes = _messaging("process", "herald", routing_key, message_id, size)
    attributes["messaging.destination.subscription.name"] = queue
    if delivery > 1:
        attributes["messaging.rabbitmq.message.delivery_count"] = delivery
    with tracer().start_as_current_span(
        f"process {queue}",
        context=context_from(headers) or otel_context.Context(),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=True,
        set_status_on_exception=True,
    ) as span:
        yield span


def failed(span: Span | None, reason: str, kind: str) -> None:
    """Mark a consumer span whose message was not handled (requeued or dead-lettered)."""
    if span is None:
        return
    span.set_status(Status(StatusCode.ERROR, reason[:200]))
    span.set_attribute("error.type", kind)


@contextlib.contextmanager
def internal(name: str, **attributes: Any) -> Iterator[Span | None]:
    """An internal span, current while the block runs (a scheduler pass, a state change)."""
    if not _enabled:
        yield None
        return
    with tracer().start_as_current_span(name, attributes=attributes) as span:
        yield span


def start_root(name: str, *, link: Span | None = None, **attributes: Any) -> Span | None:
    """Start a span that begins a trace of its own (a scheduled run), linked to `link` (the
    scheduler pass that made it) rather than inside its trace: one trace per execution."""
    if not _enabled:
        return None
    links = []
    if link is not None and link.get_span_context().is_valid:
        links.append(Link(link.get_span_context()))
    return tracer().start_span(
        name, context=otel_context.Context(), links=links, attributes=attributes
    )


def _context_of(traceparent: str) -> trace.SpanContext:
    return trace.get_current_span(_W3C.extract({TRACEPARENT: traceparent})).get_span_context()


def exemplar() -> dict[str, str] | None:
    """The current sampled span, as a latency observation's exemplar (OpenMetrics): a
    dashboard goes from a slow bucket to a trace that landed in it."""
    if not _enabled:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


def add_log_ids(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    """structlog processor: `trace_id` and `span_id` on every line written inside a span."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


@contextlib.contextmanager
def attached(traceparent: str | None) -> Iterator[None]:
    """Make a stored trace context (an outbox row's) current for the block; with none, the
    block has no parent span at all, so what it sends starts a trace of its own rather than
    joining whatever was current (a relay pass)."""
    if not _enabled:
        yield
        return
    ctx = _W3C.extract({TRACEPARENT: traceparent}) if traceparent else otel_context.Context()
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


# The trace context each execution's outbox rows continue while a batch of events is applied
# (`applying`): a batch serves many executions, each in its own trace.
_EXECUTION_PARENTS: contextvars.ContextVar[Mapping[str, str | None] | None] = (
    contextvars.ContextVar("herald_execution_parents", default=None)
)


def execution_parents() -> Mapping[str, str | None]:
    if not _enabled:
        return {}
    return _EXECUTION_PARENTS.get() or {}


@contextlib.contextmanager
def applying(items: Sequence[tuple[str, str, str | None]]) -> Iterator[None]:
    """Spans for events applied together: for each (routing key, execution id, traceparent
    of the span that handed it in), an `apply <routing key>` span in that event's trace, for
    as long as the batch takes; what the batch writes to the outbox for an execution continues
    that execution's span."""
    if not _enabled:
        yield
        return
    spans: list[Span] = []
    parents: dict[str, str | None] = {}
    for routing_key, execution_id, parent in items:
        ctx = _W3C.extract({TRACEPARENT: parent}) if parent else otel_context.Context()
        span = tracer().start_span(
            f"apply {routing_key}", context=ctx, attributes={"herald.execution.id": execution_id}
        )
        spans.append(span)
        parents[execution_id] = traceparent(span)
    token = _EXECUTION_PARENTS.set(parents)
    try:
        yield
    except BaseException as exc:
        for span in spans:
            end(span, exc)
        raise
    finally:
        _EXECUTION_PARENTS.reset(token)
    for span in spans:
        end(span)


def begin_run(
    execution_id: str, job_id: str, trigger: str, *, link: str | None = None
) -> tuple[str | None, str | None]:
    """Begin the trace of a run written without a request around it (a scheduled run, a
    dependent run started by another's end): (trace id to record, traceparent for its outbox
    row). The span links to `link` (the traceparent of the run that started it) rather than
    joining its trace: one trace per execution."""
    if not _enabled:
        return None, None
    linked = trace.NonRecordingSpan(_context_of(link)) if link else None
    span = start_root(
        "start run",
        link=linked,
        **{
            "herald.execution.id": execution_id,
            "herald.job.id": job_id,
            "herald.trigger": trigger,
        },
    )
    if span is None:
        return None, None
    trace_id, parent = sampled_trace_id(span), traceparent(span)
    span.end()
    return trace_id, parent


def resume_run(execution_id: str, trace_id: str | None) -> str | None:
    """The traceparent for a message sent for a run written earlier (a buffered run released
    when its job's previous run ends): a `release run` span in the trace the run recorded,
    so what follows stays in it. Only the trace id was kept, not the span that began it: the
    span's parent is named by the trace id alone (a backend shows it under the trace, its
    parent not found)."""
    if not _enabled or not trace_id:
        return None
    try:
        parent = trace.SpanContext(
            trace_id=int(trace_id, 16),
            span_id=random.getrandbits(64) or 1,
            is_remote=True,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
    except ValueError:
        return None
    if not parent.is_valid:
        return None
    span = tracer().start_span(
        "release run",
        context=trace.set_span_in_context(trace.NonRecordingSpan(parent)),
        attributes={"herald.execution.id": execution_id},
    )
    parent_of_message = traceparent(span)
    span.end()
    return parent_of_message
