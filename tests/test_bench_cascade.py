"""The cascade bench's per-task row: which steps are each model's optimized prompt."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))
from cascade import task_rows  # noqa: E402


class Fitted:
    def __init__(self, steps: list[Any]) -> None:
        self.steps = steps
        self.test = {
            f"{s.model}@{s.saved.prompt.hash}": {"accuracy": i / 10} for i, s in enumerate(steps)
        }
        self.chosen = NS(policy=NS(single=True))
        self.kept = f"{steps[-1].model}@{steps[-1].saved.prompt.hash}"

    def label(self, s: int) -> str:
        return f"{self.steps[s].model}@{self.steps[s].saved.prompt.hash}"

    def describe(self, policy: Any) -> str:
        return self.kept if policy is self.kept else "cascade"

    def verdict(self) -> str:
        return "the winner is b alone"


def step(model: str, prompt_hash: str) -> Any:
    return NS(model=model, saved=NS(prompt=NS(hash=prompt_hash)))


def test_two_models_that_both_kept_the_seed_each_get_their_own_column() -> None:
    # Both runs kept the seed prompt (one hash); b's run also offers a cheaper prompt.
    runs = {m: NS(best_prompt=NS(hash="seed")) for m in ("a", "b")}
    fitted = Fitted([step("a", "seed"), step("b", "cheap"), step("b", "seed")])
    row = task_rows("t", NS(fitted=fitted, runs=runs), 1.0)
    assert sorted(row["singles"]) == ["a", "b"]
    assert row["singles"]["a"]["accuracy"] == 0.0 and row["singles"]["b"]["accuracy"] == 0.2
    assert list(row["others"]) == ["b@cheap"]
