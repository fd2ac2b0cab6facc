"""The SQLAlchemy schema of herald's records (one code path for PostgreSQL and SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db.types import JSONType, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


ID = String(40)


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    external_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # SHA-256 of the token: a leaked table reveals no usable token.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ConsoleSession(Base):
    """A console sign-in: the browser holds its secret, never the API token it began with."""

    __tablename__ = "console_sessions"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Revoking the token that signed in ends its sessions too.
    token_id: Mapped[str] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True
    )
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class RecipientConfirmation(Base):
    """An alert-email address a user named, and whether its owner agreed to the mail."""

    __tablename__ = "recipient_confirmations"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]
    declined_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("user_id", "email"),)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    github_repo_owner: Mapped[str | None] = mapped_column(String(100))
    github_repo_name: Mapped[str | None] = mapped_column(String(100))
    github_base_url: Mapped[str | None] = mapped_column(String(500))
    local_repo_path: Mapped[str | None] = mapped_column(String(1000))
    # How the scanner reads the repository, first that applies: herald's GitHub App through
    # this installation (only one granted to the project's owner, see
    # GitHubInstallationGrant), the project's own token (encrypted with HERALD_SECRET_KEY;
    # text, as installation-style tokens run to ~520 characters), the server's token.
    github_installation_id: Mapped[int | None] = mapped_column(BigInteger)
    github_token_encrypted: Mapped[str | None] = mapped_column(Text)
    # What GitHub last said of that installation (`installation` events): None while it
    # reads, "suspended" or "removed"; carried on `job.due` so a run fails at once, saying so.
    github_installation_status: Mapped[str | None] = mapped_column(String(16))
    # The secret GitHub signs this project's webhook deliveries with (X-Hub-Signature-256),
    # encrypted with HERALD_SECRET_KEY: herald generates it and shows it once.
    github_webhook_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    # What the latest scan reported: the credential it used (app | token | global | none)
    # and that credential's rate limit as GitHub last answered it (limit, remaining, resetAt).
    github_credential: Mapped[str | None] = mapped_column(String(16))
    github_rate_limit: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    platforms: Mapped[list[str]] = mapped_column(JSONType, default=list)
    notification_settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Per platform, "auto" to publish a generated post without review; absent: review first.
    publish_modes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_synced_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_projects_user_created", "user_id", "created_at", "id"),)


class GitHubInstallationGrant(Base):
    """An operator's word that a user may read through this installation of herald's App.

    Nothing else ties an installation to a herald account: GitHub knows who installed the
    App, herald does not. A project names an installation only if its owner holds a grant.
    """

    __tablename__ = "github_installation_grants"
    installation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Who granted it, as the operator's command line knew them (a login name); for the record.
    granted_by: Mapped[str] = mapped_column(Text)


class GitHubInstallation(Base):
    """An installation of herald's GitHub App as its `installation` events describe it.

    Kept for the operator (who granted what, where it reads) and for the projects naming
    it; a grant, not this row, is what lets a user's project read through it.
    """

    __tablename__ = "github_installations"
    installation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    account_login: Mapped[str | None] = mapped_column(String(255))
    account_type: Mapped[str | None] = mapped_column(String(32))
    # "all" or "selected"; with "selected", the repositories' full names it may read.
    repository_selection: Mapped[str | None] = mapped_column(String(16))
    repositories: Mapped[list[str] | None] = mapped_column(JSONType)
    suspended_at: Mapped[datetime | None]
    removed_at: Mapped[datetime | None]
    # The installation's own `updated_at` as the latest event applied reported it: an event
    # describing an older state (a failed delivery redelivered by hand, days later) must not
    # undo a newer one.
    reported_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class GitHubAppDelivery(Base):
    """A delivery to the App's webhook, kept so a redelivery changes nothing twice."""

    __tablename__ = "github_app_deliveries"
    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class CronJob(Base):
    __tablename__ = "cron_jobs"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32), default="GENERATE_CONTENT")
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    frequency: Mapped[str] = mapped_column(String(16))
    time_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    schedule: Mapped[str] = mapped_column(String(200))
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    max_retries: Mapped[int] = mapped_column(Integer, default=3)
    retry_delay: Mapped[int] = mapped_column(Integer, default=300)
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=900)
    overlap_policy: Mapped[str] = mapped_column(String(16), default="SKIP")
    catchup_window: Mapped[int] = mapped_column(Integer, default=86_400)
    jitter: Mapped[int] = mapped_column(Integer, default=0)
    next_run_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # When a run is worth writing about (`RunConditions`, camelCase); None: always.
    conditions: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # The GitHub events that run the job too (a list of `WebhookTrigger`, camelCase); None: none.
    webhook_triggers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    # The jobs this one runs after (`[{jobId, on}]`, same user, no cycles); None: none.
    depends_on: Mapped[list[dict[str, str]] | None] = mapped_column(JSONType)
    # A WEBHOOK job's destination and the secret its deliveries are signed with, both
    # encrypted with HERALD_SECRET_KEY (the URL may embed a token); write-only in the API.
    # The host alone is kept in clear, to show where the job delivers.
    webhook_url_encrypted: Mapped[str | None] = mapped_column(Text)
    webhook_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    webhook_host: Mapped[str | None] = mapped_column(String(300))
    # Scheduler-owned (BUFFER_ONE): the execution waiting for the running one to finish.
    buffered_execution_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_cron_jobs_user_created", "user_id", "created_at", "id"),
        Index(
            "ix_cron_jobs_buffered",
            "buffered_execution_id",
            postgresql_where=text("buffered_execution_id IS NOT NULL"),
            sqlite_where=text("buffered_execution_id IS NOT NULL"),
        ),
        # The scheduler's claim reads only live, enabled jobs in next-run order.
        Index(
            "ix_cron_jobs_due",
            "next_run_at",
            postgresql_where=text("is_enabled AND deleted_at IS NULL"),
            sqlite_where=text("is_enabled AND deleted_at IS NULL"),
        ),
        # A finishing run's dependents: the live jobs of its user that name any upstream.
        Index(
            "ix_cron_jobs_user_dependent",
            "user_id",
            postgresql_where=text("depends_on IS NOT NULL AND deleted_at IS NULL"),
            sqlite_where=text("depends_on IS NOT NULL AND deleted_at IS NULL"),
        ),
        # A user's next run across their live jobs (statistics), without reading every job.
        Index(
            "ix_cron_jobs_user_next_run",
            "user_id",
            "next_run_at",
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
    )


# A run that scanned its window and was skipped because its job's conditions were not met
# (only those carry a `skip_reason`): it used its window up, unless the job accumulates.
SCANNED_SKIP = "status = 'SKIPPED' AND skip_reason IS NOT NULL"

# A run the statistics count (and time): the predicate of `ix_cron_executions_user_counted`.
# Queries spell it literally, so the planner can match the partial index.
COUNTED_RUN = "status IN ('COMPLETED', 'FAILED', 'TIMEOUT') AND duration IS NOT NULL"


class Execution(Base):
    __tablename__ = "cron_executions"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("cron_jobs.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scheduled_for: Mapped[datetime]
    trigger: Mapped[str] = mapped_column(String(16))
    triggered_by: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="PENDING")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime]
    deadline: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    duration: Mapped[int | None] = mapped_column(BigInteger)
    items_processed: Mapped[int] = mapped_column(Integer, default=0)
    items_success: Mapped[int] = mapped_column(Integer, default=0)
    items_failed: Mapped[int] = mapped_column(Integer, default=0)
    error_message: Mapped[str | None] = mapped_column(Text)
    error_stack: Mapped[str | None] = mapped_column(Text)
    # Why the run was skipped after its scan: its job's conditions were not met.
    skip_reason: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    missed_count: Mapped[int | None] = mapped_column(Integer)
    first_missed_at: Mapped[datetime | None]
    last_missed_at: Mapped[datetime | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # The run whose end started this one (trigger DEPENDENCY): its posts are its output.
    upstream_execution_id: Mapped[str | None] = mapped_column(String(40))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # The trace the run was started in (32 hex digits), when tracing is on and it was sampled.
    trace_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        # One execution per (job, scheduled instant) for scheduled runs, whoever races.
        Index(
            "uq_cron_executions_job_slot",
            "job_id",
            "scheduled_for",
            unique=True,
            postgresql_where=text("trigger IN ('SCHEDULE', 'CATCHUP')"),
            sqlite_where=text("trigger IN ('SCHEDULE', 'CATCHUP')"),
        ),
        Index(
            "uq_cron_executions_idempotency",
            "job_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
            sqlite_where=text("idempotency_key IS NOT NULL"),
        ),
        Index(
            "uq_cron_executions_user_idempotency",
            "user_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
            sqlite_where=text("idempotency_key IS NOT NULL"),
        ),
        # One run of a dependent per upstream run, however often the upstream's end is applied.
        Index(
            "uq_cron_executions_job_upstream",
            "job_id",
            "upstream_execution_id",
            unique=True,
            postgresql_where=text("upstream_execution_id IS NOT NULL"),
            sqlite_where=text("upstream_execution_id IS NOT NULL"),
        ),
        Index("ix_cron_executions_job_created", "job_id", "created_at", "id"),
        # The scheduler's per-batch look-ups: unfinished runs, last completed window.
        Index(
            "ix_cron_executions_job_open",
            "job_id",
            postgresql_where=text("status IN ('PENDING', 'RUNNING')"),
            sqlite_where=text("status IN ('PENDING', 'RUNNING')"),
        ),
        Index(
            "ix_cron_executions_job_completed",
            "job_id",
            "window_end",
            postgresql_where=text("status = 'COMPLETED'"),
            sqlite_where=text("status = 'COMPLETED'"),
        ),
        # The last window a run skipped for its conditions used up (`SCANNED_SKIP`).
        Index(
            "ix_cron_executions_job_scanned_skip",
            "job_id",
            "window_end",
            postgresql_where=text(SCANNED_SKIP),
            sqlite_where=text(SCANNED_SKIP),
        ),
        Index("ix_cron_executions_user_created", "user_id", "created_at", "id"),
        # The caller's last counted runs (statistics' percentiles) without walking history.
        Index(
            "ix_cron_executions_user_counted",
            "user_id",
            "created_at",
            "id",
            postgresql_include=["duration"],
            postgresql_where=text(COUNTED_RUN),
            sqlite_where=text(COUNTED_RUN),
        ),
        Index(
            "ix_cron_executions_open",
            "status",
            "deadline",
            postgresql_where=text("status IN ('PENDING', 'RUNNING')"),
            sqlite_where=text("status IN ('PENDING', 'RUNNING')"),
        ),
    )


class ExecutionStep(Base):
    """One recorded transition of an execution: the timeline the console shows."""

    __tablename__ = "execution_steps"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    execution_id: Mapped[str] = mapped_column(
        ForeignKey("cron_executions.id", ondelete="CASCADE"), index=True
    )
    step: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ExecutionActivity(Base):
    """One item a SYNC_GITHUB run recorded: a commit, merged pull request, closed issue or tag.

    The scan's newest items (the scanner keeps 200), in its order (`position`, newest first);
    the counts of the whole window are in the execution's `metadata.activity`.
    """

    __tablename__ = "execution_activity"
    execution_id: Mapped[str] = mapped_column(
        ForeignKey("cron_executions.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    sha: Mapped[str | None] = mapped_column(String(64))
    number: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime | None]


APPROVED_UNCLAIMED = "state = 'APPROVED' AND publish_claimed_at IS NULL"


class Content(Base):
    __tablename__ = "contents"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    execution_id: Mapped[str] = mapped_column(ForeignKey("cron_executions.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    title: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    characters: Mapped[int] = mapped_column(Integer, default=0)
    model: Mapped[str | None] = mapped_column(String(200))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    generation_ms: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The post's review and publishing lifecycle (services/api/post_review.py): DRAFT as
    # generated, or SCHEDULED at once for a platform the project auto-publishes. None for a
    # post whose generation failed: there is nothing to review. Posts stored before the
    # lifecycle existed are drafts.
    state: Mapped[str | None] = mapped_column(String(16))
    # The owner and project, copied from the execution: the review list spans projects.
    user_id: Mapped[str | None] = mapped_column(String(40))
    project_id: Mapped[str | None] = mapped_column(String(40))
    publish_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    published_url: Mapped[str | None] = mapped_column(String(1000))
    publish_error: Mapped[str | None] = mapped_column(Text)
    edited_at: Mapped[datetime | None]
    # Who last edited the text (a user's id); None while it is as generated.
    edited_by: Mapped[str | None] = mapped_column(String(40))
    state_changed_at: Mapped[datetime | None]
    # A scheduler's claim of a due post (services/scheduler/due_posts.py): set with the
    # `post.due` it wrote, cleared when the post is published or fails. While it is set the
    # post is being published, and review actions are refused. A claim older than the lease
    # is taken again (its `post.due` was lost): the network keys make that publish once.
    publish_claimed_at: Mapped[datetime | None]
    publish_attempts: Mapped[int | None] = mapped_column(Integer)
    # The first claim of this publication, kept when a lost claim is taken again: a later
    # chain's `post.due` carries it (`unknownSince`), the earlier chain may have published.
    publish_first_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the first attempt whose outcome herald did not learn began, as a final
    # `post.failed` reported it (services/api/post_outcomes.py). Kept through FAILED and a
    # new schedule until the post is published: that attempt may have published it, so
    # the next claim's `post.due` carries it and the publisher looks before sending.
    publish_unknown_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Every text the post had before an edit made since then (None until the first such
    # edit), oldest first: a later chain may have sent one of them with no answer too, so the
    # publisher looks for each as well as the current text. Cleared with it.
    publish_unknown_bodies: Mapped[list[str] | None] = mapped_column(JSONType)
    # Mastodon's status id, Bluesky's at:// URI, the webhook's delivery id.
    network_post_id: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        # One stored post per execution and platform: a redelivered event cannot add a second.
        UniqueConstraint("execution_id", "platform"),
        Index("ix_contents_user_created", "user_id", "created_at", "id"),
        # What the publisher polls: scheduled posts by when they fall due.
        Index(
            "ix_contents_scheduled_due",
            "publish_at",
            postgresql_where=text("state = 'SCHEDULED'"),
            sqlite_where=text("state = 'SCHEDULED'"),
        ),
        # What a publish run schedules: a project's approved posts no scheduler holds
        # (services/api/publish_runs.py), optionally only one upstream run's.
        Index(
            "ix_contents_approved_unclaimed",
            "project_id",
            "execution_id",
            postgresql_where=text(APPROVED_UNCLAIMED),
            sqlite_where=text(APPROVED_UNCLAIMED),
        ),
    )


class PostChange(Base):
    """Who moved a post from one state to another, or edited it, and when."""

    __tablename__ = "post_changes"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    content_id: Mapped[str] = mapped_column(
        ForeignKey("contents.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # A user's id, or "herald" for what the system did (publishing, a network's refusal).
    actor: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)


class PublishingCredential(Base):
    """How a project publishes to one network: the non-secret settings, and the secret.

    `network` is mastodon (settings: instanceUrl; secret: an access token), bluesky
    (serviceUrl, identifier; an app password) or webhook (urlHost; the signing secret herald
    generated). The secret is encrypted with HERALD_SECRET_KEY and never read back by the
    API: only the publisher decrypts it, from the `post.due` that carries it. A webhook's URL
    is encrypted too (`url_encrypted`), like a WEBHOOK job's: such URLs often carry the
    receiver's token in their path or query, so only its host is ever shown.
    """

    __tablename__ = "publishing_credentials"
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    network: Mapped[str] = mapped_column(String(16), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    url_encrypted: Mapped[str | None] = mapped_column(Text)
    # A Mastodon instance's status limits, as the publisher last read them publishing for
    # this credential (the api never asks a tenant's instance itself): what an edited or
    # scheduled post is checked against. None until then, and again when the instance changes.
    max_characters: Mapped[int | None] = mapped_column(Integer)
    characters_reserved_per_url: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Notification(Base):
    __tablename__ = "notifications"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The latest run it reports: an unread alert of a job and kind takes in the next ones.
    execution_id: Mapped[str | None] = mapped_column(String(40))
    job_id: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(1000))
    read_at: Mapped[datetime | None]
    # How many runs it reports, the first one's time; `created_at` is the latest one's.
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_notifications_user_created", "user_id", "created_at", "id"),
        # One unread alert per user, job and kind: what collapses repeats, and what keeps
        # two alerts stored at once from both starting one (see services.api.batch).
        Index(
            "uq_notifications_unread_job_kind",
            "user_id",
            "job_id",
            "kind",
            unique=True,
            postgresql_where=text("read_at IS NULL AND job_id IS NOT NULL"),
            sqlite_where=text("read_at IS NULL AND job_id IS NOT NULL"),
        ),
    )


class Delivery(Base):
    __tablename__ = "deliveries"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    execution_id: Mapped[str | None] = mapped_column(String(40), index=True)
    notification_id: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(500))
    outcome: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobStatistics(Base):
    """Running counters per job, changed in the transaction that ends an execution."""

    __tablename__ = "job_statistics"
    job_id: Mapped[str] = mapped_column(
        ForeignKey("cron_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    # The job's owner, and whether the job is live (not deleted), copied here so a user's
    # statistics across their jobs sum these rows alone, with no join to the jobs.
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    live: Mapped[bool] = mapped_column(Boolean, default=True)
    total_success: Mapped[int] = mapped_column(Integer, default=0)
    total_failures: Mapped[int] = mapped_column(Integer, default=0)
    total_cancelled: Mapped[int] = mapped_column(Integer, default=0)
    total_skipped: Mapped[int] = mapped_column(Integer, default=0)
    total_missed: Mapped[int] = mapped_column(Integer, default=0)
    total_duration_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    timed_runs: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_run_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    # The last 100 counted durations (ms), newest last: percentiles without scanning history.
    recent_durations: Mapped[list[int]] = mapped_column(JSONType, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index(
            "ix_job_statistics_user_live",
            "user_id",
            postgresql_where=text("live"),
            sqlite_where=text("live"),
        ),
    )

    @classmethod
    def empty(cls, job_id: str, user_id: str, *, live: bool = True) -> JobStatistics:
        """Counters of a job that has not run yet (column defaults apply only at insert)."""
        return cls(
            job_id=job_id,
            user_id=user_id,
            live=live,
            total_success=0,
            total_failures=0,
            total_cancelled=0,
            total_skipped=0,
            total_missed=0,
            total_duration_ms=0,
            timed_runs=0,
            consecutive_failures=0,
            recent_durations=[],
        )


class OutboxMessage(Base):
    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    routing_key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]
    # W3C traceparent of the span that wrote the row: its publish, later, continues that trace.
    traceparent: Mapped[str | None] = mapped_column(String(55))

    __table_args__ = (
        Index(
            "ix_outbox_pending",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )


class GitHubDelivery(Base):
    """A GitHub webhook delivery a project accepted: its id is kept so a redelivery fires nothing.

    GitHub sends the same `X-GitHub-Delivery` again when someone redelivers by hand (days
    later); the signature carries no timestamp, so this key is also what stops a replay.
    """

    __tablename__ = "github_deliveries"
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    action: Mapped[str | None] = mapped_column(String(64))
    # started (it ran jobs), ignored (no job ran: `reason` says why), refused (signed, but
    # not a delivery herald could read: `reason`); None for deliveries from before 0017.
    outcome: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    # [{jobId, executionId}] started, and [{jobId, openExecutionId}] skipped by overlap.
    executions: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Copies GitHub sent again with this id (a redelivery by hand): answered, never run.
    redeliveries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_redelivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_github_deliveries_project_received", "project_id", "received_at", "delivery_id"),
    )


class ProcessedEvent(Base):
    """The inbox: an event id a consumer has applied, so a redelivery is applied once."""

    __tablename__ = "processed_events"
    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class SchedulingState(Base):
    """What the scheduler's stored next runs were computed with, written by the scheduler only.

    One row, `zone_rules`: the time-zone database version (`version`), and while the next
    runs are computed again under a newer one, its name (`target_version`), the last job id
    done (`cursor`, jobs go in id order) and how many moved so far (`moved`).
    """

    __tablename__ = "scheduling_state"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[str | None] = mapped_column(String(40))
    target_version: Mapped[str | None] = mapped_column(String(40))
    cursor: Mapped[str | None] = mapped_column(String(40))
    moved: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
