"""``promptlathe status RUN_DIR``: how a run is doing, while it runs or after it stopped.

Reads the run directory (config, run log, budget counter, call times) and never loads a
model or writes anything."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from promptlathe._stats import wilson_interval
from promptlathe.cli._app import app
from promptlathe.errors import PromptlatheError
from promptlathe.optimizers import OptimizeConfig, RunLog
from promptlathe.optimizers._budget import Budget
from promptlathe.optimizers._lock import RunInUseError, RunLock
from promptlathe.optimizers._rundir import run_store
from promptlathe.optimizers._runlog import STATE_WORDS, describe_counts, state_counts
from promptlathe.prompts import Prompt
from promptlathe.reporting import out_console
from promptlathe.strategies import get_strategy


def _state(run_dir: Path) -> str:
    if (run_dir / "result.json").is_file():
        return "finished"
    try:
        RunLock.acquire(run_dir).release()
    except RunInUseError:
        return "running"
    return "stopped (resume it with the same command and --resume)"


def _minutes(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s"


def _shots(p: Prompt) -> int:
    return get_strategy(p.strategy).shots(p)


def _winner_line(path: Path) -> str:
    """The winner as the run chose it (validation and confirmation pooled, so not always
    the best on validation), with its confirmation and test scores."""
    from promptlathe.report import load_result

    try:
        result = load_result(path)
    except PromptlatheError as exc:  # the rest of the status still holds
        return f"  winner: not readable: {exc}"
    best, test = result["best"], result.get("test") or {}
    text = str(result["best_prompt"].get("instruction", ""))[:60]
    parts = [f"{_shots(Prompt.from_dict(result['best_prompt'], where=str(path)))} shots"]
    if best.get("confirm") is not None:
        parts.append(f"confirmation {best['confirm']:.3f} on {best.get('confirm_n', 0)}")
    if test.get("accuracy") is not None:
        parts.append(f"test {test['accuracy']:.3f} on {test.get('n', 0)}")
    return f"  winner: {text!r} ({', '.join(parts)})"


@app.command("status")
def status_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run directory made by optimize.")],
) -> None:
    """How a run is doing: calls used, stage, best so far, candidates, elapsed and projected
    time (while it runs or after it stopped)."""
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise PromptlatheError(f"{run_dir}: not an optimize run directory (no config.json)")
    cfg = OptimizeConfig.load(cfg_path)
    state = _state(run_dir)
    store = run_store(cfg, run_dir)
    try:
        used = store.reserved(Budget.NAME)
        entries = RunLog(store).entries()
        span = None if store.shared else store.call_span()
    finally:
        store.close()
    lines = [f"{run_dir}: {state}", f"  calls: {used} of {cfg.budget_calls} (search budget)"]
    if entries:
        last = entries[-1]
        last_state = STATE_WORDS.get(last.state, last.state)
        lines.append(f"  stage: {last.optimizer} (last raced: {last.source}, {last_state})")
        raced = describe_counts(state_counts(entries))
        lines.append(f"  candidates raced: {len(entries)} ({raced})")
        done = [e for e in entries if e.state == "complete" and e.scores]
        if done:
            best = max(done, key=lambda e: e.mean or 0.0)
            lo, hi = wilson_interval(sum(best.scores), len(best.scores))
            text = str(best.prompt.get("instruction", ""))[:60]
            shots = _shots(best.to_prompt())
            label = "best on validation" if state == "finished" else "best so far"
            lines.append(
                f"  {label}: {best.mean or 0.0:.3f} [{lo:.2f}, {hi:.2f}] on {best.n} "
                f"validation examples ({best.source}: {text!r}, {shots} shots)"
            )
    else:
        lines.append("  no candidate raced yet")
    if state == "finished":
        lines.append(_winner_line(run_dir / "result.json"))
    if span is not None:
        first, last_t, _ = span
        end = time.time() if state == "running" else last_t
        elapsed = max(0.0, end - first)
        line = f"  elapsed: {_minutes(elapsed)}"
        if state == "running" and 0 < used < cfg.budget_calls:
            line += f"; projected for the search: {_minutes(elapsed * cfg.budget_calls / used)}"
        lines.append(line)
    for line in lines:
        out_console.print(line, markup=False, highlight=False, soft_wrap=True)
