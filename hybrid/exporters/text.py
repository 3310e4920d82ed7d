"""Plain-text export: the model as IF/THEN lines or score formulas a person reads top to bottom.

Names are kept as given except that line breaks become spaces, so every rule stays one line.
"""

from ..ir import InterpretableModel, LinearModel, Rule, RuleListModel, TreeModel
from ._format import (NOTES, conditions_text, dispatch, display_names, format_number,
                      linear_terms, rule_stats, summary)

__all__ = ["to_text"]


def to_text(model: InterpretableModel) -> str:
    """Human-readable text of an IR model, a header line first.

    Parameters
    ----------
    model : InterpretableModel
        A rule list, tree or linear model.

    Returns
    -------
    str
        Lines ending in ``\\n``; the same model always gives the same text.

    Examples
    --------
    >>> from hybrid.ir import Predicate, Rule, RuleListModel
    >>> model = RuleListModel(("x",), (0, 1), ("no", "yes"), rules=(
    ...     Rule((Predicate(0, ">", 0.5),), 1, (0.1, 0.9), 40, 0.9),
    ...     Rule((), 0, (0.8, 0.2), 60, 0.8)))
    >>> print(to_text(model), end="")
    # rule list: 2 rules over 1 features, 2 classes
    # Rules are tried in order; the first that matches answers.
    IF x > 0.5 THEN yes  [support 40, p=0.90]
    ELSE no  [support 60, p=0.80]
    """
    body = dispatch(_BODIES, model, "text")
    return "\n".join([f"# {summary(model)}", f"# {NOTES[model.kind]}", *body]) + "\n"


def _outcome(rule: Rule, class_names: list[str]) -> str:
    return f"{class_names[rule.prediction]}  [{rule_stats(rule)}]"


def _rule_list_lines(model: RuleListModel) -> list[str]:
    features, classes = display_names(model)
    lines = []
    for index, rule in enumerate(model.rules):
        if index and not rule.conditions:
            lines.append(f"ELSE {_outcome(rule, classes)}")
            continue
        keyword = "ELSE IF" if index else "IF"
        lines.append(f"{keyword} {conditions_text(rule.conditions, features)} "
                     f"THEN {_outcome(rule, classes)}")
    return lines


def _tree_lines(model: TreeModel) -> list[str]:
    features, classes = display_names(model)
    return [f"IF {conditions_text(rule.conditions, features)} THEN {_outcome(rule, classes)}"
            for _, rule in model.leaf_rules()]


def _linear_lines(model: LinearModel) -> list[str]:
    features, classes = display_names(model)
    return [f"class {classes[k]}: score = {_score_formula(model, k, features)}"
            for k in range(model.n_classes)]


def _score_formula(model: LinearModel, class_index: int, features: list[str]) -> str:
    terms = "".join(f" {'-' if w < 0 else '+'} {format_number(abs(w))} * {features[j]}"
                    for j, w in linear_terms(model, class_index))
    return format_number(model.intercept[class_index]) + terms


_BODIES = {"rule_list": _rule_list_lines, "tree": _tree_lines, "linear": _linear_lines}
