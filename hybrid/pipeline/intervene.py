"""``hybrid intervene``: set concepts of a concept bottleneck run and see the answers change.

A concept bottleneck model's head reads only the concepts, so a person can correct (or
deliberately break) a concept and watch what the model would then say: the test-time
intervention of Koh et al. (2020). Results go to ``RUN/interventions/<name>.json``.
"""

from __future__ import annotations

import re

import numpy as np

from .. import _io
from ..bottleneck import intervene
from ..errors import ConfigError, RunDirectoryError
from ..rundir import RunDirectory
from ._components import build_datamodule, inference_device, load_classifier

__all__ = ["intervene_run", "parse_interventions", "format_intervention"]

#: What ``--value`` accepts besides a number in [0, 1]: the concept's true label.
TRUE_VALUE = "true"


def parse_interventions(concepts, values, concept_names) -> dict[int, float | None]:
    """``--concept`` / ``--value`` pairs as ``{column: value}`` (None: the true value)."""
    if len(concepts) != len(values):
        raise ConfigError(f"--concept was given {len(concepts)} times but --value "
                          f"{len(values)} times; give one value per concept")
    if not concepts:
        raise ConfigError("name at least one --concept with its --value")
    chosen = {}
    for name, text in zip(concepts, values):
        if name not in concept_names:
            raise ConfigError(f"--concept {name!r}: not a concept of this run; valid: "
                              f"{', '.join(concept_names)}")
        chosen[list(concept_names).index(name)] = _value(name, text)
    return chosen


def _value(name: str, text: str) -> float | None:
    if str(text).lower() == TRUE_VALUE:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 1:
        raise ConfigError(f"--value {text!r} for {name!r}: expected a number in [0, 1] or "
                          f"'{TRUE_VALUE}' (the concept's true label)")
    return value


def intervene_run(run: RunDirectory, concepts, values, split: str = "test") -> dict:
    """Intervene on ``split`` of the run's data; write and return the summary.

    Returns
    -------
    dict
        ``interventions`` (concept -> value or "true"), ``split``, ``n``, ``accuracy_before``,
        ``accuracy_after``, ``changed`` (samples whose prediction changed), ``changes``
        (``{"from", "to", "n"}`` per pair of classes) and ``file`` (where it was written).
    """
    config = run.load_config()
    run.require("fit")
    if config.model.bottleneck is None:
        raise RunDirectoryError(f"{run.root}: this run has no concept bottleneck "
                                "(model.bottleneck); interventions need one")
    datamodule = build_datamodule(config)
    if split not in datamodule.splits:
        raise ConfigError(f"--split {split!r}: valid splits: {', '.join(datamodule.splits)}")
    model = load_classifier(config, run, datamodule.input_shape[0]).to(inference_device(config))
    chosen = parse_interventions(concepts, values, model.concept_names)
    result = intervene(model, datamodule.split_dataloader(split), chosen)
    summary = _summary(result, chosen, model.concept_names, datamodule.class_names, split)
    path = run.root / "interventions" / f"{_slug(summary['interventions'])}.json"
    _io.write_json(path, summary)
    summary["file"] = str(path)
    return summary


def _summary(result: dict, chosen: dict, concept_names, class_names, split: str) -> dict:
    before, after, y = result["before"], result["after"], result["y"]
    changed = before != after
    pairs, counts = np.unique(np.stack([before[changed], after[changed]]), axis=1,
                              return_counts=True)
    return {
        "interventions": {concept_names[c]: TRUE_VALUE if v is None else v
                          for c, v in chosen.items()},
        "split": split, "n": int(len(y)),
        "accuracy_before": float(np.mean(before == y)),
        "accuracy_after": float(np.mean(after == y)),
        "changed": int(changed.sum()),
        "changes": [{"from": class_names[a], "to": class_names[b], "n": int(n)}
                    for (a, b), n in zip(pairs.T.tolist(), counts.tolist())],
    }


def _slug(interventions: dict) -> str:
    """A file name for a set of interventions: ``color_red-1__size_large-true``."""
    text = "__".join(f"{name}-{value}" for name, value in interventions.items())
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120]


def format_intervention(summary: dict) -> str:
    """The summary as a few lines of text for the terminal."""
    settings = ", ".join(f"{name} = {value}" for name, value in summary["interventions"].items())
    lines = [f"intervention: {settings} on {summary['n']} {summary['split']} images",
             f"accuracy: {summary['accuracy_before']:.4f} -> {summary['accuracy_after']:.4f}",
             f"predictions changed: {summary['changed']}"]
    lines += [f"  {c['from']} -> {c['to']}: {c['n']}" for c in summary["changes"]]
    lines.append(f"written: {summary['file']}")
    return "\n".join(lines)
