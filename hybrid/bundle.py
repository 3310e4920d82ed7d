"""A deployable bundle: the trained CNN and one surrogate, run together on image files.

::

    DIR/manifest.json    how to feed the model and read its answers (written last: a bundle
                         without it is incomplete)
    DIR/model.pt2        backbone + head as a ``torch.export`` program (``model.pt``,
                         TorchScript, when a backbone does not export); it maps a batch of
                         normalized images to ``(embedding, class probabilities)``
    DIR/surrogate.json   the run's surrogate file, byte for byte (:mod:`hybrid.jsonio`)

Loading a bundle needs torch, numpy and Pillow: neither Lightning nor hybrid's training code.

Manifest (``bundle_version`` 1)::

    {"format": "hybrid-bundle", "bundle_version": 1,
     "model_file": "model.pt2", "model_format": "torch.export" | "torchscript",
     "input": {"channels", "height", "width", "value_range": [low, high], "mean", "std",
               "invert": false},
     "class_names": [...], "surrogate_file": "surrogate.json", "surrogate": NAME,
     "deferral": {"threshold": t | null, "deferring_rules": [rule ids],
                  "rule_fidelity": [{"rule_index", "n_val", "fidelity"}, ...]},
     "hybrid_version": "..."}

Images are read as the data set stores them: pixel 0..255 maps linearly onto ``value_range``
(:mod:`hybrid.images`), then ``invert`` flips the range (``low + high - value``), then
the training split's ``mean`` and ``std`` normalize it, exactly as the data module does. For
digits (0 = paper, 16 = ink) a file must hold light ink on black; set ``invert`` for dark ink
on white paper.

Deferral: a rule (a rule list's rule, or a tree's leaf by node id) whose agreement with the
CNN on the validation split falls below the threshold hands its rows to the CNN; a rule no
validation row reached defers too, having no evidence for it.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import __version__, _io
from .deferral import HybridPredictor, rule_fidelity
from .errors import HybridError, RunDirectoryError, SchemaError
from .exporters._format import (conditions_text, display_names, format_number,
                                format_probability, single_line)
from .features import FeatureTable
from .images import list_images, load_images
from .ir import InterpretableModel, LinearModel
from .jsonio import load_surrogate
from .rundir import RunDirectory

__all__ = ["FORMAT", "BUNDLE_VERSION", "Bundle", "write_bundle", "load_bundle", "preprocess",
           "format_predictions"]

log = logging.getLogger("hybrid")

FORMAT = "hybrid-bundle"
BUNDLE_VERSION = 1

MANIFEST_FILE = "manifest.json"
SURROGATE_FILE = "surrogate.json"
MODEL_FILES = {"torch.export": "model.pt2", "torchscript": "model.pt"}

#: Terms shown for a linear surrogate's answer: its largest contributions.
_LINEAR_TERMS = 3


# -- writing -----------------------------------------------------------------------------------
def write_bundle(run: RunDirectory, out_dir, surrogate: str = "rule_list",
                 defer_below: float | None = None, overwrite: bool = False,
                 invert: bool = False) -> Path:
    """Write the run's CNN and one surrogate as a bundle that runs without the training code.

    Parameters
    ----------
    run : RunDirectory
        A run whose fit, extract and distill stages are done.
    out_dir : str or Path
        The bundle directory; created when missing.
    surrogate : str, default="rule_list"
        Name of the surrogate file under ``RUN/surrogates/``.
    defer_below : float, default=None
        Rules whose validation fidelity is below it answer with the CNN instead; None never
        defers. Only surrogates made of rules (rule list, tree) can defer.
    overwrite : bool, default=False
        Replace the bundle files in a non-empty ``out_dir``; other files there stay.
    invert : bool, default=False
        Images come with the value range flipped (dark ink on white for digits).

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    RunDirectoryError
        When ``out_dir`` is not empty and ``overwrite`` is not set, or a stage has not run.
    HybridError
        When the surrogate is missing, or ``defer_below`` is given for a linear surrogate.
    """
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, overwrite)
    model = _run_surrogate(run, surrogate)
    if defer_below is not None and not model.indexed_rules():
        raise HybridError(f"surrogate '{surrogate}' is a {model.kind} model without rules, so "
                          "it cannot defer; leave the deferral threshold out")
    deferral = _deferral(model, FeatureTable.load(run.features("val")), defer_below)
    datamodule, classifier = _trained_classifier(run)
    for name in (MANIFEST_FILE, SURROGATE_FILE, *MODEL_FILES.values()):
        (out_dir / name).unlink(missing_ok=True)
    model_format = _save_network(_Network(classifier), datamodule.input_shape, out_dir)
    _io.write_bytes(out_dir / SURROGATE_FILE, run.surrogate(surrogate).read_bytes())
    _io.write_json(out_dir / MANIFEST_FILE, {
        "format": FORMAT, "bundle_version": BUNDLE_VERSION,
        "model_file": MODEL_FILES[model_format], "model_format": model_format,
        "input": _input_spec(datamodule, invert), "class_names": list(datamodule.class_names),
        "surrogate_file": SURROGATE_FILE, "surrogate": surrogate, "deferral": deferral,
        "hybrid_version": __version__,
    })
    log.info("bundle: %s (%s) with surrogate %s in %s", MODEL_FILES[model_format],
             model_format, surrogate, out_dir)
    return out_dir


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirectoryError(f"{out_dir} is a file, not a bundle directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise RunDirectoryError(f"{out_dir} exists and is not empty; choose another bundle "
                                "directory or pass --overwrite")


def _run_surrogate(run: RunDirectory, name: str) -> InterpretableModel:
    path = run.surrogate(name)
    if not path.is_file():
        found = sorted(p.stem for p in run.surrogates_dir.glob("*.json") if p.stem != "distill")
        raise RunDirectoryError(f"{path}: no surrogate '{name}' in this run; choose from: "
                                f"{', '.join(found) or 'none (run `hybrid distill` first)'}")
    return load_surrogate(path)


def _deferral(model: InterpretableModel, val: FeatureTable, threshold: float | None) -> dict:
    """The manifest's ``deferral`` section: each rule's validation fidelity, who defers."""
    stats = rule_fidelity(model, val)
    fidelity = {rule_id: s["fidelity"] for rule_id, s in stats.items()}
    deferring = ([] if threshold is None
                 else HybridPredictor(model, fidelity, threshold).deferring_rules)
    return {"threshold": threshold, "deferring_rules": deferring,
            "rule_fidelity": [{"rule_index": rule_id, "n_val": s["n"], "fidelity": s["fidelity"]}
                              for rule_id, s in stats.items()]}


def _trained_classifier(run: RunDirectory):
    """``(data module, classifier)`` of the run's best checkpoint.

    Imported here, not at the top: loading a bundle must not import Lightning.
    """
    from .pipeline._components import build_datamodule, load_classifier

    config = run.load_config()
    datamodule = build_datamodule(config)
    return datamodule, load_classifier(config, run, datamodule.input_shape[0])


def _input_spec(datamodule, invert: bool) -> dict:
    channels, height, width = datamodule.input_shape
    mean, std = datamodule.normalization
    return {"channels": channels, "height": height, "width": width,
            "value_range": list(datamodule.value_range), "mean": mean, "std": std,
            "invert": invert}


class _Network(nn.Module):
    """Backbone and head as one module returning ``(embedding, class probabilities)``."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.backbone, self.head = classifier.backbone, classifier.head

    def forward(self, x):
        embedding = self.backbone(x)
        return embedding, torch.softmax(self.head(embedding), dim=1)


def _save_network(network: nn.Module, input_shape, out_dir: Path) -> str:
    """Save ``network`` under ``out_dir`` and return its format: torch.export, else TorchScript."""
    network.eval()
    # Batch 2, not 1: torch.export specializes a dimension of size 1 to a constant.
    example = torch.zeros(2, *input_shape)
    try:
        program = torch.export.export(network, (example,),
                                      dynamic_shapes=({0: torch.export.Dim("batch")},))
    except Exception as exc:  # noqa: BLE001 -- every export failure has one remedy
        log.warning("bundle: torch.export failed (%s: %s); saving TorchScript instead",
                    type(exc).__name__, str(exc).partition("\n")[0])
        return _save_torchscript(network, example, out_dir / MODEL_FILES["torchscript"])
    with _io.atomic_path(out_dir / MODEL_FILES["torch.export"]) as tmp, open(tmp, "wb") as fh:
        torch.export.save(program, fh)  # a buffer: a path must end in .pt2, the temporary doesn't
    return "torch.export"


def _save_torchscript(network: nn.Module, example: torch.Tensor, path: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the fallback is chosen knowingly
        traced = torch.jit.trace(network, example)
        with _io.atomic_path(path) as tmp:
            torch.jit.save(traced, str(tmp))
    return "torchscript"


# -- loading and predicting --------------------------------------------------------------------
def load_bundle(directory) -> Bundle:
    """Read a bundle written by :func:`write_bundle`.

    Raises
    ------
    SchemaError
        When ``directory`` holds no bundle manifest, or one from a newer bundle version.
    """
    root = Path(directory)
    manifest = _read_manifest(root)
    network = _load_network(root / manifest["model_file"], manifest["model_format"])
    return Bundle(manifest, network, load_surrogate(root / manifest["surrogate_file"]))


def _read_manifest(root: Path) -> dict:
    path = root / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        raise SchemaError(f"{root}: not a hybrid bundle (no readable {MANIFEST_FILE}); write one "
                          "with `hybrid export RUN --bundle DIR`") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SchemaError(f"{path}: not a hybrid bundle manifest "
                          f"(expected \"format\": \"{FORMAT}\")")
    version = manifest.get("bundle_version")
    if not isinstance(version, int) or version > BUNDLE_VERSION:
        raise SchemaError(f"{path}: bundle_version {version!r} is newer than this hybrid reads "
                          f"({BUNDLE_VERSION}); upgrade hybrid to load it")
    return manifest


def _load_network(path: Path, model_format: str):
    if model_format == "torch.export":
        return torch.export.load(path).module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path)).eval()


def preprocess(images, manifest: dict) -> np.ndarray:
    """Raw images (in the manifest's value range) as the tensor the CNN was trained on.

    Parameters
    ----------
    images : array-like of shape (n_images, channels, height, width)
        Values in ``manifest["input"]["value_range"]``, e.g. ``load_digits().images`` for
        digits, or the output of :func:`hybrid.images.load_images`.
    manifest : dict
        A bundle manifest.

    Returns
    -------
    ndarray of the same shape, float32
        Inverted when the manifest says so, then normalized by the training split's mean and
        standard deviation; float32 throughout, as the data module computes it, so the same
        pixels give the same embedding bit for bit.
    """
    spec = manifest["input"]
    images = np.asarray(images, dtype=np.float32)
    expected = (spec["channels"], spec["height"], spec["width"])
    if images.ndim != 4 or images.shape[1:] != expected:
        raise ValueError(f"images have shape {images.shape}; the bundle expects "
                         f"(n_images, {', '.join(map(str, expected))})")
    if spec.get("invert", False):
        low, high = spec["value_range"]
        images = np.float32(low + high) - images
    return (images - np.float32(spec["mean"])) / np.float32(spec["std"])


class Bundle:
    """A loaded bundle: the CNN program, the surrogate and the manifest that ties them.

    Parameters
    ----------
    manifest : dict
    network : callable
        Normalized images (torch tensor) -> ``(embedding, class probabilities)``.
    surrogate : InterpretableModel
    """

    def __init__(self, manifest: dict, network, surrogate: InterpretableModel):
        self.manifest, self.network, self.surrogate = manifest, network, surrogate
        self.class_names = list(manifest["class_names"])
        self.deferring_rules = np.array(manifest["deferral"]["deferring_rules"], dtype=np.intp)
        self._rule_texts = _rule_texts(surrogate)

    def cnn(self, images) -> tuple[np.ndarray, np.ndarray]:
        """``(embedding, class probabilities)`` of raw images, shapes (n, d) and (n, k).

        ``images`` are as :func:`preprocess` takes them.
        """
        with torch.inference_mode():
            embedding, proba = self.network(torch.from_numpy(preprocess(images, self.manifest)))
        return embedding.numpy(), proba.numpy()

    def predict(self, images, files=None) -> list[dict]:
        """One answer per raw image (see :meth:`predict_images` for the keys).

        Parameters
        ----------
        images : array-like of shape (n_images, channels, height, width)
            Values in the manifest's value range.
        files : sequence of str or Path, default=None
            Reported as each answer's ``file``; None reports None.
        """
        embedding, proba = self.cnn(images)
        cnn_class = proba.argmax(axis=1)
        surrogate_class = self.surrogate.predict(embedding).astype(np.intp)
        fired, texts = self._explain(embedding)
        deferred = np.isin(fired, self.deferring_rules)
        final = np.where(deferred, cnn_class, surrogate_class)
        files = [None] * len(final) if files is None else [str(file) for file in files]
        return [{"file": files[i], "class": int(final[i]), "label": self.class_names[final[i]],
                 "cnn_class": int(cnn_class[i]), "surrogate_class": int(surrogate_class[i]),
                 "rule": texts[i], "rule_index": None if fired[i] < 0 else int(fired[i]),
                 "deferred": bool(deferred[i]), "confidence": float(proba[i].max())}
                for i in range(len(final))]

    def predict_images(self, paths, batch_size: int = 256) -> list[dict]:
        """One answer per image file, in ``paths`` order.

        Parameters
        ----------
        paths : sequence of str or Path, or a folder
            A folder stands for every image in it (:func:`hybrid.images.list_images`).
        batch_size : int, default=256
            Images decoded and run at once; bounds memory on large folders.

        Returns
        -------
        list of dict
            ``file``; ``class`` (index into ``class_names``) and its ``label``: the
            surrogate's answer unless its rule defers, then the CNN's; ``cnn_class``,
            ``surrogate_class``; ``rule``, the text of the rule or leaf that fired (for a
            linear surrogate its largest terms, None when it has none); ``rule_index`` (None
            for linear); ``deferred``; ``confidence``, the CNN's highest probability.

        Raises
        ------
        HybridError
            When a file is not a readable image, or a folder holds none, naming it.
        """
        paths = list_images(paths) if isinstance(paths, (str, Path)) else list(paths)
        spec = self.manifest["input"]
        rows = []
        for start in range(0, len(paths), batch_size):
            batch = paths[start:start + batch_size]
            images = load_images(batch, spec["channels"], spec["height"], spec["width"],
                                 spec["value_range"])
            rows += self.predict(images, files=batch)
        return rows

    def _explain(self, embedding: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
        """``(rule id per row, -1 for a linear surrogate; text of the answer per row)``."""
        if self._rule_texts:
            fired = self.surrogate.apply(embedding)
            return fired, [self._rule_texts[rule_id] for rule_id in fired]
        return np.full(len(embedding), -1), _linear_texts(self.surrogate, embedding)


def _rule_texts(model: InterpretableModel) -> dict[int, str]:
    """Per rule id, ``IF dim_3 > 0.41 THEN 4``, or ``ELSE 4`` for a rule without conditions."""
    features, classes = display_names(model)
    return {rule_id: (f"IF {conditions_text(rule.conditions, features)} THEN "
                      if rule.conditions else "ELSE ") + classes[rule.prediction]
            for rule_id, rule in model.indexed_rules()}


def _linear_texts(model: LinearModel, X: np.ndarray) -> list[str | None]:
    """Per row, the largest contributions ``weight * x`` to the answer's score, e.g.
    ``4: dim_3 +2.31, dim_7 -1.02``; None when that class has no weights.
    """
    features, classes = display_names(model)
    texts = []
    for x, k in zip(np.asarray(X, dtype=np.float64), model.predict_index(X)):
        contribution = model.coef[k] * x
        nonzero = np.flatnonzero(model.coef[k])
        top = nonzero[np.argsort(-np.abs(contribution[nonzero]), kind="stable")][:_LINEAR_TERMS]
        terms = ", ".join(f"{features[j]} {'-' if contribution[j] < 0 else '+'}"
                          f"{format_number(abs(contribution[j]))}" for j in top)
        texts.append(f"{classes[k]}: {terms}" if terms else None)
    return texts


# -- text --------------------------------------------------------------------------------------
_COLUMNS = ("file", "class", "from", "CNN p", "rule")


def format_predictions(rows: list[dict]) -> str:
    """Answers of :meth:`Bundle.predict_images` as an aligned table, one line per image.

    ``from`` says who answered: ``rules``; ``rules (CNN disagrees)`` when the CNN's class
    differs; ``CNN (rule defers)`` when the firing rule handed the image to the CNN. ``CNN p``
    is the CNN's highest class probability.

    Examples
    --------
    >>> print(format_predictions([{"file": "a.png", "label": "4", "class": 4, "cnn_class": 4,
    ...     "deferred": False, "confidence": 0.98, "rule": "IF dim_3 > 0.41 THEN 4"}]), end="")
    file   class  from   CNN p  rule
    a.png  4      rules  0.98   IF dim_3 > 0.41 THEN 4
    """
    table = [_COLUMNS] + [_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS) - 1)]
    return "".join("  ".join([*(cell.ljust(w) for cell, w in zip(line, widths)), line[-1]]).rstrip()
                   + "\n" for line in table)


def _cells(row: dict) -> tuple[str, ...]:
    return (single_line(row["file"] or "-"), single_line(row["label"]), _source(row),
            format_probability(row["confidence"]), row["rule"] or "-")


def _source(row: dict) -> str:
    if row["deferred"]:
        return "CNN (rule defers)"
    return "rules" if row["class"] == row["cnn_class"] else "rules (CNN disagrees)"
