"""Exporters on tiny hand-built IR models: exact text, table and graph structure, hostile names."""

import re
import shutil
import subprocess
import sys

import graphviz
import numpy as np
import pytest

from hybrid.errors import ConfigError, HybridError
from hybrid.exporters import (EXPORTERS, SUFFIXES, dot_available, escape_markdown, render_svg,
                              to_dot, to_markdown, to_text)
from hybrid.ir import LinearModel, Predicate, Rule, RuleListModel, TreeModel
from hybrid.jsonio import from_json

HOSTILE = ('say "hi"', "back\\slash\\", "line\nbreak", "<script>alert(1)</script>",
           "a|b -- c", "é ñ 数字")


@pytest.fixture(autouse=True)
def _skip_without_dot(request):
    if request.node.get_closest_marker("requires_dot") and shutil.which("dot") is None:
        pytest.skip("Graphviz's dot executable is not installed")


def make_rule_list(feature_names=("dim_0", "dim_1", "dim_2", "dim_3"),
                   class_names=("cat", "dog", "bird")):
    return RuleListModel(feature_names, tuple(range(len(class_names))), class_names, rules=(
        Rule((Predicate(3, ">", 0.41234), Predicate(1, "<=", 1.2)), 2, (0.02, 0.01, 0.97), 120,
             0.97),
        Rule((Predicate(2, "<=", -1250.5),), 0, (0.8, 0.15, 0.05), 40, 0.8),
        Rule((), 1, (0.25, 0.5, 0.25), 12, 0.5),
    ))


def make_tree(feature_names=("a", "b"), class_names=("no", "yes")):
    return TreeModel(
        feature_names, tuple(range(len(class_names))), class_names,
        left=np.array([1, -1, 3, -1, -1]), right=np.array([2, -1, 4, -1, -1]),
        feature=np.array([0, -2, 1, -2, -2]), threshold=np.array([0.5, -2.0, 1.25, -2.0, -2.0]),
        value=np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.0, 1.0]]),
        n_samples=np.array([100, 50, 50, 20, 30]),
    )


def make_linear(feature_names=("x", "y", "z"), class_names=("a", "b", "c")):
    coef = np.array([[1.3, 0.0, -0.8], [0.0, 0.0, 0.0], [0.0, 2.5, 0.1]])
    return LinearModel(feature_names, tuple(range(len(class_names))), class_names,
                       coef=coef[:len(class_names), :len(feature_names)],
                       intercept=np.array([0.12, -1.0, 0.0])[:len(class_names)])


def make_binary_linear():
    return LinearModel(("x", "y"), ("neg", "pos"), ("negative", "positive"),
                       coef=np.array([[-0.5, 0.0], [0.5, -0.03125]]),
                       intercept=np.array([1.0, -1.0]))


def make_default_only_rule_list():
    return RuleListModel(("x",), (0, 1), ("no", "yes"), rules=(Rule((), 1, (0.4, 0.6), 10, 0.6),))


def make_single_leaf_tree():
    return TreeModel(("x",), (0, 1), ("no", "yes"), left=np.array([-1]), right=np.array([-1]),
                     feature=np.array([-2]), threshold=np.array([-2.0]),
                     value=np.array([[0.4, 0.6]]), n_samples=np.array([10]))


def make_all_zero_linear():
    return LinearModel(("x",), (0, 1), ("no", "yes"), coef=np.zeros((2, 1)),
                       intercept=np.array([0.0, 0.5]))


MAKERS = [make_rule_list, make_tree, make_linear, make_binary_linear,
          make_default_only_rule_list, make_single_leaf_tree, make_all_zero_linear]
HOSTILE_MAKERS = [
    lambda: make_rule_list(HOSTILE[:4], HOSTILE[3:]),
    lambda: make_tree(HOSTILE[4:], HOSTILE[1:3]),
    lambda: make_linear(HOSTILE[:3], HOSTILE[3:]),
]


# --- text ---------------------------------------------------------------------------------------

def test_text_of_rule_list():
    assert to_text(make_rule_list()) == (
        "# rule list: 3 rules over 4 features, 3 classes\n"
        "# Rules are tried in order; the first that matches answers.\n"
        "IF dim_3 > 0.4123 AND dim_1 <= 1.2 THEN bird  [support 120, p=0.97]\n"
        "ELSE IF dim_2 <= -1250 THEN cat  [support 40, p=0.80]\n"
        "ELSE dog  [support 12, p=0.50]\n"
    )


@pytest.mark.parametrize("make, last_line", [
    (make_default_only_rule_list, "IF TRUE THEN yes  [support 10, p=0.60]"),
    (make_single_leaf_tree, "IF TRUE THEN yes  [support 10, p=0.60]"),
    (make_all_zero_linear, "class yes: score = 0.5"),
])
def test_text_of_degenerate_models(make, last_line):
    assert to_text(make()).splitlines()[-1] == last_line


def test_text_of_tree():
    assert to_text(make_tree()) == (
        "# tree: 3 leaves over 2 features, 2 classes\n"
        "# The rules are mutually exclusive: exactly one matches each input.\n"
        "IF a <= 0.5 THEN no  [support 50, p=0.90]\n"
        "IF a > 0.5 AND b <= 1.25 THEN no  [support 20, p=0.60]\n"
        "IF a > 0.5 AND b > 1.25 THEN yes  [support 30, p=1.00]\n"
    )


def test_text_of_linear_model_with_three_classes():
    assert to_text(make_linear()) == (
        "# linear: 4 nonzero weights over 3 features, 3 classes\n"
        "# The predicted class is the one with the highest score; "
        "probabilities are the softmax of the scores.\n"
        "class a: score = 0.12 + 1.3 * x - 0.8 * z\n"
        "class b: score = -1\n"
        "class c: score = 0 + 2.5 * y + 0.1 * z\n"
    )


def test_text_of_linear_model_with_two_classes():
    assert to_text(make_binary_linear()).splitlines()[2:] == [
        "class negative: score = 1 - 0.5 * x",
        "class positive: score = -1 + 0.5 * x - 0.03125 * y",
    ]


@pytest.mark.parametrize("make", HOSTILE_MAKERS)
def test_text_keeps_one_line_per_rule_with_hostile_names(make):
    model = make()
    lines = to_text(model).splitlines()
    assert len(lines) == 2 + (model.n_classes if model.kind == "linear" else model.complexity)
    assert "line break" in to_text(model)


# --- Markdown -----------------------------------------------------------------------------------

def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


def column_count(row: str) -> int:
    """Cells in a table row: the pipes that no backslash escapes, less one."""
    return re.sub(r"\\.", "", row).count("|") - 1


def test_markdown_of_rule_list():
    assert table_rows(to_markdown(make_rule_list())) == [
        "| # | IF | THEN | support | p |",
        "| ---: | --- | --- | ---: | ---: |",
        "| 1 | dim\\_3 > 0.4123 AND dim\\_1 <= 1.2 | bird | 120 | 0.97 |",
        "| 2 | dim\\_2 <= -1250 | cat | 40 | 0.80 |",
        "| 3 | TRUE | dog | 12 | 0.50 |",
    ]


@pytest.mark.parametrize("make", MAKERS + HOSTILE_MAKERS)
def test_markdown_table_has_a_row_per_rule_and_a_fixed_column_count(make):
    model = make()
    rows = table_rows(to_markdown(model))
    expected_rows = model.n_classes if model.kind == "linear" else model.complexity
    assert len(rows) == 2 + expected_rows
    assert len({column_count(row) for row in rows}) == 1


def test_markdown_of_linear_model_has_a_column_per_used_feature():
    rows = table_rows(to_markdown(make_linear()))
    assert rows[0] == "| class | intercept | x | y | z |"
    assert rows[3] == "| b | -1 |  |  |  |"


def test_markdown_escapes_hostile_names():
    markdown = to_markdown(make_rule_list(HOSTILE[:4], HOSTILE[3:]))
    assert "<script>" not in markdown
    assert "\\<script\\>alert(1)\\</script\\>" in markdown
    assert "back\\\\slash\\\\" in markdown
    assert escape_markdown("line\nbreak\r\u2028`*_[x]") == "line break  \\`\\*\\_\\[x\\]"


# --- DOT and SVG --------------------------------------------------------------------------------

def test_dot_of_tree_has_splits_with_yes_no_edges_and_one_filled_node_per_leaf():
    dot = to_dot(make_tree())
    assert dot.startswith("digraph tree {\n") and dot.endswith("}\n")
    assert '  n0 [label="a <= 0.5"];' in dot
    assert '  n0 -> n1 [label="yes"];' in dot and '  n0 -> n2 [label="no"];' in dot
    assert re.findall(r"^  (n\d+) \[label=\".*fillcolor", dot, re.M) == ["n1", "n3", "n4"]
    assert '  n4 [label="yes\\nsupport 30, p=1.00", style="rounded,filled", ' \
           'fillcolor="#ffffb3"];' in dot


def test_dot_of_rule_list_chains_conditions_to_the_default():
    dot = to_dot(make_rule_list())
    assert '  r0 [label="dim_3 > 0.4123\\nAND dim_1 <= 1.2"];' in dot
    assert re.findall(r"^  (r\d+ -> \w+) \[label=\"(yes|no)\"\];", dot, re.M) == [
        ("r0 -> c0", "yes"), ("r0 -> r1", "no"), ("r1 -> c1", "yes"), ("r1 -> c2", "no")]
    assert len(re.findall(r"^  c\d+ \[", dot, re.M)) == 3


def test_dot_of_linear_model_has_an_edge_per_nonzero_weight_coloured_by_sign():
    dot = to_dot(make_linear())
    edges = re.findall(r"^  (f\d+ -> k\d+) \[label=\"(\S+)\", color=\"(#\w+)\"", dot, re.M)
    assert edges == [("f0 -> k0", "1.3", "#2166ac"), ("f2 -> k0", "-0.8", "#b2182b"),
                     ("f1 -> k2", "2.5", "#2166ac"), ("f2 -> k2", "0.1", "#2166ac")]
    assert re.findall(r"^  (f\d+) \[", dot, re.M) == ["f0", "f1", "f2"]


@pytest.mark.parametrize("make", MAKERS + HOSTILE_MAKERS)
def test_dot_colours_are_six_digit_hex(make):
    colours = re.findall(r"color=\"([^\"]*)\"", to_dot(make()))
    assert colours and all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours)


@pytest.mark.parametrize("make", HOSTILE_MAKERS)
def test_dot_escapes_hostile_names_inside_quoted_strings(make):
    dot = to_dot(make())
    quoted = r'"(?:\\.|[^"\\])*"'
    for line in dot.splitlines()[1:-1]:
        assert re.fullmatch(rf"  (?:[^\"]|{quoted})*", line), line
    assert "line break" in dot


def test_dot_label_shows_escaped_names():
    dot = to_dot(make_linear(HOSTILE[:3], HOSTILE[3:]))
    assert '  f0 [label="say \\"hi\\"", shape="ellipse"];' in dot
    assert '  f1 [label="back\\\\slash\\\\", shape="ellipse"];' in dot
    assert '  k0 [label="<script>alert(1)</script>\\nintercept 0.12", ' in dot


@pytest.mark.requires_dot
@pytest.mark.parametrize("make", MAKERS + HOSTILE_MAKERS)
def test_dot_renders_to_svg(make):
    svg = graphviz.Source(to_dot(make())).pipe(format="svg", encoding="utf-8")
    assert "<svg" in svg


@pytest.mark.requires_dot
def test_svg_shows_hostile_names_as_literal_text():
    svg = EXPORTERS.get("svg")(make_linear(HOSTILE[:3], HOSTILE[3:]))
    assert "<script>" not in svg
    for text in ("&lt;script&gt;alert(1)&lt;/script&gt;", "say &quot;hi&quot;",
                 "back\\slash\\", "line break", "a|b &#45;&#45; c", "é ñ 数字"):
        assert text in svg


def test_render_svg_without_dot_asks_to_install_graphviz(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not dot_available()
    with pytest.raises(HybridError, match="apt-get install -y graphviz"):
        render_svg(to_dot(make_tree()))


# --- every exporter -----------------------------------------------------------------------------

EXPORTER_NAMES = ["text", "markdown", "json", "dot",
                  pytest.param("svg", marks=pytest.mark.requires_dot)]


@pytest.mark.parametrize("name", EXPORTER_NAMES)
@pytest.mark.parametrize("make", MAKERS + HOSTILE_MAKERS)
def test_same_model_gives_same_bytes(name, make):
    export = EXPORTERS.get(name)
    assert export(make()).encode() == export(make()).encode()


@pytest.mark.parametrize("make", MAKERS)
def test_json_exporter_writes_the_surrogate_file(make):
    model = make()
    X = np.random.default_rng(0).normal(size=(50, model.n_features))
    np.testing.assert_array_equal(from_json(EXPORTERS.get("json")(model)).predict(X),
                                  model.predict(X))


def test_registry_lists_exactly_the_seven_exporters_with_their_suffixes():
    assert EXPORTERS.names() == ["dot", "json", "markdown", "python", "sql", "svg", "text"]
    assert sorted(SUFFIXES) == EXPORTERS.names()


def test_unknown_exporter_names_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown exporter 'pdf'; choose from: dot, json, "
                                          "markdown, python, sql, svg, text"):
        EXPORTERS.get("pdf")


@pytest.mark.parametrize("export", [to_text, to_markdown, to_dot])
def test_exporters_refuse_what_is_not_an_ir_model(export):
    with pytest.raises(TypeError, match="no .* export for dict"):
        export({})


def test_exporters_import_neither_torch_nor_sklearn():
    code = ("import sys, hybrid.exporters; "
            "print(sorted({'torch', 'sklearn'} & {m.split('.')[0] for m in sys.modules}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
