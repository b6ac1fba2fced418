"""Static plots for the report, rendered with matplotlib to base64 PNG (no network, no JS)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _score_png(fig: plt.Figure, ax: plt.Axes) -> str:
    """Finish a plot of validation scores (0 to 1) and render it."""
    ax.set_ylabel("validation score")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    # Outside the axes, so it never hides a point (the winner is often in a corner).
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0.0)
    return _png(fig)


def best_vs_calls(points: Sequence[tuple[int, float, str]]) -> str | None:
    """Scatter of every trial (calls when it ended, score) and the running best of complete ones.

    ``points`` are ``(calls, value, state)`` with state ``complete`` or ``pruned``.
    """
    if not points:
        return None
    pts = sorted(points)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for state, marker, color in (("complete", "o", "#1f77b4"), ("pruned", "x", "#999999")):
        xs = [c for c, _, s in pts if s == state]
        ys = [v for _, v, s in pts if s == state]
        if xs:
            ax.scatter(xs, ys, marker=marker, color=color, label=f"{state} trials", s=22)
    best, xs, ys = None, [], []
    for c, v, s in pts:
        if s == "complete" and (best is None or v > best):
            best = v
        if best is not None:
            xs.append(c)
            ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", color="#d62728", label="best so far (full validation)")
    ax.set_xlabel("LM calls used")
    return _score_png(fig, ax)


def bars_with_ci(
    labels: Sequence[str], values: Sequence[float], cis: Sequence[tuple[float, float]], title: str
) -> str | None:
    """Horizontal bars with 95 % interval whiskers."""
    if not values:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(values) + 1.2))
    ys = list(range(len(values)))
    lo = [max(0.0, v - c[0]) for v, c in zip(values, cis, strict=True)]
    hi = [max(0.0, c[1] - v) for v, c in zip(values, cis, strict=True)]
    ax.barh(ys, values, xerr=[lo, hi], color="#1f77b4", alpha=0.8, capsize=3)
    ax.set_yticks(ys)
    ax.set_yticklabels([lbl[:48] for lbl in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("accuracy (95 % CI)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both cost (lower) and score (higher),
    cheapest first."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def accuracy_vs_cost(
    points: Sequence[tuple[float, float, str]], marks: Sequence[tuple[float, float, str]] = ()
) -> str | None:
    """Validation score against tokens per example of every fully evaluated candidate
    (``(tokens, score, strategy)``), its Pareto front, and labelled ``marks`` (winner,
    seed)."""
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.4))
    strategies = sorted({s for _, _, s in points})
    cmap = plt.get_cmap("tab10")
    for k, strat in enumerate(strategies):
        xs = [x for x, _, s in points if s == strat]
        ys = [y for _, y, s in points if s == strat]
        ax.scatter(xs, ys, s=22, color=cmap(k % 10), label=strat)
    front = [points[i] for i in pareto_front([(x, y) for x, y, _ in points])]
    ax.step(
        [x for x, _, _ in front],
        [y for _, y, _ in front],
        where="post",
        color="#d62728",
        label="Pareto front",
    )
    for x, y, text in marks:
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(6, -10), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("tokens per example (prompt + output, every call; log scale)")
    return _score_png(fig, ax)
