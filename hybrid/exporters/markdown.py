"""Markdown export: the model as one table, for reports and READMEs.

Feature and class names come from users and may hold Markdown or HTML (``|``, ``*``,
``<script>``); every name is escaped so it renders as the literal text and a table row keeps
its column count.
"""

from collections.abc import Sequence

from ..ir import InterpretableModel, LinearModel, Rule, RuleListModel, TreeModel
from ._format import (NOTES, active_features, conditions_text, dispatch, display_names,
                      format_number, format_probability, single_line, summary)

__all__ = ["to_markdown", "escape_markdown"]

# CommonMark lets a backslash escape any ASCII punctuation; these are the characters that can
# start emphasis, code, links, HTML or a table cell, and the backslash itself.
_SPECIAL = frozenset("\\`*_<>[]|")


def to_markdown(model: InterpretableModel) -> str:
    """A Markdown summary line and table of an IR model.

    Rule lists and trees give one row per rule (``# | IF | THEN | support | p``); a linear
    model gives one row per class and one column per feature with a non-zero weight.

    Parameters
    ----------
    model : InterpretableModel
        A rule list, tree or linear model.

    Returns
    -------
    str
        Markdown ending in ``\\n``; the same model always gives the same text.
    """
    table = dispatch(_TABLES, model, "Markdown")
    return "\n".join([f"**{summary(model)}.** {NOTES[model.kind]}", "", *table]) + "\n"


def escape_markdown(text: str) -> str:
    """``text`` on one line with every Markdown-special character backslash-escaped.

    Examples
    --------
    >>> escape_markdown("a|b *c*")
    'a\\\\|b \\\\*c\\\\*'
    """
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in single_line(text))


def _table(header: Sequence[str], numeric: Sequence[bool], rows: list[list[str]]) -> list[str]:
    align = ["---:" if right else "---" for right in numeric]
    return [_row(header), _row(align), *(_row(cells) for cells in rows)]


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _rules_table(rules: Sequence[Rule], model: InterpretableModel) -> list[str]:
    features, classes = display_names(model, escape_markdown)
    rows = [[str(i), conditions_text(rule.conditions, features), classes[rule.prediction],
             str(rule.support), format_probability(rule.proba[rule.prediction])]
            for i, rule in enumerate(rules, start=1)]
    return _table(["#", "IF", "THEN", "support", "p"], [True, False, False, True, True], rows)


def _rule_list_table(model: RuleListModel) -> list[str]:
    return _rules_table(model.rules, model)


def _tree_table(model: TreeModel) -> list[str]:
    return _rules_table([rule for _, rule in model.leaf_rules()], model)


def _linear_table(model: LinearModel) -> list[str]:
    features, classes = display_names(model, escape_markdown)
    used = active_features(model)
    rows = [[classes[k], format_number(model.intercept[k]),
             *(format_number(model.coef[k, j]) if model.coef[k, j] else "" for j in used)]
            for k in range(model.n_classes)]
    header = ["class", "intercept", *(features[j] for j in used)]
    return _table(header, [False] + [True] * (len(header) - 1), rows)


_TABLES = {"rule_list": _rule_list_table, "tree": _tree_table, "linear": _linear_table}
