"""The synthetic full report as a reader's browser shows it (headless Chromium)."""

import matplotlib.image
import pytest

from hybrid.report import render_html

from ..browser import open_page
from . import synthetic

pytestmark = pytest.mark.requires_browser

SECTION_IDS = ["summary", "fidelity-vs-complexity", "per-class", "sweep", "rules", "deferral",
               "calibration", "disagreements"]


@pytest.fixture(scope="module")
def check(tmp_path_factory):
    """One browser session for the module: starting Chromium is the slow part."""
    folder = tmp_path_factory.mktemp("browser")
    metrics = synthetic.full_metrics()
    rules_text = {name: f"IF x > 1 THEN <{name}>\nELSE 0\n" for name in metrics["surrogates"]}
    page = render_html(metrics, synthetic.figures(metrics), rules_text,
                       images=synthetic.images())
    (folder / "report.html").write_text(page, encoding="utf-8")
    return open_page(folder / "report.html", folder / "report.png")


def test_page_loads_cleanly(check):
    assert check.console_errors == []
    assert check.network_requests == []
    assert check.title == "hybrid report: toy <data>"


def test_every_image_loads(check):
    assert check.images == 4 + 2 * 23 + 2  # figures, and the cards that have an image
    assert check.images_loaded, check.broken_images


def test_sections_show_the_key_numbers(check):
    assert set(SECTION_IDS) <= set(check.sections)
    summary = check.sections["summary"]
    assert "0.938" in summary  # teacher test accuracy
    for surrogate in synthetic.full_metrics()["surrogates"].values():
        assert f"{surrogate['test_fidelity']:.3f}" in summary
    assert synthetic.HOSTILE_CLASS in check.sections["per-class"]  # shown as text, not run
    assert "defers" in check.sections["rules"]
    assert "0.551" in check.sections["deferral"]
    assert "0.035" in check.sections["calibration"]
    assert "The first 24 of 30 disagreements." in check.sections["disagreements"]


def test_screenshot_is_a_png(check):
    assert check.screenshot.stat().st_size > 0
    height, width, _ = matplotlib.image.imread(check.screenshot).shape
    assert width > 1000 and height > 2000  # stretched to the page
