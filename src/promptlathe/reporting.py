"""Terminal rendering: progress bars and result tables (rich), kept out of the library core."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from promptlathe.evaluator import EvalResult
from promptlathe.optimizers._runlog import describe_counts
from promptlathe.strategies import get_strategy

err_console = Console(stderr=True)
out_console = Console()


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


@contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[Any]:
    """Yields ``update(done, total)`` that drives a rich progress bar on stderr."""
    if not enabled:
        yield lambda done, total: None
        return
    with _progress() as prog:
        task = prog.add_task(escape(description), total=None)

        def update(done: int, total: int) -> None:
            prog.update(task, completed=done, total=total)

        yield update


@contextmanager
def stage_bars(enabled: bool = True) -> Iterator[Any]:
    """Yields ``say(stage, done, total)``: one progress bar per stage, on stderr, each
    added the first time its stage reports."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    with _progress() as prog:
        ids: dict[str, Any] = {}

        def say(stage: str, done: int, total: int) -> None:
            if stage not in ids:
                ids[stage] = prog.add_task(escape(stage), total=total)
            prog.update(ids[stage], completed=done, total=total)

        yield say


def eval_table(result: EvalResult, title: str = "Evaluation") -> Table:
    lo, hi = result.ci
    t = Table(title=title, show_header=True)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("accuracy", f"{result.mean:.3f}")
    t.add_row("95% CI (Wilson)", f"[{lo:.3f}, {hi:.3f}]")
    t.add_row("n", str(result.n))
    t.add_row("LM calls made", str(result.calls))
    t.add_row("served from cache", str(result.cache_hits))
    t.add_row("tokens (prompt + output)", f"{result.prompt_tokens} + {result.completion_tokens}")
    t.add_row("wall time", f"{result.wall_seconds:.1f} s")
    t.add_row("prompt hash", result.prompt_hash)
    return t


class OptimizeDisplay:
    """Progress of an optimization: calls used / budget, stage, best so far.

    On a terminal it is a live bar; elsewhere (a log file, CI, ``nohup``), or with
    ``enabled=False`` (``--no-progress``), it prints a plain line for every message and every
    tenth of a stage's progress. Events may carry ``done``
    and ``total`` for a stage's own progress (the test evaluation is outside the budget).
    """

    def __init__(self, budget: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.live = enabled and err_console.is_terminal
        self.budget = budget
        self._last_tenth: dict[str, int] = {}
        self._progress = Progress(
            TextColumn("[bold]{task.fields[stage]:<18}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} {task.fields[unit]}"),
            TextColumn("best {task.fields[best]}", markup=False),
            TimeElapsedColumn(),
            TextColumn("{task.fields[message]}", style="dim", markup=False),
            console=err_console,
        )
        self._task = self._progress.add_task(
            "optimize", total=budget, stage="starting", best="-", message="", unit="calls"
        )

    def __enter__(self) -> OptimizeDisplay:
        if self.live:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self._progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        best = event.get("best")
        ci = event.get("best_ci")
        best_s = "-" if best is None else f"{best:.3f}"
        if ci:
            best_s += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
        stage = str(event.get("stage", ""))
        message = str(event.get("message", ""))
        if event.get("total"):
            done, total, unit = int(event.get("done", 0)), int(event["total"]), "examples"
        else:
            done, total, unit = min(event.get("calls", 0), self.budget), self.budget, "calls"
        if self.live:
            self._progress.update(
                self._task,
                completed=done,
                total=total,
                unit=unit,
                stage=stage,
                best=best_s,
                message=message[:70],
            )
            return
        tenth = 10 * done // max(1, total)
        step = self._last_tenth.get(stage + unit, -1) != tenth
        if message or step:
            self._last_tenth[stage + unit] = tenth
            err_console.print(
                f"[{stage}] {done}/{total} {unit} · best {best_s}"
                + (f" · {message}" if message else ""),
                highlight=False,
                markup=False,
                soft_wrap=True,
            )


def optimize_table(result: Any) -> Table:
    """The final summary of an :class:`~promptlathe.optimizers.OptimizeResult`."""
    t = Table(title="Optimization result", show_header=True)
    t.add_column("")
    t.add_column("winner", overflow="fold")
    t.add_column("seed prompt", overflow="fold")
    best, seed = result.best, result.seed
    bp = result.best_prompt
    sp = seed.prompt if seed else None

    def fmt_prompt(p: Any) -> Text:
        if p is None:
            return Text("-")
        f = p.format
        strat = get_strategy(p.strategy)
        shots = (
            f"{strat.shots(p)} of {len(p.exemplars)} exemplars per input"
            if strat.demos == "pool"
            else f"{len(p.exemplars)} exemplars"
        )
        return Text(  # plain text: an instruction's [brackets] are not rich markup
            f"{p.instruction or '(no instruction)'}\n{shots} · "
            f"{f.mode} · {f.input_label!r}/{f.output_label!r} sep {f.separator!r}"
            f"\nstrategy: {p.strategy.label()}"
        )

    def score(v: float | None, n: int) -> str:
        return "-" if v is None or v != v else f"{v:.3f} (n={n})"

    def test_s(r: Any) -> str:
        if r is None:
            return "-"
        lo, hi = r.ci
        return f"{r.mean:.3f}  95% CI [{lo:.3f}, {hi:.3f}]  n={r.n}"

    t.add_row("prompt", fmt_prompt(bp), fmt_prompt(sp))
    t.add_row(
        "validation", score(best.val, best.val_n), score(seed.val, seed.val_n) if seed else "-"
    )
    t.add_row(
        "confirmation",
        score(best.confirm, best.confirm_n),
        score(seed.confirm, seed.confirm_n) if seed else "-",
    )
    t.add_row("[bold]test (untouched)", test_s(result.test), test_s(result.seed_test))
    if hasattr(result.test, "tokens_per_example") and hasattr(
        result.seed_test, "tokens_per_example"
    ):
        t.add_row(
            "tokens per test example",
            f"{result.test.tokens_per_example:.0f}",
            f"{result.seed_test.tokens_per_example:.0f}",
        )
    wb, sb = getattr(result, "baselines", None), getattr(result, "seed_baselines", None)
    if wb is not None and wb.balanced_accuracy is not None:
        t.add_row(
            "balanced accuracy",
            f"{wb.balanced_accuracy:.3f} (a constant: {wb.chance_balanced:.3f})",
            f"{sb.balanced_accuracy:.3f}" if sb and sb.balanced_accuracy is not None else "-",
        )
    # For open-ended tasks a constant answer scores ~0: the rows matter for classification,
    # or when the winner gives one answer to most inputs.
    if wb is not None and (
        wb.hollow or wb.balanced_accuracy is not None or wb.winner_top_share >= 0.5
    ):
        const = wb.best_constant if len(wb.best_constant) <= 40 else wb.best_constant[:39] + "…"
        t.add_row("best constant answer", Text(f"{const!r}: {wb.best_constant_accuracy:.3f}"), "")
        style = "bold red" if wb.hollow else ""
        t.add_row("verdict", Text(wb.verdict, style=style), "")
    t.add_row("LM calls", f"{result.calls_used} of budget {result.budget}", "")
    t.add_row(
        "candidates raced",
        describe_counts(result.trials) + f" ({result.optimizer})",
        "",
    )
    for note in result.notes:
        t.add_row("note", Text(note), "")
    return t
