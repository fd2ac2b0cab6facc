"""A WEBHOOK job made in a real browser, against the five services as real processes: the
URL field shown for that type only, a private address refused beside it, the signing secret
shown once on a page of its own."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.browser.console import Console, signed_in_with_project
from tests.support.processes import Service

pytestmark = pytest.mark.e2e


def test_a_webhook_job_is_made_in_the_form_and_its_secret_shown_once(
    stack: dict[str, Service],
    fresh_database_url: str,
    open_console: Callable[..., Console],
    request: pytest.FixtureRequest,
) -> None:
    console, api, project_id = signed_in_with_project(
        stack["api"].url, fresh_database_url, open_console, request
    )
    console.open(f"/console/jobs/new?projectId={project_id}")

    # The URL is asked for only when the job delivers somewhere.
    url_field = console.find('[data-types="WEBHOOK"]')
    assert not url_field.is_displayed()
    console.find("#f-type-WEBHOOK").click()
    console.wait(lambda _: url_field.is_displayed())

    console.fill("name", "Hooked")
    console.fill("webhookUrl", "https://192.168.7.7/in/browser0T0K3N")
    console.press("Create job")
    assert "a private address" in console.error_for("webhookUrl")
    assert console.field("webhookUrl").get_attribute("value") == ""
    assert "browser0T0K3N" not in console.find("main").text
    console.screenshot("webhook-refused")

    console.fill("webhookUrl", "https://hooks.example.com/in/browser0T0K3N")
    console.press("Create job")
    console.wait_for_text("h1", "Job created")
    secret = console.find("#secret-value").text
    assert len(secret) >= 40
    console.screenshot("webhook-secret")
    [job] = api.get("/api/cron/schedules").json()["data"]
    assert job["type"] == "WEBHOOK" and job["webhookHost"] == "hooks.example.com"

    console.open(f"/console/jobs/{job['id']}")
    assert "hooks.example.com" in console.find("#webhook-host").text
    assert secret not in console.find("main").text
