"""Job dependencies in a real browser, against all five services as real processes: a job
made to run after another (with a run condition) in the form, the graph of both on the job
pages, the run its upstream started skipped with its reason and a link to that upstream,
a cycle refused beside the dependency editor, and the upstream disabled said on the
dependent's page."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.browser.console import Console, signed_in_with_project
from tests.support.polling import poll
from tests.support.processes import Service

pytestmark = pytest.mark.e2e

# The stack's repository has three commits, one each to file0.txt, file1.txt and file2.txt.
REASON = "1 commit, fewer than the 2 required"


def test_a_dependency_and_a_condition_made_in_the_form_show_in_the_graph_and_the_skipped_run(
    stack: dict[str, Service],
    fresh_database_url: str,
    open_console: Callable[..., Console],
    request: pytest.FixtureRequest,
) -> None:
    console, api, project_id = signed_in_with_project(
        stack["api"].url, fresh_database_url, open_console, request
    )
    upstream = api.post(
        "/api/cron/schedule",
        json={
            "projectId": project_id,
            "name": "Generate",
            "frequency": "MONTHLY",
            "timeConfig": {"dayOfMonth": 28, "hour": 3, "minute": 0},
        },
    )
    assert upstream.status_code == 201, upstream.text
    upstream_id = upstream.json()["data"]["id"]

    console.open(f"/console/jobs/new?projectId={project_id}")
    console.fill("name", "Publish")
    console.choose("frequency", "MONTHLY")
    console.find("#dependencies summary").click()
    console.choose(f"dependsOn.{upstream_id}", "onSuccess")
    console.driver.execute_script("arguments[0].scrollIntoView()", console.find("#dependencies"))
    console.screenshot("dependency-chosen")
    console.find("#conditions summary").click()
    console.find("#f-conditions-on").click()
    console.fill("conditions.minCommits", "2")
    console.fill("conditions.includePaths", "file1.*")
    console.press("Create job")
    console.wait_for_text(".notice", "Job created.")
    job_id = console.path.split("?")[0].rsplit("/", 1)[1]
    job = api.get(f"/api/cron/schedules/{job_id}").json()["data"]
    assert job["dependsOn"] == [{"jobId": upstream_id, "on": "onSuccess"}]
    assert job["conditions"]["minCommits"] == 2

    # The graph: both jobs drawn, the edge in words, the upstream listed with a link.
    drawn = {node.get_attribute("data-job-id") for node in console.find_all("#dependencies g.node")}
    assert drawn == {upstream_id, job_id}
    assert "Publish runs after Generate when it succeeds" in console.find("#graph-summary").text
    assert console.find("#upstreams").text == "Generate when it succeeds"
    assert console.find("#dependencies svg").get_attribute("role") == "img"
    console.driver.execute_script("arguments[0].scrollIntoView()", console.find("#dependencies"))
    console.screenshot("graph-of-the-dependent")
    console.open(f"/console/jobs/{upstream_id}")
    assert console.find("#dependents").text == "Publish, when this job succeeds"
    assert len(console.find_all("#dependencies g.node")) == 2

    # Generate's run starts Publish's, which its condition skips; its page says why and whose.
    console.press("Run now")
    upstream_run = console.path.split("/")[3].split("?")[0]
    console.wait_for_text("#execution-status", "COMPLETED", timeout=90)
    [run] = poll(
        lambda: api.get("/api/cron/executions", params={"jobId": job_id}).json()["data"],
        lambda runs: len(runs) == 1 and runs[0]["status"] not in ("PENDING", "RUNNING"),
    )
    console.open(f"/console/executions/{run['id']}")
    console.wait_for_text("#execution-status", "SKIPPED")
    console.wait_for_text("#skip-reason", REASON)
    assert "dependency" in console.find("dl.pairs").text
    link = console.find("#upstream-run a")
    assert link.get_attribute("href").endswith(f"/console/executions/{upstream_run}")
    assert "the run of Generate" in link.text
    console.screenshot("dependency-run-skipped")
    console.click_and_wait(link)
    console.wait_for_text("h1", "Run of Generate")

    # Generate made to run after Publish would close a cycle: refused beside the editor.
    console.open(f"/console/jobs/{upstream_id}/edit")
    console.find("#dependencies summary").click()
    console.choose(f"dependsOn.{job_id}", "onSuccess")
    console.press("Save")
    message = console.find("#e-f-dependsOn").text
    assert "“Generate” → “Publish” → “Generate” would form a cycle" in message
    assert console.find("#dependencies").get_attribute("open") is not None
    console.screenshot("cycle-refused")
    assert api.get(f"/api/cron/schedules/{upstream_id}").json()["data"]["dependsOn"] is None

    # Generate disabled: allowed, and Publish's page says what that means for it.
    console.open(f"/console/jobs/{upstream_id}")
    console.press("Disable")
    console.wait_for_text(".notice", "Job disabled.")
    console.open(f"/console/jobs/{job_id}")
    assert "the upstream job is disabled" in console.find(".dependency-warning").text
    assert console.find("#upstreams").text == "Generate when it succeeds Disabled"
    assert "(Generate is disabled)" in console.find("#graph-summary").text
