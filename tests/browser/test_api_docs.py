"""In Chromium: the API's documentation renders from this server alone (no CDN, no internet)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.browser.console import Console

pytestmark = pytest.mark.e2e  # the api service runs as a real process


@pytest.mark.parametrize(
    ("path", "rendered", "operation", "allowed"),
    [
        ("/docs", ".swagger-ui .info .title", "#operations-schedules-listSchedules", []),
        # ReDoc's bundle links its footer's logo from its CDN; offline that one image is
        # missing and nothing else: the script, styles and document come from here.
        (
            "/redoc",
            "h1",
            "[data-section-id='tag/schedules']",
            ["https://cdn.redoc.ly/redoc/logo-mini.svg"],
        ),
    ],
)
def test_the_api_documentation_renders_without_anything_from_elsewhere(
    api_process: str,
    open_console: Callable[..., Console],
    path: str,
    rendered: str,
    operation: str,
    allowed: list[str],
) -> None:
    page = open_console(api_process, label=path.strip("/"))
    page.open(path)
    page.wait(lambda driver: "herald" in page.find(rendered).text, timeout=20)
    # The whole document is there: an operation of the schedules tag is listed.
    page.wait(lambda driver: page.find_all(operation), timeout=20)
    assert [url for url in page.foreign_requests() if url not in allowed] == []
    page.screenshot("docs")
