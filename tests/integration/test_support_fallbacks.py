"""The test helpers that read the broker work without its management API: pointed at a
closed management port they fall back to rabbitmqctl, and agree with the API."""

from __future__ import annotations

import aio_pika
import pytest

from tests.support import processes, servers
from tests.support.polling import poll


@pytest.fixture
def closed_management(monkeypatch: pytest.MonkeyPatch) -> None:
    # A port nothing listens on: the broker itself is left as it is.
    monkeypatch.setenv("RABBITMQ_MANAGEMENT_URL", f"http://127.0.0.1:{processes.free_port()}")


async def test_queue_depth_and_connection_names_agree_through_either_way(
    fresh_amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = await aio_pika.connect(
        fresh_amqp_url, client_properties={"connection_name": "herald-fallback-check"}
    )
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue("fallback.check", durable=False)
        for n in range(3):
            await channel.default_exchange.publish(aio_pika.Message(b"%d" % n), queue.name)

        # The API's figures are statistics, refreshed every few seconds: waited for.
        through_api = (
            poll(lambda: servers.queue_depth(fresh_amqp_url, queue.name), lambda n: n == 3, 30),
            poll(
                lambda: servers.connection_names(fresh_amqp_url),
                lambda names: "herald-fallback-check" in names,
                30,
            ),
        )
        monkeypatch.setenv("RABBITMQ_MANAGEMENT_URL", f"http://127.0.0.1:{processes.free_port()}")
        through_ctl = (
            servers.queue_depth(fresh_amqp_url, queue.name),
            servers.connection_names(fresh_amqp_url),
        )
    assert through_api[0] == through_ctl[0] == 3
    assert "herald-fallback-check" in through_api[1]
    assert sorted(through_api[1]) == sorted(through_ctl[1])
    assert servers.queue_depth(fresh_amqp_url, "no.such.queue") == 0


@pytest.mark.usefixtures("closed_management")
def test_a_vhost_is_made_and_removed_without_the_management_api(amqp_url: str) -> None:
    vhost = servers.unique_name("herald-fallback")
    url = servers.create_vhost(amqp_url, vhost)
    assert url.endswith("/" + vhost)
    assert servers.queue_depth(url, "anything") == 0  # the vhost exists and is empty
    servers.delete_vhost(amqp_url, vhost)
    vhosts = [row["name"] for row in servers._ctl_json("list_vhosts", "name")]
    assert vhost not in vhosts
