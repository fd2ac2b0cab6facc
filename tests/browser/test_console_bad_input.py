"""Bad input: the API's field messages next to fields, expired tokens, others' ids, forged posts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.api.console.credentials import COOKIE, csrf_token
from tests.browser.console import Console, console_session
from tests.browser.seed import Tenant, revoke_tokens, tenant

pytestmark = pytest.mark.e2e  # the api service runs as a real process


def _refusal(api: httpx.Client, method: str, path: str, body: dict[str, Any]) -> dict[str, str]:
    """The API's field errors for `body`, by field (a field named twice: its messages joined)."""
    answer = api.request(method, path, json=body)
    assert answer.status_code == 422, answer.text
    messages: dict[str, list[str]] = {}
    for error in answer.json()["errors"]:
        messages.setdefault(error["field"], []).append(error["message"])
    return {field: "; ".join(texts) for field, texts in messages.items()}


def _create_job(api: httpx.Client, owner: Tenant, name: str) -> str:
    created = api.post(
        "/api/cron/schedule",
        json={
            "projectId": owner.project_id,
            "name": name,
            "frequency": "DAILY",
            "timeConfig": {"hour": 7, "minute": 0},
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["data"]["id"])


def test_every_form_shows_the_apis_message_next_to_the_field(
    api_process: str, owner: Tenant, api: httpx.Client, open_console: Callable[..., Console]
) -> None:
    console = open_console(api_process)
    console.sign_in(owner.token)

    console.press("New project")
    console.fill("name", "   ")
    console.press("Create project")
    expected = _refusal(
        api, "POST", "/api/projects", {"name": "   ", "platforms": ["x", "linkedin", "blog"]}
    )
    assert set(expected) == {"name"}
    assert console.error_for("name") == expected["name"]
    console.screenshot("project-refused")

    console.open(f"/console/jobs/new?projectId={owner.project_id}")
    console.fill("name", "Nightly")
    console.fill("timeConfig.hour", "25")
    console.fill("timeConfig.timezone", "Mars/Base")
    console.find("summary").click()
    console.fill("maxRetries", "11")
    console.press("Create job")
    body: dict[str, Any] = {
        "projectId": owner.project_id,
        "name": "Nightly",
        "frequency": "DAILY",
        "timeConfig": {"hour": 25, "minute": 0, "timezone": "Mars/Base"},
        "isEnabled": True,
        "maxRetries": 11,
        "overlapPolicy": "SKIP",
    }
    # One answer names every field at fault, the schedule's beside the others.
    expected = _refusal(api, "POST", "/api/cron/schedule", body)
    assert set(expected) == {"maxRetries", "timeConfig.hour", "timeConfig.timezone"}
    assert expected["timeConfig.hour"] == "hour 25 out of range 0-23"
    assert expected["timeConfig.timezone"] == "unknown time zone 'Mars/Base'"
    for name, message in expected.items():
        assert console.error_for(name) == message
    summary = console.find("#error-summary").text
    assert all(f"{name}: {message}" in summary for name, message in expected.items())
    assert console.field("name").get_attribute("value") == "Nightly"  # what was typed stays
    console.screenshot("job-refused-three-fields")

    console.fill("maxRetries", "2")
    console.fill("timeConfig.timezone", "UTC")
    body["maxRetries"], body["timeConfig"]["timezone"] = 2, "UTC"

    # A number input sends nothing for text that is not a number: the API says what is missing.
    console.fill("timeConfig.hour", "nine")
    console.press("Create job")
    del body["timeConfig"]["hour"]
    expected = _refusal(api, "POST", "/api/cron/schedule", body)
    assert expected == {"timeConfig.hour": "hour required for DAILY"}
    assert console.error_for("timeConfig.hour") == expected["timeConfig.hour"]

    console.fill("timeConfig.hour", "7")
    console.press("Create job")
    console.wait_for_text(".notice", "Job created.")
    job_id = console.path.split("/")[3].split("?")[0]

    console.open(f"/console/jobs/{job_id}/edit")
    console.choose("frequency", "CUSTOM")
    console.fill("schedule", "61 0 * * 8")
    console.fill("timeConfig.timezone", "Mars/Base")
    console.press("Save")
    expected = _refusal(
        api,
        "PATCH",
        "/api/cron/schedule",
        {
            "jobId": job_id,
            "frequency": "CUSTOM",
            "schedule": "61 0 * * 8",
            "timeConfig": {"timezone": "Mars/Base"},
        },
    )
    assert expected == {
        "schedule": "minute 61 out of range 0-59; day-of-week 8 out of range 0-7",
        "timeConfig.timezone": "unknown time zone 'Mars/Base'",
    }
    for name, message in expected.items():
        assert console.error_for(name) == message
    assert console.unlabelled_inputs() == []
    console.screenshot("edit-refused")


def test_a_revoked_token_returns_to_sign_in(
    api_process: str, owner: Tenant, fresh_database_url: str, open_console: Callable[..., Console]
) -> None:
    console = open_console(api_process)
    console.sign_in(owner.token)
    assert console.path == "/console/jobs"
    asyncio.run(revoke_tokens(fresh_database_url, owner.user_id))
    console.open("/console/jobs")
    assert console.path == "/console/signin?expired=1"
    assert "Your session has ended" in console.find("main").text
    assert console.driver.get_cookie(COOKIE) is None
    console.screenshot("expired")
    # Pages polled by script answer 401 too, and the page then reloads into sign-in.
    console.open("/console/jobs")
    assert console.path == "/console/signin"


def test_another_users_ids_answer_not_found(
    api_process: str,
    owner: Tenant,
    api: httpx.Client,
    fresh_database_url: str,
    open_console: Callable[..., Console],
) -> None:
    stranger = asyncio.run(tenant(fresh_database_url))
    with httpx.Client(
        base_url=api_process, headers={"Authorization": f"Bearer {stranger.token}"}, timeout=10
    ) as theirs:
        their_job = _create_job(theirs, stranger, "Theirs")
        run = theirs.post("/api/cron/trigger", json={"jobId": their_job})
        assert run.status_code == 202, run.text
        their_run = run.json()["data"]["id"]

        console = open_console(api_process)
        console.sign_in(owner.token)
        for path in (
            f"/console/jobs/{their_job}",
            f"/console/jobs/{their_job}/edit",
            f"/console/jobs/{their_job}/delete",
            f"/console/executions/{their_run}",
        ):
            console.open(path)
            assert console.find("h1").text == "Not found", path
        console.screenshot("not-found")

        # Posting at their ids with a valid form token changes nothing and answers 404.
        secret = console.driver.get_cookie(COOKIE)["value"]
        cookies = {COOKIE: secret}
        form = {"csrf": csrf_token(secret), "enable": "false"}
        with httpx.Client(base_url=api_process, cookies=cookies, timeout=10) as browserless:
            for action in ("toggle", "trigger", "delete"):
                answer = browserless.post(f"/console/jobs/{their_job}/{action}", data=form)
                assert answer.status_code == 404, (action, answer.text)
            answer = browserless.get(f"/console/executions/{their_run}")
            assert answer.status_code == 404
        job = theirs.get(f"/api/cron/schedules/{their_job}").json()["data"]
        assert job["isEnabled"] is True
        runs = theirs.get("/api/cron/executions", params={"jobId": their_job}).json()
        assert runs["count"] == 1


def test_a_post_without_this_consoles_form_token_is_refused(
    api_process: str, owner: Tenant, api: httpx.Client
) -> None:
    job_id = _create_job(api, owner, "Guarded")
    secret = console_session(api_process, owner.token)
    cookies = {COOKIE: secret}
    good = csrf_token(secret)
    with httpx.Client(base_url=api_process, cookies=cookies, timeout=10) as client:
        for form, headers in (
            ({"enable": "false"}, {}),
            ({"enable": "false", "csrf": "0" * 64}, {}),
            ({"enable": "false", "csrf": good}, {"Origin": "https://elsewhere.example"}),
        ):
            answer = client.post(f"/console/jobs/{job_id}/toggle", data=form, headers=headers)
            assert answer.status_code == 403, answer.text
            assert "did not come from this console" in answer.text
        assert api.get(f"/api/cron/schedules/{job_id}").json()["data"]["isEnabled"] is True
        answer = client.post(
            f"/console/jobs/{job_id}/toggle",
            data={"enable": "false", "csrf": good},
            headers={"Origin": api_process},
        )
        assert answer.status_code == 303
        assert re.fullmatch(r"/console/jobs\?notice=job-disabled", answer.headers["location"])
    assert api.get(f"/api/cron/schedules/{job_id}").json()["data"]["isEnabled"] is False
