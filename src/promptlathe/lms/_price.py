"""What a model's tokens cost: user-declared prices, or a default for embedded models.

Prices are per million tokens, input and output apart (``--cost NAME=IN:OUT``), in whatever
unit the user declares (dollars for a hosted API). An embedded model without a declared price
costs its parameter count in billions per million input tokens and three times that per
million output tokens: on a CPU the work per token grows with the parameters, and one decoded
token took about three prefilled tokens' time on the machine the project measures on
(docs/benchmarks/2026-12-03-batched.md). A served model has no default: its price is the
user's to say.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from promptlathe.errors import PromptlatheError
from promptlathe.lms._registry import MODELS

DECODE_OVER_PREFILL = 3.0
"""An output token's default cost in input tokens (embedded models)."""


@dataclass(frozen=True)
class Price:
    """Cost per million input and per million output tokens."""

    input: float
    output: float
    source: str = "declared"
    """``declared`` (``--cost``) or ``default`` (an embedded model's parameters)."""

    def of(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The cost of a call with these token counts."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6

    def to_dict(self) -> dict[str, float | str]:
        """As a cascade file writes it."""
        return {"input": self.input, "output": self.output, "source": self.source}


_COST = re.compile(r"^(?P<name>[^=]+)=(?P<inp>[^:]+):(?P<out>[^:]+)$")


def parse_costs(specs: Iterable[str], option: str = "--cost") -> dict[str, Price]:
    """``["NAME=IN:OUT", ...]`` as prices by model name.

    Raises:
        PromptlatheError: a malformed, negative, non-finite or repeated entry (one line
            naming the option and the entry).
    """
    prices: dict[str, Price] = {}
    for spec in specs:
        m = _COST.match(spec.strip())
        if m is None:
            raise PromptlatheError(
                f"{option} {spec!r}: expected NAME=IN:OUT (prices per million input and "
                "output tokens, e.g. qwen2.5-coder-1.5b=1.5:4.5)"
            )
        try:
            inp, out = float(m["inp"]), float(m["out"])
        except ValueError:
            raise PromptlatheError(f"{option} {spec!r}: prices must be numbers") from None
        if not (math.isfinite(inp) and math.isfinite(out)) or inp < 0 or out < 0:
            raise PromptlatheError(f"{option} {spec!r}: prices must be finite and >= 0")
        name = m["name"].strip()
        if name in prices:
            raise PromptlatheError(f"{option}: {name!r} is priced twice")
        prices[name] = Price(inp, out)
    return prices


def default_price(model: str) -> Price | None:
    """An embedded model's default price (``None`` for any other model)."""
    known = MODELS.get(model)
    if known is None or known.params <= 0:
        return None
    return Price(known.params, known.params * DECODE_OVER_PREFILL, source="default")


def price_for(model: str, declared: dict[str, Price], option: str = "--cost") -> Price:
    """The declared price of ``model``, else its default.

    Raises:
        PromptlatheError: a served model without a declared price.
    """
    price = declared.get(model) or default_price(model)
    if price is None:
        raise PromptlatheError(
            f"{option}: no price for {model!r}; a served model's cost must be declared "
            f"({option} {model}=IN:OUT, per million input and output tokens)"
        )
    return price
