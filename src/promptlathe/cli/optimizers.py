"""``promptlathe optimizers``: the optimizer stages installed, to chain with ``--optimizer``."""

from __future__ import annotations

import typer

from promptlathe.cli._app import app


@app.command("optimizers")
def optimizers_cmd() -> None:
    """List the optimizer stages (built in and from installed plug-ins), a line each."""
    from promptlathe.optimizers import OPTIMIZERS, optimizer_names
    from promptlathe.optimizers._config import OptimizeConfig

    default = OptimizeConfig.__dataclass_fields__["optimizer"].default
    for name in optimizer_names():
        typer.echo(f"{name}\t{OPTIMIZERS[name].summary}")
    typer.echo(f"(chain them with commas; the default is --optimizer {default})")
