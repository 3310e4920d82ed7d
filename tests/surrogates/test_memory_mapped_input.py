"""Surrogates fit a feature table's memory-mapped X as they fit it in memory, without reading
it into memory whole."""

import tracemalloc

import numpy as np
import pytest
from numpy.lib.format import open_memmap

from hybrid.features import FeatureTable
from hybrid.surrogates import SURROGATES, RuleListSurrogate, SparseLinearSurrogate


def _mapped(X: np.ndarray, path) -> np.memmap:
    """``X`` written to an .npy file and mapped back read-only, as FeatureTable.load maps it."""
    out = open_memmap(path, mode="w+", dtype=X.dtype, shape=X.shape)
    out[:] = X
    out.flush()
    return np.load(path, mmap_mode="r")


def _classes(X: np.ndarray) -> np.ndarray:
    """Four classes of overlapping rows: no small list answers every row right."""
    return (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5) + (X[:, 2] + X[:, 3] > 1)


def _random_rows(path, n, d, seed=0, block=10_000) -> np.memmap:
    """A seeded standard-normal float32 X, written block by block to a mapped .npy file."""
    rng = np.random.default_rng(seed)
    out = open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for start in range(0, n, block):
        out[start:start + block] = rng.standard_normal((min(block, n - start), d),
                                                       dtype=np.float32)
    out.flush()
    return np.load(path, mmap_mode="r")


def _traced_peak(fit) -> int:
    """Peak bytes numpy (and Python) allocated while ``fit`` ran."""
    tracemalloc.start()
    try:
        fit()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", SURROGATES.names())
@pytest.mark.parametrize("separable", [True, False])
def test_a_memory_map_learns_the_in_memory_model(name, separable, toy_data, tmp_path):
    """Separable toy classes send the rule list down its noise path, the others do not."""
    X, y = toy_data
    if not separable:
        X = np.random.default_rng(1).standard_normal((300, 6)).astype(np.float32)
        y = _classes(X)
    train, val = slice(0, None, 2), slice(1, None, 2)
    in_memory = SURROGATES.create(name).fit(X[train], y[train], eval_set=(X[val], y[val]))
    mapped_train = _mapped(np.ascontiguousarray(X[train]), tmp_path / "train.npy")
    mapped_val = _mapped(np.ascontiguousarray(X[val]), tmp_path / "val.npy")
    mapped = SURROGATES.create(name).fit(mapped_train, y[train], eval_set=(mapped_val, y[val]))
    assert mapped.model_.to_dict() == in_memory.model_.to_dict()
    if name == "rule_list":  # every training row answered right: noisy copies were tried
        assert (max(p["train_fidelity"] for p in in_memory.path_) == 1.0) == separable


def test_a_feature_tables_frame_fits_like_its_array(toy_data, tmp_path):
    """distill's call: the table's DataFrame, a view of the memory map."""
    X, y = toy_data
    table = FeatureTable(X=X, teacher=y, proba=np.eye(3, dtype=np.float32)[y], y=y,
                         index=np.arange(len(y)), feature_names=("a", "b", "c", "d"),
                         class_names=("0", "1", "2"))
    loaded = FeatureTable.load(table.save(tmp_path / "train"))
    rules = RuleListSurrogate(max_rules=4).fit(loaded.frame(), loaded.teacher)
    assert rules.model_.feature_names == ("a", "b", "c", "d")
    assert rules.model_.to_dict() == RuleListSurrogate(max_rules=4).fit(
        table.frame(), table.teacher).model_.to_dict()


def test_rule_list_fit_from_a_memory_map_holds_far_less_than_x(tmp_path):
    """What stays is the codes (a byte a value: a quarter of float32 X) and blocks."""
    X = _random_rows(tmp_path / "X.npy", 100_000, 256)
    y = _classes(X[:, :4])
    rules = RuleListSurrogate(max_rules=4, error_cost=1.0, noise=0.0)
    peak = _traced_peak(lambda: rules.fit(X, y))
    assert peak < 0.5 * X.nbytes, f"traced peak {peak / 1e6:.0f} MB, X {X.nbytes / 1e6:.0f} MB"
    assert rules.score(X[:5000], y[:5000]) > 0.6


def test_tree_fit_from_a_memory_map_copies_no_x(tmp_path):
    """scikit-learn reads C-contiguous float32 rows in place."""
    X = _random_rows(tmp_path / "X.npy", 10_000, 256)
    y = _classes(X[:, :4])
    tree = SURROGATES.create("tree", max_leaf_nodes=8)
    peak = _traced_peak(lambda: tree.fit(X, y))
    assert peak < 0.25 * X.nbytes, f"traced peak {peak / 1e6:.1f} MB, X {X.nbytes / 1e6:.1f} MB"


def _path_record(head) -> list:
    return [{k: v for k, v in point.items() if k != "penalty"} for point in head.path_]


@pytest.mark.parametrize("params", [{}, {"refit": False, "max_nonzero_per_class": 2},
                                    {"l1_ratio": 0.5, "max_nonzero_per_class": 3}])
def test_sparse_head_streamed_in_chunks_walks_the_in_memory_path(params, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1_200, 12)).astype(np.float32) * rng.uniform(0.1, 10, 12) + 3
    y = _classes(X - 3)
    X_val, y_val = X[1_000:], y[1_000:]
    X, y = X[:1_000], y[:1_000]
    in_memory = SparseLinearSurrogate(**params).fit(X, y, eval_set=(X_val, y_val))
    # chunks of 64 rows: 16 of the training rows, 4 of the validation rows
    budget = 64 * 8 * (X.shape[1] + 1) / 2**20
    streamed = SparseLinearSurrogate(working_memory=budget, **params).fit(
        _mapped(X, tmp_path / "X.npy"), y, eval_set=(_mapped(X_val, tmp_path / "v.npy"), y_val))
    assert _path_record(streamed) == _path_record(in_memory)
    np.testing.assert_allclose([p["penalty"] for p in streamed.path_],
                               [p["penalty"] for p in in_memory.path_], rtol=1e-12)
    np.testing.assert_allclose(streamed.scaler_.mean_, in_memory.scaler_.mean_, rtol=1e-12)
    np.testing.assert_allclose(streamed.scaler_.scale_, in_memory.scaler_.scale_, rtol=1e-12)
    np.testing.assert_allclose(streamed.model_.coef, in_memory.model_.coef, rtol=1e-8,
                               atol=1e-10)
    np.testing.assert_allclose(streamed.model_.intercept, in_memory.model_.intercept,
                               rtol=1e-8, atol=1e-10)


def test_sparse_head_streaming_from_a_memory_map_never_copies_x(tmp_path):
    """numpy's side (each chunk's float64 copy) is traced, torch's tensors are not (they hold
    a chunk too): a float64 copy of X would be twice its size."""
    pytest.importorskip("torch")  # imported before tracing: its import is no copy of X
    X = _random_rows(tmp_path / "X.npy", 10_000, 128)
    y = _classes(X[:, :4])
    chunk_rows = 500
    head = SparseLinearSurrogate(max_nonzero_per_class=2, n_penalties=6, refit=False,
                                 working_memory=chunk_rows * 8 * 129 / 2**20)
    peak = _traced_peak(lambda: head.fit(X, y))
    assert peak < 0.5 * X.nbytes, f"traced peak {peak / 1e6:.1f} MB, X {X.nbytes / 1e6:.1f} MB"
    assert head.score(X[:5000], y[:5000]) > 0.5


@pytest.mark.parametrize("name", SURROGATES.names())
def test_prediction_reads_a_memory_map_a_block_of_rows_at_a_time(name, tmp_path, monkeypatch):
    X = _random_rows(tmp_path / "X.npy", 20_000, 64)
    fitted = SURROGATES.create(name).fit(X[:2_000], _classes(X[:2_000]))
    expected = fitted.predict_proba(np.array(X))
    monkeypatch.setattr("hybrid.ir._BLOCK_ROWS", 1_000)
    peak = _traced_peak(lambda: fitted.predict(X))
    np.testing.assert_array_equal(fitted.predict_proba(X), expected)
    # one float64 block (0.5 MB) and per-row outputs, never X's 5 MB or its float64 copy
    assert peak < X.nbytes / 2, peak
