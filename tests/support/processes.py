"""Services as real processes, the way they are deployed: one `python -m` each."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVICES = ("api", "scheduler", "scanner", "generator", "notifier")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    name: str, env: dict[str, str], log_dir: Path, *, port: int | None = None, append: bool = False
) -> Service:
    port = port if port is not None else free_port()
    service_env = {
        **os.environ,
        **env,
        "HERALD_LOG_FORMAT": "json",
        "HERALD_API_PORT": str(port),
        "HERALD_PROBE_PORT": str(port),
    }
    log_path = log_dir / f"{name}.log"
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
    return start(service.name, service.env, service.log_path.parent, port=service.port, append=True)
