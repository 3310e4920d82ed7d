"""Peak memory of extraction against the number of images: it should not grow with them.

``hybrid.extraction.extract_table(..., out=FOLDER)`` (what the extract stage runs) is timed
and measured over ``--rows`` random 8x8 one-channel images held in a ``TensorDataset``, with a
``tiny_cnn`` whose embedding has ``--features`` dimensions (512: a ResNet's width), so the
table's ``X`` is ``rows x features`` float32, the part of memory that would grow with the
images if extraction gathered a split. The images themselves are made before the
measurement: holding a data set is the data module's business, not extraction's.

Columns, each above what the process held just before the call (the same conventions as
``feature_store_memory.py``): ``traced_peak_mb``, tracemalloc's peak (numpy's and Python's
allocations; torch's are not traced); ``anon_peak_mb``, the peak of the process's anonymous
resident memory (``RssAnon``, sampled every 2 ms; torch's tensors included, the table's
memory-mapped pages not); ``x_mb``, the size of the ``X`` written; ``seconds``. Each size runs
in its own child process so that one does not start from another's heap.

Run::

    .venv/bin/python experiments/extraction_memory.py
    .venv/bin/python experiments/extraction_memory.py --rows 10000 40000 --batch-size 256

Prints a table; writes ``OUT/extraction_memory.csv``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import forwarded, run_child, text_table, write_csv  # noqa: E402
from feature_store_memory import _AnonPeak  # noqa: E402

FIELDS = ["rows", "features", "batch_size", "x_mb", "seconds", "traced_peak_mb", "anon_peak_mb"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 80_000, 320_000])
    parser.add_argument("--features", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("experiments/results"))
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def child(args) -> dict:
    """One extraction of ``args.child`` images in this process; the measurement as a dict."""
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from hybrid.backbones import BACKBONES
    from hybrid.classifier import ImageClassifier
    from hybrid.extraction import extract_table
    from hybrid.pipeline._components import quiet_lightning

    torch.set_num_threads(args.threads)
    quiet_lightning()
    rows = args.child
    generator = torch.Generator().manual_seed(0)
    images = torch.rand((rows, 1, 8, 8), generator=generator)
    dataset = TensorDataset(images, torch.randint(0, 10, (rows,), generator=generator),
                            torch.arange(rows))
    pl.seed_everything(0, verbose=False)
    model = ImageClassifier(BACKBONES.create("tiny_cnn", in_channels=1,
                                             embedding_dim=args.features), 10).eval()
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    loader = DataLoader(dataset, batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as folder:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        with _AnonPeak() as anon:
            table = extract_table(trainer, model, loader, [str(c) for c in range(10)],
                                  out=Path(folder) / "test")
        seconds = time.perf_counter() - start
        traced = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        assert table.X.shape == (rows, args.features)
    return {"rows": rows, "features": args.features, "batch_size": args.batch_size,
            "x_mb": round(rows * args.features * 4 / 2**20, 1), "seconds": round(seconds, 2),
            "traced_peak_mb": round(traced / 2**20, 1), "anon_peak_mb": round(anon.added_mb, 1)}


def main(argv=None) -> list[dict]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return []
    results = []
    for rows in args.rows:
        options = forwarded(args, ("features", "batch_size", "threads"))
        results.append(run_child(__file__, ["--child", str(rows), *options], args.threads))
    print(text_table(results, FIELDS))
    print(f"written: {write_csv(args.out / 'extraction_memory.csv', results, FIELDS)}")
    return results


if __name__ == "__main__":
    main()
