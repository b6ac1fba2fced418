"""The cascade's page (``cascade.html``): steps, the judge split's verdict, the test table,
the trade-off figures and the cost–accuracy picture, in one self-contained file (no script,
every value escaped)."""

from __future__ import annotations

import base64
from importlib import resources
from typing import Any

from jinja2 import Environment, select_autoescape

from promptlathe.cascade import Fitted
from promptlathe.report._cascade_plot import cost_accuracy_png

TEMPLATE = resources.files("promptlathe.report").joinpath("cascade.html.j2")


def page_data(f: Fitted, title: str) -> dict[str, Any]:
    """What the template shows, as text."""
    steps = []
    for i, s in enumerate(f.steps):
        fit = f.front_single(i)
        steps.append(
            {
                "name": f.label(i),
                "price": f"{s.price.input:g} / {s.price.output:g} ({s.price.source})",
                "fit": "-" if fit is None else f"{fit:.3f}",
            }
        )
    judge = ""
    if f.comparison is not None:
        j, c = f.judge, f.comparison
        judge = (
            f"{f.describe(f.chosen.policy)}: accuracy {j['cascade_accuracy']:.3f} at "
            f"{j['cascade_cost'] * 1000:.4g} per 1,000 inputs, against {f.label(f.reference)} "
            f"alone {j['reference_accuracy']:.3f} at {j['reference_cost'] * 1000:.4g} "
            f"(n = {j['n']}; difference {c.diff:+.3f}, 95 % CI {c.boot_ci[0]:+.3f} to "
            f"{c.boot_ci[1]:+.3f}; exact McNemar p = {c.mcnemar_p:.3g})."
        )
    test = [
        {
            "name": name,
            "kept": row["kept"],
            "accuracy": f"{row['accuracy']:.3f}",
            "ci": f"[{row['ci95'][0]:.2f}, {row['ci95'][1]:.2f}]",
            "cost": f"{row['cost'] * 1000:.4g}",
            "escalated": f"{row['escalated']:.0%}" if row["cascade"] else "-",
        }
        for name, row in f.test.items()
    ]
    tr = f.tradeoff
    return {
        "title": title,
        "verdict": f.verdict(),
        "saves_nothing": f.saves_nothing,
        "steps": steps,
        "judge": judge,
        "test": test,
        "tradeoff": tr.sentences() if tr else [],
        "plot": base64.b64encode(cost_accuracy_png(tr)).decode("ascii") if tr else None,
    }


def render_cascade_page(f: Fitted, title: str) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(TEMPLATE.read_text(encoding="utf-8")).render(c=page_data(f, title))
