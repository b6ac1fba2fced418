"""Bad input: one line on stderr naming file/line/field, exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


def _eval(task: Path, tmp_path: Path, *extra: str):
    return run_cli(
        "eval",
        "--task",
        str(task),
        "--instruction",
        "x",
        "--model",
        "smollm2-135m",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--no-progress",
        *extra,
    )


def _assert_clean_error(r, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ("", ["empty"]),
        ('{"input": "a", "target": "b"}\n{"input": "c", "target": \n', [":2:", "invalid JSON"]),
        ('{"input": "a", "target": "b"}\n{"target": "b"}\n', [":2:", "'input'"]),
        ('{"input": "a"}\n', [":1:", "'target'"]),
        ('{"input": "a", "target": 3}\n', [":1:", "'target'", "string"]),
        ("[1, 2]\n", [":1:", "JSON object"]),
    ],
)
def test_malformed_task_files(tmp_path: Path, content: str, needles: list[str]) -> None:
    task = tmp_path / "bad.jsonl"
    task.write_text(content)
    _assert_clean_error(_eval(task, tmp_path), "bad.jsonl", *needles)


def test_missing_task_file(tmp_path: Path) -> None:
    _assert_clean_error(_eval(tmp_path / "nope.jsonl", tmp_path), "nope.jsonl", "not found")


def test_csv_missing_column(tmp_path: Path) -> None:
    task = tmp_path / "t.csv"
    task.write_text("question,target\nwhat,that\n")
    _assert_clean_error(_eval(task, tmp_path), "t.csv:2", "'input'", "--input-field")


def _good_task(tmp_path: Path) -> Path:
    task = tmp_path / "ok.jsonl"
    task.write_text('{"input": "a", "target": "b"}\n')
    return task


def test_unknown_metric(tmp_path: Path) -> None:
    _assert_clean_error(_eval(_good_task(tmp_path), tmp_path, "--metric", "bleu"), "bleu")


def test_unknown_model(tmp_path: Path) -> None:
    r = run_cli(
        "eval",
        "--task",
        str(_good_task(tmp_path)),
        "--model",
        "gpt-17",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--no-progress",
    )
    _assert_clean_error(r, "gpt-17", "smollm2-135m")


def test_missing_gguf_file(tmp_path: Path) -> None:
    r = run_cli(
        "eval",
        "--task",
        str(_good_task(tmp_path)),
        "--model",
        str(tmp_path / "m.gguf"),
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--no-progress",
    )
    _assert_clean_error(r, "m.gguf", "not found")


def test_corrupt_gguf_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all" * 100)
    r = run_cli(
        "eval",
        "--task",
        str(_good_task(tmp_path)),
        "--model",
        str(bad),
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--no-progress",
    )
    _assert_clean_error(r, "bad.gguf", "corrupt")


def test_truncated_gguf_with_valid_magic(tmp_path: Path) -> None:
    bad = tmp_path / "trunc.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    r = run_cli(
        "eval",
        "--task",
        str(_good_task(tmp_path)),
        "--model",
        str(bad),
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--no-progress",
    )
    _assert_clean_error(r, "trunc.gguf")


def test_both_instruction_and_prompt(tmp_path: Path) -> None:
    p = tmp_path / "p.json"
    p.write_text('{"instruction": "x"}')
    _assert_clean_error(_eval(_good_task(tmp_path), tmp_path, "--prompt", str(p)), "not both")


def test_bad_prompt_file(tmp_path: Path) -> None:
    p = tmp_path / "p.json"
    p.write_text('{"instruction": "x",\n "exemplars": [{"input": 1}]}')
    r = run_cli(
        "eval",
        "--task",
        str(_good_task(tmp_path)),
        "--prompt",
        str(p),
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--no-progress",
    )
    _assert_clean_error(r, "p.json", "exemplars")


def test_too_many_shots(tmp_path: Path) -> None:
    _assert_clean_error(_eval(_good_task(tmp_path), tmp_path, "--shots", "5"), "--shots 5")


def test_optimize_bad_task_file_leaves_no_run_behind(tmp_path: Path) -> None:
    task = tmp_path / "bad.jsonl"
    task.write_text('{"input": "a", "target": "b"}\n{"input": 1, "target": "b"}\n')
    out = tmp_path / "run"
    r = run_cli("optimize", "--task", str(task), "--out", str(out), "--no-progress")
    _assert_clean_error(r, "bad.jsonl:2", "'input'")
    assert not (out / "config.json").exists()


def test_optimize_refuses_to_overwrite_a_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")
    r = run_cli("optimize", "--task", str(_good_task(tmp_path)), "--out", str(out), "--no-progress")
    _assert_clean_error(r, "--resume")


def test_optimize_too_small_budget(tmp_path: Path) -> None:
    r = run_cli(
        "optimize",
        "--task",
        str(_good_task(tmp_path)),
        "--budget-calls",
        "5",
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
    )
    _assert_clean_error(r, "--budget-calls", "20")


def test_report_on_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    _assert_clean_error(run_cli("report", str(tmp_path)), str(tmp_path), "not a finished")


def test_brackets_in_an_error_are_printed_not_eaten_as_markup(tmp_path: Path) -> None:
    # rich would read "[draft]" as a style tag and drop it from the message
    _assert_clean_error(_eval(tmp_path / "t[draft].jsonl", tmp_path), "t[draft].jsonl", "not found")


@pytest.mark.parametrize(
    ("chain", "models", "needle"),
    [
        ("nope", None, "'nope' is not one of"),
        ("joint,joint", None, "joint named twice"),
        ("propose,", None, "an empty name"),
        ("nope", "smollm2-135m,qwen2.5-coder-0.5b", "'nope' is not one of"),
    ],
)
def test_a_bad_optimizer_chain_is_one_line_before_the_run_directory_exists(
    tmp_path: Path, chain: str, models: str | None, needle: str
) -> None:
    task = tmp_path / "t.jsonl"
    task.write_text("".join(f'{{"input": "a{i}", "target": "b"}}\n' for i in range(40)))
    more = ["--models", models] if models else ["--model", "smollm2-135m"]
    r = run_cli("optimize", "--task", str(task), "--optimizer", chain, "--out",
                str(tmp_path / "run"), *more)  # fmt: skip
    _assert_clean_error(r, f"--optimizer {chain!r}", needle)
    assert not (tmp_path / "run").exists()
