"""The strategy protocol: how a prompt answers one input at run time.

A strategy turns (prompt, input) into the model calls to make (:meth:`Strategy.calls`) and
their outputs into one output (:meth:`Strategy.combine`). The evaluator executes it the same
way during the search, on test, in ``promptlathe run`` and through the Python API, so a
deployed prompt behaves as it was evaluated. A new strategy is one new module in this
package with a :func:`register`-ed subclass; nothing else changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from promptlathe._plugins import load_registry
from promptlathe.errors import PromptlatheError
from promptlathe.prompts import Prompt, StrategySpec

AnswerOf = Callable[[str], str]
"""An output's normalised answer, as the metric reads it (what votes are counted over)."""

Demos = Literal["fixed", "rationale", "pool"]


@dataclass(frozen=True)
class Call:
    """One model call a strategy makes for one input.

    Attributes:
        prompt: the prompt as sent (with the reasoning trigger, or the exemplars chosen for
            this input).
        query: the input as sent (with its options reordered, for ``choice_shuffle``).
        sample: the call's index among the input's samples; it is added to the decoding
            seed, so every sample is its own cache entry.
        temperature: ``None``: the run's decoding temperature (greedy by default).
        reasoning: the answer is reasoned: generated (even where labels are scored), with
            the reasoning token limit, and read by the metric from its final answer.
        relabel: option letter as sent → letter in the original input.
    """

    prompt: Prompt
    query: str
    sample: int = 0
    temperature: float | None = None
    reasoning: bool = False
    relabel: Mapping[str, str] | None = None


@dataclass(frozen=True)
class TaskView:
    """What :meth:`Strategy.applies` may look at: the training inputs and targets."""

    inputs: Sequence[str]
    targets: Sequence[str]


class Strategy(ABC):
    """A run-time strategy, configured with its ``k``.

    Class attributes:
        name: the name in ``--strategies`` and in prompt files.
        summary: one line for ``--help`` and the plan.
        ks: the values of ``k`` the search tries.
        reasoning: outputs are reasoned (read by their final answer).
        demos: where a searched candidate's exemplars come from: ``fixed`` (the demo sets),
            ``rationale`` (demos carrying validated reasoning), ``pool`` (the whole labeled
            train pool, from which ``k`` are chosen per input).
        calls_per_input: model calls per input, as a function of ``k`` (its cost factor).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    ks: ClassVar[tuple[int, ...]] = (1,)
    reasoning: ClassVar[bool] = False
    demos: ClassVar[Demos] = "fixed"

    def __init__(self, k: int = 1) -> None:
        self.k = k

    @property
    def spec(self) -> StrategySpec:
        return StrategySpec(self.name, self.k)

    def calls_per_input(self) -> int:
        return 1

    def shots(self, prompt: Prompt) -> int:
        """Exemplars shown per input: the prompt's, or the ``k`` chosen from its pool."""
        return self.k if self.demos == "pool" else len(prompt.exemplars)

    def relative_cost(self) -> int:
        """A rough cost per input in direct answers (a reasoned call writes ~8x more)."""
        return self.calls_per_input() * (8 if self.reasoning else 1)

    def applies(self, task: TaskView) -> str | None:
        """Why this strategy cannot apply to the task (``None``: it can)."""
        return None

    @abstractmethod
    def calls(self, prompt: Prompt, query: str) -> list[Call]:
        """The calls to make for ``query``."""

    def combine(self, calls: Sequence[Call], outputs: Sequence[str], answer_of: AnswerOf) -> str:
        """One output from the calls' outputs (default: the only one)."""
        return outputs[0]


STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make ``cls`` available as ``--strategies cls.name``."""
    STRATEGIES[cls.name] = cls
    return cls


def strategy_names() -> list[str]:
    _load_builtins()
    return sorted(STRATEGIES, key=lambda n: (n != "direct", n))


def get_strategy(spec: StrategySpec | str, where: str = "strategy") -> Strategy:
    """The strategy a prompt names, configured with its ``k``.

    Raises:
        PromptlatheError: an unknown name (one line naming ``where``).
    """
    _load_builtins()
    if isinstance(spec, str):
        spec = StrategySpec(spec)
    cls = STRATEGIES.get(spec.name)
    if cls is None:
        raise PromptlatheError(
            f"{where}: strategy {spec.name!r} is not one of {', '.join(strategy_names())}"
        )
    return cls(spec.k)


def parse_strategies(text: str | Sequence[str], option: str = "--strategies") -> list[str]:
    """Strategy names from ``"direct,cot"`` / ``"all"`` (or a list of names), checked.

    Raises:
        PromptlatheError: an unknown name (one line naming the option).
    """
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    known = strategy_names()
    if names == ["all"]:
        return known
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise PromptlatheError(
            f"{option} {','.join(bad) or text!r}: not a strategy; choose among "
            f"{', '.join(known)} (comma-separated) or all"
        )
    return list(dict.fromkeys(names))


def search_specs(
    names: Sequence[str], task: TaskView, max_shots: int
) -> tuple[list[StrategySpec], dict[str, str]]:
    """The (strategy, k) choices a search tries for ``names`` on this task, ``direct``
    first, and why each left-out strategy cannot apply. Strategies whose ``k`` is the
    number of exemplars get it from the searched shots (their spec here has ``k = 1``)."""
    specs: list[StrategySpec] = []
    skipped: dict[str, str] = {}
    for name in sorted(names, key=lambda n: (n != "direct", strategy_names().index(n))):
        strat = get_strategy(name)
        why = strat.applies(task)
        if why is None and strat.demos != "fixed" and not max_shots:
            why = "needs exemplars (--max-shots is 0)"
        if why is not None:
            skipped[name] = why
            continue
        specs += [StrategySpec(name, k) for k in type(strat).ks]
    specs.sort(key=lambda s: (not s.is_direct, get_strategy(s).relative_cost()))
    return specs, skipped


def majority(answers: Sequence[str]) -> int:
    """Index of the first answer of the most frequent non-empty answer (ties: the one seen
    first; all empty: 0)."""
    counts = Counter(a for a in answers if a)
    if not counts:
        return 0
    top = max(counts.values())
    return next(i for i, a in enumerate(answers) if a and counts[a] == top)


def with_trigger(query: str, trigger: str) -> str:
    """``query`` followed by a reasoning trigger. The trigger goes with the input, not the
    instruction: in a system message a small chat model reads past it (qwen2.5-coder-0.5b
    answered BBH navigate with a bare "No" 60 times out of 60) and after the input it
    reasons first."""
    return f"{query}\n\n{trigger}"


ENTRY_POINTS = "promptlathe.strategies"
"""The entry-point group installed packages declare strategies under (``name =
"module:Class"``, a :class:`Strategy` subclass)."""

_loaded = False


def _load_builtins() -> None:
    """Import every public module of this package (each registers its strategy), then the
    strategies installed packages declare under :data:`ENTRY_POINTS`."""
    global _loaded
    if _loaded:
        return
    load_registry("promptlathe.strategies", ENTRY_POINTS, STRATEGIES, Strategy, "strategy")
    _loaded = True
