"""A synthetic run's metrics with every report section, hostile names included.

Shared by the report's tests and its browser check; no run, no torch.
"""

import numpy as np

from hybrid.report import (deferral_png, fidelity_vs_complexity_png, per_class_fidelity_png,
                           reliability_png, thumbnail_png)

HOSTILE_CLASS = "<script>alert(1)</script>"
HOSTILE_SURROGATE = 'a|b "q" $x_{1$'
HOSTILE_RULE = 'dim_<b>3</b> > 0.41 AND "x|y" <= $1'
HOSTILE_FEATURE = 'dim_<i>9</i> "f"|$x_{1$'
RULE_BASED = ["tree", "rule_list"]


def figures(metrics):
    """Every figure of the report, by key."""
    return {"fidelity_vs_complexity": fidelity_vs_complexity_png(metrics),
            "per_class_fidelity": per_class_fidelity_png(metrics),
            "deferral": deferral_png(metrics),
            "reliability": reliability_png(metrics)}


def images():
    """Thumbnails of every disagreeing sample but 101, which has no image."""
    rng = np.random.default_rng(0)
    return {index: thumbnail_png(rng.integers(0, 256, (8, 8), dtype=np.uint8))
            for index in range(100, 130) if index != 101}


def evidence():
    """Prototype strips of the features the rules and weights read, but dim_7 and dim_2."""
    rng = np.random.default_rng(1)
    return {name: {"png": thumbnail_png(rng.integers(0, 256, (8, 20, 3), dtype=np.uint8)),
                   "prototypes": [17 + i, 4, 9], "activations": [3.21 - i, 3.0 - i, 2.87 - i]}
            for i, name in enumerate(["dim_3", HOSTILE_FEATURE, "dim_1"])}


def evidence_paths():
    """Where the Markdown report finds the strips of :func:`evidence`."""
    return {name: f"evidence/{name}.png" for name in evidence()}


def _surrogate(unit, complexity, fidelity, class_names):
    per_class = [{"label": label, "name": name, "n_teacher": 10 + label,
                  "fidelity": fidelity - 0.02 * label, "fidelity_ci": [fidelity - 0.1, 1.0],
                  "n_surrogate": 9 + label, "precision": None if label == 2 else 0.9}
                 for label, name in enumerate(class_names)]
    return {"estimator": unit, "params": {"size": complexity}, "complexity": complexity,
            "complexity_unit": unit, "train_fidelity": fidelity + 0.02, "val_fidelity": fidelity,
            "test_fidelity": fidelity, "test_fidelity_ci": [fidelity - 0.03, fidelity + 0.02],
            "test_accuracy": 0.8712, "fit_seconds": 0.0311, "per_class": per_class}


def _sweep(unit, values):
    points = [{"value": v, "complexity": v, "val_fidelity": 0.5 + 0.1 * i,
               "test_fidelity": 0.52 + 0.1 * i,
               "test_fidelity_ci": [0.47 + 0.1 * i, 0.57 + 0.1 * i]}
              for i, v in enumerate(values)]
    points[0]["test_fidelity_ci"] = None
    return {"param": "size", "complexity_unit": unit, "points": points}


def _rules():
    conditions = ["dim_3 > 0.41 AND dim_7 <= 1.2", HOSTILE_RULE, "dim_1 > 2", "TRUE"]
    rules = [{"index": i, "conditions": text, "prediction": HOSTILE_CLASS if i == 1 else "zero",
              "support": 138 - 10 * i, "precision": 0.86, "val_n": 31 - i,
              "val_fidelity": 0.97 - 0.1 * i, "test_n": 40 - i, "test_fidelity": 0.9512 - 0.1 * i,
              "test_fidelity_ci": [0.83, 0.99]}
             for i, text in enumerate(conditions)]
    rules[2].update(val_n=0, val_fidelity=None, test_n=0, test_fidelity=None, test_fidelity_ci=None)
    features = [[("dim_3", "high"), ("dim_7", "low")],
                [(HOSTILE_FEATURE, "high"), ("dim_3", "between")],
                [("dim_1", "high"), ("dim_3", "high")], []]
    for rule, read in zip(rules, features):
        rule["features"] = [{"name": name, "direction": direction} for name, direction in read]
    return rules


def _deferral(shift):
    curve = [{"threshold": t, "coverage": 1.0 - t / 2, "rules_fidelity": 0.5 + t / 2 - shift,
              "hybrid_accuracy": 0.9 + t / 20} for t in (0.5, 0.7, 0.9, 1.0)]
    return {"threshold": 0.9, "deferring_rules": [1, 2], "coverage": 0.5512,
            "rules_fidelity": 0.9876 - shift, "hybrid_fidelity": 0.9951, "hybrid_accuracy": 0.9412,
            "curve": curve}


def _disagreements(n, rule):
    return [{"index": 100 + i, "teacher": HOSTILE_CLASS, "surrogate": "a|b", "true": '"q"',
             "confidence": 0.9812, "rule": rule} for i in range(n)]


def _calibration():
    bins = [{"lower": i / 10, "upper": (i + 1) / 10, "n": 0, "confidence": None, "accuracy": None}
            for i in range(10)]
    bins[8].update(n=12, confidence=0.85, accuracy=0.75)
    bins[9].update(n=88, confidence=0.97, accuracy=0.99)
    return {"split": "test", "ece": 0.0345, "n_bins": 10, "bins": bins}


def full_metrics():
    """Metrics with every optional key: rules, deferral and disagreements, calibration."""
    metrics = base_metrics()
    for shift, name in enumerate(RULE_BASED):
        metrics["surrogates"][name].update(rules=_rules(), deferral=_deferral(shift / 10),
                                           disagreements=_disagreements(30, HOSTILE_RULE))
    metrics["surrogates"][HOSTILE_SURROGATE]["disagreements"] = _disagreements(3, None)
    metrics["surrogates"][HOSTILE_SURROGATE]["terms"] = [
        {"feature": "dim_1", "class": HOSTILE_CLASS, "weight": 0.5213},
        {"feature": "dim_2", "class": "zero", "weight": -1.25},
        {"feature": "dim_1", "class": "a|b", "weight": -0.1}]
    metrics["calibration"] = _calibration()
    return metrics


def base_metrics():
    """The metrics every run has, without the optional keys."""
    class_names = ["zero", HOSTILE_CLASS, "a|b", '"q"', "new\nline ü"]
    units = {"tree": ("leaves", [2, 4, 8, 16], 0.82),
             "rule_list": ("rules", [1, 2, 3, 4], 0.74),
             HOSTILE_SURROGATE: ("nonzero_weights", [0, 10, 100, 1000], 0.9154)}
    return {
        "run": {"config": "configs/toy.yaml", "seed": 0, "hybrid_version": "0.1.0"},
        "data": {"name": "toy <data>", "class_names": class_names, "n_features": 6,
                 "feature_kind": "embedding", "splits": {"train": 50, "val": 20, "test": 30}},
        "teacher": {"train_accuracy": 0.99, "val_accuracy": 0.95, "test_accuracy": 0.9375},
        "surrogates": {name: _surrogate(unit, values[2], fidelity, class_names)
                       for name, (unit, values, fidelity) in units.items()},
        "sweep": {name: _sweep(unit, values) for name, (unit, values, _) in units.items()},
    }
