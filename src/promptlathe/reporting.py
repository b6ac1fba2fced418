"""Terminal rendering: progress bars and result tables (rich), kept out of the library core."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from promptlathe.evaluator import EvalResult

err_console = Console(stderr=True)
out_console = Console()


@contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[Any]:
    """Yields ``update(done, total)`` that drives a rich progress bar on stderr."""
    if not enabled:
        yield lambda done, total: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    ) as prog:
        task = prog.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            prog.update(task, completed=done, total=total)

        yield update


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
