"""The scheduler's frame encoder writes exactly what pamqp (aio-pika's encoder) would."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pamqp import commands
from pamqp.body import ContentBody
from pamqp.frame import marshal
from pamqp.header import ContentHeader

from services.scheduler.frames import CONTENT_TYPE, PERSISTENT, FrameEncoder
from shared.outbox import Outgoing

FRAME_MAX = 131_072 - 8


def pamqp_frames(
    channel: int,
    exchange: str,
    message: Outgoing,
    body_max: int,
    headers: dict[str, str] | None = None,
) -> bytes:
    """The frames of one publish as aio-pika, through aiormq and pamqp, writes them."""
    properties = commands.Basic.Properties(
        content_type=CONTENT_TYPE,
        headers=headers or {},
        delivery_mode=PERSISTENT,
        priority=0,
        message_id=message.message_id,
        message_type=message.routing_key,
    )
    body = message.body
    frames: list[object] = [
        commands.Basic.Publish(exchange=exchange, routing_key=message.routing_key),
        ContentHeader(properties=properties, body_size=len(body)),
    ]
    frames.extend(
        ContentBody(body[start : start + body_max]) for start in range(0, len(body), body_max)
    )
    return b"".join(marshal(frame, channel) for frame in frames)  # type: ignore[arg-type]


def encoded(encoder: FrameEncoder, message: Outgoing) -> bytes:
    return b"".join(encoder.encode(message))


def test_a_job_due_event_is_encoded_as_pamqp_encodes_it() -> None:
    message = Outgoing("job.due", b'{"executionId":"exe_1","trigger":"SCHEDULE"}', "evt_1")
    assert encoded(FrameEncoder(1, "herald", FRAME_MAX), message) == pamqp_frames(
        1, "herald", message, FRAME_MAX
    )


def test_a_message_without_an_id_leaves_the_property_out() -> None:
    message = Outgoing("execution.finished", b"{}", None)
    assert encoded(FrameEncoder(3, "herald", FRAME_MAX), message) == pamqp_frames(
        3, "herald", message, FRAME_MAX
    )


def test_trace_headers_are_encoded_as_pamqp_encodes_a_headers_table() -> None:
    message = Outgoing("job.due", b'{"executionId":"exe_1"}', "evt_1")
    headers = {
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "tracestate": "vendor=é",
    }
    encoder = FrameEncoder(1, "herald", FRAME_MAX)
    assert b"".join(encoder.encode(message, headers)) == pamqp_frames(
        1, "herald", message, FRAME_MAX, headers
    )
    # And the next message without headers gets the empty table again.
    assert encoded(encoder, message) == pamqp_frames(1, "herald", message, FRAME_MAX)


def test_a_body_longer_than_a_frame_is_split_as_pamqp_splits_it() -> None:
    for size in (0, 1, 99, 100, 101, 250, 300):
        message = Outgoing("job.due", bytes(range(256)) * (size // 256) + b"x" * (size % 256), "m")
        assert encoded(FrameEncoder(2, "herald", 100), message) == pamqp_frames(
            2, "herald", message, 100
        ), size


def test_a_broker_with_no_frame_limit_gets_each_body_in_one_frame() -> None:
    message = Outgoing("job.due", b"x" * 1_000, "m")
    whole = pamqp_frames(1, "herald", message, len(message.body))
    for frame_max in (0, -8):  # aiormq's max_content_size when the broker's frame_max is 0
        assert encoded(FrameEncoder(1, "herald", frame_max), message) == whole


keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@given(
    channel=st.integers(1, 65_535),
    exchange=st.text(alphabet="abcXYZ019-_.:", max_size=40),
    routing_key=keys,
    message_id=st.none() | keys,
    body=st.binary(max_size=700),
    body_max=st.integers(1, 1_000),
)
def test_any_message_is_encoded_as_pamqp_encodes_it(
    channel: int,
    exchange: str,
    routing_key: str,
    message_id: str | None,
    body: bytes,
    body_max: int,
) -> None:
    message = Outgoing(routing_key, body, message_id)
    encoder = FrameEncoder(channel, exchange, body_max)
    # Twice: the second comes from the per-key cache.
    for _ in range(2):
        assert encoded(encoder, message) == pamqp_frames(channel, exchange, message, body_max)


def test_a_short_string_over_255_bytes_is_refused() -> None:
    encoder = FrameEncoder(1, "herald", FRAME_MAX)
    with pytest.raises(ValueError, match="longer than 255 bytes"):
        encoder.encode(Outgoing("k" * 256, b"{}", None))
