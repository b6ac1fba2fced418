"""End to end with the real embedded model (smollm2-135m): eval, cache, resume, scoring."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptlathe import Decoding, Evaluator, Exemplar, Prompt, Store, get_metric
from promptlathe.lms import CachedLM, GenerationRequest, ScoreRequest
from promptlathe.lms._llama import LlamaCppLM
from promptlathe.tasks import load_examples
from tests.conftest import TEST_MODEL, run_cli

pytestmark = pytest.mark.integration


def _eval_args(task: Path, cache: Path, out: Path, limit: int) -> list[str]:
    return [
        "eval",
        "--task",
        str(task),
        "--instruction",
        "Negate the sentence.",
        "--shots",
        "2",
        "--model",
        TEST_MODEL,
        "--limit",
        str(limit),
        "--max-tokens",
        "24",
        "--cache",
        str(cache),
        "--json",
        str(out),
        "--no-progress",
    ]


def test_eval_cli_end_to_end_then_fully_cached(shared_data: Path, tmp_path: Path) -> None:
    task = shared_data / "ape" / "negation.test.jsonl"
    cache, out1, out2 = tmp_path / "c.sqlite", tmp_path / "a.json", tmp_path / "b.json"
    r1 = run_cli(*_eval_args(task, cache, out1, 5))
    assert r1.returncode == 0, r1.stderr
    assert "accuracy" in r1.stdout and "95% CI" in r1.stdout
    first = json.loads(out1.read_text())
    assert first["n"] == 5 and first["lm_calls"] == 5 and first["cache_hits"] == 0
    assert first["prompt_tokens"] > 0 and first["completion_tokens"] > 0
    rec = first["records"][0]
    assert set(rec) >= {"input", "request_hash", "output", "answer", "targets", "correct"}
    assert len(first["prompt"]["exemplars"]) == 2
    # the certificate of one prompt: plain exact binomial, printed and saved
    cert = first["certificate"]
    assert cert["n"] == 5 and cert["finalists"] == 1 and cert["lower"] <= first["accuracy"]
    assert "With probability ≥ 95 %" in r1.stdout
    # The two exemplars were drawn from the task file and are not evaluated.
    shown = {e["input"] for e in first["prompt"]["exemplars"]}
    assert not shown & {r["input"] for r in first["records"]}

    r2 = run_cli(*_eval_args(task, cache, out2, 5))
    assert r2.returncode == 0, r2.stderr
    second = json.loads(out2.read_text())
    assert second["lm_calls"] == 0 and second["cache_hits"] == 5
    assert [r["output"] for r in second["records"]] == [r["output"] for r in first["records"]]


def test_killed_eval_resumes_without_repeating_calls(shared_data: Path, tmp_path: Path) -> None:
    task = shared_data / "ape" / "negation.test.jsonl"
    cache, out = tmp_path / "c.sqlite", tmp_path / "r.json"
    n = 40  # more than one batch of the embedded model (2 x --parallel 16 requests)
    proc = subprocess.Popen(
        [sys.executable, "-m", "promptlathe.cli", *_eval_args(task, cache, out, n)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    done_before = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if cache.exists():
            with sqlite3.connect(cache) as c:
                try:
                    done_before = c.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
                except sqlite3.OperationalError:
                    done_before = 0
            if done_before >= 3:
                break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(cache) as c:
        done_before = c.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    assert 3 <= done_before < n, "the run should have been killed midway"

    r = run_cli(*_eval_args(task, cache, out, n))
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["n"] == n
    assert res["lm_calls"] == n - done_before
    assert res["cache_hits"] == done_before
    with sqlite3.connect(cache) as c:
        assert c.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == n


def test_prefix_reuse_gives_identical_greedy_outputs(
    shared_data: Path, test_model_path: Path
) -> None:
    examples = load_examples(shared_data / "ape" / "negation.test.jsonl")[:4]
    prompt = Prompt(
        instruction="Negate the sentence.",
        exemplars=(Exemplar("Zork is a game.", "Zork is not a game."),),
    )
    outputs = []
    for reuse in (True, False):
        lm = LlamaCppLM(test_model_path, name=TEST_MODEL, n_ctx=1024, prefix_reuse=reuse)
        ev = Evaluator(lm, get_metric("normalized"), Decoding(max_tokens=20))
        outputs.append([r.output for r in ev.evaluate(prompt, examples).records])
        lm.close()
    assert outputs[0] == outputs[1]
    assert all(o.strip() for o in outputs[0])


def test_log_probability_scoring_prefers_the_plausible_continuation(embedded_lm) -> None:
    ctx = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    good, bad = embedded_lm.score(
        [ScoreRequest.chat(ctx, "Paris"), ScoreRequest.chat(ctx, "Walrus carburetor")]
    )
    assert good.logprob < 0 and bad.logprob < 0
    assert good.logprob > bad.logprob
    assert good.n_tokens >= 1
    (prior,) = embedded_lm.score([ScoreRequest(continuation="Negate the sentence.")])
    assert prior.logprob < 0 and prior.n_tokens >= 3


def test_cached_lm_persists_real_calls(embedded_lm, tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite")
    lm = CachedLM(embedded_lm, store)
    req = GenerationRequest.chat([{"role": "user", "content": "Say hi."}], max_tokens=8)
    (a,) = lm.generate([req])
    (b,) = lm.generate([req])
    assert not a.cached and b.cached and a.text == b.text
    assert Store(tmp_path / "c.sqlite").count_calls(embedded_lm.model_id) == 1


def test_prompt_longer_than_context_is_a_clear_error(shared_data: Path, tmp_path: Path) -> None:
    r = run_cli(
        "eval",
        "--task",
        str(shared_data / "ape" / "negation.test.jsonl"),
        "--instruction",
        "Negate the sentence. " * 40,
        "--model",
        TEST_MODEL,
        "--n-ctx",
        "128",
        "--limit",
        "2",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--no-progress",
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "context window" in r.stderr and "negation.test.jsonl:1" in r.stderr


def test_prompt_prior_scores_every_token_of_the_serialization_and_end_of_text(
    embedded_lm,
) -> None:
    from promptlathe import Exemplar, Prompt
    from promptlathe.analysis import prompt_log_prior, serialize_prompt
    from promptlathe.analysis._bound import PRIOR_CONTEXT

    prompt = Prompt("Negate the sentence.", (Exemplar("It is red.", "It is not red."),))
    text = serialize_prompt(prompt)
    without_eot, with_eot = embedded_lm.score(
        [
            ScoreRequest(prompt=PRIOR_CONTEXT, continuation=text),
            ScoreRequest(prompt=PRIOR_CONTEXT, continuation=text, end_of_text=True),
        ]
    )
    assert with_eot.n_tokens == without_eot.n_tokens + 1 == embedded_lm.count_tokens(text) + 1
    assert with_eot.logprob < without_eot.logprob < 0
    assert prompt_log_prior(embedded_lm, prompt) == pytest.approx(with_eot.logprob)
    completion = prompt.with_(format=prompt.format.__class__(mode="completion"))
    assert prompt_log_prior(embedded_lm, completion) != pytest.approx(with_eot.logprob)


def test_an_unclosed_model_exits_without_a_traceback(test_model_path: Path) -> None:
    """The README's Python API snippet, without closing the model: no Llama.__del__ noise."""
    code = (
        "from promptlathe import Decoding, Evaluator, Prompt, get_lm, get_metric\n"
        "from promptlathe.tasks import Example\n"
        f"lm = get_lm({str(test_model_path)!r}, n_ctx=512)\n"
        "r = Evaluator(lm, get_metric('normalized'), Decoding(max_tokens=4)).evaluate(\n"
        "    Prompt('Say yes.'), [Example(input='Ready?', targets=('yes',), id='1')])\n"
        "print(r.n)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr


def test_threads_can_be_lowered_while_workers_share_the_cores(test_model_path: Path) -> None:
    from promptlathe.lms._llama import LlamaCppLM

    with LlamaCppLM(test_model_path, name=TEST_MODEL, n_ctx=512, n_threads=2) as lm:
        lm.set_threads(1)
        assert lm.n_threads == 1
        (out,) = lm.generate([GenerationRequest.text("1, 2, 3,", max_tokens=4)])
        assert out.text and out.completion_tokens > 0
