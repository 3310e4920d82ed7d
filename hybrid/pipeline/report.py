"""Stage 6, report: fidelity of every surrogate on every split, as JSON, Markdown and HTML.

Reads feature tables, surrogate files and the evidence stage's files: reporting never imports
torch.
"""

import json
import logging

from .. import __version__, _io
from ..audit import audit_features, calibration
from ..concept_audit import concept_quality, suspect_rules
from ..config import Config
from ..deferral import HybridPredictor, coverage_curve, deferral_summary, rule_fidelity
from ..exporters import dot_available, render_svg, to_dot, to_text
from ..exporters._format import conditions_text, display_names, linear_terms
from ..features import FeatureTable
from ..fidelity import evaluate_surrogate, fidelity, bootstrap_interval
from ..jsonio import load_surrogate
from ..report import (deferral_png, fidelity_vs_complexity_png, per_class_fidelity_png,
                      reliability_png, render_html, render_markdown, thumbnail_png)
from ..rundir import SPLITS, RunDirectory

__all__ = ["report", "collect_metrics"]

log = logging.getLogger("hybrid")


def collect_metrics(run: RunDirectory, config: Config) -> dict:
    """The metrics dict written to ``metrics.json`` (its keys are the documented contract)."""
    tables = {split: FeatureTable.load(run.features(split)) for split in SPLITS}
    distilled = run.read_marker("distill")
    settings = {"confidence": config.report.confidence,
                "n_resamples": config.report.bootstrap_resamples, "seed": config.seed}
    test = tables["test"]
    metrics = {
        "run": {"config": str(run.config_path), "seed": config.seed, "hybrid_version": __version__},
        "data": {"name": config.data.name, "class_names": list(test.class_names),
                 "n_features": test.X.shape[1], "feature_kind": config.extract.features,
                 "splits": {split: len(table) for split, table in tables.items()}},
        "teacher": {f"{split}_accuracy": table.teacher_accuracy for split, table in tables.items()},
        "surrogates": {},
        "sweep": {},
    }
    for key, info in distilled.items():
        model = load_surrogate(run.surrogate(key))
        audit = audit_features(model, test, confidence=config.report.confidence,
                               max_disagreements=_GALLERY)
        metrics["surrogates"][key] = {
            "estimator": info["estimator"],
            "params": dict(config.surrogates[key].params),
            "fit_seconds": info["fit_seconds"],
            **evaluate_surrogate(model, tables, **settings),
            **_rules_and_deferral(model, tables, audit, config),
            **_linear_terms(model),
            "disagreements": audit["disagreements"],
        }
        if info["sweep"]:
            metrics["sweep"][key] = _sweep(run, key, info, tables, settings)
    metrics["calibration"] = {"split": "test", **calibration(test.proba, test.y)}
    quality = concept_quality(test)
    if quality:
        metrics["concepts"] = {"split": "test", "per_concept": quality}
    if config.report.suspect_concepts:
        metrics["suspect_concepts"] = {
            key: suspect_rules(load_surrogate(run.surrogate(key)), config.report.suspect_concepts,
                               tables["val"], test)
            for key in distilled}
    faithfulness = run.evidence_dir / "faithfulness.json"
    if faithfulness.exists():
        metrics["attribution_faithfulness"] = json.loads(faithfulness.read_text(encoding="utf-8"))
    return metrics


# Disagreements listed in the report (and shown in its gallery) per surrogate.
_GALLERY = 24


def _rules_and_deferral(model, tables: dict, audit: dict, config: Config) -> dict:
    """Per-rule statistics and the hybrid predictor, for models made of rules.

    Training support and precision come from the IR, validation fidelity from
    :func:`rule_fidelity`, test fidelity with its Wilson interval from the test ``audit``.
    """
    if not model.indexed_rules():
        return {}
    features, classes = display_names(model)
    val = rule_fidelity(model, tables["val"])
    test = {row["rule"]: row for row in audit["per_rule"]}
    rules = [{"index": rule_id, "conditions": conditions_text(rule.conditions, features),
              "features": _rule_features(rule, model.feature_names),
              "prediction": classes[rule.prediction], "support": rule.support,
              "precision": rule.precision, "val_n": val[rule_id]["n"],
              "val_fidelity": val[rule_id]["fidelity"], "test_n": test[rule_id]["n"],
              "test_fidelity": test[rule_id]["fidelity"],
              "test_fidelity_ci": test[rule_id]["fidelity_ci"]}
             for rule_id, rule in model.indexed_rules()]
    threshold = config.report.defer_below
    predictor = HybridPredictor.from_validation(model, tables["val"], threshold)
    deferral = {"threshold": threshold, "deferring_rules": predictor.deferring_rules,
                **deferral_summary(predictor, tables["test"]),
                "curve": coverage_curve(model, tables["val"], tables["test"],
                                        config.report.deferral_thresholds)}
    return {"rules": rules, "deferral": deferral}


# How a report reads a condition on a feature: the rule needs it high, low, or in a range.
_DIRECTIONS = {">": "high", "<=": "low"}


def _rule_features(rule, feature_names) -> list[dict]:
    """Each feature the rule reads, in order, as ``{"name", "direction"}``.

    ``direction`` is ``high`` (``x > t``), ``low`` (``x <= t``) or ``between`` (both), so the
    report can show each feature's evidence with the way the rule reads it.
    """
    ops = {}
    for predicate in rule.conditions:
        ops.setdefault(feature_names[predicate.feature], set()).add(predicate.op)
    return [{"name": name,
             "direction": "between" if len(used) > 1 else _DIRECTIONS[next(iter(used))]}
            for name, used in ops.items()]


def _linear_terms(model) -> dict:
    """A linear model's non-zero weights as ``terms`` rows ``{"feature", "class", "weight"}``.

    Per class, largest weight first; the report shows each weighted feature's evidence.
    """
    if model.kind != "linear":
        return {}
    _, classes = display_names(model)
    return {"terms": [{"feature": model.feature_names[j], "class": classes[k], "weight": weight}
                      for k in range(model.n_classes) for j, weight in linear_terms(model, k)]}


def _sweep(run: RunDirectory, key: str, info: dict, tables: dict, settings: dict) -> dict:
    points = []
    for budget, relative in info["sweep"].items():
        model = load_surrogate(run.root / relative)
        test_hits = model.predict(tables["test"].X) == tables["test"].teacher
        points.append({
            "value": int(budget),
            "complexity": model.complexity,
            "val_fidelity": fidelity(tables["val"].teacher, model.predict(tables["val"].X)),
            "test_fidelity": float(test_hits.mean()),
            "test_fidelity_ci": bootstrap_interval(test_hits, settings["confidence"],
                                                   settings["n_resamples"], settings["seed"]),
        })
    unit = load_surrogate(run.surrogate(key)).complexity_unit
    return {"param": info["sweep_param"], "complexity_unit": unit, "points": points}


def _gallery_images(metrics: dict, test: FeatureTable) -> dict[int, bytes]:
    """Thumbnails of the disagreements the report lists, when the test table has images."""
    if test.images is None:
        return {}
    position = {int(index): row for row, index in enumerate(test.index)}
    wanted = {d["index"] for entry in metrics["surrogates"].values()
              for d in entry.get("disagreements", [])}
    return {index: thumbnail_png(test.images[position[index]]) for index in sorted(wanted)}


def _evidence(run: RunDirectory) -> dict[str, dict]:
    """Feature name -> its evidence with ``path`` (relative to the run) and ``png`` (bytes).

    Empty when the evidence stage has not run: the report leaves the evidence out.
    """
    if not run.is_done("evidence"):
        return {}
    found = json.loads(run.marker("evidence").read_text(encoding="utf-8"))["features"]
    return {name: {"path": entry["image"], "png": (run.root / entry["image"]).read_bytes(),
                   "prototypes": entry["prototypes"], "activations": entry["activations"]}
            for name, entry in found.items()}


def report(run: RunDirectory) -> dict:
    config = run.load_config()
    run.require("extract")
    metrics = collect_metrics(run, config)
    _io.write_json(run.metrics_path, metrics)
    figures = {"fidelity_vs_complexity": fidelity_vs_complexity_png(metrics),
               "per_class_fidelity": per_class_fidelity_png(metrics),
               "reliability": reliability_png(metrics)}
    if any("deferral" in entry for entry in metrics["surrogates"].values()):
        figures["deferral"] = deferral_png(metrics)
    figure_paths = {}
    for name, png in figures.items():
        _io.write_bytes(run.figures_dir / f"{name}.png", png)
        figure_paths[name] = f"figures/{name}.png"
    models = {key: load_surrogate(run.surrogate(key)) for key in metrics["surrogates"]}
    rules = {key: to_text(model) for key, model in models.items()}
    svgs = ({key: render_svg(to_dot(model)) for key, model in models.items() if model.kind == "tree"}
            if dot_available() else {})
    evidence = _evidence(run)
    _io.write_text(run.report_md, render_markdown(
        metrics, figure_paths, rules, {name: entry["path"] for name, entry in evidence.items()}))
    images = _gallery_images(metrics, FeatureTable.load(run.features("test")))
    _io.write_text(run.report_html, render_html(metrics, figures, rules, svgs, images, evidence))
    log.info("report: CNN test accuracy %.4f; %s", metrics["teacher"]["test_accuracy"],
             "; ".join(f"{key} fidelity {m['test_fidelity']:.3f} at {m['complexity']} "
                       f"{m['complexity_unit']}" for key, m in metrics["surrogates"].items()))
    return metrics
