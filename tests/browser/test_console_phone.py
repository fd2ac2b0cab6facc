"""A job managed on a phone-width screen, with the keyboard where a person would use it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from tests.browser.console import PHONE, Console
from tests.browser.seed import tenant

pytestmark = pytest.mark.e2e  # the api service runs as a real process


def test_create_toggle_and_delete_a_job_at_390_pixels(
    api_process: str, fresh_database_url: str, open_console: Callable[..., Console]
) -> None:
    owner = asyncio.run(tenant(fresh_database_url))
    console = open_console(api_process, size=PHONE, label="phone")

    # The token field has the focus on arrival; Enter signs in.
    console.open("/console/signin")
    token_field = console.driver.switch_to.active_element
    assert token_field.get_attribute("name") == "token"
    token_field.send_keys(owner.token)
    console.click_and_wait(token_field, keyboard=True)
    assert console.path == "/console/jobs"
    assert not console.overflows_horizontally()
    # The first Tab reaches the skip link, drawn with a visible focus ring.
    skip = console.tab()
    assert skip.text == "Skip to content"
    assert console.focus_ring(skip) == "solid 3px"
    console.screenshot("jobs")

    console.click_and_wait(console.find('a[href^="/console/jobs/new?projectId="]'))
    console.fill("name", "Weekly roundup")
    console.choose("frequency", "WEEKLY")
    assert console.field("timeConfig.dayOfWeek").is_displayed()
    assert not console.field("timeConfig.dayOfMonth").is_displayed()
    assert not console.field("schedule").is_displayed()
    console.choose("timeConfig.dayOfWeek", "1")
    console.fill("timeConfig.hour", "8")
    console.fill("timeConfig.minute", "30")
    console.wait_for_text("#preview", "30 8 * * 1")
    assert "Mon" in console.find("#preview tbody tr").text
    assert not console.overflows_horizontally()
    console.screenshot("new-job")
    create = console.find('#job-form button[type="submit"]')
    console.click_and_wait(create, keyboard=True)
    console.wait_for_text(".notice", "Job created.")
    assert "Every Monday at 08:30 (UTC)" in console.find("dl.pairs").text
    assert not console.overflows_horizontally()
    console.screenshot("job")

    # Edit: the form opens with the saved values and its preview; saving changes the schedule.
    console.press("Edit Weekly roundup")
    assert console.field("timeConfig.minute").get_attribute("value") == "30"
    assert "30 8 * * 1" in console.find("#preview").text
    console.choose("timeConfig.dayOfWeek", "5")
    console.wait_for_text("#preview", "30 8 * * 5")
    console.press("Save")
    console.wait_for_text(".notice", "Job saved.")
    assert "Every Friday at 08:30 (UTC)" in console.find("dl.pairs").text

    disable = console.find('button[aria-label="Disable Weekly roundup"]')
    console.click_and_wait(disable, keyboard=True)
    console.wait_for_text(".notice", "Job disabled.")
    assert console.find("h1 .badge").text == "Disabled"
    assert "once enabled" in console.find("#disabled-note").text
    assert "—" in console.find("dl.pairs").text  # no next run
    console.press("Enable Weekly roundup")
    console.wait_for_text(".notice", "Job enabled.")
    assert console.find("h1 .badge").text == "Enabled"
    assert console.find_all("#disabled-note") == []

    console.press("Delete Weekly roundup")
    assert console.find("h1").text == "Delete “Weekly roundup”?"
    console.screenshot("confirm-delete")
    console.press("Keep it")
    assert console.find("h1 .badge").text == "Enabled"
    console.press("Delete Weekly roundup")
    console.press("Delete the job")
    console.wait_for_text(".notice", "Job deleted.")
    assert console.find_all("li.job") == []
    console.screenshot("deleted")
    with httpx.Client(
        base_url=api_process, headers={"Authorization": f"Bearer {owner.token}"}, timeout=10
    ) as api:
        assert api.get("/api/cron/schedules").json()["count"] == 0
