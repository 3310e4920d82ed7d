"""Data sets several surrogate tests share."""

import numpy as np


def noisy_region_data(seed=0, n=1000, levels=None):
    """Class ``x0 > 0.5``; in training only, the rows with ``x0 <= 0.5 and x1 > 0.9`` are class
    2, a region a leaf or a rule can fit but the validation rows contradict.

    Features are uniform in [0, 1] as float32, or with ``levels`` the multiples of
    ``1 / (levels - 1)`` (few values: every one a candidate threshold).
    """
    rng = np.random.default_rng(seed)
    if levels is None:
        X, X_val = rng.random((2, n, 2)).astype(np.float32)
    else:
        X, X_val = rng.integers(0, levels, size=(2, n, 2)) / (levels - 1)
    y = np.where((X[:, 0] <= 0.5) & (X[:, 1] > 0.9), 2, (X[:, 0] > 0.5).astype(int))
    return X, y, X_val, (X_val[:, 0] > 0.5).astype(int)
