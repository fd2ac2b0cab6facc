"""Versioned event contracts: the only shapes that travel between services.

Every event carries the envelope fields; the routing key names its type (`<entity>.<event>`).
An unknown `version` or a body that does not validate is a poison message: dead-lettered,
never retried.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)
from pydantic.alias_generators import to_camel

from shared.errors import InvalidEventError
from shared.ids import new_event_id


class Wire(BaseModel):
    """A model that is camelCase on the wire and snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class Trigger(StrEnum):
    SCHEDULE = "SCHEDULE"
    MANUAL = "MANUAL"
    CATCHUP = "CATCHUP"
    WEBHOOK = "WEBHOOK"
    DEPENDENCY = "DEPENDENCY"


class ExecutionStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    SKIPPED = "SKIPPED"
    MISSED = "MISSED"

    @property
    def is_terminal(self) -> bool:
        return self not in (ExecutionStatus.PENDING, ExecutionStatus.RUNNING)


class JobType(StrEnum):
    """What a job does with its window's activity (the seed's `CronJob.type`)."""

    GENERATE_CONTENT = "GENERATE_CONTENT"
    PUBLISH_CONTENT = "PUBLISH_CONTENT"
    SYNC_GITHUB = "SYNC_GITHUB"
    ANALYTICS = "ANALYTICS"
    WEBHOOK = "WEBHOOK"

    @property
    def generates(self) -> bool:
        """Whether its runs have the generator write posts after the scan."""
        return self in (JobType.GENERATE_CONTENT, JobType.WEBHOOK)


class Step(StrEnum):
    SCAN = "scan"
    GENERATE = "generate"
    # A WEBHOOK job's POST of its run to the owner's URL, after the posts are written.
    DELIVER = "deliver"


def _now() -> datetime:
    return datetime.now(UTC)


class Event(Wire):
    """The envelope every event shares."""

    routing_key: ClassVar[str]
    event_id: str = Field(default_factory=new_event_id)
    occurred_at: datetime = Field(default_factory=_now)
    version: Literal[1] = 1
    execution_id: str
    job_id: str
    project_id: str
    attempt: int = Field(default=1, ge=1)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    def envelope(self) -> dict[str, Any]:
        """The fields an event caused by this one carries over: `Next(**cause.envelope(), ...)`."""
        return {
            "execution_id": self.execution_id,
            "job_id": self.job_id,
            "project_id": self.project_id,
            "attempt": self.attempt,
        }


class Repository(Wire):
    """Where the activity comes from: a GitHub repository or a local git repository."""

    owner: str | None = None
    name: str | None = None
    base_url: str | None = None
    local_path: str | None = None


class GitHubCredential(Wire):
    """Which credential a project gave for its GitHub repository (none: the server's token).

    `token` is the project's own token exactly as stored, encrypted with HERALD_SECRET_KEY:
    never in clear on the wire; the scanner decrypts it.
    """

    installation_id: int | None = Field(default=None, ge=1)
    token: str | None = None
    # What GitHub's `installation` events last said of that installation: absent while it
    # reads; the scanner fails a run on a suspended or removed one without asking GitHub.
    installation_status: Literal["suspended", "removed"] | None = None


class WebhookTarget(Wire):
    """Where a WEBHOOK job delivers its run, as stored: never in clear on the wire.

    `url` and `secret` are encrypted with HERALD_SECRET_KEY (the URL may embed a token of
    its own); the generator decrypts them to send. The names label the delivered document.
    """

    url: str
    secret: str
    job_name: str = ""
    project_name: str = ""


class RateLimitSeen(Wire):
    """A GitHub credential's hourly budget as its latest answer reported it."""

    limit: int
    remaining: int
    reset_at: datetime


class GitHubRelease(Wire):
    """A published GitHub release a webhook run announces, as its delivery named it.

    The api copies it from the signed `release` payload onto `job.due`; the scanner finds
    the release before it (`previous_tag`, `previous_published_at`) and carries it on in
    the summary, so the post is about this release.
    """

    tag: str = Field(max_length=255)
    name: str | None = Field(default=None, max_length=255)
    # The release notes, cut to what a prompt can carry.
    body: str | None = Field(default=None, max_length=4000)
    url: str | None = Field(default=None, max_length=2000)
    published_at: datetime | None = None
    prerelease: bool = False
    previous_tag: str | None = Field(default=None, max_length=255)
    previous_published_at: datetime | None = None


class RetryPolicy(Wire):
    max_retries: int = Field(default=3, ge=0, le=10)
    retry_delay: int = Field(default=300, ge=1, le=86_400)


# Bots' logins ignored by default when a job sets conditions: their pull requests and commits
# (dependency bumps) say nothing a post should.
DEFAULT_IGNORED_AUTHORS = ("dependabot[bot]", "renovate[bot]")


class RunConditions(Wire):
    """When a run is worth writing about: filters on the activity, then minimum counts.

    Items by `ignore_authors`, commits outside the paths and pull requests or issues outside
    the labels are removed first; the counts that remain must reach every minimum set. Not
    met: the run ends SKIPPED with the reason, before any model call. `accumulate` keeps the
    skipped run's activity for the next run (its window opens where the last run not skipped
    for its conditions ended).
    """

    min_commits: int | None = None
    min_pull_requests: int | None = None
    min_issues: int | None = None
    # Commits, merged pull requests and closed issues together.
    min_total: int | None = None
    include_paths: list[str] = []
    exclude_paths: list[str] = []
    include_labels: list[str] = []
    exclude_labels: list[str] = []
    ignore_authors: list[str] = list(DEFAULT_IGNORED_AUTHORS)
    accumulate: bool = False

    @property
    def filters_paths(self) -> bool:
        return bool(self.include_paths or self.exclude_paths)


class JobDue(Event):
    routing_key: ClassVar[str] = "job.due"
    scheduled_for: datetime
    trigger: Trigger
    window_start: datetime | None
    window_end: datetime
    repository: Repository
    platforms: list[str]
    retry_policy: RetryPolicy = RetryPolicy()
    deadline: datetime
    timeout_seconds: int = 900
    user_id: str | None = None
    # The project's own GitHub credential, if it gave one; absent: the server's.
    github_credential: GitHubCredential | None = None
    # The job's run conditions (`RunConditions`); absent: every run goes on to generate.
    conditions: RunConditions | None = None
    # What the job does after the scan; absent (older schedulers): GENERATE_CONTENT.
    job_type: JobType = JobType.GENERATE_CONTENT
    # A DEPENDENCY run's upstream execution, whose output (its posts) the run may take;
    # absent for every other trigger.
    upstream_execution_id: str | None = None
    # A WEBHOOK job's destination and signing secret, both encrypted; absent for other types.
    webhook: WebhookTarget | None = None
    # A run a `release` delivery triggered: the release. The scanner then covers the commits
    # since the previous published release, not the window above.
    github_release: GitHubRelease | None = None


class StepStarted(Event):
    routing_key: ClassVar[str] = "step.started"
    step: Step


class StepFailed(Event):
    routing_key: ClassVar[str] = "step.failed"
    step: Step
    retriable: bool
    final: bool
    error: str
    stack: str | None = None
    next_attempt_at: datetime | None = None


class StepWaiting(Event):
    """A step waits for a budget the fleet shares: no failure, and the deadline moves past it."""

    routing_key: ClassVar[str] = "step.waiting"
    step: Step
    reason: str
    # When the step expects to go on; the attempt's deadline counts from then.
    until: datetime


class ActivityItem(Wire):
    kind: Literal["commit", "pull_request", "issue", "tag"]
    title: str
    url: str | None = None
    author: str | None = None
    number: int | None = None
    sha: str | None = None
    at: datetime | None = None
    labels: list[str] = []
    # breaking | feature | fix | docs | other: how a changelog groups the item.
    change_type: str | None = None


class ActivitySummary(Wire):
    commits: int = 0
    pull_requests: int = 0
    issues: int = 0
    tags: int = 0
    contributors: list[str] = []
    items: list[ActivityItem] = []
    notable: list[ActivityItem] = []
    breaking_changes: list[str] = []
    releases: list[str] = []
    # The page comparing the window's first and last commits (or the one commit's page), when
    # the repository has pages: optional, so older producers and consumers still agree.
    compare_url: str | None = None
    # The release the run announces (a `release` delivery's), with the one before it.
    release: GitHubRelease | None = None
    # Posts an earlier generate attempt already finished: a retried `activity.scanned`
    # carries them, so the retry reruns only the platforms still pending.
    posts_done: list[PostResult] = []

    @property
    def is_empty(self) -> bool:
        return not (self.commits or self.pull_requests or self.issues or self.tags)


class ActivityScanned(Event):
    routing_key: ClassVar[str] = "activity.scanned"
    summary: ActivitySummary
    github_api_calls: int = 0
    # Carried on so the generator needs nothing but this event.
    platforms: list[str]
    repository: Repository
    # Set when GitHub answered that `repository` was renamed or transferred: the same
    # repository under its new owner and name (`GET /repositories/{id}`). The api renames
    # the project (if it still names the old one) and tells its owner; the generator names
    # the new one. Absent from older scanners: nothing moved.
    repository_moved_to: Repository | None = None
    # Which credential the scan read GitHub with (app | token | global | none) and its
    # budget as GitHub last reported it; the api shows both on the project.
    github_credential: Literal["app", "token", "global", "none"] | None = None
    github_rate_limit: RateLimitSeen | None = None
    window_start: datetime | None
    window_end: datetime
    retry_policy: RetryPolicy = RetryPolicy()
    deadline: datetime
    timeout_seconds: int = 900
    # Set when the job's conditions were not met ("3 commits, fewer than the 5 required"):
    # the generator writes nothing and the api ends the run SKIPPED with this reason.
    skip_reason: str | None = None
    # Carried over from `job.due`: the generator writes posts only for job types that do.
    job_type: JobType = JobType.GENERATE_CONTENT
    # Carried over from `job.due` for a WEBHOOK job: where the generator delivers the run.
    webhook: WebhookTarget | None = None
    # Delivery attempts earlier generate attempts made: a retried event carries them with
    # `summary.postsDone`, so a delivery retry writes no post again and counts on.
    delivery_attempts: int = Field(default=0, ge=0)


class PostResult(Wire):
    platform: str
    status: Literal["GENERATED", "FAILED"]
    title: str | None = None
    body: str | None = None
    characters: int = 0
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation_ms: int = 0
    error: str | None = None


class DeliveryResult(Wire):
    """How a WEBHOOK job's delivery ended: what the receiver answered, never the full URL."""

    delivery_id: str
    outcome: Literal["DELIVERED", "FAILED"]
    # The destination's host (and port when not the scheme's): the URL may embed a secret.
    host: str
    attempts: int = Field(ge=0)
    # The receiver's HTTP status of the last attempt; None when no answer came.
    status_code: int | None = None
    error: str | None = None


class ContentGenerated(Event):
    routing_key: ClassVar[str] = "content.generated"
    results: list[PostResult]
    generation_ms: int = 0
    # A WEBHOOK job's delivery of the run; absent for other types (and from older generators).
    delivery: DeliveryResult | None = None


class PostExcerpt(Wire):
    platform: str
    title: str | None = None
    excerpt: str


class NotificationSettings(Wire):
    email_notifications: bool = True
    notification_events: list[str] = ["job_success", "job_failure", "job_partial"]
    recipients: list[str] = []
    failure_threshold: int = 1
    # Encrypted with HERALD_SECRET_KEY: never in clear on the wire.
    slack_webhook_url: str | None = None
    discord_webhook_url: str | None = None


class DigestAuthor(Wire):
    name: str
    items: int


class DigestBucket(Wire):
    """One bar of the digest's chart: the window's activity from `start` for one span."""

    start: datetime
    commits: int = 0
    pull_requests: int = 0
    issues: int = 0


class DigestJob(Wire):
    """One job of the project over the window, from its runs and its statistics row."""

    job_id: str
    name: str
    type: JobType
    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    missed: int = 0
    cancelled: int = 0
    # Of the runs that completed or failed, in percent; None without any.
    success_rate: float | None = None
    average_duration: int | None = None
    # The job's current run of failures (its statistics' streak, not only the window's).
    consecutive_failures: int = 0


class Digest(Wire):
    """An ANALYTICS run's result: the window's activity and the project's jobs over it."""

    window_start: datetime | None
    window_end: datetime
    commits: int = 0
    pull_requests: int = 0
    issues: int = 0
    tags: int = 0
    contributors: int = 0
    top_authors: list[DigestAuthor] = []
    notable: list[ActivityItem] = []
    releases: list[str] = []
    # The scan keeps its newest items only: the authors and the chart are of `items_seen`
    # of the window's `items_total`.
    items_seen: int = 0
    items_total: int = 0
    # The chart's span per bar, in seconds, and its bars, oldest first.
    bucket_seconds: int = 86_400
    timeline: list[DigestBucket] = []
    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    missed: int = 0
    cancelled: int = 0
    success_rate: float | None = None
    average_duration: int | None = None
    jobs: list[DigestJob] = []


class ExecutionFinished(Event):
    routing_key: ClassVar[str] = "execution.finished"
    status: ExecutionStatus
    trigger: Trigger
    scheduled_for: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration: int | None = None
    items_processed: int = 0
    items_success: int = 0
    items_failed: int = 0
    error_message: str | None = None
    job_name: str
    project_name: str
    user_id: str
    notification_settings: NotificationSettings = NotificationSettings()
    recipients: list[str] = []
    consecutive_failures: int = 0
    previous_status: ExecutionStatus | None = None
    posts: list[PostExcerpt] = []
    link: str
    missed_count: int | None = None
    # Why a SKIPPED run was skipped, when its conditions were not met.
    skip_reason: str | None = None
    # What the job does, and what its run produced in a sentence ("Synced 12 commits, ...");
    # absent from older producers: a GENERATE_CONTENT run, said by its counts.
    job_type: JobType = JobType.GENERATE_CONTENT
    result: str | None = None
    # An ANALYTICS run's digest: the owner gets it on every channel they use.
    digest: Digest | None = None


class ScheduleMoved(Event):
    """A job's stored next run moved because the time-zone rules changed under it.

    It concerns no execution, so `executionId` is empty.
    """

    routing_key: ClassVar[str] = "schedule.moved"
    execution_id: str = ""
    user_id: str
    job_name: str
    project_name: str
    # The job's IANA zone, and the next run before and after, in UTC.
    timezone: str
    previous_run_at: datetime
    next_run_at: datetime
    # The time-zone database versions: what the old next run followed (None: not recorded).
    rules_version: str
    previous_rules_version: str | None = None
    notification_settings: NotificationSettings = NotificationSettings()
    recipients: list[str] = []
    link: str


class ExecutionCancelled(Event):
    routing_key: ClassVar[str] = "execution.cancelled"


class NotificationCreated(Event):
    routing_key: ClassVar[str] = "notification.created"
    user_id: str
    kind: str
    title: str
    body: str
    link: str | None = None


class NotificationDelivery(Event):
    routing_key: ClassVar[str] = "notification.delivery"
    user_id: str
    channel: str
    recipient: str
    outcome: Literal["SENT", "FAILED", "SKIPPED"]
    attempts: int = 1
    error: str | None = None
    kind: str


class RecipientConfirmationRequested(Event):
    """Ask an address whether it wants a user's alert emails; the notifier mails the question.

    It concerns no execution or job, so those envelope fields are empty.
    """

    routing_key: ClassVar[str] = "recipient.confirmation_requested"
    execution_id: str = ""
    job_id: str = ""
    user_id: str
    email: str
    # Who asked and for what, as the email says it: the user's name and address, a project.
    requested_by: str
    project_name: str
    # The confirmation page's URL, encrypted with HERALD_SECRET_KEY: its token is a secret.
    link: str


class PublishingTarget(Wire):
    """Where and as whom a post is published: a project's credential for one network.

    `network` is mastodon, bluesky or webhook; `settings` its non-secret part (instanceUrl;
    serviceUrl and identifier; urlHost); `secret` exactly as stored, encrypted with
    HERALD_SECRET_KEY: never in clear on the wire, the publisher decrypts it. `url` is the
    webhook's URL, encrypted the same way (it may carry the receiver's token).
    """

    network: Literal["mastodon", "bluesky", "webhook"]
    settings: dict[str, str] = {}
    secret: str
    url: str | None = None


class PostDue(Event):
    """A scheduled post whose time came, claimed by one scheduler: publish it once.

    `executionId` and `jobId` are the run that generated it. `claim` counts the scheduler's
    claims of the post (a lost `post.due` is claimed again after the lease); `target` is
    absent when the project has no way to publish the platform, which fails the post.
    `unknownSince` is when the first attempt that may have published the post without herald
    hearing began: set by the publisher on a retry after an outcome it did not learn (a
    timeout, a lost connection, a 5xx), and by the scheduler on a claim taken again (the
    post's first claim, kept on its row) or on a post an earlier chain failed with an unknown
    outcome (`post.failed`'s `unknownSince`, kept on its row): the earlier of the two.
    Mastodon forgets an Idempotency-Key after an hour, so past that the publisher looks for
    the status before sending it again. `unknownTexts` are the texts such attempts may have
    sent when the owner has edited the post since (`body` is the new text), oldest first, at
    most 20: the publisher looks for any of them.
    """

    routing_key: ClassVar[str] = "post.due"
    post_id: str
    platform: str
    title: str | None = None
    body: str
    claim: int = Field(default=1, ge=1)
    claimed_at: datetime
    target: PublishingTarget | None = None
    retry_policy: RetryPolicy = RetryPolicy()
    unknown_since: datetime | None = None
    unknown_texts: list[str] = []


# Bounds of what herald takes from an instance: any real limit fits, and a column does too.
MASTODON_MAX_CHARACTERS = (1, 1_000_000)
MASTODON_RESERVED_PER_URL = (0, 10_000)


def clamped(value: int, bounds: tuple[int, int]) -> int:
    return min(max(value, bounds[0]), bounds[1])


class MastodonLimits(Wire):
    """A Mastodon instance's status limits as the publisher read them (`/api/v2/instance`).

    `instanceUrl` is the origin they were read from: the api records them on the project's
    credential only while it still names that instance, and checks an edited or scheduled
    post against them instead of Mastodon's default 500. A value out of the bounds is taken
    at the nearest bound, and limits that do not validate at all are dropped: they ride on
    an outcome, which must never be lost for them.
    """

    instance_url: str
    max_characters: int = Field(ge=MASTODON_MAX_CHARACTERS[0], le=MASTODON_MAX_CHARACTERS[1])
    characters_reserved_per_url: int = Field(
        ge=MASTODON_RESERVED_PER_URL[0], le=MASTODON_RESERVED_PER_URL[1]
    )

    @field_validator("max_characters", mode="before")
    @classmethod
    def _max_within(cls, value: Any) -> Any:
        return clamped(value, MASTODON_MAX_CHARACTERS) if _integral(value) else value

    @field_validator("characters_reserved_per_url", mode="before")
    @classmethod
    def _reserved_within(cls, value: Any) -> Any:
        return clamped(value, MASTODON_RESERVED_PER_URL) if _integral(value) else value


def _integral(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _limits_or_none(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return None


# Limits that do not validate are dropped rather than the outcome they ride on.
OptionalMastodonLimits = Annotated[MastodonLimits | None, WrapValidator(_limits_or_none)]


class PostPublished(Event):
    """The network has the post: where a reader opens it, its id there, and since when.

    `mastodonLimits` is the instance's limits the publisher knew, absent for the other
    networks and when it had not read them.
    """

    routing_key: ClassVar[str] = "post.published"
    post_id: str
    network: str
    # None when a generic webhook published it and named no address.
    url: str | None = None
    network_post_id: str
    published_at: datetime
    # True when an earlier attempt had published it and this one found it (a redelivery).
    earlier: bool = False
    mastodon_limits: OptionalMastodonLimits = None


class PostFailed(Event):
    """Publishing a post failed: the network's reason; `final` when no retry follows.

    Not final, `nextAttemptAt` says when the publisher tries again (a retry, or the end of a
    rate-limit wait): the api moves the post's claim there, so the scheduler's lease counts
    from the next attempt and a chain still being worked is never claimed a second time.

    Final, `unknownSince` is when the first attempt whose outcome herald did not learn began
    (a timeout, a lost connection, a 5xx), absent when every attempt was answered (a
    refusal published nothing) or the reason already asks the owner to check the account.
    The api keeps the earliest it has heard on the post until it is published, so a claim
    after the owner schedules it again still looks for a status Mastodon may have made but
    forgotten the key of. `ownerChecks` is true when herald could not look for such a status
    for good (the token may not read the account, or the account's statuses reach back too
    far): the reason asks the owner to check the account, and the api forgets the unknown
    outcome, so a new schedule after checking sends.

    `mastodonLimits` as in `post.published`. `mastodonLimitsOutdated` names the instance
    that refused the status as too long although the limits the publisher had read let it
    through: the api forgets the limits it keeps for that instance (none are reported then).
    """

    routing_key: ClassVar[str] = "post.failed"
    post_id: str
    platform: str
    network: str | None = None
    reason: str
    final: bool
    next_attempt_at: datetime | None = None
    unknown_since: datetime | None = None
    owner_checks: bool = False
    mastodon_limits: OptionalMastodonLimits = None
    mastodon_limits_outdated: str | None = None


class PostUnpublished(Event):
    """A post could not be published: the owner's email alert, if the project wants it.

    The api raises the in-app alert itself when it records the failure; this event carries
    what the notifier needs to mail it (`post_failed` in the project's notificationEvents).
    """

    routing_key: ClassVar[str] = "post.unpublished"
    user_id: str
    post_id: str
    platform: str
    reason: str
    job_name: str
    project_name: str
    notification_settings: NotificationSettings = NotificationSettings()
    recipients: list[str] = []
    # The post's console page.
    link: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.routing_key: cls
    for cls in (
        JobDue,
        StepStarted,
        StepFailed,
        StepWaiting,
        ActivityScanned,
        ContentGenerated,
        ExecutionFinished,
        ScheduleMoved,
        ExecutionCancelled,
        NotificationCreated,
        NotificationDelivery,
        RecipientConfirmationRequested,
        PostDue,
        PostPublished,
        PostFailed,
        PostUnpublished,
    )
}


def decode_event(routing_key: str, body: bytes) -> Event:
    """Parse a message body as the event its routing key names, or raise InvalidEventError."""
    model = EVENT_TYPES.get(routing_key)
    if model is None:
        raise InvalidEventError(f"unknown event type {routing_key!r}")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidEventError(f"invalid {routing_key} event: {where}: {first['msg']}") from None


def dump(value: Any) -> Any:
    """Return a JSON-ready camelCase form of a wire model or a plain value."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    return value
