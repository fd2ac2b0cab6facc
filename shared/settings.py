"""Typed settings shared by every service, read from the environment."""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.outbound import ForbiddenDestinationError, OriginAllowList

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _list_of_strings(value: Any) -> Any:
    """Read a list from the environment as JSON (`["a", "b"]`) or as `a,b`."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


# A list setting that an operator may write either way.
StringList = Annotated[list[str], NoDecode, BeforeValidator(_list_of_strings)]


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


LogFormat = Annotated[Literal["auto", "json", "console"], BeforeValidator(_lower)]
# "" (and its synonyms "template", "none"): the built-in template writer.
AiProvider = Annotated[
    Literal["", "template", "none", "openai", "anthropic"], BeforeValidator(_lower)
]


class Settings(BaseSettings):
    """Configuration of a herald process; every field is `HERALD_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="HERALD_", extra="ignore")

    # DATABASE_URL and AMQP_URL are also read unprefixed: that is how platforms hand them out.
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("HERALD_DATABASE_URL", "DATABASE_URL"),
    )
    amqp_url: str = Field(
        default=DEFAULT_AMQP_URL,
        validation_alias=AliasChoices("HERALD_AMQP_URL", "AMQP_URL"),
    )
    environment: str = "development"
    # Standalone mode: where its SQLite database and queue files live (unless DATABASE_URL is
    # itself a sqlite:// URL).
    data_dir: str = ".herald"
    log_format: LogFormat = "auto"  # console on a terminal, else JSON
    log_level: str = "INFO"
    public_url: str = "http://127.0.0.1:8000"
    # Where an execution's trace is read, `{trace_id}` standing for its id (a Grafana Explore
    # or Jaeger URL); empty: the api and the console show the id without a link.
    trace_url_template: str = ""
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    probe_host: str = "127.0.0.1"
    # 0 picks the service's default probe port (scheduler 9101 .. notifier 9104).
    probe_port: int = 0
    # Executions a worker replica (scanner, generator, notifier) works on at once: each is one
    # unacked message, so this is also the consumer's prefetch. The work waits on GitHub and
    # models, not on the CPU: hundreds fit in one process (docs/operations.md sizes it).
    worker_concurrency: int = Field(
        default=256,
        ge=1,
        le=10_000,
        validation_alias=AliasChoices("HERALD_WORKER_CONCURRENCY", "HERALD_PREFETCH"),
    )
    # The api applies what its consumer holds in one transaction: more held, fewer transactions.
    api_prefetch: int = Field(default=64, ge=1, le=1000)
    delivery_limit: int = Field(default=5, ge=1, le=100)
    outbox_batch: int = Field(default=500, ge=1, le=10_000)
    scheduler_batch: int = Field(default=500, ge=1, le=10_000)
    scheduler_max_sleep: float = Field(default=30.0, gt=0)
    # A slot fired later than this after its instant counts as missed (catch-up decides).
    scheduler_late_grace: float = Field(default=60.0, ge=0)
    # The scheduler publishes an outbox batch as one write of frames (services/scheduler/
    # frames.py, on aiormq's internals); off, through aio-pika's public API, one by one.
    scheduler_frames: bool = True
    # Seconds the scheduler waits for the broker to confirm a batch (its rows stay locked
    # meanwhile); past it the batch fails and its rows go out again.
    scheduler_confirm_timeout: float = Field(default=30.0, gt=0)
    # Where zones come from (shared/scheduling/zonedata.py): empty, the pinned tzdata package
    # alone; else absolute directories of TZif files (os.pathsep-separated), searched first.
    tzpath: str = ""
    # Publishing: a scheduler's claim of a due post is taken again when no attempt came due
    # for this many seconds (its `post.due` was lost). Shorter than the hour Mastodon keeps an
    # Idempotency-Key, so the claim taken again usually repeats the lost one while the key
    # still finds its status. Then the publisher's tries of one claim and the first wait.
    publish_claim_lease: float = Field(default=1800.0, ge=10)
    publish_max_retries: int = Field(default=5, ge=0, le=10)
    publish_retry_delay: int = Field(default=60, ge=1, le=86_400)
    publish_timeout: float = Field(default=30.0, gt=0)
    # Tests and benchmarks only: shift the scheduler's clock by this many seconds.
    scheduler_clock_offset: float = 0.0
    local_repos_root: str = "/srv/herald/repos"
    # Secrets are SecretStr: printed settings, reprs and validation errors never show them.
    secret_key: SecretStr = SecretStr("")
    # Notifier email: Resend when its key is set, else SMTP when a host is set, else no email.
    email_from: str = "herald <herald@localhost>"
    resend_api_key: SecretStr = SecretStr("")
    resend_api_url: str = "https://api.resend.com"
    smtp_host: str = ""
    # 0 picks the TLS mode's usual port: 587 starttls, 465 tls, 25 none.
    smtp_port: int = Field(default=0, ge=0, le=65_535)
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout: float = Field(default=30.0, gt=0)
    # Notifier: tries per channel within one message, and the longest wait between two.
    notify_attempts: int = Field(default=3, ge=1, le=10)
    notify_max_wait: float = Field(default=30.0, ge=0)
    notify_timeout: float = Field(default=15.0, gt=0)
    github_token: SecretStr = SecretStr("")
    # The GitHub API herald's own token belongs to; a project may name it or, as its GitHub
    # base URL, an origin of `github_enterprise_origins` (`https://ghe.example.com`).
    github_api_url: str = "https://api.github.com"
    github_enterprise_origins: StringList = []
    # herald's GitHub App on `github_api_url`: its app ID (or client ID, which GitHub now
    # recommends as the JWT's issuer) and its RSA private key (PEM; `\n` escapes accepted).
    # With both set, a project on that GitHub may name an installation granted to its owner.
    github_app_id: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9.]*$")
    github_app_private_key: SecretStr = SecretStr("")
    # The secret GitHub signs the App's own webhook deliveries with (`installation` events,
    # sent to `/api/webhooks/github` without a project); unset, the api refuses them.
    github_app_webhook_secret: SecretStr = SecretStr("")
    # How long a GitHub webhook delivery's id (and its line in the project's deliveries) is
    # kept: past GitHub's redelivery window (3 days; 7 on Enterprise Server), so a redelivery
    # still runs nothing.
    github_delivery_retention_days: int = Field(default=30, ge=7, le=3650)
    # Where tenants' alert webhooks may point (origins; the path is checked per service).
    slack_webhook_origins: StringList = ["https://hooks.slack.com"]
    discord_webhook_origins: StringList = ["https://discord.com", "https://discordapp.com"]
    # Requests a tenant's data can steer (GitHub, webhooks) never reach a loopback, private,
    # link-local or other internal address, except in these networks (`10.1.0.0/16`), for an
    # Enterprise server or a test double on the operator's own network.
    outbound_allow_networks: StringList = []
    # Every outbound delivery that carries a tenant's secret or signed content (a WEBHOOK job's
    # URL; a Mastodon instance, a Bluesky PDS and the publishing webhook) must be https unless
    # this allows http (a receiver on the operator's own network, a test double); it is
    # checked when the URL is saved and again before sending. The address rule above applies
    # either way.
    webhook_allow_http: bool = False
    # One WEBHOOK delivery attempt's time limit: connecting, sending, and the receiver's answer.
    webhook_timeout: float = Field(default=10.0, gt=0, le=300)

    @field_validator("outbound_allow_networks")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            ipaddress.ip_network(value, strict=False)  # a ValueError names the bad one
        return values

    @field_validator(
        "github_enterprise_origins", "slack_webhook_origins", "discord_webhook_origins"
    )
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                OriginAllowList([value])
            except ForbiddenDestinationError as exc:
                raise ValueError(f"{value!r} is not an http(s) origin: {exc.message}") from None
        return values

    # Requests one scanner process has in flight to GitHub at once: GitHub's secondary limits
    # allow about 100 concurrent requests per credential, across every replica.
    github_max_concurrent: int = Field(default=50, ge=1, le=1000)
    github_connect_timeout: float = Field(default=5.0, gt=0)
    github_read_timeout: float = Field(default=30.0, gt=0)
    # The total time one scan may spend talking to GitHub (the job's deadline also bounds it).
    scan_timeout: float = Field(default=300.0, gt=0)
    # AI provider: "" (the built-in template writer), "openai" (any compatible server) or
    # "anthropic". The key comes from the generator's environment, never from an event.
    ai_provider: AiProvider = ""
    ai_base_url: str = ""
    ai_model: str = ""
    ai_api_key: SecretStr = SecretStr("")
    ai_max_tokens: int = Field(default=1024, ge=16, le=32_000)
    ai_timeout: float = Field(default=60.0, gt=0)
    # Provider calls retried within one attempt, and the longest wait spent doing so; a longer
    # wait (or more failures) leaves the platform pending for the step's delay ladder.
    ai_call_retries: int = Field(default=2, ge=0, le=10)
    # The provider's limits for this model, spent by every generator replica together
    # (through Redis when HERALD_REDIS_URL is set); 0: no budget of herald's own (the
    # provider's headers and 429s still pace every replica).
    ai_requests_per_minute: int = Field(default=0, ge=0)
    ai_tokens_per_minute: int = Field(default=0, ge=0)
    ai_retry_max_wait: float = Field(default=10.0, ge=0)
    cors_origins: StringList = []
    # Redis (the distributed mode): rate budgets shared by every replica, nothing else. Empty:
    # each process keeps its own (the standalone mode).
    redis_url: str = ""
    redis_prefix: str = "herald"
    # Abuse limits (0 turns one off): records per user, manual runs per job per minute, and
    # failed authentications per client address per minute (slowed past half, then 429).
    max_projects_per_user: int = Field(default=100, ge=0)
    max_jobs_per_user: int = Field(default=500, ge=0)
    manual_triggers_per_minute: int = Field(default=10, ge=0)
    # Runs GitHub's webhook deliveries may start per project per minute (0: no limit); a
    # budget of its own, not the manual one.
    webhook_runs_per_minute: int = Field(default=30, ge=0)
    auth_failures_per_minute: int = Field(default=20, ge=0)
    # Addresses a user may have waiting to confirm alert emails at once (each is mailed once).
    max_pending_recipients_per_user: int = Field(default=20, ge=0)
    # Proxies whose X-Forwarded-For names the client (uvicorn's forwarded_allow_ips).
    forwarded_allow_ips: str = "127.0.0.1"
    # A console sign-in lasts this long at most (signing out, or revoking the token it began
    # with, ends it sooner).
    console_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # API: request bodies above this many bytes answer 413.
    api_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # API timeout sweeper: how often it looks, and how long past a deadline it waits, seconds.
    api_sweep_interval: float = Field(default=5.0, gt=0)
    api_sweep_grace: float = Field(default=30.0, ge=0)
    # Optional JWT bearer verification (behind a gateway); empty URL turns it off.
    jwt_jwks_url: str = ""
    jwt_audience: str = ""
    jwt_issuer: str = ""
    jwt_algorithms: StringList = ["RS256", "ES256"]
    jwt_autoprovision: bool = False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
