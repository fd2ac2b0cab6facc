"""GitHub error responses: rate limits and server errors are transient, the rest permanent."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from services.scanner.github import RateLimitedError, raise_for_github
from shared.errors import PermanentError, TransientError

DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
PRIMARY_LIMIT = {
    "message": "API rate limit exceeded for user ID 1.",
    "documentation_url": DOCS,
}
SECONDARY_LIMIT = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before "
    "you try again. If you reach out to GitHub Support for help, please include the request "
    "ID DBD8:3C2D:5B1A7C:BEA3F2:668D7DDA.",
    "documentation_url": DOCS,
}
URL = "https://api.github.com/repos/octo/herald/commits"


def response(status: int, body: Any = None, **headers: str) -> httpx.Response:
    request = httpx.Request("GET", URL)
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    if body is None:
        return httpx.Response(status, headers=named, request=request)
    return httpx.Response(status, json=body, headers=named, request=request)


@pytest.mark.parametrize("status", [200, 201, 204, 304])
def test_a_success_or_redirect_raises_nothing(status: int) -> None:
    assert raise_for_github(response(status, [] if status == 200 else None)) is None


def test_an_exhausted_primary_rate_limit_retries_after_the_reset() -> None:
    reset = int(time.time()) + 120
    limited = response(
        403,
        PRIMARY_LIMIT,
        x_ratelimit_limit="5000",
        x_ratelimit_remaining="0",
        x_ratelimit_used="5000",
        x_ratelimit_reset=str(reset),
    )

    with pytest.raises(TransientError, match="rate limit exceeded") as caught:
        raise_for_github(limited)

    assert caught.value.retry_after is not None
    assert 115 <= caught.value.retry_after <= 121


def test_a_reset_already_past_retries_after_one_second() -> None:
    limited = response(
        403, PRIMARY_LIMIT, x_ratelimit_remaining="0", x_ratelimit_reset=str(int(time.time()) - 60)
    )

    with pytest.raises(TransientError) as caught:
        raise_for_github(limited)

    assert caught.value.retry_after == 1.0


def test_an_exhausted_limit_without_a_reset_header_retries_after_a_minute() -> None:
    with pytest.raises(TransientError) as caught:
        raise_for_github(response(403, PRIMARY_LIMIT, x_ratelimit_remaining="0"))

    assert caught.value.retry_after == 60.0


def test_a_secondary_rate_limit_retries_after_its_retry_after_header() -> None:
    limited = response(403, SECONDARY_LIMIT, retry_after="30", x_ratelimit_remaining="4990")

    with pytest.raises(TransientError, match="secondary rate limit") as caught:
        raise_for_github(limited)

    assert caught.value.retry_after == 30


def test_a_rate_limit_message_alone_is_transient_with_a_default_wait() -> None:
    with pytest.raises(TransientError) as caught:
        raise_for_github(response(403, SECONDARY_LIMIT))

    assert caught.value.retry_after == 60.0


def test_too_many_requests_is_transient() -> None:
    with pytest.raises(TransientError) as caught:
        raise_for_github(response(429, {"message": "Too Many Requests"}))

    assert caught.value.retry_after == 60.0


def test_too_many_requests_honours_its_retry_after() -> None:
    with pytest.raises(TransientError) as caught:
        raise_for_github(response(429, {"message": "Too Many Requests"}, retry_after="7"))

    assert caught.value.retry_after == 7


def test_a_forbidden_that_is_not_a_rate_limit_is_permanent() -> None:
    forbidden = response(
        403,
        {"message": "Resource not accessible by integration", "documentation_url": DOCS},
        x_ratelimit_remaining="4999",
    )

    with pytest.raises(PermanentError, match="GitHub 403: Resource not accessible"):
        raise_for_github(forbidden)


@pytest.mark.parametrize(
    ("status", "message"),
    [(401, "Bad credentials"), (404, "Not Found"), (422, "Validation Failed")],
)
def test_client_errors_are_permanent_and_carry_githubs_message(status: int, message: str) -> None:
    failed = response(status, {"message": message, "documentation_url": DOCS})

    with pytest.raises(PermanentError, match=f"GitHub {status}: {message}") as caught:
        raise_for_github(failed)

    assert not isinstance(caught.value, TransientError)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(status: int) -> None:
    with pytest.raises(TransientError, match=f"GitHub {status}") as caught:
        raise_for_github(response(status, {"message": "Server Error"}))

    assert caught.value.retry_after is None


def test_a_server_error_with_an_html_body_is_transient_and_quotes_none_of_it() -> None:
    page = httpx.Response(
        502,
        text="<html><body>Bad gateway INTERNAL-ONLY-SECRET-BODY-42</body></html>",
        request=httpx.Request("GET", URL),
    )

    with pytest.raises(TransientError, match=r"^GitHub 502: Bad Gateway$"):
        raise_for_github(page)


def test_a_server_error_with_an_empty_body_is_transient() -> None:
    with pytest.raises(TransientError, match=r"^GitHub 500: Internal Server Error$"):
        raise_for_github(response(500))


@pytest.mark.parametrize(
    "body",
    [
        "INTERNAL-ONLY-SECRET-BODY-42",
        '["INTERNAL-ONLY-SECRET-BODY-42"]',
        '{"error": "INTERNAL-ONLY-SECRET-BODY-42"}',
        '{"message": 42, "detail": "INTERNAL-ONLY-SECRET-BODY-42"}',
    ],
)
def test_an_error_body_that_is_not_githubs_json_message_is_never_quoted(body: str) -> None:
    answer = httpx.Response(404, text=body, request=httpx.Request("GET", URL))

    with pytest.raises(PermanentError) as caught:
        raise_for_github(answer)

    assert caught.value.message == "GitHub 404: Not Found"


def test_githubs_message_is_quoted_short_and_printable() -> None:
    message = "Not\x1b[31m Found\r\nSet-Cookie: x\u0000" + "y" * 5_000
    answer = response(404, {"message": message, "documentation_url": DOCS})

    with pytest.raises(PermanentError) as caught:
        raise_for_github(answer)

    quoted = caught.value.message.removeprefix("GitHub 404: ")
    assert quoted.startswith("Not [31m Found Set-Cookie: x yyy")
    assert len(quoted) == 200 and quoted.endswith("…")
    assert all(char.isprintable() for char in quoted)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_the_client_did_not_follow_is_permanent(status: int) -> None:
    with pytest.raises(PermanentError, match=f"GitHub {status}: Moved Permanently"):
        raise_for_github(response(status, {"message": "Moved Permanently"}))


ABUSE = {
    "message": "You have triggered an abuse detection mechanism. Please wait a few minutes "
    "before you try again.",
    "documentation_url": "https://developer.github.com/v3/#abuse-rate-limits",
}


@pytest.mark.parametrize("status", [403, 429])
def test_the_older_abuse_detection_wording_is_a_secondary_limit(status: int) -> None:
    limited = response(status, ABUSE, x_ratelimit_remaining="4990")

    with pytest.raises(RateLimitedError, match="abuse detection mechanism") as caught:
        raise_for_github(limited)

    assert caught.value.retry_after == 60.0
    assert caught.value.unsaid  # neither a retry-after nor a reset: the caller backs off


def test_a_secondary_limit_with_retry_after_is_not_left_to_backoff() -> None:
    with pytest.raises(RateLimitedError) as caught:
        raise_for_github(response(403, ABUSE, retry_after="5", x_ratelimit_remaining="4990"))

    assert caught.value.retry_after == 5 and not caught.value.unsaid


def test_a_forbidden_answer_that_mentions_no_limit_is_permanent() -> None:
    forbidden = {"message": "Resource not accessible by integration"}

    with pytest.raises(PermanentError) as caught:
        raise_for_github(response(403, forbidden, x_ratelimit_remaining="4990"))

    assert not isinstance(caught.value, TransientError)
