"""DSPy's optimizers as peers in the comparison bench (bench/compare.py): BootstrapFewShot
with random search, MIPROv2 and GEPA at their own defaults, on the same servers as every
other method, their calls counted by a DSPy callback and by the servers' logs."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from _peer_data import Row, TaskData, failed_row, log, make_row
from _peer_servers import Server, Servers

from promptlathe.metrics import Metric
from promptlathe.tasks import Example

NO_ERROR_LIMIT = 10**9  # DSPy stops an optimizer after max_errors failures (default 10)


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

    def evaluate(self, program: Any, t: TaskData) -> tuple[list[float], list[str], dict[str, Any]]:
        """Score the compiled program on test; a failed call (e.g. unparsable) scores 0."""
        scores: list[float] = []
        outputs: list[str] = []
        errors: dict[str, int] = {}
        with self.counted() as box, contextlib.redirect_stdout(sys.stderr):
            for ex in t.test:
                try:
                    pred = program(input=ex.input)
                    output = getattr(pred, "output", None)
                    text = "" if output is None else str(output)
                    scores.append(t.metric(text, ex.targets)[1])
                    outputs.append(text)
                except Exception as exc:  # DSPy's own Evaluate also scores failures as 0
                    self.server.check_alive()
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    scores.append(0.0)
                    outputs.append(f"<{type(exc).__name__}>")
        if errors and sum(errors.values()) == len(t.test) and "AdapterParseError" not in errors:
            raise RuntimeError(f"every DSPy test call failed on {t.name}: {errors}")
        box["errors"] = errors
        return scores, outputs, box

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
        scores, outputs, test = self.evaluate(program, t)
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
            outputs,
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
