"""Code exports (a standalone Python module, SQL) predict exactly what the IR predicts.

Every kind of model, fitted or built by hand, is run through each export on rows that sit on
every threshold and one float64 step either side of it, on near-ties of linear scores, and on
zeros, negatives and infinities; the answers must equal ``model.predict`` row for row.
"""

import ast
import json
import math
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from hybrid.exporters import EXPORTERS, SUFFIXES, to_python, to_sql, to_sql_expression
from hybrid.exporters.sql import sql_number
from hybrid.ir import LinearModel, Predicate, Rule, RuleListModel, TreeModel
from hybrid.surrogates import SURROGATES

from .test_exporters import (MAKERS, make_binary_linear, make_linear, make_rule_list,
                             make_tree)

# Distinct even case-insensitively: SQLite and DuckDB match quoted identifiers that way.
HOSTILE = ("it's", 'say "hi"', "back\\slash\\", "line\nbreak", 'end """ here',
           "<script>alert(1)</script>", "a -- comment", "x; DROP TABLE features; --",
           "é 数字", "para\u2028graph", "__import__('os').system('echo pwned')")

# Shortest reprs that SQLite 3.40 reads one unit in the last place off.
SQLITE_HARD = (5.018265514400992, 0.03178256287938638, 206355.5288451253, 8.98797290264975e-05,
               0.004086607743575586, 498.5184172363399)

ROW_ID = "row id"  # an extra column that orders the SQL results; no feature is named so


# --- models --------------------------------------------------------------------------------------

def synthetic_data(n_features=5, n_classes=4, n=300, seed=0):
    """Seeded rows whose class depends on a few features through thresholds."""
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=2.0, size=(n, n_features))
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] + 0.5 * X[:, 2] > 0.3)
    y = np.where(rng.random(n) < 0.1, rng.integers(0, n_classes, n), y) % n_classes
    return X, y


def fitted(name, hostile=False):
    """A surrogate fitted on :func:`synthetic_data`; ``hostile`` names features and labels
    with :data:`HOSTILE` strings."""
    X, y = synthetic_data()
    if hostile:
        X = pd.DataFrame(X, columns=list(HOSTILE[:X.shape[1]]))
        y = np.asarray(HOSTILE[-4:], dtype=object)[y]
        return SURROGATES.create(name).fit(X, y, class_names=dict(zip(y, y))).model_
    return SURROGATES.create(name).fit(X, y).model_


def make_sqlite_hard():
    """A rule list and thresholds SQLite misreads when written as plain ``repr``."""
    rules = tuple(Rule((Predicate(j % 2, "<=" if j % 3 else ">", t),), j % 2, (0.5, 0.5), 1, 0.5)
                  for j, t in enumerate(SQLITE_HARD))
    default = Rule((), 1, (0.4, 0.6), 1, 0.6)
    return RuleListModel(("a", "b"), (0, 1), ("no", "yes"), rules=rules + (default,))


def make_near_tie_linear():
    """0.1 * x + 0.2 * x is one float64 step above 0.3 * x for x = 1: the sum order matters."""
    return LinearModel(("x", "y"), ("first", "second", "third"), ("first", "second", "third"),
                       coef=np.array([[0.1, 0.2], [0.3, 0.0], [0.3, 0.0]]),
                       intercept=np.array([0.0, 0.0, 0.0]))


def make_deep_tree(depth=120):
    """A chain of splits deeper than Python nests blocks (100) and SQLite nests CASEs (23)."""
    n = 2 * depth + 1
    left = np.full(n, -1)
    right = np.full(n, -1)
    inner = np.arange(0, n - 1, 2)
    left[inner], right[inner] = inner + 1, inner + 2
    value = np.tile([0.9, 0.1], (n, 1))
    value[inner + 1] = [0.2, 0.8]
    return TreeModel(("x",), (0, 1), ("no", "yes"), left=left, right=right,
                     feature=np.where(left >= 0, 0, -1),
                     threshold=np.where(left >= 0, -np.arange(n) / 10, np.nan),
                     value=value, n_samples=np.ones(n, dtype=int))


HAND_BUILT = MAKERS + [
    lambda: make_rule_list(HOSTILE[:4], HOSTILE[4:7]),
    lambda: make_tree(HOSTILE[7:9], HOSTILE[9:]),
    lambda: make_linear(HOSTILE[:3], HOSTILE[-3:]),
    make_sqlite_hard, make_near_tie_linear, make_deep_tree,
]
SURROGATE_NAMES = ["tree", "rule_list", "sparse_linear"]
CASES = ([pytest.param(lambda n=n: fitted(n), id=f"fitted-{n}") for n in SURROGATE_NAMES]
         + [pytest.param(lambda n=n: fitted(n, hostile=True), id=f"hostile-{n}")
            for n in SURROGATE_NAMES]
         + [pytest.param(make, id=f"hand-{i}") for i, make in enumerate(HAND_BUILT)])


# --- rows ----------------------------------------------------------------------------------------

def thresholds(model):
    """``(feature, threshold)`` of every condition or split in ``model``."""
    if isinstance(model, TreeModel):
        inner = ~model.is_leaf
        return list(zip(model.feature[inner], model.threshold[inner]))
    if isinstance(model, RuleListModel):
        return [(p.feature, p.threshold) for rule in model.rules for p in rule.conditions]
    return []


def near_ties(model, X):
    """Rows of ``X`` moved along one feature until the two best scores (almost) meet."""
    out = []
    for x in X:
        scores = model.decision_function(x[None])[0]
        best, second = np.argsort(-scores, kind="stable")[:2]
        differs = np.flatnonzero(model.coef[best] != model.coef[second])
        if differs.size:
            j, tie = differs[0], x.copy()
            gap = model.coef[best, j] - model.coef[second, j]
            tie[j] += (scores[second] - scores[best]) / gap
            out += [tie, _shifted(tie, j, np.inf), _shifted(tie, j, -np.inf)]
    return out


def _shifted(x, j, towards):
    out = x.copy()
    out[j] = np.nextafter(out[j], towards)
    return out


def probe_rows(model, seed=1):
    """Random rows plus, for each threshold, rows on it and one step either side; zeros,
    negatives and infinities; near-ties of linear scores."""
    rng = np.random.default_rng(seed)
    base = rng.normal(scale=2.0, size=(40, model.n_features))
    rows = list(base) + [np.zeros(model.n_features), -np.ones(model.n_features),
                         np.full(model.n_features, np.inf), np.full(model.n_features, -np.inf)]
    for j, t in thresholds(model):
        for value in (t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf)):
            row = base[len(rows) % len(base)].copy()
            row[j] = value
            rows.append(row)
    if isinstance(model, LinearModel):
        rows += near_ties(model, base) + [np.ones(model.n_features)]
    return np.array(rows)


def nan_rows(model, n_base=10):
    """Rows with one NaN feature each (every feature of ``n_base`` probe rows), and all NaN."""
    base = probe_rows(model)[:n_base]
    rows = np.repeat(base, model.n_features, axis=0)
    rows[np.arange(len(rows)), np.tile(np.arange(model.n_features), len(base))] = np.nan
    return np.vstack([rows, np.full(model.n_features, np.nan)])


# --- running the exports -------------------------------------------------------------------------

def load_python(model) -> dict:
    """The namespace of the exported module, executed in a fresh dict."""
    namespace = {}
    exec(compile(to_python(model), "<export>", "exec"), namespace)
    return namespace


def predict_python(model, X):
    return load_python(model)["predict"](X.tolist())


def predict_sql(connection, model, X):
    """Predictions of :func:`to_sql` for ``X`` in a ``features`` table, NaN stored as NULL."""
    columns = [*model.feature_names, ROW_ID]
    quoted = ['"' + column.replace('"', '""') + '" DOUBLE' for column in columns]
    connection.execute(f"CREATE TABLE features ({', '.join(quoted)})")
    values = [[None if math.isnan(v) else float(v) for v in row] + [i] for i, row in enumerate(X)]
    placeholders = f"({', '.join('?' * len(columns))})"
    for start in range(0, len(values), 50):
        chunk = values[start:start + 50]
        connection.execute(f"INSERT INTO features VALUES {', '.join([placeholders] * len(chunk))}",
                           [v for row in chunk for v in row])
    result = connection.execute(to_sql(model)).fetchall()
    assert len(result) == len(X)
    return [row[-1] for row in sorted(result, key=lambda row: row[-2])]


def sqlite_connection():
    return sqlite3.connect(":memory:")


def duckdb_connection():
    duckdb = pytest.importorskip("duckdb")
    return duckdb.connect()


ENGINES = [pytest.param(sqlite_connection, id="sqlite"),
           pytest.param(duckdb_connection, id="duckdb")]


# --- parity --------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf - inf scores
@pytest.mark.parametrize("make", CASES)
def test_python_export_predicts_like_the_ir(make):
    model = make()
    X = np.vstack([probe_rows(model), nan_rows(model)])
    assert predict_python(model, X) == model.predict(X).tolist()


@pytest.mark.parametrize("make", CASES)
def test_python_export_predicts_probabilities_like_the_ir(make):
    model = make()
    X = probe_rows(model)[:40]
    module = load_python(model)
    expected = model.predict_proba(X)
    np.testing.assert_allclose(module["predict_proba"](X.tolist()), expected, rtol=1e-12, atol=0)
    row = dict(zip(model.feature_names, X[0]))
    assert module["predict_one"](row) == model.predict(X[:1])[0]
    np.testing.assert_allclose(module["predict_proba_one"](row), expected[0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("make", CASES)
def test_sql_export_predicts_like_the_ir(make, engine):
    model = make()
    X = probe_rows(model)
    if isinstance(model, LinearModel):  # inf - inf scores are NaN: see the NULL tests
        X = X[np.isfinite(X).all(axis=1)]
    assert predict_sql(engine(), model, X) == model.predict(X).tolist()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("make", CASES)
def test_sql_null_behaves_like_nan(make, engine):
    """A rule list or tree answers a NULL as the IR answers a NaN; a linear model answers
    NULL when a feature it weighs is NULL, as no score can be compared."""
    model = make()
    X = nan_rows(model)
    expected = model.predict(X).tolist()
    if isinstance(model, LinearModel):
        weighed = np.any(model.coef != 0, axis=0)
        expected = [None if np.isnan(x[weighed]).any() else label for x, label in zip(X, expected)]
    assert predict_sql(engine(), model, X) == expected


def test_near_tie_linear_is_decided_by_the_summation_order():
    model = make_near_tie_linear()
    X = np.array([[1.0, 1.0], [0.0, 0.0], [-1.0, -1.0]])
    # 0.1 + 0.2 > 0.3, 0 ties (the first class wins), -0.1 - 0.2 < -0.3.
    assert model.predict(X).tolist() == ["first", "first", "second"]
    assert predict_python(model, X) == model.predict(X).tolist()
    assert predict_sql(sqlite_connection(), model, X) == model.predict(X).tolist()


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf - inf scores
def test_python_export_runs_alone_without_numpy_or_hybrid(tmp_path):
    model = fitted("sparse_linear", hostile=True)
    X = probe_rows(model)
    path = tmp_path / "surrogate.py"
    path.write_text(to_python(model), encoding="utf-8")
    code = ("import json, runpy, sys\n"
            f"module = runpy.run_path({str(path)!r})\n"
            "print(json.dumps(module['predict'](json.loads(sys.stdin.read()))))\n"
            "assert not {'numpy', 'hybrid'} & {m.split('.')[0] for m in sys.modules}\n")
    done = subprocess.run([sys.executable, "-I", "-c", code], input=json.dumps(X.tolist()),
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == model.predict(X).tolist()


# --- hostile names -------------------------------------------------------------------------------

HOSTILE_MODELS = [pytest.param(lambda n=n: fitted(n, hostile=True), id=n) for n in SURROGATE_NAMES]


@pytest.mark.parametrize("make", HOSTILE_MODELS)
def test_python_export_keeps_hostile_names_as_data(make):
    model = make()
    tree = ast.parse(to_python(model))
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert names <= {"FEATURES", "CLASSES", "CLASS_NAMES", "_OUTCOMES", "_SPLITS", "_outcome",
                     "_scores", "_class_index", "_probabilities", "_row", "_named_row", "math",
                     "x", "node", "feature", "threshold", "left", "right", "scores", "best",
                     "index", "score", "top", "exps", "total", "value", "values", "rows",
                     "features", "row", "name", "float", "tuple", "len", "list", "enumerate",
                     "max", "sum", "ValueError"}
    strings = {node.value for node in ast.walk(tree)
               if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert set(model.feature_names) | set(model.classes) <= strings
    namespace = load_python(model)
    assert namespace["FEATURES"] == model.feature_names
    assert namespace["CLASSES"] == model.classes and namespace["CLASS_NAMES"] == model.class_names


def test_executing_the_python_export_only_defines_names(tmp_path):
    model = make_linear(HOSTILE[-3:], HOSTILE[:3])
    path = tmp_path / "surrogate.py"
    path.write_text(to_python(model), encoding="utf-8")
    code = (f"import runpy\nmodule = runpy.run_path({str(path)!r})\n"
            "print(module['predict']([[1.0, 2.0, 3.0]]))\n")
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pwned" not in done.stdout + done.stderr
    assert done.stdout.strip() == repr(model.predict(np.array([[1.0, 2.0, 3.0]])).tolist())
    public = {name for name in load_python(model) if not name.startswith("_")}
    assert public == {"math", "FEATURES", "CLASSES", "CLASS_NAMES", "predict", "predict_proba",
                      "predict_one", "predict_proba_one"}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("make", HOSTILE_MODELS)
def test_sql_export_with_hostile_names_leaves_the_table_alone(make, engine):
    model = make()
    connection = engine()
    X = probe_rows(model)[:20]
    assert predict_sql(connection, model, X) == model.predict(X).tolist()
    assert connection.execute("SELECT count(*) FROM features").fetchall() == [(len(X),)]


def test_sql_quotes_names_and_labels():
    model = RuleListModel(('a"b',), ("it's", "-- x"), ("p", "q"), rules=(
        Rule((Predicate(0, ">", 0.5),), 1, (0.0, 1.0), 1, 1.0), Rule((), 0, (1.0, 0.0), 1, 1.0)))
    assert to_sql(model, table='my "t"') == (
        "SELECT *,\n"
        "  CASE\n"
        "    WHEN \"a\"\"b\" > 0.5e0 THEN '-- x'\n"
        "    ELSE 'it''s'\n"
        "  END AS \"prediction\"\n"
        "FROM \"my \"\"t\"\"\";\n"
    )
    with pytest.raises(ValueError, match="NUL"):
        to_sql_expression(make_tree(("a\0", "b")))


# --- exact text ----------------------------------------------------------------------------------

def test_sql_of_rule_list():
    assert to_sql(make_rule_list()) == (
        'SELECT *,\n'
        '  CASE\n'
        '    WHEN "dim_3" > 0.41234e0 AND "dim_1" <= 1.2e0 THEN 2\n'
        '    WHEN "dim_2" <= -1250.5e0 THEN 0\n'
        '    ELSE 1\n'
        '  END AS "prediction"\n'
        'FROM "features";\n'
    )


def test_sql_of_tree_has_a_when_per_leaf_whose_right_branches_take_null():
    assert to_sql_expression(make_tree()) == (
        'CASE\n'
        '  WHEN "a" <= 0.5e0 THEN 0\n'
        '  WHEN ("a" > 0.5e0 OR "a" IS NULL) AND "b" <= 1.25e0 THEN 0\n'
        '  ELSE 1\n'
        'END'
    )


def test_sql_of_linear_model_takes_the_first_maximum():
    assert to_sql_expression(make_binary_linear()) == (
        "CASE\n"
        "  WHEN (1.0e0 - 0.5e0 * \"x\") >= (-1.0e0 + 0.5e0 * \"x\" - 0.03125e0 * \"y\") "
        "THEN 'neg'\n"
        "  WHEN (-1.0e0 + 0.5e0 * \"x\" - 0.03125e0 * \"y\") > (1.0e0 - 0.5e0 * \"x\") "
        "THEN 'pos'\n"
        "END"
    )


def test_python_of_rule_list_is_an_if_chain_in_rule_order():
    source = to_python(make_rule_list())
    assert "\nFEATURES = ('dim_0', 'dim_1', 'dim_2', 'dim_3')\nCLASSES = (0, 1, 2)\n" in source
    assert (
        "_OUTCOMES = (\n"
        "    (2, (0.02, 0.01, 0.97)),\n"
        "    (0, (0.8, 0.15, 0.05)),\n"
        "    (1, (0.25, 0.5, 0.25)),\n"
        ")\n\n\n"
        "def _outcome(x):\n"
        '    """Index of the first rule whose conditions all hold for row ``x``."""\n'
        "    if x[3] > 0.41234 and x[1] <= 1.2:\n"
        "        return 0\n"
        "    if x[2] <= -1250.5:\n"
        "        return 1\n"
        "    return 2\n"
    ) in source
    assert "import" not in source


def test_python_of_tree_is_a_table_of_splits():
    source = to_python(make_tree())
    assert "_SPLITS = {\n    0: (0, 0.5, 1, 2),\n    2: (1, 1.25, 3, 4),\n}\n" in source
    assert "_OUTCOMES = {\n    1: (0, (0.9, 0.1)),\n    3: (0, (0.6, 0.4)),\n" in source


def test_python_writes_non_finite_thresholds_as_float_calls():
    model = make_tree()
    model.threshold[0], model.threshold[2] = np.inf, -np.inf
    source = to_python(model)
    assert "0: (0, float('inf'), 1, 2)" in source and "2: (1, float('-inf'), 3, 4)" in source
    X = np.array([[1e300, 0.0], [np.inf, -np.inf], [np.nan, 0.0]])
    assert predict_python(model, X) == model.predict(X).tolist()


# --- numbers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, literal", [
    (0.5, "0.5e0"), (-1250.5, "-1250.5e0"), (1e-05, "1e-05"), (0.0, "0.0e0"),
    (1e300, "1e+300"), (np.inf, "1e999"), (-np.inf, "-1e999"),
    (5.018265514400992, "5.01826551440099156e+00"),
])
def test_sql_number_literals(value, literal):
    assert sql_number(value) == literal


def test_sql_has_no_nan_literal():
    with pytest.raises(ValueError, match="NaN"):
        sql_number(np.nan)


@pytest.mark.parametrize("engine", ENGINES)
def test_sql_numbers_read_back_exactly(engine):
    rng = np.random.default_rng(0)
    values = np.concatenate([
        SQLITE_HARD, [0.0, -0.0, 1e-05, 0.1, 1 / 3, 2.0 ** -30, 1.7976931348623157e308, 1e-289],
        rng.normal(size=3000), rng.uniform(1, 10, 3000) * 10.0 ** rng.integers(-289, 308, 3000),
        rng.normal(size=2000).astype(np.float32),
    ]).astype(np.float64)
    values = np.concatenate([values, -values])
    connection = engine()
    for start in range(0, len(values), 500):
        chunk = values[start:start + 500]
        read = connection.execute("SELECT " + ", ".join(map(sql_number, chunk))).fetchall()[0]
        assert list(read) == chunk.tolist()


# --- registry and errors -------------------------------------------------------------------------

@pytest.mark.parametrize("name, suffix", [("python", ".py"), ("sql", ".sql")])
@pytest.mark.parametrize("make", MAKERS)
def test_code_exporters_are_registered_and_deterministic(name, suffix, make):
    export = EXPORTERS.get(name)
    assert SUFFIXES[name] == suffix
    assert export(make()).encode() == export(make()).encode()


@pytest.mark.parametrize("export", [to_python, to_sql, to_sql_expression])
def test_code_exporters_refuse_what_is_not_an_ir_model(export):
    with pytest.raises(TypeError, match="no .* export for dict"):
        export({})


@pytest.mark.parametrize("export", [to_python, to_sql_expression])
def test_code_exporters_refuse_float_labels(export):
    model = make_linear()
    model = LinearModel(model.feature_names, (0.5, 1.5, 2.5), model.class_names,
                        coef=model.coef, intercept=model.intercept)
    with pytest.raises(TypeError, match="neither int nor str"):
        export(model)
