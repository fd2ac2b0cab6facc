"""Write the posts of one execution: each platform succeeds, fails or stays pending on its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath

from services.generator.budget import ModelBudget, Report
from services.generator.prompt import InvalidPostError, build_prompt, parse_post
from services.generator.providers import Provider, complete_with_retries, elapsed_ms
from services.generator.writer import period, write_post
from shared.cancellation import CancelledSet, ExecutionCancelledError
from shared.errors import PermanentError, TransientError
from shared.events import ActivityScanned, PostResult, Repository
from shared.platforms import PLATFORMS


@dataclass
class Outcome:
    """The posts finished in this attempt, and the platforms a retry should run again."""

    done: list[PostResult] = field(default_factory=list)
    pending: dict[str, TransientError] = field(default_factory=dict)


def project_label(repository: Repository) -> str:
    if repository.owner and repository.name:
        return f"{repository.owner}/{repository.name}"
    if repository.local_path:
        return PurePath(repository.local_path).name
    return "the project"


def pending_platforms(event: ActivityScanned) -> list[str]:
    """The event's platforms that no earlier attempt finished, in the project's order."""
    finished = {post.platform for post in event.summary.posts_done}
    return [name for name in dict.fromkeys(event.platforms) if name not in finished]


async def generate_posts(
    event: ActivityScanned,
    *,
    provider: Provider | None,
    cancelled: CancelledSet,
    call_retries: int = 2,
    max_wait: float = 10.0,
    budget: ModelBudget | None = None,
    report: Report | None = None,
) -> Outcome:
    """Write each pending platform's post with the provider, or the template writer.

    The platforms are written at once: each waits on the model, not on this process. Each
    succeeds, fails or stays pending on its own; the results keep the project's order.
    """
    project = project_label(event.repository_moved_to or event.repository)

    async def one(name: str) -> PostResult | TransientError:
        cancelled.check(event.execution_id)
        if provider is None or name not in PLATFORMS:
            return write_post(
                name,
                event.summary,
                project=project,
                window_start=event.window_start,
                window_end=event.window_end,
            )
        calls = Calls(
            provider,
            call_retries,
            max_wait,
            budget,
            check=lambda: cancelled.check(event.execution_id),
            report=report,
        )
        try:
            return await _model_post(name, event, project, calls)
        except TransientError as exc:
            return exc

    names = pending_platforms(event)
    try:
        # A cancellation (or a bug) in one platform stops the others: the group cancels them.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(name)) for name in names]
    except BaseExceptionGroup as failed:
        # The first error speaks for the step (the execution was cancelled; a bug to retry).
        raise failed.exceptions[0] from None
    outcome = Outcome()
    for name, task in zip(names, tasks, strict=True):
        result = task.result()
        if isinstance(result, TransientError):
            outcome.pending[name] = result
        else:
            outcome.done.append(result)
    return outcome


@dataclass(frozen=True)
class Calls:
    """How one execution calls its model: retries, patience, budget, cancellation, reports."""

    provider: Provider
    retries: int
    max_wait: float
    budget: ModelBudget | None
    check: Callable[[], None]
    report: Report | None


async def _model_post(name: str, event: ActivityScanned, project: str, calls: Calls) -> PostResult:
    provider = calls.provider
    platform = PLATFORMS[name]
    started = time.perf_counter()
    prompt = build_prompt(
        platform,
        event.summary,
        project=project,
        period=period(event.window_start, event.window_end),
    )
    try:
        completion = await complete_with_retries(
            provider,
            prompt.system,
            prompt.user,
            retries=calls.retries,
            max_wait=calls.max_wait,
            budget=calls.budget,
            check=calls.check,
            report=calls.report,
        )
    except ExecutionCancelledError:
        raise
    except PermanentError as exc:
        return PostResult(
            platform=name,
            status="FAILED",
            model=provider.model,
            error=exc.message,
            generation_ms=elapsed_ms(started),
        )
    tokens = {
        "model": completion.model,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
    }
    try:
        title, body = parse_post(completion.text, platform)
    except InvalidPostError as exc:
        return PostResult(
            platform=name,
            status="FAILED",
            error=f"{provider.name}: {exc.message}",
            generation_ms=elapsed_ms(started),
            **tokens,
        )
    return PostResult(
        platform=name,
        status="GENERATED",
        title=title,
        body=body,
        characters=len(body),
        generation_ms=elapsed_ms(started),
        **tokens,
    )
