"""The scanner's subscriber: `job.due` in, `activity.scanned` (or `step.failed`) out."""

from __future__ import annotations

import asyncio

import httpx

from services.scanner.budget import GitHubBudget
from services.scanner.github import ETagCache
from services.scanner.scan import GitHubAccess, scan
from shared import topology
from shared.budgets import Budgets
from shared.bus import Bus, Handler
from shared.cancellation import CancelledSet
from shared.events import ActivityScanned, ActivitySummary, Event, JobDue, JobType, Step
from shared.ids import derived_event_id
from shared.settings import Settings
from shared.steps import run_step, wait_reporter


def make_handler(
    bus: Bus,
    http: httpx.AsyncClient,
    cancelled: CancelledSet,
    settings: Settings,
    etags: ETagCache | None = None,
    budgets: Budgets | None = None,
) -> Handler:
    cache = etags if etags is not None else ETagCache()
    github = GitHubAccess.from_settings(settings, http)
    slots = asyncio.Semaphore(settings.github_max_concurrent)
    # The reserve: requests other scans of the fleet may have in flight when one reads it.
    budget = GitHubBudget(budgets or Budgets(), reserve=2 * settings.github_max_concurrent)

    async def on_job_due(event: Event) -> None:
        assert isinstance(event, JobDue)

        async def work() -> ActivityScanned:
            cancelled.check(event.execution_id)
            if event.job_type == JobType.PUBLISH_CONTENT:
                # A publish run reads no repository: the api schedules its approved posts.
                return ActivityScanned(
                    event_id=derived_event_id(event.event_id, "activity.scanned"),
                    **event.envelope(),
                    summary=ActivitySummary(),
                    platforms=event.platforms,
                    repository=event.repository,
                    window_start=event.window_start,
                    window_end=event.window_end,
                    retry_policy=event.retry_policy,
                    deadline=event.deadline,
                    timeout_seconds=event.timeout_seconds,
                    job_type=event.job_type,
                )
            result = await scan(
                event,
                http=http,
                github=github,
                local_repos_root=settings.local_repos_root,
                etags=cache,
                scan_seconds=settings.scan_timeout,
                before_request=lambda: cancelled.check(event.execution_id),
                slots=slots,
                budget=budget,
                report=wait_reporter(bus, event, Step.SCAN),
            )
            window = result.window or (event.window_start, event.window_end)
            return ActivityScanned(
                event_id=derived_event_id(event.event_id, "activity.scanned"),
                **event.envelope(),
                summary=result.summary,
                github_api_calls=result.github_api_calls,
                platforms=event.platforms,
                repository=event.repository,
                repository_moved_to=result.moved_to,
                github_credential=result.credential,
                github_rate_limit=result.rate_limit,
                window_start=window[0],
                window_end=window[1],
                retry_policy=event.retry_policy,
                deadline=event.deadline,
                timeout_seconds=event.timeout_seconds,
                skip_reason=result.skip_reason,
                job_type=event.job_type,
                webhook=event.webhook,
            )

        await run_step(
            bus,
            event,
            step=Step.SCAN,
            queue=topology.SCANNER_QUEUE,
            cancelled=cancelled,
            work=work,
        )

    return on_job_due
