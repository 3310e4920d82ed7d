"""Audits of named concepts, on feature tables alone (numpy and scikit-learn, no torch).

Two questions a concept bottleneck run must answer:

- *Are the concepts right?* :func:`concept_quality` scores the predicted concept probabilities
  (the feature columns named like the data set's concepts) against the true concept labels.
- *Do the rules lean on a concept that should not matter?* :func:`suspect_rules` lists every
  rule that reads a suspect concept (a watermark, a scanner tag, a corner mark) with its
  support, and measures what the cue is worth to the CNN: its accuracy on validation rows
  (drawn like training) against test rows without the cue.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from .exporters._format import conditions_text, display_names
from .features import FeatureTable

__all__ = ["concept_quality", "suspect_rules", "concept_present", "binary_rules", "canonical_rules",
           "rules_match",
           "rule_list_text"]

# A concept probability or label above this counts as "present".
_PRESENT = 0.5


def concept_present(table: FeatureTable, concept: str) -> np.ndarray:
    """Boolean per row: the concept is present, by its true label when the table has one,
    else by the predicted probability in its feature column."""
    if table.concepts is not None and concept in table.concept_names:
        return table.concepts[:, table.concept_names.index(concept)] > _PRESENT
    if concept in table.feature_names:
        return table.X[:, table.feature_names.index(concept)] > _PRESENT
    raise KeyError(concept)


def concept_quality(table: FeatureTable) -> list[dict]:
    """Accuracy and AUROC of each predicted concept against its true label.

    Returns one dict per concept that is both a feature column and a true label:
    ``concept``, ``accuracy`` (at probability 0.5), ``auroc`` (None when the split has a
    single true value), ``prevalence`` (share of rows where it is present). Empty when the
    table has no true concepts or no concept columns.
    """
    if table.concepts is None:
        return []
    rows = []
    for j, name in enumerate(table.concept_names):
        if name not in table.feature_names:
            continue
        truth = table.concepts[:, j] > _PRESENT
        score = table.X[:, table.feature_names.index(name)]
        auroc = roc_auc_score(truth, score) if 0 < truth.sum() < len(truth) else None
        rows.append({"concept": name, "accuracy": float(np.mean((score > _PRESENT) == truth)),
                     "auroc": None if auroc is None else float(auroc),
                     "prevalence": float(truth.mean())})
    return rows


def suspect_rules(model, suspects, val: FeatureTable, test: FeatureTable) -> list[dict]:
    """Rules of ``model`` that read a suspect concept, and what the cue is worth to the CNN.

    Parameters
    ----------
    model : InterpretableModel
        A rule list or tree (rules as :meth:`indexed_rules`); linear heads are scored by
        their non-zero weights on the concept instead.
    suspects : sequence of str
        Concept names that should not decide a class.
    val, test : FeatureTable
        The validation split (cue distributed as in training) and the test split (cue
        distributed as at deployment).

    Returns
    -------
    list of dict
        One per suspect concept found in ``model.feature_names``: ``concept``, ``rules``
        (``index``, ``conditions``, ``prediction``, ``support``, ``precision`` of each rule
        that reads it), ``val_accuracy``, ``test_accuracy_without`` (CNN accuracy on test rows
        where the concept is absent), ``test_n_without`` and ``accuracy_drop`` (the first
        minus the second).
    """
    features, classes = display_names(model)
    found = []
    for concept in suspects:
        if concept not in model.feature_names:
            continue
        column = model.feature_names.index(concept)
        rules = [{"index": rule_id, "conditions": conditions_text(rule.conditions, features),
                  "prediction": classes[rule.prediction], "support": rule.support,
                  "precision": rule.precision}
                 for rule_id, rule in model.indexed_rules()
                 if any(p.feature == column for p in rule.conditions)]
        if not rules and not _weighs(model, column):
            continue
        without = ~concept_present(test, concept)
        val_accuracy = val.teacher_accuracy
        test_accuracy = (float(np.mean(test.teacher[without] == test.y[without]))
                         if without.any() else None)
        found.append({"concept": concept, "rules": rules, "val_accuracy": val_accuracy,
                      "test_accuracy_without": test_accuracy,
                      "test_n_without": int(without.sum()),
                      "accuracy_drop": None if test_accuracy is None
                      else val_accuracy - test_accuracy})
    return found


def _weighs(model, column: int) -> bool:
    """A linear model with a non-zero weight on ``column``."""
    coef = getattr(model, "coef", None)
    return coef is not None and bool(np.any(np.asarray(coef)[:, column] != 0))


def binary_rules(model) -> tuple[list[tuple[frozenset, int]], int]:
    """A rule list over concept probabilities as ``([(conditions, class index)], default)``.

    Each condition is ``(concept name, present)``: ``concept > t`` reads "present" and
    ``concept <= t`` "absent" for any threshold ``t`` in [0, 1), as concept probabilities
    are. Raises ValueError for a rule that bounds one concept on both sides or a threshold
    outside [0, 1): such a rule does not read as a statement about concepts.
    """
    *rules, default = model.rules
    out = []
    for rule in rules:
        conditions = {}
        for p in rule.conditions:
            name = model.feature_names[p.feature]
            if not 0 <= p.threshold < 1 or conditions.get(name, p.op == ">") != (p.op == ">"):
                raise ValueError(f"rule {rule} does not read as concepts present or absent")
            conditions[name] = p.op == ">"
        out.append((frozenset(conditions.items()), rule.prediction))
    return out, default.prediction


def canonical_rules(model) -> tuple[list[tuple[frozenset, int]], int]:
    """:func:`binary_rules` with equivalent wordings made one.

    Concepts named ``attribute=value`` describe one object, which has exactly one value per
    attribute, so for a two-valued attribute ``NOT size=small`` is ``size=large``; and a last
    rule with one negated condition, ``IF NOT c THEN X ELSE Y``, is ``IF c THEN Y ELSE X``.
    """
    rules, default = binary_rules(model)
    values = {}
    for name in model.feature_names:
        attribute, sep, value = name.partition("=")
        if sep:
            values.setdefault(attribute, []).append(name)
    canonical = []
    for conditions, answer in rules:
        canonical.append((frozenset(_positive(name, present, values)
                                    for name, present in conditions), answer))
    if canonical and len(canonical[-1][0]) == 1:
        ((name, present),) = canonical[-1][0]
        if not present:
            canonical[-1] = (frozenset({(name, True)}), default)
            default = rules[-1][1]
    return canonical, default


def _positive(name: str, present: bool, values: dict) -> tuple[str, bool]:
    """``NOT a=v`` as ``a=w`` when ``v`` and ``w`` are the attribute's only values."""
    group = values.get(name.partition("=")[0], [])
    if present or len(group) != 2 or name not in group:
        return name, present
    return next(other for other in group if other != name), True


def rules_match(recovered, reference) -> bool:
    """Whether two rule lists over concepts say the same thing, up to the order of
    independent rules.

    Both must have the same ``(conditions -> class)`` rules and the same default, once each
    is in :func:`canonical_rules` form, and every two rules of ``reference`` that can fire on
    one image (compatible conditions) and answer differently must come in the same order in
    ``recovered``. Concepts named ``attribute=value`` with different values of one attribute
    count as exclusive (an object has one colour). Class indices are compared, so both models
    must share their classes.
    """
    try:
        found, found_default = canonical_rules(recovered)
    except ValueError:
        return False
    expected, expected_default = canonical_rules(reference)
    if found_default != expected_default or sorted(found, key=repr) != sorted(expected, key=repr):
        return False
    position = {rule: i for i, rule in enumerate(found)}
    for i, first in enumerate(expected):
        for second in expected[i + 1:]:
            if first[1] != second[1] and _compatible(first[0], second[0]) \
                    and position[first] > position[second]:
                return False
    return True


def _compatible(a: frozenset, b: frozenset) -> bool:
    """Two conjunctions of concept conditions that one image can satisfy together."""
    wanted = dict(a)
    for name, present in b:
        if wanted.setdefault(name, present) != present:
            return False
    chosen = {}
    for name, present in wanted.items():
        attribute, sep, value = name.partition("=")
        if present and sep and chosen.setdefault(attribute, value) != value:
            return False
    return True


def rule_list_text(model, canonical: bool = False) -> str:
    """A rule list over concepts in the generating rule's grammar:
    ``IF color=red AND shape=circle THEN A ELSE IF ... ELSE D``; with ``canonical``, in
    :func:`canonical_rules` form."""
    _, classes = display_names(model)
    rules, default = canonical_rules(model) if canonical else binary_rules(model)
    parts = []
    for conditions, answer in rules:
        text = " AND ".join(name if present else f"NOT {name}"
                            for name, present in sorted(conditions))
        parts.append(f"IF {text} THEN {classes[answer]}")
    return " ELSE ".join(parts + [classes[default]])
