"""The exporter protocol: a saved prompt written in a format other tools read. A format is one
file in this package (it registers itself), or a class an installed package declares under
the ``promptlathe.exporters`` entry-point group."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from promptlathe._plugins import load_registry
from promptlathe.artifact import Saved
from promptlathe.errors import PromptlatheError
from promptlathe.prompts import Message, Prompt
from promptlathe.tasks import Example

ENTRY_POINTS = "promptlathe.exporters"
PLACEHOLDER = "{input}"
"""Where the input goes in the exported messages and text (``messages``, ``python``)."""
_SENTINEL = "\x00promptlathe-input\x00"


@dataclass(frozen=True)
class Template:
    """The prompt with a hole for the input: chat ``messages`` (chat formats) or ``text``
    (completion format), split so that ``before + input + after`` is exactly what promptlathe
    sends. ``hole`` is the index of the message holding the input (chat)."""

    messages: list[Message] | None
    text: str | None
    hole: int
    before: str
    after: str

    def fill(self, value: str) -> list[Message] | str:
        if self.text is not None:
            return self.before + value + self.after
        assert self.messages is not None
        out = [dict(m) for m in self.messages]
        out[self.hole]["content"] = self.before + value + self.after
        return out


def template_of(prompt: Prompt, where: str) -> Template:
    """The prompt's template, found by rendering it on a sentinel input.

    Raises:
        PromptlatheError: the prompt's own text holds the placeholder ``{input}`` (the export
            would be ambiguous), or the renderer moved the input (it appears other than once).
    """
    if PLACEHOLDER in json.dumps(prompt.to_dict(), ensure_ascii=False):
        raise PromptlatheError(
            f"{where}: the prompt's text contains {PLACEHOLDER!r}, the exports' placeholder "
            "for the input; rephrase it before exporting"
        )
    if prompt.format.mode == "completion":
        text = prompt.render_text(_SENTINEL)
        if text.count(_SENTINEL) != 1:
            raise PromptlatheError(f"{where}: the input does not appear once in the prompt")
        before, after = text.split(_SENTINEL)
        return Template(None, text, -1, before, after)
    messages = prompt.render_messages(_SENTINEL)
    holes = [i for i, m in enumerate(messages) if _SENTINEL in m["content"]]
    if len(holes) != 1 or messages[holes[0]]["content"].count(_SENTINEL) != 1:
        raise PromptlatheError(f"{where}: the input does not appear once in the prompt")
    before, after = messages[holes[0]]["content"].split(_SENTINEL)
    return Template(messages, None, holes[0], before, after)


def request_settings(saved: Saved) -> dict[str, Any]:
    """The decoding the prompt was evaluated with, as OpenAI request settings
    (``temperature``, ``top_p``, ``max_tokens``, ``seed``, and ``stop`` when it has any)."""
    dec = asdict(saved.fields.decoding)
    out: dict[str, Any] = {k: dec[k] for k in ("temperature", "top_p", "max_tokens", "seed")}
    stops = saved.prompt.format.stop_sequences()
    if stops:
        out["stop"] = list(stops)
    return out


class Exporter(ABC):
    """Writes a saved prompt in one format.

    Attributes:
        name: the ``--to`` value.
        suffix: the file suffix of its output (``.json``, ``.py``, ...).
        summary: one line for ``--help``.
        exact: whether :meth:`render` gives byte for byte what promptlathe sends. A format
            whose tool lays the messages out its own way (DSPy's adapters) is not exact; it
            must still carry the instruction, every demo and the input verbatim, and say so
            in ``inexact_because``.
        needs: the Python package :meth:`render` imports to ask the real tool (``None``: it
            needs nothing beyond promptlathe's own dependencies).
    """

    name: ClassVar[str]
    suffix: ClassVar[str]
    summary: ClassVar[str]
    exact: ClassVar[bool] = True
    inexact_because: ClassVar[str] = ""
    needs: ClassVar[str | None] = None

    def refuse(self, saved: Saved) -> str | None:
        """Why this format cannot express the prompt (``None``: it can). A strategy that
        calls the model more than once or picks exemplars per input is code, not a template."""
        strategy = saved.prompt.strategy
        if not strategy.is_direct:
            return (
                f"strategy {strategy.label()} is not a single templated call; only direct "
                "prompts export to this format"
            )
        return None

    @abstractmethod
    def export(self, saved: Saved, where: str, examples: Sequence[Example] = ()) -> str:
        """The file's text. ``examples`` (``--task``) are labeled examples a format may carry
        as its tests (``promptfoo``); the others ignore them."""

    @abstractmethod
    def render(self, exported: str, value: str) -> list[Message] | str:
        """What the tool this format is for makes of ``exported`` for the input ``value``:
        the chat messages, or the completion text. The conformance suite
        (:mod:`promptlathe.testing.exporters`) checks it is exactly what promptlathe sends."""


EXPORTERS: dict[str, type[Exporter]] = {}


def register(cls: type[Exporter]) -> type[Exporter]:
    EXPORTERS[cls.name] = cls
    return cls


_loaded = False


def _load() -> None:
    """The built-in formats (one file each in this package), then those installed packages
    declare under the :data:`ENTRY_POINTS` group."""
    global _loaded
    if _loaded:
        return
    load_registry("promptlathe.exporters", ENTRY_POINTS, EXPORTERS, Exporter, "exporter")
    _loaded = True


def get_exporter(name: str) -> Exporter:
    _load()
    try:
        return EXPORTERS[name]()
    except KeyError:
        raise PromptlatheError(
            f"--to {name!r} is not one of {', '.join(sorted(EXPORTERS))}"
        ) from None


def exporter_names() -> list[str]:
    _load()
    return sorted(EXPORTERS)


def export(saved: Saved, to: str, where: str, examples: Sequence[Example] = ()) -> str:
    """``saved`` in the format ``to``; a prompt the format cannot express is one line."""
    exporter = get_exporter(to)
    why = exporter.refuse(saved)
    if why:
        raise PromptlatheError(f"{where}: cannot export to {to}: {why}")
    return exporter.export(saved, where, examples)
