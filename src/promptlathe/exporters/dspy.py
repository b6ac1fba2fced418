"""``--to dspy``: the state of a DSPy ``Predict("input -> output")`` holding this prompt's
instruction (after its system text, if any) and its demos, for ``program.load(FILE)``.

DSPy's adapters lay the messages out their own way (field markers, a system message of
their own), so DSPy does not send promptlathe's bytes: this format is not exact. What it
carries verbatim is the instruction, every demo and the input; the decoding and the model are
DSPy's ``dspy.LM`` settings, not part of a program's state."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promptlathe.exporters._protocol import Exporter, Saved, register
from promptlathe.prompts import Message
from promptlathe.tasks import Example

SIGNATURE = "input -> output"
TESTED_DSPY = "3.4.1"
"""The DSPy release this state was checked against (``program.load`` warns on another)."""


def instructions(saved: Saved) -> str:
    """The signature's instructions: the system text, then the instruction."""
    parts = (saved.prompt.format.system, saved.prompt.instruction)
    return "\n\n".join(p for p in parts if p)


@register
class DspyExporter(Exporter):
    name = "dspy"
    suffix = ".json"
    summary = 'a DSPy Predict("input -> output") state for program.load()'
    exact = False
    inexact_because = "DSPy's adapter formats the messages its own way"
    needs = "dspy"

    def export(self, saved: Saved, where: str, examples: Sequence[Example] = ()) -> str:
        fields = [
            {"prefix": "Input:", "description": "${input}"},
            {"prefix": "Output:", "description": "${output}"},
        ]
        state: dict[str, Any] = {
            "traces": [],
            "train": [],
            "demos": [{"input": d.input, "output": d.output} for d in saved.prompt.exemplars],
            "signature": {"instructions": instructions(saved), "fields": fields},
            "lm": None,
            "metadata": {
                "dependency_versions": {
                    "python": f"{sys.version_info.major}.{sys.version_info.minor}",
                    "dspy": TESTED_DSPY,
                    "cloudpickle": "3.1",
                }
            },
        }
        return json.dumps(state, indent=2, ensure_ascii=False) + "\n"

    def render(self, exported: str, value: str) -> list[Message] | str:
        """The messages DSPy's ChatAdapter sends for the loaded program (needs dspy)."""
        import dspy  # type: ignore[import-not-found,unused-ignore]

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "program.json"
            path.write_text(exported, encoding="utf-8")
            program = dspy.Predict(SIGNATURE)
            program.load(str(path))
        out: list[Message] = dspy.ChatAdapter().format(
            program.signature, program.demos, {"input": value}
        )
        return out
