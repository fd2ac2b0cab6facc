"""Request bodies: camelCase, unknown fields refused, every rule named in the error."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    EmailStr,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from services.api.bodies import Body
from services.api.schedules import schedule_refusals
from services.api.webhook_triggers import WebhookTriggerBody
from shared.events import DEFAULT_IGNORED_AUTHORS, JobType
from shared.github_names import name_refusal, owner_refusal
from shared.platforms import PLATFORMS

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _refused(refusal: Callable[[str], str | None]) -> Callable[[str], str]:
    def check(value: str) -> str:
        reason = refusal(value)
        if reason is not None:
            raise ValueError(reason)
        return value

    return check


GitHubOwner = Annotated[str, AfterValidator(_refused(owner_refusal))]
GitHubName = Annotated[str, AfterValidator(_refused(name_refusal))]
PlatformName = Literal["x", "linkedin", "mastodon", "bluesky", "blog", "newsletter", "changelog"]
assert set(PlatformName.__args__) == set(PLATFORMS)  # type: ignore[attr-defined]


class Frequency(StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"
    CUSTOM = "CUSTOM"


class OverlapPolicy(StrEnum):
    SKIP = "SKIP"
    ALLOW = "ALLOW"
    BUFFER_ONE = "BUFFER_ONE"


class GapPolicy(StrEnum):
    SHIFT = "SHIFT"
    SKIP = "SKIP"


class FoldPolicy(StrEnum):
    FIRST = "FIRST"
    SECOND = "SECOND"


# A policy at its default is not stored: absent means SHIFT and FIRST, as for jobs stored
# before the policies existed, so every job keeps one form of the same schedule.
_DEFAULT_POLICIES = {"gapPolicy": GapPolicy.SHIFT, "foldPolicy": FoldPolicy.FIRST}


class TimeConfig(Body):
    hour: int | None = Field(default=None, strict=True)
    minute: int | None = Field(default=None, strict=True)
    day_of_week: int | None = Field(default=None, strict=True)
    day_of_month: int | None = Field(default=None, strict=True)
    timezone: Annotated[str, StringConstraints(max_length=64)] = "UTC"
    gap_policy: GapPolicy | None = Field(
        default=None,
        description=(
            "For a job at a fixed local time: when that time does not exist on a day (clocks "
            "go forward), SHIFT (the default, classic cron's) runs once at the first instant "
            "after the gap, SKIP has no run that day. Refused (422) with SKIP on a job whose "
            "cron minute or hour field starts with `*`: such a job follows elapsed time. "
            "Absent when SHIFT."
        ),
    )
    fold_policy: FoldPolicy | None = Field(
        default=None,
        description=(
            "For a job at a fixed local time: when that time occurs twice on a day (clocks go "
            "back), FIRST (the default, classic cron's) runs once at the first occurrence, "
            "SECOND once at the second. Refused (422) with SECOND on a job whose cron minute "
            "or hour field starts with `*`. Absent when FIRST."
        ),
    )

    def stored(self) -> dict[str, int | str]:
        """The camelCase form kept on the job, without unset keys nor default policies."""
        return {
            key: str(value) if isinstance(value, StrEnum) else value
            for key, value in self.model_dump(by_alias=True).items()
            if value is not None and _DEFAULT_POLICIES.get(key) != value
        }


def _given(data: Mapping[str, Any], name: str) -> Any:
    """Return a raw body's value for a field, sent by its camelCase alias or its own name."""
    return data.get(to_camel(name), data.get(name))


def _within(field: str, names: set[str]) -> bool:
    """Tell whether `field` is one of `names`, or lies inside an object that is."""
    return any(field == name or field.startswith(f"{name}.") for name in names)


class ScheduleBody(Body):
    """A body carrying a schedule: when other fields fail, the schedule's problems join theirs.

    The route judges the schedule of a body that passes (an update needs the stored job); this
    judges the schedule of one that fails, so one 422 names every field at fault at once.
    """

    @model_validator(mode="wrap")
    @classmethod
    def _with_schedule_problems(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        try:
            return handler(data)
        except ValidationError as exc:
            schedule = cls.schedule_in(data) if isinstance(data, Mapping) else None
            if schedule is None:
                raise
            errors: list[InitErrorDetails] = [
                {
                    "type": PydanticCustomError(error["type"], error["msg"]),
                    "loc": error["loc"],
                    "input": error["input"],
                }
                for error in exc.errors()
            ]
            # A field refused already keeps that refusal: its raw value says nothing more.
            refused = {".".join(str(part) for part in error["loc"]) for error in errors}
            frequency, time_config, cron = schedule
            for refusal in schedule_refusals(
                frequency=frequency, time_config=time_config, schedule=cron
            ):
                if not _within(refusal["field"], refused):
                    errors.append(
                        {
                            "type": PydanticCustomError("schedule", refusal["message"]),
                            "loc": tuple(refusal["field"].split(".")),
                            "input": data,
                        }
                    )
            raise ValidationError.from_exception_data(exc.title, errors) from None

    @classmethod
    def schedule_in(cls, data: Mapping[str, Any]) -> tuple[Any, Mapping[str, Any], Any] | None:
        """Return the raw body's frequency, timeConfig and cron expression, to judge them."""
        time_config = _given(data, "time_config")
        schedule = _given(data, "schedule")
        return (
            _given(data, "frequency"),
            time_config if isinstance(time_config, Mapping) else {},
            # Anything but text is refused as a field already; unhashable, it cannot be parsed.
            schedule if isinstance(schedule, str) else None,
        )


def _repository_relative(pattern: str) -> str:
    if pattern.startswith("/"):
        raise ValueError("a path pattern is relative to the repository root: no leading /")
    return pattern


Minimum = Annotated[int, Field(ge=1, le=100_000, strict=True)]
PathPattern = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
    AfterValidator(_repository_relative),
]
# GitHub allows label names of up to 50 characters.
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
# A login (39 characters at most on GitHub), a bot's with its `[bot]` suffix, or a git
# author name for a local repository.
Author = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class RunConditionsBody(Body):
    """When a run is worth writing about; not met, the run ends SKIPPED before any model call."""

    min_commits: Minimum | None = Field(default=None, description="At least this many commits.")
    min_pull_requests: Minimum | None = Field(
        default=None, description="At least this many merged pull requests."
    )
    min_issues: Minimum | None = Field(
        default=None, description="At least this many closed issues."
    )
    min_total: Minimum | None = Field(
        default=None,
        description="At least this many commits, merged pull requests and closed issues together.",
    )
    include_paths: list[PathPattern] = Field(
        default=[],
        max_length=50,
        description=(
            "Commits count only when they change a path matching one of these globs (`*` "
            "within a folder, `**` across folders: `src/**`, `**/*.py`)."
        ),
    )
    exclude_paths: list[PathPattern] = Field(
        default=[],
        max_length=50,
        description="Commits that change only paths matching these globs do not count.",
    )
    include_labels: list[Label] = Field(
        default=[],
        max_length=50,
        description="Pull requests and issues count only with one of these labels.",
    )
    exclude_labels: list[Label] = Field(
        default=[],
        max_length=50,
        description="Pull requests and issues with any of these labels do not count.",
    )
    ignore_authors: list[Author] = Field(
        default=list(DEFAULT_IGNORED_AUTHORS),
        max_length=50,
        description=(
            "Items by these authors are removed before counting and writing; by default "
            "`dependabot[bot]` and `renovate[bot]`, `[]` keeps everyone's."
        ),
    )
    accumulate: StrictBool = Field(
        default=False,
        description=(
            "When a run is skipped, keep its activity for the next run (whose window then "
            "opens where the last run not skipped for its conditions ended)."
        ),
    )

    def stored(self) -> dict[str, Any]:
        """The camelCase form kept on the job, every field present."""
        return self.model_dump(by_alias=True)


class DependencyOn(StrEnum):
    """Which ends of the upstream's run start the dependent."""

    SUCCESS = "onSuccess"  # COMPLETED
    FAILURE = "onFailure"  # FAILED or TIMEOUT
    COMPLETION = "onCompletion"  # any of those


class Dependency(Body):
    job_id: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    on: DependencyOn = DependencyOn.SUCCESS

    def stored(self) -> dict[str, str]:
        return {"jobId": self.job_id, "on": str(self.on)}


# Enough for any fan-in a person would draw; each is a look-up when the job is saved.
MAX_DEPENDENCIES = 20


class JobPolicies(Body):
    max_retries: int | None = Field(default=None, ge=0, le=10, strict=True)
    retry_delay: int | None = Field(default=None, ge=1, le=86_400, strict=True)
    timeout_seconds: int | None = Field(default=None, ge=10, le=86_400, strict=True)
    overlap_policy: OverlapPolicy | None = None
    catchup_window: int | None = Field(default=None, ge=0, le=31 * 86_400, strict=True)
    jitter: int | None = Field(default=None, ge=0, le=3_600, strict=True)
    # null (or absent on create): every run goes on to write; on update, null removes them.
    conditions: RunConditionsBody | None = None
    # The GitHub events that also run the job; null (or absent on create): none; on update,
    # given whole, null removes them.
    webhook_triggers: list[WebhookTriggerBody] | None = Field(default=None, max_length=10)
    # Upstream jobs of the same user this one also runs after; on update, given whole, and
    # null or [] removes them.
    depends_on: list[Dependency] | None = Field(
        default=None,
        max_length=MAX_DEPENDENCIES,
        description=(
            "Jobs of yours this one runs after, each `{jobId, on}` with `on` one of "
            "onSuccess (the default), onFailure, onCompletion. A cycle is refused (422). "
            "The job keeps its own schedule too."
        ),
    )


# Types the contract names that no run can carry out yet.
# Write-only: stored encrypted, never returned (the view shows `webhookHost`).
WebhookUrl = Annotated[str, StringConstraints(max_length=2000)]
WEBHOOK_URL_DESCRIPTION = (
    "A WEBHOOK job's receiver: each run POSTs its activity and posts there as JSON, signed "
    "(`X-Herald-Signature-256: sha256=<hex HMAC-SHA256 of the body>` with the job's secret, "
    "shown once when the job is made or its secret renewed). Required for WEBHOOK, refused "
    "(422) for other types. https only unless the server allows http; an address that is "
    "loopback, link-local or private is refused unless the server allows its network. "
    "Write-only: stored encrypted, never returned."
)


class CreateJob(JobPolicies, ScheduleBody):
    project_id: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    type: JobType = Field(
        default=JobType.GENERATE_CONTENT,
        description=(
            "What the job's runs do with the window's activity: GENERATE_CONTENT (the "
            "default) writes a post per platform; SYNC_GITHUB records the window's commits, "
            "merged pull requests and closed issues, with no post and no AI call; ANALYTICS "
            "sends the owner a digest of the window's activity and of the project's jobs' "
            "runs, in-app and by email with a chart; WEBHOOK writes the posts and POSTs them "
            "with the activity, signed, to `webhookUrl`; PUBLISH_CONTENT schedules the "
            "project's approved posts for publishing now (a dependent one: its upstream run's). "
            "Fixed once created."
        ),
    )
    name: Name
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    frequency: Frequency
    time_config: TimeConfig = TimeConfig()
    schedule: Annotated[str, StringConstraints(max_length=200)] | None = None
    is_enabled: StrictBool = True
    webhook_url: WebhookUrl | None = Field(default=None, description=WEBHOOK_URL_DESCRIPTION)


class UpdateJob(JobPolicies, ScheduleBody):
    job_id: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    # Accepted only as the job's own type (a client sending the whole record back); any
    # other is refused by the route, which knows the stored one.
    type: JobType | None = None
    name: Name | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    frequency: Frequency | None = None
    time_config: TimeConfig | None = None
    schedule: Annotated[str, StringConstraints(max_length=200)] | None = None
    is_enabled: StrictBool | None = None
    # Given: the new receiver of a WEBHOOK job (its secret stays); refused for other types.
    webhook_url: WebhookUrl | None = Field(default=None, description=WEBHOOK_URL_DESCRIPTION)

    @classmethod
    def schedule_in(cls, data: Mapping[str, Any]) -> tuple[Any, Mapping[str, Any], Any] | None:
        """Judge only a schedule the body gives whole: any field left out is the stored job's."""
        schedule = super().schedule_in(data)
        if schedule is None or _given(data, "time_config") is None:
            return None
        frequency, _, cron = schedule
        if frequency is None or (frequency == "CUSTOM" and cron is None):
            return None
        return schedule


class ToggleJob(Body):
    is_enabled: StrictBool


class TriggerJob(Body):
    job_id: Annotated[str, StringConstraints(min_length=1, max_length=40)]


class NotificationSettingsBody(Body):
    email_notifications: StrictBool = True
    notification_events: list[
        Literal[
            "job_success",
            "job_failure",
            "job_partial",
            "job_skipped",
            "job_missed",
            "job_recovered",
            "schedule_moved",
            "post_failed",
        ]
    ] = ["job_success", "job_failure", "job_partial"]
    recipients: list[EmailStr] = Field(default=[], max_length=50)
    failure_threshold: int = Field(default=1, ge=1, le=100, strict=True)
    # Write-only: stored encrypted, never returned; left out keeps the stored one, "" removes it.
    # Where they may point is the operator's to say (shared.destinations, checked on storing).
    slack_webhook_url: str | None = Field(default=None, max_length=500)
    discord_webhook_url: str | None = Field(default=None, max_length=500)


# A GitHub App installation's id, as GitHub shows it in the installation's settings URL.
InstallationId = Annotated[int, Field(ge=1, le=2**53, strict=True)]
# Write-only: stored encrypted, never returned; left out keeps the stored one, "" removes it.
# A classic (`ghp_`) or fine-grained (`github_pat_`) token, or any token an Enterprise server
# issues: printable ASCII without spaces; installation-style tokens run to ~520 characters.
GitHubToken = Annotated[str, StringConstraints(max_length=2000, pattern=r"^[\x21-\x7e]*$")]


PublishMode = Literal["review", "auto"]
PublishModes = Annotated[
    dict[PlatformName, PublishMode],
    Field(
        description=(
            "Per platform, `review` (the default: a generated post waits as a draft for your "
            "approval) or `auto` (published as soon as it is generated)."
        )
    ),
]


class CreateProject(Body):
    name: Name
    github_repo_owner: GitHubOwner | None = None
    github_repo_name: GitHubName | None = None
    github_base_url: (
        Annotated[str, StringConstraints(max_length=500, pattern=r"^https?://[^\s]+$")] | None
    ) = None
    local_repo_path: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = None
    github_installation_id: InstallationId | None = None
    github_token: GitHubToken | None = None
    platforms: list[PlatformName] = Field(default=["x", "linkedin", "blog"], max_length=7)
    notification_settings: NotificationSettingsBody = NotificationSettingsBody()
    publish_modes: PublishModes = {}


class UpdateProject(Body):
    name: Name | None = None
    github_repo_owner: GitHubOwner | None = None
    github_repo_name: GitHubName | None = None
    github_base_url: (
        Annotated[str, StringConstraints(max_length=500, pattern=r"^https?://[^\s]+$")] | None
    ) = None
    local_repo_path: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = None
    # Only an installation granted to the project's owner; null clears it (the project's
    # token, else the server's, is read with).
    github_installation_id: InstallationId | None = None
    github_token: GitHubToken | None = None
    platforms: list[PlatformName] | None = Field(default=None, max_length=7)
    notification_settings: NotificationSettingsBody | None = None
    # Given whole: the modes of platforms left out go back to review.
    publish_modes: PublishModes | None = None


class PreviewSchedule(ScheduleBody):
    """An unsaved schedule to preview: the same fields a job is created with."""

    frequency: Frequency
    time_config: TimeConfig = TimeConfig()
    schedule: Annotated[str, StringConstraints(max_length=200)] | None = None
    count: int = Field(default=10, ge=1, le=100, strict=True)


class UpdateMe(Body):
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
