"""`herald posts` on the real database, as an operator reviews posts from the shell."""

from __future__ import annotations

import asyncio
import getpass
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner, Result

from services.api import post_actions
from services.api.views import post_view
from services.cli import app
from shared.db.engine import create_engine, session_factory
from shared.db.notify import POSTS_CHANNEL, local_wakeup, plain_dsn
from shared.db.schema import Content, PostChange, Project, User
from shared.events import PostResult
from shared.settings import get_settings
from tests.support import factories
from tests.support.posts import generated_posts

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]
# Who the shell runs as, whatever account runs the tests: its actions are recorded as this.
OPERATOR = "cli:alice"


@pytest.fixture
def cli(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def run(work: Callable[[Sessions], Awaitable[T]]) -> T:
    async def go() -> T:
        engine = create_engine(get_settings().database_url)
        try:
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(go())


@dataclass(frozen=True)
class Owner:
    user_id: str
    email: str
    # The post ids by platform, of each of the owner's two projects.
    alpha: dict[str, str]
    beta: dict[str, str]
    beta_project: str


def owner_of_two_projects() -> Owner:
    """A user with posts on two projects, `alpha` then `beta`; `beta`'s mastodon post failed
    to generate. Someone else has posts too."""

    async def work(sessions: Sessions) -> Owner:
        user_id, _, alpha = await generated_posts(sessions)
        _, _, beta = await generated_posts(
            sessions,
            user_id=user_id,
            results=[
                PostResult(platform="x", status="GENERATED", body="beta ships\nmore below"),
                PostResult(platform="mastodon", status="FAILED", error="model refused"),
            ],
        )
        await generated_posts(sessions)
        async with sessions() as session:
            user = await session.get(User, user_id)
            beta_project = await session.scalar(
                select(Content.project_id).where(Content.id == beta["x"])
            )
        assert user is not None and beta_project is not None
        async with sessions() as session, session.begin():
            await session.execute(
                update(Project).where(Project.user_id == user_id).values(name="alpha")
            )
            await session.execute(
                update(Project).where(Project.id == beta_project).values(name="beta")
            )
        return Owner(user_id, user.email, alpha, beta, beta_project)

    return run(work)


def one_post(platform: str = "x") -> tuple[str, str]:
    """A fresh user's post on `platform`; (its owner's id, the post's id)."""

    async def work(sessions: Sessions) -> tuple[str, str]:
        user_id, _, ids = await generated_posts(sessions)
        return user_id, ids[platform]

    return run(work)


def stored(post_id: str) -> Content:
    async def work(sessions: Sessions) -> Content | None:
        async with sessions() as session:
            return await session.get(Content, post_id)

    post = run(work)
    assert post is not None
    return post


Step = tuple[str, str | None, str | None, str]


def history(post_id: str) -> list[Step]:
    async def work(sessions: Sessions) -> list[Step]:
        async with sessions() as session:
            changes = await session.scalars(
                select(PostChange)
                .where(PostChange.content_id == post_id)
                .order_by(PostChange.at, PostChange.id)
            )
            return [
                (change.action, change.from_state, change.to_state, change.actor)
                for change in changes
            ]

    return run(work)


def set_state(post_id: str, state: str) -> None:
    async def work(sessions: Sessions) -> None:
        async with sessions() as session, session.begin():
            await session.execute(update(Content).where(Content.id == post_id).values(state=state))

    run(work)


@contextmanager
def wakeups(channel: str) -> Iterator[threading.Event]:
    """An event set when a commit notifies `channel` while the block runs: PostgreSQL's
    NOTIFY, heard on a connection of its own; SQLite's in-process wake-up."""
    url = get_settings().database_url
    if not url.startswith("postgresql"):
        local = local_wakeup(channel)
        heard = threading.Event()
        yield heard
        if local.is_set():
            heard.set()
        return
    heard, listening, done = threading.Event(), threading.Event(), threading.Event()

    async def listen() -> None:
        connection = await asyncpg.connect(plain_dsn(url))
        try:
            await connection.add_listener(channel, lambda *_: heard.set())
            listening.set()
            while not done.is_set():
                await asyncio.sleep(0.05)
        finally:
            await connection.close()

    listener = threading.Thread(target=asyncio.run, args=(listen(),))
    listener.start()
    assert listening.wait(10)
    try:
        yield heard
        heard.wait(5)
    finally:
        done.set()
        listener.join(10)


def posts(cli: CliRunner, *args: str, stdin: str | None = None) -> Result:
    return cli.invoke(app, ["posts", *args], input=stdin)


def rows(result: Result) -> list[list[str]]:
    assert result.exit_code == 0, result.output
    return [line.split("\t") for line in result.stdout.splitlines()]


def test_posts_are_listed_across_projects_newest_first_and_filtered(cli: CliRunner) -> None:
    owner = owner_of_two_projects()

    listed = rows(posts(cli, "list", "--email", owner.email.upper()))

    # The beta run came last; its failed generation is no post to review.
    assert [row[0] for row in listed[:1]] == [owner.beta["x"]]
    assert {row[0] for row in listed} == {*owner.alpha.values(), owner.beta["x"]}
    beta_row = listed[0]
    assert beta_row == [owner.beta["x"], "DRAFT", "x", "beta", "-", "beta ships"]
    assert {row[3] for row in listed[1:]} == {"alpha"}
    # Every user's posts without --email: the other user's four are there too.
    assert len(rows(posts(cli, "list"))) == 9

    only_x = rows(posts(cli, "list", "--email", owner.email, "--platform", "x"))
    assert {row[0] for row in only_x} == {owner.alpha["x"], owner.beta["x"]}
    only_beta = rows(posts(cli, "list", "--project", owner.beta_project))
    assert [row[0] for row in only_beta] == [owner.beta["x"]]
    assert posts(cli, "approve", owner.alpha["blog"]).exit_code == 0
    approved = rows(posts(cli, "list", "--email", owner.email, "--state", "APPROVED"))
    assert [row[0] for row in approved] == [owner.alpha["blog"]]
    assert len(rows(posts(cli, "list", "--email", owner.email, "--limit", "2"))) == 2

    unknown = posts(cli, "list", "--platform", "myspace")
    assert unknown.exit_code == 2
    assert "error: --platform: must be one of x," in unknown.stderr


def test_the_json_list_is_the_apis_post_views(cli: CliRunner) -> None:
    owner = owner_of_two_projects()

    printed = posts(cli, "list", "--email", owner.email, "--json")

    assert printed.exit_code == 0, printed.output

    async def api_views(sessions: Sessions) -> list[dict[str, Any]]:
        async with sessions() as session:
            found = await session.scalars(
                post_actions.reviewable_posts()
                .where(Content.user_id == owner.user_id)
                .order_by(Content.created_at.desc(), Content.id.desc())
            )
            return [post_view(post) for post in found]

    assert json.loads(printed.stdout) == run(api_views)


def test_show_prints_the_post_with_its_history(cli: CliRunner) -> None:
    user_id, post_id = one_post("mastodon")
    assert posts(cli, "approve", post_id).exit_code == 0

    shown = posts(cli, "show", post_id)

    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert f"id         {post_id}" in lines
    assert "state      APPROVED" in lines
    assert "edited     -" in lines
    assert any(
        line.startswith("  ") and line.endswith(f"\tapprove\tDRAFT → APPROVED\t{OPERATOR}")
        for line in lines
    ), lines
    assert lines[-1] == "herald 2.0 is out, toot"

    as_json = json.loads(posts(cli, "show", post_id, "--json").stdout)

    async def api_view(sessions: Sessions) -> dict[str, Any]:
        async with sessions() as session:
            post = await post_actions.post_of(session, user_id, post_id)
            return await post_actions.with_history(session, post)

    assert as_json == run(api_view)
    # The history tells the shell's action from the owner's own.
    assert [(step["action"], step["actor"]) for step in as_json["history"]] == [
        ("approve", OPERATOR)
    ]


def test_an_over_length_edit_is_refused_naming_the_limit(cli: CliRunner) -> None:
    _, post_id = one_post("x")

    # X weighs CJK twice: 150 of them are 300, over 280.
    refused = posts(cli, "edit", post_id, "--body-stdin", stdin="漢" * 150 + "\n")

    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: --body-stdin: ")
    assert "over X's 280" in refused.stderr
    post = stored(post_id)
    assert (post.body, post.edited_by) == ("herald 2.0 is out", None)
    assert history(post_id) == []


def test_an_edit_records_who_edited_and_keeps_the_title_unless_given(cli: CliRunner) -> None:
    _, post_id = one_post("blog")

    edited = posts(cli, "edit", post_id, "--body-stdin", stdin="# herald 2.0\n\nOut now.\n")

    assert edited.exit_code == 0, edited.output
    assert edited.stdout == f"{post_id}: DRAFT, edited (22 characters)\n"
    post = stored(post_id)
    assert (post.body, post.title, post.edited_by) == (
        "# herald 2.0\n\nOut now.",
        "herald 2.0",
        OPERATOR,
    )
    assert post.edited_at is not None
    assert history(post_id) == [("edit", "DRAFT", "DRAFT", OPERATOR)]
    shown = json.loads(posts(cli, "show", post_id, "--json").stdout)
    assert (shown["editedBy"], shown["history"][0]["actor"]) == (OPERATOR, OPERATOR)

    retitled = posts(
        cli, "edit", post_id, "--title", "herald 2.0 is out", "--body-stdin", stdin="Out."
    )
    assert retitled.exit_code == 0, retitled.output
    assert stored(post_id).title == "herald 2.0 is out"
    # A blog post needs its title: a blank one is refused by the post's rules.
    untitled = posts(cli, "edit", post_id, "--title", " ", "--body-stdin", stdin="Out.")
    assert untitled.exit_code == 1
    assert untitled.stderr == "error: --title: a blog post needs a title\n"
    # No text at all is a mistake on the command line.
    empty = posts(cli, "edit", post_id, "--body-stdin", stdin="  \n")
    assert empty.exit_code == 2
    assert "error: --body-stdin: stdin held no text" in empty.stderr
    assert stored(post_id).body == "Out."


def test_a_post_is_approved_scheduled_unscheduled_discarded_and_restored(
    cli: CliRunner,
) -> None:
    _, post_id = one_post("mastodon")

    approved = posts(cli, "approve", post_id)
    assert (approved.exit_code, approved.stdout) == (0, f"{post_id}: APPROVED\n")
    assert stored(post_id).state == "APPROVED"

    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    local = at.astimezone(timezone(timedelta(hours=2))).isoformat()
    scheduled = posts(cli, "schedule", post_id, "--at", local)
    assert scheduled.exit_code == 0, scheduled.output
    assert scheduled.stdout.startswith(f"{post_id}: SCHEDULED, publish at ")
    post = stored(post_id)
    assert post.state == "SCHEDULED"
    assert post.publish_at is not None
    assert post.publish_at.replace(tzinfo=UTC) == at

    unscheduled = posts(cli, "unschedule", post_id)
    assert unscheduled.stdout == f"{post_id}: APPROVED\n"
    post = stored(post_id)
    assert (post.state, post.publish_at) == ("APPROVED", None)

    discarded = posts(cli, "discard", post_id)
    assert discarded.stdout == f"{post_id}: DISCARDED\n"
    assert stored(post_id).state == "DISCARDED"

    restored = posts(cli, "restore", post_id)
    assert restored.stdout == f"{post_id}: DRAFT\n"
    assert stored(post_id).state == "DRAFT"

    assert history(post_id) == [
        ("approve", "DRAFT", "APPROVED", OPERATOR),
        ("schedule", "APPROVED", "SCHEDULED", OPERATOR),
        ("unschedule", "SCHEDULED", "APPROVED", OPERATOR),
        ("discard", "APPROVED", "DISCARDED", OPERATOR),
        ("restore", "DISCARDED", "DRAFT", OPERATOR),
    ]


def test_scheduling_without_a_time_is_as_soon_as_possible(cli: CliRunner) -> None:
    _, post_id = one_post("bluesky")
    before = datetime.now(UTC).replace(microsecond=0)

    with wakeups(POSTS_CHANNEL) as woken:
        scheduled = posts(cli, "schedule", post_id)

    assert scheduled.exit_code == 0, scheduled.output
    # The scheduler's due-posts loop is told at once, as when the API schedules.
    assert woken.is_set()
    post = stored(post_id)
    assert post.state == "SCHEDULED"
    assert post.publish_at is not None and post.publish_at.replace(tzinfo=UTC) >= before


def test_a_time_without_offset_or_past_a_year_is_refused(cli: CliRunner) -> None:
    _, post_id = one_post("x")

    naive = posts(cli, "schedule", post_id, "--at", "2031-01-01T10:00")
    assert naive.exit_code == 2
    assert naive.stderr.startswith("error: --at: ")
    assert "timezone" in naive.stderr

    far = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    too_far = posts(cli, "schedule", post_id, "--at", far)
    assert too_far.exit_code == 1
    assert too_far.stderr == "error: --at: must be within a year from now\n"
    assert (stored(post_id).state, history(post_id)) == ("DRAFT", [])


def test_a_move_the_state_forbids_is_refused_with_the_state(cli: CliRunner) -> None:
    _, post_id = one_post("x")

    restore_draft = posts(cli, "restore", post_id)
    assert restore_draft.exit_code == 1
    assert restore_draft.stderr == "error: cannot restore a DRAFT post (only DISCARDED)\n"

    set_state(post_id, "PUBLISHED")
    approve_published = posts(cli, "approve", post_id)
    assert approve_published.exit_code == 1
    assert approve_published.stderr == "error: cannot approve a PUBLISHED post (only DRAFT)\n"
    assert (stored(post_id).state, history(post_id)) == ("PUBLISHED", [])


def test_a_missing_post_or_someone_elses_is_not_found(cli: CliRunner) -> None:
    _, post_id = one_post("x")
    other = run(factories.user_with_token)[0]

    async def email_of(sessions: Sessions) -> str:
        async with sessions() as session:
            user = await session.get(User, other)
            assert user is not None
            return user.email

    for args in (
        ["approve", "cnt_missing"],
        ["show", "cnt_missing"],
        ["schedule", "cnt_missing"],
        ["discard", post_id, "--email", run(email_of)],
        ["show", post_id, "--email", "nobody@example.com"],
    ):
        refused = posts(cli, *args)
        assert refused.exit_code == 1, args
        assert refused.stderr == "error: post not found\n", args
    assert (stored(post_id).state, history(post_id)) == ("DRAFT", [])


def test_a_long_login_is_cut_to_fit_and_no_login_is_plain_cli(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, post_id = one_post("mastodon")
    monkeypatch.setattr(getpass, "getuser", lambda: "o" * 60)
    assert posts(cli, "approve", post_id).exit_code == 0

    def no_user() -> str:
        raise OSError("no username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_user)
    edited = posts(cli, "edit", post_id, "--body-stdin", stdin="Edited toot")
    assert edited.exit_code == 0, edited.output

    assert [step[3] for step in history(post_id)] == [("cli:" + "o" * 60)[:40], "cli"]
    assert stored(post_id).edited_by == "cli"


def test_the_api_still_records_the_owner_beside_the_shells_steps(cli: CliRunner) -> None:
    user_id, post_id = one_post("mastodon")
    assert posts(cli, "approve", post_id).exit_code == 0

    async def by_the_owner(sessions: Sessions) -> None:
        async with sessions() as session:
            await post_actions.edit(session, user_id, post_id, body="Edited toot", title=None)

    run(by_the_owner)

    assert [(step[0], step[3]) for step in history(post_id)] == [
        ("approve", OPERATOR),
        ("edit", user_id),
    ]
    assert stored(post_id).edited_by == user_id
