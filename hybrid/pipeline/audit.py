"""``hybrid audit``: run the CNN and the surrogates on data and check their fidelity.

The data is a split of the run's own data set (its features are reused), another data config
(e.g. a shifted version: the CNN runs on it through the run's best checkpoint), or a folder of
images with one sub-folder per class. The result can gate CI: :func:`audit_run` says whether
every audited surrogate's fidelity interval stays above ``min_fidelity``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .. import _io
from ..audit import audit_features
from ..config import load_config
from ..errors import ConfigError
from ..features import FeatureTable
from ..jsonio import load_surrogate
from ..report import reliability_png
from ..rundir import SPLITS, RunDirectory

__all__ = ["audit_run", "load_audit_table", "format_audit", "write_audit"]

log = logging.getLogger("hybrid")


def audit_run(run: RunDirectory, data=None, split: str = "test", surrogates=None,
              min_fidelity: float | None = None, confidence: float = 0.95) -> dict:
    """Audit the run's surrogates on ``data`` (None: the run's own ``split``).

    Returns a dict with the data description, ``passed`` (None without ``min_fidelity``) and
    one :func:`hybrid.audit.audit_features` result per surrogate under ``surrogates``.
    """
    config = run.load_config()
    run.require("distill")
    names = list(surrogates or config.surrogates)
    for name in names:
        if name not in config.surrogates:
            raise ConfigError(f"unknown surrogate '{name}' in {run.root}; choose from: "
                              f"{', '.join(config.surrogates)}")
    table, description = load_audit_table(run, data, split)
    reference = FeatureTable.load(run.features("test"))
    results = {}
    for name in names:
        model = load_surrogate(run.surrogate(name))
        distilled = float(np.mean(model.predict(reference.X) == reference.teacher))
        results[name] = audit_features(model, table, reference_fidelity=distilled,
                                       min_fidelity=min_fidelity, confidence=confidence)
    files = description.get("files")
    if files:  # name the image of each disagreement, not just its position
        for result in results.values():
            for row in result["disagreements"]:
                row["file"] = files[row["index"]]
    gate = [result["passed"] for result in results.values()]
    return {"run": str(run.root), "data": description, "min_fidelity": min_fidelity,
            "passed": None if min_fidelity is None else all(gate), "surrogates": results}


def load_audit_table(run: RunDirectory, data, split: str) -> tuple[FeatureTable, dict]:
    """Features and CNN answers for the audited data, and a description of that data."""
    if data is None:
        if split not in SPLITS:
            raise ConfigError(f"unknown split '{split}'; choose from: {', '.join(SPLITS)}")
        run.require("extract")
        return FeatureTable.load(run.features(split)), {"kind": "split", "split": split}
    data = Path(data)
    if data.is_dir():
        return _folder_table(run, data)
    if data.is_file():
        return _config_table(run, data, split)
    raise ConfigError(f"--data {data}: no such config file or image folder")


def _config_table(run: RunDirectory, path: Path, split: str):
    """Run the CNN over ``split`` of the data module a config names."""
    from ._components import build_datamodule, predict_table

    data_config = load_config(path).data
    config = run.load_config().model_copy(update={"data": data_config})
    datamodule = build_datamodule(config, normalization=_run_normalization(run))
    if split not in datamodule.splits:
        raise ConfigError(f"unknown split '{split}'; choose from: {', '.join(datamodule.splits)}")
    table = predict_table(config, run, datamodule.split_dataloader(split), datamodule.class_names,
                          datamodule.input_shape[0])
    return table, {"kind": "config", "config": str(path), "data": data_config.model_dump(),
                   "split": split}


def _folder_table(run: RunDirectory, folder: Path):
    """Run the CNN over a folder of images, one sub-folder per class name."""
    from ._components import build_datamodule, predict_images

    config = run.load_config()
    table, files = predict_images(config, run, build_datamodule(config), folder)
    return table, {"kind": "folder", "folder": str(folder),
                   "files": {int(i): str(f) for i, f in zip(table.index, files)}}


def _run_normalization(run: RunDirectory):
    from ._components import build_datamodule

    return build_datamodule(run.load_config()).normalization


def format_audit(result: dict) -> str:
    """A short human-readable summary of :func:`audit_run`'s result."""
    lines = [f"audit of {result['run']} on {_describe(result['data'])}"]
    for name, audit in result["surrogates"].items():
        low, high = audit["fidelity_ci"] or (float("nan"), float("nan"))
        change = "" if audit["change"] is None else f", {audit['change']:+.3f} vs distillation"
        verdict = {None: "", True: "  PASS", False: "  FAIL"}[audit["passed"]]
        lines.append(f"  {name:<14} fidelity {audit['fidelity']:.3f} [{low:.3f}, {high:.3f}] "
                     f"on {audit['n']} rows{change}; {len(audit['disagreements'])} "
                     f"disagreements{verdict}")
        weakest = [band for band in audit["by_confidence"] if band["n"]]
        if weakest:
            band = min(weakest, key=lambda b: b["fidelity"])
            lines.append(f"  {'':<14} weakest CNN-confidence band ({band['lower']:.2f}, "
                         f"{band['upper']:.2f}]: fidelity {band['fidelity']:.3f} on {band['n']} rows")
    first = next(iter(result["surrogates"].values()))
    if first["calibration"]["ece"] is not None:
        lines.append(f"  CNN accuracy {first['teacher_accuracy']:.3f}, expected calibration error "
                     f"{first['calibration']['ece']:.4f}")
    if result["passed"] is not None:
        lines.append(f"{'PASSED' if result['passed'] else 'FAILED'}: every fidelity lower bound "
                     f"{'>=' if result['passed'] else 'must be >='} {result['min_fidelity']}")
    return "\n".join(lines)


def _describe(data: dict) -> str:
    if data["kind"] == "split":
        return f"its {data['split']} split"
    if data["kind"] == "config":
        return f"{data['config']} ({data['split']} split)"
    return f"images in {data['folder']}"


def write_audit(result: dict, path) -> list[Path]:
    """The audit as JSON at ``path`` and the CNN's reliability diagram next to it (PNG)."""
    path = Path(path)
    figure = path.with_name(f"{path.stem}_reliability.png")
    calibration = next(iter(result["surrogates"].values()))["calibration"]
    titled = {**calibration, "split": _describe(result["data"])}
    _io.write_bytes(figure, reliability_png({"calibration": titled}))
    _io.write_json(path, result)
    return [path, figure]
