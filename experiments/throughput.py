"""Extraction throughput: hybrid's extraction path against the bare forward pass of the model.

hybrid extracts features with Lightning: ``hybrid.extraction.extract_table`` calls
``Trainer.predict`` over a data module's ``split_dataloader`` (an in-memory dataset that
gathers each batch with one index per tensor), ``ImageClassifier.predict_step`` returns each
batch's embedding, probabilities, labels and ids, Lightning moves them to the CPU batch by
batch, and a prediction writer copies each batch into the table's files (one process) or into
shard files (several). Timed side by side, on the same model, images, batch size, device and
precision (``torch.autocast`` as Lightning's ``bf16-mixed`` does):

- ``forward``: the model alone, ``model(x)`` under ``torch.inference_mode`` on batches that
  are on the device already (channels-last when asked): what the hardware can do.
- ``forward+copies``: the same, the batches copied from host memory and the embeddings and
  probabilities back, as any extraction that ends in numpy must.
- ``loader``: iterating the DataLoader alone, nothing computed (its ceiling).
- ``extract``: hybrid's path, ``extract_table`` through a ``pl.Trainer`` as
  ``build_trainer(training=False)`` makes it.
- ``extract-pinned``: the same loader with ``pin_memory`` (on CUDA: copies to the device
  from page-locked memory), a candidate for the data modules when a GPU is used.

``ratio`` is a path's images/s over ``forward``'s (wall clock); the goal is ``extract`` >= 0.9.
``cpu_ratio`` is the same from this process's CPU seconds, steadier where other jobs share the
cores (meaningless on CUDA, where the device does the work). Images are
random (uint8, scaled by the data module like real ones); nothing is downloaded. Each figure is
the median of ``--repeats`` round-robin repeats after one untimed warm-up (cuDNN autotuning on
CUDA); CUDA timings synchronize before and after.

Run::

    .venv/bin/python experiments/throughput.py --threads 1        # CPU: small_cnn, resnet18, 32x32
    .venv/bin/python experiments/throughput.py --device cuda --precision bf16-mixed \\
        --channels-last --backbone resnet18 --batch-size 1024

Prints a table and writes ``OUT/throughput.csv`` and ``OUT/throughput.png``.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import logging
import statistics
import sys
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import text_table, write_csv  # noqa: E402

from hybrid.backbones import BACKBONES
from hybrid.classifier import ImageClassifier
from hybrid.data._memory import InMemoryDataModule, Pool, batch_as_is
from hybrid.extraction import extract_table

FIELDS = ["backbone", "device", "precision", "channels_last", "image_size", "batch_size",
          "images", "path", "median_s", "images_per_s", "ratio", "cpu_s", "cpu_ratio"]
GOAL = 0.9
PATHS = ("forward", "forward+copies", "loader", "extract", "extract-pinned")
# On CUDA enough images that Lightning's fixed cost per predict call (moving the model to the
# device and back, hooks, the shard files) is amortized as in a real split: ~1 s of resnet18 on
# an H100 at the goal of 150,000 images/s. On the CPU, ~15 s of resnet18 on one core.
DEFAULT_IMAGES = {"cpu": 512, "cuda": 131072}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", nargs="+", default=["small_cnn", "resnet18"],
                        choices=BACKBONES.names(), help="default: small_cnn resnet18")
    parser.add_argument("--batch-size", type=int, default=128, help="default: 128")
    parser.add_argument("--images", type=int,
                        help=f"images per pass (default: {DEFAULT_IMAGES['cpu']} on the CPU, "
                             f"{DEFAULT_IMAGES['cuda']} on CUDA)")
    parser.add_argument("--image-size", type=int, default=32, help="pixels a side (default: 32)")
    parser.add_argument("--channels", type=int, default=3, help="default: 3")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["32", "bf16-mixed"], default="32")
    parser.add_argument("--channels-last", action="store_true",
                        help="model (and device batches) in channels-last memory format")
    parser.add_argument("--workers", type=int, default=0,
                        help="DataLoader workers of the extract paths (default: 0, as the data "
                             "modules' num_workers)")
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS,
                        help="what to time (default: all; forward is always timed)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (default: 3)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=Path("experiments/results"))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    args.images = args.images or DEFAULT_IMAGES[args.device]
    return args


class RandomImages(InMemoryDataModule):
    """Random uint8 images as an in-memory data module: its ``test`` split is what is timed."""

    def __init__(self, n_images: int, channels: int, image_size: int, batch_size: int,
                 num_workers: int = 0, seed: int = 0, normalization=None):
        super().__init__()
        self.save_hyperparameters()
        self.class_names = tuple(str(k) for k in range(10))
        self.input_shape = (channels, image_size, image_size)
        self.value_range = (0.0, 255.0)

    def _load(self) -> Pool:
        rng = np.random.default_rng(self.hparams.seed)
        n = self.hparams.n_images
        images = rng.integers(0, 256, (n, *self.input_shape), dtype=np.uint8)
        labels = rng.integers(0, len(self.class_names), n)
        rows = np.arange(n)
        return Pool(images, labels, {"train": rows, "val": rows[:0], "test": rows})


def build_model(name: str, channels: int, image_size: int) -> ImageClassifier:
    """A classifier over backbone ``name``, random weights; ``image_size`` where it is asked."""
    factory = BACKBONES.get(name)
    sizes = {"image_size": image_size} if "image_size" in inspect.signature(factory).parameters \
        else {}
    return ImageClassifier(factory(in_channels=channels, **sizes), num_classes=10).eval()


def contenders(model: ImageClassifier, data: RandomImages, args) -> dict:
    """The timed paths (see the module docstring), as functions of no argument."""
    device = torch.device(args.device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    # A copy: Lightning moves ``model`` back to the CPU after each predict call.
    bare = copy.deepcopy(model).to(device)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16)
                if args.precision == "bf16-mixed" else nullcontext())
    images = data.splits["test"].tensors[0]
    host_batches = list(images.split(args.batch_size))
    device_batches = [batch.to(device, memory_format=memory_format) for batch in host_batches]
    loader = data.split_dataloader("test", batch_size=args.batch_size)
    pinned = DataLoader(data.splits["test"], args.batch_size, collate_fn=batch_as_is,
                        pin_memory=args.device == "cuda", num_workers=args.workers)
    trainer = pl.Trainer(accelerator="gpu" if args.device == "cuda" else "cpu", devices=1,
                         precision=args.precision, benchmark=args.device == "cuda",
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)

    def forward():
        with torch.inference_mode(), autocast:
            for x in device_batches:
                bare(x)

    def forward_with_copies():
        with torch.inference_mode(), autocast:
            for x in host_batches:
                embedding = bare.backbone(x.to(device, memory_format=memory_format))
                proba = torch.softmax(bare.head(embedding), dim=1)
                proba.cpu(), embedding.cpu()  # noqa: B018 (the copies are what is timed)

    def iterate_loader():
        for _ in loader:
            pass

    paths = {"forward": forward, "forward+copies": forward_with_copies, "loader": iterate_loader,
             "extract": lambda: extract_table(trainer, model, loader, data.class_names),
             "extract-pinned": lambda: extract_table(trainer, model, pinned, data.class_names)}
    return {name: paths[name] for name in PATHS if name == "forward" or name in args.paths}


def timed(paths: dict, repeats: int, cuda: bool) -> dict:
    """Median wall and process CPU seconds of each path after one untimed warm-up.

    Repeats go round-robin, so a load that comes and goes on a shared machine slows every
    path alike; the CPU seconds (this process's, all its threads) do not count the time other
    processes held the cores, which on a busy CPU box is the steadier comparison.
    """
    def once(function):
        if cuda:
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - wall, time.process_time() - cpu

    for function in paths.values():
        once(function)
    seconds = {name: [] for name in paths}
    for _ in range(repeats):
        for name, function in paths.items():
            seconds[name].append(once(function))
    return {name: tuple(statistics.median(column) for column in zip(*values))
            for name, values in seconds.items()}


def measure(name: str, args) -> list[dict]:
    """One backbone's rows: every path's median seconds, images/s and ratio to ``forward``."""
    data = RandomImages(args.images, args.channels, args.image_size, args.batch_size,
                        num_workers=args.workers)
    data.setup()
    model = build_model(name, args.channels, args.image_size)
    timings = timed(contenders(model, data, args), args.repeats, args.device == "cuda")
    common = {"backbone": name, "device": args.device, "precision": args.precision,
              "channels_last": args.channels_last, "image_size": args.image_size,
              "batch_size": args.batch_size, "images": args.images}
    wall, cpu = timings["forward"]
    return [{**common, "path": path, "median_s": round(seconds, 4),
             "images_per_s": round(args.images / seconds, 1),
             "ratio": round(wall / seconds, 3), "cpu_s": round(cpu_seconds, 4),
             "cpu_ratio": round(cpu / cpu_seconds, 3) if cpu_seconds else None}
            for path, (seconds, cpu_seconds) in timings.items()]


def plot(rows: list[dict], path: Path) -> None:
    """Images/s of each path (log scale), one group of bars per backbone, each labelled with
    its ratio to the bare forward pass; the dashed line is the goal, 0.9 x forward."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backbones = list(dict.fromkeys(row["backbone"] for row in rows))
    paths = list(dict.fromkeys(row["path"] for row in rows))
    width = 0.8 / len(paths)
    figure, axes = plt.subplots(figsize=(3.2 + 1.8 * len(backbones), 3.4))
    for k, name in enumerate(paths):
        mine = [next(r for r in rows if r["backbone"] == b and r["path"] == name)
                for b in backbones]
        bars = axes.bar(np.arange(len(backbones)) + (k - (len(paths) - 1) / 2) * width,
                        [r["images_per_s"] for r in mine], width, label=name)
        axes.bar_label(bars, [f"{r['ratio']:.2f}" for r in mine], fontsize=7)
    for b, backbone in enumerate(backbones):
        forward = next(r for r in rows if r["backbone"] == backbone and r["path"] == "forward")
        axes.hlines(GOAL * forward["images_per_s"], b - 0.45, b + 0.45, colors="black",
                    linestyles="--", linewidth=0.8)
    axes.set_yscale("log")
    speeds = [r["images_per_s"] for r in rows]
    axes.set_ylim(min(speeds) / 4, max(speeds) * 3)
    axes.set_xticks(np.arange(len(backbones)), backbones)
    axes.set_ylabel("images/s (label: ratio to forward)")
    first = rows[0]
    axes.set_title(f"{first['device']}, precision {first['precision']}, batch "
                   f"{first['batch_size']}, {first['image_size']}x{first['image_size']}",
                   fontsize=9)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads or threads)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args) -> list[dict]:
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # device summaries
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    rows = [row for name in args.backbone for row in measure(name, args)]
    print(text_table(rows, FIELDS))
    extract = [row for row in rows if row["path"] == "extract"]
    print(f"torch {torch.__version__}, pytorch_lightning {pl.__version__}, "
          f"{torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if args.device == "cuda" else "")
          + f"; median of {args.repeats}; extract ratio goal >= {GOAL}: "
          + ", ".join(f"{row['backbone']} {'PASS' if row['ratio'] >= GOAL else 'FAIL'} "
                      f"({row['ratio']:.2f}; CPU time {row['cpu_ratio']})" for row in extract))
    write_csv(args.out / "throughput.csv", rows, FIELDS)
    plot(rows, args.out / "throughput.png")
    print(f"written: {args.out / 'throughput.csv'}, {args.out / 'throughput.png'}")
    return rows


if __name__ == "__main__":
    main()
