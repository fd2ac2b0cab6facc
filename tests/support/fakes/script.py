"""Which scripted answer a local model server gives a call: its platform's, else the next."""

from __future__ import annotations

import re
from typing import Any, TypeVar

Step = TypeVar("Step")

PLATFORM_LINE = re.compile(r"^Platform: (\S+)$", re.M)


def next_step(
    script: list[Step], scripts: dict[str, list[Step]], body: dict[str, Any] | None
) -> Step | None:
    """Pop the next answer for the platform the prompt names, else the shared script's next."""
    messages = (body or {}).get("messages") or []
    user = next((m.get("content", "") for m in messages if m.get("role") == "user"), "")
    found = PLATFORM_LINE.search(user) if isinstance(user, str) else None
    mine = scripts.get(found.group(1)) if found else None
    if mine:
        return mine.pop(0)
    return script.pop(0) if script else None
