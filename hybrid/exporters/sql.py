"""SQL export: one ``CASE`` expression that predicts like the IR model, for SQLite, DuckDB and kin.

Columns are double-quoted identifiers (an embedded ``"`` doubled) and string labels are
single-quoted literals (an embedded ``'`` doubled), so no name can end its quotes: names are
never written anywhere else, comments included. SQL cannot hold a NUL character in either,
so a name with one is refused.

Numbers are float literals with an exponent (``0.5e0``): DuckDB reads a literal without one
as a DECIMAL, which would change the comparisons. Python's shortest ``repr`` is used when it
lies far enough from a rounding boundary (see :func:`sql_number`), so the engine reads back
the IR's float64 exactly and the export predicts bit for bit what the IR predicts.

A NULL feature behaves like NaN in the IR. A comparison with NULL is NULL and ``CASE`` does
not take a NULL branch, so a rule list skips every rule that tests the feature; a tree path
that goes right at a split says ``("x" > t OR "x" IS NULL)``, so a NULL goes right, as the IR
sends a NaN. A linear model's prediction is NULL when a feature it weighs is NULL. Store
missing values as NULL, not NaN: engines with a NaN value (DuckDB, PostgreSQL) order it above
every number, so there a NaN satisfies a rule's ``x > t``.
"""

import math
from fractions import Fraction

from ..ir import InterpretableModel, LinearModel, Predicate, Rule, RuleListModel, TreeModel
from ._format import code_label, condition_code, dispatch, score_code

__all__ = ["to_sql", "to_sql_expression", "sql_number", "quote_identifier"]

_INDENT = "  "

# Literals that SQLite and DuckDB both read as infinities (the exponent overflows).
_INFINITIES = {math.inf: "1e999", -math.inf: "-1e999"}

# How far, in units in the last place, a parser may be off and still read a literal back
# exactly. SQLite (3.40 checked) scales the decimal by a power of ten in 80-bit long double:
# at most about 15 roundings of 2**-64, under 1/100 ulp, down to magnitudes of 1e-289, below
# which it divides twice in double.
_PARSE_SLACK = Fraction(1, 64)


def to_sql(model: InterpretableModel, table: str = "features") -> str:
    """A query that adds a ``"prediction"`` column to every row of ``table``.

    Parameters
    ----------
    model : InterpretableModel
        A rule list, tree or linear model.
    table : str, default="features"
        The table holding one column per feature, named as ``model.feature_names``; it is
        quoted as one identifier. Make the columns DOUBLE: in DuckDB and PostgreSQL ``REAL``
        is a 32-bit float, which rounds the features before they are compared.

    Returns
    -------
    str
        ``SELECT *, <expression> AS "prediction" FROM "<table>";`` ending in ``\\n``.

    Examples
    --------
    >>> import sqlite3
    >>> from hybrid.ir import Predicate, Rule, RuleListModel
    >>> model = RuleListModel(("x",), (0, 1), ("no", "yes"), rules=(
    ...     Rule((Predicate(0, ">", 0.5),), 1, (0.1, 0.9), 40, 0.9),
    ...     Rule((), 0, (0.8, 0.2), 60, 0.8)))
    >>> db = sqlite3.connect(":memory:")
    >>> _ = db.execute('CREATE TABLE features ("x" DOUBLE)')
    >>> _ = db.executemany("INSERT INTO features VALUES (?)", [(0.7,), (0.5,), (None,)])
    >>> db.execute(to_sql(model)).fetchall()
    [(0.7, 1), (0.5, 0), (None, 0)]
    """
    expression = dispatch(_EXPRESSIONS, model, "SQL")
    expression[-1] += ' AS "prediction"'
    return "\n".join(["SELECT *,", *(_INDENT + line for line in expression),
                      f"FROM {quote_identifier(table)};"]) + "\n"


def to_sql_expression(model: InterpretableModel) -> str:
    """The prediction of ``model`` as one SQL expression over the feature columns.

    A rule list is a ``CASE`` with one ``WHEN`` per rule, in order, and the default as
    ``ELSE``. A tree is a ``CASE`` with one ``WHEN`` per leaf, its path's conditions joined
    by ``AND`` (the last leaf as ``ELSE``): nested ``CASE`` expressions would mirror the
    splits, but SQLite's parser overflows beyond 23 of them, while paths of hundreds of
    conditions run in SQLite and DuckDB alike. A linear model is a ``CASE`` with one ``WHEN``
    per class, taken when the class's score beats every earlier class's and ties or beats
    every later one's: the first maximum, as numpy's ``argmax``. Scores are written inline,
    their terms in the IR's order.

    Returns
    -------
    str
        The expression; the label literals it yields are ints or single-quoted strings.

    Raises
    ------
    ValueError
        When a name holds a NUL character or a number is NaN (SQL has no NaN literal).
    TypeError
        When a class label is neither int nor str.
    """
    return "\n".join(dispatch(_EXPRESSIONS, model, "SQL"))


def quote_identifier(name: str) -> str:
    """``name`` as a double-quoted SQL identifier: ``a"b`` becomes ``"a""b"``."""
    return '"' + _without_nul(name).replace('"', '""') + '"'


def sql_number(value: float) -> str:
    """A float literal that SQLite and DuckDB read back to exactly ``value``, e.g. ``0.5e0``.

    DuckDB reads decimals correctly rounded, but SQLite (3.40 checked) scales them in long
    double and misreads about one shortest ``repr`` in ten thousand by one unit in the last
    place: those that lie within a hair of the midpoint between two doubles. Such values are
    written with 18 significant digits instead, which puts the literal within 0.05 ulp of
    ``value``, far from any midpoint. Exact in both engines for zero, infinities and
    magnitudes from 1e-289 up.

    Raises
    ------
    ValueError
        For NaN, which has no SQL literal.
    """
    value = float(value)
    if math.isnan(value):
        raise ValueError("SQL has no NaN literal; the model holds a NaN threshold or weight")
    if math.isinf(value):
        return _INFINITIES[value]
    text = repr(value)
    if not _far_from_midpoint(value, text):
        text = format(value, ".17e")
    return text if "e" in text else text + "e0"


def _far_from_midpoint(value: float, text: str) -> bool:
    """Whether the decimal ``text`` stays :data:`_PARSE_SLACK` inside the interval of reals
    that round to ``value``, so that a parser that far off still reads ``value``."""
    gap = Fraction(math.ulp(value))
    if abs(math.frexp(value)[0]) == 0.5:  # a power of two: the neighbour below is nearer
        gap /= 2
    return abs(Fraction(text) - Fraction(value)) <= (Fraction(1, 2) - _PARSE_SLACK) * gap


def _without_nul(text: str) -> str:
    if "\0" in text:
        raise ValueError(f"SQL cannot hold the NUL character in {text!r}")
    return text


def _label(label) -> str:
    """A class label as an SQL literal: an integer, or a single-quoted string."""
    label = code_label(label)
    if isinstance(label, int):
        return str(label)
    return "'" + _without_nul(label).replace("'", "''") + "'"


def _case(branches: list[tuple[str, str]], default: str | None = None) -> list[str]:
    """Lines of ``CASE WHEN test THEN value ... ELSE default END``.

    Expressions travel as lists of lines, and :func:`to_sql` indents them line by line rather
    than by replacing newlines in the text, because a quoted name may hold a newline.
    """
    lines = ["CASE", *(f"{_INDENT}WHEN {test} THEN {value}" for test, value in branches)]
    if default is not None:
        lines.append(f"{_INDENT}ELSE {default}")
    return lines + ["END"]


def _conjunction(tests: list[str]) -> str:
    return " AND ".join(tests) or "TRUE"


def _column(model: InterpretableModel):
    """Feature index -> quoted column of ``model``, for the shared code helpers."""
    return lambda feature: quote_identifier(model.feature_names[feature])


def _condition(predicate: Predicate, model: InterpretableModel) -> str:
    return condition_code(predicate, _column(model), sql_number)


def _right_or_null(predicate: Predicate, model: InterpretableModel) -> str:
    """A condition on a tree path; the right branch (``>``) also takes NULL, as the IR sends
    NaN right."""
    test = _condition(predicate, model)
    if predicate.op == "<=":
        return test
    return f"({test} OR {quote_identifier(model.feature_names[predicate.feature])} IS NULL)"


def _first_match(rules: list[Rule], model: InterpretableModel, condition) -> list[str]:
    """A ``CASE`` answering the first of ``rules`` whose conditions hold, the last as ELSE."""
    *tried, last = rules
    answer = _label(model.classes[last.prediction])
    if not tried:
        return [answer]
    return _case([(_conjunction([condition(p, model) for p in rule.conditions]),
                   _label(model.classes[rule.prediction])) for rule in tried], answer)


def _rule_list_expression(model: RuleListModel) -> list[str]:
    return _first_match(list(model.rules), model, _condition)


def _tree_expression(model: TreeModel) -> list[str]:
    """One ``WHEN`` per leaf path: the paths are exclusive, so their order does not matter."""
    return _first_match([rule for _, rule in model.leaf_rules()], model, _right_or_null)


def _linear_expression(model: LinearModel) -> list[str]:
    scores = [f"({score_code(model, k, _column(model), sql_number)})"
              for k in range(model.n_classes)]
    branches = []
    for k, score in enumerate(scores):
        tests = [f"{score} {'>' if j < k else '>='} {other}"
                 for j, other in enumerate(scores) if j != k]
        branches.append((_conjunction(tests), _label(model.classes[k])))
    return _case(branches)


_EXPRESSIONS = {"rule_list": _rule_list_expression, "tree": _tree_expression,
                "linear": _linear_expression}
