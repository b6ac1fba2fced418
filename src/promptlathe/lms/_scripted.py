"""A scripted test double: answers from a function, counts every call."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from promptlathe.lms._base import LM, Generation, GenerationRequest, ScoreRequest, ScoreResult


def _last_user_text(req: GenerationRequest) -> str:
    if req.messages is not None:
        users = [m["content"] for m in req.chat_messages if m["role"] == "user"]
        return users[-1] if users else ""
    return req.prompt or ""


class ScriptedLM(LM):
    """Answers each request with ``respond(request) -> str``; deterministic, no model.

    Args:
        respond: the script. Defaults to echoing the last user message. It may return a
            :class:`Generation` instead (e.g. one cut at the token limit); its token counts
            are then filled in.
        model_id: identity used in cache keys.
        context_window: for prompt-length checks.
        scorer: ``scorer(request) -> logprob``; defaults to ``-len(continuation)``.
    """

    can_score = True
    embedded = True  # runs in this process, as the embedded backend it stands in for

    def __init__(
        self,
        respond: Callable[[GenerationRequest], str | Generation] | None = None,
        model_id: str = "scripted",
        context_window: int = 100_000,
        max_batch: int = 1,
        scorer: Callable[[ScoreRequest], float] | None = None,
    ) -> None:
        self.respond = respond or _last_user_text
        self.scorer = scorer
        self.model_id = model_id
        self.context_window = context_window
        self.max_batch = max_batch
        self.calls: list[GenerationRequest] = []
        self.score_calls: list[ScoreRequest] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        out = []
        for r in requests:
            self.calls.append(r)
            reply = self.respond(r)
            text = reply.text if isinstance(reply, Generation) else reply
            prompt_text = r.prompt or " ".join(m["content"] for m in r.chat_messages)
            out.append(
                Generation(
                    text=text,
                    prompt_tokens=self.count_tokens(prompt_text),
                    completion_tokens=self.count_tokens(text),
                    finish_reason=reply.finish_reason if isinstance(reply, Generation) else "stop",
                    logprob=reply.logprob if isinstance(reply, Generation) else None,
                )
            )
        return out

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        res = []
        for r in requests:
            self.score_calls.append(r)
            lp = self.scorer(r) if self.scorer else -float(len(r.continuation))
            res.append(ScoreResult(logprob=lp, n_tokens=self.count_tokens(r.continuation)))
        return res

    def count_tokens(self, text: str) -> int:
        return len(text.split())
