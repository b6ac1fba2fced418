"""Unit tests for promptlathe.prompts: rendering, hashing, JSON round-trip, loading errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptlathe.errors import PromptlatheError
from promptlathe.prompts import SCHEMA_VERSION, Exemplar, Format, Prompt

EXS = (Exemplar("1+1", "2"), Exemplar("2+2", "4"))


def prompt(mode: str = "chat", system: str | None = None, **fmt) -> Prompt:
    return Prompt(
        instruction="Add the numbers.",
        exemplars=EXS,
        format=Format(mode=mode, system=system, **fmt),
    )


# ---- rendering ----------------------------------------------------------------------------


def test_chat_mode_messages() -> None:
    msgs = prompt("chat").render_messages("3+3")
    assert msgs == [
        {"role": "system", "content": "Add the numbers."},
        {"role": "user", "content": "Input: 1+1"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "Input: 2+2"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "Input: 3+3"},
    ]


def test_chat_mode_with_system_joins_system_and_instruction() -> None:
    msgs = prompt("chat", system="You are terse.").render_messages("3+3")
    assert msgs[0] == {"role": "system", "content": "You are terse.\n\nAdd the numbers."}
    assert len(msgs) == 6


def test_chat_mode_without_instruction_or_system_has_no_system_message() -> None:
    p = Prompt(exemplars=(Exemplar("a", "b"),))
    assert p.render_messages("q") == [
        {"role": "user", "content": "Input: a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "Input: q"},
    ]


def test_chat_mode_no_input_label() -> None:
    p = Prompt(instruction="Do it.", format=Format(input_label=""))
    assert p.render_messages("raw query") == [
        {"role": "system", "content": "Do it."},
        {"role": "user", "content": "raw query"},
    ]


def test_chat_single_mode_messages() -> None:
    msgs = prompt("chat_single").render_messages("3+3")
    assert msgs == [
        {
            "role": "user",
            "content": (
                "Add the numbers.\n\n"
                "Input: 1+1\nOutput: 2\n\n"
                "Input: 2+2\nOutput: 4\n\n"
                "Input: 3+3\nOutput:"
            ),
        }
    ]


def test_chat_single_mode_system_is_separate_message() -> None:
    msgs = prompt("chat_single", system="SYS").render_messages("3+3")
    assert msgs[0] == {"role": "system", "content": "SYS"}
    assert len(msgs) == 2
    assert msgs[1]["role"] == "user"
    assert msgs[1]["content"].startswith("Add the numbers.\n\nInput: 1+1")
    assert "SYS" not in msgs[1]["content"]


def test_completion_mode_text() -> None:
    p = prompt("completion")
    expected = (
        "Add the numbers.\n\nInput: 1+1\nOutput: 2\n\nInput: 2+2\nOutput: 4\n\nInput: 3+3\nOutput:"
    )
    assert p.render_text("3+3") == expected
    # render_messages in completion mode wraps the text in one user message
    assert p.render_messages("3+3") == [{"role": "user", "content": expected}]


def test_completion_mode_text_with_system_and_custom_format() -> None:
    p = Prompt(
        instruction="Translate.",
        exemplars=(Exemplar("chat", "cat"),),
        format=Format(
            input_label="Q",
            output_label="A",
            separator=" = ",
            field_joiner=" | ",
            example_joiner="\n---\n",
            mode="completion",
            system="SYS",
        ),
    )
    assert (
        p.render_text("chien")
        == "SYS\n---\nTranslate.\n---\nQ = chat | A = cat\n---\nQ = chien | A ="
    )


def test_completion_mode_without_output_label_ends_with_field_joiner() -> None:
    p = Prompt(format=Format(mode="completion", output_label=""))
    assert p.render_text("q") == "Input: q\n"
    # In a non-completion mode the trailing newline is dropped.
    p2 = Prompt(format=Format(mode="chat_single", output_label=""))
    assert p2.render_messages("q") == [{"role": "user", "content": "Input: q"}]


def test_zero_shot_no_instruction_text() -> None:
    assert Prompt(format=Format(mode="completion")).render_text("hi") == "Input: hi\nOutput:"


def test_invalid_mode() -> None:
    with pytest.raises(PromptlatheError, match="'banana' is not one of"):
        Format(mode="banana")  # type: ignore[arg-type]


def test_format_label() -> None:
    f = Format()
    assert f.label("Input", "x") == "Input: x"
    assert f.label("", "x") == "x"


# ---- stop sequences -----------------------------------------------------------------------


def test_stop_sequences_completion() -> None:
    assert Format(mode="completion").stop_sequences() == ("\n\n", "\nInput:")


def test_stop_sequences_custom_labels() -> None:
    f = Format(mode="completion", input_label="Q", separator=" - ", example_joiner="\n###\n")
    assert f.stop_sequences() == ("\n###\n", "\nQ -")


def test_stop_sequences_without_input_label() -> None:
    assert Format(mode="completion", input_label="").stop_sequences() == ("\n\n",)


def test_stop_sequences_deduplicated_and_blank_dropped() -> None:
    # a whitespace-only joiner without a newline would stop on every space: dropped
    f = Format(mode="completion", example_joiner=" ", input_label="")
    assert f.stop_sequences() == ()


@pytest.mark.parametrize("mode", ["chat", "chat_single"])
def test_stop_sequences_empty_for_chat(mode: str) -> None:
    assert Format(mode=mode).stop_sequences() == ()  # type: ignore[arg-type]


# ---- hash ---------------------------------------------------------------------------------


def test_hash_shape_and_stability() -> None:
    h = prompt().hash
    assert len(h) == 16
    assert all(c in "0123456789abcdef" for c in h)
    assert prompt().hash == h  # equal content, equal hash
    assert prompt() == prompt()


def test_exemplar_order_changes_hash() -> None:
    a = Prompt(instruction="x", exemplars=EXS)
    b = Prompt(instruction="x", exemplars=tuple(reversed(EXS)))
    assert a.hash != b.hash


@pytest.mark.parametrize(
    "change",
    [
        {"instruction": "Add the numbers!"},
        {"exemplars": EXS[:1]},
        {"exemplars": (Exemplar("1+1", "2 "), EXS[1])},
        {"format": Format(mode="chat_single")},
        {"format": Format(separator=":")},
        {"format": Format(system="s")},
    ],
)
def test_any_content_change_changes_hash(change: dict) -> None:
    base = Prompt(instruction="Add the numbers.", exemplars=EXS)
    assert base.with_(**change).hash != base.hash


def test_hash_roundtrip_json() -> None:
    p = prompt("completion", system="Système ünïcode", input_label="Frage")
    q = Prompt.from_json(p.to_json())
    assert q == p
    assert q.hash == p.hash
    # extra metadata in the JSON does not affect identity
    q2 = Prompt.from_json(p.to_json(score=0.9, task="math"))
    assert q2.hash == p.hash


def test_to_dict_schema() -> None:
    d = prompt().to_dict()
    assert d["promptlathe_prompt"] == SCHEMA_VERSION
    assert d["instruction"] == "Add the numbers."
    assert d["exemplars"] == [{"input": "1+1", "output": "2"}, {"input": "2+2", "output": "4"}]
    assert d["format"]["mode"] == "chat"
    assert set(d["format"]) == set(Format.__dataclass_fields__)


def test_to_json_extra_fields() -> None:
    data = json.loads(prompt().to_json(accuracy=0.5))
    assert data["accuracy"] == 0.5
    assert data["instruction"] == "Add the numbers."


def test_save_and_load(tmp_path: Path) -> None:
    p = prompt("chat_single", system="S")
    f = tmp_path / "p.json"
    p.save(f, note="best")
    text = f.read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert json.loads(text)["note"] == "best"
    loaded = Prompt.load(f)
    assert loaded == p
    assert loaded.hash == p.hash


def test_from_dict_defaults() -> None:
    p = Prompt.from_dict({})
    assert p == Prompt()
    assert p.format == Format()


def test_from_dict_coerces_exemplar_values_to_str() -> None:
    p = Prompt.from_dict({"exemplars": [{"input": 1, "output": 2}]})
    assert p.exemplars == (Exemplar("1", "2"),)


def test_with_converts_exemplars_to_tuple() -> None:
    p = Prompt().with_(exemplars=[Exemplar("a", "b")])
    assert isinstance(p.exemplars, tuple)
    assert hash(p) == hash(Prompt(exemplars=(Exemplar("a", "b"),)))


# ---- load errors --------------------------------------------------------------------------


def test_load_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "nope.json"
    with pytest.raises(PromptlatheError) as exc:
        Prompt.load(f)
    assert str(f) in str(exc.value)
    assert "not found" in str(exc.value)


def test_load_invalid_json(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text('{\n  "instruction": "x",\n  oops\n}', encoding="utf-8")
    with pytest.raises(PromptlatheError) as exc:
        Prompt.load(f)
    assert str(exc.value).startswith(f"{f}:3: invalid JSON")


def test_load_not_an_object(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(PromptlatheError, match="must be a JSON object") as exc:
        Prompt.load(f)
    assert str(f) in str(exc.value)


@pytest.mark.parametrize(
    "exemplars",
    [
        [{"input": "a"}],
        [{"output": "b"}],
        ["just a string"],
        [1],
        None,
        5,
        {"input": "a", "output": "b"},
    ],
)
def test_load_bad_exemplars(tmp_path: Path, exemplars: object) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"instruction": "x", "exemplars": exemplars}), encoding="utf-8")
    with pytest.raises(PromptlatheError) as exc:
        Prompt.load(f)
    msg = str(exc.value)
    assert str(f) in msg
    assert "field 'exemplars" in msg and "\n" not in msg


def test_load_unknown_format_field(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"format": {"mode": "chat", "colour": "red", "abc": 1}}))
    with pytest.raises(PromptlatheError) as exc:
        Prompt.load(f)
    msg = str(exc.value)
    assert str(f) in msg
    assert "unknown field 'format.abc', 'format.colour'" in msg


def test_load_format_not_object(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"format": "chat"}))
    with pytest.raises(PromptlatheError, match="field 'format': must be an object"):
        Prompt.load(f)


def test_load_instruction_not_string(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"instruction": ["a", "b"]}))
    with pytest.raises(PromptlatheError, match="field 'instruction': must be a string") as exc:
        Prompt.load(f)
    assert str(f) in str(exc.value)


def test_load_bad_mode(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"format": {"mode": "shout"}}))
    with pytest.raises(PromptlatheError, match="field 'format.mode': .*'chat'.*got 'shout'"):
        Prompt.load(f)


def test_load_bad_mode_names_file(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"format": {"mode": "shout"}}))
    with pytest.raises(PromptlatheError) as exc:
        Prompt.load(f)
    assert str(f) in str(exc.value)


def test_a_prompt_file_of_another_version_is_one_line(tmp_path) -> None:
    import json

    import pytest

    from promptlathe.errors import PromptlatheError
    from promptlathe.prompts import Prompt

    path = tmp_path / "p.json"
    path.write_text(json.dumps({**Prompt(instruction="x").to_dict(), "promptlathe_prompt": 9}))
    with pytest.raises(PromptlatheError, match="p.json: prompt file version 9"):
        Prompt.load(path)
