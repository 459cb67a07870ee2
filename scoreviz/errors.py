"""Typed errors of the scoreviz core.

Every message is written for a student, not for a developer: it says what went wrong and what to
change. Only the UI layer (`scoreviz.ui`) turns these into on-screen messages.
"""


class ScorevizError(Exception):
    """Base class: anything the app may show to a user as a friendly message."""


class ConfigError(ScorevizError, ValueError):
    """A setting is out of range or unknown (the message lists the valid choices)."""


class DataError(ScorevizError, ValueError):
    """A point cloud (e.g. an upload) cannot be used as a distribution."""


class TrainingDivergedError(ScorevizError, RuntimeError):
    """The loss became NaN/inf or exploded; the message says what to change."""


class ModelFileError(ScorevizError, ValueError):
    """A model file is corrupt, foreign, truncated or from a newer format version."""


def unknown_key(kind: str, key: object, valid) -> ConfigError:
    """Build the error for an unknown registry key, listing the valid ones."""
    choices = ", ".join(repr(k) for k in valid)
    return ConfigError(f"Unknown {kind} {key!r}. Valid choices: {choices}.")
