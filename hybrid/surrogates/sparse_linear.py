"""Sparse linear surrogate: an L1 / elastic-net multinomial logistic head with a weight budget."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import l1_min_c
from sklearn.utils._param_validation import Interval

from ..ir import LinearModel
from ._base import SurrogateMixin

__all__ = ["SparseLinearSurrogate"]


class SparseLinearSurrogate(SurrogateMixin):
    """Multinomial logistic regression on standardized features, sparse by an L1 penalty.

    The regularization path is walked from the penalty that zeroes every weight towards weaker
    penalties (warm-started saga) until a class needs more than ``max_nonzero_per_class``
    weights or the head imitates every training label; the kept point is the one with the best
    training fidelity within the budget. The standardization is
    folded into the IR's weights, so exports read raw features.

    Parameters
    ----------
    max_nonzero_per_class : int, default=10
        Budget: non-zero weights allowed in each class's score.
    l1_ratio : float, default=1.0
        1.0 is the lasso; below 1 mixes in an L2 penalty (elastic net).
    n_penalties : int, default=40
        Points on the path, log-spaced over ``path_span`` decades.
    path_span : float, default=2.0
        Decades of ``C`` the path covers above the smallest useful ``C``.
    max_iter : int, default=200
        saga iterations per path point.
    tol : float, default=1e-3
        saga stopping tolerance.
    random_state : int, default=0
        Seeds saga's sample order.

    Attributes
    ----------
    path_ : list of dict
        Each visited path point: ``C``, ``max_nonzero_per_class`` and training ``fidelity``.
    n_iter_ : int
        saga iterations over the whole path.
    scaler_ : StandardScaler
        The standardization folded into ``model_``.
    """

    _parameter_constraints = {
        "max_nonzero_per_class": [Interval(Integral, 1, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="right")],
        "n_penalties": [Interval(Integral, 1, None, closed="left")],
        "path_span": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(self, max_nonzero_per_class=10, l1_ratio=1.0, n_penalties=40, path_span=2.0,
                 max_iter=200, tol=1e-3, random_state=0):
        self.max_nonzero_per_class = max_nonzero_per_class
        self.l1_ratio = l1_ratio
        self.n_penalties = n_penalties
        self.path_span = path_span
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _fit_model(self, X, y, n_classes, names, X_val, y_val):
        self.scaler_ = StandardScaler().fit(X)
        Z = self.scaler_.transform(X)
        coef, intercept = self._walk_path(Z, y, n_classes)
        scale = self.scaler_.scale_
        raw_coef = coef / scale
        raw_intercept = intercept - raw_coef @ self.scaler_.mean_
        return LinearModel(**names, coef=raw_coef, intercept=raw_intercept)

    def _walk_path(self, Z, y, n_classes):
        """Return (coef, intercept) of shape (n_classes, d) and (n_classes,) on standardized Z."""
        self.path_, self.n_iter_ = [], 0
        if n_classes == 1:
            return np.zeros((1, Z.shape[1])), np.zeros(1)
        solver = LogisticRegression(l1_ratio=self.l1_ratio, solver="saga", max_iter=self.max_iter,
                                    tol=self.tol, warm_start=True, random_state=self.random_state)
        best = None
        for C in self._penalty_grid(Z, y):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                solver.set_params(C=C).fit(Z, y)
            self.n_iter_ += int(np.max(solver.n_iter_))
            coef, intercept = _as_multiclass(solver.coef_, solver.intercept_)
            nonzero = int(np.count_nonzero(coef, axis=1).max())
            fidelity = float(np.mean(np.argmax(Z @ coef.T + intercept, axis=1) == y))
            self.path_.append({"C": float(C), "max_nonzero_per_class": nonzero, "fidelity": fidelity})
            if nonzero > self.max_nonzero_per_class:
                break
            if best is None or fidelity > best[0]:
                best = (fidelity, coef, intercept)
            if fidelity == 1.0:  # weaker penalties can only add weights
                break
        if best is None:
            return np.zeros((n_classes, Z.shape[1])), _log_prior(y, n_classes)
        return best[1], best[2]

    def _penalty_grid(self, Z, y) -> np.ndarray:
        c_min = l1_min_c(Z, y, loss="log", fit_intercept=True)
        return c_min * np.logspace(0, self.path_span, self.n_penalties)


def _as_multiclass(coef: np.ndarray, intercept: np.ndarray):
    """scikit-learn's binary (1, d) logistic coefficients as two softmax rows [0, w]."""
    if coef.shape[0] > 1:
        return coef.copy(), intercept.copy()
    return np.vstack([np.zeros_like(coef[0]), coef[0]]), np.array([0.0, intercept[0]])


def _log_prior(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Intercepts of the empty model: the log class frequencies."""
    counts = np.bincount(y, minlength=n_classes) + 1.0
    return np.log(counts / counts.sum())
