"""Optimizers as plug-ins: each is one module here that subclasses :class:`Optimizer` and
registers itself (``joint``, the default; ``reflect``). The framework (:class:`Optimization`)
owns the splits, the budget, confirmation, the test split and the artifact.

``optimize(...)`` is the one-call facade; :class:`Optimization` exposes the stages.
"""

from __future__ import annotations

from typing import Any

from promptlathe.lms import LM
from promptlathe.optimizers._budget import Budget
from promptlathe.optimizers._config import OptimizeConfig, Plan, make_plan
from promptlathe.optimizers._context import RunContext, SearchData
from promptlathe.optimizers._framework import Callback, Candidate, Optimization, OptimizeResult
from promptlathe.optimizers._protocol import OPTIMIZERS, Optimizer, optimizer_names, register
from promptlathe.optimizers._racing import Incumbent, RacingPruner, rungs_for, should_stop
from promptlathe.optimizers._runlog import LogEntry, RunLog


def optimize(
    task: str,
    *,
    resume: bool = False,
    callback: Callback | None = None,
    lm: LM | None = None,
    proposer_lm: LM | None = None,
    **settings: Any,
) -> OptimizeResult:
    """Find a better prompt for ``task``; see :class:`OptimizeConfig` for ``settings``
    (``optimizer="reflect"`` picks the reflective optimizer).

    Example::

        result = optimize("data/negation.train.jsonl", test="data/negation.test.jsonl",
                          model="qwen2.5-coder-0.5b", budget_calls=600, out="runs/negation",
                          optimizer="joint")
        print(result.test.mean, result.best_prompt_path)
    """
    cfg = OptimizeConfig(task=str(task), **settings)
    run = Optimization(cfg, resume=resume, callback=callback, lm=lm, proposer_lm=proposer_lm)
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
    "RacingPruner",
    "RunContext",
    "RunLog",
    "SearchData",
    "make_plan",
    "optimize",
    "optimizer_names",
    "register",
    "rungs_for",
    "should_stop",
]
