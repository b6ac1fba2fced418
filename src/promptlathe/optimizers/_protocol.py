"""The optimizer protocol and its registry.

An optimizer is one file that subclasses :class:`Optimizer` and registers itself with
:func:`register`. It proposes candidates and races them through the :class:`RunContext` it is
given; the framework owns the splits, the budget, confirmation, the test split, the artifact
and the report, so an optimizer can neither touch held-out data nor overspend.

Both stages must be resumable: a killed run calls them again on the same context, and every
model call and raced candidate is already in the store (cached calls cost nothing).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from promptlathe.optimizers._config import Plan
    from promptlathe.optimizers._context import RunContext


class Optimizer(ABC):
    """What every optimizer implements.

    Attributes:
        name: the ``--optimizer`` value.
        summary: one line for ``--help`` and the plan.
    """

    name: ClassVar[str]
    summary: ClassVar[str]

    @abstractmethod
    def plan_lines(self, plan: Plan) -> list[str]:
        """How this optimizer spends the search calls, printed before the run (indented
        stage lines in the plan's style)."""

    def warnings(self, plan: Plan, plan_for: Callable[[int], Plan]) -> list[str]:
        """Known weaknesses of this run's budget (e.g. too few rounds to search), printed
        with the plan before any model call; ``plan_for(budget)`` is the plan the same run
        would have with another budget (to say which budget would do)."""
        return []

    @abstractmethod
    def prepare(self, ctx: RunContext) -> None:
        """Everything one process must do before the search can be shared (demos,
        proposals, races); ends by calling :meth:`RunContext.set_space`."""

    def search(self, ctx: RunContext) -> None:
        """The part several processes may run at once on one storage (``--workers``); by
        default, the joint Optuna search over the space ``prepare`` set."""
        from promptlathe.optimizers._stages import joint_search

        joint_search(ctx)

    def result_notes(self, ctx: RunContext) -> list[str]:
        """What the result should say about how the search went (e.g. it under-searched)."""
        return []


OPTIMIZERS: dict[str, type[Optimizer]] = {}


def register(cls: type[Optimizer]) -> type[Optimizer]:
    """Class decorator: make ``cls`` available as ``--optimizer cls.name``."""
    OPTIMIZERS[cls.name] = cls
    return cls


def get_optimizer(name: str) -> Optimizer:
    """A new instance of the registered optimizer ``name``."""
    _load_builtins()
    try:
        return OPTIMIZERS[name]()
    except KeyError:
        from promptlathe.errors import PromptlatheError

        raise PromptlatheError(
            f"--optimizer {name!r} is not one of {', '.join(sorted(OPTIMIZERS))}"
        ) from None


def optimizer_names() -> list[str]:
    _load_builtins()
    return sorted(OPTIMIZERS)


def _load_builtins() -> None:
    """Import every public module of this package: each registers its optimizer, so a new
    optimizer is one new file here, with no list to edit."""
    import importlib
    import pkgutil

    import promptlathe.optimizers as package

    for mod in pkgutil.iter_modules(package.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{mod.name}")
