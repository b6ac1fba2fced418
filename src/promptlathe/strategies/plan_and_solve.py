"""``plan_and_solve``: the Plan-and-Solve (PS+) prompt of Wang et al. (2023): understand,
plan, carry out the plan, answer."""

from __future__ import annotations

from promptlathe.strategies._protocol import register
from promptlathe.strategies.cot import ANSWER_LINE, REASON_FIRST, ChainOfThought

PS_PLUS = (
    "Let's first understand the problem, extract relevant variables and their corresponding "
    "numerals, and devise a plan. Then, let's carry out the plan, calculate intermediate "
    "variables (pay attention to correct numerical calculation and commonsense), solve the "
    f"problem step by step, and show the answer. {REASON_FIRST} {ANSWER_LINE}"
)


@register
class PlanAndSolve(ChainOfThought):
    name = "plan_and_solve"
    summary = "PS+: understand, plan, carry out, answer (one long call)"
    trigger = PS_PLUS
