"""Concepts as features and as tests: discovered by NMF (CRAFT) and user-given (TCAV).

Discovered concepts replace embedding dimensions as the columns surrogates read
(``concept_03 > 0.2``), with galleries of the images each one fires on; concept activation
vectors score how much a class leans on concepts a user names by example images.
"""

from .cav import class_gradients, fit_cavs, tcav_scores, tcav_statistics
from .discovery import (ConceptDiscovery, concept_names, concept_tables, layer_activations,
                        prototype_gallery, prototypes, table_images)

__all__ = ["ConceptDiscovery", "class_gradients", "concept_names", "concept_tables", "fit_cavs",
           "layer_activations", "prototype_gallery", "prototypes", "table_images", "tcav_scores",
           "tcav_statistics"]
