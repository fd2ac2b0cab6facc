"""Each service's live `/metrics`, as Prometheus scrapes it, passes `promtool check metrics`."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import processes

PROMTOOL = shutil.which("promtool")


@pytest.fixture
def services(
    fresh_database_url: str, fresh_amqp_url: str, tmp_path: Path
) -> Iterator[dict[str, processes.Service]]:
    env = {
        "DATABASE_URL": fresh_database_url,
        "AMQP_URL": fresh_amqp_url,
        "HERALD_LOCAL_REPOS_ROOT": str(tmp_path),
    }
    started = {name: processes.start(name, env, tmp_path) for name in processes.SERVICES}
    try:
        for service in started.values():
            processes.wait_ready(service)
        yield started
    finally:
        for service in started.values():
            processes.stop(service)


def test_every_service_exposition_passes_promtool(
    services: dict[str, processes.Service],
) -> None:
    assert PROMTOOL is not None, (
        "promtool is missing: `make test` installs it (Debian's prometheus)"
    )
    with httpx.Client(timeout=5) as client:
        for name, service in services.items():
            client.get(f"{service.url}/readyz")  # sets herald_service_ready
            response = client.get(f"{service.url}/metrics")
            assert response.status_code == 200, name
            text = response.text
            assert f'herald_service_ready{{service="{name}"}} 1.0' in text, name
            check = subprocess.run(
                [PROMTOOL, "check", "metrics"],
                input=text,
                capture_output=True,
                text=True,
                check=False,
            )
            assert check.returncode == 0, f"{name}: {check.stdout}{check.stderr}"
            if name == "api":
                assert "herald_jobs_overdue" in text
                assert "herald_http_requests_total{" in text
