"""The exporter conformance suite: an export renders to exactly what promptlathe sends.

Every test takes an ``exporter`` fixture (an :class:`~promptlathe.exporters.Exporter`). For
five prompt layouts (chat, chat with a system message, chat_single, completion, zero-shot)
and awkward inputs (quotes, braces, Jinja tags, newlines, non-ASCII, empty), the exporter's
own :meth:`~promptlathe.exporters.Exporter.render` of its export must equal
``Prompt.render_messages`` (or ``render_text`` for completion prompts) byte for byte. A
format whose tool lays messages out its own way (``exact = False``, e.g. DSPy's adapters)
must instead send every line of the instruction, every demo and the input verbatim. Tests
that ask the real tool (``needs``) skip, saying so, where its package is not installed. A
strategy that is not one templated call is refused in one line; the export is deterministic.
Use it as ``from promptlathe.testing.exporters import *`` with your own ``exporter`` fixture.
"""

from __future__ import annotations

import pytest

from promptlathe.artifact import ArtifactFields
from promptlathe.errors import PromptlatheError
from promptlathe.exporters import Exporter, Saved
from promptlathe.prompts import Exemplar, Format, Message, Prompt, StrategySpec

__all__ = [
    "DEMOS",
    "INPUTS",
    "PROMPTS",
    "test_a_multi_call_strategy_is_refused_in_one_line",
    "test_an_inexact_format_carries_the_prompt_verbatim",
    "test_every_layout_renders_exactly_what_promptlathe_sends",
    "test_the_export_is_deterministic",
]

DEMOS = (Exemplar("The sky is blue.", "The sky is not blue."), Exemplar('Say "hi"', "Don't"))
PROMPTS = {
    "chat": Prompt("Negate the sentence.", DEMOS),
    "chat+system": Prompt("Negate it.", DEMOS, Format(system="You are terse.")),
    "chat_single": Prompt("Negate it.", DEMOS, Format(mode="chat_single")),
    "completion": Prompt("Negate it.", DEMOS, Format(mode="completion", separator=": ")),
    "zero-shot": Prompt("", (), Format(input_label="")),
}
INPUTS = [
    "Cats purr.",
    "quotes \" and ' and \\ backslash",
    "line one\nline two\ttab",
    "braces {x} {{ y }} {% raw %} {% endraw %} </script> & <b>",
    "ünïcödé — 日本語 🙂",
    "",
]


def sent(prompt: Prompt, value: str) -> list[Message] | str:
    """What promptlathe sends the model for ``prompt`` on ``value``."""
    if prompt.format.mode == "completion":
        return prompt.render_text(value)
    return prompt.render_messages(value)


def _saved(prompt: Prompt) -> Saved:
    return Saved(prompt, ArtifactFields(metric="normalized"), name="p.json")


def _tool(exporter: Exporter) -> None:
    """Skip when the package the format's own tool needs is not installed."""
    if exporter.needs:
        pytest.importorskip(
            exporter.needs, reason=f"{exporter.needs} is not installed ({exporter.name} export)"
        )


@pytest.mark.parametrize("layout", sorted(PROMPTS))
def test_every_layout_renders_exactly_what_promptlathe_sends(
    exporter: Exporter, layout: str
) -> None:
    if not exporter.exact:
        pytest.skip(f"{exporter.name} is not exact: {exporter.inexact_because}")
    _tool(exporter)
    prompt = PROMPTS[layout]
    exported = exporter.export(_saved(prompt), "p.json")
    for value in INPUTS:
        assert exporter.render(exported, value) == sent(prompt, value), (layout, value)


def _text(rendered: list[Message] | str) -> str:
    return rendered if isinstance(rendered, str) else "\n".join(m["content"] for m in rendered)


@pytest.mark.parametrize("layout", sorted(PROMPTS))
def test_an_inexact_format_carries_the_prompt_verbatim(exporter: Exporter, layout: str) -> None:
    """A format whose tool lays the messages out its own way still sends every line of the
    system text and instruction, every demo and the input, unchanged."""
    if exporter.exact:
        pytest.skip(f"{exporter.name} is exact: see the byte-for-byte test")
    assert exporter.inexact_because, "an inexact format says why"
    _tool(exporter)
    prompt = PROMPTS[layout]
    exported = exporter.export(_saved(prompt), "p.json")
    lines = [
        line
        for part in (prompt.format.system, prompt.instruction)
        for line in (part or "").splitlines()
        if line.strip()
    ]
    demos = [text for d in prompt.exemplars for text in (d.input, d.output)]
    for value in INPUTS:
        text = _text(exporter.render(exported, value))
        for piece in [*lines, *demos, value]:
            assert piece in text, (layout, value, piece)


def test_a_multi_call_strategy_is_refused_in_one_line(exporter: Exporter) -> None:
    sampled = Prompt("Think.", DEMOS, strategy=StrategySpec("self_consistency", 3))
    why = exporter.refuse(_saved(sampled))
    assert why and "\n" not in why
    from promptlathe.exporters import export

    with pytest.raises(PromptlatheError):
        export(_saved(sampled), exporter.name, "p.json")


def test_the_export_is_deterministic(exporter: Exporter) -> None:
    saved = _saved(PROMPTS["chat"])
    assert exporter.export(saved, "p.json") == exporter.export(saved, "p.json")
