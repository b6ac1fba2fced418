"""``--to messages``: OpenAI chat messages (or the completion text) with an ``{input}``
placeholder, and the decoding the prompt was evaluated with — what every SDK takes."""

from __future__ import annotations

import json
from collections.abc import Sequence

from promptlathe.exporters._protocol import (
    PLACEHOLDER,
    Exporter,
    Saved,
    register,
    request_settings,
    template_of,
)
from promptlathe.prompts import Message
from promptlathe.tasks import Example


@register
class MessagesExporter(Exporter):
    name = "messages"
    suffix = ".json"
    summary = "OpenAI chat messages JSON with an {input} placeholder"

    def export(self, saved: Saved, where: str, examples: Sequence[Example] = ()) -> str:
        t = template_of(saved.prompt, where)
        filled = t.fill(PLACEHOLDER)
        body: dict[str, object] = {
            "placeholder": PLACEHOLDER,
            "note": f"replace {PLACEHOLDER} (once, in the message that holds it) by the input",
            **({"messages": filled} if isinstance(filled, list) else {"prompt": filled}),
            **request_settings(saved),
        }
        if saved.fields.metric:
            body["metric"] = saved.fields.metric
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"

    def render(self, exported: str, value: str) -> list[Message] | str:
        body = json.loads(exported)
        if "prompt" in body:
            return str(body["prompt"]).replace(PLACEHOLDER, value, 1)
        out = [dict(m) for m in body["messages"]]
        hole = next(m for m in out if PLACEHOLDER in m["content"])
        hole["content"] = hole["content"].replace(PLACEHOLDER, value, 1)
        return out
