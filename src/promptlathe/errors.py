"""User-facing errors.

Every error a user can cause (bad file, unknown model, unreachable server...) is raised as a
:class:`PromptlatheError` whose message is one line saying what is wrong, where, and what to do.
The CLI prints that line and exits non-zero without a traceback.
"""

from __future__ import annotations


class PromptlatheError(Exception):
    """An error caused by the user's input or environment, with a one-line fix-it message."""


class InvalidValue(PromptlatheError, ValueError):
    """A value object's own check failed (a format mode, a strategy's k). A ``ValueError``
    too, so a pydantic model holding the object reports it under the field's name."""


class TaskFormatError(PromptlatheError):
    """A task file is malformed (names the file, line and field)."""


class ModelError(PromptlatheError):
    """A model cannot be resolved, loaded or reached."""


class PromptTooLongError(PromptlatheError):
    """A rendered prompt does not fit in the model's context window."""


class BudgetExhausted(PromptlatheError):
    """The LM-call or token budget is spent; the caller should stop cleanly."""


class CannotScoreError(ModelError, NotImplementedError):
    """The backend cannot compute log-probabilities (so it cannot score labels or priors)."""
