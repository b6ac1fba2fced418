"""Requests shared by the log-probability analyses and screens: one prompt applied to one
input.

Chat formats become chat requests; a ``completion`` format becomes a plain-text request, as
the :class:`~promptlathe.evaluator.Evaluator` does, so an analysis measures the prompt the
user would actually run.
"""

from __future__ import annotations

from promptlathe.lms import GenerationRequest, ScoreRequest
from promptlathe.prompts import Prompt


def generation_request(prompt: Prompt, query: str, max_tokens: int) -> GenerationRequest:
    """A greedy generation request for ``prompt`` applied to ``query``."""
    if prompt.format.mode == "completion":
        return GenerationRequest.text(
            prompt.render_text(query),
            max_tokens=max_tokens,
            temperature=0.0,
            stop=prompt.format.stop_sequences(),
        )
    return GenerationRequest.chat(
        prompt.render_messages(query), max_tokens=max_tokens, temperature=0.0
    )


def score_request(prompt: Prompt, query: str, continuation: str) -> ScoreRequest:
    """A request for ``log P(continuation | prompt(query))``."""
    if prompt.format.mode == "completion":
        return ScoreRequest(continuation=continuation, prompt=prompt.render_text(query))
    return ScoreRequest.chat(prompt.render_messages(query), continuation)


def answer_continuation(prompt: Prompt, answer: str) -> str:
    """``answer`` as the model would write it right after the rendered prompt.

    A completion-mode prompt ends with the output label and the separator stripped of its
    trailing spaces ("Output:"), so the answer is scored with that space restored.
    """
    f = prompt.format
    if f.mode != "completion" or not f.output_label or answer[:1].isspace():
        return answer
    sep = f"{f.output_label}{f.separator}"
    return sep[len(sep.rstrip(" ")) :] + answer
