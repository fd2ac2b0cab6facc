"""Alert emails go only to addresses that agreed: the account's own, and those that confirmed.

When a user names an address, it is asked once by email (through the notifier) with a link
to a page where its owner confirms or declines. Until then it is listed as pending and gets
no alert; a declined address is never asked again by that user. A project's stored settings
carry the confirmed subset (`confirmedRecipients`), re-derived whenever the list or a
confirmation changes, so the finish path reads no other table.
"""

from __future__ import annotations

import secrets as tokens
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.problems import Problem, invalid
from shared import outbox
from shared.db.schema import Project, RecipientConfirmation, User
from shared.events import RecipientConfirmationRequested
from shared.ids import new_id
from shared.notification_settings import CONFIRMED
from shared.secrets import SecretKeyError, encrypt
from shared.settings import Settings
from shared.tokens import hash_token

CONFIRM_PATH = "/console/recipients/confirm"
# A pending address is asked again at most this often, however often it is saved.
ASK_AGAIN_AFTER = timedelta(days=1)


async def ask_new_recipients(
    session: AsyncSession,
    *,
    user: User,
    project: Project,
    settings: Settings,
) -> None:
    """Ask every recipient of `project` that has not answered; derive its confirmed subset."""
    stored = dict(project.notification_settings or {})
    addresses = _unique(stored.get("recipients") or [])
    own = user.email.lower()
    others = [address for address in addresses if address.lower() != own]
    known = {
        row.email: row
        for row in (
            await session.scalars(
                select(RecipientConfirmation).where(
                    RecipientConfirmation.user_id == user.id,
                    RecipientConfirmation.email.in_([a.lower() for a in others]),
                )
            )
        ).all()
    }
    now = datetime.now(UTC)
    asking = [
        address
        for address in others
        if (row := known.get(address.lower())) is None
        or (
            row.confirmed_at is None
            and row.declined_at is None
            and row.requested_at <= now - ASK_AGAIN_AFTER
        )
    ]
    if asking:
        await _ensure_room(session, user_id=user.id, adding=asking, settings=settings)
    for address in asking:
        token = tokens.token_urlsafe(32)
        row = known.get(address.lower())
        if row is None:
            row = RecipientConfirmation(id=new_id("rcp"), user_id=user.id, email=address.lower())
            session.add(row)
        row.token_hash = hash_token(token)
        row.requested_at = now
        await outbox.enqueue(session, _question(user, project, address, token, settings=settings))
    confirmed = {address for address, row in known.items() if row.confirmed_at is not None}
    stored[CONFIRMED] = [
        address for address in addresses if address.lower() == own or address.lower() in confirmed
    ]
    project.notification_settings = stored


async def answer(session: AsyncSession, row: RecipientConfirmation, *, confirm: bool) -> None:
    """Record an address's answer, and what each of its user's projects may now mail."""
    now = datetime.now(UTC)
    if confirm:
        row.confirmed_at, row.declined_at = row.confirmed_at or now, None
    else:
        row.confirmed_at, row.declined_at = None, now
    await _rederive(session, user_id=row.user_id)


async def question_of(
    session: AsyncSession, token: str
) -> tuple[RecipientConfirmation, User] | None:
    """The address a link asks about and who asked, or None for no such link."""
    found = (
        await session.execute(
            select(RecipientConfirmation, User)
            .join(User, User.id == RecipientConfirmation.user_id)
            .where(RecipientConfirmation.token_hash == hash_token(token))
        )
    ).first()
    return None if found is None else (found[0], found[1])


async def _rederive(session: AsyncSession, *, user_id: str) -> None:
    """Derive again the confirmed subset of every live project of the user."""
    user = await session.get(User, user_id)
    assert user is not None
    confirmed = set(
        (
            await session.scalars(
                select(RecipientConfirmation.email).where(
                    RecipientConfirmation.user_id == user_id,
                    RecipientConfirmation.confirmed_at.is_not(None),
                )
            )
        ).all()
    )
    own = user.email.lower()
    projects = await session.scalars(
        select(Project).where(Project.user_id == user_id, Project.deleted_at.is_(None))
    )
    for project in projects:
        stored = dict(project.notification_settings or {})
        stored[CONFIRMED] = [
            address
            for address in stored.get("recipients") or []
            if address.lower() == own or address.lower() in confirmed
        ]
        project.notification_settings = stored


async def _ensure_room(
    session: AsyncSession, *, user_id: str, adding: list[str], settings: Settings
) -> None:
    """Refuse to ask more strangers at once than the operator allows each user."""
    limit = settings.max_pending_recipients_per_user
    if limit == 0:
        return
    pending = set(
        (
            await session.scalars(
                select(RecipientConfirmation.email).where(
                    RecipientConfirmation.user_id == user_id,
                    RecipientConfirmation.confirmed_at.is_(None),
                    RecipientConfirmation.declined_at.is_(None),
                )
            )
        ).all()
    )
    if len(pending | {address.lower() for address in adding}) > limit:
        raise Problem(
            403,
            f"more than {limit} addresses would be waiting to confirm, the most this server "
            "allows one user (HERALD_MAX_PENDING_RECIPIENTS_PER_USER)",
        )


def _question(
    user: User, project: Project, address: str, token: str, *, settings: Settings
) -> RecipientConfirmationRequested:
    link = f"{settings.public_url.rstrip('/')}{CONFIRM_PATH}?{urlencode({'token': token})}"
    try:
        sealed = encrypt(link, settings.secret_key.get_secret_value())
    except SecretKeyError as exc:
        raise invalid("notificationSettings.recipients", exc.message) from None
    who = f"{user.name} <{user.email}>" if user.name else user.email
    return RecipientConfirmationRequested(
        project_id=project.id,
        user_id=user.id,
        email=address,
        requested_by=who,
        project_name=project.name,
        link=sealed,
    )


def _unique(addresses: Iterable[Any]) -> list[str]:
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(str(address).lower(), str(address))
    return list(seen.values())
