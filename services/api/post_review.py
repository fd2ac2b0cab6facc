"""A post's lifecycle: what each review action may move it from, and to.

    DRAFT → APPROVED → SCHEDULED → PUBLISHED (the publisher), or FAILED with the network's
    reason (scheduled again, or discarded); any unpublished post → DISCARDED → DRAFT.

A draft may be scheduled directly: scheduling it is the owner's approval. Editing keeps the
state (an edited scheduled post goes out as edited). PUBLISHED is final: the network has the
post, and herald can no longer take it back. Pure: no I/O; services.api.post_actions applies
the move with a compare-and-set on the state it read, so a publisher taking the post meanwhile
wins cleanly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PostState(StrEnum):
    DRAFT = "DRAFT"
    APPROVED = "APPROVED"
    SCHEDULED = "SCHEDULED"
    PUBLISHED = "PUBLISHED"
    DISCARDED = "DISCARDED"
    FAILED = "FAILED"


class Action(StrEnum):
    EDIT = "edit"
    APPROVE = "approve"
    SCHEDULE = "schedule"
    UNSCHEDULE = "unschedule"
    DISCARD = "discard"
    RESTORE = "restore"


@dataclass(frozen=True)
class Move:
    allowed_from: frozenset[PostState]
    # None: the state stays as it is (an edit).
    to: PostState | None


_UNPUBLISHED = frozenset(
    {PostState.DRAFT, PostState.APPROVED, PostState.SCHEDULED, PostState.FAILED}
)

MOVES: dict[Action, Move] = {
    Action.EDIT: Move(_UNPUBLISHED, None),
    Action.APPROVE: Move(frozenset({PostState.DRAFT}), PostState.APPROVED),
    Action.SCHEDULE: Move(_UNPUBLISHED, PostState.SCHEDULED),
    Action.UNSCHEDULE: Move(frozenset({PostState.SCHEDULED}), PostState.APPROVED),
    Action.DISCARD: Move(_UNPUBLISHED, PostState.DISCARDED),
    Action.RESTORE: Move(frozenset({PostState.DISCARDED}), PostState.DRAFT),
}


class RefusedMove(Exception):  # noqa: N818 - a refusal, reported as 409, not a fault
    def __init__(self, action: Action, state: PostState | None) -> None:
        self.action = action
        self.state = state
        if state is None:
            message = f"cannot {action.value} a post whose generation failed"
        else:
            allowed = ", ".join(sorted(MOVES[action].allowed_from))
            message = f"cannot {action.value} a {state.value} post (only {allowed})"
        super().__init__(message)


def next_state(action: Action, state: str | None) -> PostState:
    """The state `action` moves a post in `state` to, or raise RefusedMove."""
    current = PostState(state) if state is not None else None
    move = MOVES[action]
    if current is None or current not in move.allowed_from:
        raise RefusedMove(action, current)
    return move.to or current


def initial_state(platform: str, publish_modes: dict[str, str]) -> PostState:
    """A new post's state: scheduled at once where its project auto-publishes the platform."""
    return PostState.SCHEDULED if publish_modes.get(platform) == "auto" else PostState.DRAFT
