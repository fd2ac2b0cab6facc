"""The platforms herald writes for, and the rules each post must keep."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    name: str
    max_characters: int | None
    has_title: bool
    markdown: bool


PLATFORMS: dict[str, Platform] = {
    platform.name: platform
    for platform in (
        Platform("x", 280, has_title=False, markdown=False),
        Platform("mastodon", 500, has_title=False, markdown=False),
        Platform("bluesky", 300, has_title=False, markdown=False),
        Platform("linkedin", 3000, has_title=False, markdown=False),
        Platform("blog", None, has_title=True, markdown=True),
        Platform("newsletter", None, has_title=True, markdown=True),
        Platform("changelog", None, has_title=True, markdown=True),
    )
}
