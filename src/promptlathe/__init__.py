"""promptlathe: find the best prompt for a task automatically, with honest statistics."""

from promptlathe.errors import PromptlatheError
from promptlathe.evaluator import Decoding, EvalResult, Evaluator, Record
from promptlathe.lms import LM, CachedLM, get_lm
from promptlathe.metrics import Metric, get_metric
from promptlathe.optimizers import OptimizeConfig, OptimizeResult, optimize
from promptlathe.prompts import Exemplar, Format, Prompt
from promptlathe.store import Store
from promptlathe.tasks import Example, load_examples, split_examples

__version__ = "0.1.0"

__all__ = [
    "LM",
    "CachedLM",
    "Decoding",
    "EvalResult",
    "Evaluator",
    "Example",
    "Exemplar",
    "Format",
    "Metric",
    "OptimizeConfig",
    "OptimizeResult",
    "Prompt",
    "PromptlatheError",
    "Record",
    "Store",
    "get_lm",
    "get_metric",
    "load_examples",
    "optimize",
    "split_examples",
]
