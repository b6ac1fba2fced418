"""Reliability drill: kill -9 the optimizer in every stage, then --resume.

The run is killed for real (SIGKILL, in a subprocess) just before a chosen model call; the
resumed run must repeat none of the calls made before the kill and end with the same winner
as an uninterrupted run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from promptlathe.lms import GenerationRequest, ScriptedLM, request_key
from promptlathe.optimizers import optimize
from tests.conftest import REPO
from tests.test_optimize import _cfg, scorer, task_model

KILLER = """
import json, os, signal, sys
from pathlib import Path
from promptlathe.lms import ScriptedLM, request_key
from promptlathe.optimizers import optimize
from tests.test_optimize import scorer, task_model

cfg, k, log = json.loads(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
made = 0

def respond(req):
    global made
    if made == k:
        os.kill(os.getpid(), signal.SIGKILL)
    made += 1
    with log.open("a") as fh:
        fh.write(request_key("scripted-upper", "generate", req.payload()) + "\\n")
    return task_model(req)

optimize(lm=ScriptedLM(respond, model_id="scripted-upper", scorer=scorer), **cfg)
"""

STAGES = ("bootstrap", "propose", "race instructions", "joint search", "confirm", "test")


def _key(req: GenerationRequest) -> str:
    return request_key("scripted-upper", "generate", req.payload())


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory):
    """An uninterrupted run, and the stage each of its model calls was made in."""
    tmp = tmp_path_factory.mktemp("clean")
    cfg = _cfg(tmp, budget_calls=150, out=str(tmp / "clean"))
    stage = {"now": "start"}
    stages: list[str] = []

    def respond(req: GenerationRequest) -> str:
        stages.append(stage["now"])
        return task_model(req)

    result = optimize(
        lm=ScriptedLM(respond, model_id="scripted-upper", scorer=scorer),
        callback=lambda ev: stage.update(now=ev["stage"]),
        **asdict(cfg),
    )
    return cfg, stages, result


@pytest.mark.parametrize("stage", STAGES)
def test_kill_9_in_each_stage_then_resume(clean_run, tmp_path: Path, stage: str) -> None:
    cfg, stages, clean = clean_run
    calls = [i for i, s in enumerate(stages) if s == stage]
    assert calls, f"the clean run made no call in stage {stage!r}"
    k = calls[len(calls) // 2]  # the middle call of the stage
    cfg = replace(cfg, out=str(tmp_path / "run"))
    log = tmp_path / "made.txt"
    r = subprocess.run(
        [sys.executable, "-c", KILLER, json.dumps(asdict(cfg)), str(k), str(log)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == -signal.SIGKILL, r.stderr
    before = log.read_text().split()
    assert len(before) == k

    again = ScriptedLM(task_model, model_id="scripted-upper", scorer=scorer)
    result = optimize(lm=again, resume=True, **asdict(cfg))
    repeated = set(before) & {_key(req) for req in again.calls}
    assert not repeated, f"{len(repeated)} calls repeated after a kill in {stage!r}"
    assert len(before) + len(again.calls) == len(stages)
    assert result.best_prompt.hash == clean.best_prompt.hash
    assert result.test is not None and clean.test is not None
    assert result.test.mean == clean.test.mean
