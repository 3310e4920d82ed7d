"""Shared fixtures and marker handling: `gpu`, `requires_dot` and `requires_browser` tests skip
when unmet."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from .browser import chromium_available


def pytest_collection_modifyitems(config, items):
    has_gpu = _cuda_available()
    has_dot = shutil.which("dot") is not None
    has_browser = chromium_available()
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))
        if "requires_dot" in item.keywords and not has_dot:
            item.add_marker(pytest.mark.skip(reason="needs Graphviz's dot"))
        if "requires_browser" in item.keywords and not has_browser:
            item.add_marker(pytest.mark.skip(reason="needs /usr/bin/chromium and chromedriver "
                                                    "(apt-get install chromium chromium-driver)"))


def _cuda_available() -> bool:
    if "torch" not in sys.modules:  # don't import torch just to skip
        return False
    return sys.modules["torch"].cuda.is_available()


@pytest.fixture
def toy_data():
    """Three well-separated classes in 4 float32 features, seeded."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 60)
    centers = np.array([[0, 0, 0, 0], [3, 0, 1, 0], [0, 3, 0, 1]], dtype=np.float32)
    X = (centers[y] + rng.normal(scale=0.8, size=(len(y), 4))).astype(np.float32)
    return X, y


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter and return its stdout (fails the test on error)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def shrunk(epochs: int = 1, tiny: bool = True, lr: float | None = None) -> list[str]:
    """``--set`` overrides that make configs/digits.yaml run in seconds: few epochs, no
    progress bar, few bootstrap resamples and, with ``tiny``, the 8-channel test backbone."""
    sets = [f"trainer.max_epochs={epochs}", "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false", "report.bootstrap_resamples=100"]
    if tiny:
        sets += ["model.backbone.name=tiny_cnn", "model.backbone.params={}"]
    if lr is not None:
        sets.append(f"model.optimizer.params.lr={lr}")
    return [arg for value in sets for arg in ("--set", value)]
