"""The :class:`Prompt` value object: instruction + ordered exemplars + format.

A prompt renders either to chat messages (for instruction-tuned models) or to plain text (for
completion endpoints), has a stable content hash, and round-trips through JSON. That JSON is the
artifact optimizers export and ``promptlathe run`` applies.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, with_config

from promptlathe._validation import Text, validate
from promptlathe.errors import InvalidValue, PromptlatheError

Message = dict[str, str]
Mode = Literal["chat", "chat_single", "completion"]
"""How a prompt is laid out for the model (see :class:`Format`)."""
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Exemplar:
    """A demonstration: an input and the output the model should give."""

    input: str
    output: str


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True)
class Format:
    """How instruction, exemplars and the query are laid out.

    Attributes:
        input_label: label before each input ("" for none).
        output_label: label before each output (used in text rendering).
        separator: between a label and its value.
        field_joiner: between the input and the output of one exemplar (text rendering).
        example_joiner: between exemplars and between the instruction and the first one.
        mode: ``"chat"`` renders exemplars as user/assistant turns; ``"chat_single"`` puts
            everything in one user message; ``"completion"`` renders plain text ending with
            the output label, for completion endpoints.
        system: optional system message, put before the instruction.
    """

    input_label: str = "Input"
    output_label: str = "Output"
    separator: str = ": "
    field_joiner: str = "\n"
    example_joiner: str = "\n\n"
    mode: Mode = "chat"
    system: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("chat", "chat_single", "completion"):
            raise InvalidValue(
                f"format mode {self.mode!r} is not one of chat, chat_single, completion"
            )

    def label(self, label: str, value: str) -> str:
        return f"{label}{self.separator}{value}" if label else value

    def stop_sequences(self) -> tuple[str, ...]:
        """Where a completion-mode answer ends (the next exemplar would begin)."""
        if self.mode != "completion":
            return ()
        stops = [self.example_joiner]
        if self.input_label:
            stops.append(f"{self.field_joiner}{self.input_label}{self.separator.rstrip()}")
        return tuple(dict.fromkeys(s for s in stops if s.strip() or "\n" in s))


MAX_STRATEGY_K = 20


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True)
class StrategySpec:
    """Which run-time strategy answers with a prompt, and its ``k``.

    The strategy itself (how it calls the model and combines the answers) lives in
    :mod:`promptlathe.strategies`; a prompt only names it. ``k`` is the number of samples
    (``self_consistency``), option orders (``choice_shuffle``) or exemplars chosen per input
    (``knn_demos``, whose pool is the prompt's exemplars); other strategies have ``k = 1``.
    """

    name: str = "direct"
    k: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidValue("strategy name must be a non-empty string")
        if isinstance(self.k, bool) or not isinstance(self.k, int):
            raise InvalidValue(f"strategy k {self.k!r} must be an integer")
        if not 1 <= self.k <= MAX_STRATEGY_K:
            raise InvalidValue(f"strategy k {self.k} must be between 1 and {MAX_STRATEGY_K}")

    @property
    def is_direct(self) -> bool:
        return self.name == "direct" and self.k == 1

    def label(self) -> str:
        """``cot``, ``self_consistency k=5``: how reports name it."""
        return self.name if self.k == 1 else f"{self.name} k={self.k}"


@dataclass(frozen=True)
class Prompt:
    """An instruction, ordered exemplars, a format and a run-time strategy. Immutable;
    hashable by content."""

    instruction: str = ""
    exemplars: tuple[Exemplar, ...] = ()
    format: Format = field(default_factory=Format)
    strategy: StrategySpec = field(default_factory=StrategySpec)

    # ---- rendering -----------------------------------------------------------------------
    def render_messages(self, query: str) -> list[Message]:
        """Chat messages for ``query`` (``mode`` chat or chat_single)."""
        f = self.format
        if f.mode == "completion":
            return [{"role": "user", "content": self.render_text(query)}]
        head = "\n\n".join(p for p in (f.system, self.instruction) if p)
        if f.mode == "chat_single":
            msgs: list[Message] = [{"role": "user", "content": self._text_body(query)}]
            if f.system:
                msgs.insert(0, {"role": "system", "content": f.system})
            return msgs
        msgs = [{"role": "system", "content": head}] if head else []
        for ex in self.exemplars:
            msgs.append({"role": "user", "content": f.label(f.input_label, ex.input)})
            msgs.append({"role": "assistant", "content": ex.output})
        msgs.append({"role": "user", "content": f.label(f.input_label, query)})
        return msgs

    def render_text(self, query: str) -> str:
        """Plain text for ``query``, ending where the model's answer should begin."""
        f = self.format
        body = self._text_body(query)
        return f"{f.system}{f.example_joiner}{body}" if f.system else body

    def _text_body(self, query: str) -> str:
        f = self.format
        blocks = [self.instruction] if self.instruction else []
        for ex in self.exemplars:
            blocks.append(
                f.label(f.input_label, ex.input)
                + f.field_joiner
                + f.label(f.output_label, ex.output)
            )
        tail = f.label(f.input_label, query) + f.field_joiner
        tail += f"{f.output_label}{f.separator}".rstrip(" ") if f.output_label else ""
        blocks.append(tail.rstrip("\n") if f.mode != "completion" else tail)
        return f.example_joiner.join(blocks)

    # ---- identity and serialisation -----------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {
            "promptlathe_prompt": SCHEMA_VERSION,
            "instruction": self.instruction,
            "exemplars": [asdict(e) for e in self.exemplars],
            "format": asdict(self.format),
        }
        # Written only when not the default, so direct prompts keep their hashes and files.
        if not self.strategy.is_direct:
            d["strategy"] = asdict(self.strategy)
        return d

    @property
    def hash(self) -> str:
        """Stable content hash (first 16 hex digits of sha256 over canonical JSON)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_json(self, **extra: Any) -> str:
        return json.dumps({**self.to_dict(), **extra}, indent=2, ensure_ascii=False)

    def save(self, path: str | Path, **extra: Any) -> None:
        Path(path).write_text(self.to_json(**extra) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "prompt") -> Prompt:
        """A prompt from the JSON object of a prompt file (:class:`PromptFile`); every
        malformed field is one line naming ``where`` and the field."""
        if not isinstance(data, dict):
            raise PromptlatheError(f"{where}: a prompt must be a JSON object")
        version = data.get("promptlathe_prompt", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise PromptlatheError(
                f"{where}: prompt file version {version!r} is not one this promptlathe reads "
                f"({SCHEMA_VERSION}); upgrade promptlathe, or save the prompt again"
            )
        f = validate(PromptFile, data, where)
        return cls(
            instruction=f.instruction,
            exemplars=tuple(Exemplar(e.input, e.output) for e in f.exemplars),
            format=f.format,
            strategy=f.strategy or StrategySpec(),
        )

    @classmethod
    def from_json(cls, text: str, where: str = "prompt") -> Prompt:
        return cls.from_dict(_parse_json(text, where), where=where)

    @classmethod
    def load(cls, path: str | Path) -> Prompt:
        """Read a prompt file; every malformed file is a one-line error naming it."""
        return cls.from_dict(read_prompt_file(path), where=str(path))

    def with_(self, **changes: Any) -> Prompt:
        """A copy with some fields changed (``exemplars`` may be any sequence)."""
        if "exemplars" in changes:
            changes["exemplars"] = tuple(changes["exemplars"])
        return replace(self, **changes)


class ExemplarFields(BaseModel):
    """An exemplar as a prompt file holds it (other keys, such as an id, are ignored)."""

    input: Text
    output: Text


class PromptFile(BaseModel):
    """The prompt part of a prompt file, declared once: what :meth:`Prompt.from_dict`
    accepts. Other top-level keys (what :meth:`Prompt.save` adds, see
    :mod:`promptlathe.artifact`) are left to their readers; ``format`` and ``strategy``
    take only their own fields."""

    promptlathe_prompt: int = SCHEMA_VERSION
    instruction: str = ""
    exemplars: list[ExemplarFields] = []
    format: Format = Format()
    strategy: StrategySpec | None = None


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PromptlatheError(f"{where}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise PromptlatheError(f"{where}: JSON nested too deeply") from None


def read_prompt_file(path: str | Path) -> dict[str, Any]:
    """The raw JSON object of a prompt file (the prompt plus what ``save`` added to it).

    Raises:
        PromptlatheError: missing, not UTF-8, not JSON, or not an object.
    """
    p = Path(path)
    if not p.is_file():
        raise PromptlatheError(f"{p}: prompt file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PromptlatheError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise PromptlatheError(f"{p}: cannot read ({exc.strerror})") from None
    data = _parse_json(text, str(p))
    if not isinstance(data, dict):
        raise PromptlatheError(f"{p}: a prompt must be a JSON object")
    return data
