"""The optimizer with a scripted LM: budget, racing, resume, confirmation isolation, workers."""

from __future__ import annotations

import json
import multiprocessing as mp
import re
from pathlib import Path

import optuna
import pytest
from pydantic import create_model

from promptlathe import Prompt
from promptlathe.errors import PromptlatheError
from promptlathe.lms import GenerationRequest, ScriptedLM, request_key
from promptlathe.optimizers import (
    Incumbent,
    Optimization,
    OptimizeConfig,
    RacingPruner,
    make_plan,
    optimize,
    rungs_for,
    should_stop,
)
from promptlathe.optimizers._confirm import with_cut_leader
from promptlathe.optimizers._plan_text import DEFAULTS_WHY, defaults_line
from promptlathe.optimizers._runlog import LogEntry
from promptlathe.optimizers._search import open_study
from promptlathe.optimizers._state import StageState
from promptlathe.testing.optimizers import make_config, make_task, user_inputs
from promptlathe.testing.optimizers import make_lm as make_noisy_lm


def task_model(req: GenerationRequest) -> str:
    """Uppercases when told to ("upper" in the instruction) or shown 2+ exemplars."""
    msgs = req.chat_messages
    text = " ".join(m["content"] for m in msgs) if msgs else (req.prompt or "")
    if "I gave a friend an instruction" in text:
        return "The instruction was to write the input in upper case letters."
    if "Your task is to write an instruction" in text:
        return "Rewrite the whole input using only upper case letters."
    system = " ".join(m["content"] for m in msgs if m["role"] == "system").lower()
    n_demos = sum(m["role"] == "assistant" for m in msgs)
    query = [m["content"] for m in msgs if m["role"] == "user"][-1]
    query = query.split("\n")[-1]
    for sep in (": ", ":\n", " = "):
        if sep in query:
            query = query.split(sep, 1)[1]
            break
    if "upper" in system or "upper" in text.split("\n")[0].lower() or n_demos >= 2:
        return query.upper()
    return query


def scorer(req) -> float:
    system = " ".join(m["content"] for m in req.chat_messages if m["role"] == "system").lower()
    return -1.0 if "upper" in system else -5.0


def make_lm() -> ScriptedLM:
    return ScriptedLM(task_model, model_id="scripted-upper", scorer=scorer)


def _cfg(tmp_path: Path, **kw) -> OptimizeConfig:
    task = make_task(tmp_path / "upper.jsonl")
    base = dict(
        task=str(task),
        out=str(tmp_path / "run"),
        budget_calls=150,
        max_shots=3,
        model="scripted",
        instruction="Repeat the input.",
        val_size=24,
        confirm_size=16,
        metric="exact",
        # the unit tests below were written for this chain; the defaults have their own test
        optimizer="propose,joint",
        strategies=["direct"],
    )
    base.update(kw)
    return OptimizeConfig(**base)


# ---- racing -------------------------------------------------------------------------------
def test_rungs_double_and_end_at_full_validation() -> None:
    assert rungs_for(50, first=8) == [8, 16, 32, 50]
    assert rungs_for(8, first=8) == [8]
    assert rungs_for(5, first=8) == [5]


def test_should_stop_when_the_candidate_cannot_win() -> None:
    inc = Incumbent(0.9, tuple([1.0] * 18 + [0.0] * 2))
    assert should_stop([0.0] * 8, 20, inc, alpha=0.1) is not None  # at most 12/20 < 0.9
    assert should_stop([1.0] * 8, 20, inc, alpha=0.1) is None


def test_should_stop_on_paired_sign_test_only_when_clearly_worse() -> None:
    inc = Incumbent(0.5, tuple([1.0] * 16 + [0.0] * 16))
    losing = [0.0] * 16 + [1.0] * 0
    assert should_stop(losing, 64, inc, alpha=0.1) is not None
    close = [1.0] * 14 + [0.0] * 2
    assert should_stop(close, 64, inc, alpha=0.1) is None
    assert should_stop([0.0] * 3, 64, None, alpha=0.1) is None


def test_racing_pruner_prunes_a_bad_trial_in_optuna() -> None:
    inc = Incumbent(0.8, tuple([1.0] * 8 + [0.0] * 2))
    study = optuna.create_study(direction="maximize", pruner=RacingPruner(10, lambda: inc))
    bad, good = study.ask(), study.ask()
    bad.set_user_attr("scores", [0.0] * 8)
    bad.report(0.0, step=8)
    good.set_user_attr("scores", [1.0] * 8)
    good.report(1.0, step=8)
    assert bad.should_prune() and not good.should_prune()


# ---- the plan -----------------------------------------------------------------------------
def test_plan_fits_the_budget_and_shrinks_for_small_tasks(tmp_path: Path) -> None:
    cfg = OptimizeConfig(task="t.jsonl", budget_calls=600)
    plan = make_plan(cfg, 900, 100)
    assert sum(plan.stages.values()) <= 600
    assert plan.n_train + plan.n_val + plan.n_confirm == 900 and plan.n_test == 100
    small = make_plan(OptimizeConfig(task="t.jsonl", budget_calls=600), 30, None)
    assert small.n_train >= cfg.max_shots + 4 - 3 and small.n_val >= 1
    assert small.n_train + small.n_val + small.n_confirm + small.n_test == 30
    with pytest.raises(PromptlatheError, match="too few"):
        make_plan(cfg, 3, None)


def test_plan_says_what_validation_can_tell_apart() -> None:
    small = make_plan(OptimizeConfig(task="t.jsonl", budget_calls=100), 900, 100)
    assert small.n_val == 16 and small.smallest_difference == pytest.approx(6 / 16)
    text = "\n".join(small.describe([]))
    assert "one is 6.2 points" in text and "differ by ≥ 38 points" in text
    assert "look alike on validation" in text
    big = make_plan(OptimizeConfig(task="t.jsonl", budget_calls=600), 900, 100)
    text = "\n".join(big.describe([]))
    assert "differ by ≥ 10 points" in text and "look alike" not in text


def test_plan_names_the_defaults_in_force_and_why() -> None:
    line = defaults_line(OptimizeConfig(task="t.jsonl"))
    assert line is not None and line.startswith("defaults in force: --optimizer ")
    assert "--strategies" in line and DEFAULTS_WHY in line
    chosen = OptimizeConfig(task="t.jsonl", optimizer="random,joint")
    line = defaults_line(chosen)
    assert line is not None and "--optimizer" not in line and "--strategies" in line
    given = OptimizeConfig(task="t.jsonl", optimizer="random,joint", strategies=["cot"])
    assert defaults_line(given) is None


# ---- whole runs -------------------------------------------------------------------------------
def test_optimize_finds_the_better_prompt_within_budget(tmp_path: Path) -> None:
    lm = make_lm()
    cfg = _cfg(tmp_path)
    run = Optimization(cfg, lm=lm)
    test_inputs = {e.input for e in run.test}
    result = run.run()
    run.close()
    budgeted = [u for u in user_inputs(lm) if not any(t in u for t in test_inputs)]
    assert len(budgeted) + len(lm.score_calls) <= cfg.budget_calls
    assert result.calls_used <= cfg.budget_calls
    assert result.test is not None and result.seed_test is not None
    assert result.seed_test.mean == 0.0  # "Repeat the input." never uppercases
    assert result.test.mean == 1.0
    # the zero-shot seed scores 0 on its first rung and stops there; the race goes on with
    # demos, whose first perfect prompt leaves the others nothing to win
    assert result.trials.get("complete", 0) >= 1 and result.trials.get("pruned", 0) >= 1
    saved = Prompt.load(result.best_prompt_path)
    assert saved == result.best_prompt
    data = json.loads((tmp_path / "run" / "result.json").read_text())
    assert data["test"]["accuracy"] == 1.0 and data["calls_used"] == result.calls_used
    cands = json.loads((tmp_path / "run" / "candidates.json").read_text())
    first = cands["propose"]["instructions"][0]
    assert (first["instruction"], first["source"]) == ("Repeat the input.", "seed")


def test_a_proposal_that_restates_a_train_example_is_never_raced(tmp_path: Path) -> None:
    """The run vets proposals against its own train split: a proposer that copies one train
    example ("Write velvet tunnel 17 in upper case letters.") loses that proposal."""
    copied: list[str] = []

    def copying_model(req: GenerationRequest) -> str:
        text = " ".join(m["content"] for m in req.chat_messages)
        if "I gave a friend an instruction" in text:
            return f"Write {copied[0]} in upper case letters."
        return task_model(req)

    lm = ScriptedLM(copying_model, model_id="scripted-copying", scorer=scorer)
    run = Optimization(_cfg(tmp_path), lm=lm)
    copied.append(run.split.train[0].input)
    result = run.run()
    raced = {e.to_prompt().instruction for e in run.log.entries()}
    run.close()
    proposed = f"Write {copied[0]} in upper case letters."
    cands = json.loads((tmp_path / "run" / "candidates.json").read_text())
    assert "ape" not in [c["source"] for c in cands["propose"]["instructions"]]
    assert proposed not in raced and result.best_prompt.instruction != proposed


@pytest.mark.parametrize("budget", [40, 61, 97])
def test_budget_is_never_exceeded_by_a_single_call(tmp_path: Path, budget: int) -> None:
    lm = make_lm()
    cfg = _cfg(tmp_path, budget_calls=budget, val_size=16, confirm_size=8)
    run = Optimization(cfg, lm=lm)
    test_inputs = {e.input for e in run.test}
    result = run.run()
    run.close()
    budgeted = [u for u in user_inputs(lm) if not any(t in u for t in test_inputs)]
    assert len(budgeted) + len(lm.score_calls) <= budget
    assert result.calls_used <= budget


def test_search_never_touches_confirmation_or_test_inputs(tmp_path: Path) -> None:
    lm = make_lm()
    run = Optimization(_cfg(tmp_path), lm=lm)
    held = {e.input for e in run.confirm} | {e.input for e in run.test}
    run.prepare()
    run.search()
    seen = " ".join(user_inputs(lm))
    assert not [h for h in held if h in seen]
    n_before = len(lm.calls)
    run.finish()
    run.close()
    later = " ".join(
        [m["content"] for r in lm.calls[n_before:] for m in r.chat_messages if m["role"] == "user"]
    )
    assert any(e.input in later for e in run.confirm)


class Killed(Exception):
    pass


def test_killed_run_resumes_without_repeating_any_call(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    made: list[str] = []

    def dying(req: GenerationRequest) -> str:
        if len(made) >= 45:
            raise Killed()
        made.append(request_key("scripted-upper", "generate", req.payload()))
        return task_model(req)

    first = ScriptedLM(dying, model_id="scripted-upper", scorer=scorer)
    with pytest.raises(Killed):
        optimize(lm=first, **vars(cfg))
    with pytest.raises(PromptlatheError, match="--resume"):
        optimize(lm=make_lm(), **vars(cfg))
    second = make_lm()
    result = optimize(lm=second, resume=True, **vars(cfg))
    again = [request_key("scripted-upper", "generate", r.payload()) for r in second.calls]
    assert not set(made) & set(again)
    assert result.test is not None and result.test.mean == 1.0


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, budget_calls=40, val_size=16, confirm_size=8)
    optimize(lm=make_lm(), **vars(cfg))
    other = {**vars(cfg), "max_shots": 2}
    with pytest.raises(PromptlatheError, match="max_shots"):
        optimize(lm=make_lm(), resume=True, **other)


def _pop_trials(storage: str, queue) -> None:
    study = open_study(storage, "pop", "random", 0, RacingPruner(8, lambda: None))
    taken = []
    while True:
        trial = study.ask({"i": optuna.distributions.IntDistribution(0, 59)})
        if trial.number >= 60:  # the queue is empty: a new trial, not an enqueued one
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            break
        taken.append(trial.params["i"])
        study.tell(trial, 0.0)
    queue.put(taken)


def test_two_processes_never_take_the_same_enqueued_trial(tmp_path: Path) -> None:
    """SQLite has no row locks: without a write lock at the start of each transaction both
    processes could read an enqueued trial as waiting and both run it."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = open_study(storage, "pop", "random", 0, RacingPruner(8, lambda: None))
    for i in range(60):
        study.enqueue_trial({"i": i})
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_pop_trials, args=(storage, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    a, b = (queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(a + b) == list(range(60)), "an enqueued trial was run twice or never"


_Keys = create_model(  # a section with 80 fields, two processes setting 40 each
    "_Keys",
    __base__=StageState,
    **{f"{t}{i}": (int | None, None) for t in "ab" for i in range(40)},  # type: ignore[call-overload]
)
_Keys.section = "test-keys"


def _save_keys(cfg: OptimizeConfig, tag: str, queue) -> None:
    run = Optimization(cfg, resume=True, lm=make_lm(), worker=True)
    for i in range(40):
        run.ctx.update_state(_Keys, **{f"{tag}{i}": i})
    run.close()
    queue.put(tag)


def test_processes_saving_the_run_state_at_once_keep_every_key(tmp_path: Path) -> None:
    """``candidates.json`` is read, merged and written back; two workers doing that at once
    must not drop each other's keys (nor the main process's)."""
    cfg = _cfg(tmp_path, budget_calls=150)
    run = Optimization(cfg, lm=make_lm())
    run.prepare()
    before = json.loads((Path(cfg.out) / "candidates.json").read_text())
    run.close()
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_save_keys, args=(cfg, tag, queue)) for tag in "ab"]
    for p in procs:
        p.start()
    assert sorted(queue.get(timeout=120) for _ in procs) == ["a", "b"]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    state = json.loads((Path(cfg.out) / "candidates.json").read_text())
    keys = state.pop(_Keys.section)
    assert before["exemplars"] and state == before  # the main process's sections are kept
    assert keys == {f"{t}{i}": i for t in "ab" for i in range(40)}


def _worker(cfg: OptimizeConfig, queue) -> None:
    lm = make_lm()
    run = Optimization(cfg, resume=True, lm=lm, worker=True)
    run.search()
    run.close()
    queue.put([request_key("scripted-upper", "generate", r.payload()) for r in lm.calls])


def test_two_processes_share_one_study_without_evaluating_a_trial_twice(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, budget_calls=260)
    run = Optimization(cfg, lm=make_lm())
    run.prepare()
    run.close()
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(cfg, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    a, b = (set(r) for r in results)
    assert a and b, "both workers should have evaluated something"
    assert not a & b, "the same LM request was made by both workers"
    study = optuna.load_study(
        study_name="promptlathe-joint", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    )
    evaluated = [
        t.user_attrs["prompt_hash"]
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished()
        and "duplicate_of" not in t.user_attrs
        and t.state != optuna.trial.TrialState.FAIL
    ]
    assert len(evaluated) == len(set(evaluated)) and len(evaluated) >= 2


# ---- label-free prescreen ---------------------------------------------------------------------
def _parity_lm() -> ScriptedLM:
    def respond(req: GenerationRequest) -> str:
        text = " ".join(m["content"] for m in req.chat_messages)
        if "I gave a friend an instruction" in text or "write an instruction" in text:
            good = req.seed % 2 == 0
            return (
                "The instruction was to state the parity of the number."
                if good
                else f"The instruction was to say something nice about item {req.seed}."
            )
        system = " ".join(m["content"] for m in req.chat_messages if m["role"] == "system")
        system += req.chat_messages[-1]["content"].split("\n")[0]  # chat_single layout
        n = int(re.findall(r"\d+", req.chat_messages[-1]["content"])[-1])
        return ("even" if n % 2 == 0 else "odd") if "parity" in system else "nice"

    def scorer(req) -> float:
        msgs = req.chat_messages
        system = " ".join(m["content"] for m in msgs if m["role"] == "system")
        system += msgs[-1]["content"].split("\n")[0]
        n = int(re.findall(r"\d+", msgs[-1]["content"])[-1])
        if "parity" not in system:
            return -1.0
        right = ("even" if n % 2 == 0 else "odd") == req.continuation
        return -0.1 if right else -3.0

    return ScriptedLM(respond, model_id="scripted-parity", scorer=scorer)


def test_mi_prescreen_keeps_the_informative_instruction(tmp_path: Path) -> None:
    task = tmp_path / "parity.jsonl"
    task.write_text(
        "".join(
            json.dumps({"input": f"number {i}", "target": "even" if i % 2 == 0 else "odd"}) + "\n"
            for i in range(120)
        )
    )
    cfg = OptimizeConfig(
        task=str(task),
        out=str(tmp_path / "run"),
        budget_calls=300,
        max_shots=0,
        model="scripted",
        val_size=24,
        confirm_size=16,
        metric="exact",
        prescreen="mi",
        optimizer="propose,joint",  # the prescreen screens propose's instructions
        strategies=["direct"],
    )
    result = optimize(lm=_parity_lm(), **vars(cfg))
    screened = json.loads((tmp_path / "run" / "candidates.json").read_text())["propose"][
        "prescreen"
    ]
    kept = {s["instruction"]: s["kept"] for s in screened}
    mi = {s["instruction"]: s["mi"] for s in screened}
    parity = "State the parity of the number."
    assert kept[parity] is True
    assert all(mi[parity] > v for k, v in mi.items() if k != parity)
    assert sum(not v for v in kept.values()) >= len(kept) // 2
    assert result.test is not None and result.test.mean == 1.0


def test_mi_prescreen_refuses_open_ended_tasks(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, prescreen="mi")
    with pytest.raises(PromptlatheError, match="classification"):
        optimize(lm=make_lm(), **vars(cfg))


def test_instruction_race_leaves_the_joint_search_its_share(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, budget_calls=120, val_size=24, confirm_size=8)
    run = Optimization(cfg, lm=make_lm())
    run.prepare()
    cands = json.loads((tmp_path / "run" / "candidates.json").read_text())
    cap, propose = cands["run"]["caps"]["race_cap"], cands["propose"]
    share = cap - propose["calls_before_race"]
    assert share == int(0.5 * run.plan.stages["search"])
    assert propose["calls_after_race"] <= cap
    assert run.budget.limit == run.plan.search_limit  # restored for the joint search
    run.search()
    run.close()
    joint = optuna.load_study(
        study_name="promptlathe-joint", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    )
    assert len(joint.trials) >= 1


def test_pooled_score_keeps_a_clear_validation_lead() -> None:
    from promptlathe.optimizers import Candidate

    lead = Candidate(Prompt("a"), val=0.433, val_n=60, confirm=0.400, confirm_n=40)
    lucky = Candidate(Prompt("b"), val=0.267, val_n=60, confirm=0.425, confirm_n=40)
    assert lead.pooled == pytest.approx((0.433 * 60 + 0.4 * 40) / 100)
    assert lead.pooled > lucky.pooled
    unconfirmed = Candidate(Prompt("c"), val=0.5, val_n=10)
    assert unconfirmed.pooled == 0.5
    assert (
        Candidate(Prompt("d"), val=float("nan"), val_n=0, confirm=0.3, confirm_n=10).pooled == 0.3
    )


def test_winner_breaks_near_ties_by_cost_and_exact_ties_for_the_seed() -> None:
    from promptlathe.optimizers import Candidate, choose_winner

    def cand(name: str, val: float, confirm: float, tokens: float) -> Candidate:
        return Candidate(Prompt(name), val, 40, confirm, 20, tokens=tokens)

    seed = cand("seed", 0.55, 0.55, 80)
    # A reasoning strategy one example ahead at 3x the tokens: the seed keeps it.
    costly = cand("cot", 0.55, 0.60, 260)
    assert costly.pooled - seed.pooled == pytest.approx(1 / 60)
    assert choose_winner([costly, seed], seed) is seed
    # Two examples ahead is evidence: the costlier candidate wins.
    better = cand("cot2", 0.575, 0.60, 260)
    assert choose_winner([better, seed], seed) is better
    # Similar cost: the higher pooled score wins, ties go to the seed.
    near = cand("other", 0.55, 0.60, 90)
    assert choose_winner([near, seed], seed) is near
    twin = cand("twin", 0.55, 0.55, 80)
    assert choose_winner([twin, seed], seed) is seed
    # Unknown cost: no cost rule.
    blind = Candidate(Prompt("x"), 0.55, 40, 0.60, 20)
    assert choose_winner([blind, seed], seed) is blind


# ---- hardening: stratified demos, racing ties at zero, trivial baselines ---------------------
def test_demo_sets_of_a_classification_task_cover_its_labels() -> None:
    import numpy as np

    from promptlathe.optimizers._exemplars import demo_sets, sample_demos
    from promptlathe.prompts import Exemplar

    pool = [Exemplar(f"q{i}", "no") for i in range(30)] + [
        Exemplar(f"r{i}", "yes") for i in range(5)
    ]
    for seed in range(20):
        picked = sample_demos(pool, 4, np.random.default_rng(seed))
        assert {e.output for e in picked} == {"yes", "no"}
        assert len(set(picked)) == 4
    for s in demo_sets(pool, [], 4, 6, seed=0):
        assert {e.output for e in s.exemplars} == {"yes", "no"}


def test_racing_drops_a_candidate_tied_with_the_incumbent_at_zero() -> None:
    zero = Incumbent(0.0, (0.0,) * 24)
    assert should_stop([0.0] * 8, 24, zero, 0.1) is not None
    assert should_stop([0.0] * 4, 24, zero, 0.1) is None  # too early to tell
    assert should_stop([0.0] * 7 + [1.0], 24, zero, 0.1) is None  # it beat the incumbent once
    strong = Incumbent(0.9, (1.0,) * 22 + (0.0,) * 2)
    reason = should_stop([1.0] + [0.0] * 7, 24, strong, 0.5)
    assert reason is not None
    # A hard task: the incumbent is right 2 times in 24. Eight misses are what a candidate
    # just as good would score more often than not, so it goes on; at 30 % they are not.
    weak = Incumbent(2 / 24, (1.0,) * 2 + (0.0,) * 22)
    assert should_stop([0.0] * 8, 24, weak, 0.1) is None
    fair = Incumbent(0.3, (1.0,) * 7 + (0.0,) * 17)
    assert should_stop([0.0] * 8, 24, fair, 0.1) == "scored 0 on 8 examples"


def test_the_result_compares_the_winner_with_constant_answers(tmp_path: Path) -> None:
    rows = [{"input": f"item {i}", "target": "yes" if i % 3 == 0 else "no"} for i in range(90)]
    task = tmp_path / "yn.jsonl"
    task.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def always_no(req: GenerationRequest) -> str:
        return "No, I do not think so."

    result = optimize(
        str(task),
        lm=ScriptedLM(always_no, model_id="always-no"),
        out=str(tmp_path / "run"),
        budget_calls=60,
        val_size=16,
        confirm_size=8,
        max_shots=2,
    )
    b = result.baselines
    assert b is not None and b.hollow and b.best_constant == "no"
    assert b.winner_top_share == 1.0 and b.balanced_accuracy == pytest.approx(0.5)
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["baselines"]["hollow"] is True
    assert "no better than always answering 'no'" in saved["baselines"]["verdict"]


def test_older_configs_are_upgraded_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    saved = _cfg(tmp_path).to_dict()
    assert saved["v"] == 4 and saved["optimizer"] == "propose,joint"
    assert saved["parallel"] == 16 and saved["budget_cost"] is None and saved["prices"] == {}
    old = {k: v for k, v in saved.items() if k not in ("v", "parallel", "budget_cost", "prices")}
    for before, after in (("joint", "propose,joint"), ("reflect", "reflect,joint")):
        upgraded = OptimizeConfig.from_dict({**old, "optimizer": before}, "config.json")
        assert upgraded.optimizer == after
        assert upgraded.parallel == 1  # saved before batched decoding: resumed as it ran
    v2 = OptimizeConfig.from_dict({**old, "v": 2}, "config.json")
    assert v2.parallel == 1 and v2.optimizer == "propose,joint"
    v3 = OptimizeConfig.from_dict({**old, "v": 3, "parallel": 16}, "config.json")
    assert v3.budget_cost is None and v3.prices == {}  # no cost cap before version 4
    with pytest.raises(PromptlatheError, match="config.json: run config version 99"):
        OptimizeConfig.from_dict({**saved, "v": 99}, "config.json")


def _entry(name: str, scores: list[float], state: str) -> LogEntry:
    """A run-log entry of a prompt whose instruction is ``name``."""
    p = Prompt(instruction=name)
    return LogEntry(p.hash, "joint", "joint", p.to_dict(), tuple(scores), (), state)


def _names(entries: list[LogEntry]) -> list[str]:
    return [e.prompt["instruction"] for e in entries]


def test_a_race_the_budget_cut_short_while_it_led_is_confirmed() -> None:
    lead = _entry("lead", [1, 0, 1, 0] * 15, "complete")  # 0.50 on 60, 0.50 on any 32
    second = _entry("second", [0, 1, 0, 0] * 15, "complete")
    cut = _entry("cut", [1, 1, 1, 0] * 8, "failed")  # 0.75 on 32 when the budget ran out
    short = _entry("short", [1] * 8, "failed")  # one rung: too little evidence
    behind = _entry("behind", [0, 0, 1, 0] * 8, "failed")
    pruned = _entry("pruned", [1, 1, 1, 1] * 4, "pruned")
    log = [lead, second, cut, short, behind, pruned]
    assert _names(with_cut_leader([lead, second], log, first_rung=8)) == ["lead", "cut", "second"]
    assert _names(with_cut_leader([lead, second], [short, behind, pruned], 8)) == [
        "lead",
        "second",
    ]
    assert with_cut_leader([], log, 8) == []


def test_a_run_confirms_the_race_the_budget_cut_short_while_it_led(tmp_path: Path) -> None:
    run = Optimization(make_config(tmp_path, "propose,joint"), lm=make_noisy_lm())
    run.run_stages()
    assert run.plan.confirm_top == 2
    # as if the search's last race had been stopped by the budget after two rungs, ahead
    cut = _entry("Rewrite every word of the input in upper case.", [1.0] * 16, "failed")
    assert sum(run.log.complete()[0].scores[:16]) < 16
    run.log.write(cut)
    result = run.finish()
    run.close()
    assert cut.id in [c.prompt.hash for c in result.confirmed]
    assert next(c for c in result.confirmed if c.prompt.hash == cut.id).confirm is not None


def test_the_report_lists_a_confirmed_race_the_budget_cut_short() -> None:
    from promptlathe.report._build import _leaderboard
    from promptlathe.report._run_report import _trials

    done = _entry("done", [1, 0] * 30, "complete")
    cut = _entry("cut", [1, 1, 1, 0] * 8, "failed")
    other = _entry("other", [1] * 16, "failed")
    confirmed = {
        done.id: {"confirm": 0.5, "confirm_n": 40},
        cut.id: {"confirm": 0.8, "confirm_n": 40},
    }
    rows = _trials([done, cut, other], confirmed)
    assert [r["prompt"]["instruction"] for r in rows] == ["done", "cut"]
    board = _leaderboard(rows)
    assert [b["instruction"] for b in board] == ["cut", "done"]
    assert board[0]["val_n"] == 32 and "0.80" in board[0]["confirm"]


def test_resume_with_other_settings_names_the_saved_values(tmp_path: Path) -> None:
    from promptlathe.optimizers._rundir import check_run_dir

    saved = _cfg(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(saved.to_json())
    check_run_dir(saved, tmp_path / "run", resume=True)  # the same settings resume
    now = _cfg(tmp_path, optimizer="reflect,joint")
    with pytest.raises(PromptlatheError, match="optimizer: saved 'propose,joint', now 'reflect"):
        check_run_dir(now, tmp_path / "run", resume=True)
