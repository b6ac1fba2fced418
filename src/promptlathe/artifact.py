"""A saved prompt file (``best_prompt.json``): the prompt and how to run it as it was
evaluated (decoding, model, answer extraction, label scoring). Both parts are declared once
as pydantic models (:class:`~promptlathe.prompts.PromptFile` and :class:`ArtifactFields`), so
every malformed field is a one-line error naming the file and the field, before any model
loads. Data only: nothing in it is run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from promptlathe._limits import MAX_TOKENS, REASONING_TOKENS
from promptlathe._validation import validate
from promptlathe.errors import PromptlatheError
from promptlathe.evaluator import Decoding
from promptlathe.lms import DEFAULT_MODEL, MODELS
from promptlathe.prompts import Prompt, read_prompt_file
from promptlathe.strategies import get_strategy

NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class ArtifactFields(BaseModel):
    """What :meth:`Prompt.save` adds to a prompt file: how the prompt was evaluated. Other
    keys (its scores, the optimizer that found it) are information, not read back."""

    decode: Literal["generate", "labels"] = "generate"
    decode_labels: Annotated[list[NonEmpty], Field(min_length=2)] | None = None
    decoding: Decoding = Decoding()
    model: str | None = None
    metric: str | None = None
    labels: list[str] = []

    @field_validator("decoding")
    @classmethod
    def _in_range(cls, dec: Decoding) -> Decoding:
        for name, (lo, hi) in (("max_tokens", MAX_TOKENS), ("reasoning_tokens", REASONING_TOKENS)):
            value = getattr(dec, name)
            if not lo <= value <= hi:
                raise ValueError(f"{name} {value} is not in [{lo}, {hi}]")
        return dec

    @property
    def labels_to_score(self) -> list[str] | None:
        """The labels to score (``decode: labels``), else ``None`` (generate)."""
        return self.decode_labels if self.decode == "labels" else None

    @model_validator(mode="after")
    def _labels_given(self) -> ArtifactFields:
        if self.decode == "labels" and self.decode_labels is None:
            raise ValueError("'decode': labels needs 'decode_labels' (at least 2 labels)")
        return self


def artifact_fields(data: dict[str, Any], where: Path | str) -> ArtifactFields:
    """The run settings of a prompt file's JSON object, checked."""
    return validate(ArtifactFields, data, str(where))


def file_labels(data: dict[str, Any], where: Path | str) -> list[str] | None:
    """The labels a prompt file says to score (``decode: labels``), else ``None``."""
    return artifact_fields(data, where).labels_to_score


@dataclass(frozen=True)
class Saved:
    """A prompt file read back: the prompt and how it was evaluated."""

    prompt: Prompt
    fields: ArtifactFields
    name: str = "prompt"


def read_saved(path: Path) -> Saved:
    """A prompt file, read once: the prompt (its strategy checked) and its run settings;
    every malformed field is one line naming the file, before any model loads."""
    data = read_prompt_file(path)
    prompt = Prompt.from_dict(data, where=str(path))
    get_strategy(prompt.strategy, where=str(path))
    return Saved(prompt, artifact_fields(data, path), name=path.name)


def load_prompt(path: Path) -> Prompt:
    """A prompt file, its strategy checked (one line naming the file, before any model)."""
    p = Prompt.load(path)
    get_strategy(p.strategy, where=str(path))
    return p


def model_from(fields: ArtifactFields, where: Path | str, base_url: str | None) -> str:
    """The model a prompt file names: an embedded model's name (or a server's model name
    with --base-url); never a file path, which would load whatever the file points at."""
    if fields.model is None:
        return DEFAULT_MODEL
    if base_url or fields.model in MODELS:
        return fields.model
    raise PromptlatheError(
        f"{where}: names the model {fields.model!r}, which is not an embedded model; pass "
        "--model (and --base-url for a server) to say which model to run"
    )
