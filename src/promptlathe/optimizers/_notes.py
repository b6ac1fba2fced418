"""What the result says about how the search went, beyond the scores: strategies the budget
never let the search finish, and a winner whose exemplar pool grew once it was chosen."""

from __future__ import annotations

from promptlathe.optimizers._context import RunContext
from promptlathe.optimizers._state import StrategyState
from promptlathe.prompts import Prompt
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
