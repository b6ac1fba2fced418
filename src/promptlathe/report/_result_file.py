"""A finished run's ``result.json`` read back and checked (what the report and ``status``
read of it, declared once)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError

from promptlathe._validation import describe
from promptlathe.errors import PromptlatheError
from promptlathe.optimizers._result import RESULT_VERSION


class _Scores(BaseModel):
    """A candidate's scores as ``result.json`` holds them (the fields the report reads)."""

    model_config = ConfigDict(extra="allow")
    val: float | None = None
    val_n: NonNegativeInt = 0
    confirm: float | None = None
    confirm_n: NonNegativeInt = 0
    confirm_scores: list[Annotated[float, Field(ge=0.0, le=1.0)]] = []


class _SplitSizes(BaseModel):
    model_config = ConfigDict(extra="allow")
    n_test: NonNegativeInt
    n_val: NonNegativeInt
    n_confirm: NonNegativeInt


class ResultFile(BaseModel):
    """What the report reads of a finished run's ``result.json``, declared once (other keys
    are kept as they are)."""

    model_config = ConfigDict(extra="allow")
    best_prompt: dict[str, Any]
    best: _Scores
    seed: _Scores | None = None
    confirmed: list[_Scores] = []
    calls_used: NonNegativeInt
    budget: NonNegativeInt
    plan: _SplitSizes
    trials: dict[str, int]
    baselines: dict[str, Any] | None = None


def load_result(path: Path) -> dict[str, Any]:
    """A finished run's ``result.json``, checked against :class:`ResultFile`; a damaged one
    is a one-line error naming it and the field."""
    again = "rerun the optimize command with --resume to write it again"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PromptlatheError(
            f"{path}: cannot read the run's result ({type(exc).__name__}); {again}"
        ) from None
    if not isinstance(data, dict):
        raise PromptlatheError(f"{path}: not a promptlathe result (not a JSON object); {again}")
    version = data.get("v", 1)
    if version not in (1, RESULT_VERSION):
        raise PromptlatheError(
            f"{path}: result version {version!r} is not one this promptlathe reads (1 to "
            f"{RESULT_VERSION}); upgrade promptlathe, or rerun the optimize command"
        )
    try:
        ResultFile.model_validate(data)
    except ValidationError as exc:
        raise PromptlatheError(
            f"{path}: not a promptlathe result ({describe(exc)}); {again}"
        ) from None
    return data
