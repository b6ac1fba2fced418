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
        trials={"complete": 3, "failed": 1},
        optimizer="reflect",
        notes=["reflect under-searched: only 1 round(s) [see the plan]"],
    )
    text = _render(optimize_table(result))
    assert "Answer with [bold] [A], [B] or [red]." in text
    assert "Reply [yes] or [no]." in text
    # a race the budget cut short is not shown as an error
    assert "complete 3, stopped by the budget 1 (reflect)" in text and "failed" not in text
    assert "reflect under-searched: only 1 round(s) [see the plan]" in " ".join(text.split())


def test_optimize_table_says_when_the_winner_is_no_better_than_a_constant() -> None:
    from promptlathe.analysis import trivial_baselines
    from promptlathe.metrics import get_metric

    targets = [["No"]] * 6 + [["Yes"]] * 4
    base = trivial_baselines(
        get_metric("label", ["Yes", "No"]),
        ["No", "Yes"] * 5,
        targets,
        ["No"] * 10,
        [1.0] * 6 + [0.0] * 4,
    )
    assert base is not None and base.hollow and base.best_constant == "No"
    assert base.balanced_accuracy == 0.5 and base.chance_balanced == 0.5
    cand = SimpleNamespace(val=0.6, val_n=10, confirm=0.6, confirm_n=10)
    test = SimpleNamespace(mean=0.6, ci=(0.3, 0.8), n=10)
    result = SimpleNamespace(
        best=cand,
        seed=None,
        best_prompt=Prompt(instruction="Answer [Yes] or [No]."),
        test=test,
        seed_test=None,
        calls_used=40,
        budget=40,
        trials={"complete": 3},
        optimizer="joint",
        notes=[],
        baselines=base,
        seed_baselines=None,
    )
    text = " ".join(_render(optimize_table(result)).split())
    assert "no better than always answering 'No'" in text
    assert "balanced accuracy" in text and "0.500" in text


def test_progress_messages_keep_brackets(capsys) -> None:
    display = OptimizeDisplay(budget=10, enabled=False)
    display({"stage": "propose", "calls": 1, "message": "proposal: use [x] as the answer"})
    err = capsys.readouterr().err
    assert "[propose]" in err
    assert "use [x] as the answer" in err
