"""The optimizer conformance suite, shipped so a plug-in author can run it on their own stage.

Every test here takes an ``optimizer`` fixture (a registered stage's name, or a chain) and
runs it on a scripted, noisy task model: the budget is never exceeded by one call, the
confirmation and test splits are never seen by a stage, a killed run resumes with no call
repeated, and the run log round-trips. Use it in a test module of your own::

    import pytest
    from promptlathe.testing.optimizers import *  # noqa: F403 (the suite's tests)

    @pytest.fixture(params=["my-stage", "my-stage,joint"])
    def optimizer(request):
        return request.param

(Optuna ships ``optuna.testing`` the same way.) Needs pytest.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from promptlathe.errors import PromptlatheError
from promptlathe.lms import GenerationRequest, ScriptedLM, request_key
from promptlathe.optimizers import LogEntry, Optimization, OptimizeConfig, RunLog, optimize
from promptlathe.store import Store

__all__ = [
    "REFLECTED",
    "REFLECTION",
    "make_config",
    "make_lm",
    "make_task",
    "noisy_model",
    "test_a_killed_run_resumes_without_repeating_a_call",
    "test_budget_is_never_exceeded_by_one_call",
    "test_the_optimizer_never_sees_confirmation_or_test",
    "test_the_run_log_round_trips",
    "user_inputs",
]

WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "maple",
    "tiger",
    "piano",
    "ocean",
    "lemon",
    "candle",
    "forest",
    "rocket",
    "silver",
    "garden",
    "window",
    "planet",
    "bridge",
    "castle",
    "dragon",
    "feather",
    "harbor",
    "island",
    "jungle",
    "kettle",
    "ladder",
    "marble",
    "needle",
    "orchid",
    "pepper",
    "quartz",
    "saddle",
    "tunnel",
    "velvet",
    "walnut",
    "yogurt",
    "zipper",
    "anchor",
    "barrel",
    "cactus",
    "dollar",
]


def make_task(path: Path, n: int = 120) -> Path:
    rows = []
    for i in range(n):
        text = f"{WORDS[i % len(WORDS)]} {WORDS[(i * 7 + 3) % len(WORDS)]} {i}"
        rows.append({"input": text, "target": text.upper()})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def user_inputs(lm: ScriptedLM) -> list[str]:
    out = []
    for r in lm.calls:
        users = [m["content"] for m in r.chat_messages if m["role"] == "user"]
        if users:
            out.append(users[-1])
    return out


REFLECTION = "You are improving the instruction a language model is given"
REFLECTED = "Rewrite the input in upper case letters, keeping every word."


def noisy_model(req: GenerationRequest) -> str:
    """Uppercases when told to, but not always. The instruction decides when it has a keyword:
    "every word" gets inputs whose number is not a multiple of 10 right (~90 %), "upper" those
    not a multiple of 4 (~75 %), "capital" those not a multiple of 3 (~67 %), "reverse" none;
    without one, two or more exemplars get those not a multiple of 5 right (~80 %), and
    otherwise it echoes the input (wrong). Proposers get plausible, differing answers."""
    msgs = req.chat_messages
    text = " ".join(m["content"] for m in msgs) if msgs else (req.prompt or "")
    if REFLECTION in text:
        return (
            f"Task: upper-case it.\nDiagnosis: it repeated the input unchanged.\n"
            f"New instruction:\n```\n{REFLECTED}\n```"
        )
    if "I gave a friend an instruction" in text:
        return "The instruction was to write the input in capital letters."
    if "Your task is to write an instruction" in text:
        return "Rewrite the whole input using only upper case letters."
    system = " ".join(m["content"] for m in msgs if m["role"] == "system").lower()
    n_demos = sum(m["role"] == "assistant" for m in msgs)
    query = [m["content"] for m in msgs if m["role"] == "user"][-1].split("\n")[-1]
    for sep in (": ", ":\n", " = "):
        if sep in query:
            query = query.split(sep, 1)[1]
            break
    digits = re.findall(r"\d+", query)
    i = int(digits[-1]) if digits else 1
    if "reverse" in system:
        return " ".join(reversed(query.split()))
    for key, mod in (("every word", 10), ("upper", 4), ("capital", 3)):
        if key in system:
            return query.upper() if i % mod else query
    if n_demos >= 2 and i % 5:
        return query.upper()
    return query


def scorer(req) -> float:
    system = " ".join(m["content"] for m in req.chat_messages if m["role"] == "system").lower()
    return -1.0 if ("upper" in system or "capital" in system) else -5.0


def make_lm(respond=noisy_model) -> ScriptedLM:
    return ScriptedLM(respond, model_id="scripted-noisy", scorer=scorer)


def make_config(tmp_path: Path, optimizer: str, **kw) -> OptimizeConfig:
    base = dict(
        task=str(make_task(tmp_path / "upper.jsonl")),
        out=str(tmp_path / "run"),
        budget_calls=200,
        max_shots=3,
        model="scripted",
        instruction="Repeat the input.",
        val_size=24,
        confirm_size=16,
        metric="exact",
        optimizer=optimizer,
    )
    return OptimizeConfig(**{**base, **kw})


@pytest.mark.parametrize("budget", [61, 97, 160])
def test_budget_is_never_exceeded_by_one_call(tmp_path: Path, optimizer: str, budget: int) -> None:
    lm = make_lm()
    run = Optimization(
        make_config(tmp_path, optimizer, budget_calls=budget, val_size=16, confirm_size=8), lm=lm
    )
    test_inputs = {e.input for e in run.test}
    result = run.run()
    run.close()
    budgeted = [u for u in user_inputs(lm) if not any(t in u for t in test_inputs)]
    assert len(budgeted) + len(lm.score_calls) <= budget
    assert result.calls_used <= budget
    assert result.optimizer == optimizer.replace(" ", "")


def test_the_optimizer_never_sees_confirmation_or_test(tmp_path: Path, optimizer: str) -> None:
    lm = make_lm()
    run = Optimization(make_config(tmp_path, optimizer), lm=lm)
    held = {e.input for e in run.confirm} | {e.input for e in run.test}
    assert not held & {e.input for e in run.ctx.data.train + run.ctx.data.val}
    assert not hasattr(run.ctx, "confirm") and not hasattr(run.ctx, "test")
    run.run_stages()
    seen = " ".join(user_inputs(lm))
    assert not [h for h in held if h in seen]
    assert run.log.entries(), "the optimizer raced nothing"
    run.close()


class Killed(Exception):
    pass


@pytest.mark.parametrize("after", [30, 90])
def test_a_killed_run_resumes_without_repeating_a_call(
    tmp_path: Path, optimizer: str, after: int
) -> None:
    cfg = make_config(tmp_path, optimizer)
    made: list[str] = []

    def dying(req: GenerationRequest) -> str:
        if len(made) >= after:
            raise Killed()
        made.append(request_key("scripted-noisy", "generate", req.payload()))
        return noisy_model(req)

    with pytest.raises(Killed):
        optimize(lm=make_lm(dying), **vars(cfg))
    with pytest.raises(PromptlatheError, match="--resume"):
        optimize(lm=make_lm(), **vars(cfg))
    second = make_lm()
    result = optimize(lm=second, resume=True, **vars(cfg))
    again = [request_key("scripted-noisy", "generate", r.payload()) for r in second.calls]
    assert not set(made) & set(again)
    assert result.test is not None and result.test.mean > 0.5


def test_the_run_log_round_trips(tmp_path: Path, optimizer: str) -> None:
    result = optimize(lm=make_lm(), **vars(make_config(tmp_path, optimizer, budget_calls=120)))
    store = Store(tmp_path / "run" / "calls.sqlite")
    entries = RunLog(store).entries()
    store.close()
    stages = optimizer.split(",")
    assert entries and all(e.optimizer in stages for e in entries)
    for e in entries:
        again = LogEntry.from_dict(json.loads(json.dumps(e.to_dict())))
        assert again == e
        assert e.state in ("complete", "pruned", "failed")
        assert [n for n, _ in e.rungs] == [r for r in result.plan.rungs if r <= e.n]
        assert e.to_prompt().hash == e.id
    complete = [e for e in entries if e.state == "complete"]
    assert all(e.n == result.plan.n_val for e in complete)
    assert result.trials.get("complete") == len(complete)
    winner = result.best_prompt.hash
    assert result.seed is not None
    assert winner in {e.id for e in complete} or winner == result.seed.prompt.hash
