"""`herald posts`: review generated posts from the shell, as `/api/posts` does.

Works on DATABASE_URL directly, like `herald projects`, through the API's own actions
(services.api.post_actions) and request bodies: the two doors cannot disagree. A post id
names exactly one user's post, and whoever holds DATABASE_URL is trusted as that owner is:
a command acts for the post's owner. Its history records the operating-system user who ran
it (`cli:alice`), so a shell's action is told from the owner's own through the API.
`--email` asserts the owner; a post of someone else is then not found, as the API says of it.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, Protocol

import typer
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import post_actions
from services.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, listed
from services.api.post_actions import POST_NOT_FOUND, PostRefusedError
from services.api.post_review import PostState
from services.api.routes.posts import EditPost, SchedulePost
from services.api.views import post_view
from services.cli_database import in_session
from shared.db.schema import Content, Project, User
from shared.platforms import PLATFORMS

posts_app = typer.Typer(
    help="Review generated posts: list, edit, approve, schedule, discard.",
    no_args_is_help=True,
    add_completion=False,
)

# The option of `edit` and of `schedule` that sets each API field, to name it in a refusal;
# a field no option sets (the text, when scheduling) is named as the API names it.
_EDIT_OPTIONS = {"body": "--body-stdin", "title": "--title"}
_SCHEDULE_OPTIONS = {"publishAt": "--at"}
# A body is at most 100,000 characters (EditPost refuses longer): reading a little more is
# enough to refuse a longer one without holding a whole mistaken file in memory.
_MOST_READ = 100_001
_EXCERPT = 60

PostIdArg = Annotated[str, typer.Argument(metavar="POST_ID", help="The post's id.")]
EmailOption = Annotated[
    str | None,
    typer.Option("--email", help="Act only if the post is this user's (else: not found)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print it as the API shows it.")]
# The columns an actor is kept in (PostChange.actor, Content.edited_by) hold 40 characters:
# a longer login would fail the write, so it is cut to fit.
_ACTOR_LENGTH = 40


class Action(Protocol):
    def __call__(
        self, session: AsyncSession, user_id: str, post_id: str, *, actor: str | None = None
    ) -> Awaitable[Content]: ...


@posts_app.command("list")
def list_posts(
    email: Annotated[str | None, typer.Option("--email", help="Only this user's posts.")] = None,
    state: Annotated[
        PostState | None, typer.Option("--state", help="Only posts in this state.")
    ] = None,
    project_id: Annotated[
        str | None, typer.Option("--project", metavar="PROJECT_ID", help="Only this project's.")
    ] = None,
    platform: Annotated[
        str | None, typer.Option("--platform", metavar="NAME", help="Only this platform's.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="How many, newest first.")
    ] = DEFAULT_LIMIT,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print them as the API shows them.")
    ] = False,
) -> None:
    """Posts across projects, newest first: id, state, platform, project, publish time or
    published URL, the body's first line."""
    if platform is not None and platform not in PLATFORMS:
        _usage("--platform", f"must be one of {', '.join(PLATFORMS)}")

    async def read(session: AsyncSession) -> tuple[list[dict[str, Any]], dict[str, str]]:
        statement = post_actions.reviewable_posts()
        if email is not None:
            statement = statement.join(User, User.id == Content.user_id).where(
                User.email == email.strip().lower()
            )
        if state is not None:
            statement = statement.where(Content.state == state.value)
        if project_id is not None:
            statement = statement.where(Content.project_id == project_id)
        if platform is not None:
            statement = statement.where(Content.platform == platform)
        page = await listed(
            session, statement, model=Content, view=post_view, limit=limit, cursor=None
        )
        posts: list[dict[str, Any]] = page["data"]
        projects = {post["projectId"] for post in posts}
        names = (
            await session.execute(select(Project.id, Project.name).where(Project.id.in_(projects)))
        ).all()
        return posts, {row.id: row.name for row in names}

    posts, names = in_session(read)
    if as_json:
        typer.echo(json.dumps(posts, indent=2, ensure_ascii=False))
        return
    for post in posts:
        typer.echo(
            f"{post['id']}\t{post['publishStatus']}\t{post['platform']}\t"
            f"{names.get(post['projectId'], '-')}\t{_publication(post)}\t{_excerpt(post['body'])}"
        )


@posts_app.command("show")
def show_post(post_id: PostIdArg, email: EmailOption = None, as_json: JsonOption = False) -> None:
    """Show a post: its state, publication, last edit, history and text."""

    async def read(session: AsyncSession) -> dict[str, Any]:
        post = await post_actions.post_of(session, await _owner(session, post_id, email), post_id)
        return await post_actions.with_history(session, post)

    post = _applied(read)
    if as_json:
        typer.echo(json.dumps(post, indent=2, ensure_ascii=False))
        return
    edited = f"{post['editedAt']} by {post['editedBy']}" if post["editedAt"] else "-"
    for label, value in (
        ("id", post["id"]),
        ("project", post["projectId"]),
        ("platform", post["platform"]),
        ("state", post["publishStatus"]),
        ("title", post["title"]),
        ("publish at", post["publishAt"]),
        ("published", post["publishedAt"]),
        ("url", post["publishedUrl"]),
        ("error", post["publishError"]),
        ("edited", edited),
        ("created", post["createdAt"]),
    ):
        typer.echo(f"{label:<11}{value or '-'}")
    typer.echo("history")
    for step in post["history"]:
        detail = f" ({step['detail']})" if step["detail"] else ""
        typer.echo(
            f"  {step['at']}\t{step['action']}\t{step['from']} → {step['to']}\t"
            f"{step['actor']}{detail}"
        )
    if not post["history"]:
        typer.echo("  - (as generated)")
    typer.echo("")
    typer.echo(post["body"] or "")


@posts_app.command("edit")
def edit_post(
    post_id: PostIdArg,
    body_stdin: Annotated[
        bool,
        typer.Option(
            "--body-stdin",
            help="Read the new text from stdin, whole (`herald posts edit ID --body-stdin < "
            "post.txt`).",
        ),
    ] = False,
    title: Annotated[
        str | None,
        typer.Option(
            "--title",
            help="The new title (titled platforms); absent: the stored one is kept, whereas "
            "the API's PATCH refuses a titled platform's post sent without a title.",
        ),
    ] = None,
    email: EmailOption = None,
) -> None:
    """Change a post's text; its platform's length rules are checked again."""
    if not body_stdin:
        _usage("--body-stdin", "give the new text on stdin with --body-stdin")
    body = sys.stdin.read(_MOST_READ)
    if not body.strip():
        _usage("--body-stdin", "stdin held no text: pipe the post's new text in")
    try:
        edit = EditPost.model_validate({"body": body, "title": title})
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        field = str(error["loc"][0])
        _usage(_EDIT_OPTIONS.get(field, field), str(error["msg"]))

    async def write(session: AsyncSession) -> dict[str, Any]:
        owner = await _owner(session, post_id, email)
        kept = edit.title
        if title is None:
            kept = (await post_actions.post_of(session, owner, post_id)).title
        post = await post_actions.edit(
            session, owner, post_id, body=edit.body, title=kept, actor=_actor()
        )
        return post_view(post)

    post = _applied(write, options=_EDIT_OPTIONS)
    typer.echo(f"{post['id']}: {post['publishStatus']}, edited ({post['characters']} characters)")


@posts_app.command("approve")
def approve_post(post_id: PostIdArg, email: EmailOption = None) -> None:
    """Approve a draft: it waits to be scheduled."""
    _apply(post_actions.approve, post_id, email)


@posts_app.command("schedule")
def schedule_post(
    post_id: PostIdArg,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            help="When to publish, ISO 8601 with its offset (2030-05-01T09:00+02:00); "
            "absent or past: as soon as possible.",
        ),
    ] = None,
    email: EmailOption = None,
) -> None:
    """Publish a post at a time, or as soon as possible; scheduling a draft approves it."""
    try:
        publish_at = SchedulePost.model_validate({"publishAt": at}).publish_at
    except ValidationError as exc:
        _usage("--at", str(exc.errors(include_input=False, include_url=False)[0]["msg"]))

    async def write(session: AsyncSession) -> dict[str, Any]:
        owner = await _owner(session, post_id, email)
        post = await post_actions.schedule(
            session, owner, post_id, publish_at=publish_at, actor=_actor()
        )
        return post_view(post)

    post = _applied(write, options=_SCHEDULE_OPTIONS)
    typer.echo(f"{post['id']}: {post['publishStatus']}, publish at {post['publishAt']}")


@posts_app.command("unschedule")
def unschedule_post(post_id: PostIdArg, email: EmailOption = None) -> None:
    """Take a scheduled post back: it is approved again, with no time."""
    _apply(post_actions.unschedule, post_id, email)


@posts_app.command("discard")
def discard_post(post_id: PostIdArg, email: EmailOption = None) -> None:
    """Discard a post that is not published."""
    _apply(post_actions.discard, post_id, email)


@posts_app.command("restore")
def restore_post(post_id: PostIdArg, email: EmailOption = None) -> None:
    """Bring a discarded post back as a draft."""
    _apply(post_actions.restore, post_id, email)


def _apply(action: Action, post_id: str, email: str | None) -> None:
    async def write(session: AsyncSession) -> dict[str, Any]:
        post = await action(session, await _owner(session, post_id, email), post_id, actor=_actor())
        return post_view(post)

    post = _applied(write)
    typer.echo(f"{post['id']}: {post['publishStatus']}")


async def _owner(session: AsyncSession, post_id: str, email: str | None) -> str:
    """The id of the user whose post it is (and whose email is `email`, when given)."""
    statement = select(Content.user_id).where(Content.id == post_id)
    if email is not None:
        statement = statement.join(User, User.id == Content.user_id).where(
            User.email == email.strip().lower()
        )
    owner = await session.scalar(statement)
    if owner is None:
        raise PostRefusedError(404, POST_NOT_FOUND)
    return owner


def _actor() -> str:
    """Who a command is recorded as: `cli:` and the operating-system user running it, so a
    post's history tells an operator's shell from its owner; plain `cli` when the system
    names no user (a container running as a uid with no passwd entry)."""
    try:
        login = getpass.getuser()
    except (OSError, KeyError, ImportError):  # KeyError before 3.13, OSError since
        return "cli"
    return f"cli:{login}"[:_ACTOR_LENGTH]


def _applied(
    work: Callable[[AsyncSession], Awaitable[dict[str, Any]]],
    *,
    options: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What `work` returns; its refusal on stderr, naming the option at fault, exit 1."""
    try:
        return in_session(work)
    except PostRefusedError as refused:
        if refused.field is None:
            typer.echo(f"error: {refused.message}", err=True)
        else:
            option = (options or {}).get(refused.field, refused.field)
            typer.echo(f"error: {option}: {refused.message}", err=True)
        raise typer.Exit(1) from None


def _publication(post: dict[str, Any]) -> str:
    return str(post["publishedUrl"] or post["publishAt"] or "-")


def _excerpt(body: str | None) -> str:
    """The body's first line, cut to fit a row."""
    lines = (body or "").strip().splitlines()
    first = lines[0].strip() if lines else ""
    return first if len(first) <= _EXCERPT else first[: _EXCERPT - 1] + "…"


def _usage(option: str, message: str) -> NoReturn:
    """Exit 2 (a usage error) naming the option at fault, as `herald projects` does."""
    typer.echo(f"error: {option}: {message}", err=True)
    raise typer.Exit(2)
