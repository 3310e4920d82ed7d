"""Fit time and peak memory of hybrid's surrogates against the number of training rows.

Every surrogate (``tree``, ``rule_list``, ``sparse_linear``) and scikit-learn's CART with the
same leaf budget fits seeded synthetic data with a learnable structure: float32 features, in
which every class raises its own few "signature" features (``--signature`` of them, by 2
standard deviations), like the class detectors of a CNN's embedding, plus a validation split
of ``--val-rows`` rows from the same distribution (the ``eval_set`` of hybrid's surrogates).

Each fit runs in its own child process, so time and memory of one measurement cannot leak into
another. The child makes the data, resets the kernel's peak-RSS mark (``/proc/self/clear_refs``;
where that is unavailable the peak is the process's ``ru_maxrss``), fits once and reports:

- ``fit_s``: wall time of ``fit``;
- ``peak_mb``: peak resident memory during the fit, the data included;
- ``fit_mb``: that peak less the resident memory just before ``fit`` (what the fit added);
- the validation fidelity and the complexity, to show every model learned.

``--threads`` caps BLAS/OpenMP threads (environment and threadpoolctl) and, for
``sparse_linear``, torch's (its ``n_threads``). ``--max-rows METHOD=N`` skips a method above N
rows (a fit that would take hours); skipped and timed-out fits are listed as such.

Run::

    .venv/bin/python experiments/scaling.py --threads 1 --rows 10000 100000
    .venv/bin/python experiments/scaling.py --threads 1 --rows 10000 100000 1000000 \\
        --max-rows sparse_linear=100000

Prints a table; writes ``OUT/scaling.csv`` and ``OUT/scaling.png`` (time and memory against
rows, log-log).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import forwarded, run_child, write_csv  # noqa: E402

METHODS = ["tree", "rule_list", "sparse_linear", "cart"]
LABELS = {"tree": "hybrid tree", "rule_list": "hybrid rule_list",
          "sparse_linear": "hybrid sparse_linear", "cart": "sklearn DecisionTree"}
FIELDS = ["method", "rows", "features", "classes", "threads", "status", "fit_s", "peak_mb",
          "fit_mb", "val_fidelity", "complexity", "unit"]
VAL_SEED_OFFSET = 1_000


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--features", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/torch threads")
    parser.add_argument("--budget", type=int, default=32,
                        help="leaves of the trees, rules of the rule list")
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--max-rows", nargs="*", default=[], metavar="METHOD=N",
                        help="skip METHOD above N training rows")
    parser.add_argument("--val-rows", type=int, default=10_000)
    parser.add_argument("--signature", type=int, default=3,
                        help="features each class raises")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per fit")
    parser.add_argument("--out", type=Path, default=Path("experiments/results"))
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "ROWS"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def make_data(rows: int, features: int, classes: int, signature: int, seed: int):
    """Seeded float32 rows whose class raises that class's signature features.

    The signatures depend on the shape only, so every seed draws from one distribution.
    """
    picked = np.random.default_rng([features, classes, signature]).permutation(features)
    signatures = np.resize(picked, classes * signature).reshape(classes, signature)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=rows)
    X = rng.standard_normal((rows, features), dtype=np.float32)
    for label, columns in enumerate(signatures):
        members = np.flatnonzero(y == label)
        X[members[:, None], columns] += np.float32(2.0)
    return X, y


def build(method: str, budget: int, threads: int):
    if method == "cart":
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(max_leaf_nodes=budget, random_state=0)
    from hybrid.surrogates import BUDGET_PARAMS, SURROGATES

    params = {} if method == "sparse_linear" else {BUDGET_PARAMS[method]: budget}
    estimator = SURROGATES.create(method, **params)
    if "n_threads" in estimator.get_params():
        estimator.set_params(n_threads=threads)
    return estimator


def child(args) -> dict:
    """One fit in this process; the measurement as a dict."""
    from threadpoolctl import threadpool_limits

    method, rows = args.child[0], int(args.child[1])
    X, y = make_data(rows, args.features, args.classes, args.signature, args.seed)
    X_val, y_val = make_data(args.val_rows, args.features, args.classes, args.signature,
                             args.seed + VAL_SEED_OFFSET)
    estimator = build(method, args.budget, args.threads)
    fit_kwargs = {} if method == "cart" else {"eval_set": (X_val, y_val)}
    with threadpool_limits(args.threads):
        before = _rss_mb()
        exact_peak = _reset_peak()
        start = time.perf_counter()
        estimator.fit(X, y, **fit_kwargs)
        seconds = time.perf_counter() - start
        peak = _peak_mb(exact_peak)
        fidelity = float(np.mean(estimator.predict(X_val) == y_val))
    if method == "cart":
        complexity, unit = int(estimator.get_n_leaves()), "leaves"
    else:
        complexity, unit = estimator.complexity_, estimator.model_.complexity_unit
    return {"status": "ok", "fit_s": round(seconds, 3), "peak_mb": round(peak),
            "fit_mb": round(max(peak - before, 0.0)), "val_fidelity": round(fidelity, 4),
            "complexity": complexity, "unit": unit}


def _rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark of this process; False where Linux does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_kb("VmHWM") > 0
    except OSError:
        return False


def _peak_mb(exact: bool) -> float:
    if exact:
        return _status_kb("VmHWM") / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure(method: str, rows: int, args, argv: list[str]) -> dict:
    """Run one fit in a child process with the thread caps set."""
    row = {"method": LABELS[method], "rows": rows, "features": args.features,
           "classes": args.classes, "threads": args.threads}
    try:
        return {**row, **run_child(__file__, [*argv, "--child", method, str(rows)],
                                   args.threads, timeout=args.timeout)}
    except subprocess.TimeoutExpired:
        return {**row, "status": f"timeout>{args.timeout:g}s"}
    except subprocess.CalledProcessError as failed:
        return {**row, "status": f"failed ({failed.returncode})"}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for label in dict.fromkeys(r["method"] for r in results):
        done = [r for r in results if r["method"] == label and r["status"] == "ok"]
        if not done:
            continue
        rows = [r["rows"] for r in done]
        axes[0].plot(rows, [r["fit_s"] for r in done], marker="o", label=label)
        axes[1].plot(rows, [max(r["fit_mb"], 1) for r in done], marker="o", label=label)
    first = results[0]
    for axis, title in zip(axes, ("fit time (s)", "memory the fit adds (MB)")):
        axis.set(xscale="log", yscale="log", xlabel="training rows", title=title)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"{first['features']} float32 features, {first['classes']} classes, "
                 f"{first['threads']} thread(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _limits(pairs: list[str]) -> dict[str, int]:
    limits = {}
    for pair in pairs:
        method, _, rows = pair.partition("=")
        if method not in METHODS or not rows.isdigit():
            raise SystemExit(f"--max-rows wants METHOD=N with METHOD in {METHODS}: {pair!r}")
        limits[method] = int(rows)
    return limits


def _table(results: list[dict]) -> str:
    head = f"{'method':<22}{'rows':>9}  {'status':<12}{'fit_s':>9}{'peak_mb':>9}{'fit_mb':>8}" \
           f"{'val_fid':>9}  complexity"
    lines = [head, "-" * len(head)]
    for r in results:
        if r["status"] != "ok":
            lines.append(f"{r['method']:<22}{r['rows']:>9}  {r['status']}")
            continue
        lines.append(f"{r['method']:<22}{r['rows']:>9}  {'ok':<12}{r['fit_s']:>9.2f}"
                     f"{r['peak_mb']:>9}{r['fit_mb']:>8}{r['val_fidelity']:>9.4f}  "
                     f"{r['complexity']} {r['unit']}")
    return "\n".join(lines)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return
    limits = _limits(args.max_rows)
    shared = forwarded(args, ("features", "classes", "threads", "budget", "val_rows",
                              "signature", "seed"))
    results = []
    for rows in args.rows:
        for method in args.methods:
            if rows > limits.get(method, rows):
                result = {"method": LABELS[method], "rows": rows, "features": args.features,
                          "classes": args.classes, "threads": args.threads,
                          "status": f"skipped (>{limits[method]} rows)"}
            else:
                result = measure(method, rows, args, shared)
            results.append(result)
            print(_table([result]).splitlines()[-1], flush=True)
    print()
    print(_table(results))
    write_csv(args.out / "scaling.csv", results, FIELDS)
    plot(results, args.out / "scaling.png")
    print(f"written: {args.out / 'scaling.csv'}, {args.out / 'scaling.png'}")


if __name__ == "__main__":
    main()
