import numpy as np
import pytest

from hybrid.ir import Predicate
from hybrid.surrogates import RuleListSurrogate
from hybrid.surrogates import rule_list
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
    monkeypatch.setattr("hybrid.surrogates.rule_list._QUANTILE_CELLS", 4 * 400)
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


def _nearest_centre_data(n, seed):
    """Rows around four centres, labelled by the nearest centre: a teacher whose boundaries
    are oblique, so axis-aligned rules that fit 300 rows exactly still err near them."""
    centres = np.random.default_rng(99).normal(size=(4, 6)) * 3
    rng = np.random.default_rng(seed)
    X = centres[rng.integers(0, 4, n)] + rng.normal(size=(n, 6))
    return X, np.argmin(((X[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)


@pytest.mark.parametrize("seed", [1, 5])
def test_noisy_copies_widen_the_margins_of_a_list_that_fits_every_row(seed):
    X, y = _nearest_centre_data(300, seed)
    X_val, y_val = _nearest_centre_data(300, seed + 100)
    X_test, y_test = _nearest_centre_data(5000, seed + 200)
    plain = RuleListSurrogate(max_rules=16, noise=0).fit(X, y, eval_set=(X_val, y_val))
    noisy = RuleListSurrogate(max_rules=16).fit(X, y, eval_set=(X_val, y_val))
    assert plain.score(X, y) == 1.0 and plain.noise_ == 0.0
    assert noisy.noise_ > 0
    assert noisy.score(X_test, y_test) > plain.score(X_test, y_test)
    # rules describe the real training rows, never their copies
    assert sum(rule.support for rule in noisy.model_.rules) == len(X)


def test_noise_needs_an_eval_set_to_choose_it():
    X, y = _nearest_centre_data(300, 5)
    estimator = RuleListSurrogate(max_rules=16).fit(X, y)
    assert estimator.noise_ == 0.0
    plain = RuleListSurrogate(max_rules=16, noise=0).fit(X, y)
    assert estimator.model_.to_dict() == plain.model_.to_dict()


def test_noise_is_not_tried_while_rows_it_could_answer_are_still_wrong(monkeypatch):
    X, y = _nearest_centre_data(300, 5)
    X_val, y_val = _nearest_centre_data(300, 105)
    flipped = np.random.default_rng(0).random(len(y)) < 0.05  # teacher noise: no exact fit
    y = np.where(flipped, (y + 1) % 4, y)
    monkeypatch.setattr("hybrid.surrogates.rule_list._noisy_copies", _refuse)
    estimator = RuleListSurrogate(max_rules=16).fit(X, y, eval_set=(X_val, y_val))
    assert estimator.score(X, y) < 1.0 and estimator.noise_ == 0.0


def test_noise_is_tried_when_a_small_budget_answers_its_classes_right(monkeypatch):
    """Three rules for four classes: the rows of the class left out cannot be right, and
    noise may still place the boundaries of the other three."""
    X, y = _nearest_centre_data(300, 5)
    X_val, y_val = _nearest_centre_data(300, 105)
    made = []
    noisy_copies = rule_list._noisy_copies
    monkeypatch.setattr("hybrid.surrogates.rule_list._noisy_copies",
                        lambda *args: made.append(args[2]) or noisy_copies(*args))
    estimator = RuleListSurrogate(max_rules=3).fit(X, y, eval_set=(X_val, y_val))
    answered = np.isin(y, [rule.prediction for rule in estimator.model_.rules])
    assert not answered.all() and made == [0.25, 0.25, 0.5, 0.5]


def _refuse(*args):
    raise AssertionError("noisy copies were made")


def test_noisy_fits_are_seeded_and_keep_float32():
    X, y = _nearest_centre_data(300, 5)
    X_val, y_val = _nearest_centre_data(300, 105)
    fits = [RuleListSurrogate(max_rules=16).fit(X.astype(np.float32), y,
                                                eval_set=(X_val.astype(np.float32), y_val))
            for _ in range(2)]
    assert fits[0].noise_ > 0
    assert fits[0].model_.to_dict() == fits[1].model_.to_dict()
