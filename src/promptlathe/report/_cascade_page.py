"""The cascade's page (``cascade.html``): steps, the judge split's verdict, the test table,
the trade-off figures and the cost–accuracy picture, in one self-contained file (no script,
every value escaped). Drawn from the cascade file alone (what :meth:`Fitted.record
<promptlathe.cascade.Fitted.record>` wrote beside its steps), so ``promptlathe report`` can
draw it again without a model."""

from __future__ import annotations

import base64
import json
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

from promptlathe.cascade import is_cascade
from promptlathe.errors import PromptlatheError
from promptlathe.report._cascade_plot import cost_accuracy_png

TEMPLATE = resources.files("promptlathe.report").joinpath("cascade.html.j2")


def page_data(record: dict[str, Any], title: str, png: bytes | None) -> dict[str, Any]:
    """What the template shows, as text, from a cascade file's object (``png``: its
    cost–accuracy picture, embedded when given)."""
    steps = []
    for s in record.get("fit", {}).get("steps", []):
        p, acc = s["price"], s.get("accuracy")
        steps.append(
            {
                "name": s["name"],
                "price": f"{p['input']:g} / {p['output']:g} ({p['source']})",
                "fit": "-" if acc is None else f"{acc:.3f}",
            }
        )
    judge = ""
    j = record.get("judge") or {}
    c = j.get("comparison")
    if c is not None:
        judge = (
            f"{j['chosen']}: accuracy {j['cascade_accuracy']:.3f} at "
            f"{j['cascade_cost'] * 1000:.4g} per 1,000 inputs, against {j['reference']} "
            f"alone {j['reference_accuracy']:.3f} at {j['reference_cost'] * 1000:.4g} "
            f"(n = {j['n']}; difference {c['diff']:+.3f}, 95 % CI {c['ci95'][0]:+.3f} to "
            f"{c['ci95'][1]:+.3f}; exact McNemar p = {c['mcnemar_p']:.3g})."
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
        for name, row in (record.get("test") or {}).items()
    ]
    tr = record.get("tradeoff")
    return {
        "title": title,
        "verdict": record.get("verdict", ""),
        "saves_nothing": record.get("saves_nothing", False),
        "steps": steps,
        "judge": judge,
        "test": test,
        "tradeoff": tr.get("sentences", []) if tr else [],
        "plot": base64.b64encode(png).decode("ascii") if png is not None else None,
    }


def render_cascade_page(record: dict[str, Any], title: str, png: bytes | None) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    return template.render(c=page_data(record, title, png))


def write_cascade_page(cascade_file: Path) -> list[Path]:
    """Draw the page (``.html``) and the cost–accuracy picture alone (``.png``, when there
    was a test split) beside a cascade file; the paths written."""
    try:
        record = json.loads(cascade_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PromptlatheError(f"{cascade_file}: not a readable cascade file ({exc})") from None
    if not isinstance(record, dict) or not is_cascade(record):
        raise PromptlatheError(f"{cascade_file}: not a cascade file (no promptlathe_cascade)")
    if "fit" not in record:
        raise PromptlatheError(
            f"{cascade_file}: written by an earlier promptlathe without what its page is drawn "
            "from; fit it again (promptlathe cascade) to draw it"
        )
    try:
        # drawn once: embedded in the page and written beside it
        png = cost_accuracy_png(record["tradeoff"]) if record.get("tradeoff") else None
        html = render_cascade_page(record, str(cascade_file.parent), png)
    except (KeyError, TypeError) as exc:
        raise PromptlatheError(
            f"{cascade_file}: a field the page needs is missing ({exc})"
        ) from None
    page = cascade_file.with_suffix(".html")
    page.write_text(html, encoding="utf-8")
    if png is None:
        return [page]
    picture = cascade_file.with_suffix(".png")
    picture.write_bytes(png)
    return [page, picture]
