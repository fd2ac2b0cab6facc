"""One execution followed through every hop: api → scanner → generator → api → notifier → api."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.fakes.resend import FakeResend
from tests.support.polling import poll
from tests.support.processes import Service, signed_in_client

pytestmark = pytest.mark.e2e

CONFIRM_LINK = re.compile(r"https?://\S+(/console/recipients/confirm\?token=[\w-]+)")


def confirm_by_email(api: httpx.Client, resend: FakeResend, address: str) -> None:
    """Open the question mailed to `address` and answer yes, as its owner would."""
    [question] = poll(
        lambda: [mail for mail in resend.sent if address in str(mail["to"])],
        lambda mails: len(mails) == 1,
    )
    assert "would send you alerts" in question["subject"]
    match = CONFIRM_LINK.search(question["text"])
    assert match is not None, question["text"]
    page = httpx.get(f"{api.base_url}{match.group(1)}")
    assert page.status_code == 200 and address in page.text
    answered = httpx.post(
        f"{api.base_url}/console/recipients/confirm",
        data={"token": match.group(1).split("token=", 1)[1], "answer": "yes"},
        headers={"Origin": str(api.base_url).rstrip("/")},
    )
    assert answered.status_code == 200, answered.text
    assert "will get the alerts" in answered.text


def test_a_manual_run_goes_through_every_service_to_an_in_app_alert(
    stack: dict[str, Service],
    fresh_database_url: str,
    request: pytest.FixtureRequest,
    resend: FakeResend,
) -> None:
    api = signed_in_client(stack["api"], fresh_database_url)
    request.addfinalizer(api.close)
    project = api.post(
        "/api/projects",
        json={
            "name": "demo",
            "localRepoPath": "demo",
            "platforms": ["x", "blog", "changelog"],
            "notificationSettings": {"recipients": ["ada@example.com"]},
        },
    )
    assert project.status_code == 201, project.text
    # ada@example.com is not the user's own address: it gets a question first, and no alert
    # until it answers yes on the page the question links to.
    assert project.json()["data"]["notificationSettings"]["pendingRecipients"] == [
        "ada@example.com"
    ]
    confirm_by_email(api, resend, "ada@example.com")
    settings = api.get(f"/api/projects/{project.json()['data']['id']}").json()["data"]
    assert settings["notificationSettings"]["pendingRecipients"] == []
    job = api.post(
        "/api/cron/schedule",
        json={
            "projectId": project.json()["data"]["id"],
            "name": "Daily digest",
            "frequency": "DAILY",
            "timeConfig": {"hour": 9, "minute": 0, "timezone": "UTC"},
        },
    )
    assert job.status_code == 201, job.text
    job_id = job.json()["data"]["id"]
    triggered = api.post("/api/cron/trigger", json={"jobId": job_id})
    assert triggered.status_code == 202, triggered.text
    execution_id = triggered.json()["data"]["id"]

    execution = poll(
        lambda: api.get(f"/api/cron/executions/{execution_id}").json()["data"],
        lambda data: data["status"] not in ("PENDING", "RUNNING"),
    )
    assert execution["status"] == "COMPLETED", execution
    assert (execution["itemsProcessed"], execution["itemsSuccess"]) == (3, 3)
    assert execution["metadata"]["activity"]["commits"] == 3
    assert execution["metadata"]["activity"]["tags"] == 1
    posts = {post["platform"]: post for post in execution["content"]}
    assert set(posts) == {"x", "blog", "changelog"}
    assert len(posts["x"]["body"]) <= 280
    assert "Fix DST bug" in posts["blog"]["body"]
    # Events of different steps may be applied in either order; each is recorded once.
    timeline = [(step["step"], step["kind"]) for step in execution["steps"]]
    assert sorted(timeline) == sorted(
        [
            ("scan", "started"),
            ("scan", "completed"),
            ("generate", "started"),
            ("generate", "completed"),
            ("execution", "completed"),
        ]
    )

    alerts = poll(lambda: api.get("/api/notifications").json(), lambda body: body["count"] >= 1)
    assert alerts["unreadCount"] == 1
    alert = alerts["data"][0]
    assert alert["kind"] == "job_success"
    assert alert["executionId"] == execution_id
    assert alert["link"].endswith(f"/console/executions/{execution_id}")

    # The email went out once through Resend, and its delivery shows on the execution.
    deliveries = poll(
        lambda: api.get(f"/api/cron/executions/{execution_id}").json()["data"]["deliveries"],
        lambda rows: any(row["channel"] == "email" for row in rows),
    )
    emails = [(row["recipient"], row["outcome"]) for row in deliveries if row["channel"] == "email"]
    assert emails == [("ada@example.com", "SENT")]
    assert len(resend.sent) == 2  # the question, then the alert
    assert "ada@example.com" in str(resend.sent[1]["to"])
    assert "Daily digest" in resend.sent[1]["subject"]

    stats = api.get("/api/cron/executions", params={"jobId": job_id, "stats": "true"}).json()
    assert stats["statistics"]["totalRuns"] == 1
    assert stats["statistics"]["successRate"] == "100.00"


def test_the_scheduler_fires_a_due_job_through_the_pipeline(
    stack: dict[str, Service], fresh_database_url: str, request: pytest.FixtureRequest
) -> None:
    api = signed_in_client(stack["api"], fresh_database_url)
    request.addfinalizer(api.close)
    project_id = api.post(
        "/api/projects",
        json={
            "name": "demo",
            "localRepoPath": "demo",
            "platforms": ["x"],
        },
    ).json()["data"]["id"]
    job = api.post(
        "/api/cron/schedule",
        json={
            "projectId": project_id,
            "name": "Every minute",
            "frequency": "CUSTOM",
            "schedule": "* * * * *",
        },
    ).json()["data"]
    executions = poll(
        lambda: api.get("/api/cron/executions", params={"jobId": job["id"]}).json()["data"],
        lambda rows: any(row["status"] == "COMPLETED" for row in rows),
        timeout=120,
    )
    fired = executions[-1]
    assert fired["trigger"] == "SCHEDULE"
    assert fired["scheduledFor"] == job["nextRunAt"]
    assert fired["windowEnd"] == fired["scheduledFor"]
    with httpx.Client() as probe:
        metrics = probe.get(f"{stack['scanner'].url}/metrics").text
    assert 'herald_messages_consumed_total{outcome="ok",queue="herald.scanner"}' in metrics
