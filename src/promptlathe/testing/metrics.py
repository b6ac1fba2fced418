"""The metric conformance suite: what every metric promises, whatever its rule.

Every test takes a ``metric`` fixture (a :class:`~promptlathe.metrics.Metric`) and checks
the contract the evaluator relies on: a score is a number in ``[0, 1]``, a bare target scores
1 against itself, the score is the best over the acceptable targets, and no output (empty,
huge, binary junk, another script) makes it raise. Use it as
``from promptlathe.testing.metrics import *`` with your own ``metric`` fixture.
"""

from __future__ import annotations

from promptlathe.metrics import Metric

__all__ = [
    "AWKWARD_OUTPUTS",
    "SAMPLE_TARGETS",
    "test_a_bare_target_scores_one_against_itself",
    "test_awkward_outputs_score_in_range_without_raising",
    "test_the_score_is_the_best_over_the_acceptable_targets",
]

SAMPLE_TARGETS = ["Paris", "42", "(B)", "yes", "The cat sat on the mat.", "a, b, c"]
AWKWARD_OUTPUTS = [
    "",
    " ",
    "\n\n",
    "x" * 20_000,
    "\x00\x01\x02",
    "Ответ: 42",
    "答案是 (B)",
    "So the answer is \\boxed{42}.",
    "Answer: Paris\nAnswer: London",
    "```python\nprint(42)\n```",
    "nan",
    "-0",
]


def _in_range(x: object) -> bool:
    return isinstance(x, float) and 0.0 <= x <= 1.0


def test_awkward_outputs_score_in_range_without_raising(metric: Metric) -> None:
    for out in AWKWARD_OUTPUTS:
        for targets in (SAMPLE_TARGETS[:1], SAMPLE_TARGETS, [""]):
            answer, score = metric(out, targets)
            assert isinstance(answer, str)
            assert _in_range(score), (metric, out[:40], targets, score)


def test_a_bare_target_scores_one_against_itself(metric: Metric) -> None:
    """The target written as the whole output is right (for the targets the metric can read:
    a metric for numbers need not read "Paris")."""
    readable = [t for t in SAMPLE_TARGETS if metric.score(metric.extract(t), [t]) > 0]
    assert readable, f"{metric} reads none of {SAMPLE_TARGETS}"
    for t in readable:
        assert metric(t, [t])[1] == 1.0, (metric, t)


def test_the_score_is_the_best_over_the_acceptable_targets(metric: Metric) -> None:
    for t in SAMPLE_TARGETS:
        alone = metric(t, [t])[1]
        among = metric(t, ["something else entirely", t])[1]
        assert among == alone, (metric, t)
