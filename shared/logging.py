"""structlog set-up: JSON in production, console on a terminal, stdlib logs routed through it."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from shared import tracing


def configure_logging(*, service: str, level: str = "INFO", fmt: str = "auto") -> None:
    """Configure structlog and the standard library for one process, and its tracing when
    the OTEL_* variables ask for it (a configuration that cannot work stops the process)."""
    try:
        traced = tracing.configure(service)
    except tracing.TracingConfigError as exc:
        raise SystemExit(f"herald {service}: {exc}") from exc
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        # Only with tracing on: off, a line costs what it did before.
        *([tracing.add_log_ids] if traced else []),
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    # Tracebacks never carry frame locals: they hold tokens, webhook URLs and message bodies.
    renderer: Any = (
        structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
        )
        if use_console
        else structlog.processors.JSONRenderer()
    )
    tracebacks = structlog.processors.ExceptionRenderer(
        structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
    )
    structlog.configure(
        processors=[
            *shared,
            tracebacks if not use_console else _identity,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_level(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_level(level))
    # Library chatter at INFO drowns the events that matter; httpx's names every request's
    # URL, and a webhook URL is a secret.
    for noisy in (
        "aio_pika",
        "aiormq",
        "uvicorn.access",
        "sqlalchemy.engine",
        "alembic",
        "httpx",
        "httpcore",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _identity(_logger: Any, _name: str, event: Any) -> Any:
    return event


def _level(name: str) -> int:
    value = logging.getLevelName(name.upper())
    return value if isinstance(value, int) else logging.INFO
