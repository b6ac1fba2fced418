"""Small statistics helpers shared by the evaluator and reports."""

from __future__ import annotations

import math

from scipy.stats import beta, norm


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Args:
        successes: number of successes (may be fractional for partial-credit metrics).
        n: number of trials.
        confidence: two-sided confidence level.

    Returns:
        ``(low, high)``; ``(0.0, 1.0)`` when ``n == 0``.
    """
    if n <= 0:
        return (0.0, 1.0)
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Guard the end points against rounding (a perfect score's interval must reach 1.0).
    low = 0.0 if successes <= 0 else max(0.0, min(p, centre - half))
    high = 1.0 if successes >= n else min(1.0, max(p, centre + half))
    return (low, high)


def binomial_lower(successes: int, n: int, delta: float) -> float:
    """One-sided exact (Clopper–Pearson) lower confidence bound on a success probability:
    with probability at least ``1 - delta`` the true probability is at least this, given
    ``successes`` of ``n`` independent trials (``beta.ppf(delta, s, n - s + 1)``).

    Returns:
        The bound in [0, 1]; 0.0 when ``n == 0`` or there is no success.
    """
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if n <= 0 or successes <= 0:
        return 0.0
    return float(beta.ppf(delta, successes, n - successes + 1))


def hoeffding_lower(mean: float, n: int, delta: float) -> float:
    """Lower confidence bound on the mean of a score in [0, 1] (Hoeffding): for partial
    credit, where the exact binomial bound does not apply."""
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if n <= 0:
        return 0.0
    return max(0.0, mean - math.sqrt(math.log(1.0 / delta) / (2 * n)))
