"""The ``promptlathe`` app, and the entry point that turns user errors into one line."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Annotated

import typer
from rich.markup import escape

from promptlathe.errors import PromptlatheError
from promptlathe.reporting import err_console

app = typer.Typer(
    no_args_is_help=True,
    # Plain help: it wraps to the terminal; the boxed layout cut option names at 80 columns.
    rich_markup_mode=None,
    help="Find the best prompt for a task automatically, with honest statistics.",
)


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"promptlathe {version('promptlathe')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Find the best prompt for a task automatically, with honest statistics."""


models_app = typer.Typer(no_args_is_help=True, help="List and install the embedded models.")
app.add_typer(models_app, name="models")


def _usage_error_types() -> tuple[type[BaseException], ...]:
    """The exception classes typer raises for usage errors.

    typer 0.29 bundles its own click (``typer._click``), whose ``ClickException`` derives
    from ``typer.exceptions.TyperException`` and is *not* ``click.ClickException``; older
    typers raise click's own. Both are caught, whichever is installed.
    """
    types: list[type[BaseException]] = []
    with contextlib.suppress(ImportError):
        from typer.exceptions import TyperException

        types.append(TyperException)
    with contextlib.suppress(ImportError):
        import click

        types.append(click.ClickException)
    return tuple(types)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _interrupted() -> None:
    resume = (
        "rerun the same command with --resume to continue"
        if "optimize" in sys.argv[1:2]
        else "rerun the same command to continue (finished calls come from the cache)"
    )
    err_console.print(
        f"interrupted: every finished call is saved; {resume}", highlight=False, markup=False
    )
    if threading.active_count() > 1:
        # A call still waits on a server in another thread (a batch runs concurrently); the
        # interpreter would join that thread before exiting, i.e. wait for the answer. What
        # finished is already saved, so leave now, as a kill would (runs resume from kills).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(130)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit code.

    Usage errors (unknown option, missing or malformed value) and :class:`PromptlatheError`
    exit 2; Ctrl-C (SIGINT) and SIGTERM say how to resume and exit 130. A process started
    with SIGINT ignored (``nohup``, a background job of a script) keeps ignoring it, as POSIX
    asks; SIGTERM (``kill PID``) stops it the same clean way.
    """
    signal.signal(signal.SIGTERM, _terminate)
    try:
        rv = app(standalone_mode=False, prog_name="promptlathe")
    except PromptlatheError as exc:
        err_console.print(
            f"[red]error:[/red] {escape(_one_line(str(exc)))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except _usage_error_types() as exc:
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        fmt = getattr(exc, "format_message", None)
        msg = _one_line(fmt() if callable(fmt) else str(exc))
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        err_console.print(
            f"[red]error:[/red] {escape(where + msg + hint)}", highlight=False, soft_wrap=True
        )
        sys.exit(int(getattr(exc, "exit_code", 2) or 2))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted", highlight=False, markup=False)
        sys.exit(1)
    # typer turns Ctrl-C into an exit code of 130 and returns it when not standalone.
    if rv == 130:
        _interrupted()
    if isinstance(rv, int) and rv:
        sys.exit(rv)
