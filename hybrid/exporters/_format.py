"""Text pieces every exporter shares: numbers, names, conditions, rule statistics, headers.

One place decides how a threshold, a probability or a condition reads, so the text, Markdown
and DOT exports of one model always agree. Exports for people round numbers for reading; the
code exports (Python, SQL) share the exact pieces at the end of this module instead.
"""

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral

import numpy as np

from ..ir import InterpretableModel, LinearModel, Predicate, Rule

#: How each kind of model is read, stated once for every export.
NOTES = {
    "rule_list": "Rules are tried in order; the first that matches answers.",
    "tree": "The rules are mutually exclusive: exactly one matches each input.",
    "linear": ("The predicted class is the one with the highest score; "
               "probabilities are the softmax of the scores."),
}

# Control characters and line/paragraph separators: a name holding one could start a new
# line of text, a new table row or break a DOT string, so it becomes a space.
_LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})


def format_number(value: float) -> str:
    """A threshold, weight or intercept in at most four significant digits, e.g. ``0.4125``."""
    return format(float(value), ".4g")


def format_probability(value: float) -> str:
    """A probability with two decimals, e.g. ``0.97``."""
    return format(float(value), ".2f")


def single_line(text: str) -> str:
    """``text`` with every control character and line break replaced by a space."""
    return "".join(" " if unicodedata.category(ch) in _LINE_BREAKING else ch for ch in str(text))


def display_names(model: InterpretableModel,
                  escape: Callable[[str], str] = single_line) -> tuple[list[str], list[str]]:
    """``(feature names, class names)`` of ``model``, each passed through ``escape``."""
    return ([escape(n) for n in model.feature_names], [escape(n) for n in model.class_names])


def condition_text(predicate: Predicate, feature_names: Sequence[str]) -> str:
    """One condition, e.g. ``dim_3 > 0.412``."""
    name = feature_names[predicate.feature]
    return f"{name} {predicate.op} {format_number(predicate.threshold)}"


def conditions_text(conditions: Sequence[Predicate], feature_names: Sequence[str]) -> str:
    """A conjunction, e.g. ``dim_3 > 0.412 AND dim_7 <= 1.2``; ``TRUE`` when empty."""
    if not conditions:
        return "TRUE"
    return " AND ".join(condition_text(p, feature_names) for p in conditions)


def rule_stats(rule: Rule) -> str:
    """``support <n>, p=<proba of the answer>``, e.g. ``support 120, p=0.97``."""
    return f"support {rule.support}, p={format_probability(rule.proba[rule.prediction])}"


def summary(model: InterpretableModel) -> str:
    """Kind and size in one line, e.g. ``rule list: 12 rules over 64 features, 10 classes``."""
    kind, unit = model.kind.replace("_", " "), model.complexity_unit.replace("_", " ")
    return (f"{kind}: {model.complexity} {unit} over {model.n_features} features, "
            f"{model.n_classes} classes")


def linear_terms(model: LinearModel, class_index: int) -> list[tuple[int, float]]:
    """``(feature index, weight)`` of one class's non-zero weights, largest ``|weight|`` first.

    Ties keep feature order, so the same model always reads the same.
    """
    row = model.coef[class_index]
    nonzero = np.flatnonzero(row)
    order = nonzero[np.argsort(-np.abs(row[nonzero]), kind="stable")]
    return [(int(j), float(row[j])) for j in order]


def active_features(model: LinearModel) -> list[int]:
    """Indices, ascending, of the features with a non-zero weight for at least one class."""
    return [int(j) for j in np.flatnonzero(np.any(model.coef != 0, axis=0))]


def dispatch(renderers: Mapping[str, Callable], model: InterpretableModel, export: str):
    """Call the renderer registered for ``model.kind``.

    Raises
    ------
    TypeError
        When ``model`` is not an IR model of a kind in ``renderers``.
    """
    kind = getattr(model, "kind", None)
    if kind not in renderers:
        raise TypeError(f"no {export} export for {type(model).__name__}; it exports IR models "
                        f"of kind {', '.join(renderers)}")
    return renderers[kind](model)


# --- code exports: exact, for machines ------------------------------------------------------

def code_label(label) -> int | str:
    """``label`` as the plain int or str a code export writes, e.g. ``np.int64(3)`` -> ``3``.

    Raises
    ------
    TypeError
        For any other label: the surrogate file holds only int and str labels, and a float
        label would make the exports compare labels inexactly.
    """
    if isinstance(label, str):
        return str(label)
    if isinstance(label, Integral) and not isinstance(label, bool):
        return int(label)
    raise TypeError(f"class label {label!r} is neither int nor str; code exports need one of them")


def condition_code(predicate: Predicate, column: Callable[[int], str],
                   number: Callable[[float], str]) -> str:
    """One condition as code, e.g. ``x[3] <= 0.5`` (Python) or ``"dim_3" <= 0.5e0`` (SQL).

    Python and SQL both spell the IR's two operators ``<=`` and ``>``, so only the column and
    the number literal differ between them.
    """
    return f"{column(predicate.feature)} {predicate.op} {number(predicate.threshold)}"


def score_code(model: LinearModel, class_index: int, column: Callable[[int], str],
               number: Callable[[float], str]) -> str:
    """One class's score as code: ``intercept + w * x_j - |w| * x_k ...``.

    The terms follow :meth:`LinearModel.decision_function` exactly (intercept first, then the
    non-zero weights in feature order, added left to right), so the code computes the same
    float64 scores bit for bit. A negative weight is written as subtracting its absolute
    value, which IEEE 754 makes identical to adding the negative product.
    """
    row = model.coef[class_index]
    terms = [f" {'-' if row[j] < 0 else '+'} {number(abs(row[j]))} * {column(int(j))}"
             for j in np.flatnonzero(row)]
    return number(model.intercept[class_index]) + "".join(terms)
