"""The rule list's search and pruning: validation picks the prefix, redundant rules go, every
way of counting (blocks, torch, float32) learns the same rules."""

import numpy as np
import pytest

from hybrid.jsonio import from_json, to_json
from hybrid.surrogates import RuleListSurrogate
from hybrid.surrogates.rule_list import (_bin, _CoveringSearch, _free_classes, _numpy_counter,
                                         _quantile_thresholds, _top)

from ._data import noisy_region_data


def _generated_list_data(seed, n=2000):
    """Balanced 0/1 features a..e (and three unused) labelled by the list
    IF a AND b THEN 0 ELSE IF c AND d THEN 1 ELSE IF e THEN 2 ELSE 3."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, size=(n, 8)).astype(float)
    a, b, c, d, e = X[:, :5].T.astype(bool)
    return X, np.select([a & b, c & d, e], [0, 1, 2], 3)


def _as_sets(model):
    return [({(p.feature, p.op, p.threshold) for p in rule.conditions}, rule.prediction)
            for rule in model.rules]


def _assert_generating_list(model):
    rules = _as_sets(model)
    assert len(rules) == 4
    assert rules[0] == ({(0, ">", 0.5), (1, ">", 0.5)}, 0)
    assert rules[1] == ({(2, ">", 0.5), (3, ">", 0.5)}, 1)
    # the last two classes split on e, either way round
    assert rules[2] in (({(4, ">", 0.5)}, 2), ({(4, "<=", 0.5)}, 3))
    assert rules[3][1] == 5 - rules[2][1]


def test_validation_picks_the_prefix_that_generalizes():
    X, y, X_val, y_val = noisy_region_data(levels=20)
    fitted = RuleListSurrogate(max_rules=4).fit(X, y)
    assert fitted.complexity_ == 3 and fitted.score(X, y) == 1.0
    pruned = RuleListSurrogate(max_rules=4).fit(X, y, eval_set=(X_val, y_val))
    assert pruned.complexity_ == 2
    assert pruned.score(X_val, y_val) > fitted.score(X_val, y_val)
    assert [entry["n_rules"] for entry in pruned.path_] == [1, 2, 3]
    best = max(pruned.path_, key=lambda entry: entry["val_fidelity"])
    assert best["n_rules"] == pruned.complexity_
    assert pruned.path_[-1]["train_fidelity"] == 1.0 > pruned.path_[-1]["val_fidelity"]


def test_path_is_the_validation_curve_of_one_fit(toy_data):
    X, y = toy_data
    estimator = RuleListSurrogate(max_rules=6).fit(X[::2], y[::2], eval_set=(X[1::2], y[1::2]))
    path = estimator.path_
    assert [entry["n_rules"] for entry in path] == list(range(1, len(path) + 1))
    assert len(path) <= 6
    for entry in path:
        assert set(entry) == {"n_rules", "train_fidelity", "val_fidelity"}
        assert 0.0 <= entry["train_fidelity"] <= 1.0 and 0.0 <= entry["val_fidelity"] <= 1.0
    chosen = path[estimator.complexity_ - 1]
    assert chosen["val_fidelity"] == max(entry["val_fidelity"] for entry in path)
    assert chosen["val_fidelity"] == estimator.score(X[1::2], y[1::2])


def test_greedy_growth_adds_a_redundant_rule_that_pruning_drops():
    # error_cost high: every rule is pure; miss_cost 0: plain greedy covering
    X, y = _generated_list_data(seed=0)
    thresholds = _quantile_thresholds(X, 32, None, 0)
    search = _CoveringSearch(X, y, 4, thresholds, None, 3, 4, 0.0, 5)
    grown = [{(p.feature, p.op, p.threshold) for p in rule} for rule in search.rules(3, 10.0)]
    assert grown[1] not in ({(2, ">", 0.5), (3, ">", 0.5)},), "greedy should go astray first"
    model = RuleListSurrogate(max_rules=4, error_cost=10.0, miss_cost=0.0).fit(X, y).model_
    _assert_generating_list(model)
    assert np.mean(model.predict(X) == y) == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_recovers_a_known_three_rule_list_over_binary_features(seed):
    X, y = _generated_list_data(seed)
    model = RuleListSurrogate(max_rules=4, error_cost=10.0).fit(X, y).model_
    _assert_generating_list(model)
    assert np.mean(model.predict(X) == y) == 1.0


def test_a_rule_threshold_sits_in_the_middle_of_its_gap():
    X = np.repeat(np.arange(10.0), 10)[:, None]
    y = (X[:, 0] > 4).astype(int)
    model = RuleListSurrogate(max_rules=2).fit(X, y).model_
    (condition,) = model.rules[0].conditions
    assert condition.threshold == 4.5


def test_a_thousand_classes():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 1000, size=5000)
    X = np.column_stack([y + rng.normal(scale=0.1, size=len(y)), rng.normal(size=(len(y), 3))])
    estimator = RuleListSurrogate(max_rules=12, min_support=2).fit(X, y)
    model = estimator.model_
    assert model.n_classes == len(np.unique(y)) and estimator.complexity_ <= 12
    assert np.mean(estimator.predict(X) == y) > 11 / 1000, "each rule answers its class"
    np.testing.assert_array_equal(from_json(to_json(model)).predict(X), estimator.predict(X))


def test_torch_counting_gives_the_same_rules(toy_data):
    pytest.importorskip("torch")
    X, y = toy_data
    numpy_rules = RuleListSurrogate(max_rules=6).fit(X, y).model_.to_dict()
    assert RuleListSurrogate(max_rules=6, device="cpu").fit(X, y).model_.to_dict() == numpy_rules


def test_float32_input_is_used_as_is_and_gives_the_rules_of_float64(monkeypatch):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(600, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0.3).astype(int)
    as_float64 = RuleListSurrogate(max_rules=6).fit(X.astype(np.float64), y).model_.to_dict()
    seen = []
    original = _quantile_thresholds
    monkeypatch.setattr("hybrid.surrogates.rule_list._quantile_thresholds",
                        lambda X, *args: seen.append(X.dtype) or original(X, *args))
    assert RuleListSurrogate(max_rules=6).fit(X, y).model_.to_dict() == as_float64
    assert seen == [np.float32]


def test_same_data_same_rules_with_a_seeded_subsample():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(800, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    first = RuleListSurrogate(subsample=100, random_state=7).fit(X, y)
    second = RuleListSurrogate(subsample=100, random_state=7).fit(X.copy(), y.copy())
    assert to_json(first.model_) == to_json(second.model_)
    assert all(len(t) <= 33 for t in first.thresholds_)  # 32 quantiles + the widest gap
    assert all(np.isin(t, X[:, j]).all() for j, t in enumerate(first.thresholds_))


def test_a_sequence_of_error_costs_is_chosen_on_validation():
    X, y, X_val, y_val = noisy_region_data(seed=1, levels=20)
    chosen = RuleListSurrogate(error_cost=(1.0, 4.0)).fit(X, y, eval_set=(X_val, y_val))
    assert chosen.error_cost_ in (1.0, 4.0)
    alone = RuleListSurrogate(error_cost=chosen.error_cost_).fit(X, y, eval_set=(X_val, y_val))
    assert to_json(chosen.model_) == to_json(alone.model_)
    with pytest.raises(ValueError, match="error_cost"):
        RuleListSurrogate(error_cost=(1.0, -1.0)).fit(X, y)


def test_top_ranks_by_value_then_index():
    rng = np.random.default_rng(4)
    values = rng.integers(0, 5, size=(2, 7, 9)).astype(float)
    values[0, 3] = -np.inf
    expected = sorted(range(values.size), key=lambda i: (-values.ravel()[i], i))
    for n in (1, 4, 20, values.size):
        np.testing.assert_array_equal(_top(values, n), expected[:n])


def test_small_budgets_let_rules_answer_unreachable_classes_for_free():
    open_counts = np.array([50, 40, 30, 20, 0])
    assert _free_classes(open_counts, 3) is None  # every other class can still get a rule
    mask, next_class = _free_classes(open_counts, 1)
    np.testing.assert_array_equal(mask, [0, 1, 1, 1, 1])
    assert next_class == 1


def test_histograms_of_subsets_match_counting_from_scratch():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(500, 3))
    y = rng.integers(0, 3, size=500)
    thresholds = _quantile_thresholds(X, 8, None, 0)
    count = _numpy_counter(_bin(X, thresholds), y, 3, max(map(len, thresholds)) + 1)
    rows = np.arange(500)
    inside = rows[X[:, 0] > 0.2]
    np.testing.assert_array_equal(count(rows) - count(rows[X[:, 0] <= 0.2]), count(inside))
