"""Benchmark: do promptlathe's reported numbers hold on data the search never saw?

For every (task, budget) of a sweep, runs ``optimize`` with an untouched test split and reads
what the run reports from its ``result.json``: the winner's validation score with its 95 %
Wilson interval (what the search saw), its confirmation score, and the holdout certificate
(the exact-binomial lower bound on its accuracy from the confirmation split, paying for the
choice among the finalists compared there; the one the trust report shows first). Then one
table, and the figures that say whether the numbers are honest:

- certificate coverage: in how many runs the test accuracy is at or above the certified lower
  bound (the certificate promises ≥ 95 %), with a Clopper–Pearson interval on that rate;
- coverage of the validation interval (the search picks the best of many, so it is
  optimistic) and the winner's optimism, validation − test, mean and spread;
- how often the certificate is non-vacuous (above the best constant answer's accuracy),
  among the runs whose winner is not hollow.

With ``--from-runs DIR`` nothing is optimized: the table is built from every ``result.json``
below ``DIR`` (the runs a previous sweep kept with ``--workdir``, or ``bench/compare.py``
runs). No model is loaded for it.

Usage::

    python bench/trust.py [--model qwen2.5-coder-0.5b] [--budgets 100,200] \
        [--tasks ape/negation,bbh/navigate] [--workdir DIR] [--json F]
    python bench/trust.py --from-runs DIR
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
from scipy.stats import binomtest

from promptlathe import optimize
from promptlathe._stats import wilson_interval
from promptlathe.errors import PromptlatheError
from promptlathe.report._run_report import holdout_certificate

REPO = Path(__file__).resolve().parents[1]


def default_tasks(data: Path) -> str:
    """Every third APE task and every fifth BBH task, in alphabetical order: a spread fixed
    before any result was seen (gsm8k's long answers are left to bench/strategies.py)."""

    def names(suite: str) -> list[str]:
        return sorted({p.name.split(".")[0] for p in (data / suite).glob("*.test.jsonl")})

    ape, bbh = names("ape")[::3], names("bbh")[::5]
    return ",".join([f"ape/{t}" for t in ape] + [f"bbh/{t}" for t in bbh])


def trust_row(name: str, result: dict[str, Any]) -> dict[str, Any] | None:
    """One table row from a run's ``result.json`` (``None``: no test split or no
    confirmation scores, so there is nothing to check)."""
    best, test = result["best"], result.get("test")
    cert = holdout_certificate(result)
    if not test or cert is None:
        return None
    t = float(test["accuracy"])
    # a seed that won having been stopped on its first rung has no validation score
    scored = bool(best.get("val_n")) and best["val"] == best["val"]
    lo, hi = (0.0, 1.0)
    if scored:
        lo, hi = wilson_interval(round(best["val"] * best["val_n"]), best["val_n"])
    baselines = result.get("baselines") or {}
    return {
        "run": name,
        "val": best["val"] if scored else None,
        "val_n": best["val_n"],
        "val_ci": [lo, hi] if scored else None,
        "confirm": cert.mean,
        "confirm_n": cert.n,
        "finalists": cert.finalists,
        "certified": cert.lower,
        "vacuous": cert.vacuous,
        "constant": baselines.get("best_constant_accuracy"),
        "hollow": bool(baselines.get("hollow")),
        "test": t,
        "test_n": test["n"],
        "cert_covers": t >= cert.lower,
        "val_covers": lo <= t <= hi if scored else None,
        "optimism": best["val"] - t if scored else None,
        "calls": result["calls_used"],
        "seconds": result.get("wall_seconds"),
    }


def rows_from_runs(root: Path) -> list[dict[str, Any]]:
    paths = sorted(root.rglob("result.json"))
    if not paths:
        raise SystemExit(f"--from-runs: no result.json of a finished run under {root}")
    rows = []
    for path in paths:
        try:
            row = trust_row(str(path.parent.relative_to(root)), json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"{path}: not a promptlathe result.json ({exc!r})") from None
        if row is not None:
            rows.append(row)
    return rows


def _rate(k: int, n: int) -> str:
    if n == 0:
        return "n/a (no runs)"
    ci = binomtest(k, n).proportion_ci(0.95, method="exact")
    return f"{k}/{n} = {k / n:.2f} (95 % CI {ci.low:.2f}-{ci.high:.2f})"


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'run':<32}{'val [95% CI]':<23}{'confirm':<11}{'k':>3}{'certified':>10}"
        f"{'const':>7}{'test':>7}{'cert ok':>8}{'in CI':>6}{'calls':>6}"
    )
    for r in rows:
        const = "-" if r["constant"] is None else f"{r['constant']:.2f}"
        cert = f"{r['certified']:.3f}" + ("v" if r["vacuous"] else " ")
        if r["val"] is None:
            val = f"{'- (seed, not scored)':<23}"
        else:
            val = f"{r['val']:>6.2f} [{r['val_ci'][0]:.2f},{r['val_ci'][1]:.2f}] n={r['val_n']:<3}"
        in_ci = {None: "-", True: "yes", False: "no"}[r["val_covers"]]
        print(
            f"{r['run']:<32}{val}{r['confirm']:>6.2f} n={r['confirm_n']:<3}{r['finalists']:>3}"
            f"{cert:>10}{const:>7}{r['test']:>7.2f}{'yes' if r['cert_covers'] else 'NO':>8}"
            f"{in_ci:>6}{r['calls']:>6}"
        )
    n = len(rows)
    if not n:
        print("no run had both a test split and confirmation scores")
        return
    cert_ok = sum(r["cert_covers"] for r in rows)
    with_val = [r for r in rows if r["val_covers"] is not None]
    val_ok = sum(r["val_covers"] for r in with_val)
    opt = np.array([r["optimism"] for r in with_val])
    solid = [r for r in rows if not r["hollow"]]
    useful = sum(not r["vacuous"] for r in solid)
    print()
    print(f"certificate coverage (test >= certified): {_rate(cert_ok, n)}; promised >= 0.95")
    print(f"validation CI coverage (test inside):      {_rate(val_ok, len(with_val))}")
    if len(opt):
        sd = opt.std(ddof=1) if len(opt) > 1 else 0.0
        print(
            f"optimism (val - test): mean {opt.mean():+.3f}, sd {sd:.3f}, "
            f"range {opt.min():+.2f} to {opt.max():+.2f} (over {len(opt)} runs whose winner "
            "has a validation score)"
        )
    print(
        f"non-vacuous certificate where the winner is not hollow: {_rate(useful, len(solid))}"
        f" ({n - len(solid)} hollow runs left out)"
    )
    print("k: finalists compared on confirmation; v: vacuous (<= best constant answer)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--proposer", default=None)
    ap.add_argument("--budgets", default="100,200", help="comma-separated call budgets")
    ap.add_argument("--tasks", default=None, help="suite/task,... (default: a fixed spread)")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--n-test", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the runs here")
    ap.add_argument("--json", default=None)
    ap.add_argument("--from-runs", type=Path, default=None, help="tabulate finished runs here")
    args = ap.parse_args()

    if args.from_runs is not None:
        rows = rows_from_runs(args.from_runs)
        print(f"finished runs under {args.from_runs}")
        print_rows(rows)
        if args.json:
            Path(args.json).write_text(json.dumps({"rows": rows}, indent=2))
        return

    budgets = [int(b) for b in args.budgets.split(",")]
    tasks = (args.tasks or default_tasks(Path(args.data))).split(",")
    print(f"model {args.model}, budgets {budgets}, {len(tasks)} tasks, seed {args.seed}")
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    unchecked: list[str] = []
    # a sweep resumed from its --json reads back what it finished (the run directories of
    # --workdir may be gone; the rows are all the table needs)
    done: dict[str, dict[str, Any]] = {}
    kept_not_run: list[str] = []
    if args.json and Path(args.json).is_file():
        kept = json.loads(Path(args.json).read_text())
        done = {r["run"]: r for r in kept.get("rows", [])}
        kept_not_run = kept.get("not_run", [])
        done.update({name: {} for name in kept_not_run + kept.get("unchecked", [])})
        unchecked += kept.get("unchecked", [])
        print(f"read back {len(done)} finished runs from {args.json}")
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        work = args.workdir or tmp / "runs"
        t_all = time.perf_counter()
        # the task files live beside the runs when they are kept, so a stopped run resumes
        # with the same files (a --resume with other task paths is refused)
        where = work / "_tasks" if args.workdir else tmp
        where.mkdir(parents=True, exist_ok=True)
        files = {n: task_files(Path(args.data), n, where, args.n_test, args.seed) for n in tasks}
        for budget in budgets:  # every task at the first budget, then the next
            for name in tasks:
                train, test = files[name]
                out = work / f"{name.replace('/', '_')}_b{budget}"
                t0 = time.perf_counter()
                if out.name in done:
                    rows += [done[out.name]] if done[out.name] else []
                    skipped += [out.name] if out.name in kept_not_run else []
                    continue
                if (out / "result.json").is_file():  # kept by an interrupted sweep: read it
                    row = trust_row(out.name, json.loads((out / "result.json").read_text()))
                    rows += [row] if row is not None else []
                    continue
                settings: dict[str, Any] = dict(
                    test=str(test), model=args.model, budget_calls=budget, out=str(out),
                    seed=args.seed,
                )  # fmt: skip
                if args.proposer:
                    settings["proposer_model"] = args.proposer
                # a run the sweep was stopped in continues where it was (its calls are cached)
                resume = (out / "config.json").is_file()
                try:
                    optimize(str(train), resume=resume, **settings)
                except PromptlatheError as exc:  # a task this budget cannot run: say so, go on
                    print(f"  {out.name}: not run: {exc}", flush=True)
                    skipped.append(out.name)
                    if args.json:
                        _save(args.json, rows, skipped, unchecked)
                    continue
                row = trust_row(out.name, json.loads((out / "result.json").read_text()))
                secs = time.perf_counter() - t0
                print(f"  {out.name}: {secs:.0f} s", flush=True)
                if row is not None:
                    rows.append(row)
                else:  # finished with nothing to check: listed, so a resume does not redo it
                    unchecked.append(out.name)
                if args.json:  # what is done so far survives an interrupted sweep
                    _save(args.json, rows, skipped, unchecked)
        print(f"sweep: {time.perf_counter() - t_all:.0f} s\n")
        if skipped:
            print(f"not run ({len(skipped)}): {', '.join(skipped)}\n")
    print_rows(rows)
    if args.json:
        _save(args.json, rows, skipped, unchecked)


def _save(path: str, rows: list[dict[str, Any]], skipped: list[str], unchecked: list[str]) -> None:
    body = {"rows": rows, "not_run": skipped, "unchecked": unchecked}
    Path(path).write_text(json.dumps(body, indent=2) + "\n")


if __name__ == "__main__":
    try:
        main()
    except PromptlatheError as exc:  # bad options or data: one line, not a traceback
        raise SystemExit(f"error: {exc}") from None
