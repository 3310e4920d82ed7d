"""Surrogates: scikit-learn estimators fitted to a CNN's predictions that produce the rules IR.

Each registered surrogate follows scikit-learn's estimator contract (``get_params``, ``clone``,
``fit`` returning ``self``, fitted state ending in ``_``) and exposes its IR model as
``model_``, whose predictions are the estimator's own. Configs name surrogates through
:data:`SURROGATES`.
"""

from ..registry import Registry
from ._base import SurrogateMixin
from .rule_list import RuleListSurrogate
from .sparse_linear import SparseLinearSurrogate
from .tree import TreeSurrogate

__all__ = ["SURROGATES", "SurrogateMixin", "RuleListSurrogate", "SparseLinearSurrogate",
           "TreeSurrogate", "BUDGET_PARAMS"]

SURROGATES = Registry("surrogate")
SURROGATES.register("tree", TreeSurrogate)
SURROGATES.register("rule_list", RuleListSurrogate)
SURROGATES.register("sparse_linear", SparseLinearSurrogate)

#: The parameter that sets each surrogate's complexity budget (swept by the report).
BUDGET_PARAMS = {
    "tree": "max_leaf_nodes",
    "rule_list": "max_rules",
    "sparse_linear": "max_nonzero_per_class",
}
