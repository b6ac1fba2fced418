"""``direct``: one call, the prompt as it is (greedy unless the run's decoding says else)."""

from __future__ import annotations

from promptlathe.prompts import Prompt
from promptlathe.strategies._protocol import Call, Strategy, register


@register
class Direct(Strategy):
    name = "direct"
    summary = "answer directly, one call"

    def calls(self, prompt: Prompt, query: str) -> list[Call]:
        return [Call(prompt, query)]
