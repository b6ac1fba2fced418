"""How answers are decoded: the decoding parameters of an evaluation, and whether a task's
answers are generated or chosen among its labels by their log-probability (``--decode``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ConfigDict, with_config

from promptlathe.errors import PromptlatheError
from promptlathe.lms import LM
from promptlathe.metrics import Metric


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True)
class Decoding:
    """Decoding parameters shared by every request of an evaluation (greedy by default).

    ``reasoning_tokens`` caps the output of reasoned calls (chain of thought and the
    strategies built on it); ``max_tokens`` caps direct answers."""

    max_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    reasoning_tokens: int = 256


DECODE_MODES = ("auto", "generate", "labels")


def choose_decode(
    decode: str,
    metric: Metric,
    lm: LM | type[LM],
    targets: Sequence[str],
    where: str = "the task",
) -> tuple[list[str] | None, str]:
    """The labels to score (``None``: generate answers) for ``--decode``, and why, in words.

    ``auto`` scores labels when the metric reads answers as labels (a classification task)
    and the backend scores them in one pass (embedded models); ``labels`` insists and fails
    with one line where it cannot apply. ``lm`` may be the backend's class: its declared
    capabilities are enough, so this runs before any model loads.
    """
    from promptlathe.metrics import LabelMetric, label_set_of

    if decode not in DECODE_MODES:
        raise PromptlatheError(f"--decode {decode!r} is not one of {', '.join(DECODE_MODES)}")
    if decode == "generate":
        return None, "generated (--decode generate)"
    labels = metric.labels if isinstance(metric, LabelMetric) else None
    if decode == "auto":
        if labels is None:
            return None, "generated (not a classification task)"
        if not lm.labels_in_one_pass:
            return None, (
                "generated (the server scores labels one call each; --decode labels forces it)"
            )
        return labels, (
            f"the most likely of {len(labels)} labels, scored in one pass instead of "
            "generated (--decode auto: a classification task on an embedded model)"
        )
    labels = labels or label_set_of(list(targets))
    if labels is None:
        n = len({t.strip() for t in targets})
        raise PromptlatheError(
            f"--decode labels needs a classification task (2 to 20 distinct targets, each "
            f"seen at least twice); {where} has {n} distinct targets"
        )
    if not lm.can_score:
        raise PromptlatheError(
            "--decode labels needs a backend that scores log-probabilities; this one cannot "
            "(use --decode generate)"
        )
    return labels, f"the most likely of {len(labels)} labels (--decode labels)"
