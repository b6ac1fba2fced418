"""The ``promptlathe`` command line: one small module per command, each registering itself on
the app (``_app.py``); options several commands share are declared once (``_options.py``)."""

from promptlathe.cli import (  # noqa: F401
    cascade,
    check,
    evaluate,
    export,
    models,
    optimize,
    optimizers,
    report,
    run,
    status,
)
from promptlathe.cli._app import app, main

__all__ = ["app", "main"]
