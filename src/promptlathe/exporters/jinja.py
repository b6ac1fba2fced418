"""``--to jinja``: a Jinja2 template with ``{{ input }}``. A chat prompt renders to the JSON of
its messages (``json.loads`` gives them); a completion prompt renders to its text."""

from __future__ import annotations

import json

import jinja2

from promptlathe.errors import PromptlatheError
from promptlathe.exporters._protocol import Exporter, Saved, register, template_of
from promptlathe.prompts import Message

_MARK = "\x01hole\x01"


def _raw(text: str, where: str) -> str:
    if "{% endraw %}" in text or "{%endraw%}" in text:
        raise PromptlatheError(f"{where}: the prompt's text contains a Jinja endraw tag")
    return "{% raw %}" + text + "{% endraw %}" if text else ""


@register
class JinjaExporter(Exporter):
    name = "jinja"
    suffix = ".j2"
    summary = "a Jinja2 template with {{ input }} (chat: renders the messages as JSON)"

    def export(self, saved: Saved, where: str) -> str:
        t = template_of(saved.prompt, where)
        if t.text is not None:
            return _raw(t.before, where) + "{{ input }}" + _raw(t.after, where)
        text = json.dumps(t.fill(_MARK), ensure_ascii=False)
        before, after = text.split(json.dumps(_MARK, ensure_ascii=False)[1:-1])
        # the input as a JSON string's inside: tojson, without its quotes
        return _raw(before, where) + "{{ (input | tojson)[1:-1] }}" + _raw(after, where)

    def render(self, exported: str, value: str) -> list[Message] | str:
        out = jinja2.Environment().from_string(exported).render(input=value)
        if out.startswith("[{"):  # a chat prompt renders to the JSON of its messages
            messages: list[Message] = json.loads(out)
            return messages
        return out
