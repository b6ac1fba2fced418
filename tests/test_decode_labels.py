"""Label scoring (--decode labels) with the scripted double: outputs, caching, choice rules."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest

from promptlathe import Decoding, Evaluator, Prompt, Store
from promptlathe.errors import CannotScoreError, PromptlatheError
from promptlathe.evaluator import choose_decode
from promptlathe.lms import CachedLM, LabelRequest, ScoreRequest, ScriptedLM
from promptlathe.lms._base import LM, Generation, GenerationRequest
from promptlathe.metrics import LabelMetric, get_metric
from promptlathe.prompts import Format
from promptlathe.tasks import Example

LABELS = ["positive", "negative"]


def _examples(n: int = 12) -> list[Example]:
    # Inputs carry their label as a hint the scripted scorer reads, wrong for every 4th
    # example so accuracy is 0.75, not all-or-nothing.
    out = []
    for i in range(n):
        gold = LABELS[i % 2]
        hint = gold if i % 4 != 3 else LABELS[(i + 1) % 2]
        out.append(Example(id=f"e{i}", input=f"review {i} [{hint}]", targets=(gold,)))
    return out


def _hint_scorer(r: ScoreRequest) -> float:
    """Log-probability that favours the label named in the user's text (by a margin)."""
    text = " ".join(m["content"] for m in r.chat_messages) if r.messages else r.prompt or ""
    return -0.1 if f"[{r.continuation.strip()}]" in text else -2.3


def test_labels_mode_answers_with_the_most_likely_label() -> None:
    lm = ScriptedLM(respond=lambda r: "I think it is positive, mostly.", scorer=_hint_scorer)
    ev = Evaluator(lm, LabelMetric(LABELS), Decoding(), labels=LABELS)
    res = ev.evaluate(Prompt(instruction="Classify."), _examples())
    assert [r.output for r in res.records][:4] == ["positive", "negative", "positive", "positive"]
    assert res.mean == pytest.approx(0.75)
    assert lm.calls == []  # nothing generated
    assert len(lm.score_calls) == 2 * 12  # the generic path scores each label
    assert ev.decode == "labels"


def test_prefix_labels_score_the_end_of_the_answer() -> None:
    lm = ScriptedLM(scorer=lambda r: -1.0)
    lm.choose([LabelRequest.text("Q: x\nA:", [" no", " no way"])])
    ends = {c.continuation: c.end_of_text for c in lm.score_calls}
    assert ends == {" no": True, " no way": False}


def test_completion_prompts_score_labels_after_a_space() -> None:
    lm = ScriptedLM(scorer=_hint_scorer)
    ev = Evaluator(lm, LabelMetric(LABELS), labels=LABELS)
    prompt = Prompt(instruction="Classify.", format=Format(mode="completion"))
    req = ev.label_request(prompt, "review [negative]")
    assert req.prompt is not None and not req.prompt[-1].isspace()
    assert req.labels == (" positive", " negative")
    res = ev.evaluate(prompt, _examples(4))
    assert [r.output for r in res.records] == ["positive", "negative", "positive", "positive"]


def test_label_choices_are_cached_apart_from_generations(tmp_path) -> None:
    store = Store(tmp_path / "c.sqlite")
    inner = ScriptedLM(respond=lambda r: "positive", scorer=_hint_scorer)
    lm = CachedLM(inner, store)
    prompt, exs = Prompt(instruction="Classify."), _examples(6)
    gen = Evaluator(lm, LabelMetric(LABELS), store=store)
    lab = Evaluator(lm, LabelMetric(LABELS), store=store, labels=LABELS)
    assert gen.run != lab.run  # records never mix
    r_gen = gen.evaluate(prompt, exs)
    r_lab = lab.evaluate(prompt, exs)
    assert r_gen.calls == 6 and r_lab.calls == 6 and r_lab.cache_hits == 0
    assert {r.request_hash for r in r_gen.records}.isdisjoint(r.request_hash for r in r_lab.records)
    with sqlite3.connect(tmp_path / "c.sqlite") as conn:
        kinds = dict(conn.execute("SELECT kind, COUNT(*) FROM calls GROUP BY kind").fetchall())
    assert kinds == {"generate": 6, "labels": 6}
    # Again: every choice comes from the cache, with the same answers.
    n_scores = len(inner.score_calls)
    lm2 = CachedLM(ScriptedLM(scorer=_hint_scorer), store)
    again = Evaluator(lm2, LabelMetric(LABELS), labels=LABELS).evaluate(prompt, exs)
    assert again.calls == 0 and [r.output for r in again.records] == [
        r.output for r in r_lab.records
    ]
    assert len(inner.score_calls) == n_scores
    assert store.tokens_used() > 0


class _NoScores(LM):
    def generate(self, requests):  # pragma: no cover - not called
        return [Generation(text="x") for _ in requests]

    def count_tokens(self, text: str) -> int:
        return 1


def test_a_backend_that_cannot_score_is_refused_before_any_call() -> None:
    with pytest.raises(PromptlatheError, match="scores log-probabilities"):
        Evaluator(_NoScores(), LabelMetric(LABELS), labels=LABELS)
    with pytest.raises(CannotScoreError):
        _NoScores().score([ScoreRequest(continuation="x", prompt="y")])
    with pytest.raises(NotImplementedError):  # callers that catch the old type still do
        _NoScores().choose([LabelRequest.text("q", LABELS)])


class _OnePass(ScriptedLM):
    labels_in_one_pass = True


def test_choose_decode_rules() -> None:
    label = LabelMetric(LABELS)
    targets = ["positive", "negative"] * 5
    assert choose_decode("auto", label, _OnePass(), targets)[0] == LABELS
    labels, why = choose_decode("auto", label, ScriptedLM(), targets)
    assert labels is None and "one call each" in why
    assert choose_decode("auto", get_metric("normalized"), _OnePass(), targets)[0] is None
    assert choose_decode("generate", label, _OnePass(), targets)[0] is None
    # labels insists: the label set comes from the targets when the metric has none.
    assert choose_decode("labels", get_metric("normalized"), ScriptedLM(), targets)[0] == LABELS
    with pytest.raises(PromptlatheError, match="task.jsonl has 10 distinct targets"):
        choose_decode(
            "labels",
            get_metric("normalized"),
            ScriptedLM(),
            [str(i) for i in range(10)],
            "task.jsonl",
        )
    with pytest.raises(PromptlatheError, match="scores log-probabilities"):
        choose_decode("labels", label, _NoScores(), targets)
    with pytest.raises(PromptlatheError, match="--decode 'sample'"):
        choose_decode("sample", label, ScriptedLM(), targets)


def test_generic_choose_is_the_argmax_of_full_scores() -> None:
    scores = {"a": -3.0, "b": -1.0, "c": -1.0}
    lm = ScriptedLM(scorer=lambda r: scores[r.continuation])
    (choice,) = lm.choose([LabelRequest.text("ctx", ["a", "b", "c"])])
    assert choice.index == 1  # ties go to the first label
    assert choice.logprobs == [-3.0, -1.0, -1.0]
    assert all(math.isfinite(x) for x in choice.logprobs if x is not None)


def test_generic_choose_counts_the_prompt_its_scores_leave_out() -> None:
    # a server scores labels without saying how long the prompt was: the choice counts it
    # (what the call costs, and the run log's tokens per example, depend on it)
    lm = ScriptedLM(scorer=lambda r: -1.0)  # counts a token a word
    text, chat = (
        LabelRequest.text("one two three", ["a", "b"]),
        LabelRequest.chat(
            [{"role": "system", "content": "be brief"}, {"role": "user", "content": "x y"}],
            ["a", "b"],
        ),
    )
    got = lm.choose([text, chat])
    assert [c.prompt_tokens for c in got] == [3, 4]
    assert [c.completion_tokens for c in got] == [2, 2]


def test_generation_request_unchanged_by_labels() -> None:
    # The generate path's request is what it was (cache keys of existing runs stay valid).
    ev = Evaluator(ScriptedLM(), LabelMetric(LABELS))
    assert isinstance(ev.request(Prompt(), "x"), GenerationRequest)
    assert ev.decode == "generate"


def _task(tmp_path, targets: list[str]) -> str:

    path = tmp_path / "t.jsonl"
    path.write_text(
        "".join(json.dumps({"input": f"q{i}", "target": t}) + "\n" for i, t in enumerate(targets))
    )
    return str(path)


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["eval", "--decode", "sample"], ("--decode 'sample' is not one of",)),
        (
            ["eval", "--decode", "labels"],
            ("--decode labels needs a classification task", "t.jsonl"),
        ),
        (["optimize", "--decode", "sample"], ("--decode 'sample' is not one of",)),
        (["optimize", "--decode", "labels"], ("--decode labels needs a classification task",)),
    ],
)
def test_bad_decode_is_one_line_before_any_model_loads(
    capsys, monkeypatch, tmp_path, argv: list[str], needles: tuple[str, ...]
) -> None:
    from tests.test_fuzz_inputs import assert_one_line_error, invoke

    task = _task(tmp_path, [f"answer {i}" for i in range(40)])  # open-ended
    # A model that does not exist: the decode check must come first.
    extra = ["--task", task, "--model", "no-such-model", "--no-progress"]
    if argv[0] == "eval":
        extra += ["--instruction", "x", "--cache", str(tmp_path / "c.sqlite")]
    else:
        extra += ["--out", str(tmp_path / "run")]
    code, _, err = invoke(capsys, monkeypatch, *argv, *extra)
    assert_one_line_error(code, err, needles)
