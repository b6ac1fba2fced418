"""The run's settings are declared once (OptimizeConfig's fields): the optimize command's
options, their help and ranges, and the checks of a config from Python or a saved file all
come from that one declaration."""

from __future__ import annotations

from dataclasses import fields

import pytest
from typer.main import get_command

from promptlathe.cli._app import app
from promptlathe.errors import PromptlatheError
from promptlathe.optimizers import OptimizeConfig
from promptlathe.optimizers._setting import option_of


def _options() -> dict[str, object]:
    command = get_command(app).commands["optimize"]  # type: ignore[attr-defined]
    return {p.name: p for p in command.params}


def test_every_declared_setting_is_an_option_with_its_help_and_range() -> None:
    options = _options()
    declared = [(f, option_of(f)) for f in fields(OptimizeConfig)]
    offered = [(f, o) for f, o in declared if o is not None]
    # Python-only: alpha; prices (typed as --cost, a run option, which fills it)
    assert {f.name for f, o in declared if o is None} == {"alpha", "prices"}
    for f, opt in offered:
        param = options[f.name]
        assert opt.flag(f.name) in param.opts  # type: ignore[attr-defined]
        assert param.help == opt.help  # type: ignore[attr-defined]
        if opt.range is not None:
            assert (param.min, param.max) == opt.range  # type: ignore[attr-defined]
    # the command's own options are not settings of the run
    assert {"resume", "workers", "worker", "report", "progress"} <= set(options)


@pytest.mark.parametrize(
    ("field", "value"), [("budget_calls", 19), ("max_shots", 17), ("seed", -1), ("threads", 0)]
)
def test_a_config_out_of_its_declared_range_names_the_option(field: str, value: int) -> None:
    f = next(f for f in fields(OptimizeConfig) if f.name == field)
    opt = option_of(f)
    assert opt is not None and opt.range is not None
    with pytest.raises(PromptlatheError, match=f"^{opt.flag(field)} {value} must be an integer"):
        OptimizeConfig(task="t.jsonl", **{field: value})


def test_the_cli_refuses_the_same_bounds(tmp_path) -> None:
    from tests.conftest import run_cli

    r = run_cli("optimize", "--task", str(tmp_path / "t.jsonl"), "--max-shots", "17")
    assert (
        r.returncode == 2 and "--max-shots" in r.stderr and "less than or equal to 16" in r.stderr
    )


def test_help_shows_every_option_name_whole_at_80_columns() -> None:
    from tests.conftest import run_cli

    r = run_cli("optimize", "--help", env={"COLUMNS": "80"})
    assert r.returncode == 0
    for name in ("--proposer-base-url", "--max-cost-per-example", "--reasoning-tokens"):
        assert name in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 80


def test_version() -> None:
    from importlib.metadata import version

    from tests.conftest import run_cli

    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"promptlathe {version('promptlathe')}"
