"""Run a cascade on new inputs, as it was evaluated: every input goes to the first step; an
answer whose confidence is below its step's threshold is not kept and the input goes on to
the next step; the last step always answers. A later step runs only on the inputs that reach
it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptlathe.cascade._answers import Step, StepAnswer, answer_step
from promptlathe.cascade._file import read_cascade
from promptlathe.cascade._open import open_evaluators
from promptlathe.cascade._policy import Policy, value
from promptlathe.evaluator import Evaluator
from promptlathe.metrics import Metric, get_metric
from promptlathe.prompts import read_prompt_file
from promptlathe.tasks import Example


@dataclass(frozen=True)
class CascadeAnswer:
    """One input's answer: the step that gave it (0-based), its confidence (``None``: not
    measured, as for the last step's generated answers, which nothing reads), and the cost
    of every step the input went through."""

    answer: str
    step: int
    confidence: float | None
    cost: float


def run_cascade(
    steps: Sequence[Step],
    policy: Policy,
    evaluators: Sequence[Evaluator],
    queries: Sequence[str],
) -> list[CascadeAnswer]:
    """The answers of ``policy`` over ``steps`` to ``queries``, in order (``evaluators[i]``
    runs ``steps[i]``); a step runs only on the inputs that reach it."""
    if len(evaluators) != len(steps):
        raise ValueError("a cascade needs an evaluator per step")
    paid = [0.0] * len(queries)
    final: list[CascadeAnswer | None] = [None] * len(queries)
    previous: dict[int, StepAnswer] = {}
    open_ = list(range(len(queries)))
    for j, s in enumerate(policy.steps):
        if not open_:
            break
        last = j == len(policy.steps) - 1
        # the last step always answers: its confidence is not read, so not paid for
        answers = answer_step(
            steps[s], evaluators[s], [queries[i] for i in open_], confidence=not last
        )
        still = []
        for i, a in zip(open_, answers, strict=True):
            paid[i] += a.cost_at(last)
            if last or value(a, previous.get(i), policy.gate(j)) >= policy.thresholds[j]:
                conf = a.confidence if a.measured else None
                final[i] = CascadeAnswer(a.answer, s, conf, paid[i])
            else:
                previous[i] = a
                still.append(i)
        open_ = still
    return [a for a in final if a is not None]


def run_cascade_file(
    path: Path,
    texts: Sequence[str],
    *,
    metric: str | None = None,
    n_ctx: int = 4096,
    parallel: int = 16,
    cache: Path | None = None,
    data: dict[str, Any] | None = None,
) -> list[CascadeAnswer]:
    """A cascade file's answers to ``texts``; the file is checked whole before any model
    loads. Answers are read by ``metric`` (a name or ``module:function`` the caller typed)
    or the file's built-in one (a file never names code that runs)."""
    steps, policy, named = _load(path, data)
    labels = steps[-1].saved.fields.labels
    scorer = get_metric(metric or named, labels, allow_code=metric is not None, source=str(path))
    with open_evaluators(steps, scorer, n_ctx, parallel, [cache] * len(steps)) as evaluators:
        return run_cascade(steps, policy, evaluators, texts)


def _load(path: Path, data: dict[str, Any] | None = None) -> tuple[list[Step], Policy, str | None]:
    """A cascade file's steps, its policy and the metric it names (``data``: the file's
    content, already read)."""
    raw = read_prompt_file(path) if data is None else data
    steps, policy = read_cascade(path, raw)
    return steps, policy, raw.get("metric") if isinstance(raw.get("metric"), str) else None


@dataclass(frozen=True)
class CascadeEval:
    """A cascade file scored on labeled examples: each example's answer and score, and the
    share of examples each step answered."""

    answers: list[CascadeAnswer]
    scores: list[float]
    models: list[str]
    metric: Metric

    @property
    def accuracy(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else 0.0

    @property
    def cost(self) -> float:
        """Mean cost per example."""
        return sum(a.cost for a in self.answers) / len(self.answers) if self.answers else 0.0

    def answered_by(self) -> dict[str, float]:
        """The share of examples each step answered, by ``step i (model)``."""
        n = len(self.answers) or 1
        return {
            f"step {i + 1} ({m})": sum(a.step == i for a in self.answers) / n
            for i, m in enumerate(self.models)
        }


def evaluate_cascade_file(
    path: Path,
    examples: Sequence[Example],
    *,
    metric: str | None = None,
    task_metric: str | None = None,
    n_ctx: int = 4096,
    parallel: int = 16,
    cache: Path | None = None,
) -> CascadeEval:
    """A cascade file run on ``examples`` and scored by ``metric`` (typed by the caller:
    a name or ``module:function``), else the file's metric, else ``task_metric`` (a task
    sidecar's: built-in names only), else ``auto``."""
    steps, policy, named = _load(path)
    targets = [e.target for e in examples]
    if metric is not None:
        scorer = get_metric(metric, targets, source="--metric")
    else:
        source = str(path) if named else "the task's metric"
        scorer = get_metric(named or task_metric, targets, allow_code=False, source=source)
    with open_evaluators(steps, scorer, n_ctx, parallel, [cache] * len(steps)) as evaluators:
        answers = run_cascade(steps, policy, evaluators, [e.input for e in examples])
    scores = [
        float(scorer.score(a.answer, e.targets)) for a, e in zip(answers, examples, strict=True)
    ]
    return CascadeEval(answers, scores, [s.model for s in steps], scorer)
