"""Analyses of prompts: significance, generalization bounds and sensitivity measures.

Each analysis is one small, pure module returning a frozen dataclass with ``to_dict()``.
The trivial baselines (:mod:`promptlathe.metrics`) and the mutual-information screen of
proposals (:mod:`promptlathe.proposers`) live in the layers the optimizers use, and are
re-exported here.
"""

from promptlathe.analysis._bound import (
    Bound,
    binary_kl,
    kl_inverse_upper,
    occam_bound,
    prompt_log_prior,
    serialize_prompt,
)
from promptlathe.analysis._certificate import Certificate, certify
from promptlathe.analysis._format_spread import FormatSpread, format_spread
from promptlathe.analysis._order import OrderSensitivity, order_sensitivity
from promptlathe.analysis._posix import Posix, posix
from promptlathe.analysis._significance import Comparison, compare
from promptlathe.metrics._baselines import Baselines, balanced_accuracy, trivial_baselines
from promptlathe.proposers._mutual_info import (
    label_distribution,
    label_set,
    mutual_information,
    screen_by_mi,
)

__all__ = [
    "Baselines",
    "Bound",
    "Certificate",
    "Comparison",
    "FormatSpread",
    "OrderSensitivity",
    "Posix",
    "balanced_accuracy",
    "binary_kl",
    "certify",
    "compare",
    "format_spread",
    "kl_inverse_upper",
    "label_distribution",
    "label_set",
    "mutual_information",
    "occam_bound",
    "order_sensitivity",
    "posix",
    "prompt_log_prior",
    "screen_by_mi",
    "serialize_prompt",
    "trivial_baselines",
]
