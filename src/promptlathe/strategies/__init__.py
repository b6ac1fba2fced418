"""Run-time strategies: how a prompt answers one input (direct, chain of thought,
Plan-and-Solve, reasoned exemplars, self-consistency, choice shuffling, kNN exemplars).

Each is one module here that subclasses :class:`Strategy` and registers itself; a prompt
names its strategy (:class:`~promptlathe.prompts.StrategySpec`) and the evaluator executes
it."""

from __future__ import annotations

from promptlathe.strategies._protocol import (
    STRATEGIES,
    Call,
    Strategy,
    TaskView,
    get_strategy,
    majority,
    parse_strategies,
    register,
    search_specs,
    strategy_names,
    with_trigger,
)

__all__ = [
    "STRATEGIES",
    "Call",
    "Strategy",
    "TaskView",
    "get_strategy",
    "majority",
    "parse_strategies",
    "register",
    "search_specs",
    "strategy_names",
    "with_trigger",
]
