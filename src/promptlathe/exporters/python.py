"""``--to python``: a small self-contained module: ``render(input)`` gives exactly the messages
(or text) promptlathe sends, ``answer(output)`` reads the answer the way the metric read it,
and ``DECODING`` holds the decoding it was evaluated with. It needs only the standard
library."""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from dataclasses import asdict

from promptlathe.exporters._protocol import Exporter, Saved, register, template_of
from promptlathe.metrics import Metric, get_metric
from promptlathe.metrics import _extract as extraction
from promptlathe.metrics._text import Contains
from promptlathe.prompts import Message
from promptlathe.tasks import Example


def _metric(saved: Saved) -> Metric:
    return get_metric(saved.fields.metric, saved.fields.labels, allow_code=False)


def _reads(metric: Metric) -> str | None:
    """How the metric reads an answer, as code: the shared extraction, or the stripped text;
    ``None`` when it reads answers its own way."""
    extract = type(metric).extract
    if extract is Metric.extract:
        return "extract_answer(output)"
    if extract is Contains.extract:
        return "output.strip()"
    return None


@register
class PythonExporter(Exporter):
    name = "python"
    suffix = ".py"
    summary = "a self-contained module: render(input) and answer(output)"

    def refuse(self, saved: Saved) -> str | None:
        why = super().refuse(saved)
        if why:
            return why
        metric = _metric(saved)
        if _reads(metric) is None:
            return (
                f"the metric {metric.name!r} reads answers its own way; export to messages "
                "and read answers with promptlathe"
            )
        return None

    def export(self, saved: Saved, where: str, examples: Sequence[Example] = ()) -> str:
        t = template_of(saved.prompt, where)
        reads = _reads(_metric(saved))
        lines = [
            f'"""The prompt {saved.name}, exported by promptlathe.',
            "",
            "render(input) gives exactly what promptlathe sent the model; answer(output)",
            f"reads the answer as the metric {saved.fields.metric or 'auto'!r} did.",
            "Standard library only.",
            '"""',
            "",
            "from __future__ import annotations",
            "",
            extraction_source(),
            "",
            f"DECODING = {json.dumps(asdict(saved.fields.decoding))}",
            f"STOP = {json.dumps(list(saved.prompt.format.stop_sequences()), ensure_ascii=False)}",
            f"BEFORE = {json.dumps(t.before, ensure_ascii=False)}",
            f"AFTER = {json.dumps(t.after, ensure_ascii=False)}",
        ]
        if t.messages is not None:
            lines += [
                f"MESSAGES = {json.dumps(t.messages, ensure_ascii=False, indent=4)}",
                f"HOLE = {t.hole}",
                "",
                "",
                "def render(input: str) -> list[dict[str, str]]:",
                '    """The chat messages for ``input``."""',
                "    out = [dict(m) for m in MESSAGES]",
                '    out[HOLE]["content"] = BEFORE + input + AFTER',
                "    return out",
            ]
        else:
            lines += [
                "",
                "",
                "def render(input: str) -> str:",
                '    """The completion text for ``input`` (stop at STOP)."""',
                "    return BEFORE + input + AFTER",
            ]
        lines += [
            "",
            "",
            "def answer(output: str) -> str:",
            '    """The answer in a model output, as it was scored."""',
            f"    return {reads}",
            "",
        ]
        return "\n".join(lines)

    def render(self, exported: str, value: str) -> list[Message] | str:
        render = load_module(exported)["render"]
        assert callable(render)
        out: list[Message] | str = render(value)
        return out


def load_module(exported: str) -> dict[str, object]:
    """The exported module's names (it runs: call this on exports you made)."""
    names: dict[str, object] = {"__name__": "promptlathe_export"}
    exec(compile(exported, "<export>", "exec"), names)  # noqa: S102 - our own output
    return names


def extraction_source() -> str:
    """The shared answer extraction, as code (its module, without the docstring)."""
    src = inspect.getsource(extraction)
    body = src.split('"""', 2)[2].lstrip()
    return body.replace("from __future__ import annotations\n", "").strip()
