"""Fidelity audit of a surrogate on new data: where, how often and how confidently it agrees.

Given a feature table extracted from any data (another split, a folder of images, a shifted
data set), the audit breaks fidelity down overall, per class, per rule or leaf and per band of
the CNN's confidence, each with a Wilson interval; lists the disagreements; measures the CNN's
calibration; and compares with the fidelity measured at distillation. ``passed`` is the gate:
the interval's lower bound must reach ``min_fidelity``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

from .exporters._format import conditions_text, display_names
from .features import FeatureTable
from .ir import InterpretableModel

__all__ = ["audit_features", "wilson_interval", "calibration", "DEFAULT_BANDS"]

#: Edges of the CNN-confidence bands (max class probability).
DEFAULT_BANDS = (0.0, 0.5, 0.8, 0.9, 0.99, 1.0)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> list[float] | None:
    """Wilson score interval of a proportion; None when ``n`` is 0."""
    if n == 0:
        return None
    interval = binomtest(int(successes), int(n)).proportion_ci(confidence, method="wilson")
    return [float(interval.low), float(interval.high)]


def _rate(hits: np.ndarray, confidence: float) -> dict:
    n = int(hits.size)
    return {"n": n, "fidelity": float(hits.mean()) if n else None,
            "fidelity_ci": wilson_interval(int(hits.sum()), n, confidence)}


def calibration(proba: np.ndarray, y: np.ndarray, n_bins: int = 10) -> dict:
    """Expected calibration error of the CNN and its reliability diagram's bins.

    Bins split the max class probability into ``n_bins`` equal-width intervals; the ECE is the
    row-weighted mean gap between each bin's mean confidence and its accuracy.
    """
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        mine = which == b
        n = int(mine.sum())
        mean_conf = float(confidence[mine].mean()) if n else None
        accuracy = float(correct[mine].mean()) if n else None
        if n:
            ece += n / len(y) * abs(mean_conf - accuracy)
        bins.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "n": n,
                     "confidence": mean_conf, "accuracy": accuracy})
    return {"ece": float(ece) if len(y) else None, "n_bins": n_bins, "bins": bins}


def audit_features(model: InterpretableModel, table: FeatureTable,
                   reference_fidelity: float | None = None, min_fidelity: float | None = None,
                   confidence: float = 0.95, bands=DEFAULT_BANDS,
                   max_disagreements: int | None = None) -> dict:
    """Audit ``model`` against the CNN answers in ``table``.

    Parameters
    ----------
    model : InterpretableModel
        The surrogate.
    table : FeatureTable
        Features, CNN answers (``teacher``, ``proba``) and true labels of the audited data.
    reference_fidelity : float, default=None
        Fidelity measured at distillation (the run's test fidelity), for the change.
    min_fidelity : float, default=None
        The gate: ``passed`` is whether the lower bound of the fidelity interval reaches it.
    confidence : float, default=0.95
        Level of every interval.
    bands : sequence of float, default=DEFAULT_BANDS
        Edges of the CNN-confidence bands.
    max_disagreements : int, default=None
        Keep at most this many disagreements (all when None).

    Returns
    -------
    dict
        ``n``, ``fidelity``, ``fidelity_ci``, ``accuracy`` (surrogate vs truth),
        ``teacher_accuracy``, ``reference_fidelity``, ``change``, ``min_fidelity``, ``passed``,
        ``per_class``, ``per_rule``, ``by_confidence``, ``disagreements``, ``calibration``.
    """
    predicted = model.predict(table.X)
    agree = predicted == table.teacher
    overall = _rate(agree, confidence)
    lower = overall["fidelity_ci"][0] if overall["fidelity_ci"] else None
    fired = model.apply(table.X) if model.indexed_rules() else None
    return {
        **overall,
        "accuracy": float(np.mean(predicted == table.y)) if len(table) else None,
        "teacher_accuracy": table.teacher_accuracy if len(table) else None,
        "reference_fidelity": reference_fidelity,
        "change": (overall["fidelity"] - reference_fidelity
                   if reference_fidelity is not None and overall["fidelity"] is not None else None),
        "min_fidelity": min_fidelity,
        "passed": None if min_fidelity is None else bool(lower is not None and lower >= min_fidelity),
        "per_class": _per_class(table, agree, confidence),
        "per_rule": _per_rule(model, fired, agree, confidence),
        "by_confidence": _by_confidence(table.proba.max(axis=1), agree, bands, confidence),
        "disagreements": _disagreements(model, table, predicted, fired, max_disagreements),
        "calibration": calibration(table.proba, table.y),
    }


def _per_class(table: FeatureTable, agree: np.ndarray, confidence: float) -> list[dict]:
    return [{"label": int(label), "name": table.class_names[label],
             **_rate(agree[table.teacher == label], confidence)}
            for label in np.unique(table.teacher)]


def _rule_texts(model: InterpretableModel) -> dict[int, str]:
    """``IF conditions THEN class`` per rule id, names made single-line."""
    features, classes = display_names(model)
    return {rule_id: f"IF {conditions_text(rule.conditions, features)} THEN {classes[rule.prediction]}"
            for rule_id, rule in model.indexed_rules()}


def _per_rule(model, fired, agree, confidence) -> list[dict]:
    if fired is None:
        return []
    return [{"rule": rule_id, "text": text, **_rate(agree[fired == rule_id], confidence)}
            for rule_id, text in _rule_texts(model).items()]


def _by_confidence(top: np.ndarray, agree: np.ndarray, bands, confidence: float) -> list[dict]:
    rows = []
    for low, high in zip(bands[:-1], bands[1:]):
        mine = (top > low) & (top <= high) if low > 0 else (top <= high)
        rows.append({"lower": float(low), "upper": float(high), **_rate(agree[mine], confidence)})
    return rows


def _disagreements(model, table, predicted, fired, limit) -> list[dict]:
    texts = _rule_texts(model)
    names = table.class_names
    rows = np.flatnonzero(predicted != table.teacher)[:limit]
    return [{"index": int(table.index[i]),
             "teacher": names[table.teacher[i]], "surrogate": names[predicted[i]],
             "true": names[table.y[i]], "confidence": float(table.proba[i].max()),
             "rule": texts.get(int(fired[i])) if fired is not None else None}
            for i in rows]
