"""optuna-dashboard on a run directory (docs/watching.md): the dashboard's own WSGI app, asked
as its web page asks, lists the run's studies and their trials while the run is stopped and
after it finished. Skips where optuna-dashboard is not installed (it is in the dev extra)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from promptlathe.optimizers import Optimization
from tests.test_optimize import _cfg, make_lm

dashboard = pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is not installed")


def _get(app: Any, path: str, query: str = "") -> Any:
    status: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8080",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
    }
    body = b"".join(app(environ, lambda s, headers, exc=None: status.append(s)))
    assert status and status[0].startswith("200"), (path, status, body[:300])
    return json.loads(body)


def _studies(run_dir: Path) -> dict[str, Any]:
    app = dashboard.wsgi(f"sqlite:///{run_dir / 'study.db'}")
    listed = _get(app, "/api/studies")["study_summaries"]
    return {s["study_name"]: _get(app, f"/api/studies/{s['study_id']}", "after=0") for s in listed}


def test_the_dashboard_shows_a_stopped_and_a_finished_run(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, budget_calls=150)
    run = Optimization(cfg, lm=make_lm())
    run.prepare()  # stopped before the search, as a killed run would be
    run.close()
    assert "promptlathe-instructions" in _studies(Path(cfg.out))

    again = Optimization(cfg, resume=True, lm=make_lm())
    result = again.run()
    again.close()
    studies = _studies(Path(cfg.out))
    trials = [t for s in studies.values() for t in s["trials"]]
    assert trials and all(t["state"] in ("Complete", "Pruned", "Running", "Fail") for t in trials)
    done = [t for t in trials if t["state"] == "Complete"]
    assert done and all(0.0 <= t["values"][0] <= 1.0 for t in done)
    attrs = {a["key"] for t in done for a in t["user_attrs"]}
    assert {"prompt", "prompt_hash", "source"} <= attrs
    for study in studies.values():  # the dashboard's best trial is the study's best score
        scores = [t["values"][0] for t in study["trials"] if t["state"] == "Complete"]
        if scores:
            assert study["best_trials"][0]["values"][0] == max(scores)
    assert result.best.prompt is not None
