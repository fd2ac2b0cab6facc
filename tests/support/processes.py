"""Services as real processes, the way they are deployed: one `python -m` each."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.factories import token_on

SERVICES = ("api", "scheduler", "scanner", "generator", "notifier", "publisher")


# Ports handed to the servers the tests start: below Linux's ephemeral range (32768-60999),
# which the kernel also hands out as the local end of every outgoing connection, so a port
# picked with bind(0) could be taken by a client socket before its server binds it; and a
# slice of its own for each xdist worker, so two workers never pick the same one.
_LOWEST, _HIGHEST = 20_000, 32_000
_handed_out: set[int] = set()


def _slice() -> range:
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    size = (_HIGHEST - _LOWEST) // workers
    start = _LOWEST + (worker % workers) * size
    return range(start, start + size)


def free_port() -> int:
    """A loopback port nothing listens on, not handed out before in this process."""
    ports = _slice()
    offset = os.getpid() % len(ports)  # processes of one worker (a test's own) start apart
    for step in range(len(ports)):
        port = ports[(offset + step) % len(ports)]
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {ports}")


@dataclass
class Service:
    name: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def start(
    name: str,
    env: dict[str, str],
    log_dir: Path,
    *,
    port: int | None = None,
    append: bool = False,
    log_name: str | None = None,
) -> Service:
    """Start `python -m services.<name>`; `log_name` tells a second replica's log apart."""
    port = port if port is not None else free_port()
    service_env = {
        **os.environ,
        **env,
        "HERALD_LOG_FORMAT": "json",
        "HERALD_API_PORT": str(port),
        "HERALD_PROBE_PORT": str(port),
    }
    log_path = log_dir / f"{log_name or name}.log"
    with log_path.open("ab" if append else "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env=service_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Service(name, port, log_path, process, dict(env))


def wait_ready(service: Service, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(f"{service.name} exited early:\n{service.logs()}")
        try:
            with httpx.Client(timeout=2) as client:
                if client.get(f"{service.url}/readyz").status_code == 200:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{service.name} not ready in {timeout}s:\n{service.logs()}")


def stop(service: Service, timeout: float = 20.0) -> int:
    """SIGTERM, as an orchestrator would; return the exit code."""
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGTERM)
        try:
            service.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()
    return int(service.process.returncode)


def kill(service: Service) -> int:
    """SIGKILL, as a crash or the OOM killer would: no cleanup, no ack; return the exit code."""
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGKILL)
    return int(service.process.wait(timeout=10))


def restart(service: Service) -> Service:
    """Start the same service again, with the same env and port, appending to the same log."""
    if service.process.poll() is None:
        raise AssertionError(f"{service.name} is still running")
    return start(
        service.name,
        service.env,
        service.log_path.parent,
        port=service.port,
        append=True,
        log_name=service.log_path.stem,
    )


@contextmanager
def running(
    names: Iterable[str], env: dict[str, str], log_dir: Path
) -> Iterator[dict[str, Service]]:
    """Start the services, wait until each is ready, and stop them all at the end.

    A test that kills one puts its replacement in the dict; each must then exit 0 (a clean
    drain), or the test fails showing the log of the one that did not.
    """
    services = {name: start(name, env, log_dir) for name in names}
    try:
        for service in services.values():
            wait_ready(service)
        yield services
    finally:
        stop_all(services)


def stop_all(services: dict[str, Service]) -> None:
    """SIGTERM every service; fail, with the logs of those that did not exit 0, unless all did."""
    codes = {name: stop(service) for name, service in services.items()}
    for name, service in services.items():
        if codes[name] != 0:
            print(f"--- {name} exited {codes[name]} ---\n{service.logs()}")
    assert codes == dict.fromkeys(services, 0), codes


def signed_in_client(service: Service, database_url: str) -> httpx.Client:
    """A client of `service`'s API as a new user of the database at `database_url`."""
    token = asyncio.run(token_on(database_url))
    return httpx.Client(
        base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
