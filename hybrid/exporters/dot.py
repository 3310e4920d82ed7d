"""Graphviz export: DOT source built as text, and rendering it to SVG.

Building DOT needs no Graphviz install, so exporting works everywhere; only
:func:`render_svg` runs the ``dot`` executable. Labels are plain quoted strings (never
HTML-like labels), so escaping backslash and double quote and flattening line breaks is enough
to keep any user-supplied name inert. Colours are always ``#rrggbb``: Graphviz 2.43 draws
3-digit hex colours as black. Node names are generated (``n0``, ``r1``, ``f3``), never taken
from user names.
"""

import shutil

import graphviz

from ..errors import HybridError
from ..ir import InterpretableModel, LinearModel, Predicate, Rule, RuleListModel, TreeModel
from ._format import (active_features, condition_text, dispatch, format_number, linear_terms,
                      rule_stats, single_line, summary)

__all__ = ["to_dot", "to_svg", "render_svg", "dot_available"]

# ColorBrewer Set3: light enough for black text, distinct for up to 12 classes, then repeats.
_CLASS_COLOURS = ("#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462",
                  "#b3de69", "#fccde5", "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f")
_POSITIVE, _NEGATIVE = "#2166ac", "#b2182b"


def to_dot(model: InterpretableModel) -> str:
    """Graphviz DOT source of an IR model.

    A tree draws split nodes with ``yes``/``no`` edges down to leaves; a rule list draws a
    chain of conditions, each with a ``yes`` edge to its class and a ``no`` edge to the next
    rule, ending at the default class; a linear model draws an edge from each feature to each
    class it weighs, labelled with the weight and coloured by sign (blue positive, red
    negative). Class boxes are filled with one colour per class.

    Parameters
    ----------
    model : InterpretableModel
        A rule list, tree or linear model.

    Returns
    -------
    str
        DOT source ending in ``\\n``; the same model always gives the same text.
    """
    body = dispatch(_GRAPHS, model, "DOT")
    return "\n".join([
        f"digraph {model.kind} {{",
        f"  graph [label={_quote(summary(model))}, labelloc=\"t\", fontname=\"Helvetica\"];",
        '  node [shape="box", style="rounded", fontname="Helvetica"];',
        '  edge [fontname="Helvetica"];',
        *(f"  {statement}" for statement in body),
        "}",
    ]) + "\n"


def to_svg(model: InterpretableModel) -> str:
    """SVG drawing of an IR model: :func:`render_svg` of :func:`to_dot`."""
    return render_svg(to_dot(model))


def render_svg(dot_source: str) -> str:
    """Render DOT source to SVG text with Graphviz's ``dot`` executable.

    Raises
    ------
    HybridError
        When ``dot`` is not installed.
    """
    try:
        return graphviz.Source(dot_source).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        raise HybridError("rendering SVG needs Graphviz's `dot` executable, which is not on "
                          "PATH; install Graphviz (apt-get install -y graphviz) or export "
                          "DOT instead") from None


def dot_available() -> bool:
    """Whether Graphviz's ``dot`` executable is on ``PATH``, so :func:`render_svg` can run."""
    return shutil.which("dot") is not None


def _quote(*lines: str) -> str:
    """One DOT quoted string showing ``lines`` on separate lines, literally."""
    escaped = (single_line(line).replace("\\", "\\\\").replace('"', '\\"') for line in lines)
    return '"' + "\\n".join(escaped) + '"'


def _statement(head: str, label: list[str], **attributes: str) -> str:
    """A node (``head`` = ``n0``) or edge (``head`` = ``n0 -> n1``) statement."""
    pairs = [f"label={_quote(*label)}", *(f"{k}={_quote(v)}" for k, v in attributes.items())]
    return f"{head} [{', '.join(pairs)}];"


def _rank(rank: str, nodes: list[str]) -> str:
    """A subgraph placing ``nodes`` on one rank: ``same``, ``min`` or ``max``."""
    return f"{{rank={rank}; {'; '.join(nodes)}}}"


def _class_node(name: str, rule: Rule, class_names: tuple[str, ...]) -> str:
    return _statement(name, [class_names[rule.prediction], rule_stats(rule)],
                      style="rounded,filled", fillcolor=_class_colour(rule.prediction))


def _class_colour(class_index: int) -> str:
    return _CLASS_COLOURS[class_index % len(_CLASS_COLOURS)]


def _tree_statements(model: TreeModel) -> list[str]:
    leaves = dict(model.leaf_rules())
    statements = []
    for node in range(len(model.left)):
        if node in leaves:
            statements.append(_class_node(f"n{node}", leaves[node], model.class_names))
            continue
        split = Predicate(int(model.feature[node]), "<=", float(model.threshold[node]))
        statements += [
            _statement(f"n{node}", [condition_text(split, model.feature_names)]),
            _statement(f"n{node} -> n{model.left[node]}", ["yes"]),
            _statement(f"n{node} -> n{model.right[node]}", ["no"]),
        ]
    return statements


def _rule_list_statements(model: RuleListModel) -> list[str]:
    default = len(model.rules) - 1
    statements = []
    for index, rule in enumerate(model.rules[:-1]):
        otherwise = f"r{index + 1}" if index + 1 < default else f"c{default}"
        statements += [
            _statement(f"r{index}", _conjunction_lines(rule, model.feature_names)),
            _class_node(f"c{index}", rule, model.class_names),
            _rank("same", [f"r{index}", f"c{index}"]),
            _statement(f"r{index} -> c{index}", ["yes"]),
            _statement(f"r{index} -> {otherwise}", ["no"]),
        ]
    return statements + [_class_node(f"c{default}", model.rules[-1], model.class_names)]


def _conjunction_lines(rule: Rule, feature_names: tuple[str, ...]) -> list[str]:
    """One condition per line, ``AND`` before all but the first; ``TRUE`` when there is none."""
    lines = [condition_text(p, feature_names) for p in rule.conditions] or ["TRUE"]
    return [lines[0], *(f"AND {line}" for line in lines[1:])]


def _linear_statements(model: LinearModel) -> list[str]:
    used = active_features(model)
    features = [_statement(f"f{j}", [model.feature_names[j]], shape="ellipse") for j in used]
    classes = [_statement(f"k{k}", [model.class_names[k],
                                    f"intercept {format_number(model.intercept[k])}"],
                          style="rounded,filled", fillcolor=_class_colour(k))
               for k in range(model.n_classes)]
    edges = [_statement(f"f{j} -> k{k}", [format_number(w)],
                        color=_sign_colour(w), fontcolor=_sign_colour(w))
             for k in range(model.n_classes) for j, w in linear_terms(model, k)]
    # Features left, classes right, also for a class without any weight.
    ranks = [_rank("min", [f"f{j}" for j in used]),
             _rank("max", [f"k{k}" for k in range(model.n_classes)])]
    return ['rankdir="LR";', *features, *classes, *ranks, *edges]


def _sign_colour(weight: float) -> str:
    return _POSITIVE if weight > 0 else _NEGATIVE


_GRAPHS = {"rule_list": _rule_list_statements, "tree": _tree_statements,
           "linear": _linear_statements}
