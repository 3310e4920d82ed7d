"""The tree grows to its leaf budget, then validation picks a subtree on scikit-learn's
cost-complexity pruning path."""

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from hybrid.jsonio import to_json
from hybrid.surrogates import TreeSurrogate

from ._data import noisy_region_data


def test_validation_prunes_the_leaf_that_does_not_generalize():
    X, y, X_val, y_val = noisy_region_data()
    grown = TreeSurrogate(max_leaf_nodes=8).fit(X, y)
    assert grown.complexity_ == 3 and grown.score(X, y) == 1.0
    pruned = TreeSurrogate(max_leaf_nodes=8).fit(X, y, eval_set=(X_val, y_val))
    assert pruned.complexity_ == 2
    assert pruned.score(X_val, y_val) > grown.score(X_val, y_val)


def test_path_lists_the_pruning_path_largest_first():
    X, y, X_val, y_val = noisy_region_data(seed=1)
    estimator = TreeSurrogate(max_leaf_nodes=8).fit(X, y, eval_set=(X_val, y_val))
    path = estimator.path_
    leaves = [entry["n_leaves"] for entry in path]
    alphas = [entry["ccp_alpha"] for entry in path]
    assert leaves == sorted(leaves, reverse=True) and leaves[-1] == 1
    assert alphas == sorted(alphas) and alphas[0] == 0.0
    full = DecisionTreeClassifier(max_leaf_nodes=8, random_state=0).fit(X, y)
    assert leaves[0] == full.get_n_leaves()
    np.testing.assert_allclose(alphas, full.cost_complexity_pruning_path(X, y).ccp_alphas)
    chosen = next(e for e in path if e["n_leaves"] == estimator.complexity_)
    assert chosen["val_fidelity"] == max(e["val_fidelity"] for e in path)
    assert chosen["val_fidelity"] == estimator.score(X_val, y_val)


def test_kept_subtree_is_what_scikit_learn_prunes_with_its_alpha():
    X, y, X_val, y_val = noisy_region_data(seed=2)
    estimator = TreeSurrogate(max_leaf_nodes=8).fit(X, y, eval_set=(X_val, y_val))
    refit = DecisionTreeClassifier(max_leaf_nodes=8, random_state=0,
                                   ccp_alpha=estimator.tree_.ccp_alpha).fit(X, y)
    probe = np.random.default_rng(3).random((500, 2)).astype(np.float32)
    np.testing.assert_array_equal(estimator.predict(probe), refit.predict(probe))
    np.testing.assert_array_equal(estimator.model_.predict(probe), refit.predict(probe))


def test_same_data_same_tree_and_float32_needs_no_float64_copy():
    X, y, X_val, y_val = noisy_region_data(seed=4)
    first = TreeSurrogate().fit(X, y, eval_set=(X_val, y_val))
    second = TreeSurrogate().fit(X.astype(np.float64), y, eval_set=(X_val, y_val))
    assert to_json(first.model_) == to_json(second.model_)
    assert first.path_ == second.path_
