"""The page an alert recipient's email links to: agree to a user's alerts, or refuse them.

Public (the recipient has no account); the link's token is the credential. Opening the link
only shows the question: mail scanners open links, and a person must answer.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from services.api import recipients
from services.api.console import credentials
from services.api.console.forms import Form
from services.api.console.rendering import plain, refused_form
from services.api.deps import app_state
from shared.db.schema import User

router = APIRouter()

INVALID = "This link is not valid: it may have been replaced by a newer email."


@router.get("/recipients/confirm")
async def question(request: Request) -> Response:
    token = request.query_params.get("token") or ""
    async with app_state(request).sessions() as session:
        found = await recipients.question_of(session, token) if token else None
    if found is None:
        return plain(request, "error.html", 404, title="Link not valid", detail=INVALID)
    row, user = found
    return plain(request, "recipient.html", email=row.email, requested_by=_who(user), token=token)


@router.post("/recipients/confirm")
async def answer(request: Request) -> Response:
    if not credentials.same_origin(request):
        return refused_form(request)
    form = await Form.read(request)
    token, choice = form.get("token") or "", form.get("answer")
    if choice not in ("yes", "no"):
        return plain(request, "error.html", 422, title="Choose an answer", detail=INVALID)
    async with app_state(request).sessions() as session, session.begin():
        found = await recipients.question_of(session, token) if token else None
        if found is None:
            return plain(request, "error.html", 404, title="Link not valid", detail=INVALID)
        row, user = found
        await recipients.answer(session, row, confirm=choice == "yes")
    return plain(
        request, "recipient.html", email=row.email, requested_by=_who(user), answered=choice
    )


def _who(user: User) -> str:
    return f"{user.name} ({user.email})" if user.name else user.email
