"""The HTML report in headless Chromium: plots and tables render, model output never runs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from promptlathe import Exemplar, Prompt
from promptlathe.report import build, write

XSS = [
    "<script>document.body.setAttribute('data-pwned','1')</script>",
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">",
]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _records(outputs: list[str], correct: list[bool]) -> list[dict]:
    return [
        {
            "example_id": f"t:{i}",
            "input": f"input {i} <b>bold?</b>",
            "targets": ["yes"],
            "output": o,
            "score": 1.0 if c else 0.0,
        }
        for i, (o, c) in enumerate(zip(outputs, correct, strict=True))
    ]


def _report(tmp_path: Path) -> Path:
    winner = Prompt("Answer <script>alert(1)</script> yes.", (Exemplar("a", "yes"),))
    trials = [
        {
            "number": i,
            "state": s,
            "value": v,
            "calls_at_end": 10 * (i + 1),
            "prompt": winner.with_(instruction=f"candidate {i} <i>x</i>").to_dict(),
            "scores": [1.0] * int(v * 10) + [0.0] * (10 - int(v * 10)),
        }
        for i, (s, v) in enumerate([("complete", 0.3), ("pruned", 0.1), ("complete", 0.8)])
    ]
    report = build(
        title="xss-check",
        model="m",
        metric="exact",
        winner=winner,
        baseline=Prompt("seed"),
        winner_records=_records(["yes", XSS[0], "yes"], [True, True, False]),
        baseline_records=_records([XSS[1], "no", "no"], [False, False, False]),
        val=(0.8, 10),
        significance={"verdict": "not significant <script>x</script>", "significant": False},
        bound={
            "delta": 0.05,
            "empirical_error": 0.2,
            "error_bound": 0.9,
            "hoeffding_bound": 1.0,
            "complexity": 30.0,
            "n": 10,
            "vacuous": False,
        },
        format_spread={
            "per_format": [
                {
                    "format": {
                        "mode": "chat",
                        "input_label": "Q",
                        "output_label": "A",
                        "separator": ": ",
                    },
                    "accuracy": 0.5,
                    "n": 8,
                },
                {
                    "format": {
                        "mode": "chat_single",
                        "input_label": "<x>",
                        "output_label": "A",
                        "separator": ": ",
                    },
                    "accuracy": 0.9,
                    "n": 16,
                },
            ],
            "min": 0.5,
            "median": 0.7,
            "max": 0.9,
            "spread": 0.4,
            "calls": 24,
        },
        trials=trials,
    )
    html, js = write(tmp_path, report)
    assert js.is_file()
    return html


def test_report_escapes_every_model_string(tmp_path: Path) -> None:
    text = _report(tmp_path).read_text()
    for s in XSS:
        assert s not in text
    assert "&lt;script&gt;document.body.setAttribute" in text
    assert "<script>alert(1)</script>" not in text
    assert text.count("<script>") == 1  # the page's own, allowed by hash in the CSP
    assert "Content-Security-Policy" in text


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    assert CHROMIUM, "chromium is required (apt-get install chromium); scripts/test.sh installs it"
    html = _report(tmp_path)
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
    ]
    dom = subprocess.run(
        [*flags, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    assert 'data-plots-loaded="3"' in dom  # progress, leaderboard, format chart decoded
    assert "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert dom.count("<tr>") >= 8  # scores, bound, leaderboard and diff tables have rows
    assert "&lt;img src=x onerror=" in dom
    shot = tmp_path / "report.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,2400", html.as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert shot.is_file() and shot.stat().st_size > 10_000
