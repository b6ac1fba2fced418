"""Optimizers. The default: joint instruction × exemplar × format search with racing,
confirmation on held-out data and a hard call budget.

``optimize(...)`` is the one-call facade; :class:`Optimization` exposes the stages.
"""

from __future__ import annotations

from typing import Any

from promptlathe.lms import LM
from promptlathe.optimizers._budget import Budget
from promptlathe.optimizers._config import OptimizeConfig, Plan, make_plan
from promptlathe.optimizers._racing import Incumbent, RacingPruner, rungs_for, should_stop
from promptlathe.optimizers._run import Callback, Candidate, Optimization, OptimizeResult


def optimize(
    task: str,
    *,
    resume: bool = False,
    callback: Callback | None = None,
    lm: LM | None = None,
    proposer_lm: LM | None = None,
    **settings: Any,
) -> OptimizeResult:
    """Find a better prompt for ``task``; see :class:`OptimizeConfig` for ``settings``.

    Example::

        result = optimize("data/negation.train.jsonl", test="data/negation.test.jsonl",
                          model="qwen2.5-coder-0.5b", budget_calls=600, out="runs/negation")
        print(result.test.mean, result.best_prompt_path)
    """
    cfg = OptimizeConfig(task=str(task), **settings)
    run = Optimization(cfg, resume=resume, callback=callback, lm=lm, proposer_lm=proposer_lm)
    try:
        return run.run()
    finally:
        run.close()


__all__ = [
    "Budget",
    "Candidate",
    "Incumbent",
    "Optimization",
    "OptimizeConfig",
    "OptimizeResult",
    "Plan",
    "RacingPruner",
    "make_plan",
    "optimize",
    "rungs_for",
    "should_stop",
]
