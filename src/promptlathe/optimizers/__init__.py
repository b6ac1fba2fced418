"""Optimizers as plug-ins: each is a stage, one module here that subclasses :class:`Optimizer`
and registers itself (``propose``, ``joint``, ``reflect``, ...); stages chain
(``optimizer="reflect,joint"``, the default). The framework (:class:`Optimization`) owns the
splits, the budget's ceiling, confirmation, the test split and the artifact.

``optimize(...)`` is the one-call facade; :class:`Optimization` exposes the stages.
"""

from __future__ import annotations

from typing import Any

from promptlathe.lms import LM
from promptlathe.optimizers._budget import Budget
from promptlathe.optimizers._config import OptimizeConfig
from promptlathe.optimizers._confirm import Candidate, choose_winner
from promptlathe.optimizers._context import RunContext, SearchData
from promptlathe.optimizers._framework import Callback, Optimization
from promptlathe.optimizers._plan import Plan
from promptlathe.optimizers._planning import make_plan
from promptlathe.optimizers._protocol import (
    OPTIMIZERS,
    Optimizer,
    optimizer_names,
    parse_chain,
    register,
)
from promptlathe.optimizers._racing import (
    Incumbent,
    RaceOutcome,
    RacingPruner,
    rungs_for,
    should_stop,
)
from promptlathe.optimizers._result import OptimizeResult
from promptlathe.optimizers._runlog import LogEntry, RunLog
from promptlathe.optimizers._state import STATE_VERSION, StageState


def optimize(
    task: str,
    *,
    resume: bool = False,
    callback: Callback | None = None,
    lm: LM | None = None,
    proposer_lm: LM | None = None,
    workers: int = 1,
    **settings: Any,
) -> OptimizeResult:
    """Find a better prompt for ``task``; see :class:`OptimizeConfig` for ``settings``
    (``optimizer="reflect,joint"`` reflects on failures before the joint search).
    ``workers=2`` runs the joint search in two processes (embedded models only load once per
    process; each gets its share of the cores).

    Example::

        result = optimize("data/negation.train.jsonl", test="data/negation.test.jsonl",
                          model="qwen2.5-coder-0.5b", budget_calls=600, out="runs/negation",
                          optimizer="propose,joint")
        print(result.test.mean, result.best_prompt_path)
    """
    cfg = OptimizeConfig(task=str(task), **settings)
    run = Optimization(
        cfg, resume=resume, callback=callback, lm=lm, proposer_lm=proposer_lm, workers=workers
    )
    try:
        return run.run()
    finally:
        run.close()


__all__ = [
    "OPTIMIZERS",
    "Budget",
    "Candidate",
    "Incumbent",
    "LogEntry",
    "Optimization",
    "OptimizeConfig",
    "OptimizeResult",
    "Optimizer",
    "Plan",
    "RaceOutcome",
    "RacingPruner",
    "RunContext",
    "RunLog",
    "STATE_VERSION",
    "StageState",
    "choose_winner",
    "parse_chain",
    "SearchData",
    "make_plan",
    "optimize",
    "optimizer_names",
    "register",
    "rungs_for",
    "should_stop",
]
