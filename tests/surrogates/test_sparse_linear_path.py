"""The sparse linear head's regularization path: its start, its walk, its choice, its solver."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from hybrid.surrogates import SparseLinearSurrogate


@pytest.fixture
def split(toy_data):
    """The toy classes, every other row held out for validation."""
    X, y = toy_data
    return X[::2], y[::2], X[1::2], y[1::2]


def _standardized_lambda_max(X, y):
    """max |Z^T (onehot(y) - prior)| / n: the smallest lasso penalty with no weight."""
    Z = StandardScaler().fit_transform(X.astype(np.float64))
    onehot = np.eye(y.max() + 1)[y]
    return np.abs(Z.T @ (onehot - onehot.mean(axis=0))).max() / len(y)


def test_path_starts_at_lambda_max_with_no_weight_and_weights_enter_below_it(toy_data):
    X, y = toy_data
    head = SparseLinearSurrogate(n_penalties=2, path_span=0.01, max_nonzero_per_class=4,
                                 refit=False).fit(X, y)
    first, second = head.path_
    assert first["penalty"] == pytest.approx(_standardized_lambda_max(X, y), rel=1e-12)
    assert first["total_nonzero"] == 0 and first["n_iter"] == 0
    assert second["total_nonzero"] > 0, "2% under lambda_max, some weight enters"


def test_non_zeros_grow_along_the_path(toy_data):
    X, y = toy_data
    head = SparseLinearSurrogate(max_nonzero_per_class=8, refit=False).fit(X, y)
    assert len(head.path_) == head.n_penalties, "the budget is never reached: no bisection"
    nonzero = np.array([point["total_nonzero"] for point in head.path_])
    assert nonzero[0] == 0 and nonzero[-1] > nonzero[1] > 0
    assert np.all(np.diff(nonzero) >= -1), "the lasso path may drop a weight, not a handful"
    penalties = [point["penalty"] for point in head.path_]
    assert np.all(np.diff(penalties) < 0)


@pytest.mark.parametrize("refit", [False, True])
@pytest.mark.parametrize("budget", [1, 2, 3])
def test_budget_is_respected_and_the_grid_walk_stops_past_it(split, budget, refit):
    X, y, X_val, y_val = split
    head = SparseLinearSurrogate(max_nonzero_per_class=budget, refit=refit).fit(
        X, y, eval_set=(X_val, y_val))
    assert head.model_.nonzero_per_class.max() <= budget
    assert head.path_[head.path_index_]["max_nonzero_per_class"] <= budget
    past = [i for i, p in enumerate(head.path_) if p["max_nonzero_per_class"] > budget]
    if past:  # the grid stops at its first point past the budget; bisections lie before it
        first, penalties = past[0], [p["penalty"] for p in head.path_]
        assert all(p["max_nonzero_per_class"] <= budget for p in head.path_[:first])
        assert len(head.path_) - first - 1 == 4
        assert all(penalties[first - 1] > p > penalties[first] for p in penalties[first + 1:])


def test_bisection_finds_the_penalty_a_coarse_grid_steps_over():
    X, y = load_wine(return_X_y=True)
    head = SparseLinearSurrogate(max_nonzero_per_class=1, n_penalties=2, path_span=1.0,
                                 refit=False).fit(X, y)
    empty, crowded = head.path_[:2]
    assert (empty["max_nonzero_per_class"], crowded["max_nonzero_per_class"]) == (0, 5)
    kept = head.path_[head.path_index_]
    assert empty["penalty"] > kept["penalty"] > crowded["penalty"], "a bisected point"
    assert kept["max_nonzero_per_class"] == 1
    assert kept["train_fidelity"] > empty["train_fidelity"] + 0.2


def test_the_kept_point_has_the_best_validation_fidelity_within_the_budget(split):
    X, y, X_val, y_val = split
    head = SparseLinearSurrogate(max_nonzero_per_class=3, refit=False).fit(
        X, y, eval_set=(X_val, y_val))
    within = [p for p in head.path_ if p["max_nonzero_per_class"] <= 3]
    best = max(p["val_fidelity"] for p in within)
    kept = head.path_[head.path_index_]
    assert kept["val_fidelity"] == best
    assert kept["max_nonzero_per_class"] <= 3
    assert np.mean(head.predict(X_val) == y_val) == pytest.approx(best)
    assert np.count_nonzero(head.model_.coef) == kept["total_nonzero"]


def test_validation_labels_unseen_in_training_count_as_misses(split):
    X, y, X_val, y_val = split
    head = SparseLinearSurrogate(refit=False).fit(X, y, eval_set=(X_val, np.full_like(y_val, 7)))
    assert all(point["val_fidelity"] == 0.0 for point in head.path_)


def test_the_path_agrees_with_scikit_learn_saga_on_the_same_objective():
    X, y = load_wine(return_X_y=True)
    head = SparseLinearSurrogate(max_nonzero_per_class=13, n_penalties=8, path_span=1.5,
                                 refit=False, tol=1e-6).fit(X, y)
    Z = StandardScaler().fit_transform(X)
    for point in head.path_[1:]:
        saga = LogisticRegression(l1_ratio=1.0, solver="saga", tol=1e-6, max_iter=20000,
                                  C=1.0 / (point["penalty"] * len(y)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            saga.fit(Z, y)
        fidelity = np.mean(saga.predict(Z) == y)
        assert point["train_fidelity"] == pytest.approx(fidelity, abs=0.02)
        assert point["total_nonzero"] == pytest.approx(np.count_nonzero(saga.coef_), abs=2)


def test_standardization_is_folded_exactly(split):
    X, y, X_val, y_val = split
    X = X * np.array([1, 100, 0.01, 5], dtype=np.float32) + np.float32(3)
    head = SparseLinearSurrogate(max_nonzero_per_class=3).fit(X, y)
    X64 = X.astype(np.float64)
    Z = head.scaler_.transform(X64)
    coef, intercept = clone(head)._walk_path(X64, y, 3, X64, y, head.scaler_)
    np.testing.assert_allclose(head.model_.decision_function(X), Z @ coef.T + intercept,
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(head.predict(X), np.argmax(Z @ coef.T + intercept, axis=1))


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_cpu_device_and_elastic_net(toy_data, l1_ratio):
    X, y = toy_data
    head = SparseLinearSurrogate(device="cpu", l1_ratio=l1_ratio, max_nonzero_per_class=2).fit(X, y)
    assert head.model_.nonzero_per_class.max() <= 2
    assert np.mean(head.predict(X) == y) > 0.85


@pytest.mark.gpu
def test_cuda_solves_the_same_path(split):
    X, y, X_val, y_val = split
    fits = [SparseLinearSurrogate(max_nonzero_per_class=3, device=device).fit(
        X, y, eval_set=(X_val, y_val)) for device in ("cpu", "cuda")]
    assert fits[0].path_index_ == fits[1].path_index_
    np.testing.assert_allclose(fits[0].model_.coef, fits[1].model_.coef, rtol=1e-6, atol=1e-8)


def test_binary_labels_give_two_softmax_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 2] - 0.5 * X[:, 4] > 0).astype(int)
    head = SparseLinearSurrogate(max_nonzero_per_class=2).fit(X, y)
    assert head.model_.coef.shape == (2, 5)
    assert set(np.flatnonzero(head.model_.coef.any(axis=0))) <= {2, 4}
    assert np.mean(head.predict(X) == y) > 0.9


def test_a_thousand_classes():
    rng = np.random.default_rng(0)
    n_classes = 1000
    y = np.arange(2 * n_classes) % n_classes
    X = rng.normal(size=(n_classes, 3))[y] + rng.normal(scale=0.01, size=(2 * n_classes, 3))
    head = SparseLinearSurrogate(max_nonzero_per_class=2, n_penalties=3, path_span=1,
                                 max_iter=30, refit=False).fit(X, y)
    assert head.model_.coef.shape == (n_classes, 3)
    assert head.model_.nonzero_per_class.max() <= 2
    np.testing.assert_array_equal(head.model_.predict(X), head.predict(X))


def test_same_data_same_path_and_weights(split):
    X, y, X_val, y_val = split
    first, second = (SparseLinearSurrogate(max_nonzero_per_class=3).fit(
        X, y, eval_set=(X_val, y_val)) for _ in range(2))
    assert first.path_ == second.path_ and first.n_iter_ == second.n_iter_
    np.testing.assert_array_equal(first.model_.coef, second.model_.coef)
    np.testing.assert_array_equal(first.model_.intercept, second.model_.intercept)
