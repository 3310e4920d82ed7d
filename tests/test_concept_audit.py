"""Concept audits on feature tables: concept quality, suspect rules, rule lists compared."""

import numpy as np
import pytest

from hybrid.concept_audit import (binary_rules, concept_quality, rule_list_text, rules_match,
                                  suspect_rules)
from hybrid.features import FeatureTable
from hybrid.ir import Predicate, Rule, RuleListModel

CONCEPTS = ("shape=circle", "color=red", "color=blue", "size=large", "texture=striped")
CLASSES = ("A", "B", "C", "D")


def _rule(conditions, answer):
    proba = tuple(1.0 if k == answer else 0.0 for k in range(len(CLASSES)))
    return Rule(tuple(Predicate(CONCEPTS.index(name), ">" if present else "<=", threshold)
                      for name, present, threshold in conditions), answer, proba, 10, 1.0)


def _rule_list(*rules, default=3, features=CONCEPTS):
    default_rule = Rule((), default, tuple(float(k == default) for k in range(4)), 10, 1.0)
    return RuleListModel(feature_names=features, classes=tuple(range(4)), class_names=CLASSES,
                         rules=(*rules, default_rule))


RED_CIRCLE = _rule([("color=red", True, 0.5), ("shape=circle", True, 0.5)], 0)
LARGE_STRIPED = _rule([("size=large", True, 0.5), ("texture=striped", True, 0.5)], 1)
BLUE = _rule([("color=blue", True, 0.5)], 2)
GENERATING = _rule_list(RED_CIRCLE, LARGE_STRIPED, BLUE)


def test_binary_rules_read_thresholds_as_present_or_absent():
    model = _rule_list(_rule([("color=red", True, 0.03), ("size=large", False, 0.97)], 0))
    rules, default = binary_rules(model)
    assert rules == [(frozenset({("color=red", True), ("size=large", False)}), 0)]
    assert default == 3


def test_a_rule_bounding_a_concept_twice_is_not_binary():
    model = _rule_list(_rule([("color=red", True, 0.2), ("color=red", False, 0.8)], 0))
    with pytest.raises(ValueError, match="does not read as concepts"):
        binary_rules(model)
    assert not rules_match(model, GENERATING)


def test_same_rules_with_other_thresholds_match():
    recovered = _rule_list(_rule([("shape=circle", True, 0.41), ("color=red", True, 0.62)], 0),
                           _rule([("texture=striped", True, 0.1), ("size=large", True, 0.7)], 1),
                           _rule([("color=blue", True, 0.33)], 2))
    assert rules_match(recovered, GENERATING)
    assert rule_list_text(recovered) == (
        "IF color=red AND shape=circle THEN A ELSE IF size=large AND texture=striped THEN B "
        "ELSE IF color=blue THEN C ELSE D")


def test_independent_rules_may_swap_but_overlapping_ones_may_not():
    # red circles and blue things never overlap: their order is free.
    assert rules_match(_rule_list(BLUE, RED_CIRCLE, LARGE_STRIPED), _rule_list(RED_CIRCLE, BLUE,
                                                                               LARGE_STRIPED))
    # a large striped red circle is A only if the red-circle rule comes first.
    assert not rules_match(_rule_list(LARGE_STRIPED, RED_CIRCLE, BLUE), GENERATING)


def test_an_extra_or_missing_rule_or_other_default_does_not_match():
    extra = _rule([("color=blue", True, 0.5), ("size=large", False, 0.5)], 2)
    assert not rules_match(_rule_list(extra, RED_CIRCLE, LARGE_STRIPED, BLUE), GENERATING)
    assert not rules_match(_rule_list(RED_CIRCLE, LARGE_STRIPED), GENERATING)
    assert not rules_match(_rule_list(RED_CIRCLE, LARGE_STRIPED, BLUE, default=2), GENERATING)


def _table(X, teacher, y, concepts=None, names=CONCEPTS):
    n = len(X)
    proba = np.eye(4, dtype=np.float32)[teacher]
    return FeatureTable(X=np.asarray(X, np.float32), teacher=np.asarray(teacher), proba=proba,
                        y=np.asarray(y), index=np.arange(n), feature_names=names,
                        class_names=CLASSES,
                        concepts=None if concepts is None else np.asarray(concepts, np.float32),
                        concept_names=() if concepts is None else names)


def test_concept_quality_scores_each_predicted_concept_against_its_label():
    truth = np.array([[1, 0, 0, 1, 0], [0, 1, 0, 1, 1], [1, 1, 1, 0, 0], [0, 0, 1, 0, 1]])
    predicted = np.where(truth, 0.9, 0.1)
    predicted[0, 0] = 0.2  # one wrong call on shape=circle, still ranked above the absent ones
    quality = {row["concept"]: row for row in concept_quality(_table(predicted, [0] * 4, [0] * 4,
                                                                     truth))}
    assert quality["shape=circle"]["accuracy"] == 0.75
    assert quality["shape=circle"]["auroc"] == 1.0
    assert quality["color=red"]["accuracy"] == 1.0
    assert quality["color=red"]["prevalence"] == 0.5
    assert concept_quality(_table(predicted, [0] * 4, [0] * 4)) == []


def test_suspect_rules_flag_rules_reading_the_cue_with_the_accuracy_drop():
    names = CONCEPTS + ("mark=corner",)
    mark = _rule_list(Rule((Predicate(5, ">", 0.5),), 0, (1.0, 0, 0, 0), 42, 0.95),
                      features=names)
    val = _table(np.zeros((4, 6)), [0, 1, 2, 3], [0, 1, 2, 3], names=names)
    # Test: the CNN is right on both rows with the mark and on one of the two without it.
    truth = np.zeros((4, 6))
    truth[:2, 5] = 1
    test = _table(np.zeros((4, 6)), [0, 1, 2, 0], [0, 1, 2, 3], truth, names)
    (found,) = suspect_rules(mark, ["mark=corner", "not_a_feature"], val, test)
    assert found["concept"] == "mark=corner"
    assert [(r["support"], r["prediction"]) for r in found["rules"]] == [(42, "A")]
    assert found["val_accuracy"] == 1.0
    assert found["test_n_without"] == 2
    assert found["test_accuracy_without"] == 0.5
    assert found["accuracy_drop"] == 0.5
    assert suspect_rules(GENERATING, ["mark=corner"], val, test) == []


def test_equivalent_wordings_match():
    # one object has one size and one texture: NOT size=small is size=large
    concepts = CONCEPTS + ("size=small", "texture=solid", "color=green")
    red_circle = _rule([("color=red", True, 0.5), ("shape=circle", True, 0.5)], 0)
    not_small_not_solid = Rule((Predicate(5, "<=", 0.5), Predicate(6, "<=", 0.5)), 1,
                               (0, 1.0, 0, 0), 10, 1.0)
    # IF NOT color=blue THEN D ELSE C is IF color=blue THEN C ELSE D
    not_blue = Rule((Predicate(2, "<=", 0.5),), 3, (0, 0, 0, 1.0), 10, 1.0)
    reworded = _rule_list(red_circle, not_small_not_solid, not_blue, default=2,
                          features=concepts)
    generating = _rule_list(red_circle, LARGE_STRIPED, BLUE, features=concepts)
    assert rules_match(reworded, generating)
    assert rule_list_text(reworded, canonical=True) == rule_list_text(generating)
    assert rule_list_text(reworded) == ("IF color=red AND shape=circle THEN A ELSE IF NOT "
                                        "size=small AND NOT texture=solid THEN B ELSE IF NOT "
                                        "color=blue THEN D ELSE C")
    # a three-valued attribute has no single complement
    not_red = Rule((Predicate(1, "<=", 0.5),), 2, (0, 0, 1.0, 0), 10, 1.0)
    assert not rules_match(_rule_list(red_circle, LARGE_STRIPED, not_red, features=concepts),
                           generating)
