"""Logged exceptions keep their stack but never the values of the frames' local variables.

Each case runs in its own interpreter: configure_logging binds the process's stderr and caches
loggers, which must not leak into other tests of the same worker.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROGRAM = """
import structlog
from shared.logging import configure_logging

def fail_with_a_secret():
    webhook_url = "https://hooks.slack.test/services/T000/B000/very-secret-part"
    raise RuntimeError("delivery failed: " + str(len(webhook_url)))

configure_logging(service="test", fmt={fmt!r})
try:
    fail_with_a_secret()
except RuntimeError:
    structlog.get_logger().exception("delivery failed")
"""


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_exceptions_are_logged_without_frame_locals(fmt: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(fmt=fmt)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "fail_with_a_secret" in result.stderr
    assert "very-secret-part" not in result.stderr
    if fmt == "json":
        record = json.loads(result.stderr.strip().splitlines()[-1])
        frames = record["exception"][0]["frames"]
        assert frames[-1]["name"] == "fail_with_a_secret"
        assert all("locals" not in frame for frame in frames)
