"""The optimizer protocol and its registry.

An optimizer is a *stage*: it takes the candidates it starts from and returns the candidates
it found (DSPy's program-in, program-out shape), so stages chain: ``--optimizer reflect,joint``
runs ``joint.run(ctx, reflect.run(ctx, [seed]))``. A stage is one file that subclasses
:class:`Optimizer` and registers itself with :func:`register`, or a third-party class named
by an entry point in the ``promptlathe.optimizers`` group.

The framework owns the splits, the budget's ceiling, confirmation, the test split, the
artifact and the report; a stage sees train and validation only (:class:`RunContext`) and
cannot spend the confirmation reserve. A stage must be resumable: a killed run calls it again
with the same start, and every model call and raced candidate is already in the store (cached
calls cost nothing).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from promptlathe._plugins import load_registry
from promptlathe.errors import PromptlatheError

if TYPE_CHECKING:
    from promptlathe.optimizers._context import RunContext
    from promptlathe.optimizers._plan import Plan
    from promptlathe.prompts import Prompt

ENTRY_POINTS = "promptlathe.optimizers"
"""The entry-point group third-party optimizers register under (name = ``--optimizer`` value,
value = ``module:Class``)."""


class Optimizer(ABC):
    """What every optimizer stage implements.

    Attributes:
        name: the ``--optimizer`` value.
        summary: one line for ``--help`` and the plan.
        share: the fraction of the search calls the stage takes when another stage follows
            it (the last stage of a chain takes what is left); see
            :meth:`RunContext.stage_cap`.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    share: ClassVar[float] = 0.5

    @abstractmethod
    def plan_lines(self, plan: Plan) -> list[str]:
        """How this stage spends its calls, printed before the run (indented lines in the
        plan's style)."""

    def set_aside(self, budget: int, n_screen_demos: int) -> dict[str, int]:
        """Calls this stage needs before any search, by name (e.g. ``{"propose": 14}`` for
        writing instructions), taken out of the search's share when the plan is made;
        ``n_screen_demos`` is the likelihood screen's demos per proposal (0: no screen)."""
        return {}

    def warnings(self, plan: Plan, plan_for: Callable[[int], Plan]) -> list[str]:
        """Known weaknesses of this run's budget (e.g. too few rounds to search), printed
        with the plan before any model call; ``plan_for(budget)`` is the plan the same run
        would have with another budget (to say which budget would do)."""
        return []

    @abstractmethod
    def run(self, ctx: RunContext, start: Sequence[Prompt]) -> list[Prompt]:
        """Search from ``start`` (the seed, or what the previous stage returned, best first)
        and return the candidates worth carrying on, best first.

        Must hold: every candidate is raced through ``ctx.race`` (so it is logged and
        budgeted); the stage stops cleanly when ``ctx.budget`` runs out (a
        :class:`~promptlathe.errors.BudgetExhausted` escaping ``run`` ends the stage, and
        the framework carries on with ``start``); called again with the same ``start`` after
        a kill, it repeats no model call."""

    def join(self, ctx: RunContext) -> bool:
        """The part of the stage that extra worker processes may run beside the main one on
        one storage (``--workers``). Returns whether there was one to join (default: none)."""
        return False

    def result_notes(self, ctx: RunContext) -> list[str]:
        """What the result should say about how the stage went (e.g. it under-searched)."""
        return []


OPTIMIZERS: dict[str, type[Optimizer]] = {}


def register(cls: type[Optimizer]) -> type[Optimizer]:
    """Class decorator: make ``cls`` available as ``--optimizer cls.name``."""
    OPTIMIZERS[cls.name] = cls
    return cls


def get_optimizer(name: str) -> Optimizer:
    """A new instance of the registered optimizer ``name``."""
    _load()
    try:
        return OPTIMIZERS[name]()
    except KeyError:
        raise PromptlatheError(
            f"--optimizer {name!r} is not one of {', '.join(sorted(OPTIMIZERS))}"
        ) from None


def optimizer_names() -> list[str]:
    _load()
    return sorted(OPTIMIZERS)


def parse_chain(text: str) -> list[str]:
    """The stages of ``--optimizer a,b,...`` in order; a name that is not registered, an
    empty item or a stage named twice is a one-line error."""
    names = [n.strip() for n in text.split(",")]
    known = optimizer_names()
    for n in names:
        if n not in known:
            shown = repr(n) if n else "an empty name"
            raise PromptlatheError(
                f"--optimizer {text!r}: {shown} is not one of {', '.join(known)} "
                "(chain stages with commas, e.g. propose,joint)"
            )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise PromptlatheError(f"--optimizer {text!r}: {', '.join(twice)} named twice")
    return names


_loaded = False


def _load() -> None:
    """The built-in stages (one file each in this package, registering themselves), then
    those installed packages declare under the :data:`ENTRY_POINTS` group."""
    global _loaded
    if _loaded:
        return
    load_registry("promptlathe.optimizers", ENTRY_POINTS, OPTIMIZERS, Optimizer, "optimizer")
    _loaded = True
