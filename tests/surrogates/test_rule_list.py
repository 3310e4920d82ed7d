import numpy as np

from hybrid.ir import Predicate
from hybrid.surrogates import RuleListSurrogate
from hybrid.surrogates.rule_list import _bin, _numpy_counter, _quantile_thresholds


def _grid_data():
    """Labels from a known rule list on a grid: IF a > 0.5 AND b > 0.5 THEN 2 ELSE IF a > 0.5 THEN 1 ELSE 0."""
    a, b = np.meshgrid(np.linspace(0, 1, 20), np.linspace(0, 1, 20))
    X = np.column_stack([a.ravel(), b.ravel()])
    y = np.where((X[:, 0] > 0.5) & (X[:, 1] > 0.5), 2, np.where(X[:, 0] > 0.5, 1, 0))
    return X, y


def test_recovers_a_known_rule_list_exactly():
    X, y = _grid_data()
    estimator = RuleListSurrogate(max_rules=4, n_thresholds=19).fit(X, y)
    assert estimator.score(X, y) == 1.0
    assert estimator.complexity_ <= 3
    first = estimator.model_.rules[0]
    features = {p.feature for p in first.conditions}
    assert first.precision == 1.0 and features <= {0, 1}


def test_condition_counts_match_brute_force():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = rng.integers(0, 4, size=300)
    thresholds = _quantile_thresholds(X, 7, None, 0)
    n_bins = max(len(t) for t in thresholds) + 1
    rows = np.flatnonzero(rng.random(300) < 0.6)
    hist = _numpy_counter(_bin(X, thresholds), y, 4, n_bins)(rows)
    counts_le = np.cumsum(hist, axis=2)  # (feature, class, bin)
    for j, cut in enumerate(thresholds):
        for b, t in enumerate(cut):
            le = rows[X[rows, j] <= t]
            gt = rows[X[rows, j] > t]
            np.testing.assert_array_equal(counts_le[j, :, b], np.bincount(y[le], minlength=4))
            np.testing.assert_array_equal(counts_le[j, :, -1] - counts_le[j, :, b],
                                          np.bincount(y[gt], minlength=4))


def test_binning_in_blocks_gives_the_same_rules(monkeypatch):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 6))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    whole = RuleListSurrogate().fit(X, y).model_.to_dict()
    monkeypatch.setattr("hybrid.surrogates.rule_list._BLOCK_CELLS", 50)
    monkeypatch.setattr("hybrid.surrogates.rule_list._BLOCK_COLUMNS", 4)
    assert RuleListSurrogate().fit(X, y).model_.to_dict() == whole


def test_rules_record_support_and_precision_of_the_rows_they_answer(toy_data):
    X, y = toy_data
    model = RuleListSurrogate(max_rules=5).fit(X, y).model_
    fired = model.apply(X)
    for index, rule in enumerate(model.rules):
        answered = fired == index
        assert rule.support == answered.sum()
        if rule.support:
            assert rule.precision == np.mean(y[answered] == rule.prediction)


def test_a_second_bound_on_one_side_keeps_the_tighter_one(toy_data):
    X, y = toy_data
    model = RuleListSurrogate(max_conditions=3, beam_width=8).fit(X, y).model_
    for rule in model.rules:
        sides = [(p.feature, p.op) for p in rule.conditions]
        assert len(sides) == len(set(sides))
        assert all(isinstance(p, Predicate) for p in rule.conditions)


def test_one_class_gives_a_single_default_rule():
    X = np.arange(20, dtype=float).reshape(10, 2)
    model = RuleListSurrogate().fit(X, np.zeros(10, dtype=int)).model_
    assert model.complexity == 1 and model.rules[0].precision == 1.0
