"""One small module per notification channel; each raises PermanentError or TransientError.

A transport sends one message once. It never retries (the dispatcher decides) and never puts
a webhook URL or a credential in an error message, since errors are logged and recorded.
"""

from __future__ import annotations

import httpx

from shared.errors import TransientError


def unreachable(service: str, exc: httpx.HTTPError) -> TransientError:
    """A connection error or timeout, named by its kind only (its text may hold the URL)."""
    return TransientError(f"{service} unreachable: {type(exc).__name__}")
