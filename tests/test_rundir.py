import pytest

from hybrid.config import Config
from hybrid.errors import RunDirectoryError
from hybrid.rundir import RunDirectory


def test_same_config_reuses_the_directory(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.create(Config())
    run.mark_done("fit", {"best_checkpoint": "x"})
    run.create(Config())
    assert run.is_done("fit") and run.load_config() == Config()


def test_different_config_is_never_overwritten_silently(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.create(Config())
    run.mark_done("fit", {})
    with pytest.raises(RunDirectoryError, match=r"different config \(seed: 0 -> 1\).*--overwrite"):
        run.create(Config(seed=1))
    assert run.is_done("fit"), "nothing already written is lost"
    run.create(Config(seed=1), overwrite=True)
    assert not run.is_done("fit") and run.load_config().seed == 1


def test_a_directory_that_is_not_a_run_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="not a run directory"):
        RunDirectory(tmp_path).create(Config())
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_invalidating_a_stage_forgets_the_later_ones(tmp_path):
    run = RunDirectory(tmp_path)
    run.create(Config())
    for stage in ("fit", "extract", "distill"):
        run.mark_done(stage, {})
    run.invalidate_from("extract")
    assert run.is_done("fit") and not run.is_done("extract") and not run.is_done("distill")


def test_require_says_which_command_to_run(tmp_path):
    with pytest.raises(RunDirectoryError, match="run `hybrid extract"):
        RunDirectory(tmp_path).require("extract")


def test_a_run_written_before_a_new_default_key_resumes(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.create(Config())
    run.mark_done("fit", {})
    older = run.config_path.read_text(encoding="utf-8").replace("  channels_last: false\n", "")
    assert "channels_last" not in older  # the file as a run of an older hybrid wrote it
    run.config_path.write_text(older, encoding="utf-8")
    run.create(Config())
    assert run.is_done("fit")
