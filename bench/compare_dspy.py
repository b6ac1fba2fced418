"""Benchmark: promptlathe against DSPy on the same model, data, splits and metric.

One ``python -m llama_cpp.server`` process serves the task model on 127.0.0.1 and, with
``--proposer-model``, a second one serves the proposer (the model that writes instructions:
MIPROv2's prompt model, GEPA's reflection LM, promptlathe's proposer). Every method talks to
them over HTTP, so LM calls are counted the same way for everyone: by the servers' access logs
(cross-checked against DSPy's LM callbacks and promptlathe's ``calls_used``). A method's
optimization calls are its task-model and proposer calls together.

Methods (each run on each task):

* ``seed``        -- the seed instruction zero-shot (promptlathe's Evaluator, HTTP backend);
* ``dspy-bfrs``   -- ``dspy.BootstrapFewShotWithRandomSearch`` on ``dspy.Predict``
  (signature ``input -> output``, instructions = the seed instruction);
* ``dspy-mipro``  -- ``dspy.MIPROv2(auto="light")``;
* ``dspy-gepa``   -- ``dspy.GEPA(auto="light")`` (reflection LM = the proposer) at its own
  budget (``--gepa-calls N`` caps its metric calls instead);
* ``capo``        -- CAPO from ``promptolution`` at its defaults (bench/_capo.py), the proposer
  as its meta model;
* ``promptlathe`` -- ``promptlathe.optimize`` at its defaults with a call budget of
  ``max(40, ratio * calls of the cheapest peer on that task)``;
* ``promptlathe-reflect`` -- the same with ``optimizer="reflect,joint"``.

DSPy and promptolution are bench-only dependencies, best installed apart from the development
environment (their requirements move shared packages such as click)::

    python -m venv --system-site-packages /tmp/peers
    /tmp/peers/bin/pip install dspy promptolution

Quick run (a few minutes on 2 CPU cores)::

    python bench/compare_dspy.py --model smollm2-135m --tasks ape/negation --n-train 12 \
        --n-val 8 --n-test 8 --bfrs-candidates 2 --methods seed,dspy-bfrs,promptlathe

The full default run (6 tasks, 50/50/100 examples, all methods) takes many hours on a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _capo import import_promptolution, run_capo  # bench/ is on the path when run

from promptlathe import Decoding, Evaluator, Prompt, get_metric
from promptlathe._stats import wilson_interval
from promptlathe.errors import PromptlatheError
from promptlathe.lms import get_lm, resolve_embedded
from promptlathe.metrics import Metric
from promptlathe.metrics._labels import label_set_of
from promptlathe.tasks import Example, load_examples, read_meta

REPO = Path(__file__).resolve().parents[1]
METHODS = (
    "seed", "dspy-bfrs", "dspy-mipro", "dspy-gepa", "capo", "promptlathe", "promptlathe-reflect"
)  # fmt: skip
DSPY_METHODS = ("dspy-bfrs", "dspy-mipro", "dspy-gepa")
PEER_METHODS = (*DSPY_METHODS, "capo")
PL_METHODS = {"promptlathe": None, "promptlathe-reflect": "reflect,joint"}  # None: the default
DEFAULT_TASKS = "ape/negation,ape/sum,ape/synonyms,bbh/navigate,bbh/snarks,bbh/temporal_sequences"
NO_ERROR_LIMIT = 10**9  # DSPy stops an optimizer after max_errors failures (default 10)


# ---- the model server -------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m llama_cpp.server`` on a free port; counts completion requests in its log.

    uvicorn writes one access-log line per request (``"POST /v1/chat/completions HTTP/1.1"``),
    including retried and failed ones, so the count covers every call any client made.
    """

    def __init__(self, model_path: Path, alias: str, n_ctx: int, log_path: Path) -> None:
        self.alias = alias
        self.log_path = log_path
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(n_ctx),
            "--model_alias",
            alias,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0
        self._posts = 0

    def start(self, timeout: float = 180.0) -> None:
        with self.log_path.open("wb") as fh:
            self.proc = subprocess.Popen(self._cmd, stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"model server exited early:\n{self._tail()}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"model server did not start within {timeout:.0f} s:\n{self._tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"model server is not running:\n{self._tail()}")

    def _tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def posts(self) -> int:
        """Completion requests logged so far (waits briefly for the log to settle)."""
        last = -1
        for _ in range(20):
            with self.log_path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
            end = chunk.rfind(b"\n") + 1  # only whole lines
            for line in chunk[:end].splitlines():
                if b'"POST /v1/' in line and b"completions" in line:
                    self._posts += 1
            self._offset += end
            if self._posts == last:
                break
            last = self._posts
            time.sleep(0.15)
        return self._posts


# ---- data -----------------------------------------------------------------------------------
@dataclass
class TaskData:
    name: str
    train: list[Example]
    val: list[Example]
    test: list[Example]
    instruction: str
    metric: Metric
    notes: list[str] = field(default_factory=list)

    def constant(self) -> tuple[str, float]:
        """The best constant answer on test among the training targets' labels (a label
        task) or its most common target, and its accuracy: a method that scores no better is
        hollow. (The methods' own most frequent answers are not all kept, so a constant a
        method falls into on a generation task is not caught here.)"""
        firsts = [e.target.strip() for e in self.train + self.val]
        labels = label_set_of(firsts)
        candidates = sorted(labels) if labels else [Counter(firsts).most_common(1)[0][0]]
        acc = {c: sum(self.metric.score(c, list(e.targets)) for e in self.test) / len(self.test)
               for c in candidates}  # fmt: skip
        best = max(acc, key=lambda c: acc[c])
        return best, acc[best]


def load_task(data: Path, name: str, n_train: int, n_val: int, n_test: int, seed: int) -> TaskData:
    suite, _, task = name.partition("/")
    if not task:
        raise SystemExit(f"--tasks: {name!r} is not suite/task (e.g. ape/negation)")
    base = data / suite
    train_file, test_file = base / f"{task}.train.jsonl", base / f"{task}.test.jsonl"
    if not test_file.is_file():
        raise SystemExit(f"--tasks: {name}: {test_file} not found")
    notes: list[str] = []
    if train_file.is_file():  # APE: a train pool and a separate test file
        pool = load_examples(train_file)
        random.Random(seed).shuffle(pool)
        train, val = pool[:n_train], pool[n_train : n_train + n_val]
        test = load_examples(test_file)[:n_test]
    else:  # BBH: only a test file; carve train / val / test from it
        pool = load_examples(test_file)
        random.Random(seed).shuffle(pool)
        train, val = pool[:n_train], pool[n_train : n_train + n_val]
        test = pool[n_train + n_val : n_train + n_val + n_test]
    if len(train) < n_train or len(val) < n_val or len(test) < n_test:
        notes.append(
            f"{name}: only {len(train)} train / {len(val)} val / {len(test)} test examples "
            f"(asked {n_train} / {n_val} / {n_test})"
        )
    if len(train) < 2 or len(val) < 1 or len(test) < 1:
        raise SystemExit(f"{name}: too few examples for the requested split")
    meta = read_meta(test_file)
    metric = get_metric(meta.metric, [e.target for e in train + val])
    return TaskData(name, train, val, test, meta.description or "", metric, notes)


def write_jsonl(path: Path, examples: list[Example]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for e in examples:
            rec = {"id": e.id, "input": e.input, "target": e.target, "targets": list(e.targets)}
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


# ---- results --------------------------------------------------------------------------------
@dataclass
class Row:
    task: str
    method: str
    accuracy: float
    n: int
    ci95: tuple[float, float]
    opt_calls: int
    test_calls: int
    opt_seconds: float
    test_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # the method crashed; the row holds what it spent until then
    hollow: bool = False  # no better on test than the task's best constant answer


def make_row(task: str, method: str, scores: list[float], **kw: Any) -> Row:
    n = len(scores)
    return Row(
        task, method, sum(scores) / n if n else 0.0, n, wilson_interval(sum(scores), n), **kw
    )


def failed_row(task: str, method: str, exc: BaseException, calls: int, secs: float) -> Row:
    msg = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    log(f"  {method} FAILED on {task} after {calls} calls: {msg[:300]}")
    return Row(task, method, float("nan"), 0, (0.0, 1.0), calls, 0, secs, 0.0, error=msg[:300])


# ---- methods: seed and promptlathe ----------------------------------------------------------
def run_seed(t: TaskData, server: Server, args: argparse.Namespace) -> Row:
    lm = get_lm(server.alias, base_url=server.base_url)
    before = server.posts()
    t0 = time.perf_counter()
    try:
        ev = Evaluator(lm, t.metric, Decoding(max_tokens=args.max_tokens, seed=args.seed))
        res = ev.evaluate(Prompt(instruction=t.instruction), t.test)
    finally:
        lm.close()
    secs = time.perf_counter() - t0
    posts = server.posts() - before
    return make_row(
        t.name,
        "seed",
        [r.score for r in res.records],
        opt_calls=0,
        test_calls=posts,
        opt_seconds=0.0,
        test_seconds=secs,
        extra={"evaluator_calls": res.calls},
    )


def optimizer_api() -> tuple[Any, Any, Any]:
    """``optimize``, ``OptimizeConfig``, ``make_plan`` (the package was renamed once)."""
    try:
        from promptlathe.optimizers import OptimizeConfig, make_plan, optimize
    except ImportError:  # before the rename: promptlathe.optimize was the package
        from promptlathe.optimize import OptimizeConfig, make_plan, optimize  # type: ignore
    return optimize, OptimizeConfig, make_plan


def promptlathe_budget(
    peer_calls: list[int], n_pool: int, n_test: int, args: argparse.Namespace
) -> tuple[int, int]:
    """The budget rule, raised to the smallest budget promptlathe's planner accepts."""
    _, OptimizeConfig, make_plan = optimizer_api()

    if args.promptlathe_budget is not None:
        wanted = args.promptlathe_budget
    elif peer_calls:
        wanted = max(40, round(args.ratio * min(peer_calls)))
    else:
        wanted = 300
    for budget in range(wanted, wanted + 2000, 5):
        try:
            cfg = OptimizeConfig(task="pool.jsonl", budget_calls=budget, max_tokens=args.max_tokens)
            make_plan(cfg, n_pool, n_test, scoring=False)
            return wanted, budget
        except PromptlatheError as exc:
            error = exc
    raise error  # not a budget problem (e.g. too few examples to split)


class Servers:
    """The task model's server and, when another model proposes, the proposer's."""

    def __init__(self, task: Server, proposer: Server | None) -> None:
        self.task = task
        self.proposer = proposer

    def posts(self) -> int:
        return self.task.posts() + (self.proposer.posts() if self.proposer else 0)

    def proposer_posts(self) -> int:
        return self.proposer.posts() if self.proposer else 0

    def check_alive(self) -> None:
        self.task.check_alive()
        if self.proposer:
            self.proposer.check_alive()


def run_promptlathe(
    t: TaskData,
    servers: Servers,
    args: argparse.Namespace,
    work: Path,
    peer_calls: list[int],
    method: str = "promptlathe",
) -> Row:
    optimize = optimizer_api()[0]
    server = servers.task
    proposer = servers.proposer or server
    pool = write_jsonl(work / "data" / t.name / "pool.jsonl", t.train + t.val)
    test = write_jsonl(work / "data" / t.name / "test.jsonl", t.test)
    try:
        wanted, budget = promptlathe_budget(
            peer_calls, len(t.train) + len(t.val), len(t.test), args
        )
    except PromptlatheError as exc:
        return failed_row(t.name, method, exc, 0, 0.0)
    if budget != wanted:
        log(f"  promptlathe: budget {wanted} is below what its planner accepts; using {budget}")

    def progress(ev: dict[str, Any]) -> None:
        if args.verbose:
            log(f"  [{ev['stage']}] {ev['calls']}/{ev['budget']} {ev['message']}")

    before, before_prop = servers.posts(), servers.proposer_posts()
    t0 = time.perf_counter()
    chain = PL_METHODS[method]
    extra_cfg = {"optimizer": chain} if chain is not None else {}
    try:
        result = optimize(
            str(pool),
            test=str(test),
            model=server.alias,
            base_url=server.base_url,
            proposer_model=proposer.alias,
            proposer_base_url=proposer.base_url if servers.proposer else None,
            instruction=t.instruction,
            metric=t.metric.name,
            budget_calls=budget,
            out=str(work / "runs" / method / t.name),
            max_tokens=args.max_tokens,
            seed=args.seed,
            callback=progress,
            **extra_cfg,
        )
    except Exception as exc:
        servers.check_alive()
        return failed_row(t.name, method, exc, servers.posts() - before, time.perf_counter() - t0)
    total_secs = time.perf_counter() - t0
    posts = servers.posts() - before
    proposer_calls = servers.proposer_posts() - before_prop
    assert result.test is not None
    seed_test = result.seed_test
    test_calls = result.test.calls
    seed_calls = seed_test.calls if seed_test is not None else 0
    test_secs = result.test.wall_seconds
    seed_secs = seed_test.wall_seconds if seed_test is not None else 0.0
    server_opt = posts - test_calls - seed_calls
    if server_opt != result.calls_used:
        log(
            f"  WARNING {method} on {t.name}: server saw {posts} requests, calls_used "
            f"{result.calls_used} + test {test_calls} + seed test {seed_calls}"
        )
    return make_row(
        t.name,
        method,
        [r.score for r in result.test.records],
        opt_calls=server_opt,
        test_calls=test_calls,
        opt_seconds=total_secs - test_secs - seed_secs,
        test_seconds=test_secs,
        extra={
            "budget_wanted": wanted,
            "budget": budget,
            "calls_used": result.calls_used,
            "seed_test_accuracy": seed_test.mean if seed_test is not None else None,
            "seed_test_calls": seed_calls,
            "best_prompt": result.best_prompt.to_dict(),
            "val": result.best.val,
            "confirm": result.best.confirm,
            "plan": result.plan.as_dict(),
            "proposer_calls": proposer_calls,
            "notes": getattr(result, "notes", []),
        },
    )


# ---- methods: DSPy --------------------------------------------------------------------------
def import_dspy() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
    try:
        import dspy
    except ImportError:
        raise SystemExit(
            "the DSPy methods need DSPy, a bench-only dependency: pip install dspy "
            "(or leave dspy-bfrs and dspy-mipro out of --methods)"
        ) from None
    return dspy


class DSPyHarness:
    """One ``dspy.LM`` on the server, with a callback counting every LM call (copies too)."""

    def __init__(self, dspy: Any, servers: Servers, args: argparse.Namespace) -> None:
        from dspy.utils.callback import BaseCallback

        self.dspy = dspy
        self.server = servers
        self.args = args
        server = servers.task

        class CallCounter(BaseCallback):
            def __init__(self) -> None:
                self.n = 0
                self._lock = threading.Lock()

            def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
                with self._lock:
                    self.n += 1

        self.counter = CallCounter()
        if hasattr(dspy, "configure_cache"):
            dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
        self.lm = self._lm(server, temperature=0.0, max_tokens=args.max_tokens)
        self._check_max_tokens()
        # MIPROv2's proposer writes structured, multi-field answers (dataset summary,
        # instruction); 64 tokens truncate them. GEPA's reflection LM rewrites whole
        # instructions (GEPA's documentation samples it at temperature 1). Both run on the
        # proposer's server when there is one.
        self.prompt_lm = self._lm(
            servers.proposer or server, temperature=1.0, max_tokens=args.proposer_max_tokens
        )
        dspy.configure(lm=self.lm)
        self.version = getattr(dspy, "__version__", "?")

    def _lm(self, server: Server, temperature: float, max_tokens: int) -> Any:
        """A ``dspy.LM`` on ``server`` that counts its calls. (Instance callbacks survive
        ``lm.copy()``, which BootstrapFewShot and MIPROv2's proposer use; ``lm.history`` does
        not: copies start empty.)"""
        kw: dict[str, Any] = {}
        if "engine" in inspect.signature(self.dspy.LM.__init__).parameters:
            # DSPy 3.4's default engine (lm15) sends OpenAI's `max_completion_tokens`, which
            # llama-cpp-python's server ignores: every DSPy call would then generate until the
            # context is full. The LiteLLM engine sends `max_tokens`.
            kw["engine"] = "litellm"
        return self.dspy.LM(
            f"openai/{server.alias}",
            api_base=server.base_url,
            api_key="none",
            temperature=temperature,
            max_tokens=max_tokens,
            cache=False,
            callbacks=[self.counter],
            **kw,
        )

    def _check_max_tokens(self) -> None:
        """One call that must stop at max_tokens (outside every measured phase)."""
        cap = self.args.max_tokens
        self.lm("Count from one to five hundred in words, separated by commas.")
        usage = self.lm.history[-1].get("usage") or {}
        used = int(usage.get("completion_tokens") or 0)
        if used > cap:
            raise RuntimeError(
                f"dspy.LM generated {used} tokens with max_tokens={cap}: this DSPy version "
                "does not send a max_tokens the llama.cpp server honours"
            )

    def examples(self, exs: list[Example]) -> list[Any]:
        return [
            self.dspy.Example(input=e.input, output=e.target, targets=list(e.targets)).with_inputs(
                "input"
            )
            for e in exs
        ]

    def metric_fn(self, metric: Metric):
        def dspy_metric(example: Any, pred: Any, trace: Any = None) -> float | bool:
            output = getattr(pred, "output", None)
            score = metric("" if output is None else str(output), example.targets)[1]
            # DSPy idiom: a trace means bootstrapping (accept only fully correct demos).
            return score >= 1.0 if trace is not None else score

        return dspy_metric

    def gepa_metric(self, metric: Metric):
        """GEPA's metric: the score, with feedback naming the expected answer on a miss."""

        def feedback_metric(
            gold: Any,
            pred: Any,
            trace: Any = None,
            pred_name: Any = None,
            pred_trace: Any = None,
            *rest: Any,
            **kw: Any,
        ) -> Any:
            output = getattr(pred, "output", None)
            answer, score = metric("" if output is None else str(output), gold.targets)
            if score >= 1.0:
                fb = "Correct."
            else:
                fb = f"Incorrect: the answer read was {answer!r}, expected {gold.targets[0]!r}."
            return self.dspy.Prediction(score=score, feedback=fb)

        return feedback_metric

    def student(self, instruction: str) -> Any:
        sig = self.dspy.Signature("input -> output", instruction)
        return self.dspy.Predict(sig)

    @contextlib.contextmanager
    def counted(self) -> Iterator[dict[str, Any]]:
        box: dict[str, Any] = {}
        c0, p0, t0 = self.counter.n, self.server.posts(), time.perf_counter()
        try:
            yield box
        finally:
            box["seconds"] = time.perf_counter() - t0
            box["callbacks"] = self.counter.n - c0
            box["posts"] = self.server.posts() - p0

    def compile(self, method: str, t: TaskData) -> Any:
        dspy, args = self.dspy, self.args
        metric = self.metric_fn(t.metric)
        trainset, valset = self.examples(t.train), self.examples(t.val)
        student = self.student(t.instruction)
        with contextlib.redirect_stdout(sys.stderr):
            if method == "dspy-bfrs":
                opt = dspy.BootstrapFewShotWithRandomSearch(
                    metric=metric,
                    max_bootstrapped_demos=4,
                    max_labeled_demos=4,
                    num_candidate_programs=args.bfrs_candidates,
                    num_threads=1,
                    max_errors=NO_ERROR_LIMIT,
                )
                program = opt.compile(student, trainset=trainset, valset=valset)
            elif method == "dspy-gepa":
                budget: dict[str, Any] = (
                    {"max_metric_calls": self.gepa_calls} if self.gepa_calls else {"auto": "light"}
                )
                opt = dspy.GEPA(
                    metric=self.gepa_metric(t.metric),
                    **budget,
                    reflection_lm=self.prompt_lm,
                    num_threads=1,
                    seed=args.seed,
                )
                program = opt.compile(student, trainset=trainset, valset=valset)
            else:
                opt = dspy.MIPROv2(
                    metric=metric,
                    prompt_model=self.prompt_lm,
                    task_model=self.lm,
                    auto="light",
                    num_threads=1,
                    max_errors=NO_ERROR_LIMIT,
                    seed=args.seed,
                )
                kw: dict[str, Any] = {}
                param = inspect.signature(opt.compile).parameters.get("requires_permission_to_run")
                # Older versions ask on stdin unless told not to; 3.x deprecates the flag.
                if param is not None and param.default is True:
                    kw["requires_permission_to_run"] = False
                program = opt.compile(student, trainset=trainset, valset=valset, **kw)
        return program

    def evaluate(self, program: Any, t: TaskData) -> tuple[list[float], dict[str, Any]]:
        """Score the compiled program on test; a failed call (e.g. unparsable) scores 0."""
        scores: list[float] = []
        errors: dict[str, int] = {}
        with self.counted() as box, contextlib.redirect_stdout(sys.stderr):
            for ex in t.test:
                try:
                    pred = program(input=ex.input)
                    output = getattr(pred, "output", None)
                    scores.append(t.metric("" if output is None else str(output), ex.targets)[1])
                except Exception as exc:  # DSPy's own Evaluate also scores failures as 0
                    self.server.check_alive()
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    scores.append(0.0)
        if errors and sum(errors.values()) == len(t.test) and "AdapterParseError" not in errors:
            raise RuntimeError(f"every DSPy test call failed on {t.name}: {errors}")
        box["errors"] = errors
        return scores, box

    gepa_calls: int = 0

    def run(self, method: str, t: TaskData) -> Row:
        self.gepa_calls = self.args.gepa_calls or 0
        failure: Exception | None = None
        with self.counted() as opt:
            try:
                program = self.compile(method, t)
            except Exception as exc:  # e.g. MIPROv2's proposer cannot parse a tiny model
                self.server.check_alive()
                failure = exc
        if failure is not None:
            return failed_row(t.name, method, failure, opt["posts"], opt["seconds"])
        scores, test = self.evaluate(program, t)
        for phase, box in (("optimization", opt), ("test", test)):
            if box["callbacks"] != box["posts"]:
                log(
                    f"  note {method} on {t.name} ({phase}): DSPy callbacks counted "
                    f"{box['callbacks']} LM calls, the server {box['posts']} requests"
                )
        predictor = program.predictors()[0]
        return make_row(
            t.name,
            method,
            scores,
            opt_calls=opt["posts"],
            test_calls=test["posts"],
            opt_seconds=opt["seconds"],
            test_seconds=test["seconds"],
            extra={
                "opt_callbacks": opt["callbacks"],
                "test_callbacks": test["callbacks"],
                "test_errors": test["errors"],
                "instruction": predictor.signature.instructions,
                "n_demos": len(predictor.demos),
                **(
                    {"max_metric_calls": self.gepa_calls or "auto=light"}
                    if method == "dspy-gepa"
                    else {}
                ),  # fmt: skip
            },
        )


# ---- reporting ------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def summarize(rows: list[Row], methods: list[str]) -> dict[str, Any]:
    """Mean accuracy per method over the tasks it finished; the comparison uses the tasks that
    both promptlathe and the peer finished, and counts a task as promptlathe's win only where it
    beats the peer and is not hollow (no better than a constant answer)."""
    ok = {(r.task, r.method): r for r in rows if r.error is None}
    means: dict[str, dict[str, Any]] = {}
    for m in methods:
        rs = [r for r in rows if r.method == m and r.error is None]
        failed = [r.task for r in rows if r.method == m and r.error is not None]
        if rs or failed:
            means[m] = {
                "accuracy": sum(r.accuracy for r in rs) / len(rs) if rs else float("nan"),
                "opt_calls": sum(r.opt_calls for r in rs),
                "tasks": len(rs),
                "hollow": [r.task for r in rs if r.hollow],
                "failed": failed,
            }
    out: dict[str, Any] = {"means": means}
    pairs = {}
    ours = [m for m in PL_METHODS if m in means and means[m]["tasks"]]
    pl_method = max(ours, key=lambda m: means[m]["accuracy"]) if ours else "promptlathe"
    out["best_promptlathe"] = pl_method
    for m in PEER_METHODS:
        common = [
            task
            for task in dict.fromkeys(r.task for r in rows)
            if (task, m) in ok and (task, pl_method) in ok
        ]
        if common:
            pl = [ok[task, pl_method] for task in common]
            peer = [ok[task, m] for task in common]
            pairs[m] = {
                "tasks": common,
                "promptlathe": sum(r.accuracy for r in pl) / len(pl),
                "peer": sum(r.accuracy for r in peer) / len(peer),
                "promptlathe_calls": sum(r.opt_calls for r in pl),
                "peer_calls": sum(r.opt_calls for r in peer),
                "wins": [
                    a.task
                    for a, b in zip(pl, peer, strict=True)
                    if a.accuracy > b.accuracy and not a.hollow
                ],  # fmt: skip
                "losses": [
                    a.task for a, b in zip(pl, peer, strict=True) if a.accuracy < b.accuracy
                ],  # fmt: skip
            }
    if pairs:
        best = max(pairs, key=lambda m: pairs[m]["peer"])
        p = pairs[best]
        diff = 100 * (p["promptlathe"] - p["peer"])
        pct = 100 * p["promptlathe_calls"] / p["peer_calls"] if p["peer_calls"] else float("nan")
        n_all = len(dict.fromkeys(r.task for r in rows))
        scope = "" if len(p["tasks"]) == n_all else f" on the {len(p['tasks'])} tasks both finished"
        out.update(pairs=pairs, best_peer=best, diff_points=diff, calls_percent=pct)
        out["line"] = (
            f"{pl_method} mean − best peer mean = {diff:+.1f} points at {pct:.0f} % of its calls"
            f" (best peer: {best}{scope}; {pl_method} wins {len(p['wins'])} tasks, not hollow, "
            f"and loses {len(p['losses'])})"
        )
    return out


def format_table(rows: list[Row], summary: dict[str, Any]) -> str:
    head = (
        f"{'task':<24} {'method':<19} {'acc':>6} {'95% CI':>15} {'n':>4} "
        f"{'opt calls':>9} {'opt s':>8} {'test calls':>10} {'test s':>7}"
    )
    lines = [head, "-" * len(head)]
    last = None
    for r in rows:
        if last is not None and r.task != last:
            lines.append("")
        last = r.task
        lo, hi = r.ci95
        if r.error is not None:
            score = f"{'FAILED':>6} {'':>15} {'':>4}"
        else:
            mark = "*" if r.hollow else " "
            score = f"{100 * r.accuracy:>5.1f}%{mark}[{100 * lo:>5.1f}, {100 * hi:>5.1f}] {r.n:>4}"
        lines.append(
            f"{r.task:<24} {r.method:<19} {score} {r.opt_calls:>9} "
            f"{r.opt_seconds:>8.0f} {r.test_calls:>10} {r.test_seconds:>7.0f}"
        )
        if r.error is not None:
            lines.append(f"{'':<37}{r.error[:100]}")
    lines += ["-" * len(head), "* hollow: no better on test than the best constant answer"]
    lines += ["mean over tasks:"]
    for m, s in summary["means"].items():
        failed = f", failed on {', '.join(s['failed'])}" if s["failed"] else ""
        if s["hollow"]:
            failed += f", hollow on {', '.join(s['hollow'])}"
        acc = f"{100 * s['accuracy']:>5.1f}%" if s["tasks"] else "   n/a"
        lines.append(
            f"  {m:<19} {acc}  ({s['tasks']} tasks, {s['opt_calls']} optimization calls{failed})"
        )
    if "line" in summary:
        lines.append(summary["line"])
    return "\n".join(lines)


# ---- main -----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="qwen2.5-coder-0.5b", help="embedded model name")
    p.add_argument(
        "--proposer-model",
        default="qwen2.5-coder-1.5b",
        help="embedded model that writes instructions for every method ('' = the task model)",
    )
    p.add_argument(
        "--gepa-calls",
        type=int,
        default=None,
        help="dspy-gepa's max_metric_calls (default: its own budget, auto='light')",
    )
    p.add_argument("--tasks", default=DEFAULT_TASKS, help="comma-separated suite/task names")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=50)
    p.add_argument("--n-val", type=int, default=50)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--bfrs-candidates", type=int, default=16, help="DSPy's default: 16")
    p.add_argument("--capo-steps", type=int, default=10, help="promptolution's default: 10")
    p.add_argument(
        "--capo-max-tokens",
        type=int,
        default=256,
        help="max_tokens of CAPO's task-model answers (its prompts ask for reasoning, then the "
        "answer between markers)",
    )
    p.add_argument(
        "--ratio", type=float, default=0.5, help="promptlathe budget / the cheapest peer's calls"
    )
    p.add_argument(
        "--promptlathe-budget",
        type=int,
        default=None,
        help="fixed promptlathe budget (default: the --ratio rule; 300 without DSPy methods)",
    )
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument(
        "--proposer-max-tokens",
        type=int,
        default=256,
        help="max_tokens of MIPROv2's prompt model and GEPA's reflection LM",
    )
    p.add_argument("--n-ctx", type=int, default=4096)
    p.add_argument("--json", type=Path, default=None, help="write the table as JSON here")
    p.add_argument("--workdir", type=Path, default=None, help="keep run files here")
    p.add_argument("--verbose", action="store_true", help="promptlathe progress events")
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        p.error(f"--methods: unknown {bad}; choose from {','.join(METHODS)}")
    args.methods = [m for m in METHODS if m in methods]  # DSPy before promptlathe (budget)
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    return args


def _sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    dspy = import_dspy() if any(m in DSPY_METHODS for m in args.methods) else None
    if "capo" in args.methods:
        import_promptolution()
    tasks = [
        load_task(args.data, name, args.n_train, args.n_val, args.n_test, args.seed)
        for name in args.tasks
    ]
    for t in tasks:
        for note in t.notes:
            log(f"note: {note}")
    model_path = resolve_embedded(args.model)

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="compare_dspy_")
        work = Path(tmp.name)
    else:
        work = args.workdir
        work.mkdir(parents=True, exist_ok=True)
    server = Server(model_path, args.model, args.n_ctx, work / "server.log")
    proposer = None
    if args.proposer_model and args.proposer_model != args.model:
        proposer_path = resolve_embedded(args.proposer_model)
        proposer = Server(proposer_path, args.proposer_model, args.n_ctx, work / "proposer.log")
    servers = Servers(server, proposer)
    rows: list[Row] = []
    dspy_version = None
    try:
        log(f"starting {args.model} server ({model_path.name}) on {server.base_url}")
        server.start()
        if proposer is not None:
            log(f"starting the proposer {args.proposer_model} on {proposer.base_url}")
            proposer.start()
        harness = DSPyHarness(dspy, servers, args) if dspy is not None else None
        dspy_version = harness.version if harness else None
        for t in tasks:
            peer_calls: dict[str, int] = {}
            answer, constant = t.constant()
            log(f"{t.name}: the best constant answer {answer!r} scores {constant:.3f} on test")
            for method in args.methods:
                log(
                    f"{t.name}: {method} ({len(t.train)} train, {len(t.val)} val, "
                    f"{len(t.test)} test)"
                )
                if method == "seed":
                    row = run_seed(t, server, args)
                elif method in DSPY_METHODS:
                    assert harness is not None
                    row = harness.run(method, t)
                elif method == "capo":
                    row = run_capo(t, servers, args)
                else:
                    row = run_promptlathe(t, servers, args, work, list(peer_calls.values()), method)
                if row.error is None:
                    log(
                        f"  -> {100 * row.accuracy:.1f}% on {row.n}, {row.opt_calls} "
                        f"optimization calls, {row.opt_seconds:.0f} s"
                    )
                row.hollow = row.error is None and row.accuracy <= constant + 1e-9
                if method in PEER_METHODS and row.error is None:
                    peer_calls[method] = row.opt_calls
                rows.append(row)
                write_json(rows, args, model_path, dspy_version, partial=True)
    except BaseException:
        if tmp is not None:
            log(f"server log (tail):\n{server._tail(1500)}")
        if rows:
            log("interrupted; the rows finished so far:")
            report(rows, args, model_path, dspy_version, partial=True)
        raise
    finally:
        server.stop()
        if proposer is not None:
            proposer.stop()
        if tmp is not None:
            tmp.cleanup()
    report(rows, args, model_path, dspy_version)
    return 0


def report(
    rows: list[Row],
    args: argparse.Namespace,
    model_path: Path,
    dspy_version: str | None,
    partial: bool = False,
) -> None:
    summary = summarize(rows, args.methods)
    print(format_table(rows, summary), file=sys.stderr if partial else sys.stdout, flush=True)
    write_json(rows, args, model_path, dspy_version, partial)


def write_json(
    rows: list[Row],
    args: argparse.Namespace,
    model_path: Path,
    dspy_version: str | None,
    partial: bool,
) -> None:
    """The table as JSON (after every row too, so a long run that dies keeps what it did)."""
    summary = summarize(rows, args.methods)
    if args.json:
        payload = {
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "model_path": str(model_path),
            "dspy_version": dspy_version,
            "partial": partial,
            "rows": [asdict(r) for r in rows],
            **summary,
        }
        args.json.write_text(json.dumps(_json_safe(payload), indent=2, ensure_ascii=False) + "\n")


def _json_safe(value: Any) -> Any:
    """NaN (a failed method's accuracy) becomes null: strict JSON has no NaN."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
