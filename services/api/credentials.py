"""A project's own GitHub credential: the rules it must meet and the columns that store it.

The API's project routes and `herald projects connect` both go through `credential_columns`
and `ensure_granted`, so a credential is refused, and a token encrypted, the same way
whichever door it came in by.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.app_events import installation_status
from services.api.installation_grants import holds_grant
from shared.errors import HeraldError
from shared.outbound import origin_of, same_origin
from shared.secrets import encrypt
from shared.settings import Settings


class CredentialRefusedError(HeraldError):
    """This server cannot read GitHub with the credential given."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def credential_columns(
    settings: Settings, changes: dict[str, Any], base_url: str | None
) -> dict[str, Any]:
    """The GitHub credential columns `changes` set, the token encrypted.

    `changes` holds `github_installation_id` (None clears it) and `github_token` ("" or None
    removes it) when they change, as `UpdateProject` validated them; `base_url` is the
    project's GitHub API base URL after the change. Raises CredentialRefusedError naming the
    API field at fault, or SecretKeyError when a token cannot be encrypted.

    A changed credential forgets what the last scan reported of the previous one.
    """
    columns: dict[str, Any] = {}
    if "github_installation_id" in changes:
        installation_id = changes["github_installation_id"]
        if installation_id is not None:
            if not settings.github_app_id:
                raise CredentialRefusedError(
                    "githubInstallationId",
                    "this server has no GitHub App: its operator sets HERALD_GITHUB_APP_ID "
                    "and HERALD_GITHUB_APP_PRIVATE_KEY first; give a githubToken instead",
                )
            if base_url and not same_origin(base_url, settings.github_api_url):
                raise CredentialRefusedError(
                    "githubInstallationId",
                    f"herald's GitHub App reads only {origin_of(settings.github_api_url)}; "
                    "a project on another GitHub server gives a githubToken instead",
                )
        columns["github_installation_id"] = installation_id
        # What GitHub said of the installation is read with its grant (`ensure_granted`).
        columns["github_installation_status"] = None
    if "github_token" in changes:
        token = changes["github_token"]
        columns["github_token_encrypted"] = (
            encrypt(token, settings.secret_key.get_secret_value()) if token else None
        )
    if columns:
        columns.update(github_credential=None, github_rate_limit=None)
    return columns


async def ensure_granted(session: AsyncSession, columns: dict[str, Any], *, user_id: str) -> None:
    """Refuse an installation `columns` set that the project's owner holds no grant of.

    Anyone may name any installation's id, and GitHub would hand herald's App a token for
    it: only an operator's grant ties an installation to a herald account.
    """
    installation_id = columns.get("github_installation_id")
    if installation_id is None:
        return
    if not await holds_grant(session, installation_id=installation_id, user_id=user_id):
        raise CredentialRefusedError(
            "githubInstallationId",
            f"installation {installation_id} is not granted to this account; an operator "
            "grants it with `herald installations grant`",
        )
    columns["github_installation_status"] = await installation_status(session, installation_id)
