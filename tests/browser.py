"""Open an HTML file in headless Chromium and report what a reader would meet.

Tests marked ``requires_browser`` use :func:`open_page` to check a report the way a person sees
it: console errors, pictures that failed to load, requests that left the file, the text of each
section. It drives Debian's ``chromium`` through ``chromium-driver`` with Selenium; Selenium is
imported only when a page is opened, so the test suite collects without it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CHROMIUM", "PageCheck", "chromium_available", "open_page"]

CHROMIUM = "/usr/bin/chromium"
_CHROMEDRIVER = "/usr/bin/chromedriver"
_TIMEOUT_S = 30
# Tall pages are shot whole up to this height; beyond it Chromium's screenshots get slow and huge.
_MAX_SCREENSHOT_HEIGHT = 16000
# Everything that would reach out to the network or a profile on start-up is switched off, so a
# page opens the same offline, in a container and as root.
_ARGUMENTS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-quic", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--window-size=1280,2000")

_IMAGES_SCRIPT = """
return Array.from(document.images, img => ({
  src: img.currentSrc.slice(0, 60), complete: img.complete, width: img.naturalWidth}));
"""
_RESOURCES_SCRIPT = "return performance.getEntriesByType('resource').map(entry => entry.name);"
_SECTIONS_SCRIPT = "return Array.from(document.querySelectorAll('section[id]'), s => s.id);"
_HEIGHT_SCRIPT = "return Math.ceil(document.documentElement.scrollHeight);"


@dataclass(frozen=True)
class PageCheck:
    """What :func:`open_page` saw.

    Parameters
    ----------
    title : str
        The page's ``<title>``.
    console_errors : list of str
        Browser log messages of level ``SEVERE`` (script errors, failed loads).
    sections : dict of str to str
        Section id -> its rendered text; a requested id the page lacks is absent.
    images : int
        How many ``<img>`` elements the page has.
    broken_images : list of str
        The start of the ``src`` of each image that did not load (``naturalWidth`` 0).
    network_requests : list of str
        URLs of every resource the page fetched other than ``data:`` URIs (from the Resource
        Timing API); empty for a self-contained page.
    screenshot : pathlib.Path
        The PNG screenshot, as tall as the page up to 16000 pixels.
    """

    title: str
    console_errors: list[str]
    sections: dict[str, str]
    images: int
    broken_images: list[str]
    network_requests: list[str]
    screenshot: Path

    @property
    def images_loaded(self) -> bool:
        """Whether every ``<img>`` loaded."""
        return not self.broken_images

    @property
    def text(self) -> str:
        """The text of every collected section, joined."""
        return "\n".join(self.sections.values())


def chromium_available() -> bool:
    """Whether Debian's ``chromium`` and a ``chromedriver`` on ``PATH`` are installed."""
    return os.access(CHROMIUM, os.X_OK) and shutil.which("chromedriver") is not None


def open_page(html_path, screenshot_path, section_ids=None) -> PageCheck:
    """Load ``html_path`` in headless Chromium, inspect it and save a screenshot.

    Parameters
    ----------
    html_path : str or path-like
        The HTML file, opened as a ``file://`` URL.
    screenshot_path : str or path-like
        Where the PNG screenshot goes; its folder must exist.
    section_ids : iterable of str or None, default=None
        Ids of the elements whose text to collect; every ``<section>`` with an id when None.

    Returns
    -------
    PageCheck
        Console errors, section texts, images, network requests and the screenshot's path.

    Raises
    ------
    RuntimeError
        When Chromium or its driver is not installed.
    """
    if not chromium_available():
        raise RuntimeError(f"needs {CHROMIUM} and chromedriver on PATH "
                           "(apt-get install chromium chromium-driver)")
    with tempfile.TemporaryDirectory(prefix="hybrid-chromium-") as profile:
        driver = _start_driver(profile)
        try:
            return _inspect(driver, Path(html_path), Path(screenshot_path), section_ids)
        finally:
            driver.quit()


def _start_driver(profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (*_ARGUMENTS, f"--user-data-dir={profile}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = _CHROMEDRIVER if os.access(_CHROMEDRIVER, os.X_OK) else shutil.which("chromedriver")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(_TIMEOUT_S)
    return driver


def _inspect(driver, html_path: Path, screenshot_path: Path, section_ids) -> PageCheck:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(html_path.resolve().as_uri())
    WebDriverWait(driver, _TIMEOUT_S).until(
        lambda d: d.execute_script("return document.readyState") == "complete")
    images = driver.execute_script(_IMAGES_SCRIPT)
    requests = [name for name in driver.execute_script(_RESOURCES_SCRIPT)
                if not name.startswith("data:")]
    sections = _section_texts(driver, section_ids)
    errors = [entry["message"] for entry in driver.get_log("browser")
              if entry.get("level") == "SEVERE"]
    _save_screenshot(driver, screenshot_path)
    return PageCheck(title=driver.title, console_errors=errors, sections=sections,
                     images=len(images),
                     broken_images=[img["src"] for img in images
                                    if not (img["complete"] and img["width"] > 0)],
                     network_requests=requests, screenshot=screenshot_path)


def _section_texts(driver, section_ids) -> dict[str, str]:
    from selenium.common.exceptions import NoSuchElementException
    from selenium.webdriver.common.by import By

    ids = driver.execute_script(_SECTIONS_SCRIPT) if section_ids is None else section_ids
    texts = {}
    for section_id in ids:
        try:
            texts[section_id] = driver.find_element(By.ID, section_id).text
        except NoSuchElementException:
            continue
    return texts


def _save_screenshot(driver, path: Path) -> None:
    """The whole page, as far as it fits: the window is stretched to the page's height first."""
    height = min(driver.execute_script(_HEIGHT_SCRIPT), _MAX_SCREENSHOT_HEIGHT)
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, max(height, 600))
    if not driver.save_screenshot(str(path)):
        raise RuntimeError(f"Chromium could not save a screenshot to {path}")
