"""Continuous batching over one model context: many generations decoded together.

Generating the answers to a batch of inputs one after another pays a whole decode call per
token of each; :class:`BatchScheduler` keeps ``n_slots`` sequences live in one context:

- the longest prefix the batch's prompts share (instruction and exemplars) is decoded once
  into a holder sequence, kept between calls (the next batch of the same prompt reuses it),
  and copied into each slot's cache (a slot whose prompt shares more with a live slot's,
  as the samples of one prompt do, copies that one instead);
- each slot decodes the rest of its prompt but the last token in calls of its own; then
  every step is one decode call carrying a token for each live slot (its prompt's last
  token, or the token it generated last), with logits only there;
- a finished sequence's slot is cleared and refilled with the next waiting job, so the batch
  stays full until the work runs out.

The scheduler knows nothing of llama.cpp: it drives a :class:`Decoder` (the embedded backend's
is ``lms._llama_batch.LlamaDecoder``; the unit tests script one). Results come back in input
order; a job that fails leaves the others' results intact.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np

TOP_K = 40
"""Candidates kept before sampling (llama.cpp's default)."""
MIN_P = 0.05
"""Tokens less likely than this fraction of the most likely one are dropped (its default)."""


class Entry(NamedTuple):
    """One token of a decode call: its id, position and sequence, and whether its logits
    (the next token's distribution) are wanted."""

    token: int
    pos: int
    seq: int
    logits: bool


class Decoder(Protocol):
    """One model context holding ``n_slots`` generating sequences and a prefix holder
    (sequence ``n_slots``), each with room for ``capacity`` tokens."""

    n_slots: int
    capacity: int
    batch_tokens: int
    """Most tokens one :meth:`decode` call takes."""

    def forget(self, seq: int, start: int = 0) -> None:
        """Drop sequence ``seq``'s tokens from position ``start`` on."""

    def share(self, src: int, dst: int, n: int) -> None:
        """Let ``dst`` see ``src``'s first ``n`` positions (no recomputation)."""

    def decode(self, entries: Sequence[Entry]) -> list[np.ndarray]:
        """Decode ``entries`` in one call; the logits of each entry that wants them, in
        order."""
        ...

    def is_end(self, token: int) -> bool:
        """Whether ``token`` ends a generation (end of text or of turn)."""
        ...

    def text(self, tokens: Sequence[int]) -> str:
        """The text of generated ``tokens``."""
        ...


@dataclass(frozen=True)
class Job:
    """One generation: prompt tokens and how to decode after them."""

    tokens: tuple[int, ...]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()

    @property
    def cells(self) -> int:
        """Cache cells the job may occupy (prompt and every token it may generate)."""
        return len(self.tokens) + self.max_tokens


@dataclass
class Done:
    """A finished job: the text (cut before any stop string), its tokens and why it ended
    (``"stop"`` or ``"length"``)."""

    text: str
    completion_tokens: int
    prompt_tokens: int
    finish_reason: str
    logprob: float | None = None
    """Summed log-probability (natural log, the model's own distribution) of the generated
    tokens."""


def token_logprob(logits: np.ndarray, token: int) -> float:
    """The log-probability of ``token`` under the model's distribution (temperature 1)."""
    x = np.asarray(logits, dtype=np.float32)
    top = float(x.max())
    return float(x[token]) - top - float(np.log(np.exp(x - top).sum(dtype=np.float64)))


def pick_token(logits: np.ndarray, job: Job, rng: np.random.Generator | None) -> int:
    """The next token: the argmax when greedy, else a sample after top-k, temperature,
    top-p and min-p, drawn with one uniform number from the job's own generator (so a seeded
    job gets the same tokens whichever batch it runs in, given the same logits)."""
    if job.temperature <= 0 or rng is None:
        return int(np.argmax(logits))
    x = np.asarray(logits, dtype=np.float64)
    k = min(TOP_K, x.size)
    top = np.argpartition(-x, k - 1)[:k]
    top = top[np.argsort(-x[top], kind="stable")]
    z = x[top] / job.temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    keep = int(np.searchsorted(np.cumsum(p), job.top_p) + 1) if job.top_p < 1 else k
    keep = min(keep, int((p >= MIN_P * p[0]).sum()))
    p = p[: max(1, keep)] / p[: max(1, keep)].sum()
    i = int(np.searchsorted(np.cumsum(p), rng.random(), side="right"))
    return int(top[min(i, p.size - 1)])


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass
class _Live:
    """A job in a slot: tokens still to prefill, the next position, what it generated."""

    index: int
    job: Job
    pending: list[int]
    pos: int
    rng: np.random.Generator | None
    source: tuple[int, int] | None
    """(sequence, positions) to copy its cache from, until it is placed."""
    out: list[int] = field(default_factory=list)
    logprob: float = 0.0


class BatchScheduler:
    """Decodes many jobs together on a :class:`Decoder` (see the module docstring)."""

    def __init__(self, decoder: Decoder) -> None:
        self.decoder = decoder
        self.holder = decoder.n_slots
        self.held: list[int] = []
        """Tokens of the shared prefix the holder sequence has in the cache."""
        self.shared = 0
        """How many of them the current call's jobs all share."""
        self.steps = 0
        """Decode calls made (for benchmarks)."""

    def fits(self, job: Job) -> bool:
        return job.cells <= self.decoder.capacity

    def run(
        self, jobs: Sequence[Job], on_done: Callable[[int, Done], None] | None = None
    ) -> list[Done | BaseException]:
        """Every job's result (or the exception that ended it), in input order;
        ``on_done(position, result)`` is called as each job finishes."""
        results: list[Done | BaseException | None] = [None] * len(jobs)
        if not jobs:
            return []
        for i, job in enumerate(jobs):
            if not job.tokens or not self.fits(job):
                results[i] = ValueError(
                    f"a prompt of {len(job.tokens)} tokens + {job.max_tokens} to generate "
                    f"does not fit a sequence's cache of {self.decoder.capacity}"
                )
        runnable = [j for j, r in zip(jobs, results, strict=True) if r is None]
        if not runnable:
            return list(results)  # type: ignore[arg-type]
        self.shared = self._share_prefix(runnable)
        waiting = deque(i for i, r in enumerate(results) if r is None)
        live: dict[int, _Live] = {}
        free = list(range(self.decoder.n_slots))
        while waiting or live:
            while free and waiting:
                i = waiting.popleft()
                job = jobs[i]
                slot = free.pop(0)
                rng = np.random.default_rng(job.seed) if job.temperature > 0 else None
                live[slot] = _Live(i, job, [], 0, rng, self._source(job, live))
            for entries, wanting in self._round(live):
                if any(e.seq not in live for e in entries):
                    continue  # its job failed in an earlier call of this round
                try:
                    rows = self.decoder.decode(entries)
                except Exception as exc:  # noqa: BLE001 - the jobs in the call fail, not all
                    for slot in {e.seq for e in entries}:
                        results[live[slot].index] = exc
                        self._release(slot, live, free)
                    continue
                self.steps += 1
                for slot, row in zip(wanting, rows, strict=True):
                    state = live[slot]
                    done: Done | BaseException | None
                    try:
                        done = self._advance(state, row)
                    except Exception as exc:  # noqa: BLE001 - one job's failure is its own
                        done = exc
                    if done is not None:
                        results[state.index] = done
                        self._release(slot, live, free)
                        if on_done is not None and isinstance(done, Done):
                            on_done(state.index, done)
        return [r if r is not None else RuntimeError("job not run") for r in results]

    def _share_prefix(self, jobs: Sequence[Job]) -> int:
        """Bring the holder sequence to the jobs' common prefix (at least one token of each
        prompt is left to its own slot, whose last position gives the first logits)."""
        first = jobs[0].tokens
        n = min(len(j.tokens) for j in jobs) - 1
        for j in jobs[1:]:
            n = min(n, common_prefix(first, j.tokens))
        prefix = list(first[: max(0, n)])
        keep = common_prefix(self.held, prefix)
        self.decoder.forget(self.holder, keep)
        self.held = self.held[:keep]
        step = self.decoder.batch_tokens
        try:
            for start in range(keep, len(prefix), step):
                chunk = prefix[start : start + step]
                ents = [Entry(t, start + k, self.holder, False) for k, t in enumerate(chunk)]
                self.decoder.decode(ents)
                self.held.extend(chunk)
        except BaseException:
            self.decoder.forget(self.holder)
            self.held = []
            raise
        return len(prefix)

    def _source(self, job: Job, live: dict[int, _Live]) -> tuple[int, int]:
        """Where a newly admitted job's cache is copied from, and how many positions: the
        holder (the prefix every job of the call shares) or, if longer, a live slot's prompt
        (the k samples of one prompt share all of it but its last token)."""
        best = (self.holder, self.shared)
        for slot, s in live.items():
            n = common_prefix(s.job.tokens[:-1], job.tokens[:-1])
            if n > best[1]:
                best = (slot, n)
        return best

    def _round(self, live: dict[int, _Live]) -> Iterator[tuple[list[Entry], list[int]]]:
        """One round's decode calls, each with the slots whose logits it returns. Each newly
        admitted slot first gets its copy of the shared part (in admission order, so a slot
        copied from another comes after that one's prompt is in), then its prompt but the
        last token in calls of its own; then one call carries a token for every slot: its
        prompt's last token, or the token it generated last. Every row of logits comes from
        that call, so a sequence's logits are computed the same way whether it runs alone or
        in a batch, first token or later."""
        size = self.decoder.batch_tokens
        for slot, s in list(live.items()):
            if s.source is None or live.get(slot) is not s:
                continue
            src, n = s.source
            if src != self.holder and src not in live:  # its source failed: the holder, then
                src, n = self.holder, self.shared
            self.decoder.forget(slot)
            self.decoder.share(src, slot, n)
            s.source, s.pending, s.pos = None, list(s.job.tokens[n:-1]), n
            while s.pending and live.get(slot) is s:
                take, s.pending = s.pending[:size], s.pending[size:]
                yield [Entry(t, s.pos + k, slot, False) for k, t in enumerate(take)], []
                s.pos += len(take)
        step = [
            (Entry(s.out[-1] if s.out else s.job.tokens[-1], s.pos, slot, True), slot)
            for slot, s in live.items()
        ]
        for _, slot in step:
            live[slot].pos += 1
        if step:
            yield [e for e, _ in step], [slot for _, slot in step]

    def _advance(self, s: _Live, row: np.ndarray) -> Done | None:
        """Take the sampled token; the result if the job is finished."""
        token = pick_token(row, s.job, s.rng)
        job = s.job
        if self.decoder.is_end(token):
            return self._done(s, "stop")
        s.out.append(token)
        s.logprob += token_logprob(row, token)
        if job.stop:
            text = self.decoder.text(s.out)
            cut = min((k for k in (text.find(x) for x in job.stop) if k >= 0), default=-1)
            if cut >= 0:
                return Done(text[:cut], len(s.out), len(job.tokens), "stop", s.logprob)
        if len(s.out) >= job.max_tokens:
            return self._done(s, "length")
        return None

    def _done(self, s: _Live, reason: str) -> Done:
        return Done(self.decoder.text(s.out), len(s.out), len(s.job.tokens), reason, s.logprob)

    def _release(self, slot: int, live: dict[int, _Live], free: list[int]) -> None:
        """Clear ``slot`` for the next job."""
        live.pop(slot)
        self.decoder.forget(slot)
        free.append(slot)
        free.sort()
