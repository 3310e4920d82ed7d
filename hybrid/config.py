"""Typed run configuration: one YAML section, one frozen pydantic model.

pydantic does the type checking and coercion (``"1e-3"`` -> float, nested sections, lists) and
reports where a value is wrong; this module turns its reports into one line that names the
file, the key and the valid choices. Sections that pass through to a plug-in (``params``) or to
Lightning (``trainer``) are plain dicts here and are checked against the plug-in's signature by
:func:`check_params`.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from .errors import ConfigError

__all__ = [
    "Component",
    "DataConfig",
    "BackboneConfig",
    "OptimizerConfig",
    "BottleneckConfig",
    "ModelConfig",
    "ExtractConfig",
    "SurrogateConfig",
    "EvidenceConfig",
    "ExportConfig",
    "ReportConfig",
    "Config",
    "load_config",
    "parse_overrides",
    "config_to_yaml",
    "check_params",
    "check_keys",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(_Section):
    """A registered plug-in: ``{name: small_cnn, params: {...}}``."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class DataConfig(Component):
    """The data module (``hybrid.data.DATAMODULES``) and its parameters."""

    name: str = "digits"


class BackboneConfig(Component):
    """A backbone from ``hybrid.backbones.BACKBONES``; ``in_channels`` comes from the data."""

    name: str = "small_cnn"


class OptimizerConfig(Component):
    """A ``torch.optim`` optimizer from ``hybrid.classifier.OPTIMIZERS`` and its arguments."""

    name: str = "adamw"
    params: dict[str, Any] = Field(default_factory=lambda: {"lr": 3e-3, "weight_decay": 1e-4})


class BottleneckConfig(_Section):
    """A concept bottleneck (Koh et al., 2020) between the backbone and the label head.

    ``mode`` is ``independent``, ``sequential`` or ``joint``; ``concept_weight`` weighs the
    concept loss in ``joint`` mode; ``concept_epochs`` is the concept phase of ``sequential``
    (None: half of ``trainer.max_epochs``). The data set must have concept labels.
    """

    mode: Literal["independent", "sequential", "joint"] = "joint"
    concept_weight: float = Field(1.0, ge=0)
    concept_epochs: int | None = Field(None, ge=0)


class ModelConfig(_Section):
    """The CNN: backbone, optimizer, LR schedule (``none`` or ``cosine``) and label smoothing;
    with ``bottleneck``, a concept bottleneck model instead of a plain classifier.

    ``channels_last`` trains and extracts with the model's convolution weights and its image
    batches in ``torch.channels_last`` (NHWC) memory format, the layout GPU convolution
    kernels prefer under mixed precision. It changes speed, not the checkpoint.
    """

    backbone: BackboneConfig = BackboneConfig()
    bottleneck: BottleneckConfig | None = None
    optimizer: OptimizerConfig = OptimizerConfig()
    scheduler: str = "cosine"
    label_smoothing: float = 0.0
    channels_last: bool = False


class ExtractConfig(_Section):
    """Feature extraction: what the surrogates read, and the forward passes' batch size.

    ``features: embedding`` gives the penultimate layer (``dim_0``, ...);
    ``discovered_concepts`` gives ``n_concepts`` concepts found by non-negative matrix
    factorization of the last convolution's activations (``concept_00``, ...); with a concept
    bottleneck (``model.bottleneck``), ``concepts`` gives its predicted concept probabilities,
    named by the data set (``color=red``, ...), and ``concepts_and_embedding`` both.
    """

    batch_size: int = Field(256, gt=0)
    features: Literal["embedding", "discovered_concepts", "concepts",
                      "concepts_and_embedding"] = "embedding"
    n_concepts: int = Field(10, gt=0)


class EvidenceConfig(_Section):
    """Pixel evidence: for each feature the surrogates use, its ``top_k`` training prototypes
    with the attribution ``method`` of that feature; ``methods`` are scored by deletion and
    insertion on ``faithfulness_images`` test images (0 skips the scores)."""

    method: str = "integrated_gradients"
    top_k: int = Field(6, gt=0)
    methods: list[str] = ["saliency", "integrated_gradients", "gradcam"]
    faithfulness_images: int = Field(128, ge=0)


class SurrogateConfig(_Section):
    """One surrogate: a registered estimator, its parameters, and budgets for the sweep.

    ``name`` defaults to the surrogate's key in ``surrogates``; ``sweep`` lists values of the
    estimator's budget parameter for the fidelity-vs-complexity curve.
    """

    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    sweep: list[int] = Field(default_factory=list)


class ExportConfig(_Section):
    """Which exporters (``hybrid.exporters.EXPORTERS``) write files for each surrogate."""

    formats: list[str] = ["text", "markdown", "json", "dot", "svg", "python", "sql"]


class ReportConfig(_Section):
    """Fidelity report settings.

    ``bootstrap_resamples`` and ``confidence`` set the intervals; ``defer_below`` is the
    validation fidelity under which a rule defers to the CNN in the hybrid predictor, and
    ``deferral_thresholds`` the points of its coverage-vs-fidelity curve.
    ``suspect_concepts`` names concepts that should not decide a class (a watermark, a
    scanner tag): the report flags every rule that reads one, with the CNN's accuracy on
    test rows without the concept against validation.
    """

    bootstrap_resamples: int = Field(1000, gt=0)
    confidence: float = Field(0.95, gt=0, lt=1)
    defer_below: float = Field(0.9, ge=0, le=1)
    deferral_thresholds: list[float] = [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0]
    suspect_concepts: list[str] = Field(default_factory=list)


def _default_surrogates() -> dict[str, SurrogateConfig]:
    return {
        "tree": SurrogateConfig(params={"max_leaf_nodes": 32}, sweep=[4, 6, 8, 10, 12, 16, 32]),
        "rule_list": SurrogateConfig(params={"max_rules": 32}, sweep=[4, 6, 8, 10, 12, 16, 32]),
        "sparse_linear": SurrogateConfig(params={"max_nonzero_per_class": 10},
                                         sweep=[1, 2, 3, 5, 10, 20]),
    }


class Config(_Section):
    """A whole run. ``trainer`` passes through to ``pl.Trainer``: ``strategy``, ``devices``,
    ``num_nodes`` and ``precision`` too (see the README's "Scaling out")."""

    seed: int = 0
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    trainer: dict[str, Any] = Field(default_factory=lambda: {"max_epochs": 30, "deterministic": True})
    extract: ExtractConfig = ExtractConfig()
    surrogates: dict[str, SurrogateConfig] = Field(default_factory=_default_surrogates)
    evidence: EvidenceConfig = EvidenceConfig()
    export: ExportConfig = ExportConfig()
    report: ReportConfig = ReportConfig()

    @model_validator(mode="after")
    def _concepts_need_a_bottleneck(self):
        if self.extract.features.startswith("concepts") and self.model.bottleneck is None:
            raise ValueError(f"extract.features: {self.extract.features} reads a concept "
                             "bottleneck's concepts; add a model.bottleneck section or use "
                             "features: embedding")
        return self


def load_config(path, overrides: list[str] = ()) -> Config:
    """Read ``path``, apply ``--set key=value`` overrides and validate.

    Raises
    ------
    ConfigError
        One line naming the file, the key and what is valid.
    """
    path = Path(path)
    overrides = parse_overrides(overrides)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("no such config file", path) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({_one_line(exc)})", path) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("the top level must be a mapping of sections, "
                          f"not a {type(raw).__name__}", path)
    for key, value in overrides:
        _set_path(raw, key, value, path)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, Config), path) from None


def parse_overrides(overrides) -> list[tuple[str, Any]]:
    """``["a.b=3", "c=x"]`` -> ``[("a.b", 3), ("c", "x")]``; values are read as YAML."""
    pairs = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. trainer.max_epochs=1")
        try:
            pairs.append((key.strip(), yaml.safe_load(text)))
        except yaml.YAMLError:
            pairs.append((key.strip(), text))
    return pairs


def _set_path(raw: dict, dotted: str, value, path: Path) -> None:
    node = raw
    parts = dotted.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: '{'.'.join(parts[:i + 1])}' is a value, "
                              "not a section", path)
        node = child
    node[parts[-1]] = value


def config_to_yaml(config: Config) -> str:
    """The resolved config as YAML; :func:`load_config` reads it back to an equal Config."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def _describe(exc: ValidationError, model: type[BaseModel]) -> str:
    """pydantic's first error as: key, problem, valid choices."""
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc)
    if not loc:  # a check across sections words its own message
        return str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
    if error["type"] == "extra_forbidden":
        valid = _valid_keys(model, loc[:-1])
        return _unknown_key(key, loc[-1], valid)
    return f"key '{key}': {error['msg'].lower()} (got {error['input']!r})"


def _valid_keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the section at ``loc`` (dict-valued levels are skipped)."""
    for part in loc:
        field = model.model_fields.get(part)
        if field is None:
            continue
        annotation = field.annotation
        for candidate in (annotation, *typing.get_args(annotation)):
            if inspect.isclass(candidate) and issubclass(candidate, BaseModel):
                model = candidate
    return list(model.model_fields)


def _unknown_key(key: str, name: str, valid) -> str:
    valid = list(valid)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key '{key}'{hint}; valid keys: {', '.join(valid)}"


def check_keys(given, valid, where: str) -> None:
    """Raise ConfigError for the first key of ``given`` not in ``valid``; ``where`` prefixes keys."""
    valid = list(valid)
    for name in given:
        if name not in valid:
            raise ConfigError(_unknown_key(f"{where}.{name}", name, valid))


def check_params(factory, params: dict, where: str, supplied=()) -> None:
    """Check ``params`` against ``factory``'s keyword parameters and their annotations.

    Unknown names fail listing the valid ones; values are checked by pydantic against the
    parameter's annotation where it has one, else against the type of its default.
    ``supplied`` names parameters hybrid passes itself, which a config may not set.
    """
    signature = inspect.signature(factory)
    accepted = {n: p for n, p in signature.parameters.items()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                and n != "self" and n not in supplied}
    check_keys(params, accepted, where)
    hints = typing.get_type_hints(factory.__init__ if inspect.isclass(factory) else factory,
                                  include_extras=True)
    fields = {name: (_expected_type(hints.get(name), accepted[name].default), ...)
              for name in params}
    probe = create_model("Params", __config__=ConfigDict(arbitrary_types_allowed=True), **fields)
    try:
        probe.model_validate(params)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(f"key '{where}.{error['loc'][0]}': {error['msg'].lower()} "
                          f"(got {error['input']!r})") from None


def _expected_type(annotation, default):
    """The annotation if any; else the default's type (None or no default: anything)."""
    if annotation is not None:
        return annotation
    if default is inspect.Parameter.empty or default is None:
        return Any
    if isinstance(default, (bool, int, float, str, list, tuple, dict)):
        return type(default)
    return Any


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
