"""CART surrogate: scikit-learn's decision tree, pruned on validation rows, converted into the
IR's :class:`TreeModel`."""

import copy

import numpy as np
from sklearn.tree import DecisionTreeClassifier
# What DecisionTreeClassifier.cost_complexity_pruning_path returns, from a fitted tree: the
# public method refits the whole tree first, which would double the fit time.
from sklearn.tree._tree import ccp_pruning_path

from ..ir import TreeModel
from ._base import SurrogateMixin

__all__ = ["TreeSurrogate"]


class TreeSurrogate(SurrogateMixin):
    """A CART decision tree fitted to the teacher's labels, with a leaf budget.

    The tree grows best-first up to the budget; scikit-learn's minimal cost-complexity pruning
    then gives the nested subtrees along its path, and the one with the best fidelity on
    ``eval_set`` (the training rows without one) is kept; ties go to the higher training
    fidelity, then to fewer leaves.

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

    Attributes
    ----------
    tree_ : DecisionTreeClassifier
        The kept subtree, as scikit-learn's estimator.
    path_ : list of dict
        Validation curve of one fit: for every subtree on the pruning path, largest first,
        ``n_leaves``, ``ccp_alpha``, ``train_fidelity`` and ``val_fidelity``.
    model_ : TreeModel
        The kept subtree in the IR.

    Notes
    -----
    scikit-learn compares features as float32; the IR compares float64. Features from
    hybrid's feature tables are float32, so both agree exactly on them. float32 rows are
    read in place, a feature table's memory map included: scikit-learn (1.9) copies no
    C-contiguous float32 ``X``, in ``fit`` or ``predict`` (measured by
    experiments/feature_store_memory.py).
    """

    # scikit-learn learns in float32: float32 input needs no float64 copy on the way
    _fit_dtype = (np.float64, np.float32)
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
        grown = DecisionTreeClassifier(
            max_leaf_nodes=self.max_leaf_nodes, max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf, criterion=self.criterion,
            random_state=self.random_state,
        ).fit(X, y)
        subtrees = [_pruned(grown, alpha) for alpha in ccp_pruning_path(grown.tree_)["ccp_alphas"]]
        self.path_ = [{"n_leaves": int(tree.get_n_leaves()), "ccp_alpha": float(tree.ccp_alpha),
                       "train_fidelity": float(np.mean(tree.predict(X) == y)),
                       "val_fidelity": float(np.mean(tree.predict(X_val) == y_val))}
                      for tree in subtrees]
        # later subtrees on the path are smaller: ties go to them
        best = max(range(len(subtrees)), key=lambda i: (
            self.path_[i]["val_fidelity"], self.path_[i]["train_fidelity"], i))
        self.tree_ = subtrees[best]
        return _tree_to_ir(self.tree_, n_classes, names)


def _pruned(grown: DecisionTreeClassifier, alpha: float) -> DecisionTreeClassifier:
    """``grown`` pruned as scikit-learn prunes a tree fitted with ``ccp_alpha=alpha``."""
    if alpha <= 0:
        return grown
    pruned = copy.deepcopy(grown).set_params(ccp_alpha=alpha)
    pruned._prune_tree()  # the pruning step of scikit-learn's fit, without regrowing
    return pruned


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
