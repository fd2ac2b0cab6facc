"""Services under broken dependencies and signals, as real processes."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.support import processes
from tests.support.polling import poll
from tests.support.proxy import TcpProxy

pytestmark = pytest.mark.e2e


def readiness(service: processes.Service) -> int:
    try:
        with httpx.Client(timeout=3) as client:
            return client.get(f"{service.url}/readyz").status_code
    except httpx.HTTPError:
        return 0


def wait_status(service: processes.Service, status: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while readiness(service) != status:
        if time.monotonic() > deadline:
            raise AssertionError(f"{service.name} never answered {status}:\n{service.logs()}")
        time.sleep(0.2)


def through(url: str, proxy_port: int) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy_port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def test_a_worker_is_not_ready_without_its_broker_and_recovers_when_it_returns(
    fresh_amqp_url: str, tmp_path: Path
) -> None:
    target = urlsplit(fresh_amqp_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5672, processes.free_port())
    scanner = processes.start(
        "scanner", {"AMQP_URL": through(fresh_amqp_url, proxy.port)}, tmp_path
    )
    try:
        wait_status(scanner, 503)  # broker unreachable from the start
        # Its probe answers before its first connection attempt: restore only once that
        # attempt has failed, or a slow start would find the broker already back.
        poll(scanner.logs, lambda logs: "dependency unavailable; retrying" in logs, timeout=60)
        proxy.restore()
        wait_status(scanner, 200)
        proxy.cut()  # the broker goes away under a running service
        wait_status(scanner, 503)
        proxy.restore()
        wait_status(scanner, 200)
    finally:
        code = processes.stop(scanner)
        proxy.close()
    assert code == 0, scanner.logs()
    assert "dependency unavailable; retrying" in scanner.logs()


def test_the_api_reports_a_missing_database_and_recovers(
    fresh_database_url: str, fresh_amqp_url: str, tmp_path: Path
) -> None:
    target = urlsplit(fresh_database_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432, processes.free_port())
    proxy.restore()
    url = fresh_database_url.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}")
    api = processes.start("api", {"DATABASE_URL": url, "AMQP_URL": fresh_amqp_url}, tmp_path)
    try:
        wait_status(api, 200)
        proxy.cut()
        wait_status(api, 503)
        proxy.restore()
        wait_status(api, 200)
    finally:
        code = processes.stop(api)
        proxy.close()
    assert code == 0, api.logs()
