"""The same optimize run with 1 and with N worker processes on this machine, side by side.

Prints wall time, the ratio to one worker, calls used, the winner and its test score, from one
invocation (the runs go one after the other; nothing else should use the CPU meanwhile).
"share" threads: the default, the cores divided among the workers while they search.
``--postgres`` adds N workers whose study, budget and call cache live in one PostgreSQL
database (``--storage``): a throwaway server on 127.0.0.1 (needs the Debian package
``postgresql``), or the URL given.

    python bench/workers.py --budget 300 --workers 2 --oversubscribed --postgres
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def run(
    args: argparse.Namespace,
    workers: int,
    out: Path,
    threads: int | None = None,
    storage: str | None = None,
) -> dict:
    cmd = [
        sys.executable, "-m", "promptlathe.cli", "optimize",
        "--task", str(args.task), "--test", str(args.test),
        "--model", args.model, "--budget-calls", str(args.budget),
        "--workers", str(workers), "--no-report", "--no-progress", "--out", str(out),
        *(["--threads", str(threads)] if threads else []),
        *(["--storage", storage, "--study", "bench"] if storage else []),
    ]  # fmt: skip
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"error: workers={workers} failed: {r.stderr.strip().splitlines()[-1:]}")
    res = json.loads((out / "result.json").read_text())
    return {
        "workers": workers,
        "threads": threads or "share",
        "store": "postgres" if storage else "sqlite",
        "wall": wall,
        "calls": res["calls_used"],
        "trials": sum(res["trials"].values()),
        "test": res["test"]["accuracy"] if res["test"] else None,
        "winner": res["test"]["prompt_hash"] if res["test"] else "-",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", type=Path, default=DATA / "ape" / "negation.train.jsonl")
    p.add_argument("--test", type=Path, default=DATA / "ape" / "negation.test.jsonl")
    p.add_argument("--model", default="qwen2.5-coder-0.5b")
    p.add_argument("--budget", type=int, default=300)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--oversubscribed",
        action="store_true",
        help="also run N workers that each use every core (what --threads should avoid)",
    )
    p.add_argument(
        "--postgres",
        nargs="?",
        const="local",
        help="also run N workers on one PostgreSQL database (a URL, or a throwaway local server)",
    )
    args = p.parse_args()
    if args.workers < 2 or args.budget < 20:
        sys.exit("error: --workers must be >= 2 and --budget >= 20")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(args, w, Path(tmp) / f"w{w}") for w in (1, args.workers)]
        if args.oversubscribed:
            cores = os.cpu_count() or 2
            rows.append(run(args, args.workers, Path(tmp) / "over", threads=cores))
        if args.postgres:
            rows.append(postgres_row(args, Path(tmp) / "pg"))
    base = rows[0]["wall"]
    print(f"task {args.task.name}, model {args.model}, budget {args.budget} calls")
    head = f"{'workers':>7} {'threads':>8} {'store':>9} {'wall s':>8} {'vs 1':>6} {'calls':>6}"
    head += f" {'trials':>6}"
    print(f"{head} {'test':>6}  winner")
    for r in rows:
        test = "-" if r["test"] is None else f"{r['test']:.3f}"
        print(
            f"{r['workers']:>7} {r['threads']!s:>8} {r['store']:>9} {r['wall']:>8.1f} "
            f"{r['wall'] / base:>5.2f}x "
            f"{r['calls']:>6} {r['trials']:>6} {test:>6}  {r['winner']}"
        )


def postgres_row(args: argparse.Namespace, out: Path) -> dict:
    if args.postgres != "local":
        return run(args, args.workers, out, storage=args.postgres)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.postgres import postgres_server

    with postgres_server() as url:
        return run(args, args.workers, out, storage=url)


if __name__ == "__main__":
    main()
