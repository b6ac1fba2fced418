"""The continuous-batching scheduler on a scripted decoder: outputs equal one-at-a-time
decoding, slots are refilled, finished sequences removed, results come back in input order,
and one job's failure does not lose the others' results."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest
from scipy.special import log_softmax

from promptlathe.lms._batching import (
    BatchScheduler,
    Done,
    Entry,
    Job,
    pick_token,
    token_logprob,
)

VOCAB = 32
END = 0


def next_logits(tokens: Sequence[int]) -> np.ndarray:
    """The scripted model: a favourite next token from the whole sequence, with noise that
    is a fixed function of the sequence (close runners-up, so sampling has real choices)."""
    digest = hashlib.sha256(bytes(t % 256 for t in tokens)).digest()
    noise = np.random.default_rng(int.from_bytes(digest[:8], "little")).normal(0, 1, VOCAB)
    logits = noise.astype(np.float32)
    logits[(sum(tokens) * 7 + len(tokens)) % 12] += 2.5
    return logits


class ScriptedDecoder:
    """Holds each sequence's tokens by position, as a KV cache would, and checks every call
    against what a real context accepts."""

    def __init__(self, n_slots: int = 4, capacity: int = 10_000, batch_tokens: int = 64):
        self.n_slots, self.capacity, self.batch_tokens = n_slots, capacity, batch_tokens
        self.seqs: dict[int, list[int]] = {}
        self.calls: list[list[Entry]] = []
        self.forgotten: list[int] = []
        self.poison: int | None = None  # a decode call carrying this token fails
        self.bad_end: int | None = None  # reading this token fails (one job's failure)

    def forget(self, seq: int, start: int = 0) -> None:
        self.seqs[seq] = self.seqs.get(seq, [])[:start]
        if start == 0 and seq != self.n_slots:
            self.forgotten.append(seq)

    def share(self, src: int, dst: int, n: int) -> None:
        assert not self.seqs.get(dst), "a slot is shared into only when empty"
        self.seqs[dst] = list(self.seqs[src][:n])

    def decode(self, entries: Sequence[Entry]) -> list[np.ndarray]:
        assert 0 < len(entries) <= self.batch_tokens
        live = {e.seq for e in entries if e.seq != self.n_slots}
        assert len(live) <= self.n_slots and all(0 <= s <= self.n_slots for s in live)
        if self.poison is not None and any(e.token == self.poison for e in entries):
            raise RuntimeError("decode failed")
        self.calls.append(list(entries))
        rows = []
        for e in entries:
            seq = self.seqs.setdefault(e.seq, [])
            assert e.pos == len(seq), f"seq {e.seq}: position {e.pos} after {len(seq)} tokens"
            seq.append(e.token)
            if e.logits:
                assert e.seq != self.n_slots, "the prefix holder never samples"
                rows.append(next_logits(seq))
        assert all(len(v) <= self.capacity for v in self.seqs.values())
        return rows

    def is_end(self, token: int) -> bool:
        if token == self.bad_end:
            raise ValueError("cannot read this token")
        return token == END

    def text(self, tokens: Sequence[int]) -> str:
        return " ".join(map(str, tokens))


def alone(job: Job) -> Done:
    """What decoding ``job`` by itself, one token at a time, gives."""
    seq = list(job.tokens)
    rng = np.random.default_rng(job.seed) if job.temperature > 0 else None
    out: list[int] = []
    lp = 0.0  # the generated tokens' log-probabilities
    while True:
        logits = next_logits(seq)
        tok = pick_token(logits, job, rng)
        if tok == END:
            return Done(" ".join(map(str, out)), len(out), len(job.tokens), "stop", lp)
        out.append(tok)
        lp += token_logprob(logits, tok)
        seq.append(tok)
        text = " ".join(map(str, out))
        hits = [k for k in (text.find(s) for s in job.stop) if k >= 0]
        if hits:
            return Done(text[: min(hits)], len(out), len(job.tokens), "stop", lp)
        if len(out) >= job.max_tokens:
            return Done(text, len(out), len(job.tokens), "length", lp)


PREFIX = tuple(range(1, 21))


def jobs(n: int, **kw: object) -> list[Job]:
    return [
        Job(PREFIX + tuple(3 + (i * 5 + k) % 20 for k in range(1 + i % 4)), **kw) for i in range(n)
    ]


def test_greedy_outputs_equal_one_at_a_time_and_come_back_in_order() -> None:
    work = jobs(11, max_tokens=12)
    dec = ScriptedDecoder(n_slots=4)
    results = BatchScheduler(dec).run(work)
    assert results == [alone(j) for j in work]  # tokens and their log-probabilities
    assert all(isinstance(r, Done) and r.logprob is not None for r in results)
    assert {r.finish_reason for r in results if isinstance(r, Done)} == {"stop", "length"}


def test_seeded_samples_are_the_same_alone_and_in_a_batch() -> None:
    work = [
        Job(j.tokens, 10, temperature=0.9, top_p=0.95, seed=i)
        for i, j in enumerate(jobs(9, max_tokens=10))
    ]
    batched = BatchScheduler(ScriptedDecoder(n_slots=3)).run(work)
    singly = [BatchScheduler(ScriptedDecoder(n_slots=3)).run([j])[0] for j in work]
    assert batched == singly == [alone(j) for j in work]
    greedy = [alone(Job(j.tokens, 10)) for j in work]
    assert batched != greedy, "sampling at temperature 0.9 differs from greedy somewhere"
    # one prompt, several seeds (self-consistency): different samples, each reproducible
    k = [Job(PREFIX, 10, temperature=0.9, seed=s) for s in range(5)]
    samples = BatchScheduler(ScriptedDecoder(n_slots=5)).run(k)
    assert len({r.text for r in samples if isinstance(r, Done)}) > 1


def test_the_shared_prefix_is_decoded_once_and_kept_for_the_next_batch() -> None:
    dec = ScriptedDecoder(n_slots=4)
    sched = BatchScheduler(dec)
    sched.run(jobs(6, max_tokens=5))
    holder = [e for call in dec.calls for e in call if e.seq == dec.n_slots]
    assert [e.token for e in holder] == list(PREFIX)  # once, not once per job
    before = len(dec.calls)
    sched.run(jobs(3, max_tokens=5))  # same prompt prefix: nothing of it is decoded again
    again = [e for call in dec.calls[before:] for e in call if e.seq == dec.n_slots]
    assert again == []
    other = [Job((1, 2, 99, 98, 97), 5), Job((1, 2, 99, 98, 96), 5)]
    before = len(dec.calls)
    assert sched.run(other) == [alone(j) for j in other]
    redone = [e.token for call in dec.calls[before:] for e in call if e.seq == dec.n_slots]
    assert redone == [99, 98]  # only what differs from the held prefix


def test_samples_of_one_prompt_decode_its_prompt_once() -> None:
    question = PREFIX + tuple(range(40, 70))
    work = [Job(question, 8, temperature=0.8, seed=s) for s in range(5)]
    work += [Job(PREFIX + (90, 91, 92), 8), Job(question + (71,), 8)]
    dec = ScriptedDecoder(n_slots=4)
    assert BatchScheduler(dec).run(work) == [alone(j) for j in work]
    prompt_rows = [e for call in dec.calls for e in call if not e.logits and e.seq != 4]
    # the question (30 tokens past the shared prefix) is decoded once for its five samples
    # and the longer prompt that begins with it, not once per job
    assert sum(e.token == 40 for e in prompt_rows) == 1
    assert len(prompt_rows) < 30 + 10


def test_slots_are_refilled_and_finished_sequences_removed() -> None:
    work = jobs(12, max_tokens=8)
    dec = ScriptedDecoder(n_slots=4)
    sched = BatchScheduler(dec)
    sched.run(work)
    live_per_call = [len({e.seq for e in call if e.seq != dec.n_slots}) for call in dec.calls]
    assert max(live_per_call) == 4
    # every job's sequence is cleared when it finishes (and before its slot is reused)
    assert len(dec.forgotten) >= 2 * len(work)
    assert all(not dec.seqs.get(s) for s in range(dec.n_slots))
    # far fewer calls than one job at a time would take (a token per job per call)
    one_by_one = sum(r.completion_tokens + 1 for r in map(alone, work))
    assert sched.steps < one_by_one / 2


def test_a_job_that_does_not_fit_a_sequences_cache_fails_alone() -> None:
    work = jobs(6, max_tokens=10)
    too_big = Job(tuple(range(1, 40)), 10)
    dec = ScriptedDecoder(n_slots=4, capacity=40)
    results = BatchScheduler(dec).run([*work, too_big])
    assert results[:-1] == [alone(j) for j in work]
    assert isinstance(results[-1], ValueError) and "does not fit" in str(results[-1])


def test_long_suffixes_are_split_over_calls_of_the_batch_size() -> None:
    work = [Job(PREFIX + tuple(range(30 + i, 60 + i)), 6) for i in range(4)]
    dec = ScriptedDecoder(n_slots=4, batch_tokens=16)
    assert BatchScheduler(dec).run(work) == [alone(j) for j in work]
    assert max(len(c) for c in dec.calls) == 16


def test_each_job_is_reported_the_moment_it_finishes() -> None:
    work = jobs(9, max_tokens=10)
    dec = ScriptedDecoder(n_slots=3)
    seen: list[tuple[int, int]] = []  # (job, decode calls made when it was reported)
    results = BatchScheduler(dec).run(work, lambda i, r: seen.append((i, len(dec.calls))))
    assert sorted(i for i, _ in seen) == list(range(9))
    assert len({calls for _, calls in seen}) > 1, "reported as they finish, not all at the end"
    for i, calls in seen:
        assert calls < len(dec.calls) or results[i] == alone(work[i])


def test_one_jobs_failure_keeps_the_others_results() -> None:
    work = jobs(8, max_tokens=12)
    reference = [alone(j) for j in work]
    culprit = next(i for i, r in enumerate(reference) if r.completion_tokens >= 3)
    dec = ScriptedDecoder(n_slots=3)
    dec.bad_end = int(reference[culprit].text.split()[0])
    results = BatchScheduler(dec).run(work)
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert culprit in failed
    for i, r in enumerate(results):
        if i not in failed:
            assert r == reference[i]
    assert len(failed) < len(work)


def test_a_failed_decode_call_fails_only_the_jobs_in_it() -> None:
    work = jobs(8, max_tokens=6)
    work[5] = Job(PREFIX + (31, 30), 6)  # admitted late; no other job has token 31
    dec = ScriptedDecoder(n_slots=2)
    dec.poison = 31
    results = BatchScheduler(dec).run(work)
    assert isinstance(results[5], RuntimeError)
    kept = [i for i, r in enumerate(results) if isinstance(r, Done)]
    assert kept and all(results[i] == alone(work[i]) for i in kept)
    assert {0, 1} <= set(kept)


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_pick_token_is_a_function_of_the_logits_and_the_generator(temperature: float) -> None:
    row = next_logits((1, 2, 3))
    job = Job((1,), 4, temperature=temperature, top_p=0.9, seed=7)
    a = [pick_token(row, job, np.random.default_rng(7)) for _ in range(3)]
    assert len(set(a)) == 1
    if temperature == 0:
        assert a[0] == int(np.argmax(row))
    draws = {pick_token(row, job, np.random.default_rng(s)) for s in range(200)}
    assert (len(draws) > 1) == (temperature > 0)
    order = np.argsort(-row)
    assert draws <= set(order[:40].tolist())


def test_a_tokens_log_probability_is_its_log_softmax() -> None:
    logits = next_logits([5, 6, 7])
    want = log_softmax(logits.astype(np.float64))
    for tok in (0, 3, int(np.argmax(logits))):
        assert token_logprob(logits, tok) == pytest.approx(want[tok], abs=1e-5)
    big = np.array([1000.0, 999.0, -1000.0], dtype=np.float32)  # no overflow
    assert token_logprob(big, 0) == pytest.approx(-np.log1p(np.exp(-1.0)), abs=1e-5)
