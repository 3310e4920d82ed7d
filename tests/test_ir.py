import numpy as np
import pytest

from hybrid.errors import SchemaError
from hybrid.ir import LinearModel, Predicate, Rule, RuleListModel, TreeModel, model_from_dict
from hybrid.jsonio import SCHEMA_VERSION, from_json, load_surrogate, save_surrogate, to_json

NAMES = {"feature_names": ("a", "b"), "classes": (0, 1, 2), "class_names": ("x", "y", "z")}


def _rule_list():
    return RuleListModel(**NAMES, rules=(
        Rule((Predicate(0, ">", 1.0),), 1, (0.0, 1.0, 0.0), 10, 1.0),
        Rule((Predicate(0, "<=", 1.0), Predicate(1, ">", 0.0)), 2, (0.1, 0.0, 0.9), 10, 0.9),
        Rule((), 0, (0.8, 0.1, 0.1), 10, 0.8),
    ))


def _tree():
    # root: a <= 0.5 ? leaf 1 : (b <= 2 ? leaf 3 : leaf 4)
    return TreeModel(**NAMES,
                     left=np.array([1, -1, 3, -1, -1]), right=np.array([2, -1, 4, -1, -1]),
                     feature=np.array([0, -1, 1, -1, -1]),
                     threshold=np.array([0.5, np.nan, 2.0, np.nan, np.nan]),
                     value=np.array([[.4, .3, .3], [1, 0, 0], [0, .5, .5], [0, .9, .1], [0, .2, .8]]),
                     n_samples=np.array([10, 4, 6, 3, 3]))


def _linear():
    return LinearModel(**NAMES, coef=np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]),
                       intercept=np.array([0.0, 0.0, 0.5]))


X = np.array([[2.0, 5.0], [1.0, 0.5], [1.0, 0.0], [0.5, 3.0], [0.4, 0.0], [-1.0, -1.0]])


def test_rule_list_first_match_answers_and_thresholds_are_inclusive():
    model = _rule_list()
    np.testing.assert_array_equal(model.apply(X), [0, 1, 2, 1, 2, 2])
    np.testing.assert_array_equal(model.predict(X), [1, 2, 0, 2, 0, 0])
    np.testing.assert_allclose(model.predict_proba(X)[0], [0, 1, 0])
    assert model.complexity == 3 and model.complexity_unit == "rules"


def test_tree_routes_left_on_less_or_equal():
    model = _tree()
    np.testing.assert_array_equal(model.apply(X), [4, 3, 3, 1, 1, 1])
    np.testing.assert_array_equal(model.predict(X), [2, 1, 1, 0, 0, 0])
    assert model.complexity == 3
    rules = dict(model.leaf_rules())
    assert rules[3].conditions == (Predicate(0, ">", 0.5), Predicate(1, "<=", 2.0))
    assert rules[3].prediction == 1 and rules[3].support == 3


def test_linear_predicts_argmax_of_scores_and_softmax():
    model = _linear()
    scores = X @ model.coef.T + model.intercept
    np.testing.assert_array_equal(model.predict(X), np.argmax(scores, axis=1))
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert model.complexity == 3


@pytest.mark.parametrize("make", [_rule_list, _tree, _linear])
def test_json_round_trip_is_exact(make, tmp_path):
    model = make()
    path = save_surrogate(model, tmp_path / "m.json", metadata={"note": "x"})
    loaded = load_surrogate(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert to_json(loaded, {"note": "x"}) == path.read_text()


def test_predict_checks_the_number_of_features():
    with pytest.raises(ValueError, match=r"expects \(n_samples, 2\)"):
        _linear().predict(np.zeros((3, 5)))


def test_rule_list_must_end_with_a_default():
    with pytest.raises(SchemaError, match="default rule"):
        RuleListModel(**NAMES, rules=(Rule((Predicate(0, ">", 1.0),), 0, (1, 0, 0), 1, 1.0),))


def test_newer_schema_version_is_refused_with_a_clear_error():
    text = to_json(_linear()).replace(f'"schema_version": {SCHEMA_VERSION}',
                                      f'"schema_version": {SCHEMA_VERSION + 1}')
    with pytest.raises(SchemaError, match="newer than this hybrid reads"):
        from_json(text, "future.json")


@pytest.mark.parametrize("text, message", [
    ("not json", "not JSON"),
    ('{"format": "other"}', "not a hybrid surrogate"),
    ('{"format": "hybrid-surrogate", "schema_version": 1, "kind": "forest"}', "unknown model kind"),
])
def test_malformed_files_name_the_problem(text, message):
    with pytest.raises(SchemaError, match=message):
        from_json(text, "bad.json")


def test_out_of_range_feature_is_rejected():
    data = _rule_list().to_dict()
    data["model"]["rules"][0]["conditions"][0]["feature"] = 7
    with pytest.raises(SchemaError, match="feature 7"):
        model_from_dict(data)


def test_missing_file_is_a_schema_error(tmp_path):
    with pytest.raises(SchemaError, match="no such surrogate file"):
        load_surrogate(tmp_path / "nope.json")
