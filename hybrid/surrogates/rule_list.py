"""Multi-class ordered rule list, learned by sequential covering with a small beam search.

No maintained Python library learns a multi-class ordered rule list (imodels' rule lists are
binary-only), so this one is ours. The design keeps counting vectorized and memory linear in
the number of rows:

- every feature is cut at quantile thresholds of the training data and each value is replaced
  by the index of its bin (``codes``, uint8), so ``x <= t_b`` is ``code <= b``;
- one ``np.bincount`` over (feature, bin, class) gives, for every feature and bin, the class
  counts of the rows still open; cumulative sums over the bins then give the class counts of
  *every* candidate condition ``x <= t_b`` and ``x > t_b`` at once. No rows x thresholds
  boolean matrix is ever built, and there is no Python loop over samples.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval

from ..ir import Predicate, Rule, RuleListModel
from ._base import SurrogateMixin

__all__ = ["RuleListSurrogate"]

# Rows per bincount chunk: bounds the (rows x features) int64 index buffer to ~32 MB.
_CHUNK_CELLS = 4_000_000


class RuleListSurrogate(SurrogateMixin):
    """An ordered ``IF ... THEN class ELSE IF ... ELSE default`` list fitted to teacher labels.

    Rules are grown one at a time over the training rows no earlier rule answers. Each rule is
    the conjunction of at most ``max_conditions`` threshold conditions that maximizes
    ``correct - error_cost * wrong`` among the rows it would answer, found by a beam search that
    extends each kept conjunction by every condition at once.

    Parameters
    ----------
    max_rules : int, default=32
        Budget: rules in the list, the final ELSE included.
    max_conditions : int, default=3
        Most conditions in one rule.
    n_thresholds : int, default=16
        Quantile thresholds per feature (at most 255).
    beam_width : int, default=4
        Conjunctions kept per search depth; 1 is plain greedy growth.
    error_cost : float, default=2.0
        How many correctly answered rows one wrongly answered row costs. Wrong answers are final
        while unanswered rows go to later rules, hence a cost above 1.
    min_support : int, default=5
        Fewest training rows a rule must answer.

    Attributes
    ----------
    thresholds_ : list of ndarray
        Candidate thresholds of each feature.
    model_ : RuleListModel
        The learned list in the IR.
    """

    _parameter_constraints = {
        "max_rules": [Interval(Integral, 1, None, closed="left")],
        "max_conditions": [Interval(Integral, 1, None, closed="left")],
        "n_thresholds": [Interval(Integral, 1, 255, closed="both")],
        "beam_width": [Interval(Integral, 1, None, closed="left")],
        "error_cost": [Interval(Real, 0, None, closed="left")],
        "min_support": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, max_rules=32, max_conditions=3, n_thresholds=16, beam_width=4,
                 error_cost=2.0, min_support=5):
        self.max_rules = max_rules
        self.max_conditions = max_conditions
        self.n_thresholds = n_thresholds
        self.beam_width = beam_width
        self.error_cost = error_cost
        self.min_support = min_support

    def _fit_model(self, X, y, n_classes, names, X_val, y_val):
        self.thresholds_ = _quantile_thresholds(X, self.n_thresholds)
        search = _RuleSearch(X, y, n_classes, self.thresholds_, self.max_conditions,
                             self.beam_width, self.error_cost, self.min_support)
        rules, answered_rows = [], []
        open_rows = np.ones(len(y), dtype=bool)
        while len(rules) < self.max_rules - 1 and open_rows.sum() >= self.min_support:
            conditions = search.best_conjunction(open_rows)
            if conditions is None:
                break
            answered = open_rows & _covers(X, conditions)
            if np.array_equal(answered, open_rows):
                break  # a rule for every row left is the default's job
            rules.append(_make_rule(conditions, y[answered], n_classes))
            answered_rows.append(answered)
            open_rows &= ~answered
        default = _default_rule(y, open_rows, n_classes)
        # A last rule that answers like the default is redundant: the default answers its rows alike.
        while rules and rules[-1].prediction == default.prediction:
            rules.pop()
            open_rows |= answered_rows.pop()
            default = _default_rule(y, open_rows, n_classes)
        return RuleListModel(**names, rules=(*rules, default))


def _quantile_thresholds(X: np.ndarray, n_thresholds: int) -> list[np.ndarray]:
    """Distinct quantile cut points per feature, excluding the maximum (it splits nothing)."""
    levels = np.arange(1, n_thresholds + 1) / (n_thresholds + 1)
    cuts = np.quantile(X, levels, axis=0, method="lower").T
    top = X.max(axis=0)
    return [np.unique(c[c < hi]) for c, hi in zip(cuts, top)]


def _covers(X: np.ndarray, conditions) -> np.ndarray:
    return Rule(tuple(conditions), 0, (), 0, 0.0).covers(X)


def _default_rule(y: np.ndarray, open_rows: np.ndarray, n_classes: int) -> Rule:
    """The final ELSE: the rows no rule answered; with none left, the training distribution."""
    if open_rows.any():
        return _make_rule((), y[open_rows], n_classes)
    overall = _make_rule((), y, n_classes)
    return Rule((), overall.prediction, overall.proba, 0, 0.0)


def _make_rule(conditions, y_answered: np.ndarray, n_classes: int) -> Rule:
    counts = np.bincount(y_answered, minlength=n_classes).astype(np.float64)
    total = counts.sum()
    proba = counts / total if total else np.full(n_classes, 1.0 / n_classes)
    answer = int(np.argmax(counts))
    return Rule(tuple(conditions), answer, tuple(float(p) for p in proba), int(total),
                float(proba[answer]))


class _RuleSearch:
    """Beam search for one rule's conditions over binned features (see the module docstring)."""

    def __init__(self, X, y, n_classes, thresholds, max_conditions, beam_width, error_cost,
                 min_support):
        self.X, self.y, self.k = X, y, n_classes
        self.thresholds = thresholds
        self.max_conditions, self.beam_width = max_conditions, beam_width
        self.error_cost, self.min_support = error_cost, min_support
        self.n_bins = max((len(t) for t in thresholds), default=0) + 1
        self.codes = np.empty(X.shape, dtype=np.uint8)
        for j, cut in enumerate(thresholds):
            self.codes[:, j] = np.searchsorted(cut, X[:, j], side="left")
        # valid[j, b]: threshold b of feature j exists (features have different counts).
        self.valid = np.arange(self.n_bins - 1)[None, :] < np.array([len(t) for t in thresholds])[:, None]

    def best_conjunction(self, open_rows: np.ndarray):
        """The best-scoring conjunction (a tuple of Predicates) over ``open_rows``, or None.

        The beam keeps two kinds of conjunctions: those with the highest net gain
        ``correct - error_cost * wrong`` (good rules now) and those with the highest FOIL gain
        over their parent (purer while keeping many rows of one class: good rules after one
        more condition). The answer is the conjunction seen anywhere in the search with the
        highest net gain.
        """
        beam = [{}]  # a conjunction: {(feature, op): bin index}, at most one bound per side
        best, best_score = None, 0.0
        for _ in range(self.max_conditions):
            candidates = {}
            for bounds in beam:
                rows = open_rows & self._mask(bounds)
                for candidate in self._extensions(bounds, rows):
                    candidates.setdefault(_key(candidate[2]), candidate)
            if not candidates:
                break
            by_score = sorted(candidates.values(), key=lambda c: (-c[0], _key(c[2])))
            by_growth = sorted(candidates.values(), key=lambda c: (-c[1], _key(c[2])))
            if by_score[0][0] > best_score:
                best_score, best = by_score[0][0], by_score[0][2]
            kept = {_key(c[2]): c[2] for c in by_score[: self.beam_width] + by_growth[: self.beam_width]}
            beam = list(kept.values())
        return None if best is None else self._predicates(best)

    def _extensions(self, bounds: dict, rows: np.ndarray):
        """Yield (score, growth, extended bounds) for the best one-condition extensions.

        ``score`` is the extended rule's net gain, ``growth`` its FOIL gain; the
        ``beam_width`` best by each are yielded.
        """
        parent = np.bincount(self.y[rows], minlength=self.k)
        counts_le, counts_gt = self._condition_counts(rows)
        counts = np.stack([counts_le, counts_gt])  # (2, d, bins-1, k)
        allowed = self._allowed(counts)
        score = np.where(allowed, self._score(counts), -np.inf).ravel()
        growth = np.where(allowed, _foil_gain(counts, parent), -np.inf).ravel()
        top = np.concatenate([np.argsort(-score, kind="stable")[: self.beam_width],
                              np.argsort(-growth, kind="stable")[: self.beam_width]])
        for index in dict.fromkeys(top.tolist()):
            if not np.isfinite(score[index]):
                continue
            side, feature, b = np.unravel_index(index, counts.shape[:-1])
            op = "<=" if side == 0 else ">"
            yield float(score[index]), float(growth[index]), _tightened(bounds, int(feature), op, int(b))

    def _condition_counts(self, rows: np.ndarray):
        """Class counts of ``x_j <= t_b`` and ``x_j > t_b`` among ``rows``: (d, bins-1, k) each."""
        d, k, n_bins = self.codes.shape[1], self.k, self.n_bins
        offsets = (np.arange(d) * n_bins * k)[None, :]
        hist = np.zeros(d * n_bins * k, dtype=np.int64)
        index = np.flatnonzero(rows)
        step = max(1, _CHUNK_CELLS // max(d, 1))
        for start in range(0, len(index), step):
            chunk = index[start:start + step]
            cells = offsets + self.codes[chunk].astype(np.int64) * k + self.y[chunk, None]
            hist += np.bincount(cells.ravel(), minlength=hist.size)
        cumulative = np.cumsum(hist.reshape(d, n_bins, k), axis=1)
        counts_le = cumulative[:, :-1, :]
        return counts_le, cumulative[:, -1:, :] - counts_le

    def _allowed(self, counts: np.ndarray) -> np.ndarray:
        """Candidates with a real threshold and at least ``min_support`` rows."""
        return self.valid & (counts.sum(axis=-1) >= self.min_support)

    def _score(self, counts: np.ndarray) -> np.ndarray:
        """``correct - error_cost * wrong`` per candidate."""
        correct = counts.max(axis=-1)
        return correct - self.error_cost * (counts.sum(axis=-1) - correct)

    def _mask(self, bounds: dict) -> np.ndarray:
        mask = np.ones(self.codes.shape[0], dtype=bool)
        for (feature, op), b in bounds.items():
            column = self.codes[:, feature]
            mask &= column <= b if op == "<=" else column > b
        return mask

    def _predicates(self, bounds: dict) -> tuple[Predicate, ...]:
        return tuple(Predicate(feature, op, float(self.thresholds[feature][b]))
                     for (feature, op), b in sorted(bounds.items()))


def _tightened(bounds: dict, feature: int, op: str, b: int) -> dict:
    """``bounds`` AND ``x_feature op t_b``: a second bound on one side keeps the tighter one."""
    extended = dict(bounds)
    old = bounds.get((feature, op))
    if old is not None:
        b = min(old, b) if op == "<=" else max(old, b)
    extended[(feature, op)] = b
    return extended


def _foil_gain(counts: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Best over classes of FOIL's gain ``p1 * (log(p1 / n1) - log(p0 / n0))``.

    ``counts`` has the candidates' class counts on its last axis, ``parent`` the class counts
    of the conjunction they extend.
    """
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = counts * (np.log(counts / total) - np.log(parent / parent.sum()))
    return np.nan_to_num(gain, nan=0.0, neginf=0.0).max(axis=-1)


def _key(bounds: dict) -> tuple:
    return tuple(sorted(bounds.items()))
