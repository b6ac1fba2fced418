"""Generalization bounds for a prompt chosen from a countable class with an LM prior."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy.optimize import brentq
from scipy.special import rel_entr

from promptlathe.lms import LM, ScoreRequest
from promptlathe.prompts import Prompt

_XTOL = 1e-14  # brentq's tolerances: the root is within _XTOL + _RTOL * |root|
_RTOL = 4 * 2.220446049250313e-16
_VACUOUS_TOL = 1e-9  # a bound this close to 1 is reported as vacuous


@dataclass(frozen=True)
class Bound:
    """Result of :func:`occam_bound`: upper bounds on a prompt's true error rate.

    Attributes:
        error_bound: the kl (Maurer/Langford) form, clamped to [0, 1].
        hoeffding_bound: the looser Hoeffding form, clamped to [0, 1].
        complexity: ``ln(1/P(h)) = -log_prior`` in nats.
        n: number of examples the empirical error was measured on.
        delta: the bound holds with probability at least ``1 - delta``.
        empirical_error: error rate on those examples.
        vacuous: ``error_bound`` is 1 up to 1e-9 (the bound says nothing).
    """

    error_bound: float
    hoeffding_bound: float
    complexity: float
    n: int
    delta: float
    empirical_error: float
    vacuous: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def binary_kl(q: float, p: float) -> float:
    """``kl(q || p)``: KL divergence between Bernoulli(q) and Bernoulli(p), in nats
    (``scipy.special.rel_entr`` for each outcome, so ``0 log 0 = 0``)."""
    if not (0.0 <= q <= 1.0 and 0.0 <= p <= 1.0):
        raise ValueError(f"probabilities must be in [0, 1], got q={q}, p={p}")
    return max(0.0, float(rel_entr(q, p) + rel_entr(1.0 - q, 1.0 - p)))


def kl_inverse_upper(q: float, c: float) -> float:
    """The largest ``p >= q`` with ``kl(q || p) <= c``: the root of ``kl(q || p) = c`` on
    ``[q, 1)``, found by ``scipy.optimize.brentq``.

    Method: the kl inverse of the PAC-Bayes-kl bound (Seeger 2002; Langford 2005,
    "Tutorial on practical prediction theory for classification").

    Args:
        q: empirical error rate in [0, 1].
        c: allowed divergence (nats), ``>= 0``.

    Returns:
        ``p`` in ``[q, 1]``; an upper end accurate to about 1e-12 (rounded up by the root
        finder's tolerance, so it is never below the exact inverse).

    Raises:
        ValueError: ``q`` outside [0, 1] or ``c`` negative or NaN.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    if not c >= 0.0:
        raise ValueError(f"c must be >= 0, got {c}")
    if q >= 1.0:
        return 1.0
    if c == 0.0:
        return q
    hi = math.nextafter(1.0, 0.0)
    if math.isinf(c) or binary_kl(q, hi) <= c:
        return 1.0
    root = brentq(lambda p: binary_kl(q, p) - c, q, hi, xtol=_XTOL, rtol=_RTOL)
    return min(1.0, root + _XTOL + _RTOL * abs(root))


def occam_bound(train_error: float, n: int, log_prior: float, delta: float = 0.05) -> Bound:
    """Occam / PAC-Bayes bound on the true error of a prompt with an LM prior.

    Method: Akinwande et al. 2023, "Understanding prompt engineering may not require
    rethinking generalization" (Maurer's form of the Occam bound, prior = LM probability of
    the prompt text).

    With probability at least ``1 - delta`` over the ``n`` examples, simultaneously for every
    prompt ``h`` of a countable class with prior ``P(h)`` (``sum P(h) <= 1``)::

        kl(err_S(h) || err(h)) <= (ln(1/P(h)) + ln(2 sqrt(n) / delta)) / n
        err(h) <= err_S(h) + sqrt((ln(1/P(h)) + ln(1/delta)) / (2 n))

    The examples must be i.i.d. and the prior fixed before they are seen (the LM's
    probability of the prompt text is). Because the bound holds for all ``h`` at once, it
    stays valid for a prompt that a search picked using these very examples.

    Args:
        train_error: the prompt's error rate on the ``n`` examples, in [0, 1].
        n: number of examples (``>= 1``).
        log_prior: ``ln P(h)``, natural log, ``<= 0``.
        delta: confidence parameter in (0, 1).

    Returns:
        A :class:`Bound`.

    Raises:
        ValueError: an argument is out of range.
    """
    if not 0.0 <= train_error <= 1.0:
        raise ValueError(f"train_error must be in [0, 1], got {train_error}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not log_prior <= 0.0:
        raise ValueError(
            f"log_prior is a natural-log probability and must be <= 0, got {log_prior}"
        )
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    complexity = -log_prior
    c = (complexity + math.log(2.0 * math.sqrt(n) / delta)) / n
    kl_bound = kl_inverse_upper(train_error, c)
    hoeffding = train_error + math.sqrt((complexity + math.log(1.0 / delta)) / (2.0 * n))
    return Bound(
        error_bound=kl_bound,
        hoeffding_bound=min(1.0, hoeffding),
        complexity=complexity,
        n=n,
        delta=delta,
        empirical_error=train_error,
        vacuous=kl_bound >= 1.0 - _VACUOUS_TOL,
    )


PRIOR_CONTEXT = "A prompt, as JSON:\n"
"""Fixed text the serialized prompt is scored after: it gives the first token of the
serialization a prediction (models without a BOS token could not score it) and is the same
for every prompt, so the prior stays one fixed distribution."""


def serialize_prompt(prompt: Prompt) -> str:
    """Everything that changes what the model sees (instruction, exemplars, every format
    field, the mode) as canonical JSON: distinct prompts get distinct texts."""
    return json.dumps(prompt.to_dict(), sort_keys=True, ensure_ascii=False)


def prompt_log_prior(lm: LM, prompt: Prompt) -> float:
    """The LM's natural-log probability of the prompt (the prior ``ln P(h)``).

    Method: the prompt prior of Akinwande et al. 2023, "Understanding prompt engineering may
    not require rethinking generalization".

    For the bound to hold for every prompt the search could pick, the prior must be a
    probability distribution over prompts. So the text scored is the prompt's full
    serialization (:func:`serialize_prompt`: prompts that differ only in mode or format get
    different texts), from its first token (after the fixed :data:`PRIOR_CONTEXT`) through
    the model's end-of-text token: the probabilities of all such finished texts sum to at
    most 1.

    Args:
        lm: a backend that can score continuations with an end-of-text token (embedded).
        prompt: the prompt.

    Returns:
        ``ln P(serialization, end of text | context)`` (``<= 0`` for a proper LM).

    Raises:
        NotImplementedError / ModelError: the backend cannot score.
    """
    request = ScoreRequest(
        prompt=PRIOR_CONTEXT, continuation=serialize_prompt(prompt), end_of_text=True
    )
    (res,) = lm.score([request])
    return float(res.logprob)
