"""Do distilled rules recover a known truth? The shapes benchmark, end to end.

1. **Rule recovery.** Runs ``configs/shapes.yaml``: a concept bottleneck CNN learns the shapes'
   concepts and labels; the rule list distilled from its predicted concepts is compared with
   the generating rule (same ``conditions -> class`` rules up to the order of independent
   rules, and agreement with the generating rule's labels on the test split). For contrast,
   the same rule list is fitted to the same network's embeddings.
2. **Spurious cue.** Runs ``configs/shapes_spurious.yaml``: in training a corner mark comes
   with class A; in test it is random. Do the distilled rules name the mark, and how much
   accuracy does the CNN lose on test images without it?

Writes ``experiments/results/shapes_recovery.json`` and prints the rules side by side::

    python experiments/shapes_recovery.py                  # runs into runs/shapes_recovery/
    python experiments/shapes_recovery.py --set trainer.max_epochs=2   # quicker, less exact

Runs resume: a second call reuses finished stages.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from hybrid import _io  # noqa: E402
from hybrid.concept_audit import rule_list_text, rules_match  # noqa: E402
from hybrid.data.shapes import parse_rule  # noqa: E402
from hybrid.extraction import extract_table  # noqa: E402
from hybrid.features import FeatureTable  # noqa: E402
from hybrid.exporters import to_text  # noqa: E402
from hybrid.jsonio import load_surrogate  # noqa: E402
from hybrid.pipeline import run_pipeline, start_run  # noqa: E402
from hybrid.pipeline._components import (build_datamodule, build_trainer,  # noqa: E402
                                         load_classifier, quiet_lightning)
from hybrid.rundir import RunDirectory  # noqa: E402
from hybrid.surrogates import SURROGATES  # noqa: E402


def _run(config: Path, out: Path, overrides) -> RunDirectory:
    start = time.perf_counter()
    run = start_run(config, out, overrides)
    run_pipeline(run)
    print(f"{config.name}: done in {time.perf_counter() - start:.0f} s -> {run.root}")
    return run


def _tables(run):
    return {split: FeatureTable.load(run.features(split)) for split in ("train", "val", "test")}


def _truth(run, table: FeatureTable) -> np.ndarray:
    """Class index of each row by the generating rule over its true concepts."""
    rule = parse_rule(run.load_config().data.params.get("rule", _default_rule()))
    return rule.labels(table.concepts, table.concept_names)


def _default_rule() -> str:
    from hybrid.data.shapes import DEFAULT_RULE

    return DEFAULT_RULE


def recovery(run) -> dict:
    """The rule list over concepts against the generating rule, and the embedding contrast."""
    config = run.load_config()
    rule = parse_rule(config.data.params.get("rule", _default_rule()))
    tables = _tables(run)
    test = tables["test"]
    truth = _truth(run, test)
    reference = rule.to_rule_list_model(test.concept_names)
    surrogates = {}
    for key in config.surrogates:
        model = load_surrogate(run.surrogate(key))
        predicted = model.predict_index(test.X)
        surrogates[key] = {"ground_truth_fidelity": float(np.mean(predicted == truth)),
                           "fidelity": float(np.mean(predicted == test.teacher)),
                           "complexity": model.complexity, "unit": model.complexity_unit}
    recovered = load_surrogate(run.surrogate("rule_list"))
    return {
        "generating_rule": rule.text(),
        "recovered_rule": _readable(recovered),
        "recovered_rule_canonical": _readable(recovered, canonical=True),
        "rules_match": rules_match(recovered, reference),
        "ground_truth_fidelity": surrogates["rule_list"]["ground_truth_fidelity"],
        "cnn_test_accuracy": test.teacher_accuracy,
        "cnn_ground_truth_agreement": float(np.mean(test.teacher == truth)),
        "surrogates": surrogates,
        "embedding_contrast": _embedding_contrast(run, config, truth),
    }


def _readable(model, canonical: bool = False) -> str:
    """The rule list in the generating rule's grammar, or its plain text when it reads a
    concept with two bounds (not a statement about concepts present or absent)."""
    try:
        return rule_list_text(model, canonical)
    except ValueError:
        return to_text(model)


def _embedding_contrast(run, config, truth: np.ndarray) -> dict:
    """The configured rule list fitted to the same network's embeddings instead of concepts."""
    quiet_lightning()
    datamodule = build_datamodule(config)
    model = load_classifier(config, run, datamodule.input_shape[0])
    trainer = build_trainer(config, run, training=False)
    tables = {split: extract_table(trainer, model, datamodule.split_dataloader(split),
                                   datamodule.class_names, "embedding")
              for split in ("train", "val", "test")}
    settings = config.surrogates["rule_list"]
    estimator = SURROGATES.create(settings.name or "rule_list", **settings.params)
    estimator.fit(tables["train"].frame(), tables["train"].teacher,
                  class_names=tables["train"].class_names,
                  eval_set=(tables["val"].frame(), tables["val"].teacher))
    predicted = estimator.model_.predict_index(tables["test"].X)
    return {"ground_truth_fidelity": float(np.mean(predicted == truth)),
            "fidelity": float(np.mean(predicted == tables["test"].teacher)),
            "rules": estimator.model_.complexity, "rule_list": to_text(estimator.model_)}


def spurious(run) -> dict:
    """Whether the distilled rules name the cue, and the CNN's accuracy without it."""
    metrics = json.loads(run.metrics_path.read_text(encoding="utf-8"))
    flagged = metrics.get("suspect_concepts", {})
    rule_list = flagged.get("rule_list", [])
    entry = rule_list[0] if rule_list else None
    test = _tables(run)["test"]
    return {
        "spurious_concept_in_rules": any(found["rules"] for found in rule_list),
        "flagged_rules": entry["rules"] if entry else [],
        "val_accuracy": metrics["teacher"]["val_accuracy"],
        "test_accuracy": metrics["teacher"]["test_accuracy"],
        "test_accuracy_without_cue": entry["test_accuracy_without"] if entry else None,
        "clean_accuracy_drop": entry["accuracy_drop"] if entry else None,
        "recovered_rule": _readable(load_surrogate(run.surrogate("rule_list"))),
        "ground_truth_fidelity_of_rules": float(np.mean(
            load_surrogate(run.surrogate("rule_list")).predict_index(test.X) == _truth(run, test))),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "shapes_recovery",
                        help="where the two runs go (default: runs/shapes_recovery/)")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "experiments" / "results" / "shapes_recovery.json")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="config override for both runs (repeatable)")
    args = parser.parse_args(argv)
    clean = _run(ROOT / "configs" / "shapes.yaml", args.runs / "clean", args.overrides)
    found = recovery(clean)
    cue = _run(ROOT / "configs" / "shapes_spurious.yaml", args.runs / "spurious", args.overrides)
    found["spurious"] = spurious(cue)
    found["clean_accuracy_drop"] = found["spurious"]["clean_accuracy_drop"]
    found["spurious_concept_in_rules"] = found["spurious"]["spurious_concept_in_rules"]
    found["overrides"] = list(args.overrides)
    _io.write_json(args.out, found)
    _print(found)
    print(f"written: {args.out}")
    return 0


def _print(found: dict) -> None:
    print("\ngenerating rule:\n  " + found["generating_rule"].replace(" ELSE ", "\n  ELSE "))
    print("recovered rule list (from the bottleneck's concepts):\n  "
          + found["recovered_rule"].replace(" ELSE ", "\n  ELSE "))
    print("the same, equivalent wordings made one (NOT size=small is size=large):\n  "
          + found["recovered_rule_canonical"].replace(" ELSE ", "\n  ELSE "))
    print(f"rules match: {found['rules_match']}; agreement with the generating rule on test: "
          f"{found['ground_truth_fidelity']:.4f}")
    print("\n| surrogate | features | complexity | fidelity to CNN | agreement with truth |")
    print("|---|---|---:|---:|---:|")
    for key, s in found["surrogates"].items():
        print(f"| {key} | concepts | {s['complexity']} {s['unit']} | {s['fidelity']:.4f} | "
              f"{s['ground_truth_fidelity']:.4f} |")
    e = found["embedding_contrast"]
    print(f"| rule_list | embedding | {e['rules']} rules | {e['fidelity']:.4f} | "
          f"{e['ground_truth_fidelity']:.4f} |")
    s = found["spurious"]
    print(f"\nspurious cue: rules name it: {s['spurious_concept_in_rules']}; CNN accuracy "
          f"{s['val_accuracy']:.4f} on validation (cue as in training), "
          f"{_fmt(s['test_accuracy_without_cue'])} on test images without the cue "
          f"(drop {_fmt(s['clean_accuracy_drop'])})")
    for rule in s["flagged_rules"]:
        print(f"  rule {rule['index']}: IF {rule['conditions']} THEN {rule['prediction']} "
              f"(support {rule['support']}, precision {rule['precision']:.3f})")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    sys.exit(main())
