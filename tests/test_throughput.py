"""experiments/throughput.py runs end to end on a few images and writes its table and plot."""

import csv
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "throughput.py"


@pytest.fixture(scope="module")
def throughput():
    spec = importlib.util.spec_from_file_location("throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("options", [[], ["--precision", "bf16-mixed", "--channels-last"]])
def test_throughput_writes_every_path_of_every_backbone(throughput, tmp_path, options):
    rows = throughput.main(["--backbone", "tiny_cnn", "resnet18", "--image-size", "8",
                            "--images", "24", "--batch-size", "16", "--repeats", "1",
                            "--threads", "1", "--out", str(tmp_path), *options])
    with open(tmp_path / "throughput.csv", newline="", encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert [(r["backbone"], r["path"]) for r in written] == [
        (backbone, path) for backbone in ("tiny_cnn", "resnet18")
        for path in ("forward", "forward+copies", "loader", "extract", "extract-pinned")]
    assert len(rows) == len(written)
    assert all(float(r["images_per_s"]) > 0 for r in written)
    assert all(float(r["ratio"]) == 1.0 for r in written if r["path"] == "forward")
    assert (tmp_path / "throughput.png").stat().st_size > 0


def test_throughput_refuses_cuda_without_a_device(throughput, monkeypatch):
    monkeypatch.setattr(throughput.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        throughput.parse_args(["--device", "cuda"])
