"""Benchmark: does a cascade over (model, prompt) steps spend the expensive model only where
it pays?

For every task, ``optimize_models`` (what ``promptlathe optimize --models`` runs) optimizes a
prompt for each model on an equal share of the budget, fits the cascade's thresholds on the
runs' validation split, judges it against the best single model on their confirmation split,
and answers a seeded test sample once with every step. One table from one run: per task and
per policy (each model's optimized prompt alone, the fitted cascade, and what the judge split
kept), test accuracy, cost per 1,000 inputs (embedded models' default prices: parameters in
billions per million input tokens, 3x for output tokens), and the share of inputs that went
past the first step. Then the means over tasks and the issue's targets: the kept policy
matches the expensive model's accuracy (within 1 point) at <= 60 % of its cost, or beats it by
>= 3 points at no more cost.

Usage::

    python bench/cascade.py [--models qwen2.5-coder-0.5b,qwen2.5-coder-1.5b] [--budget 400] \
        [--tasks ape/active_to_passive,...] [--n-test 100] [--strategies all] \
        [--workdir DIR] [--json F]

``--strategies`` is what every model's run searches (default: ``optimize``'s own default).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _tasks import task_files  # bench/ is on the path when a script in it runs

from promptlathe.cascade import optimize_models
from promptlathe.cascade._optimize import run_plain
from promptlathe.errors import PromptlatheError
from promptlathe.strategies import parse_strategies

REPO = Path(__file__).resolve().parents[1]
# Fixed before any result: two generation tasks (APE), two label tasks (BBH), and GSM8K.
TASKS = "ape/active_to_passive,ape/sum,bbh/hyperbaton,bbh/navigate,gsm8k/gsm8k"


def task_rows(name: str, done: Any, seconds: float) -> dict[str, Any]:
    """A task's row: each model's optimized prompt alone (``singles``, by model), every other
    step offered (``others``: a model's cheaper prompt), the fitted cascade and what was kept,
    on the test split."""
    fitted = done.fitted
    chosen = fitted.describe(fitted.chosen.policy)
    kept = fitted.describe(fitted.kept)
    # (prompt, model) pairs: two models whose runs both kept the seed share its hash.
    winners = {(r.best_prompt.hash, m) for m, r in done.runs.items()}
    singles, others = {}, {}
    for s, step in enumerate(fitted.steps):
        label = fitted.label(s)
        if (step.saved.prompt.hash, step.model) in winners:
            singles[step.model] = fitted.test[label]
        else:
            others[label] = fitted.test[label]
    return {
        "task": name,
        "singles": singles,
        "others": others,
        "chosen": fitted.test.get(chosen) if not fitted.chosen.policy.single else None,
        "kept_name": kept,
        "kept": fitted.test[kept],
        "verdict": fitted.verdict(),
        "seconds": seconds,
    }


def print_table(rows: list[dict[str, Any]], models: list[str]) -> None:
    head = f"{'task':<24}" + "".join(f"{m[:22]:>24}" for m in models)
    print(head + f"{'cascade (fitted)':>26}{'kept':>24}{'esc.':>6}")
    for r in rows:
        line = f"{r['task']:<24}"
        for m in models:
            s = r["singles"].get(m)
            line += f"{s['accuracy']:>10.2f} @ {s['cost'] * 1000:>9.4f}  " if s else f"{'-':>24}"
        c = r["chosen"]
        line += f"{c['accuracy']:>12.2f} @ {c['cost'] * 1000:>9.4f}  " if c else f"{'-':>26}"
        k = r["kept"]
        line += f"{k['accuracy']:>10.2f} @ {k['cost'] * 1000:>9.4f}  "
        line += f"{c['escalated']:>5.0%}" if c else f"{'-':>6}"
        print(line)
    print("(accuracy on the test sample @ cost per 1,000 inputs)")
    big = models[-1]
    have = [r for r in rows if big in r["singles"]]
    if not have:
        return
    acc_big = np.mean([r["singles"][big]["accuracy"] for r in have])
    cost_big = np.mean([r["singles"][big]["cost"] for r in have])
    acc_kept = np.mean([r["kept"]["accuracy"] for r in have])
    cost_kept = np.mean([r["kept"]["cost"] for r in have])
    print()
    print(f"mean over {len(have)} tasks: {big} alone {acc_big:.3f} at {cost_big * 1000:.4f}")
    print(f"                     kept policy   {acc_kept:.3f} at {cost_kept * 1000:.4f} "
          f"({cost_kept / cost_big:.0%} of its cost)")  # fmt: skip
    matched = acc_kept >= acc_big - 0.01 and cost_kept <= 0.6 * cost_big
    beaten = acc_kept >= acc_big + 0.03 and cost_kept <= cost_big
    print(
        "target (within 1 point at <= 60 % of the cost, or +3 points at no more cost): "
        + ("met" if matched or beaten else "not met")
    )
    for r in rows:
        print(f"  {r['task']}: {r['verdict']}")
        for label, o in r.get("others", {}).items():
            print(f"    also offered: {label} {o['accuracy']:.2f} @ {o['cost'] * 1000:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    ap.add_argument("--budget", type=int, default=400, help="calls, shared equally by models")
    ap.add_argument("--tasks", default=TASKS)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--proposer", default=None)
    ap.add_argument(
        "--strategies", default=None, help="strategies each model's run searches ('all', ...)"
    )
    ap.add_argument("--workdir", type=Path, default=None, help="keep the runs here")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.strategies:
        try:  # a bad name stops here, not as every task's "not run"
            parse_strategies(args.strategies.split(","))
        except PromptlatheError as exc:
            ap.error(str(exc))
    models = [m.strip() for m in args.models.split(",")]
    tasks = args.tasks.split(",")
    print(
        f"models {models}, budget {args.budget} calls per task, {len(tasks)} tasks, "
        f"strategies {args.strategies or 'the default'}"
    )
    rows: list[dict[str, Any]] = []
    done_before: dict[str, dict[str, Any]] = {}
    if args.json and Path(args.json).is_file():  # a stopped bench goes on from its --json
        done_before = {r["task"]: r for r in json.loads(Path(args.json).read_text())["rows"]}
        print(f"read back {len(done_before)} finished tasks from {args.json}")
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        work = args.workdir or tmp / "runs"
        # kept beside the runs, so a stopped run resumes with the same task files
        where = work / "_tasks" if args.workdir else tmp
        where.mkdir(parents=True, exist_ok=True)
        t_all = time.perf_counter()
        for name in tasks:
            if name in done_before:
                rows.append(done_before[name])
                continue
            train, test = task_files(Path(args.data), name, where, args.n_test, args.seed)
            settings: dict[str, Any] = dict(
                task=str(train), test=str(test), budget_calls=args.budget, seed=args.seed,
                out=str(work / name.replace("/", "_")),
            )  # fmt: skip
            if args.proposer:
                settings["proposer_model"] = args.proposer
            if args.strategies:
                settings["strategies"] = args.strategies.split(",")
            t0 = time.perf_counter()
            try:
                # a model's run the bench was stopped in continues (its calls are cached)
                done = optimize_models(
                    settings, models, run_one=lambda sub: run_plain(sub, resume=True)
                )
            except PromptlatheError as exc:
                print(f"  {name}: not run: {exc}", flush=True)
                continue
            rows.append(task_rows(name, done, time.perf_counter() - t0))
            print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps({"rows": rows}, indent=2) + "\n")
        print(f"all tasks: {time.perf_counter() - t_all:.0f} s\n")
    print_table(rows, models)


if __name__ == "__main__":
    try:
        main()
    except PromptlatheError as exc:
        raise SystemExit(f"error: {exc}") from None
