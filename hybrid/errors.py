"""Errors that the command line turns into one line and exit code 2.

Everything a user can get wrong (a config key, a value, a file, a registry name) raises a
subclass of :class:`HybridError`; anything else is a bug and keeps its traceback.
"""

__all__ = ["HybridError", "ConfigError", "RunDirectoryError", "SchemaError"]


class HybridError(Exception):
    """Base class of the errors caused by user input rather than by a bug."""


class ConfigError(HybridError, ValueError):
    """A config file, key or value is wrong; the message names file, key and valid choices.

    ``source`` is the config file; code that checks a value without knowing the file leaves
    it out, and the caller that knows the file adds it with :meth:`with_source`.
    """

    def __init__(self, message: str, source=None):
        super().__init__(message)
        self.message, self.source = message, source

    def __str__(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message

    def with_source(self, source) -> "ConfigError":
        """This error, naming ``source`` unless it names a file already."""
        return self if self.source else ConfigError(self.message, source)


class RunDirectoryError(HybridError):
    """A run directory is missing a stage's output, or would be overwritten."""


class SchemaError(HybridError, ValueError):
    """A surrogate file is not a hybrid surrogate, or comes from a newer schema version."""
