"""Which GitHub webhook deliveries run a job, and the activity window such a run covers.

A job lists its triggers (`webhookTriggers`); a signed delivery runs it when one of them
fires (`fires`). Pure: the route verifies the signature and does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StringConstraints, ValidationInfo, field_validator

from services.api.bodies import Body
from shared.events import GitHubRelease

#: The GitHub events a job can be triggered by (X-GitHub-Event).
Event = Literal["release", "push", "pull_request"]

# Branch and tag names run to 255 bytes on GitHub; a glob of one, no longer.
Glob = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
# GitHub allows label names of up to 50 characters.
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]

# Which filter each event reads; a filter given to another event could never match.
_FILTERS: dict[str, frozenset[Event]] = {
    "branches": frozenset({"push", "pull_request"}),
    "tags": frozenset({"release"}),
    "labels": frozenset({"pull_request"}),
    "prereleases": frozenset({"release"}),
}


class WebhookTriggerBody(Body):
    """A GitHub event that runs the job, with optional filters (`fnmatch` globs)."""

    event: Event = Field(
        description=(
            "`release`: a release is published; `push`: commits are pushed to a branch; "
            "`pull_request`: a pull request is merged."
        )
    )
    branches: list[Glob] = Field(
        default=[],
        max_length=20,
        description=(
            "push: the pushed branch, by default the repository's default branch; "
            "pull_request: the branch merged into, by default any."
        ),
    )
    tags: list[Glob] = Field(
        default=[], max_length=20, description="release: its tag matches one (`v*`)."
    )
    labels: list[Label] = Field(
        default=[], max_length=20, description="pull_request: it carries one of these labels."
    )
    prereleases: StrictBool = Field(
        default=False, description="release: pre-releases run the job too."
    )

    @field_validator("branches", "tags", "labels", "prereleases")
    @classmethod
    def _read_by_event(cls, value: Any, info: ValidationInfo) -> Any:
        event = info.data.get("event")
        name = info.field_name or ""
        if value and event is not None and event not in _FILTERS[name]:
            readers = " and ".join(sorted(_FILTERS[name]))
            raise ValueError(f"{name} filter only {readers} events; {event} has none")
        return value

    def stored(self) -> dict[str, Any]:
        """The camelCase form kept on the job, every field present."""
        return self.model_dump(by_alias=True)


def fires(trigger: Mapping[str, Any], event: str, payload: Mapping[str, Any]) -> bool:
    """Whether a delivery of `event` with `payload` runs a job through `trigger`."""
    if trigger.get("event") != event:
        return False
    if event == "release":
        return _release_fires(trigger, payload)
    if event == "push":
        return _push_fires(trigger, payload)
    if event == "pull_request":
        return _merge_fires(trigger, payload)
    return False


def _release_fires(trigger: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    release = _object(payload, "release")
    if payload.get("action") != "published" or release.get("draft") is True:
        return False
    if release.get("prerelease") is True and not trigger.get("prereleases"):
        return False
    return _matches(release.get("tag_name"), trigger.get("tags") or [])


def _push_fires(trigger: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    ref = payload.get("ref")
    # A tag push or a deleted branch brings nothing new to write about.
    if not isinstance(ref, str) or not ref.startswith("refs/heads/") or payload.get("deleted"):
        return False
    branch = ref.removeprefix("refs/heads/")
    branches = trigger.get("branches") or []
    if branches:
        return _matches(branch, branches)
    return branch == _object(payload, "repository").get("default_branch")


def _merge_fires(trigger: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    pull = _object(payload, "pull_request")
    if payload.get("action") != "closed" or pull.get("merged") is not True:
        return False
    if not _matches(_object(pull, "base").get("ref"), trigger.get("branches") or []):
        return False
    wanted = set(trigger.get("labels") or [])
    if not wanted:
        return True
    labels = pull.get("labels")
    if not isinstance(labels, list):
        return False
    return bool(wanted & {label.get("name") for label in labels if isinstance(label, Mapping)})


def _matches(name: Any, globs: Sequence[str]) -> bool:
    """Whether `name` matches one of `globs` (none: any name does)."""
    if not globs:
        return True
    return isinstance(name, str) and any(fnmatchcase(name, glob) for glob in globs)


def _is_object(value: Any) -> bool:
    return isinstance(value, Mapping)


def _object(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, Mapping) else {}


def event_start(event: str, payload: Mapping[str, Any]) -> datetime | None:
    """Where the activity the event brings begins, when its payload says (else None).

    push: its earliest commit; a merged pull request: its opening. A release's activity
    began at the previous release, which the payload does not name: None here, and the
    scanner finds it (`event_release`).
    """
    if event == "push":
        commits = payload.get("commits")
        if not isinstance(commits, list):
            return None
        times = [
            _instant(commit.get("timestamp")) for commit in commits if isinstance(commit, Mapping)
        ]
        known = [time for time in times if time is not None]
        return min(known) if known else None
    if event == "pull_request":
        return _instant(_object(payload, "pull_request").get("created_at"))
    return None


def event_release(event: str, payload: Mapping[str, Any]) -> GitHubRelease | None:
    """The release a `release` delivery publishes, as `job.due` carries it (else None).

    Its notes are cut to what the event carries: they are context for the post, and GitHub
    allows notes far longer than a prompt should hold.
    """
    if event != "release":
        return None
    release = _object(payload, "release")
    tag = release.get("tag_name")
    if not isinstance(tag, str) or not tag:
        return None
    return GitHubRelease(
        tag=tag[:255],
        name=_text(release.get("name"), 255),
        body=_text(release.get("body"), 4000),
        url=_text(release.get("html_url"), 2000),
        published_at=_instant(release.get("published_at")),
        prerelease=release.get("prerelease") is True,
    )


def _text(value: Any, limit: int) -> str | None:
    """A non-empty string cut to `limit` characters, else None (GitHub sends "" or null)."""
    return value[:limit] if isinstance(value, str) and value.strip() else None


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
