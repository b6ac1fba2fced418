"""A prompt per model, then a cascade over them (``optimize --models SMALL,LARGE``).

Each model gets its own run (``OUT/<model>/``, resumable on its own) with an equal share of
the call budget; then the winners, each with its run's cheaper prompt when it has one
(:mod:`._cheaper`), become the steps of a cascade whose thresholds are fitted on the runs'
validation split, judged on their confirmation split (the same examples for every model: the
split depends on the task and the seed only) and reported on the test split. The cascade's
own calls (each step on validation and confirmation) mostly come from the runs' caches; the
ones that do not are counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from promptlathe.artifact import read_saved
from promptlathe.cascade._answers import Step
from promptlathe.cascade._cheaper import Cheaper, cheaper_prompt
from promptlathe.cascade._file import step_prompt, write_cascade
from promptlathe.cascade._fit import Fitted, Say, fit_cascade
from promptlathe.cascade._open import open_evaluators
from promptlathe.errors import PromptlatheError
from promptlathe.lms import MODELS, CachedLM
from promptlathe.lms._price import Price, parse_costs, price_for
from promptlathe.metrics import get_metric
from promptlathe.optimizers import Optimization, OptimizeConfig, OptimizeResult, parse_chain
from promptlathe.tasks import Example

RunOne = Callable[[dict[str, Any]], tuple[OptimizeResult, dict[str, list[Example]]]]
"""Runs one model's optimization from its settings; returns its result and its ``val``,
``confirm`` and ``test`` examples."""


def parse_models(spec: str) -> list[str]:
    """``SMALL,LARGE[,...]``: two or more distinct model names."""
    models = [m.strip() for m in spec.split(",") if m.strip()]
    if len(models) < 2:
        raise PromptlatheError(f"--models {spec!r}: a cascade needs at least two models")
    if len(set(models)) != len(models):
        raise PromptlatheError(f"--models {spec!r}: a model is named twice")
    return models


def parse_servers(specs: Sequence[str], option: str = "--server") -> dict[str, str]:
    """``["NAME=URL", ...]`` as URLs by model name (one line naming a malformed entry)."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, url = spec.partition("=")
        if not sep or not name.strip() or not url.strip().startswith(("http://", "https://")):
            raise PromptlatheError(f"{option} {spec!r}: expected NAME=http(s)://host:port/v1")
        out[name.strip()] = url.strip()
    return out


def check_models(
    models: list[str], costs: Sequence[str], servers: Sequence[str], base_url: str | None
) -> tuple[dict[str, str], dict[str, Price]]:
    """Every model runnable and priced, checked before any model loads: (servers by model,
    prices by model)."""
    if base_url:
        raise PromptlatheError(
            "--base-url names one server; with --models give each served model its own "
            "(--server NAME=URL)"
        )
    by_server = parse_servers(servers)
    prices = parse_costs(costs)
    for m in models:
        if m not in MODELS and m not in by_server:
            raise PromptlatheError(
                f"--models: {m!r} is not an embedded model; say which server runs it "
                f"(--server {m}=http://host:port/v1)"
            )
        price_for(m, prices)
    extra = (set(by_server) | set(prices)) - set(models)
    if extra:
        raise PromptlatheError(f"--server/--cost: {sorted(extra)[0]!r} is not in --models")
    return by_server, {m: price_for(m, prices) for m in models}


@dataclass
class CascadeRun:
    """What :func:`optimize_models` did: each model's run, the fitted cascade, the calls the
    fitting made outside the runs' caches, the cascade file written, and the cheaper prompts
    offered as steps."""

    runs: dict[str, OptimizeResult]
    fitted: Fitted
    fit_calls: int
    path: Path
    offered: dict[str, Cheaper] = field(default_factory=dict)
    """Each model's cheaper prompt offered as a step, by model (none: not offered)."""

    def offered_lines(self) -> list[str]:
        """A line per cheaper prompt offered, naming both of its model's steps."""
        out = []
        for m, c in self.offered.items():
            win = self.runs[m].best_prompt.hash[:8]
            out.append(
                f"{m}: beside its winner ({win}, {c.winner_tokens:.0f} tokens per example), "
                f"its cheaper prompt ({c.prompt.hash[:8]}, {c.tokens:.0f} tokens per example, "
                f"{c.val:.3f} on {c.val_n} validation examples) was a step too"
            )
        return out


def plan_lines(
    settings: dict[str, Any], models: Sequence[str], prices: dict[str, Price]
) -> list[str]:
    """What the multi-model run will do, for printing first (a stage name that is not
    registered is one line before it)."""
    cfg = OptimizeConfig(**settings)
    parse_chain(cfg.optimizer)
    total = cfg.budget_calls
    cost = (
        ""
        if cfg.budget_cost is None
        else f" and at most {cfg.budget_cost / len(models):.6g} of {cfg.budget_cost:g} in cost"
    )
    lines = [
        f"{len(models)} models, {total // len(models)} calls each of {total}{cost} (one run "
        f"per model under {settings['out']}/), then thresholds fitted on validation, judged "
        "on confirmation, test answered once; each run's cheaper prompt (at most half its "
        "winner's tokens per example) is offered as a step too"
    ]
    for m in models:
        p = prices[m]
        lines.append(
            f"{m}: {p.input:g} per million input tokens, {p.output:g} per million output "
            f"tokens ({p.source})"
        )
    return lines


def run_plain(
    settings: dict[str, Any], resume: bool = False
) -> tuple[OptimizeResult, dict[str, list[Example]]]:
    """One model's run, as :func:`promptlathe.optimize` does it (``resume``: continue the
    run already in its directory, if there is one)."""
    run = Optimization(OptimizeConfig(**settings), resume=resume)
    try:
        result = run.run()
        return result, {"val": run.split.val, "confirm": run.confirm, "test": run.test}
    finally:
        run.close()


def optimize_models(
    settings: dict[str, Any],
    models: list[str],
    *,
    servers: dict[str, str] | None = None,
    prices: dict[str, Price] | None = None,
    run_one: RunOne = run_plain,
    say: Say = lambda _stage, _done, _total: None,
    max_cost: float | None = None,
    cheaper: bool = True,
) -> CascadeRun:
    """Optimize a prompt for each of ``models`` (``settings`` as :class:`OptimizeConfig`
    takes them; ``budget_calls``, and ``budget_cost`` if given, are shared equally), then
    fit, judge and write the cascade (``OUT/cascade.json``).

    Args:
        settings: the run's settings; ``out`` is the parent of the per-model runs.
        models: two or more model names (embedded, or served: see ``servers``).
        servers: the base URL of each served model.
        prices: each model's price (default: declared nowhere, so embedded defaults).
        run_one: runs one model's optimization (the CLI's shows progress and a report).
        say: ``say(stage, done, total)`` while the steps answer the splits.
        max_cost: fit the most accurate cascade within this mean cost per input (default:
            the cheapest as accurate as the best).
        cheaper: offer, beside each model's winner, the best prompt of its run that costs at
            most half the winner's tokens per example (see :mod:`._cheaper`).
    """
    servers = servers or {}
    prices = prices or {m: price_for(m, {}) for m in models}
    out = Path(settings["out"])
    cfg = OptimizeConfig(**settings)
    share = cfg.budget_calls // len(models)
    runs: dict[str, tuple[OptimizeResult, dict[str, list[Example]]]] = {}
    configs: dict[str, OptimizeConfig] = {}
    for m in models:
        sub = {**settings, "model": m, "out": str(out / _dirname(m)), "budget_calls": share}
        if cfg.budget_cost is not None:  # an equal share of the cost too, each call priced
            sub["budget_cost"] = cfg.budget_cost / len(models)
            sub["prices"] = {
                **cfg.prices, **{n: [p.input, p.output] for n, p in prices.items()}
            }  # fmt: skip
        if m in servers:
            sub["base_url"] = servers[m]
        runs[m] = run_one(sub)
        configs[m] = OptimizeConfig(**sub)
    steps, prompts, caches = [], [], []
    offered: dict[str, Cheaper] = {}
    for m, (result, _split) in runs.items():
        saved, file = read_saved(result.best_prompt_path), step_prompt(result.best_prompt_path)
        cache = result.run_dir / "calls.sqlite"
        cheap = cheaper_prompt(result, configs[m]) if cheaper else None
        if cheap is not None:
            offered[m] = cheap
            steps.append(Step(m, replace(saved, prompt=cheap.prompt), prices[m], servers.get(m)))
            prompts.append(cheap.prompt_file(file))
            caches.append(cache)
        steps.append(Step(m, saved, prices[m], servers.get(m)))
        prompts.append(file)
        caches.append(cache)
    split = runs[models[0]][1]
    fields = steps[0].saved.fields
    metric = (
        get_metric(settings["metric"])
        if settings.get("metric")
        else get_metric(fields.metric, fields.labels, allow_code=False)
    )
    n_ctx, parallel = settings.get("n_ctx", 4096), settings.get("parallel", 16)
    with open_evaluators(steps, metric, n_ctx, parallel, caches) as evaluators:
        fitted = fit_cascade(
            steps, evaluators, metric, split["val"], split["confirm"], split["test"], say=say,
            max_cost=max_cost,
        )  # fmt: skip
        lms = {id(ev.lm): ev.lm for ev in evaluators}
        calls = sum(lm.stats.calls for lm in lms.values() if isinstance(lm, CachedLM))
    by_step = {id(s): p for s, p in zip(steps, prompts, strict=True)}
    path = out / "cascade.json"
    write_cascade(
        path, fitted.steps, [by_step[id(s)] for s in fitted.steps], fitted.kept,
        **fitted.record(metric.name),
    )  # fmt: skip
    return CascadeRun({m: r for m, (r, _) in runs.items()}, fitted, calls, path, offered)


def _dirname(model: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in model)
