"""Unit tests for promptlathe.tasks: loading, line-precise errors, splits, sidecar metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptlathe.errors import PromptlatheError, TaskFormatError
from promptlathe.tasks import (
    Example,
    Fields,
    Split,
    TaskMeta,
    load_examples,
    read_meta,
    split_examples,
    split_from_file,
)


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def make_examples(n: int) -> list[Example]:
    return [Example(input=f"q{i}", targets=(f"a{i}",), id=f"e{i}") for i in range(n)]


# ---- Example ------------------------------------------------------------------------------


def test_example_target_is_first_target() -> None:
    ex = Example(input="x", targets=("a", "b"), id="1", extra={"k": 1})
    assert ex.target == "a"
    # extra does not take part in equality or hashing
    assert ex == Example(input="x", targets=("a", "b"), id="1", extra={"k": 2})
    assert hash(ex) == hash(Example(input="x", targets=("a", "b"), id="1"))


# ---- load_examples: JSONL -----------------------------------------------------------------


def test_load_jsonl_basic(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {"input": "2+2", "target": "4"},
            {"input": "capital of France", "target": "Paris", "rationale": "it is"},
        ],
    )
    exs = load_examples(f)
    assert len(exs) == 2
    assert exs[0] == Example(input="2+2", targets=("4",), id="t.jsonl:1")
    assert exs[1].input == "capital of France"
    assert exs[1].targets == ("Paris",)
    assert exs[1].target == "Paris"
    assert exs[1].id == "t.jsonl:2"
    assert exs[1].extra == {"rationale": "it is"}
    # str path works too
    assert load_examples(str(f)) == exs


def test_load_jsonl_skips_blank_lines_but_keeps_physical_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text(
        '\n{"input": "a", "target": "1"}\n   \n{"input": "b", "target": "2"}\n\n',
        encoding="utf-8",
    )
    exs = load_examples(f)
    assert [e.id for e in exs] == ["t.jsonl:2", "t.jsonl:4"]
    assert [e.input for e in exs] == ["a", "b"]


def test_load_jsonl_targets_merging(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {"input": "q", "target": "NYC", "targets": ["New York", "NYC", "New York City"]},
            {"input": "q2", "targets": ["x", "y"]},
            {"input": "q3", "target": "z", "targets": None},
            {"input": "q4", "target": "z", "targets": []},
            {"input": "q5", "target": "b", "targets": ["a", "a", "b"]},
        ],
    )
    exs = load_examples(f)
    # target first, then the rest in order without duplicates
    assert exs[0].targets == ("NYC", "New York", "New York City")
    assert exs[0].target == "NYC"
    assert exs[1].targets == ("x", "y")
    assert exs[1].target == "x"
    assert exs[2].targets == ("z",)
    assert exs[3].targets == ("z",)
    assert exs[4].targets == ("b", "a")
    # "targets" is not copied to extra
    assert all("targets" not in e.extra and "target" not in e.extra for e in exs)


def test_load_jsonl_ids(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "ids.jsonl",
        [
            {"id": "alpha", "input": "a", "target": "1"},
            {"id": 7, "input": "b", "target": "2"},
            {"id": "", "input": "c", "target": "3"},
            {"id": None, "input": "d", "target": "4"},
            {"input": "e", "target": "5"},
        ],
    )
    ids = [e.id for e in load_examples(f)]
    assert ids == ["alpha", "7", "ids.jsonl:3", "ids.jsonl:4", "ids.jsonl:5"]


def test_load_custom_fields(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {
                "question": "2+3",
                "answer": "5",
                "aliases": ["five"],
                "uid": "u1",
                "input": "ignored",
            },
        ],
    )
    fields = Fields(input="question", target="answer", targets="aliases", id="uid")
    (ex,) = load_examples(f, fields)
    assert ex.input == "2+3"
    assert ex.targets == ("5", "five")
    assert ex.id == "u1"
    # fields not named by Fields are kept as extra, including a column called "input"
    assert ex.extra == {"input": "ignored"}


def test_custom_field_missing_names_custom_field(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "c.jsonl", [{"input": "x", "target": "y"}])
    with pytest.raises(TaskFormatError) as exc:
        load_examples(f, Fields(input="question"))
    msg = str(exc.value)
    assert f"{f}:1" in msg
    assert "'question'" in msg
    with pytest.raises(TaskFormatError, match="missing field 'answer'"):
        load_examples(f, Fields(target="answer", targets="aliases"))


# ---- load_examples: CSV / TSV -------------------------------------------------------------


def test_load_csv(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text(
        'input,target,targets,id,note\n2+2,4,"[""four"", ""4""]",,x\n"multi\nline",yes,,r2,\n',
        encoding="utf-8",
    )
    exs = load_examples(f)
    assert len(exs) == 2
    assert exs[0].input == "2+2"
    assert exs[0].targets == ("4", "four")
    assert exs[0].id == "t.csv:2"  # header is line 1
    assert exs[0].extra == {"note": "x"}
    assert exs[1].input == "multi\nline"
    assert exs[1].targets == ("yes",)
    assert exs[1].id == "r2"


def test_load_csv_targets_cell_that_is_not_json_is_one_target(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("input,target,targets\nq,a,b\n", encoding="utf-8")
    (ex,) = load_examples(f)
    assert ex.targets == ("a", "b")


def test_load_csv_line_numbers_account_for_multiline_cells(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text('input,target\nq1,a1\n"multi\nline",a2\nq3\n', encoding="utf-8")
    with pytest.raises(TaskFormatError) as exc:
        load_examples(f)
    msg = str(exc.value)
    assert msg.startswith(f"{f}:5:")
    assert "'target'" in msg


def test_load_tsv(tmp_path: Path) -> None:
    f = tmp_path / "t.tsv"
    f.write_text("input\ttarget\na, b\tc\n", encoding="utf-8")
    (ex,) = load_examples(f)
    assert ex.input == "a, b"
    assert ex.targets == ("c",)
    assert ex.id == "t.tsv:2"


def test_load_csv_missing_input_column(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("question,target\nq,a\n", encoding="utf-8")
    with pytest.raises(TaskFormatError) as exc:
        load_examples(f)
    msg = str(exc.value)
    assert f"{f}:2" in msg
    assert "missing field 'input'" in msg
    assert "question" in msg  # lists the fields present


def test_load_csv_with_utf8_bom(tmp_path: Path) -> None:
    f = tmp_path / "bom.csv"
    f.write_bytes(b"\xef\xbb\xbfinput,target\nq,a\n")
    (ex,) = load_examples(f)
    assert ex.input == "q"


# ---- load_examples: errors ----------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "nope.jsonl"
    with pytest.raises(TaskFormatError) as exc:
        load_examples(f)
    assert str(f) in str(exc.value)
    assert "not found" in str(exc.value)


def test_directory_is_not_a_task_file(tmp_path: Path) -> None:
    with pytest.raises(TaskFormatError, match="is a directory"):
        load_examples(tmp_path)


@pytest.mark.parametrize("content", ["", "\n\n   \n"])
def test_empty_jsonl(tmp_path: Path, content: str) -> None:
    f = tmp_path / "empty.jsonl"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(TaskFormatError) as exc:
        load_examples(f)
    assert str(f) in str(exc.value)
    assert "empty" in str(exc.value)


def test_empty_csv_header_only(tmp_path: Path) -> None:
    f = tmp_path / "empty.csv"
    f.write_text("input,target\n", encoding="utf-8")
    with pytest.raises(TaskFormatError) as exc:
        load_examples(f)
    assert str(f) in str(exc.value)
    assert "no examples" in str(exc.value)


def test_invalid_json_names_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(
        '{"input": "a", "target": "1"}\n\n{"input": "b", "target": "2"}\n{"input": "c", \n',
        encoding="utf-8",
    )
    with pytest.raises(TaskFormatError) as exc:
        load_examples(f)
    msg = str(exc.value)
    assert msg.startswith(f"{f}:4:")
    assert "invalid JSON" in msg
    assert "one JSON object" in msg


@pytest.mark.parametrize(
    ("line", "type_name"),
    [("[1, 2]", "list"), ('"just a string"', "str"), ("42", "int"), ("null", "NoneType")],
)
def test_non_object_line(tmp_path: Path, line: str, type_name: str) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text('{"input": "a", "target": "1"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(TaskFormatError) as exc:
        load_examples(f)
    msg = str(exc.value)
    assert msg.startswith(f"{f}:2:")
    assert "expected a JSON object" in msg
    assert type_name in msg


def test_missing_input_field(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "t.jsonl",
        [{"input": "a", "target": "1"}, {"question": "b", "target": "2"}],
    )
    with pytest.raises(TaskFormatError) as exc:
        load_examples(f)
    msg = str(exc.value)
    assert msg.startswith(f"{f}:2:")
    assert "missing field 'input'" in msg
    assert "'question'" in msg and "'target'" in msg  # fields present
    assert "--input-field" in msg


def test_missing_target_field(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "t.jsonl",
        [{"input": "a", "target": "1"}, {"input": "b", "target": "2"}, {"input": "c"}],
    )
    with pytest.raises(TaskFormatError) as exc:
        load_examples(f)
    msg = str(exc.value)
    assert msg.startswith(f"{f}:3:")
    assert "missing field 'target'" in msg
    assert "--target-field" in msg


def test_empty_targets_and_no_target_is_missing_target(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "t.jsonl", [{"input": "a", "targets": []}])
    with pytest.raises(TaskFormatError, match=r":1: missing field 'target'"):
        load_examples(f)


@pytest.mark.parametrize(
    ("value", "type_name"), [(5, "int"), (2.5, "float"), (True, "bool"), (None, "null")]
)
def test_non_string_target(tmp_path: Path, value: object, type_name: str) -> None:
    f = write_jsonl(
        tmp_path / "t.jsonl", [{"input": "a", "target": "1"}, {"input": "b", "target": value}]
    )
    with pytest.raises(TaskFormatError) as exc:
        load_examples(f)
    msg = str(exc.value)
    assert msg.startswith(f"{f}:2:")
    assert "field 'target' must be a string" in msg
    assert type_name in msg
    assert json.dumps(value) in msg
    if value is not None:
        assert "quote it" in msg


def test_non_string_input(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "t.jsonl", [{"input": 3, "target": "1"}])
    with pytest.raises(TaskFormatError) as exc:
        load_examples(f)
    msg = str(exc.value)
    assert msg.startswith(f"{f}:1:")
    assert "field 'input' must be a string, got int" in msg


@pytest.mark.parametrize("bad", [["a", 1], {"a": 1}, [None], 5, "[1, 2]"])
def test_bad_targets_field(tmp_path: Path, bad: object) -> None:
    f = write_jsonl(tmp_path / "t.jsonl", [{"input": "a", "target": "x", "targets": bad}])
    with pytest.raises(TaskFormatError) as exc:
        load_examples(f)
    msg = str(exc.value)
    assert msg.startswith(f"{f}:1:")
    assert "field 'targets' must be a list of strings" in msg


def test_errors_are_promptlathe_errors() -> None:
    assert issubclass(TaskFormatError, PromptlatheError)


# ---- split_examples -----------------------------------------------------------------------


def test_split_deterministic_same_seed() -> None:
    exs = make_examples(40)
    a = split_examples(exs, seed=3)
    b = split_examples(exs, seed=3)
    assert a == b
    assert a.fingerprint() == b.fingerprint()


def test_split_different_seed_differs() -> None:
    exs = make_examples(40)
    a = split_examples(exs, seed=0)
    b = split_examples(exs, seed=1)
    assert [e.id for e in a.train] != [e.id for e in b.train]
    assert a.fingerprint() != b.fingerprint()


def test_split_is_a_partition_with_default_fractions() -> None:
    exs = make_examples(20)
    s = split_examples(exs)
    assert (len(s.train), len(s.val), len(s.test)) == (10, 5, 5)
    ids = [e.id for part in (s.train, s.val, s.test) for e in part]
    assert sorted(ids) == sorted(e.id for e in exs)
    assert len(set(ids)) == 20
    # it is shuffled, not the original order
    assert ids != [e.id for e in exs]


@pytest.mark.parametrize(
    ("fractions", "sizes"),
    [
        ((0.6, 0.2, 0.2), (6, 2, 2)),
        ((1.0, 0.0, 0.0), (10, 0, 0)),
        ((0.0, 0.0, 1.0), (0, 0, 10)),
        ((0.0, 1.0, 0.0), (0, 10, 0)),
        ((0.7, 0.3, 0.0), (7, 3, 0)),
    ],
)
def test_split_fractions(fractions: tuple[float, float, float], sizes: tuple) -> None:
    s = split_examples(make_examples(10), fractions=fractions, seed=5)
    assert (len(s.train), len(s.val), len(s.test)) == sizes


def test_split_rounding_never_overflows() -> None:
    # 0.5 * 3 rounds to 2, 0.5 * 3 rounds to 2: val is capped so the parts still partition.
    s = split_examples(make_examples(3), fractions=(0.5, 0.5, 0.0))
    assert len(s.train) + len(s.val) + len(s.test) == 3
    assert len(s.train) == 2 and len(s.val) == 1


def test_split_empty_examples() -> None:
    s = split_examples([])
    assert s == Split(train=[], val=[], test=[])


@pytest.mark.parametrize("fractions", [(0.5, 0.5, 0.5), (0.5, 0.2, 0.2), (1.2, -0.1, -0.1)])
def test_split_bad_fractions(fractions: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        split_examples(make_examples(5), fractions=fractions)


def test_split_depends_on_input_order() -> None:
    exs = make_examples(30)
    a = split_examples(exs, seed=0)
    b = split_examples(list(reversed(exs)), seed=0)
    assert a.fingerprint() != b.fingerprint()


def test_fingerprint_depends_on_ids_and_parts() -> None:
    e = make_examples(3)
    base = Split(train=[e[0]], val=[e[1]], test=[e[2]])
    fp = base.fingerprint()
    assert len(fp) == 16
    assert all(c in "0123456789abcdef" for c in fp)
    assert Split(train=[e[0]], val=[e[1]], test=[e[2]]).fingerprint() == fp
    # moving an example between parts changes it
    assert Split(train=[e[0], e[1]], val=[], test=[e[2]]).fingerprint() != fp
    # order within a part matters
    assert Split(train=[e[1], e[0]], val=[], test=[e[2]]).fingerprint() != (
        Split(train=[e[0], e[1]], val=[], test=[e[2]]).fingerprint()
    )
    # only ids matter: same ids with different inputs give the same fingerprint
    other = [Example(input="zzz", targets=("t",), id=x.id) for x in e]
    assert Split(train=[other[0]], val=[other[1]], test=[other[2]]).fingerprint() == fp


# ---- split_from_file ----------------------------------------------------------------------


def test_split_from_file(tmp_path: Path) -> None:
    exs = make_examples(5) + [Example(input="n", targets=("t",), id="7")]
    f = tmp_path / "split.json"
    f.write_text(json.dumps({"train": ["e3", "e0"], "val": ["e1"], "test": [7, "e4"]}))
    s = split_from_file(exs, f)
    assert [e.id for e in s.train] == ["e3", "e0"]
    assert [e.id for e in s.val] == ["e1"]
    assert [e.id for e in s.test] == ["7", "e4"]  # ints are looked up as strings
    assert s.train[0] is exs[3]


def test_split_from_file_missing_parts_are_empty(tmp_path: Path) -> None:
    f = tmp_path / "split.json"
    f.write_text(json.dumps({"test": ["e0"]}))
    s = split_from_file(make_examples(2), f)
    assert s.train == [] and s.val == []
    assert [e.id for e in s.test] == ["e0"]


def test_split_from_file_unknown_id(tmp_path: Path) -> None:
    f = tmp_path / "split.json"
    f.write_text(json.dumps({"train": ["e0"], "val": ["e1", "ghost", "ghost2"], "test": []}))
    with pytest.raises(TaskFormatError) as exc:
        split_from_file(make_examples(3), f)
    msg = str(exc.value)
    assert str(f) in msg
    assert "'val'" in msg
    assert "'ghost'" in msg
    assert "2 unknown" in msg


def test_split_from_file_not_found(tmp_path: Path) -> None:
    f = tmp_path / "nope.json"
    with pytest.raises(TaskFormatError, match="split file not found") as exc:
        split_from_file(make_examples(2), f)
    assert str(f) in str(exc.value)


def test_split_from_file_invalid_json(tmp_path: Path) -> None:
    f = tmp_path / "split.json"
    f.write_text('{\n"train": ["e0"],\n oops\n}')
    with pytest.raises(TaskFormatError) as exc:
        split_from_file(make_examples(2), f)
    assert str(exc.value).startswith(f"{f}:3:")
    assert "invalid JSON" in str(exc.value)


def test_split_from_file_part_not_a_list(tmp_path: Path) -> None:
    f = tmp_path / "split.json"
    f.write_text(json.dumps({"train": "e0"}))
    with pytest.raises(TaskFormatError, match="field 'train' must be a list"):
        split_from_file(make_examples(2), f)


def test_split_from_file_top_level_not_object(tmp_path: Path) -> None:
    f = tmp_path / "split.json"
    f.write_text(json.dumps(["e0", "e1"]))
    with pytest.raises(TaskFormatError):
        split_from_file(make_examples(2), f)


# ---- read_meta ----------------------------------------------------------------------------


def test_read_meta_beside_split_file(tmp_path: Path) -> None:
    (tmp_path / "foo.meta.json").write_text(
        json.dumps(
            {
                "metric": "numeric",
                "description": "Grade-school math",
                "human_instructions": ["Solve it.", 3, "Show work."],
                "label_set": ["A", 1],
            }
        )
    )
    meta = read_meta(tmp_path / "foo.test.jsonl")
    assert meta == TaskMeta(
        metric="numeric",
        description="Grade-school math",
        instructions=("Solve it.", "Show work."),
        label_set=("A", "1"),
    )
    assert meta.path == tmp_path / "foo.meta.json"
    # the plain task file name finds the same sidecar
    assert read_meta(tmp_path / "foo.jsonl") == meta
    assert read_meta(str(tmp_path / "foo.train.csv")).path == tmp_path / "foo.meta.json"


def test_read_meta_absent_or_unreadable(tmp_path: Path) -> None:
    assert read_meta(tmp_path / "bar.test.jsonl") == TaskMeta()
    assert read_meta(tmp_path / "bar.test.jsonl").path is None
    (tmp_path / "bad.meta.json").write_text("{not json")
    assert read_meta(tmp_path / "bad.test.jsonl") == TaskMeta()
    (tmp_path / "lst.meta.json").write_text("[1, 2]")
    assert read_meta(tmp_path / "lst.test.jsonl") == TaskMeta()


def test_read_meta_ignores_wrongly_typed_strings(tmp_path: Path) -> None:
    (tmp_path / "t.meta.json").write_text(json.dumps({"metric": 5, "description": ["x"]}))
    meta = read_meta(tmp_path / "t.test.jsonl")
    assert meta.metric is None
    assert meta.description is None
    assert meta.path == tmp_path / "t.meta.json"


def test_read_meta_does_not_use_other_tasks_sidecar(tmp_path: Path) -> None:
    (tmp_path / "foo.meta.json").write_text(json.dumps({"metric": "numeric"}))
    assert read_meta(tmp_path / "foobar.test.jsonl").metric is None


def test_read_meta_non_list_label_set_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "t.meta.json").write_text(json.dumps({"metric": "choice", "label_set": 3}))
    meta = read_meta(tmp_path / "t.test.jsonl")
    assert meta.label_set == ()


def test_read_meta_string_instructions_not_split_into_chars(tmp_path: Path) -> None:
    (tmp_path / "t.meta.json").write_text(json.dumps({"human_instructions": "Be brief"}))
    assert read_meta(tmp_path / "t.test.jsonl").instructions in ((), ("Be brief",))
