"""Reviewing and publishing a post in a real browser, against the api, the scheduler and the
publisher as real processes and a local Mastodon instance: the project's credential saved,
a draft edited (an over-length edit refused with the limit named), approved, scheduled, and
seen published with its link."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.secrets import generate_key
from tests.browser.console import Console
from tests.browser.seed import drafts
from tests.support import processes
from tests.support.fakes.mastodon import FakeMastodon
from tests.support.fakes.server import ThreadedServer

pytestmark = pytest.mark.e2e

TOKEN = "mastodon-token-browser"


@pytest.fixture
def mastodon() -> Iterator[tuple[FakeMastodon, ThreadedServer]]:
    instance = FakeMastodon()
    instance.add_account("herald", TOKEN)
    server = ThreadedServer(instance.asgi).start()
    yield instance, server
    server.close()


@pytest.fixture
def publishing_stack(
    fresh_database_url: str, fresh_amqp_url: str, tmp_path: Path
) -> Iterator[dict[str, processes.Service]]:
    env = {
        "DATABASE_URL": fresh_database_url,
        "AMQP_URL": fresh_amqp_url,
        "HERALD_SECRET_KEY": generate_key(),
        # The local instance listens on loopback, which herald refuses unless allowed.
        "HERALD_OUTBOUND_ALLOW_NETWORKS": "127.0.0.1/32",
        # ... and over plain http, which carries credentials in clear unless allowed.
        "HERALD_WEBHOOK_ALLOW_HTTP": "true",
        "HERALD_SCHEDULER_MAX_SLEEP": "2",
    }
    with processes.running(("api", "scheduler", "publisher"), env, tmp_path) as services:
        yield services


def test_a_draft_is_edited_approved_scheduled_and_seen_published_with_its_link(
    publishing_stack: dict[str, processes.Service],
    fresh_database_url: str,
    mastodon: tuple[FakeMastodon, ThreadedServer],
    open_console: Callable[..., Console],
) -> None:
    instance, server = mastodon
    token, ids = asyncio.run(drafts(fresh_database_url))
    post = f"/console/posts/{ids['mastodon']}"
    console = open_console(publishing_stack["api"].url)
    console.sign_in(token)

    # Scheduling before the project can publish to Mastodon says so, with the way there.
    console.open(post)
    console.press("Schedule")
    assert "no Mastodon credential" in console.find("#post-problem").text
    console.press("How this project publishes")
    console.fill("instanceUrl", server.url)
    console.fill("accessToken", TOKEN)
    console.press("Save Mastodon")
    console.wait_for_text(".notice", "Saved.")
    assert TOKEN not in console.driver.page_source
    console.screenshot("credential-saved")

    console.open(post)
    console.fill("body", "x" * 501)
    console.press("Save")
    assert (
        console.error_for("body")
        == "501 characters as Mastodon counts them, over Mastodon's default 500 "
        "(the instance's own limit is known once herald has published there)"
    )
    console.fill("body", "herald 2.1 is out: faster scans, https://example.org/notes")
    console.press("Save")
    console.wait_for_text(".notice", "Post saved.")
    console.press("Approve")
    console.wait_for_text("#post-state", "APPROVED")
    console.press("Schedule")
    console.wait_for_text(".notice", "Post scheduled.")
    console.screenshot("scheduled")

    # The scheduler hands it to the publisher; the page shows it published with its link.
    def published(driver: object) -> bool:
        console.open(post)
        return bool(console.find_all("#published-link"))

    console.wait(published, timeout=60)
    (status,) = instance.statuses
    assert status["text"] == "herald 2.1 is out: faster scans, https://example.org/notes"
    link = console.find("#published-link")
    assert link.get_attribute("href") == status["url"]
    assert "by herald" in console.find("#post-history").text
    console.screenshot("published")

    console.press("its run")
    assert console.find(".published-link").get_attribute("href") == status["url"]
