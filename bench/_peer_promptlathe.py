"""The comparison bench's own rows (bench/compare.py): the seed prompt zero-shot, and
promptlathe at its defaults with the budget the bench's rule gives it. Both reach the task
model through the same recording proxy as the peers, so their calls are counted the same
way."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

from _peer_data import Row, TaskData, failed_row, log, make_row, write_jsonl
from _peer_servers import Server, Servers

from promptlathe import Decoding, Evaluator, Prompt
from promptlathe.errors import PromptlatheError
from promptlathe.lms import get_lm


def run_seed(t: TaskData, server: Server, args: argparse.Namespace) -> Row:
    lm = get_lm(server.alias, base_url=server.base_url)
    before = server.posts()
    t0 = time.perf_counter()
    try:
        ev = Evaluator(lm, t.metric, Decoding(max_tokens=args.max_tokens, seed=args.seed))
        res = ev.evaluate(Prompt(instruction=t.instruction), t.test)
    finally:
        lm.close()
    secs = time.perf_counter() - t0
    posts = server.posts() - before
    return make_row(
        t.name,
        "seed",
        [r.score for r in res.records],
        [r.output for r in res.records],
        opt_calls=0,
        test_calls=posts,
        opt_seconds=0.0,
        test_seconds=secs,
        extra={"evaluator_calls": res.calls},
    )


def optimizer_api() -> tuple[Any, Any, Any]:
    """``optimize``, ``OptimizeConfig``, ``make_plan`` (the package was renamed once)."""
    try:
        from promptlathe.optimizers import OptimizeConfig, make_plan, optimize
    except ImportError:  # before the rename: promptlathe.optimize was the package
        from promptlathe.optimize import OptimizeConfig, make_plan, optimize  # type: ignore
    return optimize, OptimizeConfig, make_plan


def promptlathe_budget(
    peer_calls: list[int], n_pool: int, n_test: int, args: argparse.Namespace
) -> tuple[int, int]:
    """The budget rule, raised to the smallest budget promptlathe's planner accepts."""
    _, OptimizeConfig, make_plan = optimizer_api()

    if args.promptlathe_budget is not None:
        wanted = args.promptlathe_budget
    elif peer_calls:
        wanted = max(40, round(args.ratio * min(peer_calls)))
    else:
        wanted = 300
    for budget in range(wanted, wanted + 2000, 5):
        try:
            cfg = OptimizeConfig(task="pool.jsonl", budget_calls=budget, max_tokens=args.max_tokens)
            make_plan(cfg, n_pool, n_test, scoring=False)
            return wanted, budget
        except PromptlatheError as exc:
            error = exc
    raise error  # not a budget problem (e.g. too few examples to split)


def run_promptlathe(
    t: TaskData,
    servers: Servers,
    args: argparse.Namespace,
    work: Path,
    peer_calls: list[int],
    method: str = "promptlathe",
) -> Row:
    optimize = optimizer_api()[0]
    server = servers.task
    proposer = servers.proposer or server
    pool = write_jsonl(work / "data" / t.name / "pool.jsonl", t.train + t.val)
    test = write_jsonl(work / "data" / t.name / "test.jsonl", t.test)
    try:
        wanted, budget = promptlathe_budget(
            peer_calls, len(t.train) + len(t.val), len(t.test), args
        )
    except PromptlatheError as exc:
        return failed_row(t.name, method, exc, 0, 0.0)
    if budget != wanted:
        log(f"  promptlathe: budget {wanted} is below what its planner accepts; using {budget}")

    def progress(ev: dict[str, Any]) -> None:
        if args.verbose:
            log(f"  [{ev['stage']}] {ev['calls']}/{ev['budget']} {ev['message']}")

    out = work / "runs" / method / t.name
    # A run stopped midway starts again from nothing, as every method does: the proxy
    # replays its calls, and the proxy's count is what every method's calls are counted by.
    shutil.rmtree(out, ignore_errors=True)
    before, before_prop = servers.posts(), servers.proposer_posts()
    t0 = time.perf_counter()
    try:
        result = optimize(
            str(pool),
            test=str(test),
            model=server.alias,
            base_url=server.base_url,
            proposer_model=proposer.alias,
            proposer_base_url=proposer.base_url if servers.proposer else None,
            instruction=t.instruction,
            metric=t.metric.name,
            budget_calls=budget,
            out=str(out),
            max_tokens=args.max_tokens,
            seed=args.seed,
            callback=progress,
        )
    except Exception as exc:
        servers.check_alive()
        return failed_row(t.name, method, exc, servers.posts() - before, time.perf_counter() - t0)
    total_secs = time.perf_counter() - t0
    posts = servers.posts() - before
    proposer_calls = servers.proposer_posts() - before_prop
    assert result.test is not None
    seed_test = result.seed_test
    test_calls = result.test.calls
    seed_calls = seed_test.calls if seed_test is not None else 0
    test_secs = result.test.wall_seconds
    seed_secs = seed_test.wall_seconds if seed_test is not None else 0.0
    server_opt = posts - test_calls - seed_calls
    if server_opt != result.calls_used:
        log(
            f"  WARNING {method} on {t.name}: server saw {posts} requests, calls_used "
            f"{result.calls_used} + test {test_calls} + seed test {seed_calls}"
        )
    return make_row(
        t.name,
        method,
        [r.score for r in result.test.records],
        [r.output for r in result.test.records],
        opt_calls=server_opt,
        test_calls=test_calls,
        opt_seconds=total_secs - test_secs - seed_secs,
        test_seconds=test_secs,
        extra={
            "budget_wanted": wanted,
            "budget": budget,
            "calls_used": result.calls_used,
            "seed_test_accuracy": seed_test.mean if seed_test is not None else None,
            "seed_test_calls": seed_calls,
            "best_prompt": result.best_prompt.to_dict(),
            "val": result.best.val,
            "confirm": result.best.confirm,
            "plan": result.plan.as_dict(),
            "proposer_calls": proposer_calls,
            "notes": getattr(result, "notes", []),
        },
    )
