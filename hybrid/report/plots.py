"""The report's figures as PNG bytes, drawn with matplotlib's object API.

Figures are :class:`matplotlib.figure.Figure` objects saved straight to bytes, never pyplot
figures: no backend is selected or switched, no figure is left open in a global registry, and a
report can be made in a headless worker or next to a user's interactive session. They are
drawn in matplotlib's default style, not the user's rcParams, so a run's figures come out the same
on every machine and a user's ``text.usetex`` cannot choke on a class name.
"""

import math
from io import BytesIO

import matplotlib.style
import numpy as np
import PIL.Image
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ._tables import unit_label

__all__ = ["fidelity_vs_complexity_png", "per_class_fidelity_png", "deferral_png",
           "reliability_png", "thumbnail_png"]

_DPI = 110
_PANEL_SIZE = (4.4, 3.4)  # inches per surrogate panel
_MAX_PANEL_COLUMNS = 3
_MAX_TICK_CHARS = 16
_BAR_ERRORS = {"elinewidth": 1, "ecolor": "0.3"}
_THUMBNAIL_PIXELS = 64


def fidelity_vs_complexity_png(metrics: dict) -> bytes:
    """Fidelity against complexity along each surrogate's sweep, one panel per surrogate.

    Test fidelity is drawn with its 95% interval, validation fidelity as a dashed line and the
    chosen model (``metrics["surrogates"][name]``) as a star. The complexity axis is
    logarithmic when the sweep spans more than a decade.

    Parameters
    ----------
    metrics : dict
        The run's metrics; ``metrics["sweep"]`` holds the points.

    Returns
    -------
    bytes
        The PNG image; the same metrics give the same bytes.
    """
    sweeps = metrics["sweep"]
    if not sweeps:
        raise ValueError("metrics['sweep'] is empty: there is no sweep to plot")
    ncols = min(len(sweeps), _MAX_PANEL_COLUMNS)
    nrows = math.ceil(len(sweeps) / ncols)
    with matplotlib.style.context("default"):
        fig = Figure(figsize=(_PANEL_SIZE[0] * ncols, _PANEL_SIZE[1] * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, (name, sweep) in zip(axes, sweeps.items()):
            _plot_sweep(ax, name, sweep, metrics["surrogates"].get(name))
        for ax in axes[len(sweeps):]:
            fig.delaxes(ax)
        return _png(fig)


def per_class_fidelity_png(metrics: dict) -> bytes:
    """Test fidelity per class, one group of bars per class and one bar per surrogate.

    Parameters
    ----------
    metrics : dict
        The run's metrics; each surrogate's ``per_class`` rows hold the bars.

    Returns
    -------
    bytes
        The PNG image; the same metrics give the same bytes.
    """
    surrogates = metrics["surrogates"]
    if not surrogates:
        raise ValueError("metrics['surrogates'] is empty: there is no surrogate to plot")
    classes = _classes(surrogates)
    positions = np.arange(len(classes))
    width = 0.8 / len(surrogates)
    # About a bar's width per surrogate and class, within readable and renderable bounds.
    fig_width = float(np.clip(0.22 * len(classes) * (len(surrogates) + 1), 6.0, 30.0))
    with matplotlib.style.context("default"):
        fig = Figure(figsize=(fig_width, 4.2), layout="constrained")
        ax = fig.add_subplot()
        for i, (name, surrogate) in enumerate(surrogates.items()):
            by_label = {row["label"]: row for row in surrogate["per_class"]}
            rows = [by_label.get(label, {}) for label in classes]
            fidelity = _floats(rows, "fidelity")
            ax.bar(positions + (i - (len(surrogates) - 1) / 2) * width, fidelity, width,
                   yerr=_ci_errors(fidelity, [row.get("fidelity_ci") for row in rows]),
                   capsize=2, error_kw=_BAR_ERRORS, label=_literal(name))
        _label_classes(ax, positions, list(classes.values()))
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("test fidelity to teacher")
        ax.grid(axis="y", alpha=0.3)
        fig.legend(loc="outside upper center", ncols=min(len(surrogates), 4), frameon=False)
        return _png(fig)


def deferral_png(metrics: dict) -> bytes:
    """Coverage against fidelity of each hybrid predictor as its deferral threshold varies.

    One colour per rule-based surrogate: its rules' fidelity on the test rows they answer
    (solid) and the hybrid's accuracy on all test rows (dashed), both against coverage (the share
    of test rows the rules answer). A marker shows the configured threshold.

    Parameters
    ----------
    metrics : dict
        The run's metrics; ``metrics["surrogates"][name]["deferral"]`` holds each curve.

    Returns
    -------
    bytes
        The PNG image; the same metrics give the same bytes.
    """
    hybrids = {name: s["deferral"] for name, s in metrics["surrogates"].items()
               if s.get("deferral")}
    if not hybrids:
        raise ValueError("no surrogate in metrics['surrogates'] has a 'deferral' curve to plot")
    with matplotlib.style.context("default"):
        fig = Figure(figsize=(6.4, 4.4), layout="constrained")
        ax = fig.add_subplot()
        for i, (name, deferral) in enumerate(hybrids.items()):
            _plot_deferral(ax, _literal(name), deferral, f"C{i}")
        ax.set_xlabel("coverage (share of test samples the rules answer)")
        ax.set_ylabel("fidelity / accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        return _png(fig)


def reliability_png(metrics: dict) -> bytes:
    """The CNN's reliability diagram: accuracy against confidence per bin, counts below.

    Parameters
    ----------
    metrics : dict
        The run's metrics; ``metrics["calibration"]`` holds the bins and the ECE.

    Returns
    -------
    bytes
        The PNG image; the same metrics give the same bytes.
    """
    calibration = metrics.get("calibration")
    if not calibration or not calibration.get("bins"):
        raise ValueError("metrics['calibration'] has no bins to plot")
    bins = calibration["bins"]
    lower, upper = _floats(bins, "lower"), _floats(bins, "upper")
    with matplotlib.style.context("default"):
        fig = Figure(figsize=(5.2, 5.6), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        top.bar(lower, _floats(bins, "accuracy"), upper - lower, align="edge", alpha=0.35,
                edgecolor="C0", label="accuracy per bin")
        top.plot(_floats(bins, "confidence"), _floats(bins, "accuracy"), marker="o",
                 linestyle="none", color="C0", label="mean confidence, accuracy")
        top.plot([0, 1], [0, 1], linestyle="--", color="0.4", label="perfect calibration")
        top.set(xlim=(0, 1), ylim=(0, 1.02), ylabel="accuracy", title=_calibration_title(calibration))
        top.grid(alpha=0.3)
        top.legend(fontsize="small", loc="upper left")
        bottom.bar(lower, _floats(bins, "n"), upper - lower, align="edge", color="0.5")
        bottom.set(xlabel="CNN confidence (top class probability)", ylabel="samples")
        return _png(fig)


def thumbnail_png(array: np.ndarray, pixels: int = _THUMBNAIL_PIXELS) -> bytes:
    """An image as a small PNG, enlarged by whole pixels so that digits stay sharp.

    Parameters
    ----------
    array : ndarray of shape (H, W) or (H, W, 3), uint8
        Grey levels or RGB colours.
    pixels : int, default=64
        About the longer side of the result: each pixel becomes a square of
        ``round(pixels / max(H, W))`` pixels (at least 1), so an 8x8 digit becomes 64x64.

    Returns
    -------
    bytes
        The PNG image.

    Examples
    --------
    >>> thumbnail_png(np.zeros((8, 8), dtype=np.uint8))[:4]
    b'\\x89PNG'
    """
    array = np.asarray(array)
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"expected a uint8 array of shape (H, W) or (H, W, 3); got {array.dtype} "
                         f"of shape {array.shape}")
    scale = max(1, round(pixels / max(array.shape[:2])))
    enlarged = array.repeat(scale, axis=0).repeat(scale, axis=1)
    buffer = BytesIO()
    PIL.Image.fromarray(enlarged).save(buffer, format="png")
    return buffer.getvalue()


def _calibration_title(calibration: dict) -> str:
    split = _literal(calibration.get("split", "test"))
    ece = calibration.get("ece")
    return split if ece is None else f"{split}: ECE {ece:.3f}"


def _plot_deferral(ax, name: str, deferral: dict, color: str) -> None:
    curve = sorted(deferral["curve"], key=lambda point: point["coverage"])
    coverage = _floats(curve, "coverage")
    ax.plot(coverage, _floats(curve, "rules_fidelity"), marker=".", color=color,
            label=f"{name}: rules' fidelity")
    ax.plot(coverage, _floats(curve, "hybrid_accuracy"), linestyle="--", color=color,
            label=f"{name}: combined accuracy")
    if deferral.get("coverage") is not None and deferral.get("rules_fidelity") is not None:
        ax.plot([deferral["coverage"]], [deferral["rules_fidelity"]], marker="D", markersize=8,
                linestyle="none", color=color, markeredgecolor="black", zorder=3,
                label=f"{name}: threshold {deferral['threshold']:g}")


def _plot_sweep(ax, name: str, sweep: dict, chosen: dict | None) -> None:
    points = sorted(sweep["points"], key=lambda point: point["complexity"])
    complexity = _floats(points, "complexity")
    test = _floats(points, "test_fidelity")
    errors = _ci_errors(test, [point.get("test_fidelity_ci") for point in points])
    ax.errorbar(complexity, test, yerr=errors, marker="o", capsize=3, label="test (95% CI)")
    ax.plot(complexity, _floats(points, "val_fidelity"), marker="s", linestyle="--",
            label="validation")
    if chosen is not None:
        ax.plot([chosen["complexity"]], [chosen["test_fidelity"]], marker="*", markersize=15,
                linestyle="none", color="C3", zorder=3, label="chosen")
    _scale_complexity(ax, complexity)
    ax.set_title(_literal(name))
    ax.set_xlabel(f"complexity ({unit_label(sweep['complexity_unit'])})")
    ax.set_ylabel("fidelity to teacher")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def _scale_complexity(ax, complexity: np.ndarray) -> None:
    """Integer ticks; log scale when the counts span more than a decade, symlog if they hold 0."""
    low, high = np.nanmin(complexity), np.nanmax(complexity)
    if high <= 10 * max(low, 1):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    elif low > 0:
        ax.set_xscale("log")
    else:
        ax.set_xscale("symlog", linthresh=1)


def _label_classes(ax, positions: np.ndarray, names: list[str]) -> None:
    """Class names under their bars, shortened, slanted when there are many or long ones."""
    labels = [_literal(_shorten(name)) for name in names]
    slanted = len(labels) > 10 or max(map(len, labels), default=0) > 6
    ax.set_xticks(positions, labels, rotation=40 if slanted else 0,
                  ha="right" if slanted else "center")
    ax.set_xlabel("class (as the teacher predicts it)")


def _classes(surrogates: dict) -> dict:
    """Label -> class name over all surrogates' per-class rows, in label order."""
    names = {row["label"]: row["name"] for s in surrogates.values() for row in s["per_class"]}
    return dict(sorted(names.items()))


def _floats(rows: list[dict], key: str) -> np.ndarray:
    """``row[key]`` per row as floats; NaN where it is missing or ``None``."""
    return np.array([np.nan if row.get(key) is None else row[key] for row in rows], dtype=float)


def _ci_errors(centres: np.ndarray, cis: list) -> np.ndarray:
    """Error bar lengths, shape (2, n), from ``[low, high]`` intervals; NaN where there is none."""
    bounds = np.array([(np.nan, np.nan) if ci is None else ci for ci in cis], dtype=float)
    # A bootstrap interval may miss its point estimate; matplotlib rejects negative lengths.
    return np.clip([centres - bounds[:, 0], bounds[:, 1] - centres], 0, None)


def _shorten(name: str) -> str:
    name = " ".join(str(name).split())
    return name if len(name) <= _MAX_TICK_CHARS else name[:_MAX_TICK_CHARS - 1] + "…"


def _literal(text: str) -> str:
    """``text`` drawn as is: a ``$`` in a user's name must not start mathtext."""
    return str(text).replace("$", r"\$")


def _png(fig: Figure) -> bytes:
    buffer = BytesIO()
    # Without the Software entry the PNG holds no version, so equal figures give equal bytes.
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()
