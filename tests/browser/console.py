"""The console as a person uses it: open pages, fill fields, press buttons, take screenshots."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from services.api.console.credentials import COOKIE
from tests.support.factories import token_on

# Window sizes the console is checked at.
DESKTOP = (1280, 900)
PHONE = (390, 844)

NEW_PAGE_LOADED = "return !window.consoleOldPage && document.readyState === 'complete';"
UNLABELLED = """
return [...document.querySelectorAll('input, select, textarea')]
  .filter(el => el.type !== 'hidden' && el.labels.length === 0 && !el.getAttribute('aria-label'))
  .map(el => el.name || el.id);
"""


class Console:
    """One browser window on a console at `base_url`, saving numbered screenshots."""

    def __init__(self, driver: WebDriver, base_url: str, artifacts: Path, *, prefix: str) -> None:
        self.driver = driver
        self.base_url = base_url
        self.artifacts = artifacts
        self.prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", prefix)
        self._shots = 0
        # The screenshots of an earlier run of the same test would mix with this run's.
        for old in artifacts.glob(f"{self.prefix}-[0-9][0-9]-*.png"):
            old.unlink()

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    @property
    def path(self) -> str:
        url: str = self.driver.current_url
        return url.removeprefix(self.base_url)

    def screenshot(self, step: str) -> Path:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self._shots += 1
        target = self.artifacts / f"{self.prefix}-{self._shots:02d}-{step}.png"
        self.driver.save_screenshot(str(target))
        return target

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def field(self, name: str) -> WebElement:
        return self.find(f'[name="{name}"]')

    def fill(self, name: str, value: str) -> None:
        element = self.field(name)
        element.clear()
        element.send_keys(value)

    def choose(self, name: str, value: str) -> None:
        Select(self.field(name)).select_by_value(value)

    def press(self, label: str) -> None:
        """Click the button or link named `label` (its text or aria-label); wait for the page."""
        for element in self.find_all("button, a"):
            names = {element.text.strip(), element.get_attribute("aria-label") or ""}
            if label in names and element.is_displayed():
                self.click_and_wait(element)
                return
        raise AssertionError(f"no button or link {label!r} on {self.path}")

    def click_and_wait(self, element: WebElement, *, keyboard: bool = False) -> None:
        """Click (or press Enter on) something that loads another page; wait until it has."""
        # A mark on the current document: the next document does not have it.
        self.driver.execute_script("window.consoleOldPage = true;")
        if keyboard:
            element.send_keys(Keys.ENTER)
        else:
            element.click()
        WebDriverWait(
            self.driver, 10, poll_frequency=0.1, ignored_exceptions=[WebDriverException]
        ).until(lambda driver: driver.execute_script(NEW_PAGE_LOADED))

    def sign_in(self, token: str) -> None:
        self.open("/console/signin")
        self.fill("token", token)
        self.press("Sign in")

    def error_for(self, name: str) -> str:
        """The message shown next to the field `name`, read from the element the input names."""
        described = self.field(name).get_attribute("aria-describedby") or ""
        for element_id in described.split():
            if element_id.startswith("e-"):
                return str(self.find(f"#{element_id}").text)
        raise AssertionError(f"no error shown for {name!r} on {self.path}")

    def wait(self, condition: Callable[[WebDriver], Any], timeout: float = 10) -> Any:
        """Wait for `condition` to hold, ignoring elements replaced while it was being read."""

        def guarded(driver: WebDriver) -> Any:
            try:
                return condition(driver)
            except WebDriverException as exc:
                # Chromium reports a node replaced mid-read so too, not only as a stale element.
                if "does not belong to the document" in (exc.msg or ""):
                    return False
                raise

        return WebDriverWait(
            self.driver,
            timeout,
            poll_frequency=0.2,
            ignored_exceptions=[StaleElementReferenceException],
        ).until(guarded)

    def wait_for_text(self, css: str, text: str, timeout: float = 10) -> None:
        self.wait(lambda driver: text in driver.find_element(By.CSS_SELECTOR, css).text, timeout)

    def tab(self) -> WebElement:
        """Press Tab; return the element that has the focus then."""
        self.driver.switch_to.active_element.send_keys(Keys.TAB)
        return self.driver.switch_to.active_element

    def focus_ring(self, element: WebElement) -> str:
        """The focused element's outline as drawn (style and width), e.g. "solid 3px"."""
        return " ".join(
            str(element.value_of_css_property(name)) for name in ("outline-style", "outline-width")
        )

    def foreign_requests(self) -> list[str]:
        """Every resource this page loaded from anywhere but the console's own server."""
        urls = self.driver.execute_script(
            "return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)];"
        )
        return [url for url in urls if not url.startswith(self.base_url + "/")]

    def unlabelled_inputs(self) -> list[str]:
        return list(self.driver.execute_script(UNLABELLED))

    def overflows_horizontally(self) -> bool:
        return bool(
            self.driver.execute_script(
                "return document.documentElement.scrollWidth > window.innerWidth + 1;"
            )
        )


def console_session(base_url: str, token: str) -> str:
    """Sign in as a browser would, without one; return the session secret of the cookie."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        answer = client.post("/console/signin", data={"token": token}, headers={"Origin": base_url})
        assert answer.status_code == 303, answer.text
        return str(answer.cookies[COOKIE])


def owner_api(
    base_url: str, database_url: str, request: pytest.FixtureRequest
) -> tuple[str, httpx.Client]:
    """A new user's API token, and a client on `base_url` with it, closed when the test ends."""
    token = asyncio.run(token_on(database_url))
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    request.addfinalizer(api.close)
    return token, api


def signed_in_with_project(
    base_url: str,
    database_url: str,
    open_console: Callable[..., Console],
    request: pytest.FixtureRequest,
) -> tuple[Console, httpx.Client, str]:
    """A new user with the project `demo` (the stack's local repository, posting to x): a
    console signed in as them, their API client and the project's id."""
    token, api = owner_api(base_url, database_url, request)
    project = api.post(
        "/api/projects", json={"name": "demo", "localRepoPath": "demo", "platforms": ["x"]}
    )
    assert project.status_code == 201, project.text
    console = open_console(base_url)
    console.sign_in(token)
    return console, api, str(project.json()["data"]["id"])
