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

from _peer_data import PEER_METHODS, PL_METHODS, Row


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
