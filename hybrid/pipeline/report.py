"""Stage 5, report: fidelity of every surrogate on every split, as JSON, Markdown and HTML.

Reads feature tables and surrogate files only: reporting never imports torch.
"""

import logging

from .. import __version__, _io
from ..config import Config
from ..exporters import dot_available, render_svg, to_dot, to_text
from ..features import FeatureTable
from ..fidelity import evaluate_surrogate, fidelity, bootstrap_interval
from ..jsonio import load_surrogate
from ..report import fidelity_vs_complexity_png, per_class_fidelity_png, render_html, render_markdown
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
                 "n_features": test.X.shape[1], "feature_kind": "embedding",
                 "splits": {split: len(table) for split, table in tables.items()}},
        "teacher": {f"{split}_accuracy": table.teacher_accuracy for split, table in tables.items()},
        "surrogates": {},
        "sweep": {},
    }
    for key, info in distilled.items():
        model = load_surrogate(run.surrogate(key))
        metrics["surrogates"][key] = {
            "estimator": info["estimator"],
            "params": dict(config.surrogates[key].params),
            "fit_seconds": info["fit_seconds"],
            **evaluate_surrogate(model, tables, **settings),
        }
        if info["sweep"]:
            metrics["sweep"][key] = _sweep(run, key, info, tables, settings)
    return metrics


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


def report(run: RunDirectory) -> dict:
    config = run.load_config()
    run.require("extract")
    metrics = collect_metrics(run, config)
    _io.write_json(run.metrics_path, metrics)
    figures = {"fidelity_vs_complexity": fidelity_vs_complexity_png(metrics),
               "per_class_fidelity": per_class_fidelity_png(metrics)}
    figure_paths = {}
    for name, png in figures.items():
        _io.write_bytes(run.figures_dir / f"{name}.png", png)
        figure_paths[name] = f"figures/{name}.png"
    models = {key: load_surrogate(run.surrogate(key)) for key in metrics["surrogates"]}
    rules = {key: to_text(model) for key, model in models.items()}
    svgs = ({key: render_svg(to_dot(model)) for key, model in models.items() if model.kind == "tree"}
            if dot_available() else {})
    _io.write_text(run.report_md, render_markdown(metrics, figure_paths, rules))
    _io.write_text(run.report_html, render_html(metrics, figures, rules, svgs))
    log.info("report: CNN test accuracy %.4f; %s", metrics["teacher"]["test_accuracy"],
             "; ".join(f"{key} fidelity {m['test_fidelity']:.3f} at {m['complexity']} "
                       f"{m['complexity_unit']}" for key, m in metrics["surrogates"].items()))
    return metrics
