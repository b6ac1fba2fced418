"""Racing: score a candidate on growing minibatches and stop it as soon as it cannot win.

Every candidate sees the validation examples in the same order, so comparisons with the
incumbent are paired. A trial is pruned at a rung when

* it cannot beat the incumbent even if it got every remaining example right (futility), or
* a one-sided paired sign test over the examples seen so far says it is worse than the
  incumbent at level ``alpha``, or
* after at least ``ZERO_RUNG`` examples it has scored nothing, and either there is no
  incumbent yet or the incumbent scored nothing too (a tie at zero: in both cases more
  examples of a prompt that gets nothing right teach the search nothing) or a candidate as
  good as the incumbent would score nothing that often with probability below ``alpha`` (on
  a hard task, where the incumbent is right one time in sixteen, eight misses say nothing),
  or
* its 95 % Wilson upper bound is below the incumbent's lower bound.

Only contenders reach the full validation set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import optuna
from scipy.stats import binomtest

from promptlathe._stats import wilson_interval
from promptlathe.evaluator import Evaluator
from promptlathe.prompts import Prompt
from promptlathe.tasks import Example

ZERO_RUNG = 8
"""Examples a candidate sees before a zero score (or a hopeless bound) drops it."""


@dataclass(frozen=True)
class Incumbent:
    """The best fully evaluated candidate so far: its mean and per-example scores."""

    value: float
    scores: tuple[float, ...]


IncumbentFn = Callable[[], Incumbent | None]


@dataclass
class RaceOutcome:
    """What a race produced, filled in as it runs (so a race the budget stops still says how
    far it got). Optuna's trial attributes carry copies for the dashboard only.

    Attributes:
        state: ``running``, then ``complete``, ``pruned``, ``failed`` (the budget ran out),
            ``duplicate`` (raced before: its earlier scores) or ``skipped`` (another process
            is racing it).
        scores: per-example validation scores, in validation order.
        tokens_per_example: prompt + output tokens per example, every call of its strategy.
        stopped: why it was stopped early (the pruner's reason, or the cost cap).
    """

    state: str = "running"
    scores: tuple[float, ...] = ()
    tokens_per_example: float | None = None
    stopped: str = ""


def rungs_for(n_val: int, first: int = 8, factor: int = 2) -> list[int]:
    """Minibatch sizes ``first, first*factor, ...`` capped by, and ending at, ``n_val``."""
    out, r = [], max(1, first)
    while r < n_val:
        out.append(r)
        r *= factor
    out.append(n_val)
    return out


def should_stop(
    scores: Sequence[float], n_val: int, incumbent: Incumbent | None, alpha: float
) -> str | None:
    """Why a partially evaluated candidate should stop, or ``None`` to go on."""
    if not scores:
        return None
    n = len(scores)
    if incumbent is None:
        # The first candidate has nobody to beat; only nothing right is a reason to stop it
        # (a zero-shot seed on a small model would otherwise take all of validation to say 0).
        return f"scored 0 on {n} examples" if sum(scores) == 0 and n >= ZERO_RUNG else None
    best_possible = (sum(scores) + (n_val - n)) / n_val
    if best_possible <= incumbent.value:
        return f"cannot win: at most {best_possible:.3f} <= incumbent {incumbent.value:.3f}"
    if sum(scores) == 0 and n >= ZERO_RUNG:
        # All wrong so far. At a tie at zero it cannot show it beats the incumbent (that is
        # where a chatty output format blinds a search); against an incumbent that is right
        # at rate p, all wrong is evidence only when (1 - p) ** n is small.
        miss_all = (1.0 - min(max(incumbent.value, 0.0), 1.0)) ** n
        if incumbent.value <= 0 or miss_all < alpha:
            return f"scored 0 on {n} examples"
    if n >= ZERO_RUNG and incumbent.scores:
        upper = wilson_interval(sum(scores), n)[1]
        lower = wilson_interval(sum(incumbent.scores), len(incumbent.scores))[0]
        if upper < lower:
            return f"upper bound {upper:.3f} < incumbent's lower bound {lower:.3f}"
    if len(incumbent.scores) >= n:
        wins = sum(a > b for a, b in zip(scores, incumbent.scores, strict=False))
        losses = sum(a < b for a, b in zip(scores, incumbent.scores, strict=False))
        if losses > wins:
            p = binomtest(wins, wins + losses, 0.5, alternative="less").pvalue
            if p < alpha:
                return f"worse than incumbent on {n} paired examples (sign test p={p:.3f})"
    return None


class RacingPruner(optuna.pruners.BasePruner):
    """Optuna pruner applying :func:`should_stop` to the trial's ``scores`` user attribute.

    Args:
        n_val: size of the full validation set.
        incumbent: returns the current incumbent (may look across several studies).
        alpha: level of the paired sign test.
    """

    def __init__(self, n_val: int, incumbent: IncumbentFn, alpha: float = 0.1) -> None:
        self.n_val = n_val
        self.incumbent = incumbent
        self.alpha = alpha
        self.reasons: dict[int, str] = {}
        """Why each trial this process pruned was stopped, by trial number."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        scores = trial.user_attrs.get("scores") or []
        reason = should_stop(scores, self.n_val, self.incumbent(), self.alpha)
        if reason is not None:
            self.reasons[trial.number] = reason
        return reason is not None


def race(
    trial: optuna.Trial,
    prompt: Prompt,
    val: Sequence[Example],
    evaluator: Evaluator,
    rungs: Sequence[int],
    max_cost: float | None = None,
    out: RaceOutcome | None = None,
) -> float:
    """Evaluate ``prompt`` rung by rung, reporting to ``trial``; raises ``TrialPruned``.

    A candidate that costs more than ``max_cost`` tokens per example is stopped after its
    first rung, whatever its score (it could not be the winner). Records are persisted by
    the evaluator, so a re-raced prompt costs no new calls. ``out`` is filled in rung by
    rung (scores, tokens, and the reason it was stopped).
    """
    out = out if out is not None else RaceOutcome()
    trial.set_user_attr("prompt_hash", prompt.hash)
    trial.set_user_attr("prompt", prompt.to_dict())
    mean = 0.0
    for r in rungs:
        res = evaluator.evaluate(prompt, val[:r])
        scores = [rec.score for rec in res.records]
        mean = res.mean
        out.scores, out.tokens_per_example = tuple(scores), res.tokens_per_example
        trial.set_user_attr("scores", scores)  # read by the pruner; shown by the dashboard
        trial.set_user_attr("tokens_per_example", res.tokens_per_example)
        trial.report(mean, step=r)
        if max_cost is not None and res.tokens_per_example > max_cost:
            out.stopped = f"{res.tokens_per_example:.0f} tokens per example > {max_cost:g}"
            trial.set_user_attr("stopped", out.stopped)
            raise optuna.TrialPruned(f"over the cost cap at {r} examples")
        if r < len(val) and trial.should_prune():
            pruner = trial.study.pruner
            reasons = pruner.reasons if isinstance(pruner, RacingPruner) else {}
            out.stopped = reasons.pop(trial.number, f"pruned at {r} examples")
            trial.set_user_attr("stopped", out.stopped)
            raise optuna.TrialPruned(f"pruned at {r} examples with mean {mean:.3f}")
    return mean
