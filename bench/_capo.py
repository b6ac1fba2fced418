"""CAPO (Zehle et al., AutoML 2025; the ``promptolution`` package) as a peer in the
comparison bench: joint instruction and exemplar search by an evolutionary algorithm that races
candidates on blocks of data with a paired test and penalizes prompt length.

It runs at promptolution's own defaults (``promptolution.utils.optimize``: a marker-based
predictor, the initial prompts written by the meta model from the task description, 10 steps;
CAPO's own defaults for everything else) but for one stop: with ``--capo-calls peers`` (the
default) it ends after the first step that brings its calls above the most any DSPy method
made on the task, through promptolution's own callback hook (as its ``TokenCountCallback``
stops on a token budget; the CAPO paper compares optimizers at a fixed budget). At
promptolution's 10 steps one task would cost several thousand calls: more hours on 2 CPU cores
than all other methods together. ``--capo-calls 0`` lifts the stop; ``--capo-calls N`` sets
it. Its global ``random`` (crossovers, mutations, shot counts) is seeded with ``--seed``.
It runs on the same servers as every other method: the task model answers, the proposer is
the meta model that writes the crossovers and mutations. The
data are the method's train and validation examples pooled (CAPO keeps 10 % of them for its
exemplars and races on blocks of the rest); the reward of an answer is the task's metric on
the text between the predictor's markers, as for every method. Its calls are counted by the
servers' access logs.

promptolution is a bench-only dependency; its requirements (pandas, openai, hydra-core) pull
versions the package does not pin, so install it apart from the development environment::

    python -m venv --system-site-packages /tmp/peers
    /tmp/peers/bin/pip install promptolution dspy
    /tmp/peers/bin/python bench/compare.py --methods capo,...
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from _peer_data import Row, TaskData
    from _peer_servers import Servers

CAPO_STEPS = 10
"""promptolution's ``optimize(n_steps=10)`` default."""


def import_promptolution() -> Any:
    try:
        import promptolution
    except ImportError:
        raise SystemExit(
            "the capo method needs promptolution, a bench-only dependency: pip install "
            "promptolution (in a separate environment: see bench/_capo.py)"
        ) from None
    return promptolution


def run_capo(t: TaskData, servers: Servers, args: argparse.Namespace, cap: int | None) -> Row:
    """CAPO's search on ``t``'s train + validation examples (stopped after the step that
    brings its calls above ``cap``), then its best prompt on test."""
    import pandas as pd
    from _peer_data import failed_row, log, make_row
    from promptolution.llms.api_llm import APILLM
    from promptolution.optimizers.capo import CAPO
    from promptolution.predictors.maker_based_predictor import MarkerBasedPredictor
    from promptolution.tasks.reward_tasks import RewardTask
    from promptolution.utils.callbacks import BaseCallback

    metric = t.metric
    task_server = servers.task
    meta_server = servers.proposer or task_server

    def frame(examples: list[Any]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "x": [e.input for e in examples],
                "y": [e.target for e in examples],
                "targets": [json.dumps(list(e.targets)) for e in examples],
            }
        )

    def reward(pred: str, targets: str) -> float:
        return float(metric(pred, json.loads(targets))[1])

    def task_for(examples: list[Any], strategy: str) -> Any:
        return RewardTask(
            frame(examples), reward, x_column="x", y_column="y", reward_columns=["targets"],
            task_description=t.instruction, eval_strategy=strategy, seed=args.seed,
        )  # fmt: skip

    def api(server: Any, max_tokens: int) -> Any:
        # One request at a time, as every other method sends them (the servers decode one).
        # Its timeouts are made for hosted APIs: on a CPU a racing batch (a block of 30
        # inputs for every candidate) takes longer than its 500 s, and CAPO would stop at
        # its first step, so only a hung server times out here.
        return APILLM(
            api_url=server.base_url, model_id=server.alias, api_key="none",
            max_concurrent_calls=1, max_tokens=max_tokens, call_timeout_s=900.0,
            gather_timeout_s=float(10**7),
        )  # fmt: skip

    llm = api(task_server, args.capo_max_tokens)
    meta = api(meta_server, args.proposer_max_tokens)
    predictor = MarkerBasedPredictor(llm)
    before = servers.posts()
    steps = [0]

    class CallCap(BaseCallback):
        """Stops CAPO after the step that brings its calls above ``cap`` (None: never)."""

        def on_step_end(self, optimizer: Any) -> bool:
            steps[0] += 1
            used = servers.posts() - before
            log(f"  capo: step {steps[0]} done, {used} calls")
            return cap is None or used <= cap

    random.seed(args.seed)
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            opt = CAPO(predictor=predictor, task=task_for(t.train + t.val, "sequential_block"),
                       meta_llm=meta, callbacks=[CallCap()])  # fmt: skip
            prompts = opt.optimize(n_steps=args.capo_steps)
    except Exception as exc:
        servers.check_alive()
        return failed_row(t.name, "capo", exc, servers.posts() - before, time.perf_counter() - t0)
    opt_secs = time.perf_counter() - t0
    opt_calls = servers.posts() - before
    best = prompts[0]
    before, t0 = servers.posts(), time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        result = task_for(t.test, "full").evaluate([best], predictor)
    scores = [float(s) for s in result.scores[0]]
    outputs = [str(x) for x in result.sequences[0]]
    return make_row(
        t.name, "capo", scores, outputs, opt_calls=opt_calls, test_calls=servers.posts() - before,
        opt_seconds=opt_secs, test_seconds=time.perf_counter() - t0,
        extra={
            "instruction": best.instruction,
            "n_demos": len(best.few_shots),
            "prompt": best.construct_prompt(),
            "steps": steps[0],
            "steps_asked": args.capo_steps,
            "call_cap": cap,
        },
    )  # fmt: skip
