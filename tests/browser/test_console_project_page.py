"""A project's page in the browser: the webhook's URL copied, its secret made and shown once,
the GitHub credential switched, at phone width."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from tests.browser.console import PHONE, Console
from tests.browser.seed import tenant

pytestmark = pytest.mark.e2e  # the api service runs as a real process

TOKEN = "github_pat_11AAAAAAA0browser0secret"


def test_the_webhook_and_the_credential_are_managed_on_the_project_page(
    api_process: str, fresh_database_url: str, open_console: Callable[..., Console]
) -> None:
    owner = asyncio.run(tenant(fresh_database_url))
    made = httpx.post(
        f"{api_process}/api/projects",
        headers={"Authorization": f"Bearer {owner.token}"},
        json={"name": "site", "githubRepoOwner": "octo", "githubRepoName": "site"},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    project_id = made.json()["data"]["id"]
    console = open_console(api_process, size=PHONE, label="project")
    console.sign_in(owner.token)

    console.click_and_wait(console.find(f'a[href="/console/projects/{project_id}"]'))
    assert console.path == f"/console/projects/{project_id}"
    assert console.unlabelled_inputs() == []
    assert not console.overflows_horizontally()
    assert console.find("#webhook-url").text.endswith(f"/api/webhooks/github?project={project_id}")
    console.find('button[data-copy="webhook-url"]').click()
    console.wait_for_text("#webhook-title ~ p .copied", "Copied.")

    console.press("Make a secret")
    secret = console.find("#webhook-secret").text
    assert len(secret) >= 32
    console.screenshot("secret-shown")
    console.open(f"/console/projects/{project_id}")
    assert secret not in console.driver.page_source
    assert "A secret is set." in console.find("body").text

    console.find("#f-credential-token").click()
    console.fill("githubToken", TOKEN)
    console.press("Save credential")
    console.wait_for_text(".notice", "GitHub credential saved.")
    assert "the project's own token" in console.find("#source").text
    assert TOKEN not in console.driver.page_source
    assert not console.overflows_horizontally()
