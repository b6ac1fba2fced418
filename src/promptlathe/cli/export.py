"""``promptlathe export``: a saved prompt in a format other tools read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from promptlathe.artifact import read_saved
from promptlathe.cli._app import app
from promptlathe.cli._options import _check_output_file
from promptlathe.errors import PromptlatheError
from promptlathe.exporters import export, exporter_names
from promptlathe.reporting import err_console
from promptlathe.tasks import load_examples


@app.command("export")
def export_cmd(
    prompt: Annotated[Path, typer.Argument(help="A prompt JSON file (e.g. best_prompt.json).")],
    to: Annotated[
        str,
        typer.Option(help="The format: messages, jinja, python, promptfoo or dspy."),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
    task: Annotated[
        Path | None,
        typer.Option(help="Labeled examples (.jsonl/.csv) to carry as tests (promptfoo)."),
    ] = None,
) -> None:
    """Write a saved prompt as OpenAI messages, a Jinja2 template, a Python module, a
    promptfoo config or a DSPy program state."""
    if to not in exporter_names():
        raise PromptlatheError(f"--to {to!r} is not one of {', '.join(exporter_names())}")
    if output is not None:
        _check_output_file(output, "--output")
    saved = read_saved(prompt)
    examples = load_examples(task) if task is not None else []
    text = export(saved, to, str(prompt), examples)
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PromptlatheError(f"--output {output}: cannot write it ({exc.strerror})") from None
    err_console.print(f"wrote {output}", markup=False, highlight=False)
