"""Run-time strategies against each other and against the search that chooses among them.

Per task: test accuracy and tokens per example of every fixed strategy (the seed instruction
with that strategy), of ``optimize`` searching direct answers only (today's default), and of
``optimize --strategies all`` at the same call budget. Then the targets: the optimized mean
within 1 point of the best fixed strategy chosen in hindsight on test, and at least 5 points
above direct-only ``optimize``.

    python bench/strategies.py                      # 5 BBH tasks + GSM8K, 100 test each
    python bench/strategies.py --tasks bbh/navigate gsm8k/gsm8k --n-test 30
    python bench/strategies.py --table rows.json     # the table of a --json file, no model

Default tasks: the two BBH tasks where issue 12 saw the optimizer keep the seed (navigate,
snarks), the first three other BBH tasks in alphabetical order, and GSM8K; nothing is chosen
by how a strategy does on it. BBH has no train split: train, validation and test are carved
from its test file (disjoint), as in bench/compare.py. The seed instruction is the
task's own description from its meta file (empty for GSM8K). Run it alone on the machine.
With ``--work DIR`` a stopped run goes on where it was when given the same command again:
model calls are cached and optimize runs resume (the seconds printed are then this run's).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peer_data import TaskData, load_task, write_jsonl  # noqa: E402

from promptlathe.evaluator import Decoding, Evaluator  # noqa: E402
from promptlathe.lms import LM, CachedLM, get_lm  # noqa: E402
from promptlathe.optimizers import optimize  # noqa: E402
from promptlathe.optimizers._exemplars import bootstrap, labeled  # noqa: E402
from promptlathe.prompts import Exemplar, Prompt, StrategySpec  # noqa: E402
from promptlathe.store import Store  # noqa: E402
from promptlathe.strategies import TaskView, get_strategy  # noqa: E402
from promptlathe.tasks import load_examples  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TASKS = (
    "bbh/navigate",
    "bbh/snarks",
    "bbh/causal_judgement",
    "bbh/disambiguation_qa",
    "bbh/dyck_languages",
    "gsm8k/gsm8k",
)
FIXED = (
    "direct",
    "cot",
    "plan_and_solve",
    "cot_demos",
    "self_consistency:3",
    "self_consistency:5",
    "choice_shuffle:3",
    "knn_demos:3",
)


class KeepOpen(LM):
    """The one loaded model, shared by every run; a finished run cannot close it."""

    def __init__(self, inner: LM) -> None:
        self.inner = inner
        for attr in ("model_id", "context_window", "max_batch", "can_score"):
            setattr(self, attr, getattr(inner, attr))
        self.labels_in_one_pass, self.chat = inner.labels_in_one_pass, inner.chat

    def generate(self, requests):  # type: ignore[no-untyped-def]
        return self.inner.generate(requests)

    def score(self, requests):  # type: ignore[no-untyped-def]
        return self.inner.score(requests)

    def choose(self, requests):  # type: ignore[no-untyped-def]
        return self.inner.choose(requests)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def prompt_tokens(self, request):  # type: ignore[no-untyped-def]
        return self.inner.prompt_tokens(request)

    def close(self) -> None:
        pass


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rationale_demos(t: TaskData, ev: Evaluator, k: int) -> list[Exemplar]:
    """The task's rationale exemplars (BBH's few-shot file), else the model's own validated
    reasoning on train inputs."""
    suite, _, name = t.name.partition("/")
    fewshot = DATA / suite / f"{name}.fewshot.jsonl"
    if fewshot.is_file():
        rows = [e for e in load_examples(fewshot) if isinstance(e.extra.get("rationale"), str)]
        if rows:
            return [Exemplar(e.input, e.extra["rationale"]) for e in rows[:k]]
    teacher = Prompt(instruction=t.instruction, strategy=StrategySpec("cot"))
    return bootstrap(ev, teacher, t.train[: 4 * k])[:k]


def fixed_prompt(t: TaskData, spec: StrategySpec, ev: Evaluator, k: int) -> Prompt | None:
    strat = get_strategy(spec)
    view = TaskView([e.input for e in t.train], [e.target for e in t.train])
    if strat.applies(view) is not None:
        return None
    p = Prompt(instruction=t.instruction, strategy=spec)
    if strat.demos == "rationale":
        p = p.with_(exemplars=rationale_demos(t, ev, k))
    elif strat.demos == "pool":
        p = p.with_(exemplars=labeled(t.train + t.val))
    return p


def run_task(t: TaskData, lm: Any, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    # Model calls are cached (a stopped run resumes with none repeated); scores are not, so
    # a metric that changed since re-scores every answer.
    store = Store(work / "fixed.sqlite")
    ev = Evaluator(
        CachedLM(lm, store),
        t.metric,
        Decoding(max_tokens=args.max_tokens, reasoning_tokens=args.reasoning_tokens),
    )
    row: dict[str, Any] = {"task": t.name, "n_test": len(t.test), "fixed": {}, "notes": t.notes}
    for item in args.fixed:
        name, _, k = item.partition(":")
        spec = StrategySpec(name, int(k or 1))
        p = fixed_prompt(t, spec, ev, args.shots)
        if p is None:
            row["fixed"][spec.label()] = None
            continue
        t0 = time.perf_counter()
        res = ev.evaluate(p, t.test)
        row["fixed"][spec.label()] = {
            "acc": res.mean,
            "tokens": res.tokens_per_example,
            "secs": time.perf_counter() - t0,
            "scores": [r.score for r in res.records],  # test order, for the cross-fit pick
        }
        log(f"  {t.name} {spec.label():22s} {res.mean:.3f}  {res.tokens_per_example:7.0f} tok/ex")
    pool = write_jsonl(work / "pool.jsonl", t.train + t.val)
    test = write_jsonl(work / "test.jsonl", t.test)
    for mode, strategies in (("optimize direct", ["direct"]), ("optimize strategies", ["all"])):
        if args.fixed_only:
            row[mode] = None
            continue
        t0 = time.perf_counter()
        out = work / mode.replace(" ", "-")
        result = optimize(
            str(pool),
            test=str(test),
            lm=lm,
            model=args.model,
            instruction=t.instruction,
            metric=None,  # auto on the targets, as load_task chose t.metric
            budget_calls=args.budget,
            max_shots=args.shots,
            max_tokens=args.max_tokens,
            reasoning_tokens=args.reasoning_tokens,
            strategies=strategies,
            out=str(out),
            resume=(out / "config.json").exists(),  # a stopped bench goes on where it was
        )
        assert result.test is not None
        if result.baselines is not None:
            row["constant"] = {
                "answer": result.baselines.best_constant,
                "acc": result.baselines.best_constant_accuracy,
            }
        row[mode] = {
            "acc": result.test.mean,
            "tokens": result.test.tokens_per_example,
            "strategy": result.best_prompt.strategy.label(),
            "calls": result.calls_used,
            "hollow": bool(result.baselines and result.baselines.hollow),
            "secs": time.perf_counter() - t0,
        }
        log(
            f"  {t.name} {mode:22s} {result.test.mean:.3f}  "
            f"{result.test.tokens_per_example:7.0f} tok/ex ({row[mode]['strategy']}, "
            f"{result.calls_used} calls)"
        )
    store.close()
    return row


def cross_fit(fixed: dict[str, dict[str, Any] | None]) -> float | None:
    """Test accuracy of the fixed strategy picked on data rather than in hindsight: the best
    on the odd-numbered test examples is scored on the even-numbered ones, and the other way
    round (two-fold, no model call). The hindsight maximum over many columns is biased up by
    the pick itself; this is not."""
    runs = {k: v["scores"] for k, v in fixed.items() if v and v.get("scores")}
    if not runs:
        return None
    total, n = 0.0, 0
    for pick, score in ((1, 0), (0, 1)):
        best = max(runs, key=lambda k: sum(runs[k][pick::2]))  # a tie: the first column
        total += sum(runs[best][score::2])
        n += len(runs[best][score::2])
    return total / n


def table(rows: list[dict[str, Any]], fixed: list[str]) -> str:
    specs = [f.partition(":") for f in fixed]
    labels = [StrategySpec(name, int(k or 1)).label() for name, _, k in specs]
    cols = [*labels, "optimize direct", "optimize strategies"]
    lines = [
        "| task | "
        + " | ".join(cols)
        + " | best fixed (hindsight) | best fixed (cross-fit) | best constant |",
        "|---" * (len(cols) + 4) + "|",
    ]
    sums = {c: 0.0 for c in [*cols, "best", "cross", "constant"]}
    for r in rows:
        cells = []
        fixed_accs = {k: v["acc"] for k, v in r["fixed"].items() if v}
        for c in labels:
            v = r["fixed"].get(c)
            cells.append("n/a" if not v else f"{100 * v['acc']:.0f} ({v['tokens']:.0f})")
        for c in ("optimize direct", "optimize strategies"):
            v = r[c]
            if v is None:
                cells.append("-")
                continue
            hollow = ", hollow" if v.get("hollow") else ""
            cells.append(f"{100 * v['acc']:.0f} ({v['tokens']:.0f}; {v['strategy']}{hollow})")
            sums[c] += v["acc"]
        best = max(fixed_accs, key=lambda k: fixed_accs[k])
        sums["best"] += fixed_accs[best]
        cells.append(f"{100 * fixed_accs[best]:.0f} ({best})")
        cross = cross_fit(r["fixed"])
        sums["cross"] += cross or 0.0
        cells.append("-" if cross is None else f"{100 * cross:.0f}")
        const = r.get("constant")
        sums["constant"] += const["acc"] if const else 0.0
        cells.append("-" if not const else f"{100 * const['acc']:.0f} ({const['answer']!r})")
        lines.append(f"| {r['task']} | " + " | ".join(cells) + " |")
    n = max(1, len(rows))
    mean = {k: 100 * v / n for k, v in sums.items()}
    lines += [
        "",
        "cells: test accuracy % (tokens per example; the winner's strategy; hollow: no better "
        "than the best constant answer)",
    ]
    if any(r["optimize strategies"] is None for r in rows):
        return "\n".join(lines)
    # One strategy for every task, chosen in hindsight: the other reading of the target.
    overall = {
        c: sum(r["fixed"][c]["acc"] for r in rows) / n
        for c in labels
        if all(r["fixed"].get(c) for r in rows)
    }
    single = max(overall, key=lambda c: overall[c]) if overall else None
    opt, direct, best = mean["optimize strategies"], mean["optimize direct"], mean["best"]
    lines += [
        f"mean: optimize strategies {opt:.1f} · optimize direct {direct:.1f} · best fixed per "
        f"task in hindsight {best:.1f} · best fixed per task, cross-fit {mean['cross']:.1f} · "
        f"best constant {mean['constant']:.1f}",
    ]
    if single:
        lines.append(
            f"one fixed strategy for every task, best in hindsight: {single} "
            f"{100 * overall[single]:.1f}"
        )
    lines += [
        f"target 1 (within 1 point of best fixed per task in hindsight): {opt - best:+.1f} -> "
        f"{'met' if opt >= best - 1 else 'missed'}",
        f"target 2 (>= 5 points above direct-only optimize): {opt - direct:+.1f} -> "
        f"{'met' if opt - direct >= 5 else 'missed'}",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS))
    p.add_argument("--fixed", nargs="+", default=list(FIXED), help="name or name:k")
    p.add_argument("--model", default="qwen2.5-coder-0.5b")
    p.add_argument("--n-train", type=int, default=60)
    p.add_argument("--n-val", type=int, default=40)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--budget", type=int, default=300, help="LM calls of each optimize run")
    p.add_argument("--shots", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--reasoning-tokens", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--fixed-only", action="store_true", help="only the fixed strategies, no optimize runs"
    )
    p.add_argument("--work", type=Path, default=None, help="keep runs here (default: a temp dir)")
    p.add_argument("--json", type=Path, default=None, help="write the rows here too")
    p.add_argument(
        "--table",
        type=Path,
        default=None,
        metavar="JSON",
        help="only print the table of the rows a run wrote with --json (no model call)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table:
        try:
            rows = json.loads(args.table.read_text())
            text = table(rows, args.fixed)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            print(
                f"--table {args.table}: not the rows of a --json file ({type(exc).__name__}: "
                f"{exc})",
                file=sys.stderr,
            )
            return 2
        print(text)
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="pl-strategies-"))
    model = get_lm(args.model)
    lm = KeepOpen(model)
    rows = []
    t0 = time.perf_counter()
    for name in args.tasks:
        t = load_task(DATA, name, args.n_train, args.n_val, args.n_test, args.seed)
        log(f"{name}: {len(t.train)} train, {len(t.val)} val, {len(t.test)} test")
        rows.append(run_task(t, lm, args, work / name.replace("/", "-")))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"$ python bench/strategies.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    secs = time.perf_counter() - t0
    runs = "fixed strategies only" if args.fixed_only else f"optimize budget {args.budget} calls"
    print(f"model {args.model}, {runs}, {secs:.0f} s")
    print(table(rows, args.fixed))
    model.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
