"""Errors that the command line turns into one line and exit code 2.

Everything a user can get wrong (a config key, a value, a file, a registry name) raises a
subclass of :class:`HybridError`; anything else is a bug and keeps its traceback.
"""

__all__ = ["HybridError", "ConfigError", "RunDirectoryError", "SchemaError"]


class HybridError(Exception):
    """Base class of the errors caused by user input rather than by a bug."""


class ConfigError(HybridError, ValueError):
    """A config file, key or value is wrong; the message names file, key and valid choices."""


class RunDirectoryError(HybridError):
    """A run directory is missing a stage's output, or would be overwritten."""


class SchemaError(HybridError, ValueError):
    """A surrogate file is not a hybrid surrogate, or comes from a newer schema version."""
