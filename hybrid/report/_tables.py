"""What a report says, independent of its format: sections of blocks (tables, figures, code).

The Markdown and HTML renderers lay out the same :func:`sections` in their own syntax, so the
outline is decided and every number formatted here, once. Text in blocks is plain and
unescaped; each renderer escapes it for its format, because class and surrogate names come from
users.
"""

import math
from dataclasses import dataclass

__all__ = ["SECTIONS", "Table", "Subheading", "Figure", "Code", "Diagram", "title", "sections",
           "unit_label"]

# Section id -> (heading, one-line introduction). The ids are the HTML anchors.
SECTIONS = {
    "summary": ("Summary", "How well the teacher predicts, and how faithfully each surrogate "
                           "imitates it: fidelity is the share of test samples on which the "
                           "surrogate predicts the teacher's label."),
    "fidelity-vs-complexity": ("Fidelity vs complexity",
                               "Fidelity across each surrogate's complexity sweep; the bars are "
                               "95% intervals and the star marks the chosen model."),
    "per-class": ("Per-class fidelity",
                  "Fidelity: the share of the test samples the teacher puts in a class that the "
                  "surrogate puts there too. Precision: the share of the surrogate's "
                  "predictions of a class that the teacher agrees with."),
    "sweep": ("Complexity sweep", "One row per setting of the swept parameter."),
    "rules": ("Rules", "Each surrogate as text; it predicts exactly as written."),
    "tree": ("Tree", "Each tree surrogate as a diagram."),
}

# Figure key -> caption; the keys of the renderers' ``figure_paths`` and ``figures``.
_FIGURES = {
    "fidelity_vs_complexity": "Test and validation fidelity against complexity, per surrogate.",
    "per_class_fidelity": "Test fidelity per class the teacher predicts, per surrogate.",
}

_MISSING = "–"


@dataclass(frozen=True)
class Table:
    """A table of formatted, unescaped cells.

    Parameters
    ----------
    header : tuple of str
        Column titles.
    rows : tuple of tuple of str
        Cells, each row as long as ``header``.
    numeric : tuple of bool
        Per column, whether it holds numbers (renderers align those right).
    """

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]


@dataclass(frozen=True)
class Subheading:
    """A heading inside a section, usually a surrogate's name."""

    text: str


@dataclass(frozen=True)
class Figure:
    """A figure: ``source`` is whatever the renderer was given (a path, or PNG bytes)."""

    caption: str
    source: object


@dataclass(frozen=True)
class Code:
    """Plain text shown verbatim in a monospaced block."""

    text: str


@dataclass(frozen=True)
class Diagram:
    """Trusted SVG markup, shown as a picture where the format allows markup."""

    svg: str


def title(metrics: dict) -> str:
    """The report title, naming the data set."""
    return f"hybrid report: {metrics['data']['name']}"


def sections(metrics: dict, figures: dict, rules_text: dict[str, str] | None = None,
             svgs: dict[str, str] | None = None) -> dict[str, list]:
    """The report's content: section id -> its blocks in reading order.

    Parameters
    ----------
    metrics : dict
        The run's metrics (the content of ``RUN/metrics.json``).
    figures : dict
        Figure key -> the renderer's source for it (a path or PNG bytes); others are left out.
    rules_text : dict of str to str or None, default=None
        Surrogate name -> its rules as plain text.
    svgs : dict of str to str or None, default=None
        Surrogate name -> SVG markup of its diagram.

    Returns
    -------
    dict of str to list
        Keys from :data:`SECTIONS`, in its order, without the sections that have no blocks;
        values are :class:`Table`, :class:`Subheading`, :class:`Figure`, :class:`Code` and
        :class:`Diagram` blocks.
    """
    content = {
        "summary": [_run_table(metrics), _summary_table(metrics)],
        "fidelity-vs-complexity": _figure(figures, "fidelity_vs_complexity"),
        "per-class": _figure(figures, "per_class_fidelity") + _titled(_per_class_tables(metrics)),
        "sweep": _titled(_sweep_tables(metrics)),
        "rules": _titled({name: Code(text) for name, text in (rules_text or {}).items()}),
        "tree": _titled({name: Diagram(svg) for name, svg in (svgs or {}).items()}),
    }
    return {section_id: blocks for section_id, blocks in content.items() if blocks}


def _figure(figures: dict, key: str) -> list[Figure]:
    return [Figure(_FIGURES[key], figures[key])] if key in figures else []


def _titled(blocks: dict) -> list:
    """Each block of ``blocks`` after a :class:`Subheading` with its key."""
    return [item for heading, block in blocks.items() for item in (Subheading(heading), block)]


def _fmt(value) -> str:
    """A rate or a duration to 3 decimals; ``None`` or NaN (not measured) as a dash."""
    if value is None or math.isnan(value):
        return _MISSING
    return f"{value:.3f}"


def _fmt_ci(ci) -> str:
    """A confidence interval as ``[0.900, 0.950]``; a dash when there is none."""
    if ci is None:
        return _MISSING
    low, high = ci
    return f"[{_fmt(low)}, {_fmt(high)}]"


def _fmt_value(value) -> str:
    """A count or a parameter value: floats in short ``g`` form (``32.0`` -> ``32``)."""
    if value is None:
        return _MISSING
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def unit_label(unit: str) -> str:
    """A complexity unit as words: ``nonzero_weights`` -> ``nonzero weights``."""
    return unit.replace("_", " ")


def _table(columns: list[tuple[str, bool]], rows) -> Table:
    """A :class:`Table` from ``(title, numeric)`` columns and an iterable of rows."""
    return Table(header=tuple(name for name, _ in columns), rows=tuple(map(tuple, rows)),
                 numeric=tuple(numeric for _, numeric in columns))


def _run_table(metrics: dict) -> Table:
    """What was run: config, seed, version, data set and the teacher's accuracy."""
    run, data, teacher = metrics["run"], metrics["data"], metrics["teacher"]
    splits = ", ".join(f"{split} {_fmt_value(n)}" for split, n in data["splits"].items())
    rows = [
        ("config", str(run["config"])),
        ("seed", _fmt_value(run["seed"])),
        ("hybrid version", str(run["hybrid_version"])),
        ("data set", str(data["name"])),
        ("classes", _fmt_value(len(data["class_names"]))),
        ("features", f"{_fmt_value(data['n_features'])} ({data['feature_kind']})"),
        ("samples", splits),
        ("teacher test accuracy", _fmt(teacher["test_accuracy"])),
        ("teacher validation accuracy", _fmt(teacher["val_accuracy"])),
        ("teacher train accuracy", _fmt(teacher["train_accuracy"])),
    ]
    return _table([("item", False), ("value", False)], rows)


def _summary_table(metrics: dict) -> Table:
    """One row per surrogate: complexity, test fidelity with its CI, accuracy, fit time."""
    columns = [("surrogate", False), ("complexity", True), ("test fidelity", True),
               ("95% CI", True), ("test accuracy", True), ("val fidelity", True),
               ("fit seconds", True)]
    rows = ((name, f"{_fmt_value(s['complexity'])} {unit_label(s['complexity_unit'])}",
             _fmt(s["test_fidelity"]), _fmt_ci(s.get("test_fidelity_ci")),
             _fmt(s["test_accuracy"]), _fmt(s["val_fidelity"]), _fmt(s["fit_seconds"]))
            for name, s in metrics["surrogates"].items())
    return _table(columns, rows)


def _per_class_tables(metrics: dict) -> dict[str, Table]:
    """Surrogate name -> a table with one row per class the teacher predicts."""
    columns = [("label", True), ("class", False), ("teacher n", True), ("fidelity", True),
               ("95% CI", True), ("surrogate n", True), ("precision", True)]
    return {name: _table(columns, map(_per_class_row, s["per_class"]))
            for name, s in metrics["surrogates"].items()}


def _per_class_row(row: dict) -> tuple[str, ...]:
    return (_fmt_value(row["label"]), str(row["name"]), _fmt_value(row["n_teacher"]),
            _fmt(row["fidelity"]), _fmt_ci(row.get("fidelity_ci")),
            _fmt_value(row["n_surrogate"]), _fmt(row["precision"]))


def _sweep_tables(metrics: dict) -> dict[str, Table]:
    """Heading -> a table per swept surrogate, one row per setting, the chosen one marked.

    A setting is the chosen one when it equals the swept parameter in the surrogate's ``params``.
    """
    tables = {}
    for name, sweep in metrics["sweep"].items():
        param = sweep["param"]
        params = metrics["surrogates"].get(name, {}).get("params", {})
        columns = [(param, True), (f"complexity ({unit_label(sweep['complexity_unit'])})", True),
                   ("val fidelity", True), ("test fidelity", True), ("95% CI", True),
                   ("chosen", False)]
        rows = ((_fmt_value(p["value"]), _fmt_value(p["complexity"]), _fmt(p["val_fidelity"]),
                 _fmt(p["test_fidelity"]), _fmt_ci(p.get("test_fidelity_ci")),
                 "yes" if param in params and params[param] == p["value"] else "")
                for p in sweep["points"])
        tables[f"{name}: sweep over {param}"] = _table(columns, rows)
    return tables
