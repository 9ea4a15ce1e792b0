"""examples/chat/ in a real browser: headless Chromium, driven by selenium.

The app runs under ``tinyws serve`` in a subprocess on a free loopback port;
one Chromium (a fresh profile in a temporary directory) opens the page in
several tabs, each a person. Tabs share the cookie jar, which is fine here:
a page's login sets the cookie just before its own socket opens, and an
open socket keeps the session it was opened with.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs
them); the test skips only where they are absent and cannot be installed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from tests.servers import RunningServer, run_server

WAIT = 5.0  # seconds, for anything the page should show
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def browser_binaries() -> tuple[str, str]:
    """Chromium and chromedriver, or a skip where they cannot be had."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is not None and driver is not None:
        return chromium, driver
    if shutil.which("apt-get") is None:
        pytest.skip("no chromium/chromedriver and no apt-get to install them")
    pytest.fail("chromium or chromedriver is missing: apt-get install -y chromium chromium-driver")


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with run_server("tinyws", "examples.chat:app") as running:
        yield running


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    chromium, chromedriver = browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile: Path = tmp_path_factory.mktemp("chromium-profile")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    try:
        driver.set_page_load_timeout(10)
        driver.set_script_timeout(WAIT)
        yield driver
    finally:
        driver.quit()


class Page:
    """One tab with the chat's page: what a person types and what they see."""

    def __init__(self, driver: WebDriver, url: str) -> None:
        self.driver = driver
        driver.switch_to.new_window("tab")
        self.handle = driver.current_window_handle
        driver.get(url)

    def focus(self) -> WebDriver:
        self.driver.switch_to.window(self.handle)
        return self.driver

    def join(self, name: str | None, room: str = "lobby") -> None:
        driver = self.focus()
        if name is not None:
            driver.find_element(By.ID, "name").send_keys(name)
        Select(driver.find_element(By.ID, "room")).select_by_visible_text(room)
        driver.find_element(By.ID, "join").click()

    def say(self, text: str) -> None:
        driver = self.focus()
        driver.find_element(By.ID, "message").send_keys(text)
        driver.find_element(By.ID, "send").click()

    def status(self) -> dict[str, str]:
        element = self.focus().find_element(By.ID, "status")
        return {
            "state": element.get_attribute("data-state") or "",
            "code": element.get_attribute("data-close-code") or "",
            "text": element.text,
        }

    def lines(self) -> list[str]:
        return [line.text for line in self.focus().find_elements(By.CSS_SELECTOR, "#log li")]

    def wait(self, what: str, check: Callable[[Page], bool]) -> None:
        """Until ``check(self)`` holds, at most WAIT seconds; the page's state on failure."""
        try:
            WebDriverWait(self.focus(), WAIT, poll_frequency=0.05).until(lambda _: check(self))
        except Exception as error:
            raise AssertionError(f"{what}: {self.status()} {self.lines()}") from error

    def wait_for_line(self, line: str) -> None:
        self.wait(f"expected {line!r}", lambda page: line in page.lines())

    def wait_connected(self) -> None:
        self.wait("expected to be connected", lambda page: page.status()["state"] == "open")

    def close(self) -> None:
        self.focus().close()
        # WebDriver has no current tab now; later calls need one that is still open.
        self.driver.switch_to.window(self.driver.window_handles[0])


def test_two_pages_talk_one_leaves_the_others_go_on(
    browser: WebDriver, server: RunningServer
) -> None:
    url = f"{server.base_url}/"
    ann = Page(browser, url)
    ann.join("ann")
    ann.wait_connected()
    assert ann.status()["text"] == "Connected to lobby as ann."
    bob = Page(browser, url)
    bob.join("bob")
    bob.wait_connected()
    ann.wait_for_line("bob joined.")

    bob.say("hello ann")
    ann.wait_for_line("bob: hello ann")
    ann.say("hi bob")
    bob.wait_for_line("ann: hi bob")
    cy = Page(browser, url)
    cy.join("cy")
    cy.wait_connected()
    assert "Here: ann, bob." in cy.lines()

    bob.close()  # the tab goes away, and its socket with it
    ann.wait_for_line("bob left.")
    ann.say("still talking")
    cy.wait_for_line("ann: still talking")
    ann.wait_for_line("ann: still talking")
    assert ann.status()["state"] == "open"
    cy.say("me too")
    ann.wait_for_line("cy: me too")
    assert server.process.poll() is None, server.describe()


def test_a_page_with_a_wrong_token_shows_the_4401_close(
    browser: WebDriver, server: RunningServer
) -> None:
    page = Page(browser, f"{server.base_url}/?token=forged")
    page.join(None)
    page.wait("expected a refusal", lambda page: page.status()["state"] == "refused")
    assert page.status() == {
        "state": "refused",
        "code": "4401",
        "text": "Refused: 4401 Unauthorized",
    }
    assert page.lines() == []
