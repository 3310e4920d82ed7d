"""Peak memory of writing, loading and fitting a feature table that lives on disk.

Seeded synthetic float32 features (``--rows`` x ``--features``, ``--classes`` classes, each
raising a few signature features as in ``scaling.py``) are written once to a feature table
folder (``hybrid.features.FeatureTableWriter``, batch by batch). Then each measurement runs in
its own child process:

- ``writer``: copying the table into a new one, ``--batch`` rows at a time, as extraction
  writes each batch it predicts;
- ``load``: ``FeatureTable.load`` (the arrays are memory-mapped);
- each surrogate fitted to ``X`` read into memory (``memory``) and to the table's memory map
  (``memmap``), with a validation split of ``--val-rows`` rows as ``eval_set``; the sparse
  head also streamed from the memory map in chunks (``memmap``, ``working_memory`` of
  ``--working-memory`` MiB).

Columns: ``traced_peak_mb``, the peak of tracemalloc (numpy's and Python's allocations; torch's
are not traced) above what was held before the step; ``anon_peak_mb``, the peak of the
process's anonymous resident memory (``RssAnon``, sampled every 2 ms: torch's tensors
included, the memory map's page cache not) above the same point; ``fit_s``; ``same_model``:
whether the model equals the in-memory one (its JSON), or for the streamed sparse head the
largest difference of its weights from the in-memory head's.

Run::

    .venv/bin/python experiments/feature_store_memory.py --threads 1
    .venv/bin/python experiments/feature_store_memory.py --rows 20000 --methods writer rule_list

Prints a table; writes ``OUT/feature_store_memory.csv``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import forwarded, run_child, write_csv  # noqa: E402
from scaling import VAL_SEED_OFFSET, make_data  # noqa: E402

METHODS = ["writer", "load", "rule_list", "tree", "sparse_linear"]
FIELDS = ["step", "input", "params", "rows", "features", "x_mb", "fit_s", "traced_peak_mb",
          "anon_peak_mb", "same_model"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--val-rows", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1024, help="rows per written batch")
    parser.add_argument("--working-memory", type=float, default=64,
                        help="MiB: the streamed sparse head's working_memory")
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("experiments/results"))
    parser.add_argument("--child", nargs=3, metavar=("STEP", "INPUT", "TABLE"),
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def write_table(path: Path, args) -> None:
    """The synthetic split as a feature table."""
    from hybrid.features import FeatureTable

    X, y = make_data(args.rows, args.features, args.classes, 3, args.seed)
    FeatureTable(X=X, teacher=y, proba=np.eye(args.classes, dtype=np.float32)[y], y=y,
                 index=np.arange(args.rows), feature_names=tuple(f"dim_{i}" for i in range(
                     args.features)), class_names=tuple(map(str, range(args.classes)))
                 ).save(path)


def copy_in_batches(source, path: Path, batch: int) -> None:
    """``source`` (a FeatureTable) written to ``path`` ``batch`` rows at a time."""
    from hybrid.features import FeatureTableWriter

    with FeatureTableWriter(path, len(source), source.feature_names,
                            source.class_names) as writer:
        for start in range(0, len(source), batch):
            rows = slice(start, start + batch)
            writer.write(start, X=source.X[rows], proba=source.proba[rows],
                         y=source.y[rows], index=source.index[rows])


class _AnonPeak:
    """The largest ``RssAnon`` of this process while the block runs, sampled in a thread."""

    def __enter__(self):
        self.start = self.peak = _rss_anon_mb()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._done.wait(0.002):
            self.peak = max(self.peak, _rss_anon_mb())

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_anon_mb())

    @property
    def added_mb(self) -> float:
        return self.peak - self.start


def _rss_anon_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _estimator(step: str, source: str, args):
    from hybrid.surrogates import SURROGATES

    params = {}
    if step == "sparse_linear":
        params["n_threads"] = args.threads
        if source == "memmap":
            params["working_memory"] = args.working_memory
    return SURROGATES.create(step, **params), params


def child(args) -> dict:
    """One step in this process; the measurement as a dict."""
    import torch  # noqa: F401  (imported before measuring: its import is no fit's memory)
    from threadpoolctl import threadpool_limits

    from hybrid.features import FeatureTable

    step, source, table_path = args.child
    table_path = Path(table_path)
    X_val, y_val = make_data(args.val_rows, args.features, args.classes, 3,
                             args.seed + VAL_SEED_OFFSET)
    if step == "writer":
        source = FeatureTable.load(table_path)
        run = lambda: copy_in_batches(source, table_path.parent / "copy", args.batch)  # noqa: E731
    elif step == "load":
        run = lambda: FeatureTable.load(table_path)  # noqa: E731
    else:
        table = FeatureTable.load(table_path)
        X = np.array(table.X) if source == "memory" else table.X
        y = np.array(table.teacher)
        estimator, params = _estimator(step, source, args)
        run = lambda: estimator.fit(X, y, eval_set=(X_val, y_val))  # noqa: E731
    with threadpool_limits(args.threads):
        tracemalloc.start()
        held = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        with _AnonPeak() as anon:
            run()
        seconds = time.perf_counter() - start
        traced = tracemalloc.get_traced_memory()[1] - held
        tracemalloc.stop()
    result = {"fit_s": round(seconds, 2), "traced_peak_mb": round(traced / 1e6, 1),
              "anon_peak_mb": round(anon.added_mb, 1)}
    if step in ("writer", "load"):
        return {**result, "params": f"batch={args.batch}" if step == "writer" else ""}
    model = json.dumps(estimator.model_.to_dict(), sort_keys=True)
    return {**result, "params": " ".join(f"{k}={v}" for k, v in params.items()
                                         if k != "n_threads"),
            "model_sha": hashlib.sha256(model.encode()).hexdigest()[:12],
            "coef": getattr(estimator.model_, "coef", np.zeros(0)).tolist()}


def measure(step: str, source: str, table: Path, args, argv: list[str]) -> dict:
    try:
        result = run_child(__file__, [*argv, "--child", step, source, str(table)], args.threads)
    except subprocess.CalledProcessError:
        raise SystemExit(f"{step} ({source}) failed") from None
    x_mb = round(args.rows * args.features * 4 / 1e6, 1)
    return {"step": step, "input": source, "rows": args.rows, "features": args.features,
            "x_mb": x_mb, **result}


def _same_model(result: dict, reference: dict | None) -> str:
    if reference is None or "model_sha" not in result:
        return ""
    if result["model_sha"] == reference["model_sha"]:
        return "identical"
    difference = np.abs(np.array(result["coef"]) - np.array(reference["coef"]))
    return f"max |coef diff| {difference.max():.1e}" if difference.size else "different"


def _table(results: list[dict]) -> str:
    head = (f"{'step':<15}{'input':<8}{'params':<22}{'x_mb':>8}{'fit_s':>8}"
            f"{'traced_mb':>11}{'anon_mb':>9}  same_model")
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r['step']:<15}{r['input']:<8}{r['params']:<22}{r['x_mb']:>8}"
                     f"{r['fit_s']:>8}{r['traced_peak_mb']:>11}{r['anon_peak_mb']:>9}  "
                     f"{r.get('same_model', '')}")
    return "\n".join(lines)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return
    shared = forwarded(args, ("rows", "features", "classes", "val_rows", "batch",
                              "working_memory", "threads", "seed"))
    results = []
    with tempfile.TemporaryDirectory() as folder:
        table = Path(folder) / "train"
        write_table(table, args)
        for step in args.methods:
            reference = None
            sources = ["disk"] if step in ("writer", "load") else ["memory", "memmap"]
            for source in sources:
                result = measure(step, source, table, args, shared)
                result["same_model"] = _same_model(result, reference)
                reference = reference or result
                results.append(result)
                print(_table([result]).splitlines()[-1], flush=True)
    print()
    print(_table(results))
    print(f"written: {write_csv(args.out / 'feature_store_memory.csv', results, FIELDS)}")


if __name__ == "__main__":
    main()
