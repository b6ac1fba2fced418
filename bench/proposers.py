"""Which proposer should a fresh install use? The same optimize runs with each proposer model.

For each task, one ``promptlathe optimize`` run per proposer (same task model, budget, seed and
splits), one after the other, then a table: test accuracy with its 95 % CI, calls, wall time,
whether the winner's instruction came from the proposer, and the winner's instruction.

    python bench/proposers.py --budget 300 --proposers qwen2.5-coder-0.5b qwen2.5-coder-1.5b

Default tasks: the README's main-job task (APE negation) and the first two APE tasks in
alphabetical order; nothing is chosen by how well a proposer does on it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TASKS = ("ape/negation", "ape/active_to_passive", "ape/cause_and_effect")


def run(args: argparse.Namespace, task: str, proposer: str, out: Path) -> dict:
    cmd = [
        sys.executable, "-m", "promptlathe.cli", "optimize",
        "--task", str(DATA / f"{task}.train.jsonl"), "--test", str(DATA / f"{task}.test.jsonl"),
        "--model", args.model, "--proposer-model", proposer,
        "--budget-calls", str(args.budget), "--seed", str(args.seed),
        "--no-report", "--no-progress", "--out", str(out),
    ]  # fmt: skip
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"error: {task} with {proposer}: {r.stderr.strip().splitlines()[-1:]}")
    res = json.loads((out / "result.json").read_text())
    best = json.loads((out / "best_prompt.json").read_text())
    cands = json.loads((out / "candidates.json").read_text()).get("propose", {})
    proposed = {
        c["instruction"] for c in cands.get("instructions") or [] if c.get("source") != "seed"
    }
    return {
        "test": res["test"]["accuracy"],
        "ci": res["test"]["ci95"],
        "seed_test": res["seed_test"]["accuracy"] if res.get("seed_test") else None,
        "calls": res["calls_used"],
        "wall": wall,
        "proposed": bool(best["instruction"]) and best["instruction"] in proposed,
        "instruction": best["instruction"],
        "n_exemplars": len(best["exemplars"]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS))
    p.add_argument("--model", default="qwen2.5-coder-0.5b")
    p.add_argument("--proposers", nargs="+", default=["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
    p.add_argument("--budget", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rows: dict[tuple[str, str], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            for proposer in args.proposers:
                out = Path(tmp) / f"{task.replace('/', '_')}-{proposer}"
                rows[task, proposer] = run(args, task, proposer, out)
                r = rows[task, proposer]
                print(f"done {task} {proposer}: {r['test']:.3f} in {r['wall']:.0f} s", flush=True)
    print(f"\ntask model {args.model}, budget {args.budget} calls, seed {args.seed}")
    print(f"{'task':<24}{'proposer':<22}{'test':>7}{'95% CI':>15}{'seed':>7}{'calls':>7}"
          f"{'wall s':>8}  winner")  # fmt: skip
    for (task, proposer), r in rows.items():
        lo, hi = r["ci"]
        src = "proposed" if r["proposed"] else "not proposed"
        seed = "-" if r["seed_test"] is None else f"{r['seed_test']:.2f}"
        print(
            f"{task:<24}{proposer:<22}{r['test']:>7.3f}   [{lo:.2f}, {hi:.2f}]{seed:>7}"
            f"{r['calls']:>7}{r['wall']:>8.0f}  {src}, {r['n_exemplars']} shots: "
            f"{r['instruction'][:60]!r}"
        )
    for proposer in args.proposers:
        mean = sum(r["test"] for (_, pr), r in rows.items() if pr == proposer) / len(args.tasks)
        wall = sum(r["wall"] for (_, pr), r in rows.items() if pr == proposer)
        print(f"mean test {proposer}: {mean:.3f} ({wall:.0f} s in all)")


if __name__ == "__main__":
    main()
