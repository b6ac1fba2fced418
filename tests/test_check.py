"""``promptlathe check``: the CI gate's rules (credibly below, significantly worse), its exit
codes and JUnit file, through the CLI with the real test model, and its bad input."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from promptlathe.analysis import compare
from promptlathe.cli.check import _accuracy_rule, _against_rule
from promptlathe.evaluator import EvalResult, Record
from tests.conftest import TEST_MODEL, run_cli

WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "green",
    "table",
    "music",
    "light",
    "sugar",
    "piano",
    "tiger",
    "paper",
    "smile",
    "ocean",
    "bread",
    "chair",
    "dance",
    "honey",
    "lemon",
    "storm",
]


def _result(scores: list[float]) -> EvalResult:
    records = [Record(f"e{i}", "x", "h", "r", "o", "a", ["t"], s) for i, s in enumerate(scores)]
    return EvalResult(prompt_hash="h", records=records)


def test_the_wilson_rule_fails_only_a_prompt_credibly_below_the_floor() -> None:
    noisy = _result([1.0] * 7 + [0.0] * 3)  # 0.70 on 10: its upper bound is above 0.8
    ok, line = _accuracy_rule(noisy, 0.8, "wilson")
    assert ok and "not credibly below 0.8" in line and "upper Wilson bound" in line
    ok, line = _accuracy_rule(noisy, 0.8, "point")
    assert not ok and "below 0.8 (rule: point estimate)" in line
    clear = _result([1.0] * 70 + [0.0] * 30)  # 0.70 on 100: credibly below 0.8
    assert not _accuracy_rule(clear, 0.8, "wilson")[0]


def test_the_against_rule_fails_only_a_significantly_worse_prompt() -> None:
    old = [1.0] * 20
    worse = compare([0.0] * 12 + [1.0] * 8, old)
    ok, line = _against_rule(worse, Path("old.json"))
    assert not ok and line.startswith("significantly worse than old.json by 60.0 points")
    close = compare([0.0] * 2 + [1.0] * 18, old)
    ok, line = _against_rule(close, Path("old.json"))
    assert ok and line.startswith("not significantly different from old.json (-10.0 points")


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    task = tmp_path / "echo.jsonl"
    task.write_text("".join(json.dumps({"input": w, "target": w}) + "\n" for w in WORDS))
    demos = [{"input": w, "output": w} for w in ("house", "water", "night")]
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"instruction": "Repeat the word.", "exemplars": demos}))
    banana = [{"input": w, "output": "banana"} for w in ("house", "water", "night")]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"instruction": "Answer banana.", "exemplars": banana}))
    return task, good, bad


def _check(tmp_path: Path, *args: str):
    return run_cli("check", "--model", TEST_MODEL, "--cache", str(tmp_path / "c.sqlite"), *args)


@pytest.mark.integration
def test_check_passes_fails_and_catches_a_regression_through_the_cli(tmp_path: Path) -> None:
    task, good, bad = _files(tmp_path)
    junit = tmp_path / "out" / "junit.xml"
    r = _check(tmp_path, "--prompt", str(good), "--task", str(task), "--min-accuracy", "0",
               "--junit", str(junit))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("PASS: accuracy") and len(r.stdout.strip().splitlines()) == 1
    suite = ET.parse(junit).getroot()[0]
    assert suite.get("tests") == "20" and len(suite) == 20
    failures = suite.findall("testcase/failure")
    assert suite.get("failures") == str(len(failures))
    assert all("input: " in f.text and "target: " in f.text for f in failures)
    # a floor no set of 20 can be credibly below: passes under wilson, fails on the point
    r = _check(tmp_path, "--prompt", str(bad), "--task", str(task), "--min-accuracy", "0.05",
               "--rule", "point")  # fmt: skip
    assert r.returncode == 1 and r.stdout.startswith("FAIL: accuracy"), r.stdout + r.stderr
    # the regression: the banana prompt against the one that repeats the word
    r = _check(tmp_path, "--prompt", str(bad), "--task", str(task), "--against", str(good))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "significantly worse than good.json" in r.stdout and "McNemar" in r.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "give --min-accuracy, --against, or both"),
        (["--min-accuracy", "0.5", "--rule", "median"], "--rule 'median' is not one of"),
        (["--min-accuracy", "2"], "--min-accuracy"),
        (["--min-accuracy", "0.5", "--junit", "."], "--junit"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    task, good, _ = _files(tmp_path)
    r = _check(tmp_path, "--prompt", str(good), "--task", str(task), *args)
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
