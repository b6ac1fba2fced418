"""A corpus of malformed inputs and invocations: each is one line on stderr naming the file,
line, field or option, a non-zero exit, and no traceback, before any model is loaded.

The CLI runs in-process (``cli.main``) so the corpus stays fast; ``tests/test_cli_errors.py``
covers the same contract through a real subprocess.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from promptlathe import cli

GOOD = b'{"input": "a", "target": "b"}\n{"input": "c", "target": "d"}\n'


def invoke(capsys, monkeypatch, *args: str, env: dict[str, str] | None = None):
    """Run ``promptlathe *args`` in-process; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["promptlathe", *args])
    monkeypatch.setenv("COLUMNS", "200")
    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code: int, err: str, needles: tuple[str, ...]) -> None:
    assert code not in (0, None), err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])


# ---- task files: (name, file name, content, needles) -------------------------------------
TASK_FILES: list[tuple[str, str, bytes, tuple[str, ...]]] = [
    ("empty", "t.jsonl", b"", ("t.jsonl", "empty")),
    ("blank lines", "t.jsonl", b"\n\n  \n", ("t.jsonl", "empty")),
    ("truncated json", "t.jsonl", b'{"input": "a", "target": \n', ("t.jsonl:1", "invalid JSON")),
    ("trailing comma", "t.jsonl", b'{"input": "a", "target": "b",}\n', (":1", "invalid JSON")),
    ("single quotes", "t.jsonl", b"{'input': 'a', 'target': 'b'}\n", (":1", "invalid JSON")),
    ("bad second line", "t.jsonl", GOOD + b"{oops}\n", ("t.jsonl:3", "invalid JSON")),
    ("list", "t.jsonl", b"[1, 2]\n", (":1", "JSON object")),
    ("string", "t.jsonl", b'"text"\n', (":1", "JSON object")),
    ("number", "t.jsonl", b"42\n", (":1", "JSON object")),
    ("null", "t.jsonl", b"null\n", (":1", "JSON object")),
    ("bool", "t.jsonl", b"true\n", (":1", "JSON object")),
    ("no input", "t.jsonl", b'{"target": "b"}\n', (":1", "'input'")),
    ("no target", "t.jsonl", b'{"input": "a"}\n', (":1", "'target'")),
    ("input int", "t.jsonl", b'{"input": 1, "target": "b"}\n', (":1", "'input'", "int")),
    ("input float", "t.jsonl", b'{"input": 1.5, "target": "b"}\n', (":1", "'input'")),
    ("input list", "t.jsonl", b'{"input": ["a"], "target": "b"}\n', (":1", "'input'")),
    ("input dict", "t.jsonl", b'{"input": {"a": 1}, "target": "b"}\n', (":1", "'input'")),
    ("input null", "t.jsonl", b'{"input": null, "target": "b"}\n', (":1", "'input'")),
    ("input bool", "t.jsonl", b'{"input": true, "target": "b"}\n', (":1", "'input'")),
    ("target int", "t.jsonl", b'{"input": "a", "target": 3}\n', (":1", "'target'")),
    ("target null", "t.jsonl", b'{"input": "a", "target": null}\n', (":1", "'target'")),
    ("target list", "t.jsonl", b'{"input": "a", "target": ["b"]}\n', (":1", "'target'")),
    ("target dict", "t.jsonl", b'{"input": "a", "target": {}}\n', (":1", "'target'")),
    ("targets ints", "t.jsonl", b'{"input": "a", "target": "b", "targets": [1]}\n', ("'targets'",)),
    ("targets dict", "t.jsonl", b'{"input": "a", "target": "b", "targets": {}}\n', ("'targets'",)),
    ("latin-1", "t.jsonl", '{"input": "café", "target": "b"}\n'.encode("latin-1"), (":1", "UTF-8")),
    ("lone continuation byte", "t.jsonl", GOOD + b'{"input": "\x80"}\n', (":3", "UTF-8")),
    ("overlong encoding", "t.jsonl", b'{"input": "\xc0\xaf", "target": "b"}\n', (":1", "UTF-8")),
    ("utf-16", "t.jsonl", '{"input": "a", "target": "b"}\n'.encode("utf-16"), (":1",)),
    ("png", "t.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ("t.jsonl:1", "UTF-8")),
    ("nul in line", "t.jsonl", b'{"input": "a\x00", "target": "b"}\n', (":1", "binary")),
    ("gzip", "t.jsonl", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", ("t.jsonl:1",)),
    (
        "surrogate input",
        "t.jsonl",
        b'{"input": "\\ud800", "target": "b"}\n',
        ("'input'", "surrogate"),
    ),
    ("surrogate target", "t.jsonl", b'{"input": "a", "target": "x\\udfff"}\n', ("'target'",)),
    (
        "surrogate targets",
        "t.jsonl",
        b'{"input": "a", "target": "b", "targets": ["\\udc00"]}\n',
        ("'targets'", "surrogate"),
    ),
    ("deep arrays", "t.jsonl", b"[" * 200_000 + b"\n", (":1", "nested too deeply")),
    ("deep objects", "t.jsonl", b'{"a":' * 100_000 + b"\n", (":1",)),
    (
        "duplicate ids",
        "t.jsonl",
        b'{"id": "x", "input": "a", "target": "b"}\n{"id": "x", "input": "c", "target": "d"}\n',
        (":2", "'id'", "unique"),
    ),
    ("bom then garbage", "t.jsonl", b"\xef\xbb\xbf{nope\n", (":1", "invalid JSON")),
    ("csv empty", "t.csv", b"", ("t.csv", "empty")),
    ("csv header only", "t.csv", b"input,target\n", ("t.csv", "empty")),
    ("csv no input", "t.csv", b"question,target\nq,a\n", ("t.csv:2", "'input'")),
    ("csv no target", "t.csv", b"input,answer\nq,a\n", ("t.csv:2", "'target'")),
    ("csv extra cells", "t.csv", b"input,target\na,b,c\n", ("t.csv:2", "3 cells", "header has 2")),
    ("csv missing cell", "t.csv", b"input,target\na\n", ("t.csv:2", "'target'")),
    ("csv huge field", "t.csv", b"input,target\n" + b"x" * 200_000 + b",b\n", ("t.csv:", "CSV")),
    ("csv latin-1", "t.csv", "input,target\ncafé,b\n".encode("latin-1"), ("t.csv:2", "UTF-8")),
    ("csv nul", "t.csv", b"input,target\na\x00,b\n", ("t.csv:2", "binary")),
    ("csv binary", "t.csv", b"\x00\x01\x02\x03", ("t.csv:1", "binary")),
    ("csv surrogate-free but ragged", "t.csv", b"input,target\na,b\nc,d,e,f\n", ("t.csv:3",)),
    ("tsv wrong delimiter", "t.tsv", b"input,target\na,b\n", ("t.tsv:2", "'input'")),
    ("csv duplicate ids", "t.csv", b"id,input,target\n1,a,b\n1,c,d\n", ("t.csv:3", "unique")),
]


@pytest.mark.parametrize(
    ("name", "fname", "content", "needles"), TASK_FILES, ids=[c[0] for c in TASK_FILES]
)
def test_malformed_task_file(
    capsys, monkeypatch, tmp_path: Path, name: str, fname: str, content: bytes, needles
) -> None:
    task = tmp_path / fname
    task.write_bytes(content)
    code, _, err = invoke(
        capsys, monkeypatch, "eval", "--task", str(task), "--cache", str(tmp_path / "c.db")
    )
    assert_one_line_error(code, err, needles)


# ---- invocations: (name, builder(tmp) -> args/env, needles) ------------------------------
@dataclass
class Case:
    name: str
    build: Callable[[Path], list[str]]
    needles: tuple[str, ...]
    env: Callable[[Path], dict[str, str]] = field(default=lambda tmp: {})
    code: int = 2


def good_task(tmp: Path, name: str = "ok.jsonl") -> str:
    (tmp / name).write_bytes(GOOD)
    return str(tmp / name)


def eval_args(tmp: Path, *extra: str) -> list[str]:
    return ["eval", "--task", good_task(tmp), "--cache", str(tmp / "c.db"), *extra]


def opt_args(tmp: Path, *extra: str) -> list[str]:
    return ["optimize", "--task", good_task(tmp), "--out", str(tmp / "run"), *extra]


def write(tmp: Path, name: str, content: str | bytes) -> str:
    p = tmp / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(p)


def prompt_file(tmp: Path, data: object, name: str = "p.json") -> str:
    return write(tmp, name, json.dumps(data))


def metric_file(tmp: Path, body: str) -> str:
    return write(tmp, "m.py", body)


def _valid_config(tmp: Path) -> None:
    from promptlathe.optimizers import OptimizeConfig

    cfg = OptimizeConfig(task=good_task(tmp), out=str(tmp / "elsewhere"))
    write(tmp, "run/config.json", cfg.to_json())


def run_args(tmp: Path, prompt: str, *extra: str) -> list[str]:
    return ["run", "--prompt", prompt, "--cache", str(tmp / "c.db"), *extra, "hello"]


CASES: list[Case] = [
    # usage errors of every command
    *(
        Case(f"unknown option {cmd}", lambda t, c=cmd: [*c.split(), "--bogus"], ("--bogus",))
        for cmd in ("eval", "optimize", "analyze", "run", "report", "models list", "models path")
    ),
    Case("eval missing --task", lambda t: ["eval"], ("--task",)),
    Case("analyze missing --prompt", lambda t: ["analyze", "--task", good_task(t)], ("--prompt",)),
    Case("run missing --prompt", lambda t: ["run", "x"], ("--prompt",)),
    Case("run missing inputs", lambda t: ["run", "--prompt", "p.json"], ("inputs",)),
    Case("report missing dir", lambda t: ["report"], ("run_dir",)),
    Case("unknown command", lambda t: ["evaluate"], ("evaluate",)),
    Case("models install unknown", lambda t: ["models", "install", "gpt-17"], ("gpt-17",)),
    Case("models path unknown", lambda t: ["models", "path", "gpt-17"], ("gpt-17",)),
    # numbers
    Case("max-tokens 0", lambda t: eval_args(t, "--max-tokens", "0"), ("--max-tokens",)),
    Case("max-tokens -5", lambda t: eval_args(t, "--max-tokens", "-5"), ("--max-tokens",)),
    Case("max-tokens huge", lambda t: eval_args(t, "--max-tokens", "99999999"), ("--max-tokens",)),
    Case("limit -1", lambda t: eval_args(t, "--limit", "-1"), ("--limit",)),
    Case("limit 0", lambda t: eval_args(t, "--limit", "0"), ("--limit",)),
    Case("limit text", lambda t: eval_args(t, "--limit", "ten"), ("--limit",)),
    Case("seed -1", lambda t: eval_args(t, "--seed", "-1"), ("--seed",)),
    Case("seed abc", lambda t: eval_args(t, "--seed", "abc"), ("--seed",)),
    Case("seed 2**40", lambda t: eval_args(t, "--seed", str(2**40)), ("--seed",)),
    Case("seed float", lambda t: eval_args(t, "--seed", "1.5"), ("--seed",)),
    Case("shots -1", lambda t: eval_args(t, "--shots", "-1"), ("--shots",)),
    Case("shots too many", lambda t: eval_args(t, "--shots", "5"), ("--shots 5",)),
    Case("retries -1", lambda t: eval_args(t, "--retries", "-1"), ("--retries",)),
    Case("n-ctx 0", lambda t: eval_args(t, "--n-ctx", "0"), ("--n-ctx",)),
    Case("budget 5", lambda t: opt_args(t, "--budget-calls", "5"), ("--budget-calls",)),
    Case("budget 1e30", lambda t: opt_args(t, "--budget-calls", str(10**30)), ("--budget-calls",)),
    Case("budget tokens 0", lambda t: opt_args(t, "--budget-tokens", "0"), ("--budget-tokens",)),
    Case("confirm-size -3", lambda t: opt_args(t, "--confirm-size", "-3"), ("--confirm-size",)),
    Case("val-size 0", lambda t: opt_args(t, "--val-size", "0"), ("--val-size",)),
    Case("max-shots 17", lambda t: opt_args(t, "--max-shots", "17"), ("--max-shots",)),
    Case("workers 0", lambda t: opt_args(t, "--workers", "0"), ("--workers",)),
    Case("analysis-scale 0", lambda t: opt_args(t, "--analysis-scale", "0"), ("--analysis-scale",)),
    Case(
        "analysis-scale nan",
        lambda t: opt_args(t, "--analysis-scale", "nan"),
        ("--analysis-scale",),
    ),
    Case("sampler foo", lambda t: opt_args(t, "--sampler", "foo"), ("--sampler", "foo")),
    Case("prescreen foo", lambda t: opt_args(t, "--prescreen", "foo"), ("--prescreen",)),
    Case("eval mode foo", lambda t: eval_args(t, "--mode", "foo"), ("foo",)),
    # paths
    Case(
        "task missing", lambda t: ["eval", "--task", str(t / "no.jsonl")], ("no.jsonl", "not found")
    ),
    Case("task is a dir", lambda t: ["eval", "--task", str(t)], ("is a directory",)),
    Case(
        "train missing",
        lambda t: eval_args(t, "--shots", "1", "--train", str(t / "tr.jsonl")),
        ("tr.jsonl",),
    ),
    Case(
        "optimize test missing", lambda t: opt_args(t, "--test", str(t / "te.jsonl")), ("te.jsonl",)
    ),
    Case("optimize no task", lambda t: ["optimize", "--out", str(t / "r")], ("--task",)),
    Case(
        "out is a file",
        lambda t: ["optimize", "--task", good_task(t), "--out", write(t, "f", "x")],
        ("--out", "is a file"),
    ),
    Case(
        "cache is a dir",
        lambda t: ["eval", "--task", good_task(t), "--cache", str(t)],
        ("is a directory",),
    ),
    Case(
        "cache not sqlite",
        lambda t: ["eval", "--task", good_task(t), "--cache", write(t, "c.db", b"garbage" * 300)],
        ("c.db", "SQLite"),
    ),
    Case(
        "home is a file",
        lambda t: ["eval", "--task", good_task(t)],
        ("PROMPTLATHE_HOME", "is a file"),
        env=lambda t: {"PROMPTLATHE_HOME": write(t, "home", "x")},
    ),
    Case("json is a dir", lambda t: eval_args(t, "--json", str(t)), ("--json", "directory")),
    Case(
        "json parent is a file",
        lambda t: eval_args(t, "--json", write(t, "f", "x") + "/o.json"),
        ("--json",),
    ),
    Case("worker without out", lambda t: ["optimize", "--worker"], ("--out",)),
    Case(
        "worker on empty dir",
        lambda t: ["optimize", "--worker", "--out", str(t)],
        ("no run to join",),
    ),
    Case("report on empty dir", lambda t: ["report", str(t)], ("not a finished optimize run",)),
    # damaged run files
    Case(
        "resume garbage config",
        lambda t: (write(t, "run/config.json", "{nope"), opt_args(t, "--resume"))[1],
        ("config.json", "invalid JSON"),
    ),
    Case(
        "resume config not an object",
        lambda t: (write(t, "run/config.json", "[1]"), opt_args(t, "--resume"))[1],
        ("config.json", "not a promptlathe run config"),
    ),
    Case(
        "resume config binary",
        lambda t: (write(t, "run/config.json", b"\xff\xfe\x00"), opt_args(t, "--resume"))[1],
        ("config.json", "UTF-8"),
    ),
    Case(
        "report garbage config",
        lambda t: (
            write(t, "run/config.json", "{x"),
            write(t, "run/result.json", "{}"),
            ["report", str(t / "run")],
        )[2],
        ("config.json",),
    ),
    Case(
        "report garbage result",
        lambda t: (
            _valid_config(t),
            write(t, "run/result.json", "{nope"),
            ["report", str(t / "run")],
        )[2],
        ("result.json", "--resume"),
    ),
    Case(
        "report result without fields",
        lambda t: (
            _valid_config(t),
            write(t, "run/result.json", '{"best": 1}'),
            ["report", str(t / "run")],
        )[2],
        ("result.json", "not a promptlathe result"),
    ),
    Case(
        "report result without split sizes",
        lambda t: (
            _valid_config(t),
            write(
                t,
                "run/result.json",
                '{"best_prompt": {}, "best": {}, "calls_used": 1, "budget": 1, "plan": {},'
                ' "trials": {}}',
            ),
            ["report", str(t / "run")],
        )[2],
        ("result.json", "field 'plan.n_test' is missing"),
    ),
    # prompt files
    Case(
        "prompt missing",
        lambda t: eval_args(t, "--prompt", str(t / "p.json")),
        ("p.json", "not found"),
    ),
    Case(
        "prompt invalid json",
        lambda t: eval_args(t, "--prompt", write(t, "p.json", "{")),
        ("p.json", "invalid JSON"),
    ),
    Case("prompt empty", lambda t: eval_args(t, "--prompt", write(t, "p.json", "")), ("p.json",)),
    Case(
        "prompt a list",
        lambda t: eval_args(t, "--prompt", prompt_file(t, [1])),
        ("p.json", "JSON object"),
    ),
    Case(
        "prompt instruction int",
        lambda t: eval_args(t, "--prompt", prompt_file(t, {"instruction": 3})),
        ("'instruction'",),
    ),
    Case(
        "prompt exemplars bad",
        lambda t: eval_args(t, "--prompt", prompt_file(t, {"exemplars": [1]})),
        ("'exemplars.0'", "must be an object"),
    ),
    Case(
        "prompt format unknown",
        lambda t: eval_args(t, "--prompt", prompt_file(t, {"format": {"x": 1}})),
        ("format",),
    ),
    Case(
        "prompt format list",
        lambda t: eval_args(t, "--prompt", prompt_file(t, {"format": []})),
        ("'format'",),
    ),
    Case(
        "prompt format mode bad",
        lambda t: eval_args(t, "--prompt", prompt_file(t, {"format": {"mode": "x"}})),
        ("p.json",),
    ),
    Case(
        "prompt not utf-8",
        lambda t: eval_args(t, "--prompt", write(t, "p.json", b'{"instruction": "\xff"}')),
        ("p.json", "UTF-8"),
    ),
    Case(
        "prompt deep",
        lambda t: eval_args(t, "--prompt", write(t, "p.json", "[" * 100_000)),
        ("p.json", "nested"),
    ),
    Case(
        "prompt and instruction",
        lambda t: eval_args(t, "--prompt", prompt_file(t, {}), "--instruction", "x"),
        ("--instruction",),
    ),
    Case(
        "run prompt names code metric",
        lambda t: run_args(
            t, prompt_file(t, {"metric": metric_file(t, "def f(o, t):\n    return 1\n") + ":f"})
        ),
        ("p.json", "--metric"),
    ),
    Case(
        "run prompt names a model path",
        lambda t: run_args(t, prompt_file(t, {"model": str(t / "x.gguf")})),
        ("p.json", "--model"),
    ),
    Case(
        "run prompt decoding key",
        lambda t: run_args(t, prompt_file(t, {"decoding": {"bogus": 1}})),
        ("unknown field 'decoding.bogus'",),
    ),
    Case(
        "run prompt decoding bad",
        lambda t: run_args(t, prompt_file(t, {"decoding": {"max_tokens": 0}})),
        ("'decoding'",),
    ),
    Case(
        "run prompt labels without the labels",
        lambda t: run_args(t, prompt_file(t, {"decode": "labels"})),
        ("'decode_labels'",),
    ),
    Case(
        "run prompt one decode label",
        lambda t: run_args(t, prompt_file(t, {"decode": "labels", "decode_labels": ["a"]})),
        ("'decode_labels'",),
    ),
    Case(
        "prompt strategy k not whole",
        lambda t: run_args(t, prompt_file(t, {"strategy": {"name": "cot", "k": 1.5}})),
        ("'strategy.k'", "whole number"),
    ),
    Case(
        "run prompt metric int", lambda t: run_args(t, prompt_file(t, {"metric": 3})), ("'metric'",)
    ),
    # metrics
    Case("metric unknown", lambda t: eval_args(t, "--metric", "bleu"), ("bleu",)),
    Case(
        "metric file missing",
        lambda t: eval_args(t, "--metric", str(t / "m.py") + ":f"),
        ("not found",),
    ),
    Case(
        "metric no function",
        lambda t: eval_args(t, "--metric", metric_file(t, "x = 1\n") + ":f"),
        ("no function 'f'",),
    ),
    Case(
        "metric syntax error",
        lambda t: eval_args(t, "--metric", metric_file(t, "def f(:\n") + ":f"),
        ("syntax error",),
    ),
    Case(
        "metric import error",
        lambda t: eval_args(t, "--metric", metric_file(t, "import nope_nope\n") + ":f"),
        ("cannot import",),
    ),
    Case(
        "metric raises at import",
        lambda t: eval_args(t, "--metric", metric_file(t, "1/0\n") + ":f"),
        ("ZeroDivisionError",),
    ),
    Case(
        "metric wrong arity",
        lambda t: eval_args(t, "--metric", metric_file(t, "def f(o):\n    return 1\n") + ":f"),
        ("two arguments",),
    ),
    Case(
        "metric returns 5",
        lambda t: eval_args(t, "--metric", metric_file(t, "def f(o, t):\n    return 5\n") + ":f"),
        ("returned 5",),
    ),
    Case(
        "metric returns nan",
        lambda t: eval_args(
            t, "--metric", metric_file(t, "def f(o, t):\n    return float('nan')\n") + ":f"
        ),
        ("returned nan",),
    ),
    Case(
        "metric returns str",
        lambda t: eval_args(
            t, "--metric", metric_file(t, "def f(o, t):\n    return 'yes'\n") + ":f"
        ),
        ("returned 'yes'",),
    ),
    Case(
        "metric raises",
        lambda t: eval_args(
            t, "--metric", metric_file(t, "def f(o, t):\n    raise KeyError('k')\n") + ":f"
        ),
        ("raised KeyError",),
    ),
    Case("metric bad spec", lambda t: eval_args(t, "--metric", ":f"), ("module:function",)),
    # servers
    Case(
        "base-url no scheme",
        lambda t: eval_args(t, "--base-url", "localhost:8000/v1", "--model", "m"),
        ("--base-url", "http://"),
    ),
    Case(
        "base-url ftp",
        lambda t: eval_args(t, "--base-url", "ftp://h/v1", "--model", "m"),
        ("--base-url",),
    ),
    Case(
        "base-url bad port",
        lambda t: eval_args(t, "--base-url", "http://h:99999/v1", "--model", "m"),
        ("--base-url",),
    ),
    Case(
        "base-url empty host",
        lambda t: eval_args(t, "--base-url", "http:///v1", "--model", "m"),
        ("--base-url",),
    ),
    Case(
        "optimize base-url ftp", lambda t: opt_args(t, "--base-url", "ftp://h/v1"), ("--base-url",)
    ),
    Case(
        "api key with newline",
        lambda t: eval_args(t, "--base-url", "http://127.0.0.1:9/v1", "--model", "m"),
        ("PROMPTLATHE_API_KEY", "newline"),
        env=lambda t: {"PROMPTLATHE_API_KEY": "sk-secret\nX-Evil: 1"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_invocation(capsys, monkeypatch, tmp_path: Path, case: Case) -> None:
    monkeypatch.setenv("PROMPTLATHE_HOME", str(tmp_path / "home"))
    (tmp_path / "run").mkdir()
    args = case.build(tmp_path)
    code, _, err = invoke(capsys, monkeypatch, *args, env=case.env(tmp_path))
    assert_one_line_error(code, err, case.needles)
    assert "sk-secret" not in err


def test_the_corpus_is_large() -> None:
    assert len(TASK_FILES) + len(CASES) >= 100
