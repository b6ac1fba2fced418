"""Benchmark: are promptlathe's reported numbers honest?

For each task, runs ``optimize`` and its trust report, then prints one table: the winner's
validation score with its 95 % CI (what the search saw), the confirmation score, the PAC-Bayes
bound on the error, and the untouched test score. From it one reads the coverage of the CI
(is the test score inside?) and the optimism of the search (validation − test).

With ``--prescreen``, classification tasks are optimized a second time with the label-free MI
pre-screen (``--prescreen mi``), and the table says whether the screen kept the instruction of
the eventual winner and how many calls the search used with and without it.

With ``--from-runs DIR``, no optimization is run: the table is built from the finished runs
under ``DIR`` (every ``result.json`` below it, e.g. the promptlathe runs that
``bench/compare_dspy.py --workdir DIR`` keeps), and the bound is computed with the embedded
``--model`` (one scoring call per run).

Usage::

    python bench/trust.py [--model qwen2.5-coder-0.5b] [--budget 200] \
        [--tasks ape/negation,bbh/navigate,bbh/web_of_lies] [--prescreen]
    python bench/trust.py --from-runs /tmp/cmp/runs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from promptlathe import Prompt, optimize
from promptlathe._stats import wilson_interval
from promptlathe.analysis import occam_bound, prompt_log_prior
from promptlathe.errors import PromptlatheError
from promptlathe.lms import LM, get_lm
from promptlathe.optimizers import Optimization, OptimizeConfig
from promptlathe.report import AnalysisSizes, report_run
from promptlathe.tasks import load_examples

REPO = Path(__file__).resolve().parents[1]


def task_files(data: Path, name: str, tmp: Path, n_test: int, seed: int) -> tuple[Path, Path]:
    """(train file, test file); BBH has a test split only, so it is cut in two (seeded)."""
    suite, task = name.split("/")
    train = data / suite / f"{task}.train.jsonl"
    test = data / suite / f"{task}.test.jsonl"
    if train.is_file():
        return train, test
    rows = test.read_text().splitlines()
    order = np.random.default_rng(seed).permutation(len(rows))
    head, tail = order[:n_test], order[n_test:]
    meta = data / suite / f"{task}.meta.json"
    out_test, out_train = tmp / f"{task}.test.jsonl", tmp / f"{task}.train.jsonl"
    out_test.write_text("\n".join(rows[i] for i in head) + "\n")
    out_train.write_text("\n".join(rows[i] for i in tail) + "\n")
    if meta.is_file():
        (tmp / f"{task}.meta.json").write_text(meta.read_text())
    return out_train, out_test


def run_one(
    train: Path,
    test: Path,
    out: Path,
    args: argparse.Namespace,
    prescreen: str | None,
    report: bool = True,
):
    """Optimize (and, with ``report``, write the trust report); returns result, report, secs."""
    t0 = time.perf_counter()
    settings = dict(
        test=str(test),
        model=args.model,
        budget_calls=args.budget,
        out=str(out),
        max_tokens=args.max_tokens,
        seed=args.seed,
        prescreen=prescreen,
    )
    if args.proposer:
        settings["proposer_model"] = args.proposer
    result = optimize(str(train), **settings)
    if not report:
        return result, {}, time.perf_counter() - t0
    run = Optimization(OptimizeConfig.load(out / "config.json"), resume=True)
    try:
        report_run(run, AnalysisSizes().scaled(args.analysis_scale))
    finally:
        run.close()
    report = json.loads((out / "report.json").read_text())
    return result, report, time.perf_counter() - t0


def trust_row(name: str, result: dict, bound_error: float | None, seconds: float) -> dict:
    """One table row from a run's ``result.json`` contents."""
    best, test, seed_test = result["best"], result.get("test"), result.get("seed_test")
    lo, hi = wilson_interval(round(best["val"] * best["val_n"]), best["val_n"])
    t = test["accuracy"] if test else None
    return {
        "task": name,
        "val": best["val"],
        "val_n": best["val_n"],
        "val_ci": [lo, hi],
        "confirm": best.get("confirm"),
        "bound_error": bound_error,
        "test": t,
        "test_n": test["n"] if test else 0,
        "seed_test": seed_test["accuracy"] if seed_test else None,
        "covered": t is not None and lo <= t <= hi,
        "optimism": None if t is None else best["val"] - t,
        "calls": result["calls_used"],
        "seconds": seconds,
    }


def bound_error(lm: LM, result: dict) -> float:
    """The PAC-Bayes error bound of the run's winner on its validation score."""
    best = result["best"]
    log_prior = prompt_log_prior(lm, Prompt.from_dict(result["best_prompt"]))
    return occam_bound(1.0 - best["val"], best["val_n"], log_prior).error_bound


def rows_from_runs(root: Path, model: str) -> list[dict]:
    """Rows for every finished run below ``root``; the bound uses ``model``'s prior."""
    paths = sorted(root.rglob("result.json"))
    if not paths:
        raise SystemExit(f"--from-runs: no result.json of a finished run under {root}")
    rows = []
    with get_lm(model) as lm:
        for path in paths:
            try:
                result = json.loads(path.read_text())
                name = str(path.parent.relative_to(root)) or path.parent.name
                row = trust_row(name, result, bound_error(lm, result), result["wall_seconds"])
            except (ValueError, KeyError, TypeError) as exc:
                raise SystemExit(f"{path}: not a promptlathe result.json ({exc!r})") from None
            rows.append(row)
    return rows


def print_rows(rows: list[dict]) -> None:
    hdr = (
        f"{'task':<28}{'val (95% CI)':>26}{'confirm':>9}{'bound':>8}{'test':>8}"
        f"{'seed':>8}{'in CI':>7}{'val-test':>9}{'calls':>7}{'sec':>7}"
    )
    print(hdr)
    for r in rows:
        conf = "-" if r["confirm"] is None else f"{r['confirm']:.3f}"
        bnd = "-" if r["bound_error"] is None else f"{1 - r['bound_error']:.3f}"
        seed = "-" if r["seed_test"] is None else f"{r['seed_test']:.3f}"
        print(
            f"{r['task']:<28}{r['val']:>8.3f} [{r['val_ci'][0]:.3f},{r['val_ci'][1]:.3f}] "
            f"n={r['val_n']:<3}{conf:>9}{bnd:>8}{r['test']:>8.3f}{seed:>8}"
            f"{'yes' if r['covered'] else 'no':>7}{r['optimism']:>+9.3f}{r['calls']:>7}"
            f"{r['seconds']:>7.0f}"
        )
    cov = np.mean([r["covered"] for r in rows])
    opt = np.mean([r["optimism"] for r in rows])
    print(f"CI coverage {cov:.2f} over {len(rows)} tasks; mean optimism (val - test) {opt:+.3f}")
    print("bound column: the certified lower bound on accuracy (1 - PAC-Bayes error bound)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--proposer", default=None)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--tasks", default="ape/negation,bbh/navigate,bbh/web_of_lies")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--analysis-scale", type=float, default=0.5)
    ap.add_argument("--prescreen", action="store_true")
    ap.add_argument(
        "--no-report",
        dest="report",
        action="store_false",
        help="skip the HTML trust report (its format/POSIX/order analyses cost calls); "
        "the bound is still computed",
    )
    ap.add_argument("--json", default=None)
    ap.add_argument("--from-runs", type=Path, default=None, help="tabulate finished runs here")
    args = ap.parse_args()

    if args.from_runs is not None:
        rows = rows_from_runs(args.from_runs, args.model)
        print(f"finished runs under {args.from_runs}; bound prior from {args.model}")
        print_rows(rows)
        if args.json:
            Path(args.json).write_text(json.dumps({"rows": rows}, indent=2))
        return

    rows, screen_rows = [], []
    bound_lm: LM | None = None
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for name in args.tasks.split(","):
            train, test = task_files(Path(args.data), name, tmp, args.n_test, args.seed)
            out = tmp / "runs" / name.replace("/", "_")
            result, report, secs = run_one(train, test, out, args, None, args.report)
            t = result.test
            result_json = json.loads((out / "result.json").read_text())
            if args.report:
                err = (report.get("bound") or {}).get("error_bound")
            else:
                bound_lm = bound_lm or stack.enter_context(get_lm(args.model))
                err = bound_error(bound_lm, result_json)
            rows.append(trust_row(name, result_json, err, secs))
            labels = {e.target for e in load_examples(train)}
            if args.prescreen and len(labels) <= 20:
                out2 = tmp / "runs" / (name.replace("/", "_") + "_mi")
                r2, _, secs2 = run_one(train, test, out2, args, "mi", report=False)
                cands = json.loads((out2 / "candidates.json").read_text()).get("propose", {})
                kept = {s["instruction"]: s["kept"] for s in cands.get("prescreen", [])}
                winner_instr = result.best_prompt.instruction
                c1 = json.loads((out / "candidates.json").read_text()).get("propose", {})

                def race_calls(c: dict) -> int:
                    return (c.get("calls_after_race") or 0) - (c.get("calls_before_race") or 0)

                screen_rows.append(
                    {
                        "task": name,
                        "winner_instruction_screened": winner_instr in kept,
                        "kept_winner": kept.get(winner_instr, True),
                        "race_calls_without": race_calls(c1),
                        "race_calls_with": race_calls(cands),
                        "screen": cands.get("prescreen", []),
                        "screened_out": sum(not k for k in kept.values()),
                        "screened": len(kept),
                        "test_without": t.mean if t else None,
                        "test_with": r2.test.mean if r2.test else None,
                        "seconds_with": secs2,
                    }
                )

    print(f"model {args.model}, budget {args.budget} calls, seed {args.seed}")
    print_rows(rows)
    if screen_rows:
        print(
            f"\n{'task':<28}{'MI dropped':>11}{'winner kept by MI':>18}{'race calls w/o':>15}"
            f"{'with MI':>9}{'test w/o':>9}{'test with':>10}"
        )
        for s in screen_rows:
            kept = "n/a" if not s["winner_instruction_screened"] else str(s["kept_winner"])
            dropped = f"{s['screened_out']}/{s['screened']}"
            print(
                f"{s['task']:<28}{dropped:>11}{kept:>18}"
                f"{s['race_calls_without']:>15}{s['race_calls_with']:>9}"
                f"{s['test_without']:>9.3f}{s['test_with']:>10.3f}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "prescreen": screen_rows}, indent=2))


if __name__ == "__main__":
    try:
        main()
    except PromptlatheError as exc:  # bad options or data: one line, not a traceback
        raise SystemExit(f"error: {exc}") from None
