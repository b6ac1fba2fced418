"""Terminal rendering: text from users and models is printed as-is, never read as rich markup."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from promptlathe import Prompt
from promptlathe.reporting import OptimizeDisplay, optimize_table


def _render(renderable: object) -> str:
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(renderable)
    return buf.getvalue()


def test_optimize_table_keeps_brackets_in_instructions() -> None:
    cand = SimpleNamespace(val=0.5, val_n=10, confirm=0.4, confirm_n=10)
    seed = SimpleNamespace(val=0.1, val_n=10, confirm=0.2, confirm_n=10)
    seed.prompt = Prompt(instruction="Reply [yes] or [no].")
    test = SimpleNamespace(mean=0.5, ci=(0.3, 0.7), n=20)
    result = SimpleNamespace(
        best=cand,
        seed=seed,
        best_prompt=Prompt(instruction="Answer with [bold] [A], [B] or [red]."),
        test=test,
        seed_test=test,
        calls_used=40,
        budget=40,
        trials={"complete": 3},
    )
    text = _render(optimize_table(result))
    assert "Answer with [bold] [A], [B] or [red]." in text
    assert "Reply [yes] or [no]." in text


def test_progress_messages_keep_brackets(capsys) -> None:
    display = OptimizeDisplay(budget=10, enabled=False)
    display({"stage": "propose", "calls": 1, "message": "proposal: use [x] as the answer"})
    err = capsys.readouterr().err
    assert "[propose]" in err
    assert "use [x] as the answer" in err
