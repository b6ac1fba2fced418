"""Command-line options generated from the settings of :class:`OptimizeConfig`, where each is
declared once (help, range, flags): ``optimize`` offers them all, and the commands that share
one (``--model``, ``--seed``, ...) take the same declaration."""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields
from functools import cache
from pathlib import Path
from typing import Annotated, Any, get_origin, get_type_hints

import typer

from promptlathe.optimizers import OptimizeConfig
from promptlathe.optimizers._setting import SAME, Setting, option_of


@cache
def _declared() -> dict[str, tuple[Setting, Any, Any, bool]]:
    """Each setting offered on the command line: its declaration, option type, default and
    whether it is a list typed comma-separated."""
    hints = get_type_hints(OptimizeConfig)
    out = {}
    for f in fields(OptimizeConfig):
        opt = option_of(f)
        if opt is None:
            continue
        default = f.default
        if opt.cli_default is not SAME:
            default = opt.cli_default
        elif default is MISSING and callable(f.default_factory):
            default = f.default_factory()
        listed = get_origin(hints[f.name]) is list and opt.cli_type is str
        out[f.name] = (opt, opt.cli_type or hints[f.name], default, listed)
    return out


def option(name: str, *, help: str | None = None) -> Any:
    """The ``Annotated`` type of a command parameter that is the setting ``name`` (its help
    may be reworded for the command)."""
    opt, typ, _, _ = _declared()[name]
    how: dict[str, Any] = {"help": help or opt.help}
    if opt.range is not None:
        how.update(min=opt.range[0], max=opt.range[1])
    if opt.metavar:
        how["metavar"] = opt.metavar
    return Annotated[typ, typer.Option(*opt.flags, **how)]


def default(name: str) -> Any:
    """The option's default."""
    return _declared()[name][2]


def setting_parameters() -> list[inspect.Parameter]:
    """Every setting as a keyword parameter of a command, in the config's order."""
    return [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option(name), default=d)
        for name, (_, _, d, _) in _declared().items()
    ]


def config_values(values: dict[str, Any]) -> dict[str, Any]:
    """The settings among a command's parsed options, as :class:`OptimizeConfig` takes them
    (files as text, comma lists as lists); options left to the command (``None`` where the
    config has a default) are left out."""
    out: dict[str, Any] = {}
    for name, (opt, _, _, listed) in _declared().items():
        if name not in values:
            continue
        value = values[name]
        if isinstance(value, Path):
            value = str(value)
        elif listed and isinstance(value, str):
            value = value.split(",")
        if value is None and opt.cli_default is None:
            continue
        out[name] = value
    return out
