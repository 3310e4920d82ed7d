"""The feature table on disk: a folder of .npy files, written batch by batch, committed
atomically, memory-mapped on load; older runs' .npz tables still load."""

import json
import tracemalloc

import numpy as np
import pytest

from hybrid.errors import RunDirectoryError
from hybrid.features import FeatureTable, FeatureTableWriter
from hybrid.rundir import RunDirectory


def _table(n=50, d=3, k=4, seed=0, extras=False) -> FeatureTable:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(k), size=n).astype(np.float32)
    return FeatureTable(
        X=rng.standard_normal((n, d)).astype(np.float32),
        teacher=proba.argmax(axis=1).astype(np.int64), proba=proba,
        y=rng.integers(0, k, n), index=np.arange(100, 100 + n),
        feature_names=tuple(f"dim_{i}" for i in range(d)),
        class_names=tuple(f"c{i}" for i in range(k)),
        images=rng.integers(0, 256, (n, 5, 5), dtype=np.uint8) if extras else None,
        concepts=rng.random((n, 2), dtype=np.float32) if extras else None,
        concept_names=("stripes", "dots") if extras else ())


def _assert_same(loaded: FeatureTable, table: FeatureTable):
    for name, array in table.arrays().items():
        np.testing.assert_array_equal(getattr(loaded, name), array, err_msg=name)
        assert getattr(loaded, name).dtype == array.dtype, name
    assert set(loaded.arrays()) == set(table.arrays())
    for names in ("feature_names", "class_names", "concept_names"):
        assert getattr(loaded, names) == getattr(table, names)


@pytest.mark.parametrize("extras", [False, True])
def test_save_load_round_trip_memory_maps_the_arrays(tmp_path, extras):
    table = _table(extras=extras)
    path = table.save(tmp_path / "train")
    assert sorted(p.name for p in path.iterdir()) == sorted(
        ["table.json"] + [f"{name}.npy" for name in table.arrays()])
    loaded = FeatureTable.load(path)
    _assert_same(loaded, table)
    assert isinstance(loaded.X, np.memmap) and not loaded.X.flags.writeable
    meta = json.loads((path / "table.json").read_text())
    assert (meta["format"], meta["version"], meta["n_rows"]) == ("hybrid.feature_table", 1, 50)
    assert meta["arrays"]["X"] == {"shape": [50, 3], "dtype": "<f4"}


def test_writer_fills_a_table_batch_by_batch_in_any_order(tmp_path):
    table = _table(n=23, extras=True)
    writer = FeatureTableWriter(tmp_path / "test", len(table), table.feature_names,
                                table.class_names, table.concept_names)
    with writer:
        for start in (20, 0, 10, 5, 15):  # batches of 5 (the last of 3), out of order
            rows = slice(start, start + 5)
            writer.write(start, X=table.X[rows], proba=table.proba[rows], y=table.y[rows],
                         index=table.index[rows], concepts=table.concepts[rows])
        writer.write(0, images=table.images)  # an array may come whole, apart from the rest
    _assert_same(FeatureTable.load(tmp_path / "test"), table)  # teacher: proba's argmax


def test_writer_scatters_batches_by_position(tmp_path):
    """A distributed sampler's shards: rank r holds rows r, r + 3, ..."""
    table = _table(n=20)
    with FeatureTableWriter(tmp_path / "train", 20, table.feature_names,
                            table.class_names) as writer:
        for rank in (2, 0, 1):
            rows = np.arange(rank, 20, 3)
            writer.write(rows, X=table.X[rows], proba=table.proba[rows], y=table.y[rows],
                         index=table.index[rows])
    _assert_same(FeatureTable.load(tmp_path / "train"), table)


def test_writing_batches_holds_a_batch_not_the_split(tmp_path):
    n, d, batch = 100_000, 64, 1_000
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, d), dtype=np.float32)
    proba = rng.dirichlet(np.ones(10), size=batch).astype(np.float32)
    tracemalloc.start()
    try:
        with FeatureTableWriter(tmp_path / "train", n, [f"d{i}" for i in range(d)],
                                [str(c) for c in range(10)]) as writer:
            for start in range(0, n, batch):
                writer.write(start, X=X, proba=proba, y=np.zeros(batch, np.int64),
                             index=np.arange(start, start + batch))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # X alone is 25.6 MB; what stays is a bool per row and array (which rows were written)
    assert peak < 2e6, f"traced peak {peak / 1e6:.1f} MB"
    assert FeatureTable.load(tmp_path / "train").X.shape == (n, d)


def test_older_runs_npz_tables_still_load(tmp_path):
    """The .npz layout of older runs, under either name of the table."""
    table = _table(extras=True)
    run = RunDirectory(tmp_path)
    run.features_dir.mkdir()
    np.savez_compressed(run.features_dir / "train.npz", **table.arrays(),
                        feature_names=np.array(table.feature_names),
                        class_names=np.array(table.class_names),
                        concept_names=np.array(table.concept_names))
    for path in (run.features("train"), run.features_dir / "train.npz"):
        _assert_same(FeatureTable.load(path), table)


def test_a_folder_loads_by_its_npz_name_and_replaces_the_npz(tmp_path):
    old, new = _table(seed=1), _table(seed=2)
    np.savez_compressed(tmp_path / "train.npz", **old.arrays(),
                        feature_names=np.array(old.feature_names),
                        class_names=np.array(old.class_names))
    new.save(tmp_path / "train")
    assert not (tmp_path / "train.npz").exists()
    _assert_same(FeatureTable.load(tmp_path / "train.npz"), new)


def test_saving_replaces_a_table_even_one_loaded_from_the_same_folder(tmp_path):
    path = _table(seed=1).save(tmp_path / "train")
    loaded = FeatureTable.load(path)
    shuffled = FeatureTable(loaded.X, loaded.teacher, loaded.proba, loaded.y,
                            loaded.index[::-1].copy(), loaded.feature_names, loaded.class_names)
    shuffled.save(path)
    np.testing.assert_array_equal(FeatureTable.load(path).index, shuffled.index)
    assert [p.name for p in tmp_path.iterdir()] == ["train"], "no temporary folder left"


def test_an_unfinished_writer_leaves_the_old_table_or_none(tmp_path):
    table = _table(n=10)
    path = tmp_path / "train"
    with pytest.raises(ValueError, match=r"not committed.*index \(5 rows\)"):
        with FeatureTableWriter(path, 10, table.feature_names, table.class_names) as writer:
            writer.write(0, X=table.X, proba=table.proba, y=table.y)
            writer.write(0, index=table.index[:5])
    with pytest.raises(RunDirectoryError, match="no feature table"):
        FeatureTable.load(path)
    table.save(path)
    with pytest.raises(KeyboardInterrupt):
        with FeatureTableWriter(path, 10, table.feature_names, table.class_names) as writer:
            writer.write(0, X=-table.X)
            raise KeyboardInterrupt
    _assert_same(FeatureTable.load(path), table)
    assert [p.name for p in tmp_path.iterdir()] == ["train"]


def test_a_killed_writers_folder_never_loads_and_the_next_writer_removes_it(tmp_path):
    table = _table(n=10)
    killed = FeatureTableWriter(tmp_path / "train", 10, table.feature_names, table.class_names)
    killed.write(0, X=table.X, proba=table.proba, y=table.y, index=table.index)
    # a killed process commits nothing: only its hidden temporary folder is on disk
    (leftover,) = tmp_path.iterdir()
    assert leftover.name.startswith(".train.")
    with pytest.raises(RunDirectoryError, match="no feature table"):
        FeatureTable.load(tmp_path / "train")
    table.save(tmp_path / "train")
    assert [p.name for p in tmp_path.iterdir()] == ["train"]


def test_names_must_match_the_arrays_or_nothing_is_committed(tmp_path):
    table = _table(n=10, d=3)
    with pytest.raises(ValueError, match="3 feature names"):
        with FeatureTableWriter(tmp_path / "t", 10, table.feature_names, ("a", "b")) as writer:
            writer.write(0, X=table.X[:, :2], proba=table.proba, y=table.y, index=table.index)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("batch, error, match", [
    ({"logits": np.zeros((2, 4))}, TypeError, "unknown arrays logits"),
    ({"X": np.zeros((2, 3)), "y": np.zeros(3, np.int64)}, ValueError, "differ in rows"),
    ({"y": np.zeros(2, np.int64), "rows": 9}, ValueError, r"rows 9:11 are outside"),
    ({"y": np.zeros(2, np.int64), "rows": [3, 10]}, ValueError, r"positions 3..10 are outside"),
    ({"y": np.zeros(2, np.int64), "rows": [0.0, 1.0]}, ValueError, "2 integer positions"),
    ({"index": np.zeros(2)}, TypeError, "float64 values do not fit"),
])
def test_bad_batches_are_refused(tmp_path, batch, error, match):
    writer = FeatureTableWriter(tmp_path / "t", 10, ("a", "b", "c"), ("x", "y"))
    with pytest.raises(error, match=match):
        writer.write(batch.pop("rows", 0), **batch)
    writer.abort()


def test_a_newer_tables_version_is_refused(tmp_path):
    path = _table().save(tmp_path / "train")
    meta = json.loads((path / "table.json").read_text())
    (path / "table.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(RunDirectoryError, match="version 99 is newer"):
        FeatureTable.load(path)


def test_frame_is_a_view_of_x(tmp_path):
    loaded = FeatureTable.load(_table().save(tmp_path / "train"))
    frame = loaded.frame()
    assert np.shares_memory(frame.to_numpy(), loaded.X)
    assert list(frame.columns) == list(loaded.feature_names)
