"""Errors that users see as one sentence plus what to do, never as a traceback."""

from __future__ import annotations


class LabkitError(Exception):
    """A problem the user can fix: `message` says what is wrong, `hint` how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.hint}" if self.hint else self.message


class ConfigError(LabkitError):
    """A setting has a value that cannot work."""


class MissingToolError(LabkitError):
    """A program the chosen mode needs is not installed."""


class ServiceError(LabkitError):
    """A service did not start, crashed or is unreachable."""


class JobError(LabkitError):
    """A Flink job could not be submitted or failed."""


class RestoreError(JobError):
    """Flink could not start a job from the given checkpoint or savepoint: it no longer exists, or the job's
    operators changed so that its state no longer maps onto them."""
