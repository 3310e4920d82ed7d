"""hybrid: train an image classifier, then distill it into models a person can read.

The top level imports numpy only: loading, predicting with and exporting a surrogate never
imports torch. The torch side (``hybrid.data``, ``hybrid.backbones``, ``hybrid.classifier``,
``hybrid.extraction``) and the pipeline are imported where they are used.
"""

from .ir import InterpretableModel, LinearModel, Predicate, Rule, RuleListModel, TreeModel
from .jsonio import load_surrogate, save_surrogate

__version__ = "0.1.0"

__all__ = [
    "InterpretableModel",
    "LinearModel",
    "Predicate",
    "Rule",
    "RuleListModel",
    "TreeModel",
    "load_surrogate",
    "save_surrogate",
    "__version__",
]
