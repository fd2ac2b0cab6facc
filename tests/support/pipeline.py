"""The environment of herald's processes in an end-to-end stack: a local GitHub server and,
where the test has one, a local OpenAI-compatible model server."""

from __future__ import annotations

GITHUB_TOKEN = "ghp_e2e_token"
MODEL_KEY = "sk-e2e"


def pipeline_env(
    database_url: str,
    amqp_url: str,
    repos_root: str,
    github_url: str,
    model_url: str | None,
    **overrides: str | None,
) -> dict[str, str]:
    """Settings for api, scanner, generator (and the rest) on one database and vhost.

    Without `model_url` no model settings are given. An override replaces the setting of that
    name or adds it; an override of None leaves the setting out.
    """
    env: dict[str, str | None] = {
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "HERALD_LOCAL_REPOS_ROOT": repos_root,
        "HERALD_GITHUB_API_URL": github_url,
        # The local GitHub server listens on loopback, which the outbound guard refuses
        # unless the operator allows it.
        "HERALD_OUTBOUND_ALLOW_NETWORKS": "127.0.0.1/32",
        "HERALD_GITHUB_TOKEN": GITHUB_TOKEN,
    }
    if model_url is not None:
        env |= {
            "HERALD_AI_PROVIDER": "openai",
            "HERALD_AI_BASE_URL": model_url,
            "HERALD_AI_API_KEY": MODEL_KEY,
            "HERALD_AI_MODEL": "gpt-e2e",
        }
    env |= overrides
    return {name: value for name, value in env.items() if value is not None}
