"""What every surrogate shares: the scikit-learn estimator contract around an IR model.

A surrogate's ``fit`` learns an IR model (``model_``); ``predict`` and ``predict_proba`` are the
IR's, so what the estimator predicts is exactly what its exports and JSON file predict.
"""

from abc import abstractmethod

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..ir import InterpretableModel

__all__ = ["SurrogateMixin"]


class SurrogateMixin(ClassifierMixin, BaseEstimator):
    """Base class of hybrid's surrogates; subclasses implement :meth:`_fit_model`.

    Fitted attributes: ``classes_``, ``n_features_in_``, ``feature_names_in_`` (when ``X`` is a
    DataFrame) and ``model_``, the IR model. Subclasses declare ``_parameter_constraints`` as
    scikit-learn's own estimators do; ``fit`` checks them, and so does the pipeline before
    any work, with scikit-learn's messages.
    """

    _parameter_constraints: dict = {}
    #: dtype ``fit`` gives :meth:`_fit_model`'s ``X``. A surrogate that learns exactly from
    #: float32 features declares ``(np.float64, np.float32)``: float32 input then stays
    #: float32, with no float64 copy (4 GB at 1M rows x 512 features); other input converts
    #: to the first.
    _fit_dtype = np.float64

    def fit(self, X, y, class_names=None, eval_set=None):
        """Fit to the teacher's labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features; a DataFrame's column names become the rules' feature names.
        y : array-like of shape (n_samples,)
            Labels to imitate (the CNN's predictions).
        class_names : sequence or mapping, default=None
            Display name per label: ``class_names[label]``. Defaults to ``str(label)``.
        eval_set : tuple of (X_val, y_val), default=None
            Held-out rows and teacher labels that choose the model along the complexity path
            (pruning, path point) so the choice is not fitted to the training rows. None uses
            the training rows themselves. Labels unseen in ``y`` count as disagreements.

        Returns
        -------
        self : object
        """
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=self._fit_dtype)
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        names = {
            "feature_names": self._feature_names(),
            "classes": tuple(c.item() if isinstance(c, np.generic) else c for c in self.classes_),
            "class_names": tuple(str(class_names[c]) if class_names is not None else str(c)
                                 for c in self.classes_),
        }
        X_val, y_val = self._eval_rows(eval_set, X, y_index)
        self.model_ = self._fit_model(X, y_index, len(self.classes_), names, X_val, y_val)
        return self

    def _eval_rows(self, eval_set, X, y_index):
        """``eval_set`` validated like ``X``, its labels as class indices (-1: unseen in ``y``)."""
        if eval_set is None:
            return X, y_index
        X_val, y_val = eval_set
        X_val = validate_data(self, X_val, reset=False, dtype=self._fit_dtype)
        y_val = np.asarray(y_val)
        if len(y_val) != len(X_val):
            raise ValueError(f"eval_set: {len(X_val)} rows but {len(y_val)} labels")
        position = np.searchsorted(self.classes_, y_val).clip(0, len(self.classes_) - 1)
        known = self.classes_[position] == y_val
        return X_val, np.where(known, position, -1)

    @abstractmethod
    def _fit_model(self, X: np.ndarray, y: np.ndarray, n_classes: int, names: dict,
                   X_val: np.ndarray, y_val: np.ndarray) -> InterpretableModel:
        """Learn the IR model from ``X`` and class indices ``y`` in ``[0, n_classes)``.

        ``X`` is float64, or float32 where ``_fit_dtype`` allows it.

        ``X_val``/``y_val`` choose along the complexity path (they are the training rows when
        no ``eval_set`` was given); ``y_val`` is -1 for labels unseen in training.
        """

    def _feature_names(self) -> tuple[str, ...]:
        if hasattr(self, "feature_names_in_"):
            return tuple(str(n) for n in self.feature_names_in_)
        return tuple(f"x{i}" for i in range(self.n_features_in_))

    def _validated(self, X) -> np.ndarray:
        """``X`` checked; float32 stays float32 (a memory map is not copied: the IR converts
        it to float64 a block of rows at a time)."""
        check_is_fitted(self, "model_")
        return validate_data(self, X, reset=False, dtype=(np.float64, np.float32))

    def predict(self, X) -> np.ndarray:
        """The IR model's labels, shape (n_samples,)."""
        X = self._validated(X)
        return self.classes_[self.model_.predict_index(X)]

    def predict_proba(self, X) -> np.ndarray:
        """The IR model's class probabilities, shape (n_samples, n_classes)."""
        X = self._validated(X)
        return self.model_.predict_proba(X)

    @property
    def complexity_(self) -> int:
        check_is_fitted(self, "model_")
        return self.model_.complexity
