"""The rule list recovers the shapes' generating rule from true concepts (no CNN involved)."""

import numpy as np
import pandas as pd
import pytest

from hybrid.concept_audit import rule_list_text, rules_match
from hybrid.config import load_config
from hybrid.data.shapes import OBJECT_CONCEPTS, ShapesDataModule
from hybrid.surrogates import SURROGATES


@pytest.mark.parametrize("rule, blur", [
    (None, 0.0),  # the configs' rule
    ("IF shape=triangle AND NOT texture=striped THEN tri ELSE IF color=green THEN green "
     "ELSE IF size=small AND shape=square THEN small ELSE other", 0.0),
    (None, 0.05),  # concept probabilities, as a bottleneck predicts them: near 0 or near 1
])
def test_rule_list_with_the_shapes_settings_recovers_the_generating_rule(rule, blur):
    config = load_config("configs/shapes.yaml")
    params = dict(config.data.params, n_train=2000, n_val=500, n_test=500)
    if rule is not None:
        params["rule"] = rule
    data = ShapesDataModule(**params)
    data.setup()
    truth = data.generating_rule

    rng = np.random.default_rng(0)

    def table(split):
        concepts = data.concepts(split).astype(float)
        probabilities = np.abs(concepts - rng.uniform(0, blur, concepts.shape))
        return pd.DataFrame(probabilities, columns=OBJECT_CONCEPTS), truth.labels(concepts)

    (X, y), val = table("train"), table("val")
    settings = config.surrogates["rule_list"]
    estimator = SURROGATES.create("rule_list", **settings.params).fit(X, y, eval_set=val)
    recovered = estimator.model_
    assert rules_match(recovered, truth.to_rule_list_model()), rule_list_text(recovered)
    assert estimator.score(*table("test")) == 1.0
