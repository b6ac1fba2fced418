"""Shared fixtures: data locations, the real test model, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PROMPTLATHE_SHARED_DATA", REPO.parent / "shared" / "data"))
TEST_MODEL = "smollm2-135m"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"benchmark data not found at {SHARED_DATA}; set PROMPTLATHE_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def test_model_path() -> Path:
    """The real embedded test model (installed by scripts/test.sh)."""
    from promptlathe.lms import resolve_embedded

    return resolve_embedded(TEST_MODEL)


@pytest.fixture(scope="session")
def embedded_lm(test_model_path: Path):
    from promptlathe.lms._llama import LlamaCppLM

    lm = LlamaCppLM(test_model_path, name=TEST_MODEL, n_ctx=2048)
    yield lm
    lm.close()


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600):
    """Run ``promptlathe`` in a subprocess; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "promptlathe.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def first_lines(src: Path, dst: Path, n: int) -> Path:
    """``dst`` holding the first ``n`` examples of the task file ``src``: a small test split
    for the integration tests that are not about the test stage."""
    dst.write_text("\n".join(src.read_text(encoding="utf-8").splitlines()[:n]) + "\n")
    return dst


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1 for the session (scripts/test.sh installs it)."""
    pytest.importorskip("psycopg", reason="pip install 'promptlathe[postgres]'")
    from tests.postgres import postgres_server

    try:
        with postgres_server() as url:
            yield url
    except RuntimeError as exc:
        if "not installed" in str(exc) and os.geteuid() != 0:  # scripts/test.sh installs it as root
            pytest.skip(str(exc))
        raise
