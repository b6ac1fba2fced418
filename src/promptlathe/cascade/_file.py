"""A saved cascade (``cascade.json``): its steps in order, each a model, what its tokens cost,
the whole prompt file it runs and the confidence at which its answer is kept. Declared as
pydantic models, so a malformed field is one line naming the file and the field, before any
model loads. Data only: nothing in it is run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from promptlathe._validation import validate
from promptlathe.artifact import Saved, artifact_fields
from promptlathe.cascade._answers import Step
from promptlathe.cascade._gate import FEATURES, Gate
from promptlathe.cascade._policy import Policy
from promptlathe.errors import PromptlatheError
from promptlathe.lms import MODELS
from promptlathe.lms._price import Price
from promptlathe.prompts import Prompt, read_prompt_file
from promptlathe.strategies import get_strategy

CASCADE_VERSION = 1


class _Price(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    output: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    source: Literal["declared", "default"] = "declared"


class _Gate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: list[str]
    weights: list[Annotated[float, Field(allow_inf_nan=False)]]
    bias: Annotated[float, Field(allow_inf_nan=False)]

    @model_validator(mode="after")
    def _known(self) -> _Gate:
        if tuple(self.features) != FEATURES:
            raise ValueError(f"features must be {list(FEATURES)}")
        if len(self.weights) != len(FEATURES):
            raise ValueError(f"weights: one per feature ({len(FEATURES)})")
        return self


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Annotated[str, StringConstraints(min_length=1)]
    base_url: str | None = None
    price: _Price
    threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    gate: _Gate | None = None
    prompt: dict[str, Any]

    @model_validator(mode="after")
    def _known(self) -> _Step:
        if self.base_url is None and self.model not in MODELS:
            raise ValueError(
                f"{self.model!r} is not an embedded model and the step names no base_url"
            )
        return self


class CascadeFile(BaseModel):
    """The JSON object of a cascade file. Keys other than these are information (its scores,
    how it was fitted), not read back."""

    promptlathe_cascade: Literal[1]
    steps: Annotated[list[_Step], Field(min_length=1)]

    @model_validator(mode="after")
    def _thresholds(self) -> CascadeFile:
        for i, s in enumerate(self.steps):
            last = i == len(self.steps) - 1
            if last and s.threshold is not None:
                raise ValueError(f"steps.{i}.threshold: the last step always answers (null)")
            if not last and s.threshold is None:
                raise ValueError(f"steps.{i}.threshold: every step but the last needs one")
            if last and s.gate is not None:
                raise ValueError(f"steps.{i}.gate: the last step always answers (null)")
        return self


def is_cascade(data: dict[str, Any]) -> bool:
    """Whether a JSON object read from a prompt file is a cascade file."""
    return "promptlathe_cascade" in data


def read_cascade(path: Path, data: dict[str, Any] | None = None) -> tuple[list[Step], Policy]:
    """The steps of a cascade file and its policy over them (all of them, in order), every
    field checked (one line naming the file and the field)."""
    raw = read_prompt_file(path) if data is None else data
    version = raw.get("promptlathe_cascade")
    if version != CASCADE_VERSION:
        raise PromptlatheError(
            f"{path}: cascade file version {version!r} is not one this promptlathe reads "
            f"({CASCADE_VERSION})"
        )
    f = validate(CascadeFile, raw, str(path))
    steps = []
    for i, s in enumerate(f.steps):
        where = f"{path}: steps.{i}.prompt"
        prompt = Prompt.from_dict(s.prompt, where=where)
        get_strategy(prompt.strategy, where=where)
        saved = Saved(prompt, artifact_fields(s.prompt, where), name=f"step {i + 1}")
        price = Price(s.price.input, s.price.output, source=s.price.source)
        steps.append(Step(s.model, saved, price, base_url=s.base_url))
    thresholds = tuple(s.threshold for s in f.steps if s.threshold is not None)
    gates = tuple(
        Gate(tuple(s.gate.weights), s.gate.bias) if s.gate is not None else None
        for s in f.steps[:-1]
    )
    return steps, Policy(tuple(range(len(steps))), thresholds, gates if any(gates) else ())


def step_prompt(path: Path) -> dict[str, Any]:
    """A prompt file's JSON object, as a cascade step carries it."""
    return read_prompt_file(path)


def write_cascade(
    path: Path,
    steps: Sequence[Step],
    prompts: Sequence[dict[str, Any]],
    policy: Policy,
    **info: Any,
) -> None:
    """Save a cascade: the steps ``policy`` runs (``steps[i]`` with its prompt file's object
    ``prompts[i]``), in its order, with its thresholds and gates; ``info`` (its scores) is
    written alongside."""
    order = list(policy.steps)
    steps, prompts = [steps[i] for i in order], [prompts[i] for i in order]
    thresholds = policy.thresholds

    def gate(i: int) -> dict[str, Any] | None:
        g = policy.gate(i) if i < len(thresholds) else None
        if g is None:
            return None
        return {"features": list(FEATURES), "weights": list(g.weights), "bias": g.bias}

    body = {
        "promptlathe_cascade": CASCADE_VERSION,
        "steps": [
            {
                "model": s.model,
                "base_url": s.base_url,
                "price": s.price.to_dict(),
                "threshold": thresholds[i] if i < len(steps) - 1 else None,
                "gate": gate(i),
                "prompt": p,
            }
            for i, (s, p) in enumerate(zip(steps, prompts, strict=True))
        ],
        **info,
    }
    Path(path).write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
