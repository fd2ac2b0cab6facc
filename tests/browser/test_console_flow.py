"""The console's main flow in a real browser against all five services as real processes."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By

from tests.browser.console import Console, owner_api
from tests.support.processes import Service

pytestmark = pytest.mark.e2e

COPIED = """
const done = arguments[arguments.length - 1];
navigator.clipboard.readText().then(done, error => done('unreadable: ' + error));
"""


def test_sign_in_create_a_job_run_it_read_the_post_and_see_the_bell(
    stack: dict[str, Service],
    fresh_database_url: str,
    open_console: Callable[..., Console],
    request: pytest.FixtureRequest,
) -> None:
    base = stack["api"].url
    token, api = owner_api(base, fresh_database_url, request)
    assert api.patch("/api/me", json={"timezone": "Europe/Paris"}).status_code == 200
    console = open_console(base)

    # Sign in: a wrong token is refused next to the field; the right one lands on the jobs.
    console.open("/console")
    assert console.path == "/console/signin"
    console.screenshot("sign-in")
    console.sign_in("hrld_not-a-token")
    assert console.error_for("token") == "This token is not valid."
    console.sign_in(token)
    assert console.path == "/console/jobs"
    cookie = console.driver.get_cookie("herald_console")
    assert cookie is not None
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Lax")
    assert console.driver.execute_script("return document.cookie") == ""

    # A project on the stack's local repository, then a job on it.
    console.press("New project")
    console.fill("name", "demo")
    console.fill("localRepoPath", "demo")
    console.find("#f-platforms-changelog").click()
    console.press("Create project")
    console.wait_for_text(".notice", "Project created.")
    console.click_and_wait(console.find('a[href^="/console/jobs/new?projectId="]'))

    # The preview follows the typing, and marks a run that daylight saving moves.
    console.fill("name", "Daily digest")
    console.choose("frequency", "CUSTOM")
    console.fill("schedule", "30 2 14 3 *")
    console.fill("timeConfig.timezone", "America/New_York")
    console.wait(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#preview tr.dst"))
    moved = console.find("#preview tr.dst").text
    assert "DST" in moved
    assert "moved: 02:30 does not exist, ran at 03:00 EDT" in moved
    console.screenshot("preview-dst")

    # A schedule the API refuses: the preview says why, and so does the field after submitting.
    console.fill("schedule", "61 2 * * *")
    console.wait_for_text("#preview", "minute 61 out of range 0-59")
    console.press("Create job")
    refused = api.post(
        "/api/cron/schedule/preview",
        json={"frequency": "CUSTOM", "schedule": "61 2 * * *", "timeConfig": {}},
    ).json()["errors"]
    assert refused == [{"field": "schedule", "message": "minute 61 out of range 0-59"}]
    assert console.error_for("schedule") == refused[0]["message"]
    assert console.find("#error-summary").text.count("schedule:") == 1
    console.screenshot("field-error")

    console.choose("frequency", "DAILY")
    console.fill("timeConfig.timezone", "Europe/Berlin")
    console.wait_for_text("#preview", "0 9 * * *")
    # The preview: a column per zone, the job's first.
    headings = [cell.text for cell in console.find_all("#preview thead th")]
    assert headings == [
        "Job's zone (Europe/Berlin)",
        "Your zone (Europe/Paris)",
        "UTC",
        "Daylight saving",
    ], headings
    assert console.unlabelled_inputs() == []
    console.press("Create job")
    console.wait_for_text(".notice", "Job created.")
    job_path = console.path.split("?")[0]
    assert re.fullmatch(r"/console/jobs/cron_\w+", job_path)
    summary = console.find("dl.pairs").text
    assert "Every day at 09:00 (Europe/Berlin) 0 9 * * *" in summary
    # The next run in the job's own zone; the viewer's (Paris) reads the same clock, so once.
    job = api.get(f"/api/cron/schedules/{job_path.rsplit('/', 1)[1]}").json()["data"]
    next_run = datetime.fromisoformat(job["nextRunAt"])
    berlin = next_run.astimezone(ZoneInfo("Europe/Berlin"))
    own = f"{berlin:%a %Y-%m-%d} 09:00 Europe/Berlin"
    assert f"Next run\n{own}\n" in summary + "\n", summary
    assert "UTC" not in summary.split("Next run", 1)[1].split("Retries", 1)[0], summary
    # A viewer in UTC sees the job's zone first and their own clock beside it.
    assert api.patch("/api/me", json={"timezone": "UTC"}).status_code == 200
    console.open(job_path)
    summary = console.find("dl.pairs").text
    assert f"Next run\n{own} ({next_run.astimezone(UTC):%H:%M} UTC)\n" in summary, summary
    upcoming = console.find("ol.upcoming li").text
    assert upcoming == f"{own} ({next_run.astimezone(UTC):%H:%M} UTC)", upcoming
    assert api.patch("/api/me", json={"timezone": "Europe/Paris"}).status_code == 200
    console.open(job_path)
    assert console.find("#bell").get_attribute("data-count") == "0"
    assert "Success rate\nno runs yet" in console.find("#statistics").text
    assert console.find('link[rel="icon"]').get_attribute("href").endswith("/favicon.svg")
    console.screenshot("job")
    assert console.foreign_requests() == []
    assert len(console.find_all('link[href="/console/static/console.css"]')) == 1

    # Trigger, watch the run complete (the page follows it), read the post.
    console.press("Run now")
    assert console.path.startswith("/console/executions/")
    execution_id = console.path.split("/")[3].split("?")[0]
    # When it was due, in the job's zone (the viewer's, Paris, reads the same clock).
    scheduled = console.find("#scheduled-for").text
    assert re.fullmatch(r"\w{3} \d{4}-\d\d-\d\d \d\d:\d\d Europe/Berlin", scheduled), scheduled
    console.screenshot("triggered")
    console.wait_for_text("#execution-status", "COMPLETED", timeout=90)
    execution = api.get(f"/api/cron/executions/{execution_id}").json()["data"]
    assert execution["status"] == "COMPLETED"
    posts = {post["platform"]: post for post in execution["content"]}
    assert set(posts) == {"x", "linkedin", "blog", "changelog"}
    x_post = console.find('article.post[data-platform="x"]')
    assert x_post.find_element(By.CSS_SELECTOR, ".post-body").text == posts["x"]["body"].strip()
    assert (
        x_post.find_element(By.CSS_SELECTOR, ".characters").text
        == f"{posts['x']['characters']} / 280 characters"
    )
    blog = console.find('article.post[data-platform="blog"] .characters').text
    assert blog == f"{posts['blog']['characters']} characters"
    timeline = console.find("ol.timeline").text
    for step in ("scan started", "scan completed", "generate completed", "execution completed"):
        assert step in timeline, timeline

    console.driver.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    x_post.find_element(By.CSS_SELECTOR, "button.copy").click()
    console.wait_for_text('article.post[data-platform="x"] .copied', "Copied.")
    assert console.driver.execute_async_script(COPIED) == posts["x"]["body"]
    console.screenshot("completed")
    assert console.foreign_requests() == []

    # The notifier's alert reaches the bell without a reload.
    console.wait(lambda _: console.find("#bell").get_attribute("data-count") == "1", timeout=60)
    assert console.find("#bell-count").text == "1"
    console.screenshot("bell")
    console.click_and_wait(console.find("#bell"))
    alert = console.find("li.alert.unread")
    assert "Daily digest" in alert.text
    console.click_and_wait(alert.find_element(By.CSS_SELECTOR, "form button"))
    console.wait_for_text(".notice", "Alert marked read.")
    assert console.find("#bell").get_attribute("data-count") == "0"
    assert not console.find("#bell-count").is_displayed()

    # Statistics and the chart of recent runs.
    console.open(job_path)
    stats = console.find("#statistics").text
    assert "100.00 %" in stats
    assert "1 (0 failed)" in stats
    assert len(console.find_all("svg rect.bar.completed")) == 1
    history = console.find("table.history").text
    assert "COMPLETED" in history
    assert "manual" in history
    console.screenshot("statistics")

    # A run that fails shows its error and stack, and counts in the job's statistics.
    broken = api.post(
        "/api/projects", json={"name": "broken", "localRepoPath": "missing", "platforms": ["x"]}
    )
    assert broken.status_code == 201, broken.text
    failing = api.post(
        "/api/cron/schedule",
        json={
            "projectId": broken.json()["data"]["id"],
            "name": "Broken digest",
            "frequency": "DAILY",
            "timeConfig": {"hour": 9, "minute": 0},
        },
    )
    assert failing.status_code == 201, failing.text
    console.open("/console/jobs")
    console.press("Run Broken digest now")
    console.wait_for_text("#execution-status", "FAILED", timeout=90)
    error = console.find("section.failure")
    assert "'missing' is not a git repository" in error.text
    error.find_element(By.CSS_SELECTOR, "summary").click()
    assert "Traceback" in error.find_element(By.CSS_SELECTOR, "pre.stack").text
    console.screenshot("failed")
    console.press("Broken digest")
    stats = console.find("#statistics").text
    assert "0.00 %" in stats
    assert "1 (1 failed)" in stats
    assert len(console.find_all("svg rect.bar.failed")) == 1
    assert "FAILED" in console.find("table.history").text
