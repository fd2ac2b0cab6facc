"""The generator's subscriber: `activity.scanned` in, `content.generated` out."""

from __future__ import annotations

import time
from pathlib import PurePath

from services.generator.writer import write_post
from shared import topology
from shared.bus import Bus, Handler
from shared.cancellation import CancelledSet
from shared.events import ActivityScanned, ContentGenerated, Event, Repository, Step
from shared.ids import derived_event_id
from shared.steps import run_step


def project_label(repository: Repository) -> str:
    if repository.owner and repository.name:
        return f"{repository.owner}/{repository.name}"
    if repository.local_path:
        return PurePath(repository.local_path).name
    return "the project"


def make_handler(bus: Bus, cancelled: CancelledSet) -> Handler:
    async def on_activity_scanned(event: Event) -> None:
        assert isinstance(event, ActivityScanned)
        if event.summary.is_empty:
            return  # nothing to write about: the API completes the execution with zero items

        async def work() -> ContentGenerated:
            started = time.perf_counter()
            results = []
            for platform in event.platforms:
                cancelled.check(event.execution_id)
                results.append(
                    write_post(
                        platform,
                        event.summary,
                        project=project_label(event.repository),
                        window_start=event.window_start,
                        window_end=event.window_end,
                    )
                )
            return ContentGenerated(
                event_id=derived_event_id(event.event_id, "content.generated"),
                execution_id=event.execution_id,
                job_id=event.job_id,
                project_id=event.project_id,
                attempt=event.attempt,
                results=results,
                generation_ms=int((time.perf_counter() - started) * 1000),
            )

        await run_step(
            bus,
            event,
            step=Step.GENERATE,
            queue=topology.GENERATOR_QUEUE,
            cancelled=cancelled,
            work=work,
        )

    return on_activity_scanned
