"""Concept analyses of a finished run: discovered concepts with galleries, and TCAV tests.

Both restore the run's best checkpoint and read the CNN's answers from its feature tables, so
they need the fit and extract stages. They write under ``RUN/concepts/`` unless told otherwise::

    RUN/concepts/concept_XX.png   each discovered concept's top training images, heat overlaid
    RUN/concepts/concepts.json    per concept: prototype sample ids, mean value per CNN class
    RUN/concepts/index.html       the galleries on one self-contained page
    RUN/concepts/tcav.json        TCAV scores of a user's concepts per class, with p-values
"""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path

import numpy as np
import torch

from .. import _io
from ..concepts import (ConceptDiscovery, class_gradients, layer_activations, prototype_gallery,
                        prototypes, table_images, tcav_statistics)
from ..errors import ConfigError, HybridError
from ..features import FeatureTable
from ..images import list_images
from ..rundir import RunDirectory
from ._components import build_datamodule, inference_device, load_classifier, read_images

__all__ = ["format_tcav", "discover", "tcav", "LAYERS"]

log = logging.getLogger("hybrid")

#: Layers a TCAV test reads, by name: the embedding (the backbone's output) or ``cam_layer``.
LAYERS = {"embedding": lambda backbone: backbone, "cam": lambda backbone: backbone.cam_layer}

# The TCAV paper's probes use tens of examples; below this a held-out accuracy means little.
_MIN_CONCEPT_IMAGES = 5
# Random training images drawn as counter-examples when the user gives no folder of them.
_RANDOM_IMAGES = 200


def discover(run: RunDirectory, n_concepts: int = 10, top_k: int = 8, out=None) -> Path:
    """Discover concepts in the last convolution on the train split and write their galleries.

    Parameters
    ----------
    run : RunDirectory
        Fitted and extracted.
    n_concepts : int, default=10
        At most the channels of the backbone's ``cam_layer``.
    top_k : int, default=8
        Prototype images per concept.
    out : str or Path, default=None
        Folder to write; None is ``RUN/concepts``.

    Returns
    -------
    Path
        The folder written: ``concept_XX.png``, ``concepts.json``, ``index.html``.
    """
    config = run.load_config()
    train = FeatureTable.load(run.features("train"))
    datamodule = build_datamodule(config)
    model = load_classifier(config, run, datamodule.input_shape[0]).to(inference_device(config))
    activations = layer_activations(model.backbone, None, table_images(datamodule, "train", train))
    discovery = ConceptDiscovery(n_concepts, random_state=config.seed).fit(activations)
    values = discovery.transform(activations)
    galleries = prototype_gallery(datamodule.display_images("train"), values,
                                  discovery.concept_maps(activations), top_k)
    summary = _discovery_summary(discovery, values, train, top_k)
    out = Path(out) if out is not None else run.root / "concepts"
    for name, png in galleries.items():
        _io.write_bytes(out / f"{name}.png", png)
    _io.write_json(out / "concepts.json", summary)
    _io.write_text(out / "index.html", _index_html(summary, galleries))
    log.info("concepts: %d concepts from %d training images -> %s", n_concepts, len(train), out)
    return out


def _discovery_summary(discovery: ConceptDiscovery, values: np.ndarray, table: FeatureTable,
                       top_k: int) -> dict:
    """What ``concepts.json`` holds: per concept its prototypes and mean value per CNN class."""
    by_class = {name: values[table.teacher == label] for label, name in enumerate(table.class_names)}
    concepts = {}
    for concept, (name, rows) in enumerate(zip(discovery.feature_names,
                                               prototypes(values, top_k))):
        concepts[name] = {
            "gallery": f"{name}.png",
            "prototypes": [int(table.index[row]) for row in rows],
            "mean_by_teacher_class": {cls: float(rows_of_class[:, concept].mean())
                                      if len(rows_of_class) else None
                                      for cls, rows_of_class in by_class.items()},
        }
    return {"layer": "cam_layer", "split": "train", "n_concepts": discovery.n_concepts,
            "random_state": discovery.random_state, "concepts": concepts}


def _index_html(summary: dict, galleries: dict[str, bytes]) -> str:
    """The galleries and per-class means as one HTML page with its images inlined."""
    sections = []
    for name, concept in summary["concepts"].items():
        means = concept["mean_by_teacher_class"]
        header = "".join(f"<th>{html.escape(cls)}</th>" for cls in means)
        cells = "".join(f"<td>{'' if mean is None else f'{mean:.3g}'}</td>" for mean in means.values())
        png = base64.b64encode(galleries[name]).decode("ascii")
        ids = ", ".join(str(index) for index in concept["prototypes"])
        sections.append(
            f"<section><h2>{html.escape(name)}</h2>"
            f'<img src="data:image/png;base64,{png}" alt="top images of {html.escape(name)}">'
            f"<p>Prototype sample ids: {ids}</p><table><tr><th>CNN class</th>{header}</tr>"
            f"<tr><th>mean value</th>{cells}</tr></table></section>")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', '<head><meta charset="utf-8">',
        "<title>Discovered concepts</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:1.5rem}img{image-rendering:pixelated}"
        "td,th{border:1px solid #d0d7de;padding:0.2rem 0.5rem}table{border-collapse:collapse}"
        "</style></head>",
        "<body><h1>Discovered concepts</h1>",
        f"<p>{summary['n_concepts']} concepts found by NMF in the last convolution block "
        "on the training images; each strip shows the images a concept fires on most, the "
        "concept's heatmap laid over them.</p>",
        *sections, "</body></html>", ""])


def tcav(run: RunDirectory, concepts_dir, random_dir=None, layer: str = "embedding",
         out=None) -> dict:
    """TCAV scores of the concepts in ``concepts_dir`` for each class the CNN predicts.

    Parameters
    ----------
    run : RunDirectory
        Fitted and extracted.
    concepts_dir : str or Path
        One sub-folder of images per concept, named by the concept, at least
        two concepts with at least 5 images each.
    random_dir : str or Path, default=None
        Counter-examples (at least 10 images); None draws 200 training images of the run.
    layer : {"embedding", "cam"}, default="embedding"
        Where CAVs live (see :data:`LAYERS`). At the embedding the head is linear, so all
        images of a class share one gradient and scores are 0 or 1; ``cam`` gives graded ones.
    out : str or Path, default=None
        Folder for ``tcav.json``; None is ``RUN/concepts``.

    Returns
    -------
    dict
        What ``tcav.json`` holds: the inputs, images per concept and class, and
        :func:`hybrid.concepts.tcav_statistics` (scores of the test images, grouped by the
        class the CNN predicts).
    """
    if layer not in LAYERS:
        raise ConfigError(f"unknown layer '{layer}'; choose from: {', '.join(LAYERS)}")
    config = run.load_config()
    test = FeatureTable.load(run.features("test"))
    datamodule = build_datamodule(config)
    model = load_classifier(config, run, datamodule.input_shape[0]).to(inference_device(config))
    module = LAYERS[layer](model.backbone)

    def flat_activations(images: torch.Tensor) -> np.ndarray:
        return layer_activations(model.backbone, module, images).flatten(1).numpy()

    folders = _concept_folders(Path(concepts_dir))
    concept_acts = {name: flat_activations(_normalized(datamodule, files))
                    for name, files in folders.items()}
    random_acts = flat_activations(_random_images(datamodule, random_dir, config.seed))
    images = table_images(datamodule, "test", test)
    gradients = {test.class_names[label]: class_gradients(
                     model, module, images[torch.from_numpy(test.teacher == label)], int(label))
                 for label in np.unique(test.teacher)}
    result = {"layer": layer, "concepts_dir": str(concepts_dir),
              "random_dir": None if random_dir is None else str(random_dir),
              "images": {"concepts": {name: len(files) for name, files in folders.items()},
                         "random": len(random_acts),
                         "classes": {cls: len(grads) for cls, grads in gradients.items()}},
              **tcav_statistics(concept_acts, random_acts, gradients, seed=config.seed)}
    out = Path(out) if out is not None else run.root / "concepts"
    _io.write_json(out / "tcav.json", result)
    log.info("tcav: %d concepts x %d classes at the %s layer -> %s", len(folders),
             len(gradients), layer, out / "tcav.json")
    return result


def _concept_folders(folder: Path) -> dict[str, list[Path]]:
    """Concept name -> its image files, from one sub-folder per concept."""
    if not folder.is_dir():
        raise HybridError(f"{folder}: not a folder")
    subfolders = sorted(sub for sub in folder.iterdir() if sub.is_dir())
    if len(subfolders) < 2:
        raise HybridError(f"{folder}: expected at least 2 sub-folders of images, one per "
                          f"concept; found {len(subfolders)}")
    files = {sub.name: list_images(sub) for sub in subfolders}
    for name, found in files.items():
        if len(found) < _MIN_CONCEPT_IMAGES:
            raise HybridError(f"{folder / name}: {len(found)} images; a concept needs at least "
                              f"{_MIN_CONCEPT_IMAGES}")
    return files


def _random_images(datamodule, random_dir, seed: int) -> torch.Tensor:
    """Counter-examples: the images of ``random_dir``, else random training images."""
    if random_dir is None:
        train = datamodule.splits["train"].tensors[0]
        rows = np.random.default_rng(seed).permutation(len(train))[:_RANDOM_IMAGES]
        return train[torch.from_numpy(np.sort(rows))]
    files = list_images(random_dir)
    if len(files) < 2 * _MIN_CONCEPT_IMAGES:  # halved per repetition: each half is one probe's
        raise HybridError(f"{random_dir}: {len(files)} images; random counter-examples need at "
                          f"least {2 * _MIN_CONCEPT_IMAGES}")
    return _normalized(datamodule, files)


def _normalized(datamodule, files: list[Path]) -> torch.Tensor:
    """Image files as the CNN reads them."""
    return read_images(datamodule, files)[1]


def format_tcav(result: dict, alpha: float = 0.05) -> str:
    """TCAV scores as a table: one row per concept (with its probe's accuracy), one column per
    class; ``*`` marks a score that differs from random CAVs' at level ``alpha``."""
    classes = list(result["random"]["classes"])
    width = max(len(name) for name in [*result["concepts"], "concept"]) + 2
    lines = [f"TCAV scores at the {result['layer']} layer ({result['repeats']} repetitions; "
             f"* p < {alpha} against random CAVs)",
             f"{'concept':<{width}}{'acc':>6}" + "".join(f"{c[:7]:>8}" for c in classes)]
    for name, concept in result["concepts"].items():
        cells = []
        for c in classes:
            score = concept["classes"][c]
            mark = "*" if score["p_value"] is not None and score["p_value"] < alpha else " "
            cells.append(f"{score['score']:>7.2f}{mark}")
        lines.append(f"{name:<{width}}{concept['accuracy']:>6.2f}" + "".join(cells))
    return "\n".join(lines)
