"""The cascade's cost–accuracy picture on the test split, as a PNG, from the trade-off a
cascade file records (:meth:`Tradeoff.to_dict <promptlathe.cascade.Tradeoff.to_dict>`)."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def cost_accuracy_png(tr: dict[str, Any]) -> bytes:
    """Every cascade policy the fit tried (dots: thresholds on confidence, crosses: learned
    gates), each single step (squares), the front (line) and the kept policy (star), with
    cost per 1,000 inputs on a log axis."""
    fig, ax = plt.subplots(figsize=(7, 4))
    points = tr.get("cascades", [])
    plain = [(p["cost"], p["accuracy"]) for p in points if not p["learned"]]
    gated = [(p["cost"], p["accuracy"]) for p in points if p["learned"]]
    if plain:
        ax.scatter([c * 1000 for c, _ in plain], [a for _, a in plain], s=10, alpha=0.35,
                   color="tab:blue", label="cascade: thresholds on confidence")  # fmt: skip
    if gated:
        ax.scatter([c * 1000 for c, _ in gated], [a for _, a in gated], s=14, alpha=0.35,
                   marker="x", color="tab:purple", label="cascade: learned gate")  # fmt: skip
    front = tr.get("front", [])
    ax.plot([p["cost"] * 1000 for p in front], [p["accuracy"] for p in front], color="black",
            lw=1, drawstyle="steps-post", label="front (test)")  # fmt: skip
    for s in tr.get("singles", []):
        ax.scatter([s["cost"] * 1000], [s["accuracy"]], marker="s", s=60, zorder=3,
                   label=f"{s['policy']} alone")  # fmt: skip
    kept = tr.get("kept")
    if kept is not None:
        ax.scatter([kept["cost"] * 1000], [kept["accuracy"]], marker="*", s=220, color="gold",
                   edgecolor="black", zorder=4, label="kept")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("cost per 1,000 inputs (log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0.0)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
