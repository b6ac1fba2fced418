"""How a setting of :class:`~promptlathe.optimizers.OptimizeConfig` is declared once, with its
field, and offered as a command-line option."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field
from typing import Any

SAME: Any = type("Same", (), {"__repr__": lambda self: "SAME"})()
"""A :class:`Setting`'s ``cli_default`` when the option's default is the field's."""


@dataclass(frozen=True)
class Setting:
    """How a setting is offered as a command-line option, declared once with its field:
    the CLI's options (help, range, flags) are generated from it, and the same range is what
    :class:`OptimizeConfig` checks, whether it came from the CLI, Python or a saved file.

    Attributes:
        help: the option's help.
        range: inclusive bounds of an integer setting.
        flags: the option's names when they are not ``--<field-name>``.
        cli_type: the option's type when it differs (a file is a ``Path``; a list is typed
            comma-separated).
        cli_default: the option's default when it differs from the field's (``None``: worked
            out by the command, e.g. ``--out`` from the task's name).
        metavar: how the help names the value.
    """

    help: str
    range: tuple[int, int] | None = None
    flags: tuple[str, ...] = ()
    cli_type: Any = None
    cli_default: Any = SAME
    metavar: str | None = None

    def flag(self, name: str) -> str:
        return self.flags[0] if self.flags else "--" + name.replace("_", "-")


def setting(
    default: Any = MISSING,
    *,
    help: str,
    factory: Callable[[], Any] | None = None,
    **how: Any,
) -> Any:
    """A field of :class:`OptimizeConfig` that is also a command-line option."""
    meta = {"setting": Setting(help=help, **how)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    if default is MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def option_of(f: Field[Any]) -> Setting | None:
    """The option a field of :class:`OptimizeConfig` is offered as (``None``: Python only)."""
    opt = f.metadata.get("setting")
    return opt if isinstance(opt, Setting) else None
