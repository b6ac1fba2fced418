"""Run the trust analyses on a prompt and assemble the report from their results."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from promptlathe.analysis import (
    compare,
    format_spread,
    occam_bound,
    order_sensitivity,
    posix,
    prompt_log_prior,
    trivial_baselines,
)
from promptlathe.errors import PromptlatheError, PromptTooLongError
from promptlathe.evaluator import EvalResult, Evaluator
from promptlathe.formats import format_space
from promptlathe.lms import LM
from promptlathe.prompts import Prompt
from promptlathe.strategies import get_strategy
from promptlathe.tasks import Example

log = logging.getLogger("promptlathe.report")
Note = Callable[[str], None]


@dataclass(frozen=True)
class AnalysisSizes:
    """How much each analysis may spend (LM calls are cached, so a rerun is free).

    Attributes:
        format_calls: FormatSpread bandit budget (evaluated format × example pairs).
        n_formats: formats sampled from the grammar (the prompt's own format included).
        n_orders: exemplar permutations.
        order_examples: examples per permutation.
        posix_prompts: format variants for POSIX.
        posix_inputs: inputs for POSIX.
    """

    format_calls: int = 160
    n_formats: int = 8
    n_orders: int = 4
    order_examples: int = 40
    posix_prompts: int = 3
    posix_inputs: int = 6

    def max_calls(self) -> int:
        """An upper bound on the LM calls of :func:`analyze` beyond the two test evaluations:
        format spread, exemplar orders, POSIX (a generation and a score per prompt and input)
        and the bound's one score."""
        posix = 2 * self.posix_prompts * self.posix_inputs
        return self.format_calls + self.n_orders * self.order_examples + posix + 1

    def scaled(self, factor: float) -> AnalysisSizes:
        return AnalysisSizes(
            format_calls=max(16, int(self.format_calls * factor)),
            n_formats=self.n_formats,
            n_orders=self.n_orders,
            order_examples=max(4, int(self.order_examples * factor)),
            posix_prompts=self.posix_prompts,
            posix_inputs=max(2, int(self.posix_inputs * factor)),
        )


def _formats(prompt: Prompt, n: int, seed: int) -> list:
    space = format_space(prompt.format)
    rest = space[1:]
    idx = np.random.default_rng(seed).permutation(len(rest))[: max(0, n - 1)]
    return [space[0], *[rest[i] for i in sorted(idx)]]


def analyze(
    *,
    lm: LM,
    evaluator: Evaluator,
    winner: Prompt,
    baseline: Prompt | None,
    examples: Sequence[Example],
    val: tuple[float, int] | None = None,
    sizes: AnalysisSizes | None = None,
    seed: int = 0,
    note: Note | None = None,
    train_targets: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Significance, bound, format spread, POSIX and order sensitivity of ``winner``.

    Args:
        lm: the model (scoring is needed for the bound and POSIX; skipped if unsupported).
        evaluator: evaluates prompts (its store makes reruns free).
        winner: the prompt under analysis.
        baseline: what it is compared with (the seed prompt); ``None`` skips the comparison.
        examples: held-out labeled examples (the test split).
        val: ``(mean score, n)`` the search selected the winner on; the bound is computed on
            it (the bound holds for every prompt the search could have picked). Without it
            the bound uses ``examples``.
        sizes: analysis budgets.
        train_targets: targets of the training data, for the majority-label baseline
            (default: the examples' own).
    """
    sizes = sizes or AnalysisSizes()
    say = note or (lambda msg: None)
    out: dict[str, Any] = {}
    say(f"evaluating winner{' and baseline' if baseline else ''} on {len(examples)} examples")
    w_res: EvalResult = evaluator.evaluate(winner, examples)
    out["winner_records"] = w_res.to_dict()["records"]
    base = trivial_baselines(
        evaluator.metric,
        train_targets if train_targets is not None else [e.target for e in examples],
        [r.targets for r in w_res.records],
        [r.answer for r in w_res.records],
        [r.score for r in w_res.records],
    )
    out["baselines"] = base.to_dict() if base else None
    if baseline is not None:
        b_res = evaluator.evaluate(baseline, examples)
        out["baseline_records"] = b_res.to_dict()["records"]
        cmp = compare(
            [r.score for r in w_res.records],
            [r.score for r in b_res.records],
            seed=seed,
            names=("the winner", "the seed prompt"),
        )
        out["significance"] = cmp.to_dict()
    say("generalization bound (log-probability of the prompt text)")
    score_mean, n = val if val is not None else (w_res.mean, w_res.n)
    try:
        log_prior = prompt_log_prior(lm, winner)
        out["bound"] = occam_bound(1.0 - score_mean, n, log_prior).to_dict()
    except PromptTooLongError:
        pool = f", its {len(winner.exemplars)} exemplars included," if winner.exemplars else ""
        out["bound_note"] = (
            f"the prompt's full text{pool} is longer than the model's context window, so its "
            "prior cannot be scored"
        )
    except (NotImplementedError, PromptlatheError) as exc:
        out["bound_note"] = f"the backend cannot score log-probabilities ({exc})"
    # The sensitivity analyses use a seeded sample of the examples, not the file's first rows.
    order = np.random.default_rng(seed).permutation(len(examples))
    sample = [examples[i] for i in order]
    formats = _formats(winner, sizes.n_formats, seed)
    say(f"format spread over {len(formats)} formats (≤ {sizes.format_calls} calls)")
    out["format_spread"] = format_spread(
        evaluator, winner, sample, formats, budget_calls=sizes.format_calls, seed=seed
    ).to_dict()
    say("POSIX prompt sensitivity")
    try:
        variants = [winner.with_(format=f) for f in formats[: sizes.posix_prompts]]
        out["posix"] = posix(
            lm,
            variants,
            [e.input for e in sample[: sizes.posix_inputs]],
            max_tokens=evaluator.decoding.max_tokens,
        ).to_dict()
    except (NotImplementedError, PromptlatheError) as exc:
        out["posix_note"] = f"skipped: {exc}"
    # A pool strategy (kNN demos) picks and orders its exemplars per input: no order to vary.
    if len(winner.exemplars) > 1 and get_strategy(winner.strategy).demos != "pool":
        say(f"exemplar order sensitivity ({sizes.n_orders} orders)")
        out["order"] = order_sensitivity(
            evaluator,
            winner,
            sample[: sizes.order_examples],
            n_orders=sizes.n_orders,
            seed=seed,
        ).to_dict()
    out["sizes"] = asdict(sizes)
    return out
