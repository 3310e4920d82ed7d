"""One contract over every registered surrogate: scikit-learn's, the IR's, the JSON file's."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from hybrid.jsonio import from_json, to_json
from hybrid.surrogates import BUDGET_PARAMS, SURROGATES

from ..conftest import run_python

ALL = SURROGATES.names()


def _small(name):
    """Each surrogate with settings that keep scikit-learn's checks fast."""
    params = {"sparse_linear": {"n_penalties": 8}, "rule_list": {"max_rules": 8}}.get(name, {})
    return SURROGATES.create(name, **params)


@parametrize_with_checks([_small(name) for name in ALL])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_registry_lists_the_three_surrogates_with_budgets():
    assert ALL == ["rule_list", "sparse_linear", "tree"]
    assert set(BUDGET_PARAMS) == set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_estimator_predicts_what_its_ir_and_json_predict(name, toy_data):
    X, y = toy_data
    estimator = SURROGATES.create(name).fit(X, y)
    expected = estimator.predict(X)
    np.testing.assert_array_equal(estimator.model_.predict(X), expected)
    loaded = from_json(to_json(estimator.model_))
    np.testing.assert_array_equal(loaded.predict(X), expected)
    np.testing.assert_array_equal(loaded.predict_proba(X), estimator.predict_proba(X))
    assert np.mean(expected == y) > 0.85, "the toy classes are well separated"


@pytest.mark.parametrize("name", ALL)
def test_budget_is_respected(name, toy_data):
    X, y = toy_data
    for budget in (2, 3, 5):
        estimator = SURROGATES.create(name, **{BUDGET_PARAMS[name]: budget}).fit(X, y)
        if name == "sparse_linear":
            assert estimator.model_.nonzero_per_class.max() <= budget
        else:
            assert estimator.complexity_ <= budget


@pytest.mark.parametrize("name", ALL)
def test_same_data_same_json_bytes(name, toy_data):
    X, y = toy_data
    first = to_json(SURROGATES.create(name).fit(X, y).model_)
    second = to_json(clone(SURROGATES.create(name)).fit(X.copy(), y.copy()).model_)
    assert first == second


@pytest.mark.parametrize("name", ALL)
def test_names_flow_from_dataframe_and_class_names(name, toy_data):
    X, y = toy_data
    frame = pd.DataFrame(X, columns=["red", "round", "big", "dark"])
    model = SURROGATES.create(name).fit(frame, y, class_names=["A", "B", "C"]).model_
    assert model.feature_names == ("red", "round", "big", "dark")
    assert model.class_names == ("A", "B", "C") and model.classes == (0, 1, 2)


def test_string_labels_are_classes(toy_data):
    X, y = toy_data
    labels = np.array(["cat", "dog", "eel"])[y]
    estimator = SURROGATES.create("rule_list").fit(X, labels)
    assert set(estimator.predict(X)) <= {"cat", "dog", "eel"}
    assert json.loads(to_json(estimator.model_))["classes"] == ["cat", "dog", "eel"]


def test_tree_ir_matches_scikit_learn_tree_on_float32(toy_data):
    X, y = toy_data
    estimator = SURROGATES.create("tree", max_leaf_nodes=8).fit(X, y)
    rng = np.random.default_rng(1)
    probe = np.vstack([X, rng.normal(scale=2, size=(500, 4)).astype(np.float32)])
    # rows exactly on every threshold: the IR must route them left, like scikit-learn
    inner = estimator.tree_.tree_.feature >= 0
    on = np.tile(X[:1], (inner.sum(), 1))
    on[np.arange(inner.sum()), estimator.tree_.tree_.feature[inner]] = \
        estimator.tree_.tree_.threshold[inner].astype(np.float32)
    probe = np.vstack([probe, on]).astype(np.float32)
    np.testing.assert_array_equal(estimator.model_.predict(probe), estimator.tree_.predict(probe))


def test_loading_a_surrogate_imports_neither_torch_nor_sklearn(tmp_path, toy_data):
    X, y = toy_data
    path = tmp_path / "rules.json"
    path.write_text(to_json(SURROGATES.create("rule_list").fit(X, y).model_))
    np.save(tmp_path / "X.npy", X)
    out = run_python(
        "import sys, numpy as np, hybrid\n"
        f"m = hybrid.load_surrogate({str(path)!r})\n"
        f"print(m.predict(np.load({str(tmp_path / 'X.npy')!r})).tolist())\n"
        "assert 'torch' not in sys.modules and 'sklearn' not in sys.modules, 'heavy import'\n")
    expected = SURROGATES.create("rule_list").fit(X, y).predict(X)
    assert json.loads(out) == expected.tolist()
