"""Run a prompt over examples, score the outputs, and aggregate with honest statistics.

(:class:`Decoding` and :func:`choose_decode` live in :mod:`promptlathe.decoding`, and
:class:`Outcome`, :class:`Record` and :class:`EvalResult` in :mod:`promptlathe.records`;
they are re-exported here.)"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence, Set
from dataclasses import asdict

from promptlathe.confidence import label_confidence, mean_token_probability, vote_share
from promptlathe.decoding import DECODE_MODES, Decoding, choose_decode
from promptlathe.errors import PromptlatheError, PromptTooLongError
from promptlathe.lms import LM, Generation, GenerationRequest, LabelRequest, request_key
from promptlathe.metrics import Metric, final_answer
from promptlathe.prompts import Prompt
from promptlathe.records import EvalResult, Outcome, Record
from promptlathe.store import Store
from promptlathe.strategies import Call, Strategy, get_strategy
from promptlathe.tasks import Example

__all__ = [
    "DECODE_MODES",
    "Decoding",
    "EvalResult",
    "Evaluator",
    "Outcome",
    "Progress",
    "Record",
    "choose_decode",
]

Progress = Callable[[int, int], None]
"""``progress(done, total)``, called as examples finish."""


class Evaluator:
    """Evaluates prompts with one LM and one metric.

    Args:
        lm: the backend (wrap it in :class:`~promptlathe.lms.CachedLM` to cache calls).
        metric: scores outputs.
        decoding: decoding parameters.
        store: if given, each scored example is persisted under ``run`` as it completes and
            reused on the next evaluation of the same prompt and example.
        run: namespace for persisted records (model, metric and decoding are added to it).
        batch_size: requests handed to the backend at once (default: its ``max_batch``).
        labels: score these labels after the prompt and answer with the most likely one,
            instead of generating (classification tasks; the backend must score
            log-probabilities). Outputs are then always exactly one label. Records and cache
            entries of the two ways never mix.
    """

    def __init__(
        self,
        lm: LM,
        metric: Metric,
        decoding: Decoding | None = None,
        store: Store | None = None,
        run: str = "default",
        batch_size: int | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        if labels is not None and not lm.can_score:
            raise PromptlatheError(
                "--decode labels needs a backend that scores log-probabilities; this one "
                "cannot (use --decode generate)"
            )
        self.labels = list(labels) if labels is not None else None
        self.lm = lm
        self.metric = metric
        self.decoding = decoding or Decoding()
        self.store = store
        # Persisted records are only valid for the same model, metric and decoding.
        self.run = f"{run}|{lm.model_id}|{metric.name}|{self.decoding}"
        if self.labels is not None:
            blob = json.dumps(self.labels, ensure_ascii=False).encode()
            self.run += f"|labels:{hashlib.sha256(blob).hexdigest()[:16]}"
        self.batch_size = batch_size or max(1, lm.max_batch)

    @property
    def decode(self) -> str:
        """How answers are produced: ``"labels"`` (scored) or ``"generate"``."""
        return "generate" if self.labels is None else "labels"

    def label_request(self, prompt: Prompt, query: str) -> LabelRequest:
        """The label-scoring request for ``query``: the same context as :meth:`request`, and
        each label as the answer (after a space where a text prompt ends in a colon)."""
        assert self.labels is not None
        if prompt.format.mode == "completion":
            text = prompt.render_text(query)
            sep = "" if not text or text[-1].isspace() else " "
            return LabelRequest.text(text, [sep + lab for lab in self.labels])
        return LabelRequest.chat(prompt.render_messages(query), self.labels)

    def answer(self, prompt: Prompt, queries: Sequence[str]) -> list[Outcome]:
        """The prompt's answers to ``queries``, its strategy executed (samples, votes and
        all): what a deployed prompt answers."""
        return self._run(prompt, queries)

    def strategy(self, prompt: Prompt) -> Strategy:
        return get_strategy(prompt.strategy, where=f"prompt {prompt.hash}")

    def _run(self, prompt: Prompt, queries: Sequence[str]) -> list[Outcome]:
        """Execute ``prompt``'s strategy on ``queries``: every call of the batch goes to the
        backend at once, then each input's outputs are combined and read by the metric."""
        strat = self.strategy(prompt)
        plans = [strat.calls(prompt, q) for q in queries]
        flat = [c for plan in plans for c in plan]
        reqs = [self._request_for(c) for c in flat]
        gens: list[Generation | None] = [None] * len(reqs)
        sure: dict[int, float] = {}  # by request: the chosen label's probability
        gen_idx = [i for i, r in enumerate(reqs) if isinstance(r, GenerationRequest)]
        lab_idx = [i for i, r in enumerate(reqs) if isinstance(r, LabelRequest)]
        for idx, outs in (
            (gen_idx, self.lm.generate([reqs[i] for i in gen_idx]) if gen_idx else []),  # type: ignore[misc]
            (lab_idx, self._choices([reqs[i] for i in lab_idx], lab_idx, sure) if lab_idx else []),  # type: ignore[misc]
        ):
            for i, g in zip(idx, outs, strict=True):
                gens[i] = g
        out: list[Outcome] = []
        pos = 0
        for plan in plans:
            part = [g for g in gens[pos : pos + len(plan)] if g is not None]
            keys = [self._key(r) for r in reqs[pos : pos + len(plan)]]
            texts = [g.text for g in part]
            cut = {g.text for g in part if g.finish_reason == "length"}
            read = self.answer_reader(strat, cut)
            text = strat.combine(plan, texts, read) if plan else ""
            text_cut = text in cut
            confidence = sure.get(pos) if len(plan) == 1 else None
            if len(part) > 1:
                confidence = vote_share([read(t) for t in texts], read(text))
            elif confidence is None and part and part[0].logprob is not None:
                # one generated output whose backend gave its tokens' log-probability
                confidence = mean_token_probability(part[0].logprob, part[0].completion_tokens)
            pos += len(plan)
            pt = sum(g.prompt_tokens for g in part)
            ct = sum(g.completion_tokens for g in part)
            out.append(
                Outcome(
                    text=text,
                    answer=self.metric.extract(self.final(strat, text, cut=text_cut)),
                    tokens=pt + ct,
                    request_hash=(keys[0] if len(keys) == 1 else _combined(keys))[:16],
                    cached=all(g.cached for g in part),
                    calls=sum(not g.cached for g in part),
                    prompt_tokens=sum(g.prompt_tokens for g in part if not g.cached),
                    completion_tokens=sum(g.completion_tokens for g in part if not g.cached),
                    cut=text_cut,
                    io_tokens=(pt, ct),
                    confidence=confidence,
                )
            )
        return out

    @staticmethod
    def final(strat: Strategy, text: str, *, cut: bool = False) -> str:
        """What the metric reads of an output: its final answer if it is reasoned (``cut``:
        the output stopped at the token limit)."""
        return final_answer(text, cut=cut) if strat.reasoning else text

    def answer_reader(self, strat: Strategy, cut: Set[str] = frozenset()) -> Callable[[str], str]:
        """An output's answer as votes count it (the metric's extraction, spacing folded).
        Outputs in ``cut`` stopped at the token limit: a reasoned one without a marked
        answer casts no vote, so the vote is not won by where chains were cut."""

        def read(text: str) -> str:
            final = self.final(strat, text, cut=text in cut)
            return " ".join(self.metric.extract(final).split())

        return read

    def _request_for(self, call: Call) -> GenerationRequest | LabelRequest:
        if self.labels is not None and not call.reasoning and call.temperature is None:
            return self.label_request(call.prompt, call.query)
        return self.request(
            call.prompt,
            call.query,
            max_tokens=self.decoding.reasoning_tokens if call.reasoning else None,
            temperature=call.temperature,
            sample=call.sample,
        )

    def _key(self, req: GenerationRequest | LabelRequest) -> str:
        kind = "generate" if isinstance(req, GenerationRequest) else "labels"
        return request_key(self.lm.model_id, kind, req.payload())

    def _choices(
        self, reqs: Sequence[LabelRequest], where: Sequence[int], sure: dict[int, float]
    ) -> list[Generation]:
        """The chosen labels as outputs; each one's probability goes to ``sure`` under its
        position ``where[i]`` in the batch."""
        assert self.labels is not None
        choices = self.lm.choose(reqs)
        sure.update(
            {
                i: label_confidence(c.logprobs, c.upper_bounds)
                for i, c in zip(where, choices, strict=True)
            }
        )
        return [
            Generation(
                text=self.labels[c.index],
                prompt_tokens=c.prompt_tokens,
                completion_tokens=c.completion_tokens,
                cached=c.cached,
            )
            for c in choices
        ]

    def request(
        self,
        prompt: Prompt,
        query: str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        sample: int = 0,
    ) -> GenerationRequest:
        """The generation request for ``query``; sample ``i`` of a strategy's samples is
        seeded with the run's seed + ``i``, so each sample is its own cache entry."""
        d = self.decoding
        params = {
            "max_tokens": max_tokens or d.max_tokens,
            "temperature": d.temperature if temperature is None else temperature,
            "top_p": d.top_p,
            "seed": d.seed + sample,
        }
        if prompt.format.mode == "completion":
            return GenerationRequest.text(
                prompt.render_text(query), stop=prompt.format.stop_sequences(), **params
            )
        return GenerationRequest.chat(prompt.render_messages(query), **params)

    def evaluate(
        self,
        prompt: Prompt,
        examples: Sequence[Example],
        progress: Progress | None = None,
    ) -> EvalResult:
        """Score ``prompt`` on ``examples`` (in order).

        Raises:
            PromptTooLongError: a rendered prompt does not fit the context window (names the
                example); records finished before it are kept in the store.
        """
        t0 = time.perf_counter()
        phash = prompt.hash
        ids = [ex.id for ex in examples]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise PromptlatheError(f"example id {dup!r} occurs more than once; ids must be unique")
        strat = self.strategy(prompt)
        stored = self.store.get_records(self.run, phash) if self.store is not None else {}
        done: dict[str, Record] = {}
        for ex in examples:
            row = stored.get(ex.id)
            # A stored output counts only if made for the same input; it is re-scored against
            # the current targets (they may have been corrected since).
            if row is not None and row["input"] == ex.input:
                final = self.final(strat, row["output"], cut=row.get("cut", False))
                extracted, value = self.metric(final, ex.targets)
                done[ex.id] = Record(
                    **{**row, "answer": extracted, "score": value, "targets": list(ex.targets)},
                    cached=True,
                )
        result = EvalResult(prompt_hash=phash, records=[])
        todo = [ex for ex in examples if ex.id not in done]
        total = len(examples)
        finished = total - len(todo)
        if progress:
            progress(finished, total)
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            try:
                outs = self._run(prompt, [ex.input for ex in batch])
            except PromptTooLongError as exc:
                first = ", ".join(ex.id for ex in batch[:3])
                raise PromptTooLongError(f"example {first}: {exc}") from None
            for ex, o in zip(batch, outs, strict=True):
                # The outcome's answer is already the metric's extraction of the final answer.
                answer, score = o.answer, float(self.metric.score(o.answer, ex.targets))
                rec = Record(
                    example_id=ex.id,
                    input=ex.input,
                    prompt_hash=phash,
                    request_hash=o.request_hash,
                    output=o.text,
                    answer=answer,
                    targets=list(ex.targets),
                    score=score,
                    cached=o.cached,
                    tokens=o.tokens,
                    cut=o.cut,
                )
                if o.cached:
                    result.cache_hits += 1
                else:
                    result.calls += o.calls
                    result.prompt_tokens += o.prompt_tokens
                    result.completion_tokens += o.completion_tokens
                if self.store is not None:
                    d = asdict(rec)
                    d.pop("cached")
                    self.store.put_record(self.run, phash, ex.id, d)
                done[ex.id] = rec
            finished += len(batch)
            if progress:
                progress(finished, total)
        result.cache_hits += total - len(todo)
        result.records = [done[ex.id] for ex in examples]
        result.wall_seconds = time.perf_counter() - t0
        return result


def _combined(keys: Sequence[str]) -> str:
    return hashlib.sha256("|".join(keys).encode()).hexdigest()
