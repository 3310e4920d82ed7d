"""Fidelity: how often a surrogate gives the CNN's answer, overall and per class, with intervals.

Fidelity is measured against the teacher's labels (what the CNN predicted), not the truth:
a surrogate explains the CNN only as far as it agrees with it. Accuracy against the true labels
is reported next to it.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import bootstrap

from .features import FeatureTable
from .ir import InterpretableModel

__all__ = ["fidelity", "bootstrap_interval", "per_class_fidelity", "evaluate_surrogate"]


def fidelity(teacher: np.ndarray, predicted: np.ndarray) -> float:
    """Share of rows where ``predicted`` equals ``teacher``."""
    return float(np.mean(np.asarray(teacher) == np.asarray(predicted))) if len(teacher) else float("nan")


def bootstrap_interval(hits: np.ndarray, confidence: float = 0.95, n_resamples: int = 1000,
                       seed: int = 0) -> list[float] | None:
    """Percentile bootstrap interval of the mean of 0/1 ``hits``; None under two rows.

    Seeded, so the same data give the same interval.
    """
    hits = np.asarray(hits, dtype=np.float64)
    if len(hits) < 2:
        return None
    result = bootstrap((hits,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                       method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    interval = result.confidence_interval
    return [float(interval.low), float(interval.high)]


def per_class_fidelity(teacher: np.ndarray, predicted: np.ndarray, class_names,
                       confidence: float = 0.95, n_resamples: int = 1000,
                       seed: int = 0) -> list[dict]:
    """One row per class the teacher predicts.

    ``fidelity`` is the share of the teacher's answers of that class the surrogate repeats;
    ``precision`` the share of the surrogate's answers of that class the teacher gave.
    """
    rows = []
    for label in np.unique(teacher):
        mine = teacher == label
        claimed = predicted == label
        rows.append({
            "label": int(label),
            "name": str(class_names[label]),
            "n_teacher": int(mine.sum()),
            "fidelity": fidelity(teacher[mine], predicted[mine]),
            "fidelity_ci": bootstrap_interval(predicted[mine] == label, confidence, n_resamples, seed),
            "n_surrogate": int(claimed.sum()),
            "precision": float(np.mean(teacher[claimed] == label)) if claimed.any() else None,
        })
    return rows


def evaluate_surrogate(model: InterpretableModel, tables: dict[str, FeatureTable],
                       confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0) -> dict:
    """Fidelity on every split, the test interval, test accuracy, complexity, per-class table."""
    predicted = {split: model.predict(table.X) for split, table in tables.items()}
    test = tables["test"]
    hits = predicted["test"] == test.teacher
    return {
        **{f"{split}_fidelity": fidelity(table.teacher, predicted[split])
           for split, table in tables.items()},
        "test_fidelity_ci": bootstrap_interval(hits, confidence, n_resamples, seed),
        "test_accuracy": float(np.mean(predicted["test"] == test.y)),
        "complexity": model.complexity,
        "complexity_unit": model.complexity_unit,
        "per_class": per_class_fidelity(test.teacher, predicted["test"], test.class_names,
                                        confidence, n_resamples, seed),
    }
