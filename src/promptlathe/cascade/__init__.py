"""Cascades over (model, prompt) steps: the cheap step answers what it is sure of and passes
the rest on (FrugalGPT; TREACLE). A step is a saved prompt and the model that runs it; a
policy (confidence thresholds) is fitted on one split and judged on another; a cascade file
runs as it was judged.
"""

from promptlathe.cascade._answers import Step, StepAnswer, answer_step
from promptlathe.cascade._file import CASCADE_VERSION, is_cascade, read_cascade, write_cascade
from promptlathe.cascade._fit import Fitted, fit_cascade
from promptlathe.cascade._gate import FEATURES, Gate, fit_gate
from promptlathe.cascade._open import open_evaluators
from promptlathe.cascade._optimize import (
    CascadeRun,
    check_models,
    optimize_models,
    parse_models,
    parse_servers,
)
from promptlathe.cascade._policy import Point, Policy, Routed, fit, pareto, route
from promptlathe.cascade._run import (
    CascadeAnswer,
    CascadeEval,
    evaluate_cascade_file,
    run_cascade,
    run_cascade_file,
)
from promptlathe.cascade._tradeoff import Figure, Tradeoff
from promptlathe.lms._price import Price, default_price, parse_costs, price_for

__all__ = [
    "CASCADE_VERSION",
    "CascadeAnswer",
    "CascadeEval",
    "CascadeRun",
    "FEATURES",
    "Figure",
    "Fitted",
    "Gate",
    "Point",
    "Policy",
    "Price",
    "Routed",
    "Step",
    "StepAnswer",
    "Tradeoff",
    "answer_step",
    "check_models",
    "default_price",
    "evaluate_cascade_file",
    "fit",
    "fit_cascade",
    "fit_gate",
    "is_cascade",
    "open_evaluators",
    "optimize_models",
    "parse_costs",
    "parse_models",
    "parse_servers",
    "pareto",
    "price_for",
    "read_cascade",
    "route",
    "run_cascade",
    "run_cascade_file",
    "write_cascade",
]
