"""The job form's daylight-saving choices in a real browser: offered when they apply, saved,
previewed and shown on the job's page."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from selenium.webdriver.support.ui import Select

from tests.browser.console import Console
from tests.browser.seed import Tenant

pytestmark = pytest.mark.e2e  # the api service runs as a real process

# March 28th at 02:30: in 2027 the spring-forward day in Berlin, so 02:30 does not exist.
SCHEDULE = "30 2 28 3 *"
DISABLED = "return document.getElementById('dst-choices').disabled;"


def test_the_form_offers_the_policies_for_fixed_times_and_the_job_page_shows_them(
    api_process: str, owner: Tenant, api: httpx.Client, open_console: Callable[..., Console]
) -> None:
    assert api.patch("/api/me", json={"timezone": "Europe/Berlin"}).status_code == 200
    console = open_console(api_process)
    console.sign_in(owner.token)
    console.open(f"/console/jobs/new?projectId={owner.project_id}")

    # A preset is at a fixed local time: the choices are offered, at classic cron's defaults.
    assert console.driver.execute_script(DISABLED) is False
    assert Select(console.field("timeConfig.gapPolicy")).first_selected_option.text == (
        "Run at the first moment after the gap"
    )
    assert Select(console.field("timeConfig.foldPolicy")).first_selected_option.text == (
        "Run once, at the first occurrence"
    )
    assert console.find('[data-dst-when="applies"]').is_displayed()
    assert not console.find('[data-dst-when="not-applies"]').is_displayed()

    console.fill("name", "Spring digest")
    console.choose("frequency", "CUSTOM")
    console.fill("schedule", SCHEDULE)
    console.fill("timeConfig.timezone", "Europe/Berlin")
    console.wait_for_text("#preview", "moved: 02:30 does not exist, ran at 03:00 CEST")
    console.choose("timeConfig.gapPolicy", "SKIP")
    console.wait_for_text(
        "#preview", "skipped: 02:30 does not exist on 2027-03-28 (gapPolicy SKIP)"
    )
    assert "moved:" not in console.find("#preview").text
    console.screenshot("preview-skip")

    # A schedule that follows elapsed time: the choices are disabled, and the line says why.
    console.fill("schedule", "*/15 * * * *")
    console.wait(lambda driver: driver.execute_script(DISABLED) is True)
    assert console.find('[data-dst-when="not-applies"]').is_displayed()
    assert not console.find('[data-dst-when="applies"]').is_displayed()
    assert "No runs to show" not in console.find("#preview").text
    console.screenshot("policies-disabled")

    # Forced on all the same (as a browser without the script would post it), the API's
    # refusal lands next to the choice.
    console.driver.execute_script("document.getElementById('dst-choices').disabled = false;")
    console.press("Create job")
    refused = api.post(
        "/api/cron/schedule",
        json={
            "projectId": owner.project_id,
            "name": "Spring digest",
            "frequency": "CUSTOM",
            "schedule": "*/15 * * * *",
            "timeConfig": {"timezone": "Europe/Berlin", "gapPolicy": "SKIP"},
        },
    )
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert error["field"] == "timeConfig.gapPolicy"
    assert console.error_for("timeConfig.gapPolicy") == error["message"]
    # The page comes back with the choices disabled, as they do not apply.
    assert console.driver.execute_script(DISABLED) is True

    # Back to a fixed time: the choices return as they were chosen.
    console.fill("schedule", SCHEDULE)
    console.wait(lambda driver: driver.execute_script(DISABLED) is False)
    assert console.field("timeConfig.gapPolicy").get_attribute("value") == "SKIP"
    console.choose("timeConfig.foldPolicy", "SECOND")
    assert console.unlabelled_inputs() == []
    console.press("Create job")
    console.wait_for_text(".notice", "Job created.")
    job_id = console.path.split("/")[3].split("?")[0]
    job = api.get(f"/api/cron/schedules/{job_id}").json()["data"]
    assert job["timeConfig"] == {
        "timezone": "Europe/Berlin",
        "gapPolicy": "SKIP",
        "foldPolicy": "SECOND",
    }

    # The job's page says what daylight saving does to it, and marks the dropped run.
    policy = console.find("#dst-policy").text
    assert "a time that does not exist is skipped that day (gapPolicy SKIP)" in policy, policy
    assert "runs once, at the second (foldPolicy SECOND)" in policy, policy
    assert "skipped: 02:30 does not exist on 2027-03-28 (gapPolicy SKIP)" in (
        console.find("ol.upcoming").text
    )
    console.screenshot("job-policy")

    # Editing it starts from the saved choices.
    console.open(f"/console/jobs/{job_id}/edit")
    assert console.field("timeConfig.gapPolicy").get_attribute("value") == "SKIP"
    assert console.field("timeConfig.foldPolicy").get_attribute("value") == "SECOND"
    assert console.driver.execute_script(DISABLED) is False
