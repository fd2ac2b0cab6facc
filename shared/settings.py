"""Typed settings shared by every service, read from the environment."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


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
    log_format: str = "auto"  # json | console | auto (console on a terminal)
    log_level: str = "INFO"
    public_url: str = "http://127.0.0.1:8000"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    probe_host: str = "127.0.0.1"
    # 0 picks the service's default probe port (scheduler 9101 .. notifier 9104).
    probe_port: int = 0
    prefetch: int = Field(default=16, ge=1, le=1000)
    delivery_limit: int = Field(default=5, ge=1, le=100)
    outbox_batch: int = Field(default=500, ge=1, le=10_000)
    scheduler_batch: int = Field(default=500, ge=1, le=10_000)
    scheduler_max_sleep: float = Field(default=30.0, gt=0)
    local_repos_root: str = "/srv/herald/repos"
    secret_key: str = ""
    github_token: str = ""
    github_api_url: str = "https://api.github.com"
    cors_origins: list[str] = []


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
