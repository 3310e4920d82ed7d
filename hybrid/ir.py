"""The rules intermediate representation (IR): interpretable models as plain data.

Every surrogate produces one of the models below; exporters, fidelity and reports consume them.
They predict by themselves with numpy alone, so a surrogate loaded from JSON needs neither
scikit-learn nor torch. Strings (IF/THEN text, SQL, DOT) are made from the IR at the edge,
never parsed back.

Semantics shared by every model and every exporter:

- features are compared as float64 (float32 inputs convert exactly);
- a :class:`Predicate` is ``x[feature] <= threshold`` or ``x[feature] > threshold``;
  NaN satisfies neither;
- ``predict`` returns ``classes[argmax(scores)]``, the first maximum on ties.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .errors import SchemaError

__all__ = [
    "Predicate",
    "Rule",
    "InterpretableModel",
    "RuleListModel",
    "TreeModel",
    "LinearModel",
    "MODEL_KINDS",
    "model_from_dict",
]

# Rows converted to float64 at a time when predicting: 64 MB at 128 features.
_BLOCK_ROWS = 65_536

OPERATORS = ("<=", ">")


@dataclass(frozen=True)
class Predicate:
    """One condition ``x[feature] <op> threshold`` with ``op`` in ``("<=", ">")``."""

    feature: int
    op: str
    threshold: float

    def evaluate(self, X: np.ndarray) -> np.ndarray:
        """Boolean mask of shape (n_samples,) of the rows of ``X`` that satisfy the condition."""
        column = X[:, self.feature]
        return column <= self.threshold if self.op == "<=" else column > self.threshold

    def negated(self) -> Predicate:
        return Predicate(self.feature, ">" if self.op == "<=" else "<=", self.threshold)

    def to_dict(self) -> dict:
        return {"feature": self.feature, "op": self.op, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: dict, n_features: int) -> Predicate:
        feature, op, threshold = data["feature"], data["op"], data["threshold"]
        if not isinstance(feature, int) or not 0 <= feature < n_features:
            raise SchemaError(f"predicate feature {feature!r} is not an index below {n_features}")
        if op not in OPERATORS:
            raise SchemaError(f"predicate op {op!r} is not one of {', '.join(OPERATORS)}")
        return cls(feature, op, float(threshold))


@dataclass(frozen=True)
class Rule:
    """A conjunction of predicates that answers one class.

    Parameters
    ----------
    conditions : tuple of Predicate
        All must hold; an empty tuple holds everywhere (the default rule of a list).
    prediction : int
        Index into the model's ``classes``.
    proba : tuple of float
        Class distribution of the training samples the rule answered, shape (n_classes,).
    support : int
        Number of training samples the rule answered.
    precision : float
        Fraction of those samples whose teacher label is ``prediction``.
    """

    conditions: tuple[Predicate, ...]
    prediction: int
    proba: tuple[float, ...]
    support: int
    precision: float

    def covers(self, X: np.ndarray) -> np.ndarray:
        """Boolean mask of shape (n_samples,) of the rows where every condition holds."""
        mask = np.ones(X.shape[0], dtype=bool)
        for predicate in self.conditions:
            mask &= predicate.evaluate(X)
        return mask

    def to_dict(self) -> dict:
        return {
            "conditions": [p.to_dict() for p in self.conditions],
            "prediction": self.prediction,
            "proba": list(self.proba),
            "support": self.support,
            "precision": self.precision,
        }

    @classmethod
    def from_dict(cls, data: dict, n_features: int, n_classes: int) -> Rule:
        proba = tuple(float(p) for p in data["proba"])
        if len(proba) != n_classes or not 0 <= data["prediction"] < n_classes:
            raise SchemaError(f"rule answers {data['prediction']!r} with {len(proba)} "
                              f"probabilities, but the model has {n_classes} classes")
        return cls(
            conditions=tuple(Predicate.from_dict(p, n_features) for p in data["conditions"]),
            prediction=int(data["prediction"]),
            proba=proba,
            support=int(data["support"]),
            precision=float(data["precision"]),
        )


@dataclass(frozen=True, eq=False)
class InterpretableModel(ABC):
    """What every IR model shares: names, classes, prediction and serialization.

    Parameters
    ----------
    feature_names : tuple of str
        One name per input column, in column order.
    classes : tuple
        The label each class index stands for (int or str), as the estimator's ``classes_``.
    class_names : tuple of str
        Display name of each class, same order as ``classes``.
    """

    kind: ClassVar[str]
    complexity_unit: ClassVar[str]

    feature_names: tuple[str, ...]
    classes: tuple[Any, ...]
    class_names: tuple[str, ...]

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    @abstractmethod
    def complexity(self) -> int:
        """Size a person has to read, in ``complexity_unit``."""

    @abstractmethod
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes`` order."""

    def predict_index(self, X) -> np.ndarray:
        """Class index (into ``classes``) per row, shape (n_samples,)."""
        return np.argmax(self.predict_proba(X), axis=1)

    def indexed_rules(self) -> list[tuple[int, Rule]]:
        """``(rule id, Rule)`` for models made of rules; the ids are what ``apply`` returns.

        Empty for models without rules (linear).
        """
        return []

    def predict(self, X) -> np.ndarray:
        """Predicted label (an element of ``classes``) per row, shape (n_samples,)."""
        return np.asarray(self.classes)[self.predict_index(X)]

    def _check_X(self, X) -> np.ndarray:
        """``X`` as an array of the right shape, in its own dtype: a memory-mapped table stays
        on disk (see :meth:`_by_blocks`)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X has shape {X.shape}; this {self.kind} model expects "
                             f"(n_samples, {self.n_features}) features: "
                             f"{', '.join(self.feature_names[:5])}{', ...' if self.n_features > 5 else ''}")
        return X

    def _by_blocks(self, X, per_block) -> np.ndarray:
        """``per_block`` of each block of rows of ``X`` in float64, concatenated.

        Every comparison and product is in float64, as the exports compute, but only one
        block at a time is converted: a split larger than memory predicts from its memory map.
        """
        X = self._check_X(X)
        blocks = [per_block(np.asarray(X[start:start + _BLOCK_ROWS], dtype=np.float64))
                  for start in range(0, max(len(X), 1), _BLOCK_ROWS)]
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)

    def to_dict(self) -> dict:
        """JSON-ready dict of the model; :func:`model_from_dict` reads it back exactly."""
        return {
            "kind": self.kind,
            "feature_names": list(self.feature_names),
            "classes": [_json_scalar(c) for c in self.classes],
            "class_names": list(self.class_names),
            "model": self._payload(),
        }

    @abstractmethod
    def _payload(self) -> dict:
        """The kind-specific part of :meth:`to_dict`."""

    @classmethod
    @abstractmethod
    def _from_payload(cls, payload: dict, names: dict) -> InterpretableModel:
        """Inverse of :meth:`_payload`; ``names`` holds the shared fields."""


def _json_scalar(value):
    """numpy scalars to the Python int/float/str that JSON knows."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True, eq=False)
class RuleListModel(InterpretableModel):
    """An ordered rule list: ``IF r1 THEN c1 ELSE IF r2 THEN c2 ... ELSE default``.

    The last rule has no conditions (the default); the first rule that covers a row answers it.
    """

    kind: ClassVar[str] = "rule_list"
    complexity_unit: ClassVar[str] = "rules"

    rules: tuple[Rule, ...] = field(default=())

    def __post_init__(self):
        if not self.rules or self.rules[-1].conditions:
            raise SchemaError("a rule list must end with a default rule without conditions")

    @property
    def complexity(self) -> int:
        """Number of rules, the final ELSE included."""
        return len(self.rules)

    def apply(self, X) -> np.ndarray:
        """Index of the rule that answers each row, shape (n_samples,)."""
        return self._by_blocks(X, self._apply)

    def _apply(self, X: np.ndarray) -> np.ndarray:
        fired = np.full(X.shape[0], len(self.rules) - 1, dtype=np.intp)
        open_rows = np.ones(X.shape[0], dtype=bool)
        for index, rule in enumerate(self.rules[:-1]):
            hit = open_rows & rule.covers(X)
            fired[hit] = index
            open_rows &= ~hit
        return fired

    def predict_proba(self, X) -> np.ndarray:
        table = np.array([rule.proba for rule in self.rules])
        return table[self.apply(X)]

    def indexed_rules(self) -> list[tuple[int, Rule]]:
        return list(enumerate(self.rules))

    def predict_index(self, X) -> np.ndarray:
        answers = np.array([rule.prediction for rule in self.rules], dtype=np.intp)
        return answers[self.apply(X)]

    def _payload(self) -> dict:
        return {"rules": [rule.to_dict() for rule in self.rules]}

    @classmethod
    def _from_payload(cls, payload, names):
        n_features, n_classes = len(names["feature_names"]), len(names["classes"])
        rules = tuple(Rule.from_dict(r, n_features, n_classes) for r in payload["rules"])
        return cls(**names, rules=rules)


@dataclass(frozen=True, eq=False)
class TreeModel(InterpretableModel):
    """A binary decision tree; rows with ``x[feature] <= threshold`` go left.

    Node arrays share one index, node 0 is the root, and leaves have ``left == right == -1``.
    ``value`` holds each node's class distribution, shape (n_nodes, n_classes), and
    ``n_samples`` the training samples that reached it.
    """

    kind: ClassVar[str] = "tree"
    complexity_unit: ClassVar[str] = "leaves"

    left: np.ndarray = None
    right: np.ndarray = None
    feature: np.ndarray = None
    threshold: np.ndarray = None
    value: np.ndarray = None
    n_samples: np.ndarray = None

    @property
    def is_leaf(self) -> np.ndarray:
        return self.left < 0

    @property
    def complexity(self) -> int:
        return int(self.is_leaf.sum())

    @property
    def depth(self) -> int:
        return max((len(rule.conditions) for rule in self.leaf_rules()), default=0)

    def apply(self, X) -> np.ndarray:
        """Index of the leaf each row reaches, shape (n_samples,)."""
        return self._by_blocks(X, self._apply)

    def _apply(self, X: np.ndarray) -> np.ndarray:
        node = np.zeros(X.shape[0], dtype=np.intp)
        rows = np.arange(X.shape[0])
        active = ~self.is_leaf[node]
        while active.any():
            at, where = node[active], rows[active]
            go_left = X[where, self.feature[at]] <= self.threshold[at]
            node[where] = np.where(go_left, self.left[at], self.right[at])
            active = ~self.is_leaf[node]
        return node

    def predict_proba(self, X) -> np.ndarray:
        return self.value[self.apply(X)]

    def indexed_rules(self) -> list[tuple[int, Rule]]:
        """Each leaf as ``(node id, path rule)``, leaves left to right."""
        return self.leaf_rules()

    def leaf_rules(self) -> list[tuple[int, Rule]]:
        """Each leaf as ``(node index, Rule)``, the rule being the path's conditions, left first."""
        out, stack = [], [(0, ())]
        while stack:
            node, path = stack.pop()
            if self.is_leaf[node]:
                out.append((node, self._leaf_rule(node, path)))
                continue
            split = Predicate(int(self.feature[node]), "<=", float(self.threshold[node]))
            stack.append((int(self.right[node]), path + (split.negated(),)))
            stack.append((int(self.left[node]), path + (split,)))
        return out

    def _leaf_rule(self, node: int, path: tuple[Predicate, ...]) -> Rule:
        proba = self.value[node]
        answer = int(np.argmax(proba))
        return Rule(path, answer, tuple(float(p) for p in proba),
                    int(self.n_samples[node]), float(proba[answer]))

    def _payload(self) -> dict:
        nodes = []
        for i in range(len(self.left)):
            node = {"id": i, "n_samples": int(self.n_samples[i]),
                    "value": [float(v) for v in self.value[i]]}
            if not self.is_leaf[i]:
                node.update(feature=int(self.feature[i]), threshold=float(self.threshold[i]),
                            left=int(self.left[i]), right=int(self.right[i]))
            nodes.append(node)
        return {"nodes": nodes}

    @classmethod
    def _from_payload(cls, payload, names):
        nodes = payload["nodes"]
        n, n_features = len(nodes), len(names["feature_names"])
        if [node["id"] for node in nodes] != list(range(n)):
            raise SchemaError("tree nodes must be listed by id 0, 1, 2, ...")
        arrays = {
            "left": np.array([node.get("left", -1) for node in nodes], dtype=np.intp),
            "right": np.array([node.get("right", -1) for node in nodes], dtype=np.intp),
            "feature": np.array([node.get("feature", -1) for node in nodes], dtype=np.intp),
            "threshold": np.array([node.get("threshold", np.nan) for node in nodes], dtype=np.float64),
            "value": np.array([node["value"] for node in nodes], dtype=np.float64).reshape(n, -1),
            "n_samples": np.array([node["n_samples"] for node in nodes], dtype=np.int64),
        }
        inner = arrays["left"] >= 0
        if (arrays["value"].shape[1] != len(names["classes"])
                or np.any(arrays["left"][inner] >= n) or np.any(arrays["right"][inner] >= n)
                or np.any((arrays["feature"][inner] < 0) | (arrays["feature"][inner] >= n_features))):
            raise SchemaError("tree nodes point at a missing node, feature or class")
        return cls(**names, **arrays)


@dataclass(frozen=True, eq=False)
class LinearModel(InterpretableModel):
    """A multinomial logistic head on raw features: ``softmax(X @ coef.T + intercept)``.

    Any standardization was folded into ``coef`` and ``intercept``, so exports read raw
    features. ``coef`` has shape (n_classes, n_features), ``intercept`` (n_classes,).
    """

    kind: ClassVar[str] = "linear"
    complexity_unit: ClassVar[str] = "nonzero_weights"

    coef: np.ndarray = None
    intercept: np.ndarray = None

    @property
    def complexity(self) -> int:
        return int(np.count_nonzero(self.coef))

    @property
    def nonzero_per_class(self) -> np.ndarray:
        return np.count_nonzero(self.coef, axis=1)

    def decision_function(self, X) -> np.ndarray:
        """Class scores (logits), shape (n_samples, n_classes).

        ``intercept + w_j * x_j + ...`` summed left to right over the features with a non-zero
        weight, in feature order, each class over its own non-zero weights: exports (Python,
        SQL) add the same terms in the same order, so their scores are bit-identical and a
        near-tie is broken alike everywhere.
        """
        return self._by_blocks(X, self._decision_function)

    def _decision_function(self, X: np.ndarray) -> np.ndarray:
        scores = np.tile(self.intercept, (X.shape[0], 1))
        for j in np.flatnonzero(np.any(self.coef != 0, axis=0)):
            weighted = self.coef[:, j] != 0
            scores[:, weighted] += X[:, j, None] * self.coef[weighted, j]
        return scores

    def predict_index(self, X) -> np.ndarray:
        return np.argmax(self.decision_function(X), axis=1)

    def predict_proba(self, X) -> np.ndarray:
        scores = self.decision_function(X)
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        return scores / scores.sum(axis=1, keepdims=True)

    def _payload(self) -> dict:
        return {"coef": [[float(w) for w in row] for row in self.coef],
                "intercept": [float(b) for b in self.intercept]}

    @classmethod
    def _from_payload(cls, payload, names):
        coef = np.array(payload["coef"], dtype=np.float64)
        intercept = np.array(payload["intercept"], dtype=np.float64)
        expected = (len(names["classes"]), len(names["feature_names"]))
        if coef.shape != expected or intercept.shape != expected[:1]:
            raise SchemaError(f"linear coef has shape {coef.shape} and intercept "
                              f"{intercept.shape}; the names give {expected}")
        return cls(**names, coef=coef, intercept=intercept)


MODEL_KINDS = {cls.kind: cls for cls in (RuleListModel, TreeModel, LinearModel)}


def model_from_dict(data: dict) -> InterpretableModel:
    """Read an IR model back from :meth:`InterpretableModel.to_dict` output."""
    kind = data.get("kind")
    if kind not in MODEL_KINDS:
        raise SchemaError(f"unknown model kind {kind!r}; known kinds: {', '.join(MODEL_KINDS)}")
    names = {
        "feature_names": tuple(str(n) for n in data["feature_names"]),
        "classes": tuple(data["classes"]),
        "class_names": tuple(str(n) for n in data["class_names"]),
    }
    if len(names["classes"]) != len(names["class_names"]):
        raise SchemaError(f"{len(names['classes'])} classes but "
                          f"{len(names['class_names'])} class names")
    return MODEL_KINDS[kind]._from_payload(data["model"], names)
