"""Stage 4, evidence: prototypes and attributions of every feature the surrogates use.

For each feature a distilled surrogate reads (a rule's condition, a non-zero weight), the
``evidence.top_k`` training images on which it is highest and the ``evidence.method``
attribution of that feature on them, drawn as one strip per feature. The report shows the
strips next to the rules. Writes ``RUN/evidence/<feature>.png`` and, last,
``RUN/evidence/evidence.json``, the stage's marker.
"""

import logging
import re
import time

import numpy as np

from .. import _io
from ..bottleneck import FeatureOutputs
from ..errors import RunDirectoryError
from ..evidence import evidence_strip_png, feature_evidence, used_features
from ..features import FeatureTable
from ..jsonio import load_surrogate
from ..rundir import RunDirectory
from ._components import build_datamodule, inference_device, load_classifier
from .explain import score_methods

__all__ = ["evidence"]

log = logging.getLogger("hybrid")

# A feature name that is safe as a file name as it is (``dim_37``); others are named by column.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def evidence(run: RunDirectory) -> dict:
    """Write the evidence of every feature the run's surrogates use; return the summary.

    Returns
    -------
    dict
        The content of ``evidence.json``: ``method``, ``top_k`` and ``features``, feature name
        -> ``feature`` (column), ``prototypes`` (sample ids, highest activation first),
        ``activations`` and ``image`` (the strip's path, relative to the run).
    """
    config = run.load_config()
    run.require("distill")
    settings = config.evidence
    summary = {"method": settings.method, "top_k": settings.top_k, "features": {}}
    datamodule = build_datamodule(config)
    classifier = load_classifier(config, run, datamodule.input_shape[0])
    classifier.to(inference_device(config))
    _score_attributions(run, classifier, datamodule, config)
    if config.extract.features == "discovered_concepts":
        # NMF concepts are not outputs of the network an attribution could differentiate.
        log.info("evidence: skipped: features are %s", config.extract.features)
        run.mark_done("evidence", summary)
        return summary
    start = time.perf_counter()
    train = FeatureTable.load(run.features("train"))
    features = used_features(load_surrogate(run.surrogate(key)) for key in config.surrogates)
    device = next(classifier.parameters()).device
    found = feature_evidence(FeatureOutputs(classifier, config.extract.features),
                             _train_images(datamodule, train).to(device),
                             train.X, features, settings.top_k, settings.method)
    display = datamodule.display_images("train")
    for j, item in found.items():
        name = train.feature_names[j]
        path = run.evidence_dir / f"{_file_stem(name, j)}.png"
        _io.write_bytes(path, evidence_strip_png(display[item["rows"]], item["maps"]))
        summary["features"][name] = {"feature": j, "prototypes": train.index[item["rows"]].tolist(),
                                     "activations": item["activations"].tolist(),
                                     "image": path.relative_to(run.root).as_posix()}
    run.mark_done("evidence", summary)
    log.info("evidence: %d features x %d prototypes (%s) in %.2fs", len(found), settings.top_k,
             settings.method, time.perf_counter() - start)
    return summary


def _score_attributions(run: RunDirectory, classifier, datamodule, config) -> None:
    """Deletion/insertion AUCs of each attribution method vs random maps, for the report."""
    path = run.evidence_dir / "faithfulness.json"
    path.unlink(missing_ok=True)
    settings = config.evidence
    if not settings.faithfulness_images:
        return
    scores = score_methods(classifier, datamodule, config.seed, tuple(settings.methods),
                           split="test", limit=settings.faithfulness_images)
    _io.write_json(path, scores)
    log.info("evidence: deletion AUC (lower is better) %s; random %.3f",
             ", ".join(f"{name} {m['deletion_auc']:.3f}" for name, m in scores["methods"].items()),
             scores["random"]["deletion_auc"])


def _train_images(datamodule, train: FeatureTable):
    """The train split's normalized images, checked to be in the feature table's row order.

    Prototypes are rows of the table; the images must be the same rows, or the evidence
    would show other samples than the ones it ranks.
    """
    images, _, index = datamodule.splits["train"].tensors[:3]
    if not np.array_equal(index.numpy(), train.index):
        raise RunDirectoryError(
            "evidence: the train split's samples differ from features/train (has the data "
            "changed since extraction?); rerun `hybrid extract RUN --overwrite`")
    return images


def _file_stem(name: str, column: int) -> str:
    """``name`` when it is a safe file name, else ``feature_<column>``."""
    return name if _SAFE_NAME.fullmatch(name) else f"feature_{column}"
