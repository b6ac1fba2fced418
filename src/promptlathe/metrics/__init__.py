"""Metrics: answer extraction plus comparison with targets. :func:`get_metric` resolves names."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from promptlathe.errors import PromptlatheError
from promptlathe.metrics._base import BinaryMetric, Metric
from promptlathe.metrics._baselines import Baselines, balanced_accuracy, trivial_baselines
from promptlathe.metrics._callable import CallableMetric, load_callable_metric
from promptlathe.metrics._choice import CHOICE_TARGET, Choice
from promptlathe.metrics._extract import extract_answer, normalize
from promptlathe.metrics._labels import LabelMetric, label_set_of
from promptlathe.metrics._numeric import Numeric
from promptlathe.metrics._reasoning import final_answer
from promptlathe.metrics._text import (
    Contains,
    Exact,
    NormalizedExact,
    RegexMatch,
    SetEqual,
    TokenF1,
)

_BUILTIN: dict[str, type[Metric]] = {
    "exact": Exact,
    "normalized": NormalizedExact,
    "contains": Contains,
    "f1": TokenF1,
    "numeric": Numeric,
    "choice": Choice,
    "set": SetEqual,
    "regex": RegexMatch,
}
# Names used by other suites' metadata files.
_ALIASES = {
    "exact_match": "auto",
    "em": "auto",
    "normalized_exact": "normalized",
    "numeric_exact_match": "numeric",
    "exact_set": "set",
    "token_f1": "f1",
}

_NUMBER_ONLY = re.compile(r"^-?\d[\d,]*(\.\d+)?$")

METRIC_NAMES = sorted([*_BUILTIN, "auto", "label"])


def get_metric(
    name: str | None,
    targets: Sequence[str] = (),
    *,
    allow_code: bool = True,
    source: str = "the metric",
) -> Metric:
    """Resolve a metric by name.

    Args:
        name: a built-in name (see ``METRIC_NAMES``), an alias, ``module:function`` or
            ``file.py:function`` for a user callable, or ``None``/``"auto"``.
        targets: the task's targets, used by ``auto`` to pick ``choice`` when every target is
            an option letter like "(A)", ``numeric`` when every target is a number, ``label``
            when the targets form a small label set, otherwise ``normalized``. A user
            function is tried once on the first target.
        allow_code: whether ``name`` may name a Python function. Pass ``False`` when the
            name comes from a file (a task's sidecar, a prompt file), not from the user.
        source: where ``name`` came from, for the error message.

    Raises:
        PromptlatheError: unknown name, or code named where ``allow_code`` is false.
    """
    key = (name or "auto").strip()
    key = _ALIASES.get(key.lower(), key)
    if key.lower() == "auto":
        return _auto(targets)
    if key.lower() in _BUILTIN:
        return _BUILTIN[key.lower()]()
    if key.lower() == "label":
        labels = list(dict.fromkeys(t.strip() for t in targets))
        if len(labels) < 2:
            raise PromptlatheError(
                f"metric 'label' needs the task's label set (at least 2 labels); {source} gives "
                f"{len(labels)}"
            )
        return LabelMetric(labels)
    if is_code_metric(key):
        if not allow_code:
            raise PromptlatheError(
                f"{source} names the Python function {key!r} as its metric; code runs only "
                f"from what you type: add --metric {key} if you trust it"
            )
        metric = load_callable_metric(key)
        if targets:  # fail before any model work if it cannot score a plain answer
            metric.score(targets[0], [targets[0]])
        return metric
    raise PromptlatheError(
        f"unknown metric {name!r}; choose one of {', '.join(METRIC_NAMES)} "
        "or give a Python function as module:function"
    )


def is_code_metric(name: str | None) -> bool:
    """Whether a metric name is a Python function (``module:function``), i.e. code."""
    return bool(name) and ":" in str(name)


def task_metric(
    typed: str | None,
    sidecar: str | None,
    sidecar_path: object,
    targets: Sequence[str] = (),
    *,
    typed_source: str = "--metric",
) -> Metric:
    """The metric a user asked for (``--metric``), else the task sidecar's, else ``auto``.

    A sidecar may name a built-in metric only: code runs from what the user typed, never
    from a data file.
    """
    if typed:
        return get_metric(typed, targets, source=typed_source)
    return get_metric(sidecar, targets, allow_code=False, source=f"{sidecar_path}")


_AUTO_WHY = {
    "choice": "the targets are option letters like (A)",
    "numeric": "every target is a number",
    "normalized": "the targets are free text: case, spacing and edge punctuation are ignored",
    "label": "the targets are a small label set; an output stating exactly one label counts as it",
}


def metric_reason(
    typed: str | None, sidecar: str | None, sidecar_path: object, chosen: Metric
) -> str:
    """Why ``chosen`` is the metric, in words (for the plan)."""
    if typed:
        return "given by --metric"
    auto = _AUTO_WHY.get(chosen.name, "")
    if sidecar:
        name = Path(str(sidecar_path)).name
        key = _ALIASES.get(sidecar.strip().lower(), sidecar.strip().lower())
        if key == "auto":
            return f"{name} says {sidecar!r}, read as auto: {auto}"
        return f"from {name}"
    return f"auto: {auto}" if auto else "auto"


def _auto(targets: Sequence[str]) -> Metric:
    ts = [t.strip() for t in targets]
    if not ts:
        return NormalizedExact()
    # "Most" rather than "all": benchmark data has the odd stray label.
    if sum(bool(CHOICE_TARGET.match(t)) for t in ts) >= 0.9 * len(ts):
        return Choice()
    if all(_NUMBER_ONLY.match(t) for t in ts):
        return Numeric()
    labels = label_set_of(ts)
    if labels is not None:
        return LabelMetric(labels)
    return NormalizedExact()


__all__ = [
    "METRIC_NAMES",
    "BinaryMetric",
    "CallableMetric",
    "Choice",
    "Contains",
    "Exact",
    "LabelMetric",
    "Metric",
    "NormalizedExact",
    "Numeric",
    "RegexMatch",
    "SetEqual",
    "TokenF1",
    "extract_answer",
    "final_answer",
    "get_metric",
    "is_code_metric",
    "label_set_of",
    "Baselines",
    "balanced_accuracy",
    "trivial_baselines",
    "metric_reason",
    "normalize",
    "task_metric",
]
