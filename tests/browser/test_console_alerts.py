"""Collapsed alerts on the notifications page, and what each alert kind means, in a browser."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from selenium.webdriver.common.by import By

from services.api.batch import apply_events
from shared.db.engine import create_engine, session_factory
from shared.events import NotificationCreated
from shared.notification_settings import DEFAULT_EVENTS, EVENT_KINDS
from tests.browser.console import Console
from tests.browser.seed import Tenant

pytestmark = pytest.mark.e2e  # the api service runs as a real process

START = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)


async def store_alerts(database_url: str, events: list[NotificationCreated]) -> None:
    """Store alerts as the api does when the notifier's events arrive."""
    engine = create_engine(database_url)
    try:
        await apply_events(session_factory(engine), events, public_url="http://herald.test")
    finally:
        await engine.dispose()


def completed(owner: Tenant, job_id: str, n: int, job_name: str) -> NotificationCreated:
    return NotificationCreated(
        execution_id=f"exec_{job_id}_{n}",
        job_id=job_id,
        project_id=owner.project_id,
        user_id=owner.user_id,
        kind="job_success",
        title=f"{job_name} completed",
        body=f"Project demo: status COMPLETED. Run {n}. Took 0.0 s.",
        occurred_at=START + timedelta(minutes=2 * n),
    )


def test_repeated_alerts_show_as_one_with_a_count_and_each_kind_is_explained(
    api_process: str,
    owner: Tenant,
    api: httpx.Client,
    fresh_database_url: str,
    open_console: Callable[..., Console],
) -> None:
    events = [completed(owner, "job_every2", n, "Every two minutes") for n in range(1, 6)]
    events.append(completed(owner, "job_daily", 9, "Daily digest"))
    asyncio.run(store_alerts(fresh_database_url, events))
    console = open_console(api_process)
    console.sign_in(owner.token)
    assert console.find("#bell").get_attribute("data-count") == "2"

    console.click_and_wait(console.find("#bell"))
    daily, repeated = console.find_all("li.alert.unread")
    assert "Daily digest completed" in daily.text
    assert not daily.find_elements(By.CSS_SELECTOR, ".repeat-badge")
    assert repeated.find_element(By.CSS_SELECTOR, ".repeat-badge").text == "×5"
    assert "5 times since" in repeated.find_element(By.CSS_SELECTOR, ".repeats").text
    assert "Run 5." in repeated.text
    latest = repeated.find_element(By.LINK_TEXT, "See the latest run")
    assert latest.get_attribute("href").endswith("/console/executions/exec_job_every2_5")
    shown = api.get("/api/notifications").json()["data"]
    assert [(alert["jobId"], alert["count"]) for alert in shown] == [
        ("job_daily", 1),
        ("job_every2", 5),
    ]
    console.screenshot("collapsed")

    # Read, then the next run of the job starts a new alert.
    console.click_and_wait(repeated.find_element(By.CSS_SELECTOR, "form button"))
    asyncio.run(store_alerts(fresh_database_url, [completed(owner, "job_every2", 10, "E")]))
    console.open("/console/notifications")
    unread = console.find_all("li.alert.unread")
    assert len(unread) == 2
    assert not unread[0].find_elements(By.CSS_SELECTOR, ".repeat-badge")
    assert console.find("li.alert:not(.unread) .repeat-badge").text == "×5"

    console.find("details.alert-kinds summary").click()
    meanings = console.find("details.alert-kinds dl").text
    for kind, meaning in EVENT_KINDS.items():
        assert f"{kind}\n{meaning}" in meanings

    # The new project form asks which alerts to send, each with what it means.
    console.open("/console/projects/new")
    for kind, meaning in EVENT_KINDS.items():
        box = console.find(f"#f-events-{kind}")
        assert box.is_selected() == (kind in DEFAULT_EVENTS)
        hint = console.find(f"#{box.get_attribute('aria-describedby')}")
        assert hint.text == meaning
    assert console.unlabelled_inputs() == []
    console.fill("name", "quiet")
    console.fill("localRepoPath", "demo")
    console.find("#f-events-job_skipped").click()
    console.find("#f-events-job_success").click()
    console.screenshot("alert-kinds")
    console.press("Create project")
    console.wait_for_text(".notice", "Project created.")
    projects = api.get("/api/projects").json()["data"]
    [quiet] = [project for project in projects if project["name"] == "quiet"]
    assert sorted(quiet["notificationSettings"]["notificationEvents"]) == [
        "job_failure",
        "job_partial",
        "job_skipped",
    ]
