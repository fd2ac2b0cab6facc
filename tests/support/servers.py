"""Isolated databases and RabbitMQ vhosts on the servers the environment points at."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg
import httpx
from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


_containers: dict[str, Any] = {}


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2
        ).close()
    except OSError:
        return False
    return True


def _docker_available() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    return subprocess.run([docker, "info"], capture_output=True, check=False).returncode == 0


def base_database_url() -> str:
    """DATABASE_URL if given; else the local server; else a container where Docker runs."""
    if "DATABASE_URL" in os.environ or _answers(DEFAULT_DATABASE_URL, 5432):
        return os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    if not _docker_available():
        return DEFAULT_DATABASE_URL  # the tests then fail saying the server does not answer
    if "postgres" not in _containers:
        from testcontainers.community.postgres import PostgresContainer

        container = PostgresContainer("postgres:16-alpine", driver=None)
        container.start()
        atexit.register(container.stop)
        _containers["postgres"] = container
    return str(_containers["postgres"].get_connection_url())


def base_amqp_url() -> str:
    """AMQP_URL if given; else the local broker; else a container where Docker runs."""
    if "AMQP_URL" in os.environ or _answers(DEFAULT_AMQP_URL, 5672):
        return os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    if not _docker_available():
        return DEFAULT_AMQP_URL
    if "rabbitmq" not in _containers:
        from testcontainers.core.container import DockerContainer

        container = DockerContainer("rabbitmq:3.13-management").with_exposed_ports(5672, 15672)
        container.start()
        url = (
            f"amqp://guest:guest@{container.get_container_host_ip()}:"
            f"{container.get_exposed_port(5672)}/"
        )
        for _ in range(120):
            if _answers(url, 5672):
                break
            time.sleep(1)
        atexit.register(container.stop)
        _containers["rabbitmq"] = container
        host = container.get_container_host_ip()
        os.environ.setdefault(
            "RABBITMQ_MANAGEMENT_URL", f"http://{host}:{container.get_exposed_port(15672)}"
        )
    container = _containers["rabbitmq"]
    return (
        f"amqp://guest:guest@{container.get_container_host_ip()}:"
        f"{container.get_exposed_port(5672)}/"
    )


def base_redis_url() -> str:
    """REDIS_URL if given; else the local server; else a container where Docker runs."""
    if "REDIS_URL" in os.environ or _answers(DEFAULT_REDIS_URL, 6379):
        return os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    if not _docker_available():
        return DEFAULT_REDIS_URL
    if "redis" not in _containers:
        from testcontainers.redis import RedisContainer

        container = RedisContainer("redis:7-alpine")
        container.start()
        atexit.register(container.stop)
        _containers["redis"] = container
    container = _containers["redis"]
    return f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"


async def delete_redis_keys(url: str, prefix: str) -> None:
    """Remove a test's keys (its own prefix) from the shared Redis."""
    import redis.asyncio as redis

    client = redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


async def create_database(base_url: str, name: str, *, template: str | None = None) -> str:
    """Create a database beside the one in `base_url` (a copy of `template`); return its URL."""
    url = make_url(base_url)
    admin = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await admin.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def drop_database(base_url: str, name: str) -> None:
    url = make_url(base_url)
    admin = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def management(amqp_url: str) -> tuple[str, tuple[str, str]]:
    """The management API's base URL and credentials for a broker's AMQP URL."""
    parts = urlsplit(amqp_url)
    base = os.environ.get("RABBITMQ_MANAGEMENT_URL", f"http://{parts.hostname}:15672")
    return base, (parts.username or "guest", parts.password or "guest")


def create_vhost(amqp_url: str, vhost: str) -> str:
    """Create a vhost the tests own (management API, else rabbitmqctl); return its AMQP URL."""
    base, auth = management(amqp_url)
    try:
        httpx.put(
            f"{base}/api/vhosts/{quote(vhost, safe='')}", auth=auth, timeout=10
        ).raise_for_status()
        httpx.put(
            f"{base}/api/permissions/{quote(vhost, safe='')}/{quote(auth[0], safe='')}",
            json={"configure": ".*", "write": ".*", "read": ".*"},
            auth=auth,
            timeout=10,
        ).raise_for_status()
    except httpx.HTTPError:
        ctl = shutil.which("rabbitmqctl")
        if ctl is None:
            raise
        subprocess.run([ctl, "add_vhost", vhost], check=True, capture_output=True)
        subprocess.run(
            [ctl, "set_permissions", "-p", vhost, auth[0], ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
    parts = urlsplit(amqp_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))


def delete_vhost(amqp_url: str, vhost: str) -> None:
    base, auth = management(amqp_url)
    try:
        httpx.delete(f"{base}/api/vhosts/{quote(vhost, safe='')}", auth=auth, timeout=10)
    except httpx.HTTPError:
        ctl = shutil.which("rabbitmqctl")
        if ctl is not None:
            subprocess.run([ctl, "delete_vhost", vhost], check=False, capture_output=True)


def _ctl_json(*args: str) -> Any:
    """Run `rabbitmqctl ... --formatter json` on this machine's broker; its decoded output."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise RuntimeError("the management API does not answer and rabbitmqctl is not installed")
    done = subprocess.run(
        [ctl, *args, "--formatter", "json"], check=True, capture_output=True, text=True, timeout=60
    )
    return json.loads(done.stdout or "[]")


def _vhost_of(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).path[1:]) or "/"


def queue_depth(amqp_url: str, queue: str) -> int:
    """Messages ready in a queue, as the management API (else rabbitmqctl) reports them."""
    vhost = _vhost_of(amqp_url)
    base, auth = management(amqp_url)
    try:
        response = httpx.get(
            f"{base}/api/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}",
            auth=auth,
            timeout=10,
        )
        response.raise_for_status()
        return int(response.json().get("messages_ready", 0))
    except httpx.TransportError:
        rows = _ctl_json("list_queues", "-p", vhost, "name", "messages_ready")
        return next((int(row["messages_ready"]) for row in rows if row["name"] == queue), 0)


def connection_names(amqp_url: str) -> list[str]:
    """Client-provided names of the connections open on the vhost of `amqp_url`."""
    vhost = _vhost_of(amqp_url)
    base, auth = management(amqp_url)
    try:
        response = httpx.get(
            f"{base}/api/vhosts/{quote(vhost, safe='')}/connections", auth=auth, timeout=10
        )
        response.raise_for_status()
        return [
            str((row.get("client_properties") or {}).get("connection_name", ""))
            for row in response.json()
        ]
    except httpx.TransportError:
        rows = _ctl_json("list_connections", "vhost", "client_properties")
        # rabbitmqctl spells a table as [name, type, value] triples.
        return [
            next(
                (
                    str(value)
                    for name, _, value in row["client_properties"]
                    if name == "connection_name"
                ),
                "",
            )
            for row in rows
            if row["vhost"] == vhost
        ]
