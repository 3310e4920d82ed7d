"""Stage 3, distill: fit each configured surrogate to the teacher labels of the train split.

The validation split's teacher labels are the ``eval_set`` that picks each surrogate's point on
its complexity path (pruning, path point), so the test split stays untouched until the report.

Besides the configured budget, each surrogate is refitted at every budget in its ``sweep`` for
the fidelity-vs-complexity curve. Surrogate files hold no timings, so the same features give
byte-identical files; fit times go to the stage's marker.
"""

import logging
import re
import time

from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from .. import __version__
from ..config import Config, check_keys
from ..errors import ConfigError
from ..features import FeatureTable
from ..jsonio import save_surrogate
from ..rundir import RunDirectory
from ..surrogates import BUDGET_PARAMS, SURROGATES

__all__ = ["distill", "check_surrogates_config"]

log = logging.getLogger("hybrid")


def check_surrogates_config(config: Config) -> None:
    """Check every surrogate's name, params and sweep against the registry."""
    if not config.surrogates:
        raise ConfigError("section 'surrogates' is empty; name at least one of: "
                          f"{', '.join(SURROGATES.names())}")
    for key, surrogate in config.surrogates.items():
        kind = surrogate.name or key
        factory = SURROGATES.get(kind)
        # Values are scikit-learn's to check (_parameter_constraints), with its messages.
        check_keys(surrogate.params, factory().get_params(), f"surrogates.{key}.params")
        try:
            factory(**surrogate.params)._validate_params()
        except InvalidParameterError as exc:
            named = re.match(r"The '(\w+)' parameter", str(exc))
            where = f"surrogates.{key}.params" + (f".{named.group(1)}" if named else "")
            raise ConfigError(f"key '{where}': {exc}") from None
        if surrogate.sweep and kind not in BUDGET_PARAMS:
            raise ConfigError(f"key 'surrogates.{key}.sweep': {kind} has no budget parameter")


def distill(run: RunDirectory) -> dict:
    config = run.load_config()
    check_surrogates_config(config)
    train = FeatureTable.load(run.features("train"))
    val = FeatureTable.load(run.features("val"))
    summary = {}
    for key, surrogate in config.surrogates.items():
        kind = surrogate.name or key
        estimator = SURROGATES.create(kind, **surrogate.params)
        seconds = _fit_and_save(estimator, train, val, run.surrogate(key), key, kind)
        log.info("distill: %s: %d %s in %.2fs", key, estimator.model_.complexity,
                 estimator.model_.complexity_unit, seconds)
        sweep = {}
        for budget in surrogate.sweep:
            variant = clone(estimator).set_params(**{BUDGET_PARAMS[kind]: budget})
            _fit_and_save(variant, train, val, run.sweep_surrogate(key, budget), key, kind)
            sweep[str(budget)] = str(run.sweep_surrogate(key, budget).relative_to(run.root))
        summary[key] = {"estimator": kind, "file": str(run.surrogate(key).relative_to(run.root)),
                        "fit_seconds": seconds, "sweep_param": BUDGET_PARAMS.get(kind),
                        "sweep": sweep}
    run.mark_done("distill", summary)
    return summary


def _fit_and_save(estimator, train: FeatureTable, val: FeatureTable, path, key: str,
                  kind: str) -> float:
    """Fit on the train split's teacher labels, save the IR, return the fit time in seconds."""
    start = time.perf_counter()
    estimator.fit(train.frame(), train.teacher, class_names=train.class_names,
                  eval_set=(val.frame(), val.teacher))
    seconds = time.perf_counter() - start
    metadata = {"surrogate": key, "estimator": kind, "params": estimator.get_params(),
                "fitted_on": "features/train: teacher labels",
                "selected_on": "features/val: teacher labels", "n_train": len(train),
                "hybrid_version": __version__}
    save_surrogate(estimator.model_, path, metadata)
    return seconds
