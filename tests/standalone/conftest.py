"""The standalone mode as a real process: `herald standalone` (or `herald run`) with no servers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import processes
from tests.support.polling import poll

HERALD = str(Path(sys.executable).with_name("herald"))
# Whatever the test run points at, the standalone process must not see a server URL.
SERVER_SETTINGS = ("DATABASE_URL", "AMQP_URL", "HERALD_DATABASE_URL", "HERALD_AMQP_URL")


def standalone_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SERVER_SETTINGS}
    env.pop("HERALD_LOCAL_REPOS_ROOT", None)
    env.pop("HERALD_PUBLIC_URL", None)
    return {
        **env,
        "HERALD_DATA_DIR": str(data_dir),
        "HERALD_API_PORT": str(port),
        "HERALD_LOG_FORMAT": "json",
        **extra,
    }


def start(
    workdir: Path,
    env: dict[str, str],
    *,
    command: str = "standalone",
    log_name: str = "standalone.log",
    append: bool = False,
) -> processes.Service:
    """Start `herald <command>` in `workdir`, its output (banner and logs) in one file."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / log_name
    with log_path.open("ab" if append else "wb") as log:
        process = subprocess.Popen(
            [HERALD, command], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return processes.Service(command, int(env["HERALD_API_PORT"]), log_path, process, env)


def restart(service: processes.Service) -> processes.Service:
    assert service.process.poll() is not None, "still running"
    return start(
        service.log_path.parent,
        service.env,
        command=service.name,
        log_name=service.log_path.name,
        append=True,
    )


def demo_token(service: processes.Service) -> str:
    """The last token the process printed (every start prints the demo's one token)."""
    pattern = r"Demo token: (hrld_[\w-]+)"
    # The banner follows the API's readiness by a moment.
    logs = poll(service.logs, lambda text: re.search(pattern, text), timeout=30)
    return str(re.findall(pattern, logs)[-1])


def get(service: processes.Service, token: str, path: str) -> dict[str, object]:
    response = httpx.get(
        f"{service.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def alerts_for(service: processes.Service, token: str, execution_id: str) -> list[object]:
    data = get(service, token, "/api/notifications")["data"]
    assert isinstance(data, list)
    return [alert for alert in data if alert.get("executionId") == execution_id]


def wait_exit(service: processes.Service, timeout: float = 30) -> int:
    return int(service.process.wait(timeout=timeout))


def execution_of(service: processes.Service, token: str, execution_id: str) -> dict[str, object]:
    data = get(service, token, f"/api/cron/executions/{execution_id}")["data"]
    assert isinstance(data, dict)
    return data


def wait_status(
    service: processes.Service, token: str, execution_id: str, status: str, timeout: float = 90
) -> dict[str, object]:
    result: dict[str, object] = poll(
        lambda: execution_of(service, token, execution_id),
        lambda execution: execution["status"] == status,
        timeout=timeout,
    )
    return result


def first_run_id(service: processes.Service) -> str:
    """The demo run the first start began, as its banner links it."""
    pattern = r"/console/executions/(exec_\w+)"
    logs = poll(service.logs, lambda text: re.search(pattern, text), timeout=30)
    return str(re.findall(pattern, logs)[-1])


def settle_demo(workdir: Path, env: dict[str, str]) -> None:
    """Start once with `env` and the built-in writer, let the demo's first run complete, stop:
    a test that counts a provider's calls starts after it, with no demo run of its own."""
    own_writer = {key: value for key, value in env.items() if not key.startswith("HERALD_AI_")}
    service = start(workdir, own_writer, log_name="settle.log")
    try:
        processes.wait_ready(service)
        wait_status(service, demo_token(service), first_run_id(service), "COMPLETED")
    finally:
        assert processes.stop(service) == 0, service.logs()
