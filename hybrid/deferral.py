"""The hybrid predictor: rules answer where they are faithful, the CNN everywhere else.

A rule (a rule list's rule or a tree's leaf) is trusted when its fidelity on the validation
split reaches a threshold; rows whose rule is not trusted are deferred to the CNN. Sweeping the
threshold trades coverage (the share of rows the rules answer) for fidelity on those rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .features import FeatureTable
from .ir import InterpretableModel

__all__ = ["rule_fidelity", "HybridPredictor", "coverage_curve", "deferral_summary"]


def rule_fidelity(model: InterpretableModel, table: FeatureTable) -> dict[int, dict]:
    """Per rule id: ``n`` rows of ``table`` it answers and its ``fidelity`` on them (None if 0)."""
    rules = model.indexed_rules()
    if not rules:
        return {}
    fired = model.apply(table.X)
    agree = model.predict(table.X) == table.teacher
    stats = {}
    for rule_id, _ in rules:
        mine = fired == rule_id
        n = int(mine.sum())
        stats[rule_id] = {"n": n, "fidelity": float(agree[mine].mean()) if n else None}
    return stats


@dataclass(frozen=True)
class HybridPredictor:
    """A rule model that defers its untrusted rules to the CNN.

    Parameters
    ----------
    model : InterpretableModel
        A rule list or tree (anything with rules and ``apply``).
    fidelity : dict of int to float or None
        Validation fidelity per rule id; None (a rule no validation row reached) never trusts.
    threshold : float
        Rules with fidelity below it defer.
    """

    model: InterpretableModel
    fidelity: dict
    threshold: float

    @classmethod
    def from_validation(cls, model: InterpretableModel, val: FeatureTable,
                        threshold: float) -> HybridPredictor:
        if not model.indexed_rules():
            raise ValueError(f"a {model.kind} model has no rules to defer")
        stats = rule_fidelity(model, val)
        return cls(model, {rule_id: s["fidelity"] for rule_id, s in stats.items()}, threshold)

    @property
    def deferring_rules(self) -> list[int]:
        return sorted(r for r, f in self.fidelity.items() if f is None or f < self.threshold)

    def predict(self, X, cnn_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, deferred)``: the rules' answer, or ``cnn_labels`` where the rule defers."""
        deferred = np.isin(self.model.apply(X), self.deferring_rules)
        return np.where(deferred, cnn_labels, self.model.predict(X)), deferred


def coverage_curve(model: InterpretableModel, val: FeatureTable, test: FeatureTable,
                   thresholds) -> list[dict]:
    """Coverage, rules' fidelity on covered rows and combined accuracy on ``test`` per threshold."""
    points = []
    for threshold in thresholds:
        points.append({"threshold": float(threshold),
                       **deferral_summary(HybridPredictor.from_validation(model, val, threshold), test)})
    return points


def deferral_summary(predictor: HybridPredictor, table: FeatureTable) -> dict:
    """How the hybrid predictor does on ``table``: coverage, fidelity, accuracy."""
    labels, deferred = predictor.predict(table.X, table.teacher)
    covered = ~deferred
    rules_agree = predictor.model.predict(table.X) == table.teacher
    return {
        "coverage": float(covered.mean()),
        "rules_fidelity": float(rules_agree[covered].mean()) if covered.any() else None,
        "hybrid_fidelity": float(np.mean(labels == table.teacher)),
        "hybrid_accuracy": float(np.mean(labels == table.y)),
    }
