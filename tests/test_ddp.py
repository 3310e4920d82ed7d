"""Training and extraction under Lightning's DDP: two CPU processes over gloo.

Lightning's ``ddp`` launcher starts the other ranks by running the command line again, so the
distributed runs go through ``python -m hybrid.cli`` in a subprocess; the one-process runs
they are held against run here.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from hybrid.cli import main
from hybrid.errors import ConfigError
from hybrid.features import FeatureTable
from hybrid.pipeline import is_main_process, run_stage, start_run
from hybrid.rundir import SPLITS, RunDirectory

from .conftest import shrunk

DDP = ["trainer.strategy=ddp", "trainer.devices=2", "trainer.accelerator=cpu"]
# A few batches of training and a small report: what is tested is the processes' teamwork.
SMALL = ["trainer.limit_train_batches=4", "trainer.limit_val_batches=2",
         "trainer.log_every_n_steps=1", "evidence.faithfulness_images=8",
         "evidence.methods=[saliency]"]


def _args(*values: str) -> list[str]:
    return [*shrunk(), *(arg for value in (*SMALL, *values) for arg in ("--set", value))]


def _hybrid(*args: str) -> subprocess.CompletedProcess:
    """``hybrid ARGS`` in a fresh interpreter, one thread per process (two share two cores)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "hybrid.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> RunDirectory:
    """A one-process run, trained and extracted."""
    out = tmp_path_factory.mktemp("single") / "run"
    assert main(["fit", "configs/digits.yaml", "--out", str(out), *_args()]) == 0
    assert main(["extract", str(out)]) == 0
    return RunDirectory(out)


@pytest.mark.slow
def test_ddp_extraction_matches_one_process(single, tmp_path):
    ddp = start_run("configs/digits.yaml", tmp_path / "ddp", _args(*DDP)[1::2])
    shutil.copytree(single.checkpoints, ddp.checkpoints)  # the same checkpoint
    assert "Starting with 2 processes" in _hybrid("extract", str(ddp.root)).stderr
    for split in SPLITS:
        one, two = FeatureTable.load(single.features(split)), FeatureTable.load(ddp.features(split))
        np.testing.assert_array_equal(two.index, one.index)
        np.testing.assert_array_equal(two.teacher, one.teacher)
        np.testing.assert_array_equal(two.y, one.y)
        np.testing.assert_allclose(two.X, one.X, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(two.proba, one.proba, rtol=1e-5, atol=1e-5)
        assert two.X.dtype == np.float32
    np.testing.assert_array_equal(FeatureTable.load(ddp.features("test")).images,
                                  FeatureTable.load(single.features("test")).images)
    assert sorted(p.name for p in ddp.root.iterdir()) == ["checkpoints", "config.yaml", "features"]


@pytest.mark.slow
def test_ddp_run_writes_every_file_once_from_rank_0(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "stale.txt").write_text("--overwrite replaces this directory")
    done = _hybrid("run", "configs/digits.yaml", "--out", str(out), "--overwrite", *_args(*DDP))
    run = RunDirectory(out)
    assert "Starting with 2 processes" in done.stderr
    for stage in ("fit", "extract", "distill", "evidence", "export", "report"):
        assert run.is_done(stage), stage
    assert not (out / "stale.txt").exists() and not (out / ".extract-shards").exists()
    assert json.loads(run.marker("fit").read_text())["epochs"] == 1
    for split in SPLITS:  # rank 0 merged every row of every split, once
        table = FeatureTable.load(run.features(split))
        assert len(np.unique(table.index)) == len(table) and np.all(np.diff(table.index) > 0)
    assert done.stderr.count("hybrid: extract: train:") == 1, "rank 1 logs nothing"
    assert done.stderr.count("hybrid: distill:") == 3


def test_rank_is_read_from_the_launchers_environment(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    assert is_main_process()
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("NODE_RANK", "0")
    assert is_main_process()
    monkeypatch.setenv("NODE_RANK", "1")  # device 0 of the second node
    assert not is_main_process()
    monkeypatch.setenv("NODE_RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not is_main_process()


def test_other_ranks_neither_create_nor_invalidate_nor_run_numpy_stages(tmp_path, monkeypatch):
    run = start_run("configs/digits.yaml", tmp_path / "run", shrunk()[1::2])
    run.mark_done("fit", {"best_checkpoint": "unused"})
    monkeypatch.setenv("LOCAL_RANK", "1")
    again = start_run("configs/digits.yaml", run.root, shrunk()[1::2], overwrite=True)
    assert again.root == run.root and run.is_done("fit"), "rank 1 leaves the directory alone"
    assert run_stage(run, "distill") is None and not run.is_done("distill")
    assert run_stage(run, "report", redo=True) is None


@pytest.mark.parametrize("override, key", [
    ("trainer.strategy=dpp", "key 'trainer.strategy'"),
    ("trainer.num_nodes=0", "key 'trainer.num_nodes'"),
    ("trainer.devices=two", "key 'trainer.devices'"),
])
def test_bad_distributed_settings_name_the_key(tmp_path, override, key):
    with pytest.raises(ConfigError, match=key):
        start_run("configs/digits.yaml", tmp_path / "run", [override])
    assert not (tmp_path / "run").exists()
