"""Name -> factory registries: configs name plug-ins, never import paths."""

from collections.abc import Callable, Iterator

from .errors import ConfigError

__all__ = ["Registry"]


class Registry:
    """A named collection of factories (classes or functions) of one kind of plug-in.

    Examples
    --------
    >>> backbones = Registry("backbone")
    >>> @backbones.register("mlp")
    ... def make_mlp(width=8):
    ...     return ("mlp", width)
    >>> backbones.create("mlp", width=4)
    ('mlp', 4)
    >>> backbones.get("cnn")
    Traceback (most recent call last):
    ...
    hybrid.errors.ConfigError: unknown backbone 'cnn'; choose from: mlp
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable] = {}

    def register(self, name: str, factory: Callable | None = None):
        """Register ``factory`` under ``name``; without ``factory``, works as a decorator."""
        if factory is None:
            return lambda f: self.register(name, f)
        if name in self._factories:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        self._factories[name] = factory
        return factory

    def get(self, name: str) -> Callable:
        try:
            return self._factories[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose from: "
                              f"{', '.join(sorted(self._factories))}") from None

    def create(self, name: str, **params):
        return self.get(name)(**params)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: str) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
