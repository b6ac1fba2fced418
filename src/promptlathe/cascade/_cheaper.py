"""A cheaper prompt of the same model, as one more cascade step.

TREACLE's steps are (model, prompting scheme) pairs: a model's direct answer may be right on
most inputs for a fraction of what its reasoned answer costs, and the reasoned one is then
paid only where the direct one is unsure. So beside each model's winner, a cascade is offered
the best prompt of the same run that costs at most :data:`CHEAPER` of the winner's tokens per
example (fewer exemplars, no reasoning, one sample). It comes from the run's log, scored on
the whole validation split like the winner, so the fit split costs no new calls; whether it is
used is for the fit and the judge split to say, as for every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from promptlathe.optimizers import OptimizeConfig, OptimizeResult
from promptlathe.optimizers._rundir import run_store
from promptlathe.optimizers._runlog import LogEntry, RunLog
from promptlathe.prompts import Prompt

CHEAPER = 0.5
"""A prompt is offered as a cheaper step when its tokens per example are at most this share of
the winner's."""


@dataclass(frozen=True)
class Cheaper:
    """A prompt of a run cheaper than its winner: the prompt, its validation score and its
    tokens per example beside the winner's."""

    prompt: Prompt
    val: float
    val_n: int
    tokens: float
    winner_tokens: float

    def prompt_file(self, winner_file: dict[str, Any]) -> dict[str, Any]:
        """The JSON object of a prompt file for it: the winner's file (how the run evaluated
        its prompts: decoding, labels, model, metric) with this prompt and its own scores."""
        base = {k: v for k, v in winner_file.items() if k not in ("strategy", "scores")}
        return {
            **base,
            **self.prompt.to_dict(),
            "scores": {"val": self.val, "val_n": self.val_n},
        }


def cheaper_prompt(result: OptimizeResult, cfg: OptimizeConfig) -> Cheaper | None:
    """The best prompt of the run (``result``, made with ``cfg``) that was scored on all of
    validation, scored above 0 there and costs at most :data:`CHEAPER` of the winner's
    tokens per example; ``None`` if there is none or the winner's cost was not recorded."""
    store = run_store(cfg, result.run_dir)
    try:
        entries = RunLog(store).complete()
    finally:
        store.close()
    return pick_cheaper(entries, result.best.prompt.hash, result.best.tokens)


def pick_cheaper(
    entries: list[LogEntry], winner_id: str, winner_tokens: float | None
) -> Cheaper | None:
    """Of ``entries`` (complete run-log entries), the best cheap enough one (ties: the
    cheaper); see :func:`cheaper_prompt`."""
    if winner_tokens is None:
        winner_tokens = next((e.tokens_per_example for e in entries if e.id == winner_id), None)
    if not winner_tokens:
        return None
    cheap = [
        e
        for e in entries
        if e.id != winner_id
        and e.state == "complete"
        and (e.mean or 0.0) > 0.0
        and e.tokens_per_example is not None
        and e.tokens_per_example <= CHEAPER * winner_tokens
    ]
    if not cheap:
        return None
    best = max(cheap, key=lambda e: (e.mean or 0.0, -(e.tokens_per_example or 0.0)))
    return Cheaper(
        best.to_prompt(), best.mean or 0.0, best.n, best.tokens_per_example or 0.0, winner_tokens
    )
