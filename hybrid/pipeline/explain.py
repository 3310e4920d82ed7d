"""``hybrid explain``: heatmaps of what the run's CNN looks at, and how faithful they are.

The CNN is restored from the run's best checkpoint and explained through Captum
(:mod:`hybrid.attribution`) on images of a split or of files. Each explanation is written as
an overlay PNG, all of them on one self-contained ``index.html``, and checked by deletion and
insertion curves (:mod:`hybrid.faithfulness`) against random maps in ``scores.json``: a heatmap
that does no better than chance says nothing about the CNN, however plausible it looks.

::

    OUT/<id>.png     the image with its heatmap (inferno) blended on top, ~128 px
    OUT/index.html   every image, its overlay, prediction and target; no external resource
    OUT/scores.json  mean and per-image deletion/insertion AUCs, method and random maps
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps

from .. import _io
from ..attribution import METHODS, attribute, cam_layer
from ..errors import ConfigError, RunDirectoryError
from ..faithfulness import deletion_insertion, random_maps, summarize
from ..images import list_images
from ..report import thumbnail_png
from ..rundir import SPLITS, RunDirectory
from ._components import build_datamodule, inference_device, load_classifier, read_images

__all__ = ["explain_run", "compare_methods", "score_methods", "overlay", "FORMAT"]

#: ``scores.json``'s ``format``: marks a folder hybrid may overwrite with a new explanation.
FORMAT = "hybrid-explanations"
_BETTER = {"deletion_auc": "lower", "insertion_auc": "higher"}
_OVERLAY_PIXELS = 128  # an 8x8 digit becomes 16x16 blocks: readable, still sharp
_PREDICT_BATCH = 256


@dataclass(frozen=True)
class _Batch:
    """Images to explain: what the CNN reads and what a person sees.

    ``x`` (n, C, H, W) normalized; ``display`` uint8 (n, H, W) or (n, H, W, 3); ``ids`` name
    each image (data set row or file path); ``labels`` are the true classes (split data only);
    ``source`` says where the images come from, for ``scores.json``.
    """

    x: torch.Tensor
    display: np.ndarray
    ids: list[str]
    labels: np.ndarray | None
    source: dict


def explain_run(run, method: str = "gradcam", target: str = "predicted", images=None,
                split: str = "test", limit: int | None = 64, out=None) -> Path:
    """Explain the run's CNN on images; write overlays, ``index.html`` and ``scores.json``.

    Parameters
    ----------
    run : RunDirectory or path
        A run whose ``fit`` stage is done.
    method : {"saliency", "integrated_gradients", "gradcam"}, default="gradcam"
    target : str, default="predicted"
        The class explained per image: ``"predicted"`` (the CNN's answer), ``"true"`` (the
        label; split data only) or a class name, e.g. ``"7"``.
    images : str or Path, default=None
        An image file or a folder (searched recursively); None explains ``split``. Files are
        read like ``hybrid predict`` reads them and normalized with the run's statistics.
    split : {"train", "val", "test"}, default="test"
    limit : int, default=64
        The first ``limit`` rows of ``split`` (None: all); files are all explained.
    out : str or Path, default=None
        The folder written; default ``RUN/explanations/<method>/``. A non-empty folder is only
        overwritten when it holds hybrid's previous explanation by the same method.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ConfigError
        An unknown method, split or target (the message lists the valid ones).
    RunDirectoryError
        ``out`` holds something else than a previous explanation by ``method``.
    """
    run = _as_run(run)
    METHODS.get(method)
    out = Path(out) if out is not None else run.root / "explanations" / method
    previous = _previous_files(out, method)
    config, datamodule, model = _restore(run)
    device = next(model.parameters()).device
    batch = _split_batch(datamodule, split, limit, device) if images is None else \
        _image_batch(datamodule, Path(images), device)
    proba = _probabilities(model, batch.x)
    targets = _targets(target, proba.argmax(axis=1), batch.labels, datamodule.class_names)
    maps = _maps(model, batch.x, method, targets)
    explained = deletion_insertion(model, batch.x, maps, targets)
    chance = deletion_insertion(model, batch.x, random_maps(maps.shape, config.seed), targets)
    rows = _image_rows(batch, proba, targets, explained, chance, datamodule.class_names)
    scores = {"format": FORMAT, "run": str(run.root), "method": method, "target": str(target),
              "source": batch.source, "steps": len(explained["fractions"]) - 1,
              "n_images": len(rows), "better": _BETTER, "methods": {method: summarize(explained)},
              "random": summarize(chance), "images": rows}
    _write(out, scores, batch.display, maps, previous)
    return out


def compare_methods(run, methods=("saliency", "integrated_gradients", "gradcam"),
                    split: str = "test", limit: int | None = 128) -> dict:
    """Mean deletion and insertion AUCs of several methods and of random maps, for a report.

    Every method explains the CNN's predicted class on the same first ``limit`` rows of
    ``split``; the random maps are seeded with the run's seed.

    Returns
    -------
    dict
        ``split``, ``target`` ("predicted"), ``n_images``, ``steps``, ``better`` (which
        direction is better per AUC), ``methods`` (per method: ``deletion_auc``,
        ``insertion_auc``, ``n_images``) and ``random`` (the same for random maps).
    """
    run = _as_run(run)
    config, datamodule, model = _restore(run)
    return score_methods(model, datamodule, config.seed, methods, split, limit)


def score_methods(model, datamodule, seed: int, methods, split: str = "test",
                  limit: int | None = 128) -> dict:
    """:func:`compare_methods` for a classifier already restored (on its device)."""
    for method in methods:
        METHODS.get(method)
    batch = _split_batch(datamodule, split, limit, next(model.parameters()).device)
    targets = _probabilities(model, batch.x).argmax(axis=1)
    results = {method: summarize(deletion_insertion(model, batch.x,
                                                    _maps(model, batch.x, method, targets),
                                                    targets))
               for method in methods}
    chance = deletion_insertion(model, batch.x, random_maps((len(targets), *batch.x.shape[2:]),
                                                            seed), targets)
    return {"split": split, "target": "predicted", "n_images": len(targets),
            "steps": len(chance["fractions"]) - 1, "better": _BETTER, "methods": results,
            "random": summarize(chance)}


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """An image with a heatmap blended on top, colours from matplotlib's ``inferno``.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (H, W, 3), uint8
    heat : ndarray of shape (H, W)
        Non-negative relevance; scaled by its maximum, so each overlay uses the whole colour
        range (an all-zero map stays black in the colour layer).
    alpha : float, default=0.5
        Weight of the heatmap's colour.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
    """
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
    peak = float(heat.max())
    colours = colormaps["inferno"](heat / peak if peak > 0 else np.zeros_like(heat))[..., :3]
    return np.round((1 - alpha) * rgb + alpha * 255 * colours).astype(np.uint8)


def _as_run(run) -> RunDirectory:
    return run if isinstance(run, RunDirectory) else RunDirectory(run)


def _restore(run: RunDirectory):
    """The run's config, its data module (set up) and its best classifier."""
    config = run.load_config()
    datamodule = build_datamodule(config)
    model = load_classifier(config, run, datamodule.input_shape[0])
    return config, datamodule, model.to(inference_device(config))


def _split_batch(datamodule, split: str, limit: int | None, device) -> _Batch:
    if split not in SPLITS:
        raise ConfigError(f"unknown split '{split}'; choose from: {', '.join(SPLITS)}")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1, got {limit}")
    x, y, index = (tensor[:limit] for tensor in datamodule.splits[split].tensors[:3])
    return _Batch(x.to(device), datamodule.display_images(split)[:limit], [str(int(i)) for i in index],
                  y.numpy(), {"kind": "split", "split": split})


def _image_batch(datamodule, path: Path, device) -> _Batch:
    """Image files as the CNN reads them, with display copies from the same pixels."""
    if not path.exists():
        raise ConfigError(f"{path}: no such image file or folder")
    files = [path] if path.is_file() else list_images(path)
    ids = [path.stem] if path.is_file() else \
        [f.relative_to(path).with_suffix("").as_posix() for f in files]
    pixels, images = read_images(datamodule, files)
    low, high = datamodule.value_range
    display = np.round((pixels - low) / (high - low) * 255).astype(np.uint8)
    display = display[:, 0] if display.shape[1] == 1 else display.transpose(0, 2, 3, 1)
    return _Batch(images.to(device), display, ids, None, {"kind": "images", "path": str(path)})


def _file_name(image_id: str) -> str:
    """The overlay's file name: the data set row, or the image's path with '/' as '_'."""
    return image_id.replace("/", "_") + ".png"


@torch.no_grad()
@torch.no_grad()
def _probabilities(model, x: torch.Tensor) -> np.ndarray:
    return torch.cat([torch.softmax(model(x[i:i + _PREDICT_BATCH]), dim=1)
                      for i in range(0, len(x), _PREDICT_BATCH)]).cpu().numpy()


def _targets(target, predicted: np.ndarray, labels, class_names) -> np.ndarray:
    """The class explained for each image, from ``explain_run``'s ``target``."""
    name = str(target)
    if name == "predicted":
        return predicted
    if name == "true":
        if labels is None:
            raise ConfigError("target 'true' needs a split of the run's data: image files have "
                              "no label; use 'predicted' or a class name")
        return labels
    if name in class_names:
        return np.full(len(predicted), list(class_names).index(name))
    raise ConfigError(f"unknown target '{name}'; choose from: predicted, true, or a class name: "
                      f"{', '.join(class_names)}")


def _image_rows(batch: _Batch, proba, targets, explained: dict, chance: dict,
                names) -> list[dict]:
    """``scores.json``'s entry per image: answers, target and both pairs of AUCs."""
    return [{"id": image_id, "file": _file_name(image_id),
             "predicted": names[p], "probability": float(proba[i, p]), "target": names[t],
             "true": None if batch.labels is None else names[batch.labels[i]],
             "deletion_auc": float(explained["deletion_auc"][i]),
             "insertion_auc": float(explained["insertion_auc"][i]),
             "random_deletion_auc": float(chance["deletion_auc"][i]),
             "random_insertion_auc": float(chance["insertion_auc"][i])}
            for i, (image_id, p, t) in enumerate(zip(batch.ids, proba.argmax(axis=1), targets))]


def _maps(model, x: torch.Tensor, method: str, targets: np.ndarray) -> np.ndarray:
    layer = cam_layer(model.backbone) if method == "gradcam" else None
    return attribute(model, x, method, targets, layer=layer)


def _previous_files(out: Path, method: str) -> list[str]:
    """Overlays of hybrid's earlier explanation by ``method`` in ``out``, replaced on writing.

    Raises when ``out`` is not empty and holds anything else, so nobody's files are lost.
    """
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return []
    try:
        scores = json.loads((out / "scores.json").read_text(encoding="utf-8"))
        if scores["format"] == FORMAT and scores["method"] == method:
            return [row["file"] for row in scores["images"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    raise RunDirectoryError(f"{out} is not empty and holds no {method} explanation written by "
                            "hybrid; choose another --out or remove it")


def _write(out: Path, scores: dict, display: np.ndarray, maps: np.ndarray,
           previous: list[str]) -> None:
    """Overlays, then the page, then ``scores.json`` (last: it marks the folder as hybrid's)."""
    cards = []
    for row, image, heat in zip(scores["images"], display, maps):
        png = thumbnail_png(overlay(image, heat), pixels=_OVERLAY_PIXELS)
        _io.write_bytes(out / row["file"], png)
        cards.append((row, thumbnail_png(image, pixels=_OVERLAY_PIXELS), png))
    _io.write_text(out / "index.html", _page(scores, cards))
    _io.write_json(out / "scores.json", scores)
    written = {row["file"] for row in scores["images"]}
    for name in set(previous) - written:
        if Path(name).name == name and name.endswith(".png"):  # never outside ``out``
            (out / name).unlink(missing_ok=True)


_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1em; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.grid { display: flex; flex-wrap: wrap; gap: 0.8em; }
figure { margin: 0; padding: 0.4em; border: 1px solid #ddd; font-size: 0.85em; }
figure img { image-rendering: pixelated; width: 128px; height: 128px; }
"""


def _page(scores: dict, cards) -> str:
    """``index.html``: the summary table and a grid of images with their overlays."""
    e = html.escape
    summary = "".join(
        f"<tr><td>{e(name)}</td><td>{result['deletion_auc']:.4f}</td>"
        f"<td>{result['insertion_auc']:.4f}</td></tr>"
        for name, result in [*scores["methods"].items(), ("random maps", scores["random"])])
    figures = "".join(_figure(row, image, heat) for row, image, heat in cards)
    source = scores["source"]
    where = f"the {source['split']} split" if source["kind"] == "split" else source["path"]
    title = f"{scores['method']} explanations"
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>\n"
            f"<h1>{e(title)}</h1>\n<p>Run {e(scores['run'])}, {scores['n_images']} images of "
            f"{e(where)}; target explained: {e(scores['target'])}.</p>\n"
            "<table><tr><th>maps</th><th>deletion AUC (lower is better)</th>"
            f"<th>insertion AUC (higher is better)</th></tr>{summary}</table>\n"
            f"<div class=\"grid\">{figures}</div>\n</body></html>\n")


def _figure(row: dict, image_png: bytes, overlay_png: bytes) -> str:
    e = html.escape
    caption = (f"<b>{e(row['id'])}</b><br>predicted {e(row['predicted'])} "
               f"({row['probability']:.2f})<br>explains {e(row['target'])}")
    if row["true"] is not None:
        caption += f"<br>true {e(row['true'])}"
    return (f"<figure><img src=\"{_data_uri(image_png)}\" alt=\"{e(row['id'])}\">"
            f"<img src=\"{_data_uri(overlay_png)}\" alt=\"heatmap of {e(row['id'])}\">"
            f"<figcaption>{caption}</figcaption></figure>")


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
