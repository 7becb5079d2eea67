"""The few exception types rlreward raises.

Grading failures are *values* (``GraderError``), never exceptions; the types below are
for mistakes a user can fix before any work starts::

    RLRewardError                 base of everything rlreward raises on purpose
    ├── ConfigError (ValueError)  a bad argument, config value or spec entry
    │   ├── MissingFieldsError    samples lack fields their graders need
    │   ├── UnknownNameError      a name not in a registry (lists the known names)
    │   ├── FamilyMismatchError   policy and reward model tokenize differently
    │   └── BackendUnavailableError  the asked-for RL backend cannot run here
    ├── DatasetError (ValueError) a dataset that cannot be read as rows
    ├── DependencyError (ImportError)  an optional extra is not installed
    ├── GradingFailedError (RuntimeError)  a grade failed where no failure may be a value
    ├── RewardModelFidelityError  a trained reward model misses ``min_spearman``
    ├── ChatModelError            a chat call failed for good (a judge turns it into a GraderError)
    ├── BadCompletion             a 200 reply without a usable message (retried inside the client)
    ├── UpstreamError             a 200 reply whose body reports a failure (classified by status)
    └── JudgeReplyError (ValueError)  a judge reply without a usable verdict (a GraderError)

The last four never reach a user through the runner: they become GraderError values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "BackendUnavailableError",
    "BadCompletion",
    "ChatModelError",
    "ConfigError",
    "DatasetError",
    "DependencyError",
    "FamilyMismatchError",
    "GradingFailedError",
    "JudgeReplyError",
    "MissingFieldsError",
    "RLRewardError",
    "RewardModelFidelityError",
    "UnknownNameError",
    "UpstreamError",
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


class FamilyMismatchError(ConfigError):
    """Policy and reward model tokenize differently; token-level reward would be wrong.

    ``report`` is the ``rlreward.training.family.FamilyReport`` of the comparison.
    """

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message)
        self.report = report


class BackendUnavailableError(ConfigError):
    """The asked-for backend cannot run here (e.g. unsloth without a CUDA GPU)."""


class RewardModelFidelityError(RLRewardError):
    """The trained model does not reproduce its target well enough (``min_spearman``)."""


class ChatModelError(RLRewardError):
    """A chat call that failed for good (non-retryable, or the retry budget is spent)."""

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        last_status: int | str,
        latency_s: float,
        retryable: bool,
        retry_reasons: Sequence[str] = (),
        usage: dict[str, int] | None = None,
    ) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_status = last_status
        self.latency_s = latency_s
        self.retryable = retryable
        self.retry_reasons = tuple(retry_reasons)
        #: tokens the server reported for attempts that got a completion (a refusal)
        self.usage = usage


class BadCompletion(RLRewardError):
    """A 200 answer without a usable message (no choices, or a refusal)."""

    def __init__(self, message: str, usage: dict[str, int] | None = None) -> None:
        super().__init__(message)
        #: the tokens the server reported for it (a refusal is paid for)
        self.usage = usage


class UpstreamError(RLRewardError):
    """An HTTP 200 whose body reports a failure: an ``{"error": ...}`` object or a page
    that is not JSON (a proxy's 502). ``status`` is the HTTP status the body names, if
    any; the failure is classified like that status."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class JudgeReplyError(RLRewardError, ValueError):
    """A judge reply that yields no usable score; ``extra`` goes into result metadata."""

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.extra = extra
