"""Run-time strategies: one conformance suite over every registered strategy, then each
strategy's own behaviour (the vote, un-shuffling options, kNN exemplars per input, rationale
demos only from validated outputs, sample cache keys), and the search choosing among them
under a cost cap. The scripted model is noisy: every strategy is right on some inputs and
wrong on others."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from promptlathe.errors import PromptlatheError
from promptlathe.evaluator import Decoding, Evaluator
from promptlathe.lms import CachedLM, Generation, GenerationRequest, ScriptedLM
from promptlathe.metrics import final_answer, get_metric
from promptlathe.optimizers import Optimization, OptimizeConfig, RunLog, optimize
from promptlathe.optimizers._exemplars import bootstrap_until
from promptlathe.prompts import Exemplar, Prompt, StrategySpec
from promptlathe.store import Store
from promptlathe.strategies import (
    STRATEGIES,
    TaskView,
    get_strategy,
    majority,
    parse_strategies,
    search_specs,
    strategy_names,
)
from promptlathe.strategies.choice_shuffle import parse_options, shuffled
from promptlathe.strategies.cot import COT_TRIGGER, DEMOS_TRIGGER, REASON_FIRST
from promptlathe.strategies.knn_demos import nearest
from promptlathe.strategies.plan_and_solve import PS_PLUS
from promptlathe.tasks import Example

COLOURS = ["red", "blue", "green"]


def mc_example(i: int) -> Example:
    """Item ``i`` is COLOURS[i % 3]; the options are rotated by ``i // 3`` so the right
    letter varies."""
    opts = [COLOURS[(j + i // 3) % 3] for j in range(3)]
    right = COLOURS[i % 3]
    text = f"What colour is item {i}?\nOptions:\n" + "\n".join(
        f"({chr(65 + j)}) {o}" for j, o in enumerate(opts)
    )
    return Example(id=f"ex{i}", input=text, targets=(f"({chr(65 + opts.index(right))})",))


def _query(req: GenerationRequest) -> str:
    msgs = req.chat_messages
    text = msgs[-1]["content"] if msgs else (req.prompt or "")
    return text.split("Input: ", 1)[-1]


def _system(req: GenerationRequest) -> str:
    return " ".join(m["content"] for m in req.chat_messages if m["role"] == "system")


def _letter_of(query: str, colour: str) -> str:
    for line in query.splitlines():
        m = re.match(r"\((\w)\) (\w+)", line)
        if m and m.group(2) == colour:
            return f"({m.group(1)})"
    return "(A)"


def reasoning_model(req: GenerationRequest) -> str:
    """Direct: right when the item number is even, else "(A)" (position bias). Reasoned:
    right unless the number is a multiple of 7 (greedy) or ``(number + seed) % 4 == 0``
    (sampled: the majority of 3 or 5 samples is mostly right)."""
    q = _query(req)
    nums = re.findall(r"item (\d+)", q)
    i = int(nums[0]) if nums else 0
    right = _letter_of(q, COLOURS[i % 3])
    wrong = _letter_of(q, COLOURS[(i + 1) % 3])
    if "step by step" in q or "devise a plan" in q:
        ok = (i + req.seed) % 4 != 0 if req.temperature > 0 else i % 7 != 0
        steps = " ".join(f"Step {k}: looking at item {i}." for k in range(6))
        return f"{steps}\nSo the answer is {right if ok else wrong}."
    return right if i % 2 == 0 else "(A)"


def make_evaluator(respond=reasoning_model, store: Store | None = None) -> Evaluator:
    lm = ScriptedLM(respond, model_id="scripted-mc")
    inner = CachedLM(lm, store) if store is not None else lm
    return Evaluator(inner, get_metric("choice"), Decoding(), store=store)


# ---- conformance: every registered strategy ---------------------------------------------
@pytest.fixture(params=strategy_names())
def strategy(request: pytest.FixtureRequest) -> str:
    return request.param


def _prompt_for(name: str) -> Prompt:
    k = type(get_strategy(name)).ks[0]
    pool = [Exemplar(mc_example(i).input, mc_example(i).target) for i in range(100, 112)]
    return Prompt(
        instruction="Answer with the letter.",
        exemplars=tuple(pool[:2] if name != "knn_demos" else pool),
        strategy=StrategySpec(name, 2 if name == "knn_demos" else k),
    )


def test_every_strategy_evaluates_caches_and_round_trips(tmp_path: Path, strategy: str) -> None:
    store = Store(tmp_path / "s.db")
    ev = make_evaluator(store=store)
    prompt = _prompt_for(strategy)
    examples = [mc_example(i) for i in range(12)]
    first = ev.evaluate(prompt, examples)
    assert first.calls == len(examples) * get_strategy(prompt.strategy).calls_per_input()
    assert all(r.tokens > 0 for r in first.records) and first.tokens_per_example > 0
    assert 0.0 < first.mean <= 1.0
    # A second evaluation (new evaluator, same store) makes no call and gives the same scores.
    again = make_evaluator(store=store).evaluate(prompt, examples)
    assert again.calls == 0 and [r.score for r in again.records] == [r.score for r in first.records]
    assert again.tokens_per_example == pytest.approx(first.tokens_per_example)
    # The prompt file keeps the strategy, and answering (what `run` does) matches the records.
    path = tmp_path / "p.json"
    prompt.save(path)
    loaded = Prompt.load(path)
    assert loaded == prompt and loaded.hash == prompt.hash
    answers = make_evaluator(store=store).answer(loaded, [e.input for e in examples])
    assert [a.answer for a in answers] == [r.answer for r in first.records]
    store.close()


def test_every_strategy_has_a_name_summary_and_ks() -> None:
    assert {
        "direct",
        "cot",
        "plan_and_solve",
        "cot_demos",
        "self_consistency",
        "choice_shuffle",
        "knn_demos",
    } <= set(STRATEGIES)
    for name in strategy_names():
        cls = type(get_strategy(name))
        assert cls.name == name and cls.summary and cls.ks and all(k >= 1 for k in cls.ks)


# ---- the prompt names its strategy ------------------------------------------------------
def test_a_direct_prompt_keeps_its_hash_and_file_shape() -> None:
    p = Prompt(instruction="x")
    assert "strategy" not in p.to_dict()
    cot = p.with_(strategy=StrategySpec("cot"))
    assert cot.hash != p.hash and cot.to_dict()["strategy"] == {"name": "cot", "k": 1}


def test_bad_strategies_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"instruction": "x", "strategy": {"name": "cot", "k": 0}}))
    with pytest.raises(PromptlatheError, match=r"p.json: field 'strategy'.*between 1"):
        Prompt.load(path)
    with pytest.raises(PromptlatheError, match="'telepathy' is not one of"):
        make_evaluator().evaluate(Prompt(strategy=StrategySpec("telepathy")), [mc_example(0)])
    with pytest.raises(PromptlatheError, match="--strategies 'nope'"):
        parse_strategies("cot,nope")
    assert parse_strategies("all") == strategy_names()


# ---- reasoning and answer extraction ----------------------------------------------------
def test_cot_reasons_with_the_reasoning_limit_and_is_read_by_its_final_answer() -> None:
    ev = make_evaluator()
    prompt = Prompt(instruction="Answer.", strategy=StrategySpec("cot"))
    res = ev.evaluate(prompt, [mc_example(i) for i in range(14)])
    lm = ev.lm
    assert isinstance(lm, ScriptedLM)
    assert all(r.max_tokens == Decoding().reasoning_tokens for r in lm.calls)
    assert all(_query(r).endswith(COT_TRIGGER) for r in lm.calls)
    # The reasoning mentions no letter before its last line; wrong on multiples of 7 only.
    assert [r.score for r in res.records] == [0.0 if i % 7 == 0 else 1.0 for i in range(14)]


def test_zero_shot_reasoning_is_told_to_begin_with_its_steps_and_exemplars_are_not() -> None:
    """Without exemplars the reply is told how to begin (else the answer line came first);
    with exemplars that carry reasoning, the exemplars show how (the trigger measured there)."""
    ev = make_evaluator()
    lm = ev.lm
    assert isinstance(lm, ScriptedLM)
    demo = Exemplar(mc_example(1).input, "Item 1 is blue, option (B). So the answer is (B).")
    for name, trigger in (("cot", COT_TRIGGER), ("plan_and_solve", PS_PLUS)):
        ev.evaluate(Prompt(instruction="Answer.", strategy=StrategySpec(name)), [mc_example(3)])
        assert REASON_FIRST in trigger and _query(lm.calls[-1]).endswith(trigger)
    prompt = Prompt(instruction="Answer.", exemplars=[demo], strategy=StrategySpec("cot_demos"))
    ev.evaluate(prompt, [mc_example(4)])
    last = _query(lm.calls[-1])
    assert last.endswith(DEMOS_TRIGGER) and REASON_FIRST not in last


# ---- self-consistency: the vote and the samples ------------------------------------------
def test_majority_takes_the_most_frequent_non_empty_answer_first_seen_on_ties() -> None:
    assert majority(["a", "b", "b", "a", "b"]) == 1
    assert majority(["", "", "c"]) == 2
    assert majority(["x", "y"]) == 0
    assert majority(["", ""]) == 0


def test_self_consistency_votes_and_keeps_each_sample_as_its_own_cache_entry(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "s.db")
    ev = make_evaluator(store=store)
    prompt = Prompt(instruction="Answer.", strategy=StrategySpec("self_consistency", 5))
    examples = [mc_example(i) for i in range(1, 13)]
    res = ev.evaluate(prompt, examples)
    lm = ev.lm.inner  # type: ignore[attr-defined]
    # Five samples per input, seeded 0..4 at temperature 0.7: five distinct cache entries.
    assert res.calls == 60 and len(lm.calls) == 60
    assert {(r.seed, r.temperature) for r in lm.calls} == {(s, 0.7) for s in range(5)}
    keys = {ev._key(r) for r in lm.calls}
    assert len(keys) == 60
    for ex, rec in zip(examples, res.records, strict=True):
        i = int(ex.id[2:])
        votes_right = sum((i + s) % 4 != 0 for s in range(5))
        assert rec.score == (1.0 if votes_right >= 3 else 0.0)
        assert rec.output.startswith("Step 0")  # the winning sample's whole reasoning
    # Greedy cot with the same instruction is another cache entry again.
    ev.evaluate(prompt.with_(strategy=StrategySpec("cot")), examples[:1])
    assert len(lm.calls) == 61
    store.close()


def test_a_sample_cut_at_the_token_limit_casts_no_vote(tmp_path: Path) -> None:
    """A chain cut before its answer ends on a step ("Step 5: looking at (C)"); read as an
    answer it would win a three-way split as the first vote seen. Cut samples without a
    marked answer do not vote, and a record's cut flag is kept, so stored outputs are re-read
    the same way."""

    def model(req: GenerationRequest) -> str | Generation:
        q = _query(req)
        i = int(re.findall(r"item (\d+)", q)[0])
        right = _letter_of(q, COLOURS[i % 3])
        wrong = _letter_of(q, COLOURS[(i + 1) % 3])
        other = _letter_of(q, COLOURS[(i + 2) % 3])
        if i % 2 == 0:  # the first sample is cut at the limit, then one right, one wrong
            if req.seed == 0:
                return Generation(
                    f"Step 0: item {i}.\nStep 5: looking at {other}", finish_reason="length"
                )
            return f"Step 0: item {i}.\nSo the answer is {right if req.seed == 1 else wrong}."
        ok = req.seed == 0 or (req.seed == 2 and i % 3 != 0)
        return f"Step 0: item {i}.\nSo the answer is {right if ok else wrong}."

    store = Store(tmp_path / "s.db")
    ev = make_evaluator(model, store=store)
    prompt = Prompt(instruction="Answer.", strategy=StrategySpec("self_consistency", 3))
    examples = [mc_example(i) for i in range(1, 13)]
    res = ev.evaluate(prompt, examples)
    # Even items: the cut sample abstains and the 1-1 tie goes to the first vote seen (right);
    # odd items: right unless a multiple of 3 (then two of three samples are wrong).
    expected = [0.0 if i % 2 and i % 3 == 0 else 1.0 for i in range(1, 13)]
    assert [r.score for r in res.records] == expected
    # The greedy chain of a cut output has no answer either; a marked answer still counts.
    cot = prompt.with_(strategy=StrategySpec("cot"))
    assert final_answer("Step 1: (A) is red.\nStep 2: (B)", cut=True) == ""
    assert final_answer("So the answer is (B). Now let us check (A", cut=True) == "(B)"
    assert final_answer("Step 1: (A) is red.\nStep 2: (B)") == "Step 2: (B)"
    cut_ev = make_evaluator(
        lambda req: Generation("Step 1: so far (C)", finish_reason="length"), store=store
    )
    first = cut_ev.evaluate(cot, examples[:3])
    assert [r.answer for r in first.records] == ["", "", ""] and all(r.cut for r in first.records)
    again = cut_ev.evaluate(cot, examples[:3])  # read back from the stored records
    assert all(r.cached and r.cut and r.answer == "" for r in again.records)
    store.close()


# ---- choice shuffling -------------------------------------------------------------------
def test_options_are_parsed_only_when_lettered_in_order() -> None:
    assert [b for _, b in parse_options(mc_example(0).input)] == ["red", "blue", "green"]
    assert parse_options("Q?\n(A) x") == []
    assert parse_options("Q?\n(A) x\n(C) y") == []


def test_choice_shuffle_maps_each_answer_back_to_the_original_options() -> None:
    text = mc_example(4).input  # options blue, green, red; item 4 is blue
    for sample in range(5):
        shown, relabel = shuffled(text, sample)
        assert sorted(shown.splitlines()) == sorted(text.splitlines()) or sample > 0
        for line in shown.splitlines():
            m = re.match(r"\((\w)\) (\w+)", line)
            if m:  # the letter shown maps back to the letter of the same text in the original
                assert _letter_of(text, m.group(2)) == relabel[f"({m.group(1)})"]

    def knows_it(req: GenerationRequest) -> str:  # answers the right text wherever it is
        q = _query(req)
        i = int(re.findall(r"item (\d+)", q)[0])
        return _letter_of(q, COLOURS[i % 3])

    ev = make_evaluator(knows_it)
    prompt = Prompt(strategy=StrategySpec("choice_shuffle", 5))
    res = ev.evaluate(prompt, [mc_example(i) for i in range(9)])
    assert res.mean == 1.0


def test_choice_shuffle_cancels_a_position_bias() -> None:
    """A model that always answers (A) is right on a third of the inputs whatever the
    order; direct, it is right exactly where the answer is (A). Three rotations give each
    option one vote, and the tie goes to the unshuffled copy's answer."""
    ev = make_evaluator(lambda req: "(A)")
    examples = [mc_example(i) for i in range(9)]
    shuffled_res = ev.evaluate(Prompt(strategy=StrategySpec("choice_shuffle", 3)), examples)
    direct = ev.evaluate(Prompt(), examples)
    assert [r.answer for r in shuffled_res.records] == ["(A)"] * 9
    assert shuffled_res.mean == direct.mean


def test_choice_shuffle_applies_to_multiple_choice_tasks_only() -> None:
    strat = get_strategy(StrategySpec("choice_shuffle", 3))
    mc = [mc_example(i) for i in range(10)]
    assert strat.applies(TaskView([e.input for e in mc], [e.target for e in mc])) is None
    assert "multiple-choice" in (strat.applies(TaskView(["a b", "c d"], ["A B", "C D"])) or "")


# ---- kNN exemplars ----------------------------------------------------------------------
def test_knn_picks_the_most_similar_train_examples_per_input_most_similar_last() -> None:
    pool = (
        "the cat sat on the mat",
        "stock prices fell sharply",
        "a cat sat on a hat",
        "rain is expected tomorrow",
        "markets and stock prices rose",
    )
    assert nearest(pool, "the cat sat on the rug", 2) == [0, 2]
    assert nearest(pool, "stock prices rose today", 2) == [4, 1]
    assert nearest(pool, pool[0], 1) == [2]  # an identical input is never its own demo

    seen: list[list[str]] = []

    def record(req: GenerationRequest) -> str:
        seen.append([m["content"] for m in req.chat_messages if m["role"] == "assistant"])
        return "ok"

    exemplars = [Exemplar(p, f"out:{j}") for j, p in enumerate(pool)]
    prompt = Prompt(exemplars=tuple(exemplars), strategy=StrategySpec("knn_demos", 2))
    ev = Evaluator(ScriptedLM(record), get_metric("exact"), Decoding())
    ev.answer(prompt, ["the cat sat on the rug", "stock prices rose today"])
    assert seen == [["out:2", "out:0"], ["out:1", "out:4"]]


# ---- the search ---------------------------------------------------------------------------
def make_mc_task(path: Path, n: int = 150) -> Path:
    path.write_text(
        "".join(
            json.dumps({"input": e.input, "target": e.target}) + "\n"
            for e in (mc_example(i) for i in range(n))
        )
    )
    return path


def _cfg(tmp_path: Path, **kw) -> OptimizeConfig:
    base = dict(
        task=str(make_mc_task(tmp_path / "mc.jsonl")),
        out=str(tmp_path / "run"),
        budget_calls=700,
        max_shots=2,
        model="scripted-mc",
        instruction="Answer with the letter of the right option.",
        val_size=24,
        confirm_size=12,
        metric="choice",
        strategies=["all"],
    )
    return OptimizeConfig(**{**base, **kw})


def test_search_specs_order_cheapest_first_and_say_what_cannot_apply() -> None:
    mc = [mc_example(i) for i in range(10)]
    view = TaskView([e.input for e in mc], [e.target for e in mc])
    specs, skipped = search_specs(strategy_names(), view, max_shots=2)
    labels = [s.label() for s in specs]
    assert labels[0] == "direct" and labels[-1] == "self_consistency k=5"
    assert {"choice_shuffle k=3", "cot", "knn_demos"} <= set(labels) and not skipped
    free = TaskView(["a b"] * 10, ["A B"] * 10)
    specs, skipped = search_specs(strategy_names(), free, max_shots=0)
    assert set(skipped) == {"choice_shuffle", "knn_demos", "cot_demos"}


def test_the_search_chooses_a_strategy_and_the_artifact_executes_it(tmp_path: Path) -> None:
    lm = ScriptedLM(reasoning_model, model_id="scripted-mc")
    run = Optimization(_cfg(tmp_path), lm=lm)
    assert any(line.startswith("strategies: direct, ") for line in run.plan_lines())
    result = run.run()
    run.close()
    best = result.best_prompt
    # Direct answers are right on half the inputs; reasoning on ~6 in 7 (greedy) or more.
    assert get_strategy(best.strategy).reasoning
    assert result.test is not None and result.test.mean > result.seed_test.mean  # type: ignore[union-attr]
    entries = RunLog(Store(tmp_path / "run" / "calls.sqlite")).entries()
    raced = {e.to_prompt().strategy.name for e in entries}
    assert {"direct", "cot", "self_consistency", "choice_shuffle"} <= raced
    assert all(e.tokens_per_example for e in entries if e.state == "complete")
    # Rationale demos are the model's reasoning where its final answer was right.
    state = json.loads((tmp_path / "run" / "candidates.json").read_text())
    metric = get_metric("choice")
    by_input = {mc_example(i).input: mc_example(i).target for i in range(150)}
    rationales = [e for s in state["strategies"]["rationale_sets"] for e in s]
    assert rationales
    for ex in rationales:
        assert "So the answer is" in ex["output"]
        assert metric.extract(ex["output"]) == by_input[ex["input"]]
    # The exported prompt answers as it was evaluated.
    loaded = Prompt.load(result.best_prompt_path)
    assert loaded == best
    ev = Evaluator(ScriptedLM(reasoning_model), get_metric("choice"), Decoding())
    test_records = json.loads((tmp_path / "run" / "test_records.json").read_text())["winner"]
    outs = ev.answer(loaded, [r["input"] for r in test_records])
    assert [o.answer for o in outs] == [r["answer"] for r in test_records]


def reasoning_right_every(m: int):  # type: ignore[no-untyped-def]
    """A model whose reasoning is right on every ``m``-th item only; direct answers as
    ``reasoning_model``."""

    def respond(req: GenerationRequest) -> str:
        q = _query(req)
        i = int(re.findall(r"item (\d+)", q)[0])
        if "step by step" not in q:
            return reasoning_model(req)
        right, wrong = _letter_of(q, COLOURS[i % 3]), _letter_of(q, COLOURS[(i + 1) % 3])
        return f"Step 1: item {i}.\nSo the answer is {right if i % m == 0 else wrong}."

    return respond


def test_rationales_are_bootstrapped_until_a_full_set_validates_within_the_cap() -> None:
    """Reasoning validates on items 0, 7, 14, ...: the first batch (9 tries) finds two, the
    walk goes on in batches sized by that rate until the third, then stops; a model whose
    reasoning never validates costs the first batch only, and the cap bounds the walk."""
    ev = make_evaluator(reasoning_right_every(7))
    teacher = Prompt(instruction="Answer with the letter.", strategy=StrategySpec("cot"))
    examples = [mc_example(i) for i in range(60)]
    kept, tried = bootstrap_until(ev, teacher, examples, want=3, first=9)
    assert [e.input for e in kept] == [mc_example(i).input for i in (0, 7, 14)]
    assert tried == 21  # 9, then ceil(1 * 9 / 2) = 5, then ceil(1 * 14 / 2) = 7
    assert all("So the answer is" in e.output for e in kept)
    kept, tried = bootstrap_until(ev, teacher, examples[:14], want=3, first=9)
    assert (len(kept), tried) == (2, 14)  # the cap: 14 examples
    kept, tried = bootstrap_until(ev, teacher, examples[1:], want=3, first=6)
    assert (kept, tried) == ([], 6)  # items 1..6: none validates, the walk ends


def test_the_search_bootstraps_a_full_rationale_set_where_reasoning_is_rarely_right(
    tmp_path: Path,
) -> None:
    """Reasoning right on every fourth item: the first batch (3k = 6 tries) validates one
    rationale, a 1-demo set as before; the walk goes on until both demos of a set validate."""
    lm = ScriptedLM(reasoning_right_every(4), model_id="scripted-mc")
    run = Optimization(_cfg(tmp_path, strategies=["direct", "cot_demos"], budget_calls=300), lm=lm)
    cap = run.plan.n_boot_rationale
    run.run()
    run.close()
    state = json.loads((tmp_path / "run" / "candidates.json").read_text())
    assert 2 * 3 < state["strategies"]["rationale_tries"] <= cap
    assert state["strategies"]["rationale_sets"] and all(
        len(s) == 2 for s in state["strategies"]["rationale_sets"]
    )


def test_the_plan_counts_k_calls_per_test_input_for_a_winner_that_samples(
    tmp_path: Path,
) -> None:
    lm = ScriptedLM(reasoning_model, model_id="scripted-mc")
    run = Optimization(_cfg(tmp_path, strategies=["direct", "self_consistency"]), lm=lm)
    try:
        lines = run.plan_lines(analysis_calls=100)
    finally:
        run.close()
    n = run.plan.n_test
    test = next(ln for ln in lines if "test (outside budget)" in ln)
    assert f"≤{6 * n:>5} calls" in test and "up to 5 calls per input" in test
    total = next(ln for ln in lines if ln.startswith("all model calls"))
    assert f"≤ {700 + 6 * n + 500} " in total and "report analyses ≤ 500" in total


def test_a_leader_that_samples_k_times_is_still_confirmed_against_the_seed(
    tmp_path: Path,
) -> None:
    """The plan reserves one confirmation call per example and candidate; a self-consistency
    leader needs k. The search stops early by the difference instead of leaving the leader
    unconfirmed."""
    cfg = _cfg(tmp_path, strategies=["direct", "self_consistency"], budget_calls=320)
    lm = ScriptedLM(reasoning_model, model_id="scripted-mc")
    run = Optimization(cfg, lm=lm)
    result = run.run()
    run.close()
    finalists = [c for c in result.confirmed if c.prompt.strategy.name == "self_consistency"]
    assert finalists, "a self-consistency candidate should lead validation"
    n = result.plan.n_confirm
    assert all(c.confirm_n == n for c in finalists)
    assert result.seed is not None and result.seed.confirm_n == n
    assert result.best.confirm_n == n and result.calls_used <= cfg.budget_calls


def test_the_strategy_screen_races_the_best_screened_first_on_a_small_budget(
    tmp_path: Path,
) -> None:
    """At 150 calls, racing strategies cheapest first spent the budget on direct answers and
    voting before any reasoning was tried; the screen looks at each on the first rung, and
    the best screened is raced first."""
    lm = ScriptedLM(reasoning_model, model_id="scripted-mc")
    result = optimize(lm=lm, **vars(_cfg(tmp_path, budget_calls=150)))
    state = json.loads((tmp_path / "run" / "candidates.json").read_text())
    screen = state["strategies"]["strategy_screen"]
    assert {"direct", "cot"} <= {r["strategy"] for r in screen}
    assert all(r["n"] == 8 for r in screen)
    top = max(r["score"] for r in screen)
    joint = [e for e in RunLog(Store(tmp_path / "run" / "calls.sqlite")).entries()]
    joint = [e for e in joint if e.source == "joint"]
    first = next(r for r in screen if r["strategy"] == joint[0].to_prompt().strategy.label())
    assert first["score"] == top > min(r["score"] for r in screen)
    assert get_strategy(result.best_prompt.strategy).reasoning
    assert result.test is not None and result.test.mean > result.seed_test.mean  # type: ignore[union-attr]


def imitates_answer_only_demos(req: GenerationRequest) -> str:
    """:func:`reasoning_model`, except that demos whose outputs are bare answers make it
    answer bare too, trigger or not (as small models copy the demos' format)."""
    demos = [m["content"] for m in req.chat_messages if m["role"] == "assistant"]
    if demos and not any("So the answer is" in d for d in demos):
        q = _query(req)
        i = int(re.findall(r"item (\d+)", q)[0])
        return _letter_of(q, COLOURS[i % 3]) if i % 2 == 0 else "(A)"
    return reasoning_model(req)


def test_reasoning_strategies_are_screened_zero_shot_as_published(tmp_path: Path) -> None:
    """cot, plan_and_solve and self_consistency are first tried without the answer-only demo
    sets (demos that answer bare teach a small model to skip the reasoning): their screen sees
    the reasoning, and the search chooses it. Fails when they are screened k-shot (every
    strategy then screens as direct answers do)."""
    lm = ScriptedLM(imitates_answer_only_demos, model_id="scripted-mc")
    cfg = _cfg(tmp_path, strategies=["direct", "cot", "plan_and_solve"], budget_calls=400)
    result = optimize(lm=lm, **vars(cfg))
    state = json.loads((tmp_path / "run" / "candidates.json").read_text())
    screen = {r["strategy"]: r["score"] for r in state["strategies"]["strategy_screen"]}
    assert screen["cot"] > screen["direct"] and screen["plan_and_solve"] > screen["direct"]
    entries = RunLog(Store(tmp_path / "run" / "calls.sqlite")).entries()
    first = {}
    for e in entries:
        first.setdefault(e.to_prompt().strategy.name, e.to_prompt())
    assert not first["cot"].exemplars and not first["plan_and_solve"].exemplars
    direct = [e.to_prompt() for e in entries if e.to_prompt().strategy.name == "direct"]
    assert any(p.exemplars for p in direct), "direct is still tried k-shot"
    assert get_strategy(result.best_prompt.strategy).reasoning
    assert result.test is not None and result.test.mean > result.seed_test.mean  # type: ignore[union-attr]


def five_samples_best(req: GenerationRequest) -> str:
    """Direct: right on every third item. Greedy reasoning: right except on every fourth.
    Sampled reasoning: the same, except that on every fourth item only the first two
    samples agree on a wrong answer (three samples vote wrong, as greedy; five vote right)."""
    q = _query(req)
    i = int(re.findall(r"item (\d+)", q)[0])
    right, wrong = _letter_of(q, COLOURS[i % 3]), _letter_of(q, COLOURS[(i + 1) % 3])
    if "step by step" in q:
        ok = i % 4 != 0 or (req.temperature > 0 and req.seed % 100 >= 2)
        return f"Step 1: item {i}.\nSo the answer is {right if ok else wrong}."
    return right if i % 3 == 0 else "(A)"


@pytest.mark.parametrize("budget", [190, 270])
def test_a_strategy_the_budget_cannot_race_to_the_end_is_not_screened(
    tmp_path: Path, budget: int
) -> None:
    """Self-consistency k=5 would screen best (8 of 8, cot and k=3 7 of 8), but at 190 calls
    the search has too few left to race it over the rest of validation: it is left out of
    the screen and cot, which the budget can race, wins, where k=5 raced first would spend
    the budget halfway and leave the direct seed the winner. At 270 calls k=5 fits, is
    screened, raced first, and wins."""
    lm = ScriptedLM(five_samples_best, model_id="scripted-mc")
    cfg = _cfg(tmp_path, strategies=["direct", "cot", "self_consistency"], budget_calls=budget)
    result = optimize(lm=lm, **vars(cfg))
    state = json.loads((tmp_path / "run" / "candidates.json").read_text())
    screen = {r["strategy"]: r["score"] for r in state["strategies"]["strategy_screen"]}
    assert screen["cot"] == screen["self_consistency k=3"] > screen["direct"]
    k5 = StrategySpec("self_consistency", 5)
    if budget == 270:
        assert screen["self_consistency k=5"] > screen["cot"]
        assert result.best_prompt.strategy == k5
    else:
        assert "self_consistency k=5" not in screen
        assert result.best_prompt.strategy == StrategySpec("cot")
    entries = RunLog(Store(tmp_path / "run" / "calls.sqlite")).entries()
    joint = [e for e in entries if e.source == "joint"]
    assert joint[0].state == "complete"
    assert joint[0].to_prompt().strategy == result.best_prompt.strategy
    assert result.test is not None and result.test.mean > result.seed_test.mean  # type: ignore[union-attr]


TOPICS = {
    "alpha": "harbour ship sail anchor tide",
    "beta": "orchard apple pear blossom harvest",
    "gamma": "circuit voltage resistor current wire",
}


def topic_example(i: int) -> Example:
    """Item ``i`` is about topic ``i % 3``: two of its words and a number."""
    label = sorted(TOPICS)[i % 3]
    words = TOPICS[label].split()
    text = f"{words[i % 5]} and {words[(i + 2) % 5]}, note {i}"
    return Example(id=f"t{i}", input=text, targets=(label,))


def copies_the_nearest_demo(req: GenerationRequest) -> str:
    """With exemplars: the last one's output (kNN puts the most similar last), except on
    every fifth note. Without: "alpha" (right on a third)."""
    demos = [m["content"] for m in req.chat_messages if m["role"] == "assistant"]
    note = int(re.findall(r"note (\d+)", _query(req))[0])
    if not demos:
        return "alpha"
    return demos[-1] if note % 5 else "beta"


def test_a_knn_winner_ships_with_every_labeled_example_in_its_pool(tmp_path: Path) -> None:
    """Searched with the train examples as its pool (validation and confirmation inputs stay
    outside it), a kNN winner ships with all labeled examples of the run; test never."""
    task = tmp_path / "topics.jsonl"
    task.write_text(
        "".join(
            json.dumps({"input": e.input, "target": e.target}) + "\n"
            for e in (topic_example(i) for i in range(120))
        )
    )
    cfg = _cfg(
        tmp_path, task=str(task), strategies=["direct", "knn_demos"], metric=None, instruction=""
    )
    run = Optimization(cfg, lm=ScriptedLM(copies_the_nearest_demo, model_id="scripted-mc"))
    result = run.run()
    run.close()
    searched, shipped = result.best.prompt, result.best_prompt
    assert shipped.strategy.name == "knn_demos"
    train, val, confirm = run.split.train, run.split.val, run.confirm
    assert [e.input for e in searched.exemplars] == [e.input for e in train]
    assert [e.input for e in shipped.exemplars] == [e.input for e in [*train, *val, *confirm]]
    assert not {e.input for e in run.test} & {e.input for e in shipped.exemplars}
    assert any(f"to all {len(shipped.exemplars)} labeled ones" in n for n in result.notes)
    # What ships is what was tested, and it answers as it was tested.
    assert Prompt.load(result.best_prompt_path) == shipped
    ev = Evaluator(ScriptedLM(copies_the_nearest_demo), get_metric("exact"), Decoding())
    test_records = json.loads((tmp_path / "run" / "test_records.json").read_text())["winner"]
    outs = ev.answer(shipped, [r["input"] for r in test_records])
    assert [o.answer for o in outs] == [r["answer"] for r in test_records]
    assert result.test is not None and result.seed_test is not None
    assert 0.6 < result.test.mean < 1.0 and result.seed_test.mean < 0.5


def test_the_result_names_the_strategies_the_budget_never_let_the_search_race(
    tmp_path: Path,
) -> None:
    lm = ScriptedLM(reasoning_model, model_id="scripted-mc")
    result = optimize(lm=lm, **vars(_cfg(tmp_path, budget_calls=150)))
    entries = RunLog(Store(tmp_path / "run" / "calls.sqlite")).entries()
    raced = {e.to_prompt().strategy.label() for e in entries if e.state != "failed"}
    note = next(n for n in result.notes if n.startswith("strategies the budget never let"))
    untried = {u.split(" (")[0] for u in note.split(": ", 1)[1].split(" (raise")[0].split(", ")}
    assert "self_consistency k=5" in untried and not untried & raced
    specs = json.loads((tmp_path / "run" / "candidates.json").read_text())["strategies"][
        "strategies"
    ]
    assert len(untried | raced) == len(specs)


def test_a_cost_cap_keeps_expensive_strategies_from_winning(tmp_path: Path) -> None:
    lm = ScriptedLM(reasoning_model, model_id="scripted-mc")
    run = Optimization(_cfg(tmp_path, max_cost_per_example=60), lm=lm)
    assert "costs ≤ 60 tokens per example" in "\n".join(run.plan_lines())
    result = run.run()
    run.close()
    assert not get_strategy(result.best_prompt.strategy).reasoning
    entries = RunLog(Store(tmp_path / "run" / "calls.sqlite")).entries()
    over = [e for e in entries if "tokens per example >" in e.note]
    assert over and all(e.state == "pruned" for e in over)
    assert all((e.tokens_per_example or 0) <= 60 for e in entries if e.state == "complete")


def test_run_refuses_a_prompt_file_with_an_unknown_strategy_before_any_model(
    tmp_path: Path,
) -> None:
    from tests.conftest import run_cli

    path = tmp_path / "p.json"
    path.write_text(json.dumps({"instruction": "x", "strategy": {"name": "zz", "k": 1}}))
    r = run_cli("run", "--prompt", str(path), "hello", timeout=120)
    assert r.returncode != 0
    assert f"{path}: strategy 'zz' is not one of" in r.stderr
    assert "Traceback" not in r.stderr


def test_shots_are_the_exemplars_shown_per_input() -> None:
    pool = tuple(Exemplar(f"in {i}", f"out {i}") for i in range(10))
    knn = Prompt(exemplars=pool, strategy=StrategySpec("knn_demos", 3))
    fixed = Prompt(exemplars=pool[:2], strategy=StrategySpec("cot"))
    assert get_strategy(knn.strategy).shots(knn) == 3  # k chosen from the pool it holds
    assert get_strategy(fixed.strategy).shots(fixed) == 2
