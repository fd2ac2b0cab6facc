"""Logged exceptions keep their stack but never the values of the frames' local variables."""

from __future__ import annotations

import json

import pytest
import structlog

from shared.logging import configure_logging


def fail_with_a_secret() -> None:
    webhook_url = "https://hooks.slack.test/services/T000/B000/very-secret-part"
    raise RuntimeError(f"delivery failed ({len(webhook_url)} chars)")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_exceptions_are_logged_without_frame_locals(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(service="test", fmt=fmt)
    try:
        fail_with_a_secret()
    except RuntimeError:
        structlog.get_logger().exception("delivery failed")
    err = capsys.readouterr().err
    assert "fail_with_a_secret" in err
    assert "very-secret-part" not in err
    if fmt == "json":
        record = json.loads(err.strip().splitlines()[-1])
        frames = record["exception"][0]["frames"]
        assert frames[-1]["name"] == "fail_with_a_secret"
        assert all("locals" not in frame for frame in frames)
