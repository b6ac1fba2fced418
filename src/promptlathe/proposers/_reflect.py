"""Reflection (after GEPA, Agrawal et al., 2025, "Reflective Prompt Evolution"): show the
proposer the current instruction and examples the task model got wrong (input, its output,
the extracted answer, the target), with a few it got right for contrast, and ask for a
diagnosis and a revised instruction.

Small proposers write chatty, truncated or template-echoing answers. :func:`parse_reflection`
takes the instruction only from its marked place and refuses an answer that was cut off
(unclosed block, or a generation stopped by the length cap mid-sentence) instead of keeping a
fragment; the optimizer's usual filters and likelihood screen then apply.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from promptlathe.lms import LM, GenerationRequest
from promptlathe.proposers._filter import _strip_markdown, _strip_prefixes

REFLECT_TEMPLATE = """You are improving the instruction a language model is given for a task. \
The task is defined by examples: each input has an expected answer.

The current instruction:
```
{instruction}
```

Examples, with what the model answered under the current instruction:

{examples}

Step 1. Task: in one sentence, say how each expected answer is obtained from its input (look \
at every example, correct and incorrect).
Step 2. Diagnosis: in one or two sentences, say why the model's outputs differ from the \
expected answers.
Step 3. Write an improved instruction that tells the model exactly how to produce the \
expected answer from a new input, including the answer's format. It must be general (it \
will be used on new inputs): do not quote the examples. Keep it under 60 words.

Answer in exactly this form:
Task: <one sentence>
Diagnosis: <your diagnosis>
New instruction:
```
<the improved instruction>
```"""

FIELD_CHARS = 400
"""Longer inputs and outputs are cut to this many characters in the reflection prompt."""


@dataclass(frozen=True)
class Trace:
    """One scored example as the reflection model sees it."""

    input: str
    output: str
    answer: str
    target: str
    correct: bool


def _cut(text: str, n: int = FIELD_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= n else text[:n].rstrip() + " […]"


def format_traces(traces: Sequence[Trace]) -> str:
    """The examples block: incorrect ones first, numbered."""
    ordered = [t for t in traces if not t.correct] + [t for t in traces if t.correct]
    blocks = []
    for i, t in enumerate(ordered, 1):
        verdict = "correct" if t.correct else "INCORRECT"
        blocks.append(
            f"Example {i} ({verdict})\n"
            f"Input: {_cut(t.input)}\n"
            f"Expected answer: {_cut(t.target, 120)}\n"
            f"Model output: {_cut(t.output) or '(empty)'}\n"
            f"Answer read from the output: {_cut(t.answer, 120) or '(none)'}"
        )
    return "\n\n".join(blocks)


def reflect_prompt(instruction: str, traces: Sequence[Trace]) -> str:
    return REFLECT_TEMPLATE.format(
        instruction=instruction.strip() or "(none: the model was only given the input)",
        examples=format_traces(traces),
    )


_MARKER = re.compile(r"new\s+instruction\s*[:：]?", re.I)
_FENCE = re.compile(r"```[^\n`]*\n?")
_DIAGNOSIS = re.compile(
    r"((?:task\s*[:：].*?)?diagnosis\s*[:：]\s*.*?)(?=new\s+instruction|```|$)", re.I | re.S
)
_ENDS_SENTENCE = re.compile(r"[.!?)\]\"'”’»]\s*$")


def parse_reflection(text: str, finish_reason: str = "stop") -> tuple[str, str]:
    """The revised instruction in a reflection answer, or why there is none.

    The instruction is the fenced block after ``New instruction:`` (or, without a fence, the
    text after the marker up to a blank line); failing that, the last fenced block. An
    unclosed fence, or an answer cut by the length cap whose instruction does not end a
    sentence, is refused as truncated.

    Returns:
        ``(instruction, "")`` or ``("", reason)``.
    """
    # the last marker: the template's own words may be echoed earlier
    marker = next(reversed(list(_MARKER.finditer(text))), None)
    body: str | None = None
    if marker is not None:
        rest = text[marker.end() :]
        fence = _FENCE.match(rest.lstrip())
        if fence:
            inner = rest.lstrip()[fence.end() :]
            close = inner.find("```")
            if close < 0:
                return "", "truncated (the instruction's block is not closed)"
            body = inner[:close]
        else:
            body = re.split(r"\n\s*\n", rest.strip(), maxsplit=1)[0]
    else:
        blocks = re.findall(r"```[^\n`]*\n(.*?)```", text, re.S)
        if blocks:
            body = blocks[-1]
        elif text.count("```") % 2:
            return "", "truncated (the instruction's block is not closed)"
    if body is None:
        return "", "no instruction found (no 'New instruction:' and no ``` block)"
    instr = " ".join(_strip_prefixes(_strip_markdown(body)).split())
    if not instr or not any(c.isalnum() for c in instr):
        return "", "empty instruction"
    if finish_reason == "length" and not _ENDS_SENTENCE.search(instr):
        return "", "truncated (cut by the length cap mid-sentence)"
    if instr[0].islower():
        instr = instr[0].upper() + instr[1:]
    return instr, ""


def parse_diagnosis(text: str) -> str:
    m = _DIAGNOSIS.search(text)
    return " ".join(m.group(1).split()) if m else ""


@dataclass(frozen=True)
class Reflection:
    """One reflection: the revised instruction (``""`` if refused), why it was refused, the
    model's diagnosis and its raw answer."""

    instruction: str
    rejected: str
    diagnosis: str
    raw: str


class ReflectProposer:
    """Writes a revised instruction from the current one and scored examples.

    Args:
        lm: the reflection model.
        temperature: sampling temperature of the reflection.
        max_tokens: length cap of the answer (diagnosis and instruction).
    """

    def __init__(self, lm: LM, temperature: float = 0.7, max_tokens: int = 320) -> None:
        self.lm = lm
        self.temperature = temperature
        self.max_tokens = max_tokens

    def reflect(self, instruction: str, traces: Sequence[Trace], seed: int = 0) -> Reflection:
        """Make one LM call and parse its answer.

        Raises:
            ValueError: if ``traces`` is empty.
        """
        if not traces:
            raise ValueError("reflection needs at least one scored example")
        req = GenerationRequest.chat(
            [{"role": "user", "content": reflect_prompt(instruction, traces)}],
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            seed=seed,
        )
        gen = self.lm.generate([req])[0]
        instr, why = parse_reflection(gen.text, gen.finish_reason)
        return Reflection(instr, why, parse_diagnosis(gen.text), gen.text)
