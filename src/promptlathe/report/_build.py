"""Assemble the report's data (``report.json``) and page (``report.html``)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promptlathe._stats import wilson_interval
from promptlathe.optimizers._runlog import STATE_WORDS
from promptlathe.prompts import Prompt
from promptlathe.report import _html, _plots
from promptlathe.strategies import get_strategy

LEADERBOARD_ROWS = 15


def _fmt_score(mean: float | None, n: int | None) -> str:
    if mean is None or n is None or n == 0 or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    lo, hi = wilson_interval(mean * n, n)
    return f"{mean:.3f} [{lo:.3f}, {hi:.3f}] n={n}"


def _fmt_format(p: Prompt) -> str:
    f = p.format
    return f"{f.mode}, {f.input_label!r}/{f.output_label!r}, sep {f.separator!r}"


def _mean(records: Sequence[dict[str, Any]]) -> float | None:
    return sum(r["score"] for r in records) / len(records) if records else None


def build(
    *,
    title: str,
    model: str,
    metric: str,
    winner: Prompt,
    baseline: Prompt | None,
    baseline_name: str = "seed prompt",
    winner_records: Sequence[dict[str, Any]] = (),
    baseline_records: Sequence[dict[str, Any]] = (),
    val: tuple[float, int] | None = None,
    baseline_val: tuple[float, int] | None = None,
    baselines: dict[str, Any] | None = None,
    trial_counts: dict[str, int] | None = None,
    significance: dict[str, Any] | None = None,
    bound: dict[str, Any] | None = None,
    bound_note: str = "",
    certificate: dict[str, Any] | None = None,
    format_spread: dict[str, Any] | None = None,
    posix: dict[str, Any] | None = None,
    posix_note: str = "",
    order: dict[str, Any] | None = None,
    sizes: dict[str, Any] | None = None,
    trials: Sequence[dict[str, Any]] = (),
    run_dir: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report as plain data; every number the page shows is in it."""
    by_id = {r["example_id"]: r for r in baseline_records}
    diffs = []
    wording_only = 0
    for a in winner_records:
        b = by_id.get(a["example_id"])
        if b is not None and a["score"] == b["score"] and a["output"] != b["output"]:
            wording_only += 1
        elif b is not None and a["score"] != b["score"]:
            diffs.append(
                {
                    "example_id": a["example_id"],
                    "input": a["input"],
                    "target": a["targets"][0],
                    "a_output": a["output"],
                    "b_output": b["output"],
                    "a_correct": a["score"] >= 1.0,
                    "b_correct": b["score"] >= 1.0,
                }
            )
    diffs.sort(key=lambda d: (d["a_correct"] == d["b_correct"], not d["a_correct"]))
    wa, wb = _mean(winner_records), _mean(baseline_records)
    score_rows = [
        {
            "name": "test accuracy (95 % Wilson CI)",
            "a": _fmt_score(wa, len(winner_records)),
            "b": _fmt_score(wb, len(baseline_records)),
        },
    ]
    if baselines and baselines.get("balanced_accuracy") is not None:
        score_rows.append(
            {
                "name": "balanced accuracy (mean recall per label)",
                "a": f"{baselines['balanced_accuracy']:.3f}",
                "b": f"a constant answer: {baselines['chance_balanced']:.3f}",
            }
        )
    if baselines:
        score_rows.append(
            {
                "name": "best constant answer",
                "a": f"{baselines['best_constant']!r}: {baselines['best_constant_accuracy']:.3f}",
                "b": "",
            }
        )
    if val is not None:
        b_val = _fmt_score(*baseline_val) if baseline_val is not None else "-"
        score_rows.insert(0, {"name": "validation (search)", "a": _fmt_score(*val), "b": b_val})
    leaderboard = _leaderboard(trials)
    sample = winner_records[0]["input"] if winner_records else "<input>"
    cost = _cost(winner, baseline, winner_records, baseline_records, trials)
    if cost["winner"]["test_tokens"] is not None:
        w, b = cost["winner"]["test_tokens"], cost["seed"]["test_tokens"]
        score_rows.append(
            {
                "name": "tokens per test example (prompt + output, every call)",
                "a": f"{w:.0f} ({winner.strategy.label()})",
                "b": f"{b:.0f} ({baseline.strategy.label()})"
                if b is not None and baseline
                else "-",
            }
        )
    if bound is not None and baselines:
        # Vacuous means useless: no better than a constant answer, not only >= 1.
        floor = baselines["best_constant_accuracy"]
        bound = {**bound, "vacuous": bool(bound["vacuous"] or 1 - bound["error_bound"] <= floor)}
    if certificate is not None:
        certificate = {**certificate, "test": _fmt_score(wa, len(winner_records))}
    return {
        "title": title,
        "model": model,
        "metric": metric,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "run_dir": run_dir,
        "winner": winner.to_dict(),
        "baseline": baseline.to_dict() if baseline else None,
        "baseline_name": baseline_name,
        "prompt_text": _render_sample(winner, sample),
        "score_rows": score_rows,
        "test": {"winner": wa, "baseline": wb, "n": len(winner_records)},
        "test_error": "-" if wa is None else f"{1 - wa:.3f}",
        "significance": significance,
        "bound": bound,
        "bound_note": bound_note,
        "certificate": certificate,
        "format_spread": format_spread,
        "posix": posix,
        "posix_note": posix_note,
        "order": order,
        "analysis_sizes": sizes,
        "leaderboard": leaderboard,
        "search_note": _search_note(trials, trial_counts),
        "baselines": baselines,
        "trials": list(trials),
        "diffs": diffs,
        "wording_only": wording_only,
        "n_test": len(winner_records),
        "cost": cost,
        **(extra or {}),
    }


def _tokens(records: Sequence[dict[str, Any]]) -> float | None:
    toks = [r.get("tokens") for r in records]
    if not toks or not all(isinstance(t, int | float) and t > 0 for t in toks):
        return None
    return sum(toks) / len(toks)  # type: ignore[arg-type]


def _cost(
    winner: Prompt,
    baseline: Prompt | None,
    winner_records: Sequence[dict[str, Any]],
    baseline_records: Sequence[dict[str, Any]],
    trials: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """What the winner and the seed cost per example: on test, and on validation as the
    search measured them (for the accuracy-versus-cost chart)."""
    by_hash = {t.get("prompt_hash"): t for t in trials}

    def one(p: Prompt | None, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        t = by_hash.get(p.hash) if p is not None else None
        return {
            "strategy": p.strategy.label() if p is not None else None,
            "test_tokens": _tokens(records),
            "val_tokens": t.get("tokens_per_example") if t else None,
            "val": t.get("value") if t else None,
        }

    out: dict[str, Any] = {
        "winner": one(winner, winner_records),
        "seed": one(baseline, baseline_records),
    }
    w, s = out["winner"]["test_tokens"], out["seed"]["test_tokens"]
    out["ratio"] = w / s if w and s else None
    return out


def _search_note(trials: Sequence[dict[str, Any]], counts: dict[str, int] | None) -> str:
    """The trial counts, the same as the terminal's (every state, duplicates included)."""
    if counts:
        total = sum(counts.values())
        parts = ", ".join(f"{v} {STATE_WORDS.get(k, k)}" for k, v in sorted(counts.items()))
        return f"{total} trials: {parts} (pruned: stopped early by racing)."
    if not trials:
        return ""
    return (
        f"{sum(t['state'] == 'complete' for t in trials)} trials fully evaluated, "
        f"{sum(t['state'] == 'pruned' for t in trials)} stopped early by racing."
    )


def _render_sample(p: Prompt, query: str) -> str:
    if p.format.mode == "completion":
        return p.render_text(query)
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in p.render_messages(query))


def _leaderboard(trials: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The best fully raced candidates, and any the confirmation scored (a race the budget
    cut short while it led shows its validation score on the examples it reached)."""
    done = [
        t
        for t in trials
        if (t["state"] == "complete" or t.get("confirm") is not None) and t.get("prompt")
    ]
    seen, rows = set(), []
    for t in sorted(done, key=lambda t: -t["value"]):
        p = Prompt.from_dict(t["prompt"])
        if p.hash in seen:
            continue
        seen.add(p.hash)
        n = len(t.get("scores") or [])
        tpe = t.get("tokens_per_example")
        rows.append(
            {
                "instruction": p.instruction or "(none)",
                "strategy": p.strategy.label(),
                "tokens": f"{tpe:.0f}" if isinstance(tpe, int | float) else "-",
                "shots": get_strategy(p.strategy).shots(p),
                "format": _fmt_format(p),
                "val": _fmt_score(t["value"], n),
                "val_mean": t["value"],
                "val_n": n,
                "confirm": _fmt_score(t.get("confirm"), t.get("confirm_n")),
            }
        )
        if len(rows) >= LEADERBOARD_ROWS:
            break
    return rows


def plots_for(report: dict[str, Any]) -> dict[str, str | None]:
    trials = report.get("trials") or []
    points = [
        (int(t["calls_at_end"]), float(t["value"]), t["state"])
        for t in trials
        if t.get("calls_at_end") is not None
        and t.get("value") is not None
        and t["state"] in ("complete", "pruned")
    ]
    lb = report.get("leaderboard") or []
    fs = report.get("format_spread")
    fmt_plot = None
    if fs:
        labels, vals, cis = [], [], []
        for row in fs["per_format"]:
            f = row["format"]
            labels.append(f"{f['mode']} {f['input_label']}/{f['output_label']} {f['separator']!r}")
            vals.append(row["accuracy"])
            cis.append(wilson_interval(row["accuracy"] * row["n"], row["n"]))
        fmt_plot = _plots.bars_with_ci(labels, vals, cis, "accuracy by format")
    costed = [
        (
            float(t["tokens_per_example"]),
            float(t["value"]),
            Prompt.from_dict(t["prompt"]).strategy.name,
        )
        for t in trials
        if t["state"] == "complete" and t.get("tokens_per_example") and t.get("prompt")
    ]
    cost = report.get("cost") or {}
    marks = [
        (float(cost[k]["val_tokens"]), float(cost[k]["val"]), k)
        for k in ("winner", "seed")
        if cost.get(k) and cost[k].get("val_tokens") and cost[k].get("val") is not None
    ]
    return {
        "cost": _plots.accuracy_vs_cost(costed, marks) if costed else None,
        "progress": _plots.best_vs_calls(points),
        "leaderboard": _plots.bars_with_ci(
            [f"{i + 1}. {r['instruction']}" for i, r in enumerate(lb[:10])],
            [r["val_mean"] for r in lb[:10]],
            [wilson_interval(r["val_mean"] * r["val_n"], r["val_n"]) for r in lb[:10]],
            "top candidates on validation",
        )
        if lb
        else None,
        "formats": fmt_plot,
    }


def write(out_dir: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    html_path.write_text(_html.render(report, plots_for(report)), encoding="utf-8")
    return html_path, json_path
