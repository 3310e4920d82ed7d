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

The layout is written down as a JSON Schema (draft 2020-12, :func:`schema`), shipped in
``hybrid/schemas/surrogate.schema.json`` for other tools; every file is checked against it when
loaded. Reading needs numpy and jsonschema only: this module must not import scikit-learn or
torch.
"""

import json
from functools import cache
from importlib import resources
from pathlib import Path

from . import _io
from .errors import SchemaError
from .ir import MODEL_KINDS, InterpretableModel, model_from_dict

__all__ = ["FORMAT", "SCHEMA_VERSION", "to_json", "from_json", "schema", "read_metadata",
           "save_surrogate", "load_surrogate"]

FORMAT = "hybrid-surrogate"
SCHEMA_VERSION = 1


def to_json(model: InterpretableModel, metadata: dict | None = None) -> str:
    """The surrogate file's text: same model and metadata, same bytes."""
    document = {"format": FORMAT, "schema_version": SCHEMA_VERSION, **model.to_dict(),
                "metadata": metadata or {}}
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def from_json(text: str, source: str = "<string>") -> InterpretableModel:
    """Parse a surrogate file's text; errors name ``source`` and what is wrong.

    The file is identified first (``format``, then ``schema_version``, then ``kind``), each
    with its own message, because they decide how the rest is read: a file from a newer
    hybrid is refused as newer, not as malformed. The rest is then checked once against
    :func:`schema`, and :mod:`hybrid.ir` checks what a schema cannot (indices in range, one
    probability per class) while it builds the model.

    Raises
    ------
    SchemaError
        One line naming ``source``, and for a schema violation the JSON path of the most
        relevant one (jsonschema's ``best_match``), e.g.
        ``m.json: $.model.rules[0].support: 'many' is not of type 'integer'``.
    """
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
    kind = document.get("kind")
    if kind not in MODEL_KINDS:
        raise SchemaError(f"{source}: $.kind: unknown model kind {kind!r}; known kinds: "
                          f"{', '.join(MODEL_KINDS)}")
    _check_schema(document, source)
    try:
        return model_from_dict(document)
    except SchemaError as exc:
        raise SchemaError(f"{source}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(f"{source}: malformed surrogate ({type(exc).__name__}: {exc})") from None


def schema() -> dict:
    """The JSON Schema (draft 2020-12) of the surrogate file, as a fresh dict.

    Other tools can validate surrogate files with it; the file itself is
    ``hybrid/schemas/surrogate.schema.json`` in the installed package.
    """
    text = (resources.files(__package__) / "schemas" / "surrogate.schema.json").read_text(
        encoding="utf-8")
    return json.loads(text)


@cache
def _validator():
    """The compiled schema, built once on the first load."""
    # Imported here: jsonschema takes about as long to import as the rest of hybrid's
    # numpy side, and most commands never load a surrogate.
    from jsonschema import Draft202012Validator
    return Draft202012Validator(schema())


def _check_schema(document: dict, source: str) -> None:
    """Raise the most relevant violation of :func:`schema` in ``document``, if any."""
    from jsonschema.exceptions import best_match
    error = best_match(_validator().iter_errors(document))
    if error is not None:
        raise SchemaError(f"{source}: {error.json_path}: {_shortened(error.message)}")


def _shortened(message: str, limit: int = 200) -> str:
    """``message`` cut to ``limit`` characters: it repeats the offending value, maybe a list."""
    return message if len(message) <= limit else message[:limit - 3] + "..."


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
