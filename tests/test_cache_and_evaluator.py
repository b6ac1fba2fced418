"""Unit tests for request keys, CachedLM + Store, the Evaluator and the Wilson interval.

Only the scripted test double (ScriptedLM) is used; no real model is loaded.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from scipy.stats import binomtest, norm

from promptlathe._stats import wilson_interval
from promptlathe.errors import BudgetExhausted, PromptlatheError, PromptTooLongError
from promptlathe.evaluator import Decoding, EvalResult, Evaluator, Record
from promptlathe.lms import (
    CachedLM,
    Generation,
    GenerationRequest,
    ScoreRequest,
    ScriptedLM,
    request_key,
)
from promptlathe.metrics import Exact, NormalizedExact, get_metric
from promptlathe.prompts import Exemplar, Format, Prompt
from promptlathe.store import Store
from promptlathe.tasks import Example

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]


def key_of(req: GenerationRequest, model_id: str = "m") -> str:
    return request_key(model_id, "generate", req.payload())


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "cache.db")
    yield s
    s.close()


def examples(n: int = 5) -> list[Example]:
    # Answer for qi is "ai"; odd examples have a target the echo-style script gets wrong.
    return [Example(input=f"q{i}", targets=(f"a{i}",), id=f"ex{i}") for i in range(n)]


def answer_script(req: GenerationRequest) -> str:
    """Answers 'q3' with 'a3' for even i, 'wrong' for odd i."""
    text = req.chat_messages[-1]["content"] if req.messages else req.prompt or ""
    i = int(text.rsplit("q", 1)[1].split()[0])
    return f"a{i}" if i % 2 == 0 else "wrong"


# ---- request_key --------------------------------------------------------------------------


def test_request_key_is_deterministic_hex() -> None:
    r = GenerationRequest.chat(MSGS)
    k = key_of(r)
    assert k == key_of(GenerationRequest.chat([dict(m) for m in MSGS]))
    assert len(k) == 64
    int(k, 16)


def test_request_key_ignores_dict_key_order_within_messages() -> None:
    reordered = [{"content": m["content"], "role": m["role"]} for m in MSGS]
    assert key_of(GenerationRequest.chat(MSGS)) == key_of(GenerationRequest.chat(reordered))


def test_request_key_differs_by_model_id_and_kind() -> None:
    r = GenerationRequest.chat(MSGS)
    assert request_key("m1", "generate", r.payload()) != request_key("m2", "generate", r.payload())
    assert request_key("m", "generate", r.payload()) != request_key("m", "score", r.payload())


@pytest.mark.parametrize(
    "params",
    [
        {"max_tokens": 65},
        {"temperature": 0.7},
        {"top_p": 0.9},
        {"seed": 1},
        {"stop": ("\n",)},
    ],
)
def test_request_key_differs_by_each_decoding_param(params: dict) -> None:
    base = GenerationRequest.chat(MSGS)
    changed = GenerationRequest.chat(MSGS, **params)
    assert key_of(base) != key_of(changed)


@pytest.mark.parametrize(
    "msgs",
    [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+3?"}],
        [{"role": "system", "content": "Be brief!"}, {"role": "user", "content": "2+2?"}],
        [{"role": "user", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
        [{"role": "user", "content": "2+2?"}],
        list(reversed(MSGS)),
    ],
)
def test_request_key_differs_by_message(msgs: list) -> None:
    assert key_of(GenerationRequest.chat(MSGS)) != key_of(GenerationRequest.chat(msgs))


def test_request_key_text_vs_chat() -> None:
    text = GenerationRequest.text("2+2?")
    chat = GenerationRequest.chat([{"role": "user", "content": "2+2?"}])
    assert key_of(text) != key_of(chat)
    assert key_of(text) != key_of(GenerationRequest.text("2+2? "))


def test_generation_request_payload() -> None:
    r = GenerationRequest.chat(MSGS, max_tokens=8, stop=("a", "b"))
    p = r.payload()
    assert p["messages"] == MSGS
    assert p["prompt"] is None
    assert p["stop"] == ["a", "b"]
    assert p["max_tokens"] == 8
    t = GenerationRequest.text("hi").payload()
    assert t["messages"] is None
    assert t["prompt"] == "hi"


# ---- ScriptedLM ---------------------------------------------------------------------------


def test_scripted_lm_default_echo_and_counts() -> None:
    lm = ScriptedLM()
    (g,) = lm.generate([GenerationRequest.chat(MSGS)])
    assert g.text == "2+2?"
    assert g.prompt_tokens == 3  # "Be brief. 2+2?"
    assert g.completion_tokens == 1
    assert g.cached is False
    assert len(lm.calls) == 1


# ---- CachedLM -----------------------------------------------------------------------------


def test_cached_second_identical_batch_makes_no_inner_calls(store: Store) -> None:
    inner = ScriptedLM(lambda r: "out:" + r.chat_messages[-1]["content"], model_id="m")
    lm = CachedLM(inner, store)
    reqs = [GenerationRequest.chat([{"role": "user", "content": f"q{i}"}]) for i in range(3)]
    first = lm.generate(reqs)
    assert [g.text for g in first] == ["out:q0", "out:q1", "out:q2"]
    assert all(not g.cached for g in first)
    assert len(inner.calls) == 3
    assert lm.stats.calls == 3 and lm.stats.cache_hits == 0

    second = lm.generate(reqs)
    assert len(inner.calls) == 3  # zero new inner calls
    assert [g.text for g in second] == ["out:q0", "out:q1", "out:q2"]
    assert all(g.cached for g in second)
    assert [g.prompt_tokens for g in second] == [g.prompt_tokens for g in first]
    assert [g.completion_tokens for g in second] == [g.completion_tokens for g in first]
    assert lm.stats.calls == 3 and lm.stats.cache_hits == 3


def test_cached_partial_hit_only_calls_misses(store: Store) -> None:
    inner = ScriptedLM(model_id="m")
    lm = CachedLM(inner, store)
    a, b, c = (GenerationRequest.text(x) for x in "abc")
    lm.generate([a, b])
    out = lm.generate([b, c, a])
    assert [g.text for g in out] == ["b", "c", "a"]
    assert [g.cached for g in out] == [True, False, True]
    assert [r.prompt for r in inner.calls] == ["a", "b", "c"]


def test_cached_in_batch_duplicates_called_once(store: Store) -> None:
    inner = ScriptedLM(model_id="m")
    lm = CachedLM(inner, store)
    x, y = GenerationRequest.text("x"), GenerationRequest.text("y")
    out = lm.generate([x, y, x, x])
    assert [g.text for g in out] == ["x", "y", "x", "x"]
    assert [g.cached for g in out] == [False, False, True, True]
    assert [r.prompt for r in inner.calls] == ["x", "y"]
    assert lm.stats.calls == 2
    assert lm.stats.cache_hits == 2
    assert store.count_calls() == 2


def test_cached_calls_persisted_immediately(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    s1 = Store(path)
    inner = ScriptedLM(lambda r: "persisted", model_id="m")
    lm = CachedLM(inner, s1)
    req = GenerationRequest.chat(MSGS, max_tokens=10)
    lm.generate([req])
    # A second connection to the same file sees the call without s1 being closed.
    s2 = Store(path)
    try:
        assert s2.count_calls() == 1
        assert s2.count_calls("m") == 1
        assert s2.count_calls("other") == 0
        hit = s2.get_call(request_key("m", "generate", req.payload()))
        assert hit is not None
        assert hit["text"] == "persisted"
        assert "cached" not in hit
        # A new CachedLM over the second store serves it without calling its inner LM.
        inner2 = ScriptedLM(lambda r: "fresh", model_id="m")
        (g,) = CachedLM(inner2, s2).generate([req])
        assert g.text == "persisted" and g.cached
        assert inner2.calls == []
    finally:
        s2.close()
        s1.close()


def test_cached_each_chunk_persisted_before_crash(store: Store) -> None:
    n = 0

    def respond(req: GenerationRequest) -> str:
        nonlocal n
        n += 1
        if n == 3:
            raise RuntimeError("boom")
        return f"r{n}"

    lm = CachedLM(ScriptedLM(respond, model_id="m", max_batch=1), store)
    with pytest.raises(RuntimeError, match="boom"):
        lm.generate([GenerationRequest.text(f"p{i}") for i in range(5)])
    assert store.count_calls() == 2


def test_cached_model_id_separates_entries(store: Store) -> None:
    req = GenerationRequest.text("same")
    CachedLM(ScriptedLM(lambda r: "from m1", model_id="m1"), store).generate([req])
    inner2 = ScriptedLM(lambda r: "from m2", model_id="m2")
    (g,) = CachedLM(inner2, store).generate([req])
    assert g.text == "from m2"
    assert not g.cached
    assert len(inner2.calls) == 1


def test_cached_guard_raising_stops_before_inner_call(store: Store) -> None:
    inner = ScriptedLM(model_id="m")

    def guard(n: int) -> None:
        raise BudgetExhausted(f"refused {n}")

    lm = CachedLM(inner, store, guard=guard)
    with pytest.raises(BudgetExhausted, match="refused 1"):
        lm.generate([GenerationRequest.text("a"), GenerationRequest.text("b")])
    assert inner.calls == []
    assert store.count_calls() == 0
    assert lm.stats.calls == 0


def test_cached_guard_not_called_for_hits_and_sees_chunk_sizes(store: Store) -> None:
    seen: list[int] = []
    inner = ScriptedLM(model_id="m", max_batch=2)
    lm = CachedLM(inner, store, guard=seen.append)
    reqs = [GenerationRequest.text(x) for x in "abc"]
    lm.generate(reqs + [reqs[0]])  # 3 unique misses, chunks of 2 -> 2 then 1
    assert seen == [2, 1]
    lm.generate(reqs)  # all hits: guard not called
    assert seen == [2, 1]


def test_cached_guard_raising_on_second_chunk_keeps_first(store: Store) -> None:
    inner = ScriptedLM(model_id="m", max_batch=1)
    calls = 0

    def guard(n: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise BudgetExhausted("out of budget")

    lm = CachedLM(inner, store, guard=guard)
    with pytest.raises(BudgetExhausted):
        lm.generate([GenerationRequest.text("a"), GenerationRequest.text("b")])
    assert [r.prompt for r in inner.calls] == ["a"]
    assert store.count_calls() == 1


def test_cached_score(store: Store) -> None:
    inner = ScriptedLM(model_id="m", scorer=lambda r: -1.5)
    lm = CachedLM(inner, store)
    req = ScoreRequest.chat([{"role": "user", "content": "hi"}], "hello there")
    (r1,) = lm.score([req])
    assert r1.logprob == -1.5 and r1.n_tokens == 2 and not r1.cached
    (r2,) = lm.score([req])
    assert r2.logprob == -1.5 and r2.n_tokens == 2 and r2.cached
    assert len(inner.score_calls) == 1
    # a different continuation is a different key
    lm.score([ScoreRequest.chat([{"role": "user", "content": "hi"}], "bye")])
    assert len(inner.score_calls) == 2


def test_cached_passes_through_attributes(store: Store) -> None:
    inner = ScriptedLM(model_id="xyz", context_window=123, max_batch=4)
    lm = CachedLM(inner, store)
    assert lm.model_id == "xyz"
    assert lm.context_window == 123
    assert lm.max_batch == 4
    assert lm.count_tokens("a b c") == 3


def test_store_records_roundtrip(store: Store) -> None:
    store.put_record("run", "h", "e1", {"score": 1.0, "x": "ü"})
    store.put_record("run", "h", "e1", {"score": 0.0})  # replaces
    store.put_record("run", "h2", "e1", {"score": 0.5})
    assert store.get_records("run", "h") == {"e1": {"score": 0.0}}
    assert store.get_records("run", "h2") == {"e1": {"score": 0.5}}
    assert store.get_records("other", "h") == {}


# ---- Evaluator ----------------------------------------------------------------------------


def test_evaluator_accuracy_records_and_ci(store: Store) -> None:
    inner = ScriptedLM(answer_script, model_id="m")
    lm = CachedLM(inner, store)
    ev = Evaluator(lm, Exact(), store=store)
    p = Prompt(instruction="Answer.")
    exs = examples(5)
    res = ev.evaluate(p, exs)

    assert isinstance(res, EvalResult)
    assert res.n == 5
    assert res.prompt_hash == p.hash
    assert res.mean == pytest.approx(3 / 5)  # ex0, ex2, ex4 right
    lo, hi = res.ci
    assert 0.0 <= lo < res.mean < hi <= 1.0
    assert (lo, hi) == pytest.approx(wilson_interval(3, 5))
    assert res.calls == 5 and res.cache_hits == 0
    assert res.prompt_tokens > 0 and res.completion_tokens == 5
    assert res.tokens == res.prompt_tokens + res.completion_tokens

    assert [r.example_id for r in res.records] == [e.id for e in exs]
    r0, r1 = res.records[0], res.records[1]
    assert r0 == Record(
        example_id="ex0",
        input="q0",
        prompt_hash=p.hash,
        request_hash=request_key("m", "generate", ev.request(p, "q0").payload())[:16],
        output="a0",
        answer="a0",
        targets=["a0"],
        score=1.0,
        cached=False,
        tokens=r0.tokens,
    )
    assert r0.tokens > 0 and res.tokens_per_example == pytest.approx(res.tokens / 5)
    assert r0.correct
    assert r1.output == "wrong" and r1.score == 0.0 and not r1.correct

    d = res.to_dict()
    assert d["accuracy"] == pytest.approx(0.6)
    assert d["n"] == 5
    assert d["ci95"] == pytest.approx([lo, hi])
    assert d["lm_calls"] == 5
    assert [r["correct"] for r in d["records"]] == [True, False, True, False, True]

    # Records persisted under the evaluator's run, without the "cached" flag.
    stored = store.get_records(ev.run, p.hash)
    assert set(stored) == {e.id for e in exs}
    assert stored["ex1"]["output"] == "wrong"
    assert stored["ex1"]["score"] == 0.0
    assert "cached" not in stored["ex1"]


def test_evaluator_second_run_is_fully_cached(store: Store) -> None:
    inner = ScriptedLM(answer_script, model_id="m")
    ev = Evaluator(CachedLM(inner, store), Exact(), store=store)
    p = Prompt(instruction="Answer.")
    first = ev.evaluate(p, examples(4))
    again = ev.evaluate(p, examples(4))
    assert len(inner.calls) == 4
    assert again.calls == 0
    assert again.cache_hits == 4
    assert all(r.cached for r in again.records)
    assert again.mean == first.mean


def test_evaluator_uses_lm_cache_without_record_store(store: Store) -> None:
    inner = ScriptedLM(answer_script, model_id="m")
    ev = Evaluator(CachedLM(inner, store), Exact())  # no record store
    p = Prompt(instruction="Answer.")
    ev.evaluate(p, examples(3))
    res = ev.evaluate(p, examples(3))
    assert len(inner.calls) == 3
    assert res.calls == 0 and res.cache_hits == 3
    assert res.prompt_tokens == 0  # cached generations are not counted as spent tokens


def test_evaluator_progress_callback(store: Store) -> None:
    calls: list[tuple[int, int]] = []
    ev = Evaluator(ScriptedLM(answer_script, model_id="m"), Exact(), batch_size=2)
    ev.evaluate(Prompt(), examples(5), progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 5)
    assert calls[-1] == (5, 5)
    assert calls == [(0, 5), (2, 5), (4, 5), (5, 5)]


def test_evaluator_batch_size_defaults_to_max_batch() -> None:
    inner = ScriptedLM(answer_script, model_id="m", max_batch=3)
    batches: list[int] = []
    orig = inner.generate

    def spy(reqs):
        batches.append(len(reqs))
        return orig(reqs)

    inner.generate = spy  # type: ignore[method-assign]
    Evaluator(inner, Exact()).evaluate(Prompt(), examples(7))
    assert batches == [3, 3, 1]


def test_evaluator_resume_after_crash(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    exs = examples(5)
    p = Prompt(instruction="Answer.")
    n = 0

    def crashing(req: GenerationRequest) -> str:
        nonlocal n
        n += 1
        if n == 3:
            raise RuntimeError("simulated crash")
        return answer_script(req)

    s1 = Store(path)
    progress1: list[tuple[int, int]] = []
    ev1 = Evaluator(CachedLM(ScriptedLM(crashing, model_id="m"), s1), Exact(), store=s1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ev1.evaluate(p, exs, progress=lambda d, t: progress1.append((d, t)))
    assert progress1[-1] == (2, 5)
    s1.close()

    s2 = Store(path)
    try:
        inner2 = ScriptedLM(answer_script, model_id="m")
        ev2 = Evaluator(CachedLM(inner2, s2), Exact(), store=s2)
        progress2: list[tuple[int, int]] = []
        res = ev2.evaluate(p, exs, progress=lambda d, t: progress2.append((d, t)))
        # Only the three unfinished examples reach the inner LM.
        assert [answer_script(r) for r in inner2.calls] == ["a2", "wrong", "a4"]
        assert len(inner2.calls) == 3
        assert res.calls == 3
        assert res.cache_hits == 2
        assert [r.cached for r in res.records] == [True, True, False, False, False]
        assert [r.example_id for r in res.records] == [e.id for e in exs]
        assert res.mean == pytest.approx(3 / 5)
        assert progress2[0] == (2, 5)
        assert progress2[-1] == (5, 5)
    finally:
        s2.close()


def test_evaluator_records_reused_only_for_same_model_and_metric(store: Store) -> None:
    p = Prompt(instruction="Answer.")
    exs = examples(3)
    # No CachedLM: inner calls show directly whether the stored records were reused.
    inner = ScriptedLM(answer_script, model_id="m")
    Evaluator(inner, Exact(), store=store).evaluate(p, exs)
    assert len(inner.calls) == 3

    same = ScriptedLM(answer_script, model_id="m")
    res = Evaluator(same, Exact(), store=store).evaluate(p, exs)
    assert same.calls == []
    assert all(r.cached for r in res.records)

    other_metric = ScriptedLM(answer_script, model_id="m")
    res = Evaluator(other_metric, NormalizedExact(), store=store).evaluate(p, exs)
    assert len(other_metric.calls) == 3
    assert not any(r.cached for r in res.records)

    other_model = ScriptedLM(answer_script, model_id="m2")
    Evaluator(other_model, Exact(), store=store).evaluate(p, exs)
    assert len(other_model.calls) == 3

    other_decoding = ScriptedLM(answer_script, model_id="m")
    Evaluator(other_decoding, Exact(), Decoding(max_tokens=5), store=store).evaluate(p, exs)
    assert len(other_decoding.calls) == 3

    other_run = ScriptedLM(answer_script, model_id="m")
    Evaluator(other_run, Exact(), store=store, run="other").evaluate(p, exs)
    assert len(other_run.calls) == 3

    other_prompt = ScriptedLM(answer_script, model_id="m")
    Evaluator(other_prompt, Exact(), store=store).evaluate(p.with_(instruction="Hm."), exs)
    assert len(other_prompt.calls) == 3


def test_evaluator_stored_record_not_reused_when_input_changed(store: Store) -> None:
    p = Prompt()
    Evaluator(ScriptedLM(answer_script, model_id="m"), Exact(), store=store).evaluate(
        p, [Example(input="q0", targets=("a0",), id="x")]
    )
    inner = ScriptedLM(answer_script, model_id="m")
    res = Evaluator(inner, Exact(), store=store).evaluate(
        p, [Example(input="q2", targets=("a2",), id="x")]
    )
    assert len(inner.calls) == 1
    assert res.records[0].input == "q2"
    assert res.records[0].output == "a2"


def test_evaluator_stored_record_rescored_when_targets_changed(store: Store) -> None:
    p = Prompt()
    Evaluator(ScriptedLM(lambda r: "a0", model_id="m"), Exact(), store=store).evaluate(
        p, [Example(input="q0", targets=("wrong-label",), id="x")]
    )
    res = Evaluator(ScriptedLM(lambda r: "a0", model_id="m"), Exact(), store=store).evaluate(
        p, [Example(input="q0", targets=("a0",), id="x")]
    )
    assert res.records[0].targets == ["a0"]
    assert res.records[0].score == 1.0


def test_evaluator_rejects_duplicate_ids() -> None:
    lm = ScriptedLM(lambda r: "a", model_id="m")
    ev = Evaluator(lm, Exact())
    examples = [
        Example(input="q1", targets=("a",), id="dup"),
        Example(input="q2", targets=("b",), id="dup"),
    ]
    with pytest.raises(PromptlatheError, match="'dup' occurs more than once"):
        ev.evaluate(Prompt(), examples)
    assert lm.calls == []


def test_evaluator_request_chat_and_completion() -> None:
    ev = Evaluator(
        ScriptedLM(), Exact(), Decoding(max_tokens=7, temperature=0.5, top_p=0.8, seed=3)
    )
    chat = ev.request(Prompt(instruction="I"), "q")
    assert chat.messages is not None and chat.prompt is None
    assert chat.chat_messages == [
        {"role": "system", "content": "I"},
        {"role": "user", "content": "Input: q"},
    ]
    assert (chat.max_tokens, chat.temperature, chat.top_p, chat.seed) == (7, 0.5, 0.8, 3)
    assert chat.stop == ()

    comp_prompt = Prompt(exemplars=(Exemplar("a", "b"),), format=Format(mode="completion"))
    comp = ev.request(comp_prompt, "q")
    assert comp.messages is None
    assert comp.prompt == "Input: a\nOutput: b\n\nInput: q\nOutput:"
    assert comp.stop == ("\n\n", "\nInput:")
    assert comp.max_tokens == 7


def test_evaluator_run_name_includes_model_metric_decoding() -> None:
    ev = Evaluator(ScriptedLM(model_id="mod"), get_metric("numeric"), run="r")
    assert ev.run.startswith("r|mod|numeric|")
    assert "max_tokens=64" in ev.run


def test_evaluator_prompt_too_long_names_example(store: Store) -> None:
    def respond(req: GenerationRequest) -> str:
        if "q2" in req.chat_messages[-1]["content"]:
            raise PromptTooLongError("prompt has 9999 tokens, context is 4096")
        return answer_script(req)

    ev = Evaluator(ScriptedLM(respond, model_id="m"), Exact(), store=store)
    p = Prompt()
    with pytest.raises(PromptTooLongError) as exc:
        ev.evaluate(p, examples(4))
    assert "example ex2" in str(exc.value)
    assert "9999 tokens" in str(exc.value)
    # Records finished before the failure are kept.
    assert set(store.get_records(ev.run, p.hash)) == {"ex0", "ex1"}


def test_evaluator_empty_examples() -> None:
    calls: list[tuple[int, int]] = []
    res = Evaluator(ScriptedLM(), Exact()).evaluate(
        Prompt(), [], progress=lambda *a: calls.append(a)
    )
    assert res.n == 0
    assert res.mean == 0.0
    assert res.ci == (0.0, 1.0)
    assert calls == [(0, 0)]


def test_eval_result_partial_credit_mean() -> None:
    common = {"input": "i", "prompt_hash": "h", "request_hash": "r", "output": "o"}
    recs = [
        Record(example_id="a", answer="o", targets=["t"], score=0.5, **common),
        Record(example_id="b", answer="o", targets=["t"], score=1.0, **common),
    ]
    res = EvalResult(prompt_hash="h", records=recs)
    assert res.mean == pytest.approx(0.75)
    assert res.ci == pytest.approx(wilson_interval(1.5, 2))
    assert not recs[0].correct and recs[1].correct


def test_generation_marks_cached_from_store(store: Store) -> None:
    # A cache hit is reconstructed from the stored JSON into a full Generation.
    lm = CachedLM(ScriptedLM(model_id="m"), store)
    req = GenerationRequest.text("one two three")
    lm.generate([req])
    (g,) = lm.generate([req])
    assert g == Generation(
        text="one two three",
        prompt_tokens=3,
        completion_tokens=3,
        finish_reason="stop",
        cached=True,
    )


# ---- Wilson interval ----------------------------------------------------------------------


def wilson_by_hand(k: float, n: int, conf: float = 0.95) -> tuple[float, float]:
    z = norm.ppf(1 - (1 - conf) / 2)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = (z / (1 + z**2 / n)) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return max(0.0, centre - half), min(1.0, centre + half)


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [
        # Reference values (Wilson, z = 1.959964).
        (0, 10, (0.0, 0.2775328)),
        (10, 10, (0.7224672, 1.0)),
        (5, 10, (0.2365931, 0.7634069)),
        (1, 1, (0.2065493, 1.0)),
    ],
)
def test_wilson_known_values(k: int, n: int, expected: tuple[float, float]) -> None:
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(expected[0], abs=1e-6)
    assert hi == pytest.approx(expected[1], abs=1e-6)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (10, 10), (5, 10), (3, 7), (1, 100), (99, 100)])
def test_wilson_matches_scipy_and_hand_formula(k: int, n: int) -> None:
    got = wilson_interval(k, n)
    assert got == pytest.approx(wilson_by_hand(k, n), abs=1e-12)
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert got == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_wilson_other_confidence_is_wider_or_narrower() -> None:
    lo95, hi95 = wilson_interval(5, 10)
    lo99, hi99 = wilson_interval(5, 10, confidence=0.99)
    lo80, hi80 = wilson_interval(5, 10, confidence=0.80)
    assert lo99 < lo95 < lo80 < 0.5 < hi80 < hi95 < hi99
    assert (lo99, hi99) == pytest.approx(wilson_by_hand(5, 10, 0.99))


@pytest.mark.parametrize(("k", "n"), [(0, 10), (5, 10), (2.5, 4), (1, 3), (9, 10), (7, 7)])
def test_wilson_contains_mean_and_is_in_unit_interval(k: float, n: int) -> None:
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


@pytest.mark.parametrize(("k", "n"), [(10, 10), (13, 13)])
def test_wilson_perfect_score_upper_bound_is_one(k: int, n: int) -> None:
    lo, hi = wilson_interval(k, n)
    assert lo <= k / n <= hi
    assert hi == 1.0


@pytest.mark.parametrize(("k", "n"), [(0, 3), (0, 12)])
def test_wilson_zero_score_lower_bound_is_zero(k: int, n: int) -> None:
    lo, hi = wilson_interval(k, n)
    assert lo <= k / n <= hi
    assert lo == 0.0


def test_wilson_zero_trials() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
