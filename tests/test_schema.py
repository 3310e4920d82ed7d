"""The surrogate file's JSON Schema: real files validate, broken ones fail naming the JSON path."""

import copy
import json
import time

import numpy as np
import pandas as pd
import pytest
from jsonschema import Draft202012Validator

from hybrid import jsonio
from hybrid.errors import SchemaError
from hybrid.ir import LinearModel, Predicate, Rule, RuleListModel, TreeModel
from hybrid.jsonio import (SCHEMA_VERSION, from_json, load_surrogate, save_surrogate, schema,
                           to_json)
from hybrid.surrogates import SURROGATES

from .conftest import run_python
from .exporters.test_exporters import HOSTILE, MAKERS

METADATA = {"surrogate": "rule_list", "estimator": "rule_list", "params": {"max_rules": 8},
            "hybrid_version": "0.1.0"}


def fitted(name, X, y, hostile=False):
    if hostile:
        X = pd.DataFrame(X, columns=list(HOSTILE[:X.shape[1]]))
        y = np.asarray(HOSTILE[-3:], dtype=object)[y]
    return SURROGATES.create(name).fit(X, y).model_


def document(model, metadata=METADATA) -> dict:
    return json.loads(to_json(model, metadata))


def test_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(schema())
    assert schema()["properties"]["schema_version"]["const"] == SCHEMA_VERSION


@pytest.mark.parametrize("hostile", [False, True], ids=["plain", "hostile"])
@pytest.mark.parametrize("name", SURROGATES.names())
def test_every_fitted_surrogate_file_validates(name, hostile, toy_data):
    model = fitted(name, *toy_data, hostile=hostile)
    Draft202012Validator(schema()).validate(document(model))
    assert from_json(to_json(model, METADATA)).kind == model.kind


@pytest.mark.parametrize("make", MAKERS)
def test_every_hand_built_model_file_validates(make):
    Draft202012Validator(schema()).validate(document(make(), {}))


def _rule_list():
    return RuleListModel(("a", "b"), (0, "z"), ("zero", "z"), rules=(
        Rule((Predicate(0, ">", 1.0),), 1, (0.0, 1.0), 10, 1.0),
        Rule((), 0, (0.8, 0.2), 10, 0.8)))


def _tree():
    return TreeModel(("a",), (0, 1), ("no", "yes"), left=np.array([1, -1, -1]),
                     right=np.array([2, -1, -1]), feature=np.array([0, -1, -1]),
                     threshold=np.array([0.5, np.nan, np.nan]),
                     value=np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]]),
                     n_samples=np.array([4, 2, 2]))


def _linear():
    return LinearModel(("a", "b"), (0, 1), ("no", "yes"), coef=np.array([[1.0, 0.0], [0.0, 1.0]]),
                       intercept=np.array([0.0, 0.5]))


def _broken(make, change):
    data = document(make())
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize("make, change, message", [
    (_rule_list, lambda d: d.pop("classes"), r"\$: 'classes' is a required property"),
    (_rule_list, lambda d: d.update(feature_names="a"),
     r"\$\.feature_names: 'a' is not of type 'array'"),
    (_rule_list, lambda d: d.update(classes=[0, 1.5]),
     r"\$\.classes\[1\]: 1\.5 is not of type 'integer', 'string'"),
    (_rule_list, lambda d: d.update(metadata=[]), r"\$\.metadata: \[\] is not of type 'object'"),
    (_rule_list, lambda d: d.update({"extra\nkey": 1}),
     r"\$: Additional properties are not allowed \('extra\\nkey' was unexpected\)"),
    (_rule_list, lambda d: d.update(schema_version=0), r"\$\.schema_version: 1 was expected"),
    (_rule_list, lambda d: d["model"]["rules"][0].update(support="many"),
     r"\$\.model\.rules\[0\]\.support: 'many' is not of type 'integer'"),
    (_rule_list, lambda d: d["model"]["rules"][0]["conditions"][0].update(threshold="1.0"),
     r"\$\.model\.rules\[0\]\.conditions\[0\]\.threshold: '1\.0' is not of type 'number'"),
    (_rule_list, lambda d: d["model"]["rules"][0]["conditions"][0].update(op="<"),
     r"\$\.model\.rules\[0\]\.conditions\[0\]\.op: '<' is not one of \['<=', '>'\]"),
    (_rule_list, lambda d: d["model"].update(nodes=[]),
     r"\$\.model: Additional properties are not allowed \('nodes' was unexpected\)"),
    (_tree, lambda d: d["model"]["nodes"][0].pop("left"),
     r"\$\.model\.nodes\[0\]: 'left' is a dependency of 'feature'"),
    (_tree, lambda d: d["model"]["nodes"][1].update(value=[1.5, 0.0]),
     r"\$\.model\.nodes\[1\]\.value\[0\]: 1\.5 is greater than the maximum of 1"),
    (_tree, lambda d: d["model"]["nodes"][2].update(feature=0),
     r"\$\.model\.nodes\[2\]: 'threshold' is a dependency of 'feature'"),
    (_tree, lambda d: d["model"]["nodes"][0].update(feature=-1),
     r"\$\.model\.nodes\[0\]\.feature: -1 is less than the minimum of 0"),
    (_linear, lambda d: d["model"].pop("intercept"),
     r"\$\.model: 'intercept' is a required property"),
    (_linear, lambda d: d["model"]["coef"][1].__setitem__(0, None),
     r"\$\.model\.coef\[1\]\[0\]: None is not of type 'number'"),
])
def test_schema_violations_name_the_source_and_json_path(make, change, message):
    with pytest.raises(SchemaError, match=rf"^bad\.json: {message}$") as caught:
        from_json(_broken(make, change), "bad.json")
    assert "\n" not in str(caught.value)


def test_long_offending_values_are_cut_to_one_short_line():
    with pytest.raises(SchemaError) as caught:
        from_json(_broken(_linear, lambda d: d["model"].update(coef="x" * 5000)), "bad.json")
    assert len(str(caught.value)) < 260 and str(caught.value).endswith("...")


def test_unknown_kind_names_the_path():
    with pytest.raises(SchemaError, match=r"^bad\.json: \$\.kind: unknown model kind 'forest'; "
                                          r"known kinds: rule_list, tree, linear$"):
        from_json(_broken(_tree, lambda d: d.update(kind="forest")), "bad.json")


@pytest.mark.parametrize("change", [
    lambda d: None,
    lambda d: d.update(kind="forest", model=[], newer_field=1),
], ids=["same-layout", "new-layout"])
def test_newer_version_is_refused_as_newer_before_the_schema(change):
    def newer(d):
        d["schema_version"] = SCHEMA_VERSION + 1
        change(d)
    with pytest.raises(SchemaError, match=r"^future\.json: schema_version 2 is newer than this "
                                          r"hybrid reads \(1\); upgrade hybrid to load it$"):
        from_json(_broken(_rule_list, newer), "future.json")


def test_schema_passes_what_only_the_ir_can_check_to_the_ir():
    text = _broken(_rule_list, lambda d: d["model"]["rules"][0]["conditions"][0].update(feature=7))
    with pytest.raises(SchemaError, match=r"^bad\.json: predicate feature 7 is not an index "
                                          r"below 2"):
        from_json(text, "bad.json")


def _typical_tree(n_features=64, n_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2000, n_features)).astype(np.float32)
    y = rng.integers(0, n_classes, len(X))
    return SURROGATES.create("tree", max_leaf_nodes=64).fit(X, y).model_


def test_a_typical_file_is_checked_well_under_50_ms():
    text = to_json(_typical_tree(), METADATA)
    from_json(text)  # builds the validator once
    best = min(_seconds(lambda: from_json(text)) for _ in range(5))
    assert best < 0.05, f"loading took {best * 1000:.1f} ms"


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def test_loading_validates_once(tmp_path, monkeypatch):
    path = save_surrogate(_tree(), tmp_path / "m.json")
    built = jsonio._validator
    calls = []
    monkeypatch.setattr(jsonio, "_validator", lambda: calls.append(1) or built())
    load_surrogate(path)
    assert calls == [1]


def test_schema_returns_a_fresh_copy():
    first = schema()
    first["properties"].clear()
    assert schema()["properties"] and copy.deepcopy(schema()) == schema()


def test_loading_imports_neither_torch_nor_sklearn(tmp_path):
    path = save_surrogate(_rule_list(), tmp_path / "m.json", METADATA)
    out = run_python(
        "import sys\n"
        "from hybrid.jsonio import load_surrogate\n"
        f"load_surrogate({str(path)!r})\n"
        "print(sorted({'torch', 'sklearn'} & {m.split('.')[0] for m in sys.modules}))\n")
    assert out.strip() == "[]"
