"""The comparison bench's summary (bench/_peer_report.py): the paired interval resamples each
task's test examples for both methods together, and a hollow row earns no credit."""

from __future__ import annotations

import sys
from pathlib import Path

# appended, not prepended: bench/ holds scripts named like packages (cascade, trust, ...)
sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))
from _peer_data import failed_row, make_row  # noqa: E402
from _peer_report import format_markdown, no_hollow_credit, paired_ci, summarize  # noqa: E402


def rows(method: str, *per_task: list[float], hollow: bool = False) -> list:
    out = []
    for i, scores in enumerate(per_task):
        r = make_row(f"t{i}", method, scores, [str(s) for s in scores], opt_calls=10,
                     test_calls=len(scores), opt_seconds=1.0, test_seconds=1.0)  # fmt: skip
        r.hollow = hollow
        out.append(r)
    return out


def test_paired_interval_excludes_zero_only_when_the_same_examples_differ_consistently() -> None:
    base = [1.0, 0.0] * 20
    better = rows("promptlathe", [1.0] * 40, [1.0] * 40)
    peer = rows("dspy-bfrs", base, base)
    lo, hi = paired_ci(better, peer)
    assert 0.3 < lo < 0.5 < hi < 0.7
    # the same accuracy on other examples: the pairing sees a difference on every example
    swapped = rows("promptlathe", [0.0, 1.0] * 20, [0.0, 1.0] * 20)
    lo, hi = paired_ci(swapped, peer)
    assert lo < 0 < hi


def test_rows_without_scores_give_no_interval() -> None:
    ours, theirs = rows("promptlathe", [1.0, 0.0]), rows("dspy-bfrs", [0.0, 0.0])
    ours[0].scores = []
    assert paired_ci(ours, theirs) is None


def test_a_hollow_row_gains_nothing_but_keeps_its_losses() -> None:
    peer = rows("dspy-bfrs", [0.0] * 4, [1.0] * 4)
    hollow = rows("promptlathe", [1.0] * 4, [0.0] * 4, hollow=True)
    assert no_hollow_credit(hollow, peer) == -0.5
    summary = summarize(hollow + peer, ["dspy-bfrs", "promptlathe"])
    assert summary["pairs"]["dspy-bfrs"]["wins"] == []
    assert "no credit for hollow rows: -50.0 points" in summary["line"]


def test_the_markdown_matrix_marks_hollow_and_failed_cells() -> None:
    ours = rows("promptlathe", [1.0, 1.0, 0.0, 0.0], hollow=True)
    crash = failed_row("t0", "dspy-gepa", RuntimeError("parse"), 7, 1.0)
    methods = ["dspy-gepa", "capo", "promptlathe"]
    table = format_markdown(ours + [crash], summarize(ours + [crash], methods))
    assert "| task | `dspy-gepa` | `promptlathe` |" in table  # capo never ran: no column
    assert "| t0 | failed (7) | 0.50* (10) |" in table
    assert "| **mean (tasks)** | - | **0.500** (1) |" in table
