"""Confirmation: the top candidates of the run log and the seed re-scored on the confirmation
split (which no optimizer sees), and the winner chosen on validation and confirmation pooled."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from promptlathe.errors import BudgetExhausted
from promptlathe.evaluator import Evaluator
from promptlathe.optimizers._runlog import LogEntry
from promptlathe.prompts import Prompt
from promptlathe.tasks import Example


@dataclass
class Candidate:
    """A fully evaluated prompt with its validation and confirmation scores."""

    prompt: Prompt
    val: float
    val_n: int
    confirm: float | None = None
    confirm_n: int = 0
    source: str = ""
    tokens: float | None = None
    """Tokens per example (prompt + output, every call) when the run log recorded them."""
    confirm_scores: list[float] = field(default_factory=list)
    """Per-example confirmation scores, in the split's order (what the certificate reads)."""

    @property
    def pooled(self) -> float:
        """Mean over validation and confirmation examples together.

        Confirmation alone is unbiased but small; validation is larger but was used to pick
        the finalists. Pooling lets a clear validation lead survive a small confirmation
        dip, while a lead that was luck shrinks. (The untouched test split gives the score
        that is reported.)
        """
        parts = [
            (m, n)
            for m, n in ((self.val, self.val_n), (self.confirm, self.confirm_n))
            if m is not None and n and m == m
        ]
        total = sum(n for _, n in parts)
        return sum(m * n for m, n in parts) / total if total else 0.0

    @property
    def n(self) -> int:
        """Examples behind :attr:`pooled`."""
        return self.val_n + (self.confirm_n if self.confirm is not None else 0)


COSTLIER = 1.5
"""A candidate this many times the tokens per example of another counts as costlier."""


def choose_winner(contenders: list[Candidate], seed: Candidate | None) -> Candidate:
    """The best pooled score; on a near-tie, the cheaper candidate.

    The seed wins exact ties (a new prompt wins only on evidence). A candidate that costs at
    least :data:`COSTLIER` times the tokens of another must also beat it by more than one
    example of the pooled count: a reasoning strategy that ties a direct answer at three
    times the tokens is not a win.
    """
    best = max(contenders, key=lambda c: (c.pooled, c is seed, c.val))
    if best.tokens is None:
        return best
    margin = 1.0 / max(best.n, 1) + 1e-9
    cheaper = [
        c
        for c in contenders
        if c.tokens is not None
        and c.tokens * COSTLIER <= best.tokens
        and c.pooled >= best.pooled - margin
    ]
    return max(cheaper, key=lambda c: (c.pooled, c is seed, c.val)) if cheaper else best


def with_cut_leader(
    entries: Sequence[LogEntry],
    stopped: Sequence[LogEntry],
    first_rung: int,
    emit: Callable[..., None] = lambda *_a, **_k: None,
) -> list[LogEntry]:
    """``entries`` (complete, best first) with, in second place, the race the budget stopped
    that leads on its own examples: of the ``stopped`` races (state ``failed``) that passed
    their second rung (at least twice ``first_rung`` examples), the best whose mean beats
    the leader's on the same first examples (races walk validation in one order). A search
    that ends on its best candidate otherwise never confirms it. Unchanged if none leads;
    ``emit`` says when one is added."""
    if not entries:
        return list(entries)
    lead, listed = entries[0], {x.id for x in entries}
    ahead = [
        e
        for e in stopped
        if e.state == "failed"
        and e.n >= 2 * first_rung
        and e.n < lead.n
        and e.id not in listed
        and (e.mean or 0.0) > sum(lead.scores[: e.n]) / e.n
    ]
    if not ahead:
        return list(entries)
    best = max(ahead, key=lambda e: (e.mean or 0.0, e.n))
    emit(
        "confirm",
        f"the race the budget stopped at {best.n} validation examples led there "
        f"({best.mean or 0.0:.3f}): it is a finalist",
    )
    return [lead, best, *entries[1:]]


def confirm(
    entries: Sequence[LogEntry],
    seed_prompt: Prompt,
    evaluator: Evaluator,
    examples: Sequence[Example],
    top_n: int,
    emit: Callable[..., None],
) -> tuple[Candidate, Candidate, list[Candidate]]:
    """Re-score the first ``top_n`` of ``entries`` (complete run-log entries, best first) and
    the seed on the confirmation ``examples``; returns the winner, the seed and the pool."""
    cands = [
        Candidate(
            e.to_prompt(),
            e.mean or 0.0,
            e.n,
            source=f"{e.source} {e.id[:8]}",
            tokens=e.tokens_per_example,
        )
        for e in entries
    ]
    seed = next((c for c in cands if c.prompt.hash == seed_prompt.hash), None)
    if seed is None:
        seed = Candidate(seed_prompt, float("nan"), 0, source="seed")
    if not cands:
        return seed, seed, [seed]
    top = cands[:top_n]
    pool = top + ([seed] if seed not in top else [])
    if not examples:
        return top[0], seed, pool
    emit("confirm", f"confirming {len(pool)} candidates on {len(examples)} examples")
    # The seed right after the leader: if a costly strategy (k samples per input) spends
    # the reserve, the leader has still been compared with the seed.
    rest = [c for c in pool[1:] if c is not seed]
    for c in [top[0], *([seed] if seed is not top[0] else []), *rest]:
        try:
            res = evaluator.evaluate(c.prompt, examples)
        except BudgetExhausted:
            break
        c.confirm, c.confirm_n = res.mean, res.n
        c.confirm_scores = [r.score for r in res.records]
        if c.tokens is None and res.n:
            c.tokens = res.tokens_per_example
    confirmed = [c for c in top if c.confirm is not None] or top[:1]
    # The seed is one more candidate, judged the same way; on a tie it stays (a new
    # prompt wins only on evidence), and on a near-tie the cheaper one wins.
    contenders = confirmed + ([seed] if seed.confirm is not None and seed not in top else [])
    return choose_winner(contenders, seed), seed, pool
