"""What a report says, independent of its format: sections of blocks (tables, figures, code).

The Markdown and HTML renderers lay out the same :func:`sections` in their own syntax, so the
outline is decided and every number formatted here, once. Text in blocks is plain and
unescaped; each renderer escapes it for its format, because class and surrogate names come from
users.
"""

import math
from dataclasses import dataclass

__all__ = ["SECTIONS", "MAX_CARDS", "Table", "Badge", "Subheading", "Note", "Figure", "Code",
           "Diagram", "Gallery", "Evidence", "title", "sections", "unit_label"]

# Section id -> (heading, one-line introduction). The ids are the HTML anchors.
SECTIONS = {
    "summary": ("Summary", "How well the teacher predicts, and how faithfully each surrogate "
                           "imitates it: fidelity is the share of test samples on which the "
                           "surrogate predicts the teacher's label."),
    "suspects": ("Suspect concepts",
                 "Rules that read a concept the config names as suspect (it should not decide a "
                 "class), with the rows each answered in training, and what the cue is worth to "
                 "the CNN: its accuracy on validation data (cue as in training) against test "
                 "rows without the cue."),
    "fidelity-vs-complexity": ("Fidelity vs complexity",
                               "Fidelity across each surrogate's complexity sweep; the bars are "
                               "95% intervals and the star marks the chosen model."),
    "per-class": ("Per-class fidelity",
                  "Fidelity: the share of the test samples the teacher puts in a class that the "
                  "surrogate puts there too. Precision: the share of the surrogate's "
                  "predictions of a class that the teacher agrees with."),
    "sweep": ("Complexity sweep", "One row per setting of the swept parameter."),
    "rules": ("Rules", "Each rule of the rule-based surrogates with the rows it answers on each "
                       "split, its features' evidence when the run has it, then each surrogate as "
                       "text; it predicts exactly as written. Rules marked 'defers' hand their "
                       "rows to the CNN in the hybrid predictor."),
    "tree": ("Tree", "Each tree surrogate as a diagram."),
    "deferral": ("Hybrid predictor",
                 "The rules answer where their validation fidelity is at least the threshold, the "
                 "CNN elsewhere. Coverage: the share of test samples the rules answer; rules' "
                 "fidelity: their agreement with the CNN on those samples; combined accuracy: the "
                 "hybrid's accuracy on the whole test split."),
    "calibration": ("Calibration",
                    "Whether the CNN is right as often as it is confident (its top class "
                    "probability). The expected calibration error (ECE) is the gap between "
                    "confidence and accuracy per confidence bin, weighted by the bin's samples."),
    "faithfulness": ("Attribution faithfulness",
                     "How well each pixel-attribution method (explaining the CNN's predicted "
                     "class) ranks the pixels the CNN needs: deleting the top-ranked pixels first "
                     "should make the class probability fall fast (lower deletion AUC is better), "
                     "inserting them first should make it rise fast (higher insertion AUC is "
                     "better). Random rankings are the baseline."),
    "concepts": ("Concepts",
                 "How well the concept bottleneck predicts each named concept on the test split: "
                 "accuracy at probability 0.5 and the area under the ROC curve."),
    "disagreements": ("Disagreement gallery",
                      "Test samples on which a surrogate and the CNN disagree, with the CNN's "
                      "confidence in its answer and the rule that fired."),
}

#: The most disagreements shown per surrogate.
MAX_CARDS = 24

# Figure key -> caption; the keys of the renderers' ``figure_paths`` and ``figures``.
_FIGURES = {
    "fidelity_vs_complexity": "Test and validation fidelity against complexity, per surrogate.",
    "per_class_fidelity": "Test fidelity per class the teacher predicts, per surrogate.",
    "deferral": "Rules' fidelity on the rows they answer (solid) and the hybrid's accuracy "
                "(dashed) against coverage as the threshold varies; the marker is the configured "
                "threshold.",
    "reliability": "The CNN's accuracy against its confidence per bin (the diagonal is perfect "
                   "calibration), and the test samples per bin.",
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


class Badge(str):
    """A table cell that flags its row, e.g. ``defers``: plain text in Markdown, a badge in HTML."""

    __slots__ = ()


@dataclass(frozen=True)
class Subheading:
    """A heading inside a section, usually a surrogate's name."""

    text: str


@dataclass(frozen=True)
class Note:
    """A sentence of plain text between other blocks."""

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


@dataclass(frozen=True)
class Gallery:
    """Samples shown as cards: one per row of ``table``, with the image of the same position.

    Formats without images show ``table`` alone.

    Parameters
    ----------
    table : Table
        One row per sample; the header names each fact on a card.
    images : tuple of (bytes or None)
        PNG bytes per row, ``None`` where there is no image.
    """

    table: Table
    images: tuple


@dataclass(frozen=True)
class Evidence:
    """Features with their prototype strips: one per row of ``table``, the strip of the same row.

    The last column of ``table`` captions the strip; formats without images show it alone.

    Parameters
    ----------
    table : Table
        One row per feature: its name, where the surrogate reads it, the strip's caption.
    images : tuple
        The renderer's source of each row's strip (a path, or PNG bytes), ``None`` where the
        feature has no evidence.
    """

    table: Table
    images: tuple


def title(metrics: dict) -> str:
    """The report title, naming the data set."""
    return f"hybrid report: {metrics['data']['name']}"


def sections(metrics: dict, figures: dict, rules_text: dict[str, str] | None = None,
             svgs: dict[str, str] | None = None,
             images: dict[int, bytes] | None = None,
             evidence: dict[str, dict] | None = None) -> dict[str, list]:
    """The report's content: section id -> its blocks in reading order.

    Parameters
    ----------
    metrics : dict
        The run's metrics (the content of ``RUN/metrics.json``). Sections fed by optional keys
        (``rules``, ``deferral``, ``disagreements`` per surrogate; ``calibration``) are left out
        when no surrogate has them.
    figures : dict
        Figure key -> the renderer's source for it (a path or PNG bytes); others are left out.
    rules_text : dict of str to str or None, default=None
        Surrogate name -> its rules as plain text.
    svgs : dict of str to str or None, default=None
        Surrogate name -> SVG markup of its diagram.
    images : dict of int to bytes or None, default=None
        Sample index -> PNG bytes of its image, for the disagreement cards.
    evidence : dict of str to dict or None, default=None
        Feature name -> its evidence: ``source`` (the renderer's source of its prototype strip)
        and, optionally, ``prototypes`` (sample ids) and ``activations``. Each surrogate whose
        rules (``features`` of its ``rules``) or weights (``terms``) read features gets a
        table of them.

    Returns
    -------
    dict of str to list
        Keys from :data:`SECTIONS`, in its order, without the sections that have no blocks;
        values are :class:`Table`, :class:`Subheading`, :class:`Note`, :class:`Figure`,
        :class:`Code`, :class:`Diagram`, :class:`Gallery` and :class:`Evidence` blocks.
    """
    surrogates = metrics["surrogates"]
    content = {
        "summary": [_run_table(metrics), _summary_table(metrics)],
        "suspects": _titled(_suspect_blocks(metrics.get("suspect_concepts") or {})),
        "fidelity-vs-complexity": _figure(figures, "fidelity_vs_complexity"),
        "per-class": _figure(figures, "per_class_fidelity") + _titled(_per_class_tables(metrics)),
        "sweep": _titled(_sweep_tables(metrics)),
        "rules": _titled(_rules_blocks(surrogates, rules_text or {}, evidence or {})),
        "tree": _titled({name: [Diagram(svg)] for name, svg in (svgs or {}).items()}),
        "deferral": _deferral_blocks(surrogates, figures),
        "calibration": _calibration_blocks(metrics.get("calibration"), figures),
        "faithfulness": _faithfulness_blocks(metrics.get("attribution_faithfulness")),
        "concepts": _concept_blocks(metrics.get("concepts")),
        "disagreements": _titled(_galleries(surrogates, images or {})),
    }
    return {section_id: blocks for section_id, blocks in content.items() if blocks}


def _figure(figures: dict, key: str) -> list[Figure]:
    return [Figure(_FIGURES[key], figures[key])] if key in figures else []


def _titled(groups: dict[str, list]) -> list:
    """The blocks of each non-empty group of ``groups`` after a :class:`Subheading` with its key."""
    return [item for heading, blocks in groups.items() if blocks
            for item in (Subheading(heading), *blocks)]


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


def _per_class_tables(metrics: dict) -> dict[str, list[Table]]:
    """Surrogate name -> a table with one row per class the teacher predicts."""
    columns = [("label", True), ("class", False), ("teacher n", True), ("fidelity", True),
               ("95% CI", True), ("surrogate n", True), ("precision", True)]
    return {name: [_table(columns, map(_per_class_row, s["per_class"]))]
            for name, s in metrics["surrogates"].items()}


def _per_class_row(row: dict) -> tuple[str, ...]:
    return (_fmt_value(row["label"]), str(row["name"]), _fmt_value(row["n_teacher"]),
            _fmt(row["fidelity"]), _fmt_ci(row.get("fidelity_ci")),
            _fmt_value(row["n_surrogate"]), _fmt(row["precision"]))


def _sweep_tables(metrics: dict) -> dict[str, list[Table]]:
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
        tables[f"{name}: sweep over {param}"] = [_table(columns, rows)]
    return tables


def _rules_blocks(surrogates: dict, rules_text: dict[str, str],
                  evidence: dict[str, dict]) -> dict[str, list]:
    """Surrogate name -> its rule table (when measured), the evidence of the features it reads
    (when the run has evidence) and its rules as text (when given)."""
    names = dict.fromkeys([*surrogates, *rules_text])
    return {name: _rule_table(surrogates.get(name, {}))
            + _evidence_blocks(surrogates.get(name, {}), evidence) + _code(rules_text.get(name))
            for name in names}


def _code(text: str | None) -> list[Code]:
    return [] if text is None else [Code(text)]


def _rule_table(surrogate: dict) -> list[Table]:
    """One row per rule with its support and fidelity per split; deferring rules flagged."""
    if not surrogate.get("rules"):
        return []
    deferring = set(surrogate.get("deferral", {}).get("deferring_rules", ()))
    columns = [("#", True), ("IF", False), ("THEN", False), ("train support", True),
               ("train precision", True), ("val n", True), ("val fidelity", True),
               ("test n", True), ("test fidelity", True), ("95% CI", True), ("hybrid", False)]
    rows = ((_fmt_value(r["index"]), str(r["conditions"]), str(r["prediction"]),
             _fmt_value(r.get("support")), _fmt(r.get("precision")), _fmt_value(r.get("val_n")),
             _fmt(r.get("val_fidelity")), _fmt_value(r.get("test_n")),
             _fmt(r.get("test_fidelity")), _fmt_ci(r.get("test_fidelity_ci")),
             Badge("defers") if r["index"] in deferring else "")
            for r in surrogate["rules"])
    return [_table(columns, rows)]


def _evidence_blocks(surrogate: dict, evidence: dict[str, dict]) -> list:
    """A note and one row per feature the surrogate reads: where, and its prototype strip."""
    use = _feature_use(surrogate)
    if not evidence or not use:
        return []
    columns = [("feature", False), ("read by", False), ("prototypes", False)]
    rows = ((name, "; ".join(places), _evidence_caption(evidence.get(name)))
            for name, places in use.items())
    images = tuple(evidence.get(name, {}).get("source") for name in use)
    return [Note("Feature evidence: the training images on which each feature is highest "
                 "(prototypes), coloured where they make the feature high (its attribution)."),
            Evidence(_table(columns, rows), images)]


def _feature_use(surrogate: dict) -> dict[str, list[str]]:
    """Feature name -> where the surrogate reads it: ``rules 3, 5 (high)``, ``class 4 (+0.52)``.

    Features come in the order the rules, then the weights, first read them.
    """
    directions = {}
    for rule in surrogate.get("rules", ()):
        for feature in rule.get("features", ()):
            directions.setdefault(feature["name"], {}).setdefault(feature["direction"], []).append(
                _fmt_value(rule["index"]))
    use = {name: [f"{'rule' if len(ids) == 1 else 'rules'} {', '.join(ids)} ({direction})"
                  for direction, ids in by_direction.items()]
           for name, by_direction in directions.items()}
    for term in surrogate.get("terms", ()):
        use.setdefault(term["feature"], []).append(f"class {term['class']} ({term['weight']:+.3g})")
    return use


def _evidence_caption(entry: dict | None) -> str:
    """The prototypes' sample ids and activation range, e.g. ``samples 17, 4; activation 3.210 to 2.870``."""
    if entry is None:
        return _MISSING
    if not entry.get("prototypes"):
        return ""
    activations = entry["activations"]
    return (f"samples {', '.join(map(_fmt_value, entry['prototypes']))}; activation "
            f"{_fmt(activations[0])} to {_fmt(activations[-1])}")


def _deferral_blocks(surrogates: dict, figures: dict) -> list:
    """The coverage figure and one row per surrogate with a hybrid predictor."""
    hybrids = {name: s["deferral"] for name, s in surrogates.items() if s.get("deferral")}
    if not hybrids:
        return []
    columns = [("surrogate", False), ("threshold", True), ("deferring rules", False),
               ("coverage", True), ("rules' fidelity", True), ("hybrid fidelity", True),
               ("combined accuracy", True)]
    rows = ((name, _fmt_value(d["threshold"]), _fmt_ids(d.get("deferring_rules", ())),
             _fmt(d.get("coverage")), _fmt(d.get("rules_fidelity")),
             _fmt(d.get("hybrid_fidelity")), _fmt(d.get("hybrid_accuracy")))
            for name, d in hybrids.items())
    return _figure(figures, "deferral") + [_table(columns, rows)]


def _fmt_ids(ids) -> str:
    """Rule numbers as ``3, 7``; ``none`` when no rule defers."""
    return ", ".join(map(_fmt_value, ids)) or "none"


def _calibration_blocks(calibration: dict | None, figures: dict) -> list:
    """The ECE, the reliability figure and one row per confidence bin."""
    if not calibration:
        return []
    split = calibration.get("split", "test")
    summary = _table([("item", False), ("value", False)],
                     [("split", str(split)), ("expected calibration error", _fmt(calibration["ece"])),
                      ("bins", _fmt_value(calibration.get("n_bins", len(calibration["bins"]))))])
    columns = [("confidence bin", True), ("n", True), ("mean confidence", True),
               ("accuracy", True), ("gap", True)]
    rows = ((f"({_fmt(b['lower'])}, {_fmt(b['upper'])}]", _fmt_value(b["n"]),
             _fmt(b.get("confidence")), _fmt(b.get("accuracy")), _fmt(_gap(b)))
            for b in calibration["bins"])
    return [summary] + _figure(figures, "reliability") + [_table(columns, rows)]


def _faithfulness_blocks(scores: dict | None) -> list:
    """One row per attribution method and one for random maps: mean deletion/insertion AUC."""
    if not scores:
        return []
    columns = [("method", False), ("deletion AUC (lower is better)", True),
               ("insertion AUC (higher is better)", True)]
    rows = [(name, _fmt(m["deletion_auc"]), _fmt(m["insertion_auc"]))
            for name, m in {**scores["methods"], "random": scores["random"]}.items()]
    note = Note(f"{_fmt_value(scores['n_images'])} {scores.get('split', 'test')} images, "
                f"{_fmt_value(scores['steps'])} steps.")
    return [note, _table(columns, rows)]


def _concept_blocks(concepts: dict | None) -> list:
    """One row per concept: accuracy, AUROC and prevalence on the split."""
    if not concepts:
        return []
    columns = [("concept", False), ("accuracy", True), ("AUROC", True), ("prevalence", True)]
    rows = ((c["concept"], _fmt(c["accuracy"]), _fmt(c["auroc"]), _fmt(c["prevalence"]))
            for c in concepts["per_concept"])
    return [_table(columns, rows)]


def _suspect_blocks(suspects: dict) -> dict[str, list]:
    """Surrogate name -> per suspect concept it reads: a flag note and its rules."""
    columns = [("rule", True), ("conditions", False), ("prediction", False),
               ("train support", True), ("precision", True)]
    groups = {}
    for name, found in suspects.items():
        blocks = []
        for entry in found:
            blocks.append(Note(
                f"FLAG: {name} reads the suspect concept '{entry['concept']}'. CNN accuracy: "
                f"{_fmt(entry['val_accuracy'])} on validation, "
                f"{_fmt(entry['test_accuracy_without'])} on the "
                f"{_fmt_value(entry['test_n_without'])} test rows without it "
                f"(drop {_fmt(entry['accuracy_drop'])})."))
            if entry["rules"]:
                blocks.append(_table(columns, (
                    (_fmt_value(r["index"]), r["conditions"], r["prediction"],
                     _fmt_value(r["support"]), _fmt(r["precision"])) for r in entry["rules"])))
        groups[name] = blocks
    return groups


def _gap(row: dict) -> float | None:
    """Confidence minus accuracy: positive where the CNN is overconfident."""
    if row.get("confidence") is None or row.get("accuracy") is None:
        return None
    return row["confidence"] - row["accuracy"]


def _galleries(surrogates: dict, images: dict[int, bytes]) -> dict[str, list]:
    """Surrogate name -> a note on how many are shown and a gallery of its first disagreements."""
    return {name: _gallery(s["disagreements"], images) for name, s in surrogates.items()
            if s.get("disagreements")}


def _gallery(disagreements: list[dict], images: dict[int, bytes]) -> list:
    shown = disagreements[:MAX_CARDS]
    columns = [("sample", True), ("CNN", False), ("surrogate", False), ("true label", False),
               ("CNN confidence", True), ("rule", False)]
    rows = ((_fmt_value(d["index"]), str(d["teacher"]), str(d["surrogate"]), str(d["true"]),
             _fmt(d.get("confidence")), _MISSING if d.get("rule") is None else str(d["rule"]))
            for d in shown)
    return [_shown_note(len(shown), len(disagreements)), Gallery(_table(columns, rows), tuple(images.get(d["index"]) for d in shown))]


def _shown_note(shown: int, total: int) -> Note:
    if shown == total:
        return Note(f"{total} disagreement{'s' if total != 1 else ''}.")
    return Note(f"The first {shown} of {total} disagreements.")
