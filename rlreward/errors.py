"""The few exception types rlreward raises.

Grading failures are *values* (``GraderError``), never exceptions; the types below are
for mistakes a user can fix before any work starts::

    RLRewardError                 base of everything rlreward raises on purpose
    ├── ConfigError (ValueError)  a bad argument, config value or spec entry
    │   ├── MissingFieldsError    samples lack fields their graders need
    │   └── UnknownNameError      a name not in a registry (lists the known names)
    ├── DatasetError (ValueError) a dataset that cannot be read as rows
    ├── GradingFailedError (RuntimeError)  a grade failed where no failure may be a value
    └── DependencyError (ImportError)  an optional extra is not installed
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ConfigError",
    "DatasetError",
    "DependencyError",
    "GradingFailedError",
    "MissingFieldsError",
    "RLRewardError",
    "UnknownNameError",
]


class RLRewardError(Exception):
    """Base class of the exceptions rlreward raises on purpose."""


class ConfigError(RLRewardError, ValueError):
    """A configuration value is invalid; the message names the field and the fix."""


class MissingFieldsError(ConfigError):
    """Samples lack fields that their graders need (raised before any grader runs)."""

    def __init__(self, message: str, missing: dict[str, dict[str, list[int]]]) -> None:
        super().__init__(message)
        #: {grader name: {field: [sample indices]}}
        self.missing = missing


class UnknownNameError(ConfigError, KeyError):
    """A name that is not registered; the message lists the known names."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(self.known) or '(none)'}")

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class DatasetError(RLRewardError, ValueError):
    """A dataset could not be read as a sequence of rows."""


class GradingFailedError(RLRewardError, RuntimeError):
    """A grade failed where a failure cannot stay a value (reward-model training labels)."""


class DependencyError(RLRewardError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


def require(module: str, extra: str) -> None:
    """Raise DependencyError naming ``pip install 'rlreward[extra]'`` if module is absent."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise DependencyError(
            f"{module!r} is not installed; install it with: pip install 'rlreward[{extra}]'"
        )
