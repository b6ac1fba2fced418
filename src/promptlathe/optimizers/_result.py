"""What an optimization produced (:class:`OptimizeResult`) and the files it is saved as:
``result.json`` (versioned), ``best_prompt.json`` and ``test_records.json``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from promptlathe.evaluator import Decoding, EvalResult
from promptlathe.metrics import Baselines, LabelMetric, Metric
from promptlathe.optimizers._config import OptimizeConfig
from promptlathe.optimizers._confirm import Candidate
from promptlathe.optimizers._plan import Plan
from promptlathe.prompts import Prompt

RESULT_VERSION = 2
"""The version of ``result.json`` (2: the optimizer is a chain of stages, e.g.
``propose,joint``; 1 had no version and named one optimizer)."""


@dataclass
class OptimizeResult:
    """What an optimization produced. ``test``/``seed_test`` are on the untouched test split."""

    best_prompt: Prompt
    run_dir: Path
    best: Candidate
    seed: Candidate | None
    test: EvalResult | None
    seed_test: EvalResult | None
    calls_used: int
    budget: int
    plan: Plan
    trials: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    confirmed: list[Candidate] = field(default_factory=list)
    baselines: Baselines | None = None
    seed_baselines: Baselines | None = None
    optimizer: str = "propose,joint"
    notes: list[str] = field(default_factory=list)

    @property
    def best_prompt_path(self) -> Path:
        return self.run_dir / "best_prompt.json"

    def summary(self) -> dict[str, Any]:
        def ev(r: EvalResult | None) -> dict[str, Any] | None:
            return None if r is None else r.summary()

        def scores(c: Candidate | None) -> dict[str, Any] | None:
            return None if c is None else {k: v for k, v in asdict(c).items() if k != "prompt"}

        return {
            "v": RESULT_VERSION,
            "best_prompt": self.best_prompt.to_dict(),
            "best": scores(self.best),
            "seed": scores(self.seed),
            "test": ev(self.test),
            "seed_test": ev(self.seed_test),
            "calls_used": self.calls_used,
            "budget": self.budget,
            "plan": self.plan.as_dict(),
            "trials": self.trials,
            "optimizer": self.optimizer,
            "notes": self.notes,
            "wall_seconds": self.wall_seconds,
            "baselines": self.baselines.to_dict() if self.baselines else None,
            "seed_baselines": self.seed_baselines.to_dict() if self.seed_baselines else None,
            "confirmed": [
                {"prompt": c.prompt.to_dict(), "prompt_hash": c.prompt.hash, **(scores(c) or {})}
                for c in self.confirmed
            ],
        }


def write_result(
    result: OptimizeResult,
    cfg: OptimizeConfig,
    metric: Metric,
    decode_labels: list[str] | None,
    decoding: Decoding,
) -> None:
    """Save the winner (``best_prompt.json``, with what ``run`` needs to execute it as it was
    evaluated), the test records and ``result.json`` in the run directory."""
    extra = {
        "optimizer": result.optimizer,
        "model": cfg.model,
        "base_url": cfg.to_dict()["base_url"],
        "metric": metric.name,
        **({"labels": metric.labels} if isinstance(metric, LabelMetric) else {}),
        **(
            {"decode": "labels", "decode_labels": decode_labels}
            if decode_labels is not None
            else {}
        ),
        "decoding": asdict(decoding),
        "scores": {
            "val": result.best.val,
            "val_n": result.best.val_n,
            "confirm": result.best.confirm,
            "test": result.test.mean if result.test else None,
            "test_ci95": list(result.test.ci) if result.test else None,
        },
    }
    result.best_prompt.save(result.best_prompt_path, **extra)
    if result.test is not None:
        rows = {"winner": result.test.to_dict()["records"]}
        if result.seed_test is not None:
            rows["seed"] = result.seed_test.to_dict()["records"]
        (result.run_dir / "test_records.json").write_text(
            json.dumps(rows, indent=1, ensure_ascii=False) + "\n"
        )
    (result.run_dir / "result.json").write_text(
        json.dumps(result.summary(), indent=2, ensure_ascii=False, default=str) + "\n"
    )
