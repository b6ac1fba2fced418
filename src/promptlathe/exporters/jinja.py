"""``--to jinja``: a Jinja2 template with ``{{ input }}``. A chat prompt renders to the JSON of
its messages (``json.loads`` gives them); a completion prompt renders to its text."""

from __future__ import annotations

import json
from collections.abc import Sequence

import jinja2

from promptlathe.errors import PromptlatheError
from promptlathe.exporters._protocol import Exporter, Saved, register, template_of
from promptlathe.prompts import Message
from promptlathe.tasks import Example

_MARK = "\x01hole\x01"


def _raw(text: str, where: str) -> str:
    if "{% endraw %}" in text or "{%endraw%}" in text:
        raise PromptlatheError(f"{where}: the prompt's text contains a Jinja endraw tag")
    return "{% raw %}" + text + "{% endraw %}" if text else ""


def raw_template(saved: Saved, where: str, chat_hole: str, text_hole: str) -> str:
    """The prompt as a Jinja-syntax template: its text kept verbatim in raw blocks, the input
    at the hole. A chat prompt is the JSON of its messages, with ``chat_hole`` putting the
    input there as the inside of a JSON string; a completion prompt is its text, with
    ``text_hole``. Jinja2 and Nunjucks (promptfoo) read the same syntax, not the same filters."""
    t = template_of(saved.prompt, where)
    if t.text is not None:
        return _raw(t.before, where) + text_hole + _raw(t.after, where)
    text = json.dumps(t.fill(_MARK), ensure_ascii=False)
    before, after = text.split(json.dumps(_MARK, ensure_ascii=False)[1:-1])
    return _raw(before, where) + chat_hole + _raw(after, where)


@register
class JinjaExporter(Exporter):
    name = "jinja"
    suffix = ".j2"
    summary = "a Jinja2 template with {{ input }} (chat: renders the messages as JSON)"

    def export(self, saved: Saved, where: str, examples: Sequence[Example] = ()) -> str:
        # the input as a JSON string's inside: tojson, without its quotes
        return raw_template(saved, where, "{{ (input | tojson)[1:-1] }}", "{{ input }}")

    def render(self, exported: str, value: str) -> list[Message] | str:
        out = jinja2.Environment().from_string(exported).render(input=value)
        if out.startswith("[{"):  # a chat prompt renders to the JSON of its messages
            messages: list[Message] = json.loads(out)
            return messages
        return out
