"""The job form's "Run only when…" section in a real browser, against all five services as
real processes: a condition refused beside its field, one saved, and a run it skips showing
why on the run's page."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.browser.console import Console, signed_in_with_project
from tests.support.processes import Service

pytestmark = pytest.mark.e2e

# The stack's repository has three commits, one each to file0.txt, file1.txt and file2.txt.
REASON = "1 commit, fewer than the 2 required"


def test_a_condition_saved_in_the_form_skips_a_run_and_its_page_says_why(
    stack: dict[str, Service],
    fresh_database_url: str,
    open_console: Callable[..., Console],
    request: pytest.FixtureRequest,
) -> None:
    console, api, project_id = signed_in_with_project(
        stack["api"].url, fresh_database_url, open_console, request
    )
    console.open(f"/console/jobs/new?projectId={project_id}")

    # The section is there, bots ignored by default; a minimum of 0 is refused beside it.
    assert console.field("conditions.ignoreAuthors").get_attribute("value") == (
        "dependabot[bot], renovate[bot]"
    )
    console.fill("name", "Only busy days")
    console.find("#conditions summary").click()
    console.find("#f-conditions-on").click()
    console.fill("conditions.minCommits", "0")
    console.fill("conditions.includePaths", "file1.*, /docs/**")
    console.press("Create job")
    assert "greater than or equal to 1" in console.error_for("conditions.minCommits")
    assert "no leading /" in console.error_for("conditions.includePaths")
    assert console.find("#conditions").get_attribute("open") is not None
    console.screenshot("conditions-refused")

    console.fill("conditions.minCommits", "2")
    console.fill("conditions.includePaths", "file1.*")
    console.press("Create job")
    console.wait_for_text(".notice", "Job created.")
    job_id = console.path.split("?")[0].rsplit("/", 1)[1]
    job = api.get(f"/api/cron/schedules/{job_id}").json()["data"]
    assert job["conditions"]["minCommits"] == 2
    assert job["conditions"]["includePaths"] == ["file1.*"]
    assert job["conditions"]["ignoreAuthors"] == ["dependabot[bot]", "renovate[bot]"]

    # The edit form shows the saved conditions again.
    console.open(f"/console/jobs/{job_id}/edit")
    assert console.field("conditions.minCommits").get_attribute("value") == "2"
    assert console.field("conditions.includePaths").get_attribute("value") == "file1.*"
    assert console.find("#f-conditions-on").is_selected()

    console.open(f"/console/jobs/{job_id}")
    console.press("Run now")
    execution_id = console.path.split("/")[3].split("?")[0]
    console.wait_for_text("#execution-status", "SKIPPED", timeout=90)
    console.wait_for_text("#skip-reason", REASON)
    assert "No post was written." in console.find("#skip-reason").text
    assert f"conditions unmet: {REASON}" in console.find("ol.timeline").text
    console.screenshot("run-skipped")
    execution = api.get(f"/api/cron/executions/{execution_id}").json()["data"]
    assert (execution["status"], execution["skipReason"]) == ("SKIPPED", REASON)
    assert execution["content"] == []
