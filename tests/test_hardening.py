"""Regression tests for the hardening issue: lost work, clashing runs, secrets, code from data,
HTTP failures, interrupted runs and what the CLI prints."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from promptlathe import Prompt
from promptlathe.errors import BudgetExhausted, ModelError, PromptlatheError
from promptlathe.lms import CachedLM, GenerationRequest, ScriptedLM
from promptlathe.lms import _http as http_mod
from promptlathe.lms._http import OpenAICompatLM, redact_url
from promptlathe.optimizers import Budget, Optimization, OptimizeConfig
from promptlathe.optimizers._lock import RunInUseError
from promptlathe.store import Store
from tests.test_fuzz_inputs import assert_one_line_error, invoke
from tests.test_optimize import _cfg, make_lm

OK_BODY = {
    "choices": [{"message": {"content": "ok"}, "text": "ok", "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
}


def _req(text: str = "hi") -> GenerationRequest:
    return GenerationRequest.chat([{"role": "user", "content": text}])


def _http(handler: Callable[[httpx.Request], httpx.Response], **kw) -> OpenAICompatLM:
    kw.setdefault("backoff", 0.0)
    return OpenAICompatLM(
        "http://127.0.0.1:1/v1", "m", transport=httpx.MockTransport(handler), **kw
    )


# ---- HTTP backend ---------------------------------------------------------------------------
def test_http_200_with_html_is_a_clear_error() -> None:
    lm = _http(lambda r: httpx.Response(200, text="<html><body>Welcome</body></html>"))
    with pytest.raises(ModelError, match="non-JSON") as exc:
        lm.generate([_req()])
    assert "\n" not in str(exc.value)


def test_http_json_without_choices_is_a_clear_error() -> None:
    lm = _http(lambda r: httpx.Response(200, json={"detail": "hello"}))
    with pytest.raises(ModelError, match="without 'choices'"):
        lm.generate([_req()])


def test_http_404_html_is_one_line_without_tags() -> None:
    page = "<html>\n<head><title>404</title></head>\n<body>\n<h1>Not Found</h1>\n</body>\n</html>\n"
    lm = _http(lambda r: httpx.Response(404, text=page))
    with pytest.raises(ModelError) as exc:
        lm.generate([_req()])
    msg = str(exc.value)
    assert "\n" not in msg and "<" not in msg and "404" in msg and "Not Found" in msg


def test_http_retries_5xx_and_timeouts_then_succeeds(monkeypatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(http_mod.time, "sleep", sleeps.append)
    answers = iter(["timeout", 503, 429, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        a = next(answers)
        if a == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(a, json=OK_BODY)

    assert _http(handler, max_retries=5).generate([_req()])[0].text == "ok"
    assert len(sleeps) == 3


def test_http_no_sleep_after_the_last_attempt(monkeypatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(http_mod.time, "sleep", sleeps.append)
    lm = _http(lambda r: httpx.Response(503, headers={"Retry-After": "7"}), max_retries=2)
    with pytest.raises(ModelError, match="3 attempts"):
        lm.generate([_req()])
    assert sleeps == [7.0, 7.0]  # between attempts 1-2 and 2-3, none after the third


def test_http_retry_after_as_an_http_date(monkeypatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(http_mod.time, "sleep", sleeps.append)
    answers = iter([429, 200])
    date = formatdate(time.time() + 5, usegmt=True)

    def handler(request: httpx.Request) -> httpx.Response:
        code = next(answers)
        return httpx.Response(code, json=OK_BODY, headers={"Retry-After": date})

    _http(handler).generate([_req()])
    assert len(sleeps) == 1 and 2.0 <= sleeps[0] <= 6.0


def test_http_finished_calls_of_a_failed_batch_are_stored_and_only_they_are_charged(
    tmp_path: Path,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        content = json.loads(request.content)["messages"][0]["content"]
        if content == "bad":
            return httpx.Response(400, text="bad request")
        return httpx.Response(200, json={**OK_BODY, "choices": [{"message": {"content": content}}]})

    store = Store(tmp_path / "c.db")
    budget = Budget(store, 100)
    lm = CachedLM(_http(handler, concurrency=4), store, guard=budget.charge, refund=budget.refund)
    with pytest.raises(ModelError, match="400"):
        lm.generate([_req("a"), _req("bad"), _req("c"), _req("d")])
    assert store.count_calls() == 3
    assert budget.used == 3  # the failed call was given back
    again = lm.generate([_req("a"), _req("c"), _req("d")])
    assert [g.text for g in again] == ["a", "c", "d"] and all(g.cached for g in again)
    store.close()


def test_a_call_that_raises_is_not_charged(tmp_path: Path) -> None:
    def boom(req: GenerationRequest) -> str:
        raise ModelError("server died")

    store = Store(tmp_path / "c.db")
    budget = Budget(store, 10)
    lm = CachedLM(ScriptedLM(boom), store, guard=budget.charge, refund=budget.refund)
    with pytest.raises(ModelError):
        lm.generate([_req()])
    assert budget.used == 0
    store.close()


def test_credentials_never_reach_the_cache_key_the_config_or_messages(tmp_path: Path) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(500)

    lm = OpenAICompatLM(
        "http://alice:s3cret@127.0.0.1:1/v1",
        "m",
        transport=httpx.MockTransport(handler),
        max_retries=0,
    )
    assert "s3cret" not in lm.model_id and "alice" not in lm.model_id
    with pytest.raises(ModelError) as exc:
        lm.generate([_req()])
    assert "s3cret" not in str(exc.value)
    assert seen and seen[0].startswith("Basic ")  # sent as HTTP auth, not stored
    cfg = OptimizeConfig(task="t.jsonl", base_url="http://alice:s3cret@h:8000/v1", model="m")
    assert "s3cret" not in cfg.to_json() and "alice" not in cfg.to_json()
    assert redact_url("https://u:p@host/v1") == "https://host/v1"


def test_an_api_key_with_a_newline_is_refused_without_echoing_it(monkeypatch) -> None:
    monkeypatch.setenv("PROMPTLATHE_API_KEY", "sk-abc\nInjected: 1")
    with pytest.raises(ModelError) as exc:
        _http(lambda r: httpx.Response(200, json=OK_BODY))
    assert "sk-abc" not in str(exc.value) and "PROMPTLATHE_API_KEY" in str(exc.value)


# ---- run directory lock, workers --------------------------------------------------------------
def test_a_second_process_on_a_run_gets_a_clear_error(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    first = Optimization(cfg, lm=make_lm())
    cfg_path = str(tmp_path / "run" / "config.json")
    code = (
        "import sys\n"
        "from promptlathe.optimizers import Optimization, OptimizeConfig\n"
        "from promptlathe.lms import ScriptedLM\n"
        "from promptlathe.errors import PromptlatheError\n"
        f"cfg = OptimizeConfig.load(__import__('pathlib').Path({cfg_path!r}))\n"
        "try:\n"
        "    Optimization(cfg, resume=True, lm=ScriptedLM())\n"
        "except PromptlatheError as e:\n"
        "    print(e); sys.exit(3)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    first.close()
    assert r.returncode == 3, r.stderr
    assert f"run in use by pid {os.getpid()}" in r.stdout
    # Once released, a resume may take it.
    Optimization(cfg, resume=True, lm=make_lm()).close()


def test_the_lock_is_released_with_the_process(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    Optimization(cfg, lm=make_lm()).close()
    again = Optimization(cfg, resume=True, lm=make_lm())
    with pytest.raises(RunInUseError):
        Optimization(cfg, resume=True, lm=make_lm())
    again.close()


def test_a_failed_worker_fails_the_run_naming_its_log(tmp_path: Path) -> None:
    from promptlathe.optimizers._workers import wait

    log = tmp_path / "worker-1.log"
    with log.open("wb") as fh:
        p = subprocess.Popen(
            [sys.executable, "-c", "import sys; print('error: boom'); sys.exit(2)"],
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    with pytest.raises(PromptlatheError, match="worker") as exc:
        wait([(p, log)])
    assert "exit 2" in str(exc.value) and "error: boom" in str(exc.value)


# ---- budget and plan --------------------------------------------------------------------------
def test_the_plan_names_the_proposer_the_metric_and_counts_every_call(tmp_path: Path) -> None:
    run = Optimization(_cfg(tmp_path, test=None), lm=make_lm())
    try:
        lines = run.plan_lines(analysis_calls=357)
    finally:
        run.close()
    text = "\n".join(lines)
    assert "proposer: " in text and "metric: exact (given by --metric)" in text
    total = next(ln for ln in lines if ln.startswith("all model calls"))
    n_test = run.plan.n_test
    assert f"≤ {150 + 2 * n_test + 357} " in total and "report analyses ≤ 357" in total


def test_budget_refund_never_goes_below_zero(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    b = Budget(store, 5)
    b.charge(2)
    b.refund(5)
    assert b.used == 0
    b.charge(5)
    with pytest.raises(BudgetExhausted):
        b.charge(1)
    store.close()


# ---- code from data -------------------------------------------------------------------------
def test_a_sidecar_naming_code_is_refused_and_the_code_never_runs(
    capsys, monkeypatch, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('x')\ndef score(o, t):\n    return 1\n")
    task = tmp_path / "t.test.jsonl"
    task.write_text(
        "".join(json.dumps({"input": f"q{i}", "target": "b"}) + "\n" for i in range(60))
    )
    (tmp_path / "t.meta.json").write_text(json.dumps({"metric": f"{evil}:score"}))
    for args in (
        ["eval", "--task", str(task), "--cache", str(tmp_path / "c.db")],
        ["optimize", "--task", str(task), "--out", str(tmp_path / "run")],
    ):
        code, _, err = invoke(capsys, monkeypatch, *args)
        assert_one_line_error(code, err, ("t.meta.json", "--metric"))
    assert not marker.exists()


def test_report_and_workers_refuse_a_code_metric_read_back_from_config(tmp_path: Path) -> None:
    metric = tmp_path / "m.py"
    metric.write_text("def f(o, t):\n    return float(o.strip() == t[0])\n")
    cfg = _cfg(tmp_path, metric=f"{metric}:f")
    Optimization(cfg, lm=make_lm()).close()  # typed by the user: allowed
    loaded = OptimizeConfig.load(tmp_path / "run" / "config.json")
    with pytest.raises(PromptlatheError, match="--metric"):
        Optimization(loaded, resume=True, lm=make_lm(), code_metric_ok=False)
    Optimization(loaded, resume=True, lm=make_lm(), code_metric_ok=True).close()


# ---- a fake OpenAI-compatible server for CLI tests --------------------------------------------
@contextmanager
def fake_server(reply: Callable[[dict], str], delay: float = 0.0) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(delay)
            text = reply(body)
            data = json.dumps(
                {"choices": [{"message": {"content": text}, "text": text}], "usage": {}}
            ).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_run_prints_the_extracted_answer_one_line_per_input(
    capsys, monkeypatch, tmp_path: Path
) -> None:
    prompt = tmp_path / "best_prompt.json"
    Prompt("Negate the sentence.").save(prompt, metric="normalized", model="served")

    def reply(body: dict) -> str:
        query = body["messages"][-1]["content"].split(": ", 1)[-1]
        return f"A: {query} not.\nQ: A made-up extra example.\nA: more"

    with fake_server(reply) as url:
        args = ["run", "--prompt", str(prompt), "--base-url", url, "--cache", str(tmp_path / "c")]
        code, out, err = invoke(capsys, monkeypatch, *args, "one", "two", "three")
        assert code == 0, err
        assert out.splitlines() == ["one not.", "two not.", "three not."]
        code, out, _ = invoke(capsys, monkeypatch, *args, "--raw", "one")
        assert code == 0 and "made-up extra example" in out


def _interrupt_while_calling(tmp_path: Path, sig: signal.Signals) -> subprocess.CompletedProcess:
    """``eval`` against a server that hangs on the first request; ``sig`` is sent once that
    request has arrived (an event, not a guess at how long the imports take). The child starts
    with SIGINT at its default disposition whatever the test runner inherited (``nohup`` and
    background jobs start with it ignored)."""
    task = tmp_path / "t.jsonl"
    task.write_text("".join(json.dumps({"input": f"q{i}", "target": "a"}) + "\n" for i in range(5)))
    arrived, release = threading.Event(), threading.Event()

    def hang(body: dict) -> str:
        arrived.set()
        release.wait(timeout=30)  # released once the client has exited
        return "a"

    with fake_server(hang) as url:
        proc = subprocess.Popen(
            [sys.executable, "-m", "promptlathe.cli", "eval", "--task", str(task)]
            + ["--base-url", url, "--model", "m", "--cache", str(tmp_path / "c.db")]
            + ["--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        assert arrived.wait(timeout=120), "the request never reached the server"
        proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            release.set()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_says_it_was_interrupted_how_to_resume_and_exits_130(
    tmp_path: Path, sig: signal.Signals
) -> None:
    done = _interrupt_while_calling(tmp_path, sig)
    err = done.stderr
    assert done.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err and "rerun" in err


# ---- the report of a finished run is free and reproducible ----------------------------------
def test_a_report_rerun_makes_no_call_and_gives_the_same_numbers(tmp_path: Path) -> None:
    from promptlathe.report import AnalysisSizes, open_finished_run, report_run

    cfg = _cfg(tmp_path, budget_calls=80, val_size=16, confirm_size=8, test=None)
    run = Optimization(cfg, lm=make_lm())
    run.run()
    run.close()
    sizes = AnalysisSizes(format_calls=40, n_orders=3, order_examples=8, posix_inputs=2)
    numbers = []
    calls = []
    for _ in range(2):
        lm = make_lm()
        with open_finished_run(tmp_path / "run", lm=lm) as opened:
            assert opened.run.log and opened.run.test  # read back, not rebuilt
            report_run(opened, sizes)
        calls.append(len(lm.calls) + len(lm.score_calls))
        data = json.loads((tmp_path / "run" / "report.json").read_text())
        measured = {k: dict(data[k]) for k in ("format_spread", "order")}
        for part in measured.values():
            part.pop("calls")  # new calls made by this report: the rerun made none
        numbers.append(json.dumps(measured))
    assert calls[0] > 0 and calls[1] == 0
    assert numbers[0] == numbers[1]


def test_the_token_budget_counts_scoring_calls(tmp_path: Path) -> None:
    from promptlathe.lms import ScoreRequest

    store = Store(tmp_path / "c.db")
    budget = Budget(store, 100, max_tokens=5)
    lm = CachedLM(ScriptedLM(), store, guard=budget.charge, refund=budget.refund)
    lm.score([ScoreRequest(continuation="one two three four five six")])
    assert store.tokens_used() == 6
    with pytest.raises(BudgetExhausted, match="token"):
        lm.score([ScoreRequest(continuation="more")])
    store.close()


def test_resume_refuses_a_task_file_whose_content_changed(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    Optimization(cfg, lm=make_lm()).close()
    Optimization(cfg, resume=True, lm=make_lm()).close()  # unchanged: fine
    task = Path(cfg.task)
    task.write_text(task.read_text().replace("apple", "APPLE", 1))
    with pytest.raises(PromptlatheError, match="content changed"):
        Optimization(cfg, resume=True, lm=make_lm())


def test_a_corrupted_model_file_with_its_old_mtime_is_caught_in_a_new_process(
    tmp_path: Path, monkeypatch
) -> None:
    import hashlib

    from promptlathe import _hashing
    from promptlathe.errors import ModelError
    from promptlathe.lms import _registry
    from promptlathe.lms._registry import EmbeddedModel

    monkeypatch.setenv("PROMPTLATHE_HOME", str(tmp_path / "home"))
    joined = tmp_path / "home" / "models" / "m.gguf"
    joined.parent.mkdir(parents=True)
    good = b"GGUF" + bytes(range(256)) * 40
    joined.write_bytes(good)
    model = EmbeddedModel(
        "m", (("pkg", "1"),), ("m.gguf",), len(good), hashlib.sha256(good).hexdigest(), "test model"
    )
    _registry._verify(model, joined)
    st = joined.stat()
    joined.write_bytes(good[:-1] + b"X")  # same size, one byte flipped ...
    os.utime(joined, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and the old mtime
    # A new process remembers nothing: the whole file is hashed again.
    monkeypatch.setattr(_registry, "_VERIFIED", set())
    monkeypatch.setattr(_hashing, "_MEMO", {})
    with pytest.raises(ModelError, match="run the same command again") as exc:
        _registry._verify(model, joined)
    assert "\n" not in str(exc.value)
    assert not joined.exists()  # removed, so the rerun re-joins it


def test_reconcile_gives_back_calls_reserved_by_a_killed_process(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    budget = Budget(store, 10)
    lm = CachedLM(
        ScriptedLM(), store, guard=budget.charge, refund=budget.refund, charge_to=Budget.NAME
    )
    lm.generate([_req("a"), _req("b")])
    budget.charge(3)  # reserved, then the process died before calling
    assert budget.used == 5
    assert Budget(store, 10).reconcile() == 3
    assert budget.used == 2
    store.close()


def test_a_moved_run_directory_is_reported_where_it_is(tmp_path: Path) -> None:
    import shutil

    from promptlathe.report import open_finished_run, report_run

    cfg = _cfg(tmp_path, budget_calls=60, val_size=16, confirm_size=8, test=None)
    first = Optimization(cfg, lm=make_lm())
    first.run()
    first.close()
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "run", moved)

    with open_finished_run(moved, lm=make_lm()) as opened:
        html, _ = report_run(opened)
    assert html.parent == moved and html.is_file()
