"""Deletion curves: hybrid's batched ``deletion_insertion`` against Quantus' ``PixelFlipping``.

Both flip the highest-ranked pixels of saliency maps to the same baseline (0.0, the training
mean after normalization), the same number per step, and record the CNN's softmax probability
of its predicted class, on the same images, model and maps. Quantus records the curve after
each step (``H * W / features_in_step`` points); hybrid also records the unperturbed image (one
more point, fraction 0). The comparable points are the same images, so the curves should agree
up to float32 noise and to ties in the maps (broken in a different order).

Run (a few minutes at most on a laptop CPU)::

    .venv/bin/python experiments/benchmark_deletion.py                 # trains a small run
    .venv/bin/python experiments/benchmark_deletion.py --run runs/digits --images 256 --threads 1

On digits both are bound by the CNN's forward passes: Quantus loops over steps, not pixels, and
hybrid draws one point more per curve (the unperturbed image), so a ratio near 1 is expected.

Prints a table and writes ``OUT/deletion_benchmark.csv``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import quantus
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import text_table, write_csv  # noqa: E402

from hybrid.attribution import attribute
from hybrid.cli import main as hybrid_main
from hybrid.faithfulness import deletion_insertion
from hybrid.pipeline._components import build_datamodule, load_classifier
from hybrid.rundir import RunDirectory

FIELDS = ["method", "images", "steps", "median_s", "images_per_s", "ratio"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="a run directory (default: train a small one)")
    parser.add_argument("--images", type=int, default=256, help="test images (default: 256)")
    parser.add_argument("--steps", type=int, default=16, help="curve steps (default: 16)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (default: 5)")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads (default: torch's); 1 is steadier on a busy box")
    parser.add_argument("--out", type=Path, default=Path("experiments/results"))
    return parser.parse_args(argv)


def train_run(folder: Path) -> RunDirectory:
    """A small_cnn trained for 5 epochs: enough to make saliency maps mean something."""
    code = hybrid_main(["fit", "configs/digits.yaml", "--out", str(folder), "--set",
                        "trainer.max_epochs=5", "--set", "trainer.enable_progress_bar=false",
                        "--set", "trainer.enable_model_summary=false"])
    if code:
        raise SystemExit(f"training failed with exit code {code}")
    return RunDirectory(folder)


def load_task(run: RunDirectory, n_images: int):
    """The run's CNN, the first test images, its predicted classes and saliency maps."""
    config = run.load_config()
    datamodule = build_datamodule(config)
    model = load_classifier(config, run, datamodule.input_shape[0])
    x = datamodule.splits["test"].tensors[0][:n_images]
    if len(x) < n_images:
        raise SystemExit(f"the test split holds {len(x)} images; ask for at most that many")
    with torch.no_grad():
        targets = model(x).argmax(dim=1).numpy()
    return model, x, targets, attribute(model, x, "saliency", targets)


def quantus_curves(model, x, maps, targets, steps, batch_size) -> np.ndarray:
    """Quantus' pixel-flipping curves, (n, steps): after each of the ``steps`` flips."""
    per_step, remainder = divmod(maps[0].size, steps)
    if remainder:
        raise SystemExit(f"{maps[0].size} pixels do not split into {steps} equal steps, which "
                         "Quantus' features_in_step needs")
    metric = quantus.PixelFlipping(features_in_step=per_step, perturb_baseline=0.0,
                                   normalise=False, abs=False, disable_warnings=True,
                                   display_progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = metric(model=model, x_batch=x.numpy(), y_batch=targets, a_batch=maps[:, None],
                        channel_first=True, softmax=True, device="cpu", batch_size=batch_size)
    return np.asarray(scores, dtype=np.float64)


def timed(contenders: dict, repeats: int):
    """Median wall time of each contender, and its result, after one untimed warm-up.

    Repeats go round-robin over the contenders, so a load that comes and goes on a shared
    machine slows them alike rather than whichever happened to run then.
    """
    results = {name: function() for name, function in contenders.items()}
    seconds = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, function in contenders.items():
            start = time.perf_counter()
            results[name] = function()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in seconds.items()}, results


def agreement(hybrid: dict, quantus_scores: np.ndarray, steps: int) -> dict:
    """How far the two deletion curves are apart on the points both record."""
    ours = hybrid["deletion"][:, 1:]
    theirs_auc = np.trapezoid(quantus_scores, dx=1 / steps, axis=1)
    ours_auc = np.trapezoid(ours, dx=1 / steps, axis=1)
    return {"max_abs_curve_difference": float(np.abs(ours - quantus_scores).max()),
            "auc_correlation_same_points": float(np.corrcoef(ours_auc, theirs_auc)[0, 1]),
            "auc_correlation_hybrid_auc": float(np.corrcoef(hybrid["deletion_auc"],
                                                            theirs_auc)[0, 1]),
            "mean_deletion_auc_hybrid": float(hybrid["deletion_auc"].mean()),
            "mean_deletion_auc_quantus_same_points": float(theirs_auc.mean())}


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        run = RunDirectory(args.run) if args.run else train_run(Path(scratch) / "run")
        model, x, targets, maps = load_task(run, args.images)
    task, sizes = (model, x, maps, targets), {"steps": args.steps, "batch_size": args.batch_size}
    contenders = {
        "hybrid deletion": lambda: deletion_insertion(*task, **sizes, curves=("deletion",)),
        "quantus PixelFlipping": lambda: quantus_curves(*task, **sizes),
        "hybrid deletion+insertion": lambda: deletion_insertion(*task, **sizes),
    }
    timings, results = timed(contenders, args.repeats)
    reference = timings["hybrid deletion"]
    rows = [{"method": name, "images": args.images, "steps": args.steps,
             "median_s": round(seconds, 4), "images_per_s": round(args.images / seconds, 1),
             "ratio": round(seconds / reference, 2)} for name, seconds in timings.items()]
    print(text_table(rows, FIELDS))
    print(f"torch {torch.__version__}, quantus {quantus.__version__}, "
          f"{torch.get_num_threads()} threads; ratio = median seconds / hybrid deletion's")
    for key, value in agreement(results["hybrid deletion"], results["quantus PixelFlipping"],
                                args.steps).items():
        print(f"{key}: {value:.6g}")
    print(f"written: {write_csv(args.out / 'deletion_benchmark.csv', rows, FIELDS)}")


if __name__ == "__main__":
    main()
