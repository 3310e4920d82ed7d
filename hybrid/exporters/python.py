"""Python export: a standalone module, standard library only, that predicts like the IR model.

The module needs neither hybrid nor numpy, so a surrogate can ship as one ``.py`` file. It
predicts exactly what the IR predicts: thresholds, weights and probabilities are written with
``repr``, which Python reads back to the same float64, and every comparison and sum is the
IR's, in the IR's order.

Names are data, never code: feature names, class names and labels appear only as ``repr``
string literals inside the ``FEATURES``, ``CLASSES`` and ``CLASS_NAMES`` tuples, and the code
addresses features by position (``x[3]``). Whatever a name holds (quotes, newlines, ``\"\"\"``,
code), the module compiles and executing it only defines names.

A tree is written as a table of split nodes walked by a loop rather than as nested ``if``
statements: nested blocks read well for shallow trees, but Python refuses source nested deeper
than 100 blocks, and a tree grown to a leaf budget without a depth limit can be deeper. The
table also keeps the file linear in the number of nodes.
"""

import math

from ..ir import InterpretableModel, LinearModel, Rule, RuleListModel, TreeModel
from ._format import code_label, condition_code, dispatch, score_code

__all__ = ["to_python"]

_INDENT = "    "
_LINE_WIDTH = 99

_DOCSTRING = '''"""Predictions of a hybrid {kind} surrogate; standalone, standard library only.

Rows are sequences of floats in ``FEATURES`` order; labels are elements of ``CLASSES`` and
probabilities are listed in ``CLASSES`` order:

    predict(rows)                -> one label per row
    predict_proba(rows)          -> one list of probabilities per row
    predict_one(features)        -> the label of one row given as {{feature name: value}}
    predict_proba_one(features)  -> the probabilities of that row

{semantics}
"""'''

_SEMANTICS = {
    "rule_list": "Rules are tried in order and the first whose conditions all hold answers;\n"
                 "a NaN satisfies no condition.",
    "tree": "A row goes left at a split when x[feature] <= threshold, so a NaN goes right.",
    "linear": "The first class with the highest score answers (a NaN score counts as highest,\n"
              "as in numpy's argmax); probabilities are the softmax of the scores.",
}

# Kind-specific code. Each defines _class_index(x) and _probabilities(x) for a row tuple x;
# the fields in braces are filled with numbers and feature positions only, never with names.

_RULE_LIST_CODE = '''

def _outcome(x):
    """Index of the first rule whose conditions all hold for row ``x``."""
{branches}
    return {default}
'''

_TREE_CODE = '''

def _outcome(x):
    """Id of the leaf row ``x`` reaches; a loop, so any depth works."""
    node = 0
    while node in _SPLITS:
        feature, threshold, left, right = _SPLITS[node]
        node = left if x[feature] <= threshold else right
    return node
'''

_OUTCOME_CODE = '''

def _class_index(x):
    return _OUTCOMES[_outcome(x)][0]


def _probabilities(x):
    return list(_OUTCOMES[_outcome(x)][1])
'''

_LINEAR_CODE = '''

def _scores(x):
    """Class scores of row ``x``: intercept, then weighted features left to right."""
    return (
{scores}
    )


def _class_index(x):
    """The first class with the highest score, a NaN score first of all (numpy's argmax)."""
    scores = _scores(x)
    best = 0
    for index, score in enumerate(scores):
        if score != score:
            return index
        if score > scores[best]:
            best = index
    return best


def _probabilities(x):
    scores = _scores(x)
    top = max(scores)
    exps = [math.exp(score - top) for score in scores]
    total = sum(exps)
    return [value / total for value in exps]
'''

_PUBLIC_CODE = '''

def predict(rows):
    """The label of each row; a row is a sequence of floats in FEATURES order."""
    return [CLASSES[_class_index(_row(values))] for values in rows]


def predict_proba(rows):
    """The class probabilities of each row, in CLASSES order."""
    return [_probabilities(_row(values)) for values in rows]


def predict_one(features):
    """The label of one row given as a mapping {feature name: value}."""
    return CLASSES[_class_index(_named_row(features))]


def predict_proba_one(features):
    """The class probabilities, in CLASSES order, of one row given as a mapping."""
    return _probabilities(_named_row(features))


def _row(values):
    row = tuple(float(value) for value in values)
    if len(row) != len(FEATURES):
        raise ValueError(f"a row has {len(row)} values; this model reads {len(FEATURES)}")
    return row


def _named_row(features):
    return tuple(float(features[name]) for name in FEATURES)
'''


def to_python(model: InterpretableModel) -> str:
    """Source of a standalone Python module that predicts like ``model``.

    The module defines ``FEATURES``, ``CLASSES``, ``CLASS_NAMES`` and the functions
    ``predict(rows)``, ``predict_proba(rows)``, ``predict_one(features)`` and
    ``predict_proba_one(features)``; it imports nothing but :mod:`math`.

    Parameters
    ----------
    model : InterpretableModel
        A rule list (an ``if`` chain in rule order), tree (a table of split nodes walked by a
        loop) or linear model (one score expression per class).

    Returns
    -------
    str
        Python source ending in ``\\n``; the same model always gives the same text.

    Raises
    ------
    TypeError
        When a class label is neither int nor str.

    Examples
    --------
    >>> from hybrid.ir import Predicate, Rule, RuleListModel
    >>> model = RuleListModel(("x",), (0, 1), ("no", "yes"), rules=(
    ...     Rule((Predicate(0, ">", 0.5),), 1, (0.1, 0.9), 40, 0.9),
    ...     Rule((), 0, (0.8, 0.2), 60, 0.8)))
    >>> namespace = {}
    >>> exec(to_python(model), namespace)
    >>> namespace["predict"]([[0.7], [0.5]])
    [1, 0]
    """
    data, code = dispatch(_BODIES, model, "Python")
    lines = [
        _DOCSTRING.format(kind=model.kind.replace("_", " "), semantics=_SEMANTICS[model.kind]),
        "",
        *(["import math", ""] if model.kind == "linear" else []),
        _assign("FEATURES", [repr(str(name)) for name in model.feature_names]),
        _assign("CLASSES", [repr(code_label(label)) for label in model.classes]),
        _assign("CLASS_NAMES", [repr(str(name)) for name in model.class_names]),
        *data,
    ]
    return "\n".join(lines) + "\n" + code + _PUBLIC_CODE


def _number(value: float) -> str:
    """A float literal that Python reads back to exactly ``value``, infinities and NaN too."""
    value = float(value)
    return repr(value) if math.isfinite(value) else f"float({str(value)!r})"


def _column(feature: int) -> str:
    return f"x[{feature}]"


def _display(items: list[str], brackets: str = "()") -> str:
    """A one-line tuple (or, with ``brackets="{}"``, dict) display of ``items``."""
    comma = "," if len(items) == 1 and brackets == "()" else ""
    return f"{brackets[0]}{', '.join(items)}{comma}{brackets[1]}"


def _assign(name: str, items: list[str], brackets: str = "()", table: bool = False) -> str:
    """``name = <display>``, on one line if it fits and is not a ``table``.

    Otherwise one item per line, so that each rule, node or name reads on a line of its own.
    """
    line = f"{name} = {_display(items, brackets)}"
    if not items or (not table and len(line) <= _LINE_WIDTH):
        return line
    return "\n".join([f"{name} = {brackets[0]}", *(f"{_INDENT}{item}," for item in items),
                      brackets[1]])


def _outcome(rule: Rule) -> str:
    """``(class index, (probabilities...))`` of a rule or leaf."""
    return f"({rule.prediction}, {_display([_number(p) for p in rule.proba])})"


def _rule_list_body(model: RuleListModel) -> tuple[list[str], str]:
    branches = []
    for index, rule in enumerate(model.rules[:-1]):
        test = " and ".join(condition_code(p, _column, _number) for p in rule.conditions)
        branches += [f"{_INDENT}if {test or 'True'}:", f"{_INDENT * 2}return {index}"]
    data = ["", "# (class index, probabilities) of each rule, in order; the last is the default.",
            _assign("_OUTCOMES", [_outcome(rule) for rule in model.rules], table=True)]
    code = _RULE_LIST_CODE.format(branches="\n".join(branches), default=len(model.rules) - 1)
    return data, code + _OUTCOME_CODE


def _tree_body(model: TreeModel) -> tuple[list[str], str]:
    splits = [f"{node}: ({model.feature[node]}, {_number(model.threshold[node])}, "
              f"{model.left[node]}, {model.right[node]})"
              for node in range(len(model.left)) if not model.is_leaf[node]]
    leaves = [f"{node}: {_outcome(rule)}" for node, rule in sorted(model.leaf_rules())]
    data = ["", "# Split nodes by id: (feature index, threshold, left child, right child).",
            _assign("_SPLITS", splits, "{}", table=True),
            "# Leaves by id: (class index, probabilities).",
            _assign("_OUTCOMES", leaves, "{}", table=True)]
    return data, _TREE_CODE + _OUTCOME_CODE


def _linear_body(model: LinearModel) -> tuple[list[str], str]:
    scores = [f"{_INDENT * 2}{score_code(model, k, _column, _number)},"
              for k in range(model.n_classes)]
    return [], _LINEAR_CODE.format(scores="\n".join(scores))


_BODIES = {"rule_list": _rule_list_body, "tree": _tree_body, "linear": _linear_body}
