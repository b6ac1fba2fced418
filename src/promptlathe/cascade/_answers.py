"""One cascade step's answers: a saved prompt run by its model, with a confidence and a cost
for every answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from promptlathe.artifact import Saved
from promptlathe.confidence import mean_token_probability
from promptlathe.evaluator import Evaluator, Outcome
from promptlathe.lms._price import Price
from promptlathe.requests import answer_continuation, score_request


@dataclass(frozen=True)
class Step:
    """A (model, prompt) pair of a cascade, and what its tokens cost.

    Attributes:
        model: the model's name (embedded, or a served model's name with ``base_url``).
        saved: the prompt and how it was evaluated (decoding, labels, metric).
        price: cost per million input and output tokens.
        base_url: the server of a served model (``None``: embedded).
    """

    model: str
    saved: Saved
    price: Price
    base_url: str | None = None


@dataclass(frozen=True)
class StepAnswer:
    """One input's answer from one step: what the metric read, how sure the step was (in
    [0, 1]), the tokens and cost of the answer, and the cost of the confidence's own pass
    when it took one (paid only where a policy reads the confidence: never on its last
    step, nor by a single step answering alone)."""

    answer: str
    confidence: float
    prompt_tokens: int
    completion_tokens: int
    cost: float
    input_chars: int = 0
    confidence_cost: float = 0.0
    measured: bool = True
    """``False``: no confidence was measured (``confidence`` is the neutral 0.5)."""

    def cost_at(self, last: bool) -> float:
        """What the answer costs as a policy's ``last`` step, or as one it may pass on from."""
        return self.cost if last else self.cost + self.confidence_cost


def answer_step(
    step: Step, evaluator: Evaluator, queries: Sequence[str], confidence: bool = True
) -> list[StepAnswer]:
    """``step``'s answers to ``queries``. The confidence is the chosen label's probability
    (label scoring) or the samples' vote share when the prompt's calls give one; otherwise,
    if the model gives log-probabilities and ``confidence`` is asked for, the mean token
    probability of the output it generated (one more pass over prompt and output, its cost
    kept apart in ``confidence_cost``); else 0.5."""
    outcomes = evaluator.answer(step.saved.prompt, list(queries))
    missing = [i for i, o in enumerate(outcomes) if o.confidence is None] if confidence else []
    extra: dict[int, tuple[float, int]] = {}
    if missing and evaluator.lm.can_score:
        p = step.saved.prompt
        reqs = [
            score_request(p, queries[i], answer_continuation(p, outcomes[i].text)) for i in missing
        ]
        for i, res in zip(missing, evaluator.lm.score(reqs), strict=True):
            # the pass reads the prompt and the output again: both are input tokens
            extra[i] = (
                mean_token_probability(res.logprob, res.n_tokens),
                sum(outcomes[i].io_tokens),
            )
    out = [_answer(step, o, extra.get(i), len(queries[i])) for i, o in enumerate(outcomes)]
    return [
        _priced(step, evaluator, a, q) if a.prompt_tokens == 0 else a
        for a, q in zip(out, queries, strict=True)
    ]


def _priced(step: Step, evaluator: Evaluator, a: StepAnswer, query: str) -> StepAnswer:
    """An answer whose backend reported no prompt tokens (label scoring over HTTP scores each
    label without counting the prompt) costs its prompt as the model's tokenizer (or its
    estimate) counts it."""
    p = step.saved.prompt
    text = (
        p.render_text(query)
        if p.format.mode == "completion"
        else "\n".join(m["content"] for m in p.render_messages(query))
    )
    pt = evaluator.lm.count_tokens(text)
    return replace(a, prompt_tokens=pt, cost=step.price.of(pt, a.completion_tokens))


def _answer(step: Step, o: Outcome, scored: tuple[float, int] | None, chars: int) -> StepAnswer:
    pt, ct = o.io_tokens
    confidence = o.confidence if o.confidence is not None else 0.5
    extra = 0.0
    if scored is not None:
        confidence, more = scored
        extra = step.price.of(more, 0)
    return StepAnswer(
        answer=o.answer,
        confidence=float(min(1.0, max(0.0, confidence))),
        prompt_tokens=pt,
        completion_tokens=ct,
        cost=step.price.of(pt, ct),
        input_chars=chars,
        confidence_cost=extra,
        measured=o.confidence is not None or scored is not None,
    )
