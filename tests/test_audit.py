"""The audit and the hybrid predictor on hand-made tables with known answers."""

import numpy as np
import pytest

from hybrid.audit import audit_features, calibration, wilson_interval
from hybrid.deferral import HybridPredictor, coverage_curve, rule_fidelity
from hybrid.features import FeatureTable
from hybrid.ir import LinearModel, Predicate, Rule, RuleListModel

NAMES = {"feature_names": ("a",), "classes": (0, 1), "class_names": ("no", "yes")}
# IF a > 0 THEN yes ELSE no
RULES = RuleListModel(**NAMES, rules=(Rule((Predicate(0, ">", 0.0),), 1, (0.0, 1.0), 5, 1.0),
                                      Rule((), 0, (1.0, 0.0), 5, 1.0)))


def _table(a, teacher, y=None, confidence=0.9):
    a = np.asarray(a, dtype=np.float32)
    teacher = np.asarray(teacher)
    proba = np.where(np.eye(2)[teacher] == 1, confidence, 1 - confidence).astype(np.float32)
    return FeatureTable(X=a[:, None], teacher=teacher, proba=proba,
                        y=np.asarray(teacher if y is None else y), index=np.arange(len(a)) + 100,
                        feature_names=("a",), class_names=("no", "yes"))


def test_wilson_interval_matches_the_formula():
    low, high = wilson_interval(8, 10)
    z = 1.959963984540054
    p, n = 0.8, 10
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert low == pytest.approx(centre - half) and high == pytest.approx(centre + half)
    assert wilson_interval(0, 0) is None


def test_audit_breaks_fidelity_down_and_lists_disagreements():
    # rows 0-3 yes (a > 0), rows 4-7 no; the CNN disagrees with the rules on rows 3 and 7
    table = _table([1, 2, 3, 4, -1, -2, 0, -3], [1, 1, 1, 0, 0, 0, 0, 1])
    audit = audit_features(RULES, table, reference_fidelity=1.0, min_fidelity=0.5)
    assert audit["fidelity"] == 0.75 and audit["n"] == 8
    assert audit["change"] == pytest.approx(-0.25)
    assert audit["fidelity_ci"] == pytest.approx(wilson_interval(6, 8))
    assert audit["passed"] is (audit["fidelity_ci"][0] >= 0.5)
    per_rule = {row["rule"]: row for row in audit["per_rule"]}
    assert per_rule[0]["n"] == 4 and per_rule[0]["fidelity"] == 0.75
    assert per_rule[0]["text"] == "IF a > 0 THEN yes" and per_rule[1]["text"] == "IF TRUE THEN no"
    per_class = {row["name"]: row for row in audit["per_class"]}
    assert per_class["yes"]["n"] == 4 and per_class["yes"]["fidelity"] == 0.75
    assert [d["index"] for d in audit["disagreements"]] == [103, 107]
    assert audit["disagreements"][0] == {"index": 103, "teacher": "no", "surrogate": "yes",
                                         "true": "no", "confidence": pytest.approx(0.9),
                                         "rule": "IF a > 0 THEN yes"}


def test_gate_fails_when_the_lower_bound_is_under_the_threshold():
    table = _table([1, 2, 3, 4, -1, -2, 0, -3], [1, 1, 1, 0, 0, 0, 0, 1])
    assert audit_features(RULES, table, min_fidelity=0.6)["passed"] is False
    assert audit_features(RULES, table)["passed"] is None


def test_confidence_bands_split_by_the_cnn_top_probability():
    table = _table([1, -1, 1, -1], [1, 0, 0, 0], confidence=0.95)
    table.proba[:2] = [[0.3, 0.7], [0.6, 0.4]]
    bands = {(b["lower"], b["upper"]): b for b in audit_features(RULES, table)["by_confidence"]}
    assert bands[(0.5, 0.8)]["n"] == 2 and bands[(0.5, 0.8)]["fidelity"] == 1.0
    assert bands[(0.9, 0.99)]["n"] == 2 and bands[(0.9, 0.99)]["fidelity"] == 0.5


def test_calibration_error_of_a_known_case():
    proba = np.array([[0.9, 0.1]] * 10 + [[0.3, 0.7]] * 10)
    y = np.array([0] * 9 + [1] + [1] * 5 + [0] * 5)
    result = calibration(proba, y, n_bins=10)
    # bin (0.8, 0.9]: confidence 0.9, accuracy 0.9; bin (0.6, 0.7]: confidence 0.7, accuracy 0.5
    assert result["ece"] == pytest.approx(0.5 * 0.0 + 0.5 * 0.2)
    assert sum(b["n"] for b in result["bins"]) == 20


def test_linear_models_have_no_rules_to_audit_or_defer():
    linear = LinearModel(**NAMES, coef=np.array([[0.0], [1.0]]), intercept=np.zeros(2))
    table = _table([1, -1], [1, 0])
    audit = audit_features(linear, table)
    assert audit["per_rule"] == [] and audit["fidelity"] == 1.0
    with pytest.raises(ValueError, match="no rules"):
        HybridPredictor.from_validation(linear, table, 0.9)


def test_untrusted_rules_defer_to_the_cnn():
    val = _table([1, 2, 3, 4, -1, -2, -3, -4], [1, 1, 1, 1, 0, 1, 1, 0])  # rule 1: 2/4 faithful
    assert rule_fidelity(RULES, val) == {0: {"n": 4, "fidelity": 1.0}, 1: {"n": 4, "fidelity": 0.5}}
    predictor = HybridPredictor.from_validation(RULES, val, threshold=0.9)
    assert predictor.deferring_rules == [1]
    test = _table([5, -5, -6], [1, 1, 0])
    labels, deferred = predictor.predict(test.X, test.teacher)
    np.testing.assert_array_equal(deferred, [False, True, True])
    np.testing.assert_array_equal(labels, [1, 1, 0])
    curve = coverage_curve(RULES, val, test, [0.0, 0.9])
    assert curve[0]["coverage"] == 1.0 and curve[0]["rules_fidelity"] == pytest.approx(2 / 3)
    assert curve[1]["coverage"] == pytest.approx(1 / 3) and curve[1]["hybrid_fidelity"] == 1.0
