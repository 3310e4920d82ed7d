"""CART surrogate: scikit-learn's decision tree, converted into the IR's :class:`TreeModel`."""

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from ..ir import TreeModel
from ._base import SurrogateMixin

__all__ = ["TreeSurrogate"]


class TreeSurrogate(SurrogateMixin):
    """A CART decision tree fitted to the teacher's labels, with a leaf budget.

    Parameters
    ----------
    max_leaf_nodes : int, default=32
        Budget: the tree grows best-first up to this many leaves.
    max_depth : int, default=None
        Optional depth limit on top of the leaf budget.
    min_samples_leaf : int, default=1
        Fewest training samples a leaf may hold.
    criterion : {"gini", "entropy", "log_loss"}, default="gini"
        Split quality measure.
    random_state : int, default=0
        Seeds scikit-learn's tie-breaking between equally good splits, so rules are reproducible.

    Notes
    -----
    scikit-learn compares features as float32; the IR compares float64. Features from
    hybrid's feature tables are float32, so both agree exactly on them.
    """

    _parameter_constraints = {
        name: DecisionTreeClassifier._parameter_constraints[name]
        for name in ("max_leaf_nodes", "max_depth", "min_samples_leaf", "criterion", "random_state")
    }

    def __init__(self, max_leaf_nodes=32, max_depth=None, min_samples_leaf=1,
                 criterion="gini", random_state=0):
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.criterion = criterion
        self.random_state = random_state

    def _fit_model(self, X, y, n_classes, names, X_val, y_val):
        self.tree_ = DecisionTreeClassifier(
            max_leaf_nodes=self.max_leaf_nodes, max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf, criterion=self.criterion,
            random_state=self.random_state,
        ).fit(X, y)
        return _tree_to_ir(self.tree_, n_classes, names)


def _tree_to_ir(estimator: DecisionTreeClassifier, n_classes: int, names: dict) -> TreeModel:
    """Copy a fitted scikit-learn tree's arrays into a :class:`TreeModel`."""
    tree = estimator.tree_
    counts = np.zeros((tree.node_count, n_classes))
    counts[:, estimator.classes_] = tree.value[:, 0, :]
    leaf = tree.children_left < 0
    return TreeModel(
        **names,
        left=tree.children_left.astype(np.intp),
        right=tree.children_right.astype(np.intp),
        feature=np.where(leaf, -1, tree.feature).astype(np.intp),
        threshold=np.where(leaf, np.nan, tree.threshold),
        value=counts / counts.sum(axis=1, keepdims=True),
        n_samples=tree.n_node_samples.astype(np.int64),
    )
