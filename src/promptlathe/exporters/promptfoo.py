"""``--to promptfoo``: a promptfoo config (``promptfoo eval -c FILE``): the prompt as a
Nunjucks template that renders exactly what promptlathe sends, an OpenAI-compatible provider
with the decoding it was evaluated with, and, with ``--task``, the examples as tests whose
assertion is promptlathe's own metric (a Python assertion: promptfoo's Python must import
promptlathe)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import jinja2
import yaml

from promptlathe.exporters._protocol import Exporter, Saved, register, request_settings
from promptlathe.exporters.jinja import raw_template
from promptlathe.lms import DEFAULT_MODEL
from promptlathe.metrics import get_metric
from promptlathe.prompts import Message
from promptlathe.tasks import Example

CHAT_HOLE = "{{ (input | dump).slice(1, -1) }}"
"""Nunjucks: the input as the inside of a JSON string (``dump`` is ``JSON.stringify``)."""
TEXT_HOLE = "{{ input }}"
SERVER = "http://localhost:8080/v1"
_ASSERTION = """\
import json
from promptlathe.lms import DEFAULT_MODEL
from promptlathe.metrics import get_metric
v = context['vars']
targets = json.loads(v['targets_json']) if 'targets_json' in v else [v['target']]
answer, score = get_metric({metric!r}, {labels!r})(output, targets)
return {{'pass': score >= 1.0, 'score': score, 'reason': 'answer ' + repr(answer)}}
"""


class _Block(str):
    """A string written as a YAML literal block (the assertion's code)."""


def _block(dumper: yaml.SafeDumper, data: _Block) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Block, _block)


def _test(example: Example) -> dict[str, Any]:
    # a list var would make promptfoo run the test once per item: several targets go as JSON
    targets = list(example.targets)
    vars_: dict[str, str] = {"input": example.input}
    if len(targets) == 1:
        vars_["target"] = targets[0]
    else:
        vars_["targets_json"] = json.dumps(targets, ensure_ascii=False)
    out: dict[str, Any] = {"vars": vars_}
    if example.id:
        out["description"] = example.id
    return out


@register
class PromptfooExporter(Exporter):
    name = "promptfoo"
    suffix = ".yaml"
    summary = "a promptfoo config: the prompt, a provider, --task's examples as tests"

    def export(self, saved: Saved, where: str, examples: Sequence[Example] = ()) -> str:
        fields = saved.fields
        chat = saved.prompt.format.mode != "completion"
        config: dict[str, Any] = {"apiBaseUrl": SERVER, **request_settings(saved)}
        model = fields.model or DEFAULT_MODEL
        body: dict[str, Any] = {
            "description": f"{saved.name}, exported by promptlathe",
            "prompts": [
                {
                    "id": "promptlathe",
                    "label": saved.name,
                    "raw": raw_template(saved, where, CHAT_HOLE if chat else TEXT_HOLE, TEXT_HOLE),
                }
            ],
            "providers": [
                {"id": f"openai:{'chat' if chat else 'completion'}:{model}", "config": config}
            ],
        }
        targets = fields.labels or [e.target for e in examples]
        metric = get_metric(fields.metric, targets, allow_code=False, source=where)
        labels = list(dict.fromkeys(t.strip() for t in targets)) if metric.name == "label" else []
        body["defaultTest"] = {
            "assert": [
                {
                    "type": "python",
                    "value": _Block(_ASSERTION.format(metric=metric.name, labels=labels)),
                }
            ]
        }
        body["tests"] = [_test(e) for e in examples]
        head = [
            f"# {saved.name}, exported by promptlathe: run it with `promptfoo eval -c THIS_FILE`.",
            "# The prompt renders exactly what promptlathe sent the model (kept verbatim in",
            "# raw blocks; the input goes where {{ input }} is). The provider is any",
            f"# OpenAI-compatible server ({SERVER} is llama.cpp's server default): change",
            "# apiBaseUrl and the model name to yours. The assertion is promptlathe's metric",
            "# (promptfoo's Python, PROMPTFOO_PYTHON, must have promptlathe installed).",
        ]
        if fields.decode == "labels":
            head.append(
                "# promptlathe scored this prompt by the likelihood of each label; promptfoo "
                "generates, so its scores may differ."
            )
        if not examples:
            head.append("# No tests: export with --task FILE to carry labeled examples as tests.")
        text = yaml.dump(body, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=2**16)
        return "\n".join(head) + "\n" + text

    def render(self, exported: str, value: str) -> list[Message] | str:
        """What promptfoo's Nunjucks makes of the prompt, with Jinja2 standing in for it (the
        same syntax; ``dump`` is JSON.stringify). The real promptfoo is checked by
        tests/test_export_tools.py when it is installed."""
        prompt = yaml.safe_load(exported)["prompts"][0]["raw"]
        env = jinja2.Environment()
        env.filters["dump"] = lambda v: json.dumps(v, ensure_ascii=False)
        source = prompt.replace(CHAT_HOLE, "{{ (input | dump)[1:-1] }}")
        out = env.from_string(source).render(input=value)
        if CHAT_HOLE in prompt:
            messages: list[Message] = json.loads(out)
            return messages
        return out
