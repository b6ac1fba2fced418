"""The self-contained HTML page: one file, no network, every model string escaped.

Jinja2 autoescaping escapes all values; a Content-Security-Policy allows no script but the
page's own (by hash), so even a mistake in escaping could not run model output.
"""

from __future__ import annotations

import base64
import hashlib
from importlib import resources
from typing import Any

from jinja2 import Environment, select_autoescape

# The page's only script: marks in the DOM how many plots decoded (the browser test reads it).
SCRIPT = (
    "window.addEventListener('load',function(){var n=0;"
    "document.querySelectorAll('img.plot').forEach(function(i){if(i.naturalWidth>0)n++;});"
    "document.body.setAttribute('data-plots-loaded',String(n));});"
)
SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()

TEMPLATE = resources.files("promptlathe.report").joinpath("template.html.j2")


def render(report: dict[str, Any], plots: dict[str, str | None]) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(TEMPLATE.read_text(encoding="utf-8")).render(
        r=report, plots=plots, script=SCRIPT, script_hash=SCRIPT_HASH
    )
