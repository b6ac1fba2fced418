"""The comparison bench's table (bench/compare.py): means per method, promptlathe against the
best peer (hollow rows never count as wins), and the JSON file the rows are kept in, read back
when a stopped run resumes."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from _peer_data import PEER_METHODS, PL_METHODS, Row


def paired_ci(
    ours: list[Row], theirs: list[Row], resamples: int = 10_000, seed: int = 0
) -> tuple[float, float] | None:
    """95 % interval of the mean over tasks of (ours - theirs), by a bootstrap that resamples
    each task's test examples (the same examples for both: the pairing), or ``None`` when a
    row lacks its per-example scores (rows written before they were kept)."""
    if any(len(a.scores) != a.n or len(b.scores) != a.n for a, b in zip(ours, theirs, strict=True)):
        return None
    rng = np.random.default_rng(seed)
    total = np.zeros(resamples)
    for a, b in zip(ours, theirs, strict=True):
        d = np.asarray(a.scores) - np.asarray(b.scores)
        total += d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    means = total / len(ours)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def no_hollow_credit(ours: list[Row], theirs: list[Row]) -> float:
    """Mean over tasks of (ours - theirs), where a hollow row of ours gains nothing over the
    peer (a constant-like answer that happens to beat the peer is not a win)."""
    diffs = [
        min(a.accuracy - b.accuracy, 0.0) if a.hollow else a.accuracy - b.accuracy
        for a, b in zip(ours, theirs, strict=True)
    ]
    return sum(diffs) / len(diffs)


def summarize(rows: list[Row], methods: list[str]) -> dict[str, Any]:
    """Mean accuracy per method over the tasks it finished; the comparison uses the tasks that
    both promptlathe and the peer finished, and counts a task as promptlathe's win only where it
    beats the peer and is not hollow (no better than a constant answer)."""
    ok = {(r.task, r.method): r for r in rows if r.error is None}
    means: dict[str, dict[str, Any]] = {}
    for m in methods:
        rs = [r for r in rows if r.method == m and r.error is None]
        failed = [r.task for r in rows if r.method == m and r.error is not None]
        if rs or failed:
            means[m] = {
                "accuracy": sum(r.accuracy for r in rs) / len(rs) if rs else float("nan"),
                "opt_calls": sum(r.opt_calls for r in rs),
                "tasks": len(rs),
                "hollow": [r.task for r in rs if r.hollow],
                "failed": failed,
            }
    out: dict[str, Any] = {"means": means}
    pairs = {}
    pl_method = PL_METHODS[0]
    for m in PEER_METHODS:
        common = [
            task
            for task in dict.fromkeys(r.task for r in rows)
            if (task, m) in ok and (task, pl_method) in ok
        ]
        if common:
            pl = [ok[task, pl_method] for task in common]
            peer = [ok[task, m] for task in common]
            pairs[m] = {
                "tasks": common,
                "ci95": paired_ci(pl, peer),
                "no_hollow_credit": no_hollow_credit(pl, peer),
                "promptlathe": sum(r.accuracy for r in pl) / len(pl),
                "peer": sum(r.accuracy for r in peer) / len(peer),
                "promptlathe_calls": sum(r.opt_calls for r in pl),
                "peer_calls": sum(r.opt_calls for r in peer),
                "wins": [
                    a.task
                    for a, b in zip(pl, peer, strict=True)
                    if a.accuracy > b.accuracy and not a.hollow
                ],  # fmt: skip
                "losses": [
                    a.task for a, b in zip(pl, peer, strict=True) if a.accuracy < b.accuracy
                ],  # fmt: skip
            }
    if pairs:
        best = max(pairs, key=lambda m: pairs[m]["peer"])
        p = pairs[best]
        diff = 100 * (p["promptlathe"] - p["peer"])
        pct = 100 * p["promptlathe_calls"] / p["peer_calls"] if p["peer_calls"] else float("nan")
        n_all = len(dict.fromkeys(r.task for r in rows))
        scope = "" if len(p["tasks"]) == n_all else f" on the {len(p['tasks'])} tasks both finished"
        out.update(pairs=pairs, best_peer=best, diff_points=diff, calls_percent=pct)
        out["line"] = (
            f"{pl_method} mean − best peer mean = {diff:+.1f} points at {pct:.0f} % of its calls"
            f" (best peer: {best}{scope}; {pl_method} wins {len(p['wins'])} tasks, not hollow, "
            f"and loses {len(p['losses'])})"
        )
        if p["ci95"] is not None:
            lo, hi = (100 * x for x in p["ci95"])
            out["line"] += f"\n  paired by test example: 95 % interval {lo:+.1f} to {hi:+.1f}"
        out["line"] += f"\n  no credit for hollow rows: {100 * p['no_hollow_credit']:+.1f} points"
    return out


def format_table(rows: list[Row], summary: dict[str, Any]) -> str:
    head = (
        f"{'task':<24} {'method':<19} {'acc':>6} {'95% CI':>15} {'n':>4} "
        f"{'opt calls':>9} {'opt s':>8} {'test calls':>10} {'test s':>7}"
    )
    lines = [head, "-" * len(head)]
    last = None
    for r in rows:
        if last is not None and r.task != last:
            lines.append("")
        last = r.task
        lo, hi = r.ci95
        if r.error is not None:
            score = f"{'FAILED':>6} {'':>15} {'':>4}"
        else:
            mark = "*" if r.hollow else " "
            score = f"{100 * r.accuracy:>5.1f}%{mark}[{100 * lo:>5.1f}, {100 * hi:>5.1f}] {r.n:>4}"
        lines.append(
            f"{r.task:<24} {r.method:<19} {score} {r.opt_calls:>9} "
            f"{r.opt_seconds:>8.0f} {r.test_calls:>10} {r.test_seconds:>7.0f}"
        )
        if r.error is not None:
            lines.append(f"{'':<37}{r.error[:100]}")
    lines += ["-" * len(head), "* hollow: no better on test than the best constant answer"]
    lines += ["mean over tasks:"]
    for m, s in summary["means"].items():
        failed = f", failed on {', '.join(s['failed'])}" if s["failed"] else ""
        if s["hollow"]:
            failed += f", hollow on {', '.join(s['hollow'])}"
        acc = f"{100 * s['accuracy']:>5.1f}%" if s["tasks"] else "   n/a"
        lines.append(
            f"  {m:<19} {acc}  ({s['tasks']} tasks, {s['opt_calls']} optimization calls{failed})"
        )
    if "line" in summary:
        lines.append(summary["line"])
    return "\n".join(lines)


def format_markdown(rows: list[Row], summary: dict[str, Any]) -> str:
    """A Markdown matrix for the docs: a row per task, a column per method, each cell the test
    accuracy (``*`` hollow, ``failed`` for a crash) and the optimization calls; ``summary`` is
    :func:`summarize`'s for the same rows."""
    means = summary["means"]
    done = list(means)
    cell = {(r.task, r.method): r for r in rows}
    lines = ["| task | " + " | ".join(f"`{m}`" for m in done) + " |"]
    lines.append("|---|" + "---|" * len(done))
    for task in dict.fromkeys(r.task for r in rows):
        cells = []
        for m in done:
            r = cell.get((task, m))
            if r is None:
                cells.append("-")
            elif r.error is not None:
                cells.append(f"failed ({r.opt_calls})")
            else:
                cells.append(f"{r.accuracy:.2f}{'*' if r.hollow else ''} ({r.opt_calls})")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    cells = [
        f"**{means[m]['accuracy']:.3f}** ({means[m]['tasks']})" if means[m]["tasks"] else "-"
        for m in done
    ]
    lines.append("| **mean (tasks)** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(
    rows: list[Row],
    args: argparse.Namespace,
    model_path: Path,
    dspy_version: str | None,
    partial: bool = False,
) -> None:
    summary = summarize(rows, args.methods)
    print(format_table(rows, summary), file=sys.stderr if partial else sys.stdout, flush=True)
    write_json(rows, args, model_path, dspy_version, partial)


def write_json(
    rows: list[Row],
    args: argparse.Namespace,
    model_path: Path,
    dspy_version: str | None,
    partial: bool,
) -> None:
    """The table as JSON (after every row too, so a long run that dies keeps what it did)."""
    summary = summarize(rows, args.methods)
    if args.json:
        payload = {
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "model_path": str(model_path),
            "dspy_version": dspy_version,
            "partial": partial,
            "rows": [asdict(r) for r in rows],
            **summary,
        }
        args.json.write_text(json.dumps(_json_safe(payload), indent=2, ensure_ascii=False) + "\n")


def _json_safe(value: Any) -> Any:
    """NaN (a failed method's accuracy) becomes null: strict JSON has no NaN."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


RESUME_KEYS = ("model", "proposer_model", "seed", "n_train", "n_val", "n_test", "max_tokens")
"""The settings a resumed run must share with the rows it reads back."""


def read_rows(args: argparse.Namespace) -> list[Row]:
    """The rows of an earlier run of the same settings in ``--json`` (none if there is no file).

    Every finished (task, method) row is kept, a failed one too: a failure is a result (e.g.
    MIPROv2 cannot parse a small proposer), and running it again costs hours."""
    path: Path | None = args.json
    if path is None or not path.is_file():
        return []
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        config = payload["config"]
        raw_rows = payload["rows"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(
            f"--json: {path} cannot be resumed from ({exc}); give another file"
        ) from None
    for key in RESUME_KEYS:
        if config.get(key) != getattr(args, key):
            raise SystemExit(
                f"--json: {path} holds rows with {key}={config.get(key)!r}, this run has "
                f"{getattr(args, key)!r}; give another file to start afresh"
            )
    rows = []
    for raw in raw_rows:
        raw = dict(raw)
        raw["ci95"] = tuple(raw["ci95"])
        if raw.get("accuracy") is None:
            raw["accuracy"] = float("nan")
        rows.append(Row(**raw))
    return rows
