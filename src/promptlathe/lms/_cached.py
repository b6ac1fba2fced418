"""A caching wrapper: any LM, with every call persisted to a :class:`Store` as it completes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict

from promptlathe.lms._base import (
    LM,
    Generation,
    GenerationRequest,
    LabelChoice,
    LabelRequest,
    LMStats,
    PartialBatchError,
    ScoreRequest,
    ScoreResult,
    request_key,
)
from promptlathe.store import Store

CallGuard = Callable[[int], None]
"""Called with the number of uncached calls about to be made; may raise to refuse them."""

Refund = Callable[[int], None]
"""Called with the number of guarded calls that failed (they are not charged)."""


class CachedLM(LM):
    """Serves repeated requests from the store and writes new ones as soon as they return.

    Misses are sent to the inner backend in chunks of its ``max_batch``; each chunk is
    committed before the next starts, so a killed process loses at most one chunk.

    Args:
        inner: the real backend.
        store: where calls are kept.
        guard: optional hook called before each chunk of real calls (budgets use it).
        refund: optional hook given back the calls of a chunk that failed.
        charge_to: the budget counter a guarded call is recorded against when it is stored
            (in the same transaction).
    """

    def __init__(
        self,
        inner: LM,
        store: Store,
        guard: CallGuard | None = None,
        refund: Refund | None = None,
        charge_to: str | None = None,
    ) -> None:
        self.inner = inner
        self.store = store
        self.guard = guard
        self.refund = refund
        self.charge_to = charge_to if guard else None
        self.model_id = inner.model_id
        self.context_window = inner.context_window
        self.max_batch = inner.max_batch
        self.can_score = inner.can_score
        self.labels_in_one_pass = inner.labels_in_one_pass
        self.embedded = inner.embedded
        self.chat = inner.chat
        self.stats = LMStats()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        keys = [request_key(self.model_id, "generate", r.payload()) for r in requests]
        misses: list[int] = []
        first_of_key: dict[str, int] = {}
        for i, key in enumerate(keys):
            hit = self.store.get_call(key)
            if hit is not None:
                results[i] = Generation(**{**hit, "cached": True})
                self.stats.cache_hits += 1
            elif key in first_of_key:
                continue  # duplicate inside this batch: filled in below
            else:
                first_of_key[key] = i
                misses.append(i)
        for start in range(0, len(misses), max(1, self.max_batch)):
            chunk = misses[start : start + max(1, self.max_batch)]
            if self.guard:
                self.guard(len(chunk))
            kept: set[int] = set()

            def keep(
                j: int, out: Generation, chunk: list[int] = chunk, kept: set[int] = kept
            ) -> None:
                if j not in kept:  # stored the moment it is ready
                    kept.add(j)
                    self._keep(chunk[j], keys, requests, results, out)

            try:
                outs = self.inner.generate_each([requests[i] for i in chunk], keep)
            except PartialBatchError as exc:
                # Keep what finished; charge only those.
                for j, out in exc.done.items():
                    keep(j, out)
                self._give_back(len(chunk) - len(kept))
                raise exc.cause from None
            except BaseException:
                self._give_back(len(chunk) - len(kept))
                raise
            for j, out in enumerate(outs):
                keep(j, out)
        for i, key in enumerate(keys):
            if results[i] is None:  # in-batch duplicate of a miss
                src = results[first_of_key[key]]
                assert src is not None
                results[i] = Generation(**{**asdict(src), "cached": True})
                self.stats.cache_hits += 1
        return [r for r in results if r is not None]

    def _keep(
        self,
        i: int,
        keys: list[str],
        requests: Sequence[GenerationRequest],
        results: list[Generation | None],
        out: Generation,
    ) -> None:
        out.cached = False
        rec = asdict(out)
        rec.pop("cached")
        self.store.put_call(
            keys[i], self.model_id, "generate", requests[i].payload(), rec, self.charge_to
        )
        results[i] = out
        self.stats.calls += 1
        self.stats.prompt_tokens += out.prompt_tokens
        self.stats.completion_tokens += out.completion_tokens

    def _give_back(self, n: int) -> None:
        if n and self.guard and self.refund:
            self.refund(n)

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        results: list[ScoreResult] = []
        for r in requests:
            key = request_key(self.model_id, "score", r.payload())
            hit = self.store.get_call(key)
            if hit is not None:
                results.append(ScoreResult(**{**hit, "cached": True}))
                self.stats.cache_hits += 1
                continue
            if self.guard:
                self.guard(1)
            try:
                (out,) = self.inner.score([r])
            except BaseException:
                self._give_back(1)
                raise
            self.store.put_call(
                key,
                self.model_id,
                "score",
                r.payload(),
                {"logprob": out.logprob, "n_tokens": out.n_tokens},
                self.charge_to,
            )
            self.stats.calls += 1
            self.stats.prompt_tokens += out.n_tokens
            results.append(out)
        return results

    def choose(self, requests: Sequence[LabelRequest]) -> list[LabelChoice]:
        """Label choices, cached under their own kind ("labels"): they never serve, or are
        served by, generations."""
        results: list[LabelChoice] = []
        for r in requests:
            key = request_key(self.model_id, "labels", r.payload())
            hit = self.store.get_call(key)
            if hit is not None:
                results.append(LabelChoice(**{**hit, "cached": True}))
                self.stats.cache_hits += 1
                continue
            if self.guard:
                self.guard(1)
            try:
                (out,) = self.inner.choose([r])
            except BaseException:
                self._give_back(1)
                raise
            rec = asdict(out)
            rec.pop("cached")
            self.store.put_call(key, self.model_id, "labels", r.payload(), rec, self.charge_to)
            self.stats.calls += 1
            self.stats.prompt_tokens += out.prompt_tokens
            self.stats.completion_tokens += out.completion_tokens
            results.append(out)
        return results

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def prompt_tokens(self, request: GenerationRequest) -> int | None:
        return self.inner.prompt_tokens(request)

    def close(self) -> None:
        self.inner.close()
