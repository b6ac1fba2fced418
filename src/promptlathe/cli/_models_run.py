"""``promptlathe optimize --models SMALL,LARGE``: a prompt per model, then a cascade over them.

Each model gets its own run (``OUT/<model>/``, resumable on its own) with an equal share of
the call budget; then the winners become the steps of a cascade whose thresholds are fitted
on the runs' validation split, judged on their confirmation split (both the same examples for
every model: the split depends on the task and the seed only) and reported on the test split.
The cascade's own calls (each winner on validation and confirmation) mostly come from the
runs' caches; the ones that do not are counted and printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape

from promptlathe.artifact import read_saved
from promptlathe.cascade import Step, fit_cascade, parse_costs, price_for, write_cascade
from promptlathe.cascade._file import step_prompt
from promptlathe.cli._steps import open_evaluators, parse_servers
from promptlathe.errors import PromptlatheError
from promptlathe.lms import MODELS, CachedLM
from promptlathe.metrics import get_metric
from promptlathe.reporting import err_console


def parse_models(spec: str) -> list[str]:
    """``SMALL,LARGE[,...]``: two or more distinct model names."""
    models = [m.strip() for m in spec.split(",") if m.strip()]
    if len(models) < 2:
        raise PromptlatheError(f"--models {spec!r}: a cascade needs at least two models")
    if len(set(models)) != len(models):
        raise PromptlatheError(f"--models {spec!r}: a model is named twice")
    return models


def check_models(
    models: list[str], costs: list[str], servers: list[str], base_url: str | None
) -> tuple[dict[str, str], dict[str, Any]]:
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


def optimize_models(
    settings: dict[str, Any],
    run_opts: dict[str, Any],
    models: list[str],
    servers: dict[str, str],
    prices: dict[str, Any],
    run_one: Any,
) -> None:
    """Run ``run_one(settings, run_opts)`` once per model, then fit and write the cascade
    (``OUT/cascade.json``)."""
    from promptlathe.optimizers import OptimizeConfig

    out = Path(settings["out"])
    total = OptimizeConfig(**settings).budget_calls
    share = total // len(models)
    err_console.print(
        f"[bold]cascade plan[/bold]: {len(models)} models, {share} calls each of {total} "
        f"(one run per model under {escape(str(out))}/), then thresholds fitted on validation, "
        "judged on confirmation, test answered once",
        highlight=False,
    )
    for m in models:
        p = prices[m]
        err_console.print(
            f"  {escape(m)}: {p.input:g} per million input tokens, {p.output:g} per million "
            f"output tokens ({p.source})",
            highlight=False,
        )
    runs = []
    for m in models:
        sub = {**settings, "model": m, "out": str(out / _dirname(m)), "budget_calls": share}
        if m in servers:
            sub["base_url"] = servers[m]
        runs.append(run_one(sub, run_opts))
    steps, prompts, caches = [], [], []
    for m, (result, _split) in zip(models, runs, strict=True):
        saved = read_saved(result.best_prompt_path)
        steps.append(Step(m, saved, prices[m], base_url=servers.get(m)))
        prompts.append(step_prompt(result.best_prompt_path))
        caches.append(result.run_dir / "calls.sqlite")
    _result, split = runs[0]
    metric = (
        get_metric(steps[0].saved.fields.metric, steps[0].saved.fields.labels, allow_code=False)
        if settings.get("metric") is None
        else get_metric(settings["metric"])
    )
    n_ctx, parallel = settings.get("n_ctx", 4096), settings.get("parallel", 16)
    with open_evaluators(steps, metric, n_ctx, parallel, caches) as evaluators:
        fitted = fit_cascade(
            steps, evaluators, metric, split["val"], split["confirm"], split["test"]
        )
        lms = {id(ev.lm): ev.lm for ev in evaluators}
        calls = sum(lm.stats.calls for lm in lms.values() if isinstance(lm, CachedLM))
    from promptlathe.cli.cascade import print_fitted

    print_fitted(fitted, len(split["val"]))
    err_console.print(
        f"cascade fitting: {calls} model calls not in the runs' caches", highlight=False
    )
    kept = [fitted.steps[s] for s in fitted.kept.steps]
    by_step = {id(s): p for s, p in zip(steps, prompts, strict=True)}
    path = out / "cascade.json"
    write_cascade(
        path, kept, [by_step[id(s)] for s in kept], list(fitted.kept.thresholds),
        metric=metric.name, kept=fitted.describe(fitted.kept), verdict=fitted.verdict(),
        judge=fitted.judge, test=fitted.test,
    )  # fmt: skip
    err_console.print(f"wrote {path}", markup=False)


def _dirname(model: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in model)
