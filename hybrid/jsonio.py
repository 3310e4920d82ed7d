"""The portable surrogate file: versioned JSON around an IR model, never a pickle.

Layout (``schema_version`` 1)::

    {
      "format": "hybrid-surrogate",
      "schema_version": 1,
      "kind": "rule_list" | "tree" | "linear",
      "feature_names": [...], "classes": [...], "class_names": [...],
      "model": {...kind-specific, see hybrid.ir...},
      "metadata": {...free-form: estimator, params, hybrid version...}
    }

Reading needs numpy only: this module must not import scikit-learn or torch.
"""

import json
from pathlib import Path

from . import _io
from .errors import SchemaError
from .ir import InterpretableModel, model_from_dict

__all__ = ["FORMAT", "SCHEMA_VERSION", "to_json", "from_json", "read_metadata", "save_surrogate",
           "load_surrogate"]

FORMAT = "hybrid-surrogate"
SCHEMA_VERSION = 1


def to_json(model: InterpretableModel, metadata: dict | None = None) -> str:
    """The surrogate file's text: same model and metadata, same bytes."""
    document = {"format": FORMAT, "schema_version": SCHEMA_VERSION, **model.to_dict(),
                "metadata": metadata or {}}
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def from_json(text: str, source: str = "<string>") -> InterpretableModel:
    """Parse a surrogate file's text; errors name ``source`` and what is wrong."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{source}: not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SchemaError(f"{source}: not a hybrid surrogate file (expected \"format\": \"{FORMAT}\")")
    version = document.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise SchemaError(f"{source}: schema_version {version!r} is newer than this hybrid "
                          f"reads ({SCHEMA_VERSION}); upgrade hybrid to load it")
    try:
        return model_from_dict(document)
    except SchemaError as exc:
        raise SchemaError(f"{source}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(f"{source}: malformed surrogate ({type(exc).__name__}: {exc})") from None


def read_metadata(path) -> dict:
    """The ``metadata`` object of a surrogate file."""
    return json.loads(Path(path).read_text(encoding="utf-8")).get("metadata", {})


def save_surrogate(model: InterpretableModel, path, metadata: dict | None = None) -> Path:
    """Write ``model`` to ``path`` atomically."""
    return _io.write_text(path, to_json(model, metadata))


def load_surrogate(path) -> InterpretableModel:
    """Read a surrogate file into an IR model with ``predict`` and ``predict_proba``.

    Examples
    --------
    >>> model = load_surrogate("runs/digits/surrogates/rule_list.json")  # doctest: +SKIP
    >>> model.predict(X)  # doctest: +SKIP
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaError(f"{path}: no such surrogate file") from None
    return from_json(text, source=str(path))
