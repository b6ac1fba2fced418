"""``promptlathe check``: a CI gate on a saved prompt that knows about noise.

Exit 0 when the prompt passes, 1 when it fails, 2 on a usage or input error. The rules are
stated in the output: ``--min-accuracy X`` fails only when the prompt is credibly below X
(the 95 % upper Wilson bound is below it; ``--rule point`` compares the point estimate);
``--against OLD`` fails only when the prompt is significantly worse than OLD on the same
examples (paired exact McNemar test)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from xml.etree import ElementTree as ET

import typer

from promptlathe._stats import wilson_interval
from promptlathe.analysis import Comparison, compare
from promptlathe.artifact import load_prompt, model_from, read_saved
from promptlathe.cascade import evaluate_cascade_file, is_cascade, read_cascade
from promptlathe.cli._app import app
from promptlathe.cli._options import (
    BaseUrlOpt,
    CacheOpt,
    NCtxOpt,
    ParallelOpt,
    _check_output_file,
    _open_lm,
)
from promptlathe.errors import PromptlatheError
from promptlathe.evaluator import EvalResult, Evaluator, Record
from promptlathe.metrics import task_metric
from promptlathe.prompts import read_prompt_file
from promptlathe.reporting import err_console, out_console
from promptlathe.tasks import Example, TaskMeta, load_examples, read_meta

RULES = ("wilson", "point")


@app.command("check")
def check_cmd(
    prompt: Annotated[Path, typer.Option(help="The prompt JSON to check (e.g. best_prompt.json).")],
    task: Annotated[Path, typer.Option(help="Labeled examples (.jsonl/.csv) to check it on.")],
    min_accuracy: Annotated[
        float | None,
        typer.Option(help="Fail when the prompt is credibly below this accuracy.", min=0, max=1),
    ] = None,
    rule: Annotated[
        str,
        typer.Option(
            help="wilson: fail when the 95 % upper Wilson bound is below --min-accuracy (a small "
            "noisy set cannot fail a good prompt by chance); point: the plain accuracy."
        ),
    ] = "wilson",
    against: Annotated[
        Path | None,
        typer.Option(
            help="The prompt it replaces: fail when significantly worse on the same examples."
        ),
    ] = None,
    alpha: Annotated[
        float, typer.Option(help="Significance level of --against.", min=0.001, max=0.5)
    ] = 0.05,
    junit: Annotated[
        Path | None,
        typer.Option(help="Write a JUnit XML file: one test case per example, failures shown."),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(help="Metric (default: the prompt file's, else the task's, else auto)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Model (default: the embedded model named in the prompt file)."
        ),
    ] = None,
    base_url: BaseUrlOpt = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N examples.", min=1)] = None,
    n_ctx: NCtxOpt = 4096,
    parallel: ParallelOpt = 16,
    cache: CacheOpt = None,
) -> None:
    """Gate a prompt in CI: exit 0 (pass), 1 (fail) or 2 (usage or input error)."""
    if rule not in RULES:
        raise PromptlatheError(f"--rule {rule!r} is not one of {', '.join(RULES)}")
    if min_accuracy is None and against is None:
        raise PromptlatheError("give --min-accuracy, --against, or both (what should it pass?)")
    if junit is not None:
        _check_output_file(junit, "--junit")
    cascades = [p for p in (prompt, against) if p is not None and is_cascade(read_prompt_file(p))]
    if cascades:
        if model or base_url:
            raise PromptlatheError(
                f"{cascades[0]}: a cascade file names its steps' models; --model and "
                "--base-url do not apply to it"
            )
        read_cascade(cascades[0])  # every field checked before any model loads
        examples = load_examples(task)
        examples = examples[:limit] if limit else examples
        side = read_meta(task)
        result = _file_result(prompt, examples, metric, side, n_ctx, parallel, cache)
        old_result = (
            _file_result(against, examples, metric, side, n_ctx, parallel, cache)
            if against
            else None
        )
        _verdict(prompt, against, result, old_result, min_accuracy, rule, alpha, junit)
        return
    saved = read_saved(prompt)
    new, fields = saved.prompt, saved.fields
    old = load_prompt(against) if against else None
    examples = load_examples(task)
    examples = examples[:limit] if limit else examples
    meta = read_meta(task)
    scorer = task_metric(
        metric,
        fields.metric or meta.metric,
        prompt if fields.metric else meta.path,
        [e.target for e in examples],
    )
    labels = fields.labels_to_score
    lm = _open_lm(
        model or model_from(fields, prompt, base_url), base_url, n_ctx, cache, parallel=parallel
    )
    try:
        evaluator = Evaluator(lm, scorer, fields.decoding, lm.store, "check", labels=labels)
        result = evaluator.evaluate(new, examples)
        old_result = evaluator.evaluate(old, examples) if old is not None else None
    finally:
        lm.close()
    _verdict(prompt, against, result, old_result, min_accuracy, rule, alpha, junit)


def _verdict(
    prompt: Path,
    against: Path | None,
    result: EvalResult,
    old_result: EvalResult | None,
    min_accuracy: float | None,
    rule: str,
    alpha: float,
    junit: Path | None,
) -> None:
    """Apply the rules, print PASS or FAIL with the reasons, exit 1 on a failure."""
    lines, failed = [], False
    if min_accuracy is not None:
        ok, line = _accuracy_rule(result, min_accuracy, rule)
        failed |= not ok
        lines.append(line)
    if old_result is not None:
        assert against is not None
        cmp = compare(
            [r.score for r in result.records],
            [r.score for r in old_result.records],
            alpha=alpha,
            names=(prompt.name, against.name),
        )
        ok, line = _against_rule(cmp, against)
        failed |= not ok
        lines.append(line)
    if junit is not None:
        _write_junit(junit, prompt.name, result)
        err_console.print(f"wrote {junit}", markup=False, highlight=False)
    verdict = "FAIL" if failed else "PASS"
    out_console.print(
        f"{verdict}: " + "; ".join(lines), markup=False, highlight=False, soft_wrap=True
    )
    if failed:
        raise typer.Exit(1)


def _accuracy_rule(result: EvalResult, floor: float, rule: str) -> tuple[bool, str]:
    """Whether the accuracy passes ``floor`` under ``rule``, and the sentence saying so."""
    lo, hi = wilson_interval(sum(r.score for r in result.records), result.n)
    acc = f"accuracy {result.mean:.3f} [{lo:.3f}, {hi:.3f}] on {result.n} examples"
    if rule == "point":
        ok = result.mean >= floor
        return ok, f"{acc} is {'at or above' if ok else 'below'} {floor:g} (rule: point estimate)"
    ok = hi >= floor
    why = "not credibly below" if ok else "credibly below"
    return (
        ok,
        f"{acc} is {why} {floor:g} (rule: fail only when the 95 % upper Wilson bound is below it)",
    )


def _against_rule(cmp: Comparison, against: Path) -> tuple[bool, str]:
    worse = cmp.significant and cmp.diff < 0
    p_text = "p < 0.001" if cmp.mcnemar_p < 0.001 else f"p = {cmp.mcnemar_p:.3f}"
    p = f"exact McNemar {p_text}, α = {cmp.alpha:g}"
    if worse:
        return (
            False,
            f"significantly worse than {against.name} by {-cmp.diff * 100:.1f} points ({p})",
        )
    if cmp.significant:
        return (
            True,
            f"significantly better than {against.name} by {cmp.diff * 100:.1f} points ({p})",
        )
    return (
        True,
        f"not significantly different from {against.name} ({cmp.diff * 100:+.1f} points, {p})",
    )


def _write_junit(path: Path, name: str, result: EvalResult) -> None:
    """One test case per example; a failure (input, output, target) where it scored below 1."""
    failures = sum(r.score < 1.0 for r in result.records)
    suite = ET.Element(
        "testsuite",
        name=f"promptlathe check {name}",
        tests=str(result.n),
        failures=str(failures),
        errors="0",
    )
    for r in result.records:
        case = ET.SubElement(suite, "testcase", classname=name, name=r.example_id)
        if r.score < 1.0:
            fail = ET.SubElement(case, "failure", message=f"score {r.score:g}")
            fail.text = f"input: {r.input}\noutput: {r.output}\ntarget: {r.targets[0]}"
    root = ET.Element("testsuites")
    root.append(suite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise PromptlatheError(f"--junit {path}: cannot write it ({exc.strerror})") from None


def _file_result(
    path: Path,
    examples: list[Example],
    metric: str | None,
    meta: TaskMeta,
    n_ctx: int,
    parallel: int,
    cache: Path | None,
) -> EvalResult:
    """A prompt or cascade file's scores on ``examples``, each on the models it names;
    ``metric`` is the user's, else the file's, else the task sidecar's (``meta``)."""
    if is_cascade(read_prompt_file(path)):
        res = evaluate_cascade_file(
            path, examples, metric=metric, task_metric=meta.metric, n_ctx=n_ctx,
            parallel=parallel, cache=cache,
        )  # fmt: skip
        answers, scores = [a.answer for a in res.answers], res.scores
        name = f"cascade:{path.name}"
    else:
        saved = read_saved(path)
        fields = saved.fields
        scorer = task_metric(
            metric,
            fields.metric or meta.metric,
            path if fields.metric else meta.path,
            [e.target for e in examples],
        )
        lm = _open_lm(model_from(fields, path, None), None, n_ctx, cache, parallel=parallel)
        try:
            ev = Evaluator(lm, scorer, fields.decoding, labels=fields.labels_to_score)
            return ev.evaluate(saved.prompt, examples)
        finally:
            lm.close()
    records = [
        Record(example_id=e.id, input=e.input, prompt_hash=name, request_hash="", output=a,
               answer=a, targets=list(e.targets), score=sc)
        for e, a, sc in zip(examples, answers, scores, strict=True)
    ]  # fmt: skip
    return EvalResult(prompt_hash=name, records=records)
