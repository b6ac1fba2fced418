"""Paired comparison of two prompts scored on the same examples."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest, bootstrap

_BOOT_CHUNK = 1000  # bootstrap replicates drawn at once (bounds memory for large n)


@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare`.

    Attributes:
        n: number of paired examples.
        mean_a: mean score of prompt A.
        mean_b: mean score of prompt B.
        diff: ``mean_a - mean_b``.
        b: examples where A scored higher than B (A right and B wrong for 0/1 scores).
        c: examples where B scored higher than A (A wrong and B right for 0/1 scores).
        mcnemar_p: two-sided exact McNemar p-value (binomial test on the ``b + c`` discordant
            pairs); 1.0 when there are none.
        boot_ci: paired bootstrap percentile interval of ``diff`` at level ``1 - alpha``.
        significant: ``mcnemar_p < alpha``.
        alpha: the significance level.
        binary: whether every score was 0 or 1.
        verdict: one plain-English sentence summarising the above.
    """

    n: int
    mean_a: float
    mean_b: float
    diff: float
    b: int
    c: int
    mcnemar_p: float
    boot_ci: tuple[float, float]
    significant: bool
    alpha: float
    binary: bool
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["boot_ci"] = list(self.boot_ci)
        return d


def compare(
    a_scores: Sequence[float],
    b_scores: Sequence[float],
    n_boot: int = 10000,
    seed: int = 0,
    alpha: float = 0.05,
    names: tuple[str, str] = ("prompt A", "prompt B"),
) -> Comparison:
    """Compare two prompts scored on the same examples, in the same order.

    Method: exact McNemar test (McNemar 1947, "Note on the sampling error of the difference
    between correlated proportions") plus a paired percentile bootstrap (Efron 1979;
    ``scipy.stats.bootstrap`` over the per-example differences).

    Scores that are not all 0/1 (partial credit) are compared per example with ``>``/``<``:
    ``b`` and ``c`` then count examples where one prompt scored strictly higher, and the test
    becomes a sign test; the verdict says so.

    Args:
        a_scores: per-example scores of prompt A (in [0, 1]).
        b_scores: per-example scores of prompt B, for the same examples.
        n_boot: bootstrap replicates.
        seed: seed of ``numpy.random.default_rng`` for the bootstrap (results are
            deterministic given it).
        alpha: significance level; the bootstrap interval has level ``1 - alpha``.
        names: how the verdict calls A and B (e.g. ``("the winner", "the seed")``).

    Returns:
        A :class:`Comparison`.

    Raises:
        ValueError: the sequences differ in length, are empty, or hold non-finite values;
            ``n_boot < 1`` or ``alpha`` not in (0, 1).
    """
    a = np.asarray(a_scores, dtype=np.float64)
    b_arr = np.asarray(b_scores, dtype=np.float64)
    if a.ndim != 1 or b_arr.ndim != 1:
        raise ValueError("scores must be one-dimensional sequences")
    if len(a) != len(b_arr):
        raise ValueError(f"score sequences differ in length ({len(a)} vs {len(b_arr)})")
    if len(a) == 0:
        raise ValueError("no scores to compare")
    if not (np.isfinite(a).all() and np.isfinite(b_arr).all()):
        raise ValueError("scores must be finite numbers")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")

    n = len(a)
    binary = bool(np.isin(a, (0.0, 1.0)).all() and np.isin(b_arr, (0.0, 1.0)).all())
    b = int((a > b_arr).sum())
    c = int((a < b_arr).sum())
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    p = min(1.0, p)

    d = a - b_arr
    if n == 1:  # every resample is the one difference
        ci = (float(d[0]), float(d[0]))
    else:
        # Resampling the examples keeps each pair together: the bootstrap of the differences.
        boot = bootstrap(
            (d,),
            np.mean,
            n_resamples=n_boot,
            batch=_BOOT_CHUNK,
            method="percentile",
            confidence_level=1 - alpha,
            rng=np.random.default_rng(seed),
        )
        ci = (float(boot.confidence_interval.low), float(boot.confidence_interval.high))

    mean_a, mean_b = float(a.mean()), float(b_arr.mean())
    diff = mean_a - mean_b
    significant = p < alpha
    verdict = _verdict(names, diff, ci, p, alpha, significant, binary)
    return Comparison(
        n=n,
        mean_a=mean_a,
        mean_b=mean_b,
        diff=diff,
        b=b,
        c=c,
        mcnemar_p=p,
        boot_ci=ci,
        significant=significant,
        alpha=alpha,
        binary=binary,
        verdict=verdict,
    )


def _pct(x: float) -> str:
    return f"{x:g}"


def _verdict(
    names: tuple[str, str],
    diff: float,
    ci: tuple[float, float],
    p: float,
    alpha: float,
    significant: bool,
    binary: bool,
) -> str:
    name_a, name_b = names
    pts = abs(diff) * 100
    level = _pct(round((1 - alpha) * 100, 6))
    ci_txt = f"{level} % CI {ci[0] * 100:.1f} to {ci[1] * 100:.1f}"
    if math.isclose(diff, 0.0, abs_tol=1e-12):
        head = f"{name_a} and {name_b} score the same on average (difference 0.0 points, {ci_txt})"
    else:
        word = "better" if diff > 0 else "worse"
        head = f"{name_a} is {word} than {name_b} by {pts:.1f} points ({ci_txt})"
    p_txt = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
    test = "exact McNemar"
    if not binary:
        test = "exact sign test over the examples where one prompt scored higher,"
    sig = "significant" if significant else "not significant"
    sentence = (
        f"{head}; the difference is {sig} at {_pct(round(alpha * 100, 6))} % ({test} {p_txt})."
    )
    return sentence[0].upper() + sentence[1:]
