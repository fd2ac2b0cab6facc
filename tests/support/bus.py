"""The Bus port for handlers under test: what they publish is recorded, nothing travels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared import topology
from shared.bus import Handler
from shared.events import (
    ActivityItem,
    ActivityScanned,
    ActivitySummary,
    Event,
    Repository,
    RetryPolicy,
)

END = datetime(2025, 3, 8, tzinfo=UTC)


class RecordingBus:
    """The Bus port, recording what a handler publishes."""

    def __init__(self) -> None:
        self.published: list[Event] = []
        self.delayed: list[tuple[Event, topology.WorkQueue, datetime]] = []

    @property
    def is_ready(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def close(self, *, grace: float = 10.0) -> None:
        return None

    async def publish(self, event: Event) -> None:
        self.published.append(event)

    async def publish_raw(
        self, routing_key: str, body: bytes, *, message_id: str | None = None
    ) -> None:
        raise NotImplementedError

    async def publish_delayed(
        self, event: Event, queue: topology.WorkQueue, not_before: datetime
    ) -> None:
        self.delayed.append((event, queue, not_before))

    async def consume(self, queue: topology.WorkQueue, handler: Handler) -> None:
        raise NotImplementedError

    async def on_cancelled(self, callback: object) -> None:
        raise NotImplementedError

    def of(self, kind: type[Event]) -> list[Event]:
        return [event for event in self.published if isinstance(event, kind)]


def scanned(
    platforms: list[str], max_retries: int = 3, execution_id: str = "exe_1"
) -> ActivityScanned:
    """An `activity.scanned` with a little activity, as the generator receives it."""
    return ActivityScanned(
        execution_id=execution_id,
        job_id="cron_1",
        project_id="prj_1",
        summary=ActivitySummary(
            commits=2,
            pull_requests=1,
            contributors=["ada"],
            items=[
                ActivityItem(kind="pull_request", title="feat: digest", number=4, author="ada"),
                ActivityItem(kind="commit", title="Fix login", author="ada"),
            ],
        ),
        platforms=platforms,
        repository=Repository(owner="octo", name="repo"),
        window_start=END - timedelta(days=7),
        window_end=END,
        retry_policy=RetryPolicy(max_retries=max_retries, retry_delay=5),
        deadline=datetime.now(UTC) + timedelta(minutes=5),
    )
