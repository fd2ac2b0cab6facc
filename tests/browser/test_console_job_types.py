"""Job types in a real browser, against all five services as real processes: a sync and an
analytics job made in the form, each run's page showing its own result."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.browser.console import Console, signed_in_with_project
from tests.support.processes import Service

pytestmark = pytest.mark.e2e


def create(console: Console, project_id: str, job_type: str, name: str) -> str:
    console.open(f"/console/jobs/new?projectId={project_id}")
    console.find(f"#f-type-{job_type}").click()
    console.fill("name", name)
    console.press("Create job")
    console.wait_for_text(".notice", "Job created.")
    return console.path.split("?")[0].rsplit("/", 1)[1]


def run(console: Console, job_id: str) -> str:
    console.open(f"/console/jobs/{job_id}")
    console.press("Run now")
    execution_id = console.path.split("/")[3].split("?")[0]
    console.wait_for_text("#execution-status", "COMPLETED", timeout=90)
    return execution_id


def test_a_sync_and_an_analytics_job_each_show_their_result(
    stack: dict[str, Service],
    fresh_database_url: str,
    open_console: Callable[..., Console],
    request: pytest.FixtureRequest,
) -> None:
    console, api, project_id = signed_in_with_project(
        stack["api"].url, fresh_database_url, open_console, request
    )

    console.open(f"/console/jobs/new?projectId={project_id}")
    # Each type with its one-line explanation; the seed's type chosen by default.
    assert console.find("#f-type-GENERATE_CONTENT").is_selected()
    assert "uses no AI" in console.find("#h-f-type-SYNC_GITHUB").text
    assert "with a chart" in console.find("#h-f-type-ANALYTICS").text
    assert console.unlabelled_inputs() == []
    console.screenshot("job-types")

    sync_id = create(console, project_id, "SYNC_GITHUB", "Mirror")
    assert console.find("#job-type").text == "Sync activity"
    assert api.get(f"/api/cron/schedules/{sync_id}").json()["data"]["type"] == "SYNC_GITHUB"
    run(console, sync_id)
    # The stack's repository has three commits and a tag, made when it started.
    console.wait_for_text(
        "#result", "Synced 3 commits, 0 merged pull requests, 0 closed issues, 1 tag"
    )
    rows = console.find_all("#synced tbody tr")
    assert sorted(row.get_attribute("data-kind") for row in rows) == ["commit"] * 3 + ["tag"]
    assert console.find_all("#posts-title") == []
    console.screenshot("sync-result")

    digest_id = create(console, project_id, "ANALYTICS", "Numbers")
    run(console, digest_id)
    console.wait_for_text("#result", "Digest sent: 3 commits")
    assert len(console.find_all("#digest-chart rect.bar.commits")) >= 1
    assert "Mirror" in console.find("#digest-jobs").text
    assert console.foreign_requests() == []
    console.driver.execute_script("document.getElementById('digest-chart').scrollIntoView()")
    console.screenshot("digest-result")

    console.open("/console/notifications")
    console.wait_for_text("main", "Numbers: activity digest", timeout=30)
