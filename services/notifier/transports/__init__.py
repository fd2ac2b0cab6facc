"""One small module per notification channel; each raises PermanentError or TransientError.

A transport sends one message once. It never retries (the dispatcher decides) and never puts
a webhook URL or a credential in an error message, since errors are logged and recorded.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

import httpx

from shared.errors import TransientError


def seconds_header(headers: Mapping[str, str], name: str) -> float | None:
    """Read a header holding seconds (`retry-after: 2`, `ratelimit-reset: 0.5`) or an HTTP date."""
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def unreachable(service: str, exc: httpx.HTTPError) -> TransientError:
    """A connection error or timeout, named by its kind only (its text may hold the URL)."""
    return TransientError(f"{service} unreachable: {type(exc).__name__}")
