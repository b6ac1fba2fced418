"""Benchmark: promptlathe against DSPy on the same model, data, splits and metric.

One ``python -m llama_cpp.server`` process serves the task model on 127.0.0.1 and, with
``--proposer-model``, a second one serves the proposer (the model that writes instructions:
MIPROv2's prompt model, GEPA's reflection LM, promptlathe's proposer). Every method talks to
them over HTTP, so LM calls are counted the same way for everyone: by the servers' access logs
(cross-checked against DSPy's LM callbacks and promptlathe's ``calls_used``). A method's
optimization calls are its task-model and proposer calls together.

Methods (each run on each task):

* ``seed``        -- the seed instruction zero-shot (promptlathe's Evaluator, HTTP backend);
* ``dspy-bfrs``   -- ``dspy.BootstrapFewShotWithRandomSearch`` on ``dspy.Predict``
  (signature ``input -> output``, instructions = the seed instruction);
* ``dspy-mipro``  -- ``dspy.MIPROv2(auto="light")``;
* ``dspy-gepa``   -- ``dspy.GEPA(auto="light")`` (reflection LM = the proposer) at its own
  budget (``--gepa-calls N`` caps its metric calls instead);
* ``capo``        -- CAPO from ``promptolution`` at its defaults (bench/_capo.py), the proposer
  as its meta model;
* ``promptlathe`` -- ``promptlathe.optimize`` at its defaults (``reflect,joint``, every
  strategy searched) with a call budget of ``max(40, ratio * calls of the cheapest peer on
  that task)``. Only the defaults run: choosing the better of several configurations by
  their test scores would flatter promptlathe.

DSPy and promptolution are bench-only dependencies, best installed apart from the development
environment (their requirements move shared packages such as click)::

    python -m venv --system-site-packages /tmp/peers
    /tmp/peers/bin/pip install dspy promptolution

Quick run (a few minutes on 2 CPU cores)::

    python bench/compare.py --model smollm2-135m --tasks ape/negation --n-train 12 \
        --n-val 8 --n-test 8 --bfrs-candidates 2 --methods seed,dspy-bfrs,promptlathe

The full default run (8 tasks, 50/50/100 examples, all methods) takes many hours on a CPU;
run it over several sittings with ``--workdir`` and ``--json`` (see below).
A stopped run resumes: the rows already in ``--json`` (same model, seed and splits) are read
back and not run again, and each task's peer calls are rebuilt from them, so the budget rule
gives promptlathe the same budget as in one sitting. The method that was running starts again,
but repeats no model call: every method reaches the servers through a recording proxy
(bench/_replay.py; its store is ``--workdir``/replay.sqlite) that replays the answers of the
earlier sitting, so a method that takes longer than one sitting finishes over several. Its row
counts every call and the time the replayed answers first took (``replayed_calls`` and
``replayed_seconds`` say how much of it came from an earlier sitting).
A run stopped for a while (``kill -STOP``, to measure something else) is told of each pause
by a line in ``--pauses FILE`` (bench/_pauses.py); rows and recorded answers leave the
pauses out of their seconds, and a row says how many it left out (``paused_seconds``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _capo import import_promptolution, run_capo  # bench/ is on the path when run
from _pauses import PauseLog
from _peer_data import (
    DSPY_METHODS,
    METHODS,
    PEER_METHODS,
    Row,
    load_task,
    log,
)
from _peer_dspy import DSPyHarness, import_dspy
from _peer_promptlathe import run_promptlathe, run_seed
from _peer_report import format_markdown, format_table, read_rows, report, summarize, write_json
from _peer_servers import Server, Servers
from _replay import Store

from promptlathe.lms import resolve_embedded

REPO = Path(__file__).resolve().parents[1]
# Fixed before any result, by a rule: in each suite, the first tasks in alphabetical order that
# bench/defaults.py (which chose promptlathe's defaults) did not use and that hold at least 100
# train and 100 test examples; four APE, three BBH, and GSM8K.
DEFAULT_TASKS = (
    "ape/active_to_passive,ape/diff,ape/letters_list,ape/num_to_verbal,"
    "bbh/disambiguation_qa,bbh/dyck_languages,bbh/formal_fallacies,gsm8k/gsm8k"
)


def split_replayed(
    task_times: list[float], seconds: float, replayed: int, row: Row
) -> tuple[float, float]:
    """A row's replayed seconds split into its optimization and test phases. A rerun replays
    in order, so the calls replayed past the row's optimization calls belong to its test
    phase, and are the task model's last replays: the first ``test_calls`` of them are the
    test, the rest (promptlathe's evaluation of the seed) count in neither phase."""
    k = max(0, min(replayed - row.opt_calls, len(task_times)))
    tail = task_times[len(task_times) - k :]
    return seconds - sum(tail), sum(tail[: row.test_calls])


def leave_out_pauses(row: Row, pauses: PauseLog, start: float, end: float) -> None:
    """Take the run's logged pauses between wall-clock ``start`` and ``end`` out of ``row``'s
    seconds: from its test phase those in its last ``test_seconds`` (the test runs last), from
    its optimization the rest. The row keeps its wall-clock span and the seconds taken out."""
    paused = pauses.within(start, end)
    row.extra["wall"] = [round(start, 1), round(end, 1)]
    if paused <= 0:
        return
    in_test = min(paused, pauses.within(end - row.test_seconds, end))
    row.test_seconds = max(0.0, row.test_seconds - in_test)
    row.opt_seconds = max(0.0, row.opt_seconds - (paused - in_test))
    row.extra["paused_seconds"] = round(paused, 1)


def capo_cap(args: argparse.Namespace, peer_calls: dict[str, int]) -> int | None:
    """The calls after which CAPO stops at the end of its step (``None``: no stop)."""
    if args.capo_calls == "peers":
        dspy_calls = [n for m, n in peer_calls.items() if m in DSPY_METHODS]
        return max(dspy_calls) if dspy_calls else None
    return int(args.capo_calls) or None


# ---- main -----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="qwen2.5-coder-0.5b", help="embedded model name")
    p.add_argument(
        "--proposer-model",
        default="qwen2.5-coder-1.5b",
        help="embedded model that writes instructions for every method ('' = the task model)",
    )
    p.add_argument(
        "--gepa-calls",
        type=int,
        default=None,
        help="dspy-gepa's max_metric_calls (default: its own budget, auto='light')",
    )
    p.add_argument("--tasks", default=DEFAULT_TASKS, help="comma-separated suite/task names")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=50)
    p.add_argument("--n-val", type=int, default=50)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--bfrs-candidates", type=int, default=16, help="DSPy's default: 16")
    p.add_argument("--capo-steps", type=int, default=10, help="promptolution's default: 10")
    p.add_argument(
        "--capo-calls",
        default="peers",
        help="stop CAPO after the step that brings its calls above this: 'peers' (the most "
        "calls a DSPy method made on the task), a number, or 0 for no stop (bench/_capo.py)",
    )
    p.add_argument(
        "--capo-max-tokens",
        type=int,
        default=256,
        help="max_tokens of CAPO's task-model answers (its prompts ask for reasoning, then the "
        "answer between markers)",
    )
    p.add_argument(
        "--ratio", type=float, default=0.5, help="promptlathe budget / the cheapest peer's calls"
    )
    p.add_argument(
        "--promptlathe-budget",
        type=int,
        default=None,
        help="fixed promptlathe budget (default: the --ratio rule; 300 without DSPy methods)",
    )
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument(
        "--proposer-max-tokens",
        type=int,
        default=256,
        help="max_tokens of MIPROv2's prompt model and GEPA's reflection LM",
    )
    p.add_argument("--n-ctx", type=int, default=4096)
    p.add_argument("--json", type=Path, default=None, help="write the table as JSON here")
    p.add_argument("--workdir", type=Path, default=None, help="keep run files here")
    p.add_argument("--verbose", action="store_true", help="promptlathe progress events")
    p.add_argument(
        "--pauses",
        type=Path,
        default=None,
        help="a log of pauses of this run (bench/_pauses.py); their time is left out of rows",
    )
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        p.error(f"--methods: unknown {bad}; choose from {','.join(METHODS)}")
    args.methods = [m for m in METHODS if m in methods]  # DSPy before promptlathe (budget)
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    try:  # a log that cannot be read fails here, not in the middle of a run
        PauseLog(args.pauses).pauses()
    except (OSError, ValueError) as exc:
        p.error(f"--pauses: {args.pauses}: {exc}")
    if args.capo_calls != "peers" and not args.capo_calls.isdigit():
        p.error(f"--capo-calls: {args.capo_calls!r} is not 'peers' or a whole number of calls")
    return args


def _sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    dspy = import_dspy() if any(m in DSPY_METHODS for m in args.methods) else None
    if "capo" in args.methods:
        import_promptolution()
    tasks = [
        load_task(args.data, name, args.n_train, args.n_val, args.n_test, args.seed)
        for name in args.tasks
    ]
    for t in tasks:
        for note in t.notes:
            log(f"note: {note}")
    model_path = resolve_embedded(args.model)
    rows: list[Row] = read_rows(args)
    done = {(r.task, r.method) for r in rows}
    if rows:
        log(f"resuming: {len(rows)} rows read back from {args.json}")
    if all((t.name, m) in done for t in tasks for m in args.methods):
        # nothing left to run: the table, and no server started (the file stays as it is)
        shown = [r for r in rows if r.task in {t.name for t in tasks}]
        summary = summarize(shown, args.methods)
        print(format_table(shown, summary), flush=True)
        print("\n" + format_markdown(shown, summary), flush=True)
        return 0

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="compare_")
        work = Path(tmp.name)
    else:
        work = args.workdir
        work.mkdir(parents=True, exist_ok=True)
    store = Store(work / "replay.sqlite")
    pauses = PauseLog(args.pauses)
    server = Server(model_path, args.model, args.n_ctx, work / "server.log", store, pauses)
    proposer = None
    if args.proposer_model and args.proposer_model != args.model:
        proposer_path = resolve_embedded(args.proposer_model)
        proposer = Server(
            proposer_path, args.proposer_model, args.n_ctx, work / "proposer.log", store, pauses
        )
    servers = Servers(server, proposer)
    dspy_version = None
    try:
        log(f"starting {args.model} server ({model_path.name}) on {server.base_url}")
        server.start()
        if proposer is not None:
            log(f"starting the proposer {args.proposer_model} on {proposer.base_url}")
            proposer.start()
        harness = DSPyHarness(dspy, servers, args) if dspy is not None else None
        dspy_version = harness.version if harness else None
        for t in tasks:
            peer_calls = {
                r.method: r.opt_calls
                for r in rows
                if r.task == t.name and r.method in PEER_METHODS and r.error is None
            }
            answer, constant = t.constant()
            log(f"{t.name}: the best constant answer {answer!r} scores {constant:.3f} on test")
            for method in args.methods:
                if (t.name, method) in done:
                    continue
                log(
                    f"{t.name}: {method} ({len(t.train)} train, {len(t.val)} val, "
                    f"{len(t.test)} test)"
                )
                servers.begin(f"{t.name}|{method}")
                replayed_calls0 = servers.replayed_calls()
                replayed_secs0 = servers.replayed_seconds()
                task_times0 = len(servers.task.replayed_times())
                wall0 = time.time()
                if method == "seed":
                    row = run_seed(t, server, args)
                elif method in DSPY_METHODS:
                    assert harness is not None
                    row = harness.run(method, t)
                elif method == "capo":
                    row = run_capo(t, servers, args, capo_cap(args, peer_calls))
                else:
                    row = run_promptlathe(t, servers, args, work, list(peer_calls.values()), method)
                leave_out_pauses(row, pauses, wall0, time.time())
                replayed = servers.replayed_calls() - replayed_calls0
                if replayed:
                    # answers an earlier sitting paid for: counted, and their time added
                    secs = servers.replayed_seconds() - replayed_secs0
                    task_times = servers.task.replayed_times()[task_times0:]
                    opt_secs, test_secs = split_replayed(task_times, secs, replayed, row)
                    row.opt_seconds += opt_secs
                    row.test_seconds += test_secs
                    row.extra.update(replayed_calls=replayed, replayed_seconds=round(secs, 1))
                    log(f"  ({replayed} calls replayed from an earlier sitting, {secs:.0f} s)")
                if row.error is None:
                    log(
                        f"  -> {100 * row.accuracy:.1f}% on {row.n}, {row.opt_calls} "
                        f"optimization calls, {row.opt_seconds:.0f} s"
                    )
                row.hollow = row.error is None and row.accuracy <= constant + 1e-9
                if method in PEER_METHODS and row.error is None:
                    peer_calls[method] = row.opt_calls
                rows.append(row)
                write_json(rows, args, model_path, dspy_version, partial=True)
    except BaseException:
        if tmp is not None:
            log(f"server log (tail):\n{server._tail(1500)}")
        if rows:
            log("interrupted; the rows finished so far:")
            report(rows, args, model_path, dspy_version, partial=True)
        raise
    finally:
        server.stop()
        if proposer is not None:
            proposer.stop()
        store.close()
        if tmp is not None:
            tmp.cleanup()
    report(rows, args, model_path, dspy_version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
