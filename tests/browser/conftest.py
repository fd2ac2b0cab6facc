"""A real headless Chromium (Debian's packages, never a download) driving the console."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from shared.secrets import generate_key
from tests.browser.console import DESKTOP, Console
from tests.browser.seed import Tenant, tenant
from tests.support import processes

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"

# Selenium Manager would try to download a browser or driver; the paths below are the only ones.
os.environ["SE_OFFLINE"] = "true"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    item.stash.setdefault(_FAILED, False)
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


_FAILED = pytest.StashKey[bool]()


def _chrome(width: int, height: int) -> webdriver.Chrome:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: install Debian's chromium and chromium-driver "
            "(`make test` does when they are absent)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests may run as root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_window_size(width, height)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture
def open_console(request: pytest.FixtureRequest) -> Iterator[Callable[..., Console]]:
    """Open a browser on a console; a failed test leaves a screenshot of where it stood."""
    opened: list[Console] = []
    name = request.node.name

    def open_at(base_url: str, *, size: tuple[int, int] = DESKTOP, label: str = "") -> Console:
        console = Console(
            _chrome(*size), base_url, ARTIFACTS, prefix=f"{name}{'-' + label if label else ''}"
        )
        opened.append(console)
        return console

    yield open_at
    for console in opened:
        if request.node.stash.get(_FAILED, False):
            console.screenshot("failure")
        console.driver.quit()


@pytest.fixture
def api_process(fresh_database_url: str, fresh_amqp_url: str, tmp_path: Path) -> Iterator[str]:
    """The API service alone as a real process on a loopback port; yields its base URL."""
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        "DATABASE_URL": fresh_database_url,
        "AMQP_URL": fresh_amqp_url,
        "HERALD_LOCAL_REPOS_ROOT": str(tmp_path),
        # As a deployment sets it: project secrets (tokens, webhook secrets) are encrypted.
        "HERALD_SECRET_KEY": generate_key(),
    }
    service = processes.start("api", env, logs)
    try:
        processes.wait_ready(service)
        yield service.url
    finally:
        code = processes.stop(service)
        assert code == 0, service.logs()


@pytest.fixture
def owner(api_process: str, fresh_database_url: str) -> Tenant:
    return asyncio.run(tenant(fresh_database_url))


@pytest.fixture
def api(api_process: str, owner: Tenant) -> Iterator[httpx.Client]:
    """The REST API as the console's user, to compare what the console shows with it."""
    with httpx.Client(
        base_url=api_process, headers={"Authorization": f"Bearer {owner.token}"}, timeout=10
    ) as client:
        yield client
