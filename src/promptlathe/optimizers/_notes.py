"""What the result says about how the search went, beyond the scores: strategies the budget
never let the search finish, a winner whose exemplar pool grew once it was chosen, and a
winner whose answers were cut off by the output cap."""

from __future__ import annotations

from promptlathe.optimizers._context import RunContext
from promptlathe.optimizers._state import StrategyState
from promptlathe.prompts import Prompt
from promptlathe.records import EvalResult
from promptlathe.strategies import get_strategy


def shipped_notes(searched: Prompt, ship: Prompt) -> list[str]:
    """Says so when the prompt shipped is not the one searched (a ``knn_demos`` pool grown to
    every labeled example)."""
    if ship is searched:
        return []
    return [
        f"{ship.strategy.label()}: once chosen, the winner's pool grew from the "
        f"{len(searched.exemplars)} train examples it was searched with to all "
        f"{len(ship.exemplars)} labeled ones (train, validation, confirmation); its "
        "validation and confirmation scores are of the smaller pool, its test score of the "
        "prompt as shipped"
    ]


def strategy_notes(ctx: RunContext) -> list[str]:
    """Which searched strategies the budget never let the search race to a decision (with
    how far they got: their screen score, or the race the budget stopped)."""
    state = ctx.state(StrategyState)
    specs = list(state.strategies or [])
    seen: dict[str, tuple[float, int]] = {
        r.strategy: (r.score, r.n) for r in state.strategy_screen or []
    }
    entries = ctx.log.entries()
    raced = {e.to_prompt().strategy for e in entries if e.state in ("complete", "pruned")}
    for e in entries:  # races the budget stopped (longer than the screen)
        label = e.to_prompt().strategy.label()
        if e.state == "failed" and e.n > seen.get(label, (0.0, 0))[1]:
            seen[label] = (e.mean or 0.0, e.n)
    # knn_demos' k is the searched number of shots, not part of its choice
    names = {r.name for r in raced}
    untried = [
        s.label()
        for s in specs
        if s not in raced and not (get_strategy(s).demos == "pool" and s.name in names)
    ]
    if len(specs) < 2 or not untried:
        return []
    shown = [
        f"{u} ({seen[u][0]:.2f} on {seen[u][1]} examples when the budget ran out)"
        if u in seen
        else u
        for u in untried
    ]
    return [
        f"strategies the budget never let the search race to the end: {', '.join(shown)} "
        "(raise --budget-calls to race them)"
    ]


CAP_SHARE = 0.1
"""A winner's answers cut off by the output cap on at least this share of the test inputs
(and on at least :data:`CAP_MIN` of them) get a note."""
CAP_MIN = 3


def cap_notes(
    ship: Prompt, test: EvalResult | None, max_tokens: int, reasoning_tokens: int
) -> list[str]:
    """Says so when the winner's test answers often stopped at the output cap (a reasoned
    answer at ``--reasoning-tokens``, a direct one at ``--max-tokens``), with how many of
    those gave no answer: a cap too small for the task costs accuracy the search cannot
    win back. Reads the test records already made; no call."""
    if test is None:
        return []
    cut = [r for r in test.records if r.cut]
    if len(cut) < max(CAP_MIN, CAP_SHARE * test.n):
        return []
    reasoned = get_strategy(ship.strategy).reasoning
    option, cap = (
        ("--reasoning-tokens", reasoning_tokens) if reasoned else ("--max-tokens", max_tokens)
    )
    empty = sum(1 for r in cut if not r.answer.strip())
    right = sum(1 for r in cut if r.correct)
    return [
        f"{len(cut)} of the winner's {test.n} test answers stopped at the output cap "
        f"({option} {cap}): {empty} of them with no answer read, {right} right; a larger cap "
        "may score higher, at more tokens per input"
    ]
