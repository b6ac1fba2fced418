"""Metrics: answer extraction plus comparison with targets. :func:`get_metric` resolves names."""

from __future__ import annotations

import re
from collections.abc import Sequence

from promptlathe.errors import PromptlatheError
from promptlathe.metrics._base import BinaryMetric, Metric
from promptlathe.metrics._callable import CallableMetric, load_callable_metric
from promptlathe.metrics._choice import CHOICE_TARGET, Choice
from promptlathe.metrics._extract import extract_answer, normalize
from promptlathe.metrics._numeric import Numeric
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

METRIC_NAMES = sorted([*_BUILTIN, "auto"])


def get_metric(name: str | None, targets: Sequence[str] = ()) -> Metric:
    """Resolve a metric by name.

    Args:
        name: a built-in name (see ``METRIC_NAMES``), an alias, ``module:function`` or
            ``file.py:function`` for a user callable, or ``None``/``"auto"``.
        targets: the task's targets, used by ``auto`` to pick ``choice`` when every target is
            an option letter like "(A)", ``numeric`` when every target is a number, otherwise
            ``normalized``.

    Raises:
        PromptlatheError: unknown name.
    """
    key = (name or "auto").strip()
    key = _ALIASES.get(key.lower(), key)
    if key.lower() == "auto":
        return _auto(targets)
    if key.lower() in _BUILTIN:
        return _BUILTIN[key.lower()]()
    if ":" in key:
        return load_callable_metric(key)
    raise PromptlatheError(
        f"unknown metric {name!r}; choose one of {', '.join(METRIC_NAMES)} "
        "or give a Python function as module:function"
    )


def _auto(targets: Sequence[str]) -> Metric:
    ts = [t.strip() for t in targets]
    if not ts:
        return NormalizedExact()
    # "Most" rather than "all": benchmark data has the odd stray label.
    if sum(bool(CHOICE_TARGET.match(t)) for t in ts) >= 0.9 * len(ts):
        return Choice()
    if all(_NUMBER_ONLY.match(t) for t in ts):
        return Numeric()
    return NormalizedExact()


__all__ = [
    "METRIC_NAMES",
    "BinaryMetric",
    "CallableMetric",
    "Choice",
    "Contains",
    "Exact",
    "Metric",
    "NormalizedExact",
    "Numeric",
    "RegexMatch",
    "SetEqual",
    "TokenF1",
    "extract_answer",
    "get_metric",
    "normalize",
]
