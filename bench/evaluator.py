"""Benchmark: how fast the embedded evaluator answers, side by side in one run.

On a generation task (default: APE negation, copy-heavy), one 3-shot prompt on N examples:

* naive   -- every prompt recomputed from scratch (``prefix_reuse=False``);
* reuse   -- the shared prefix (instruction + exemplars) kept in the KV cache;
* floor   -- the suffix-only floor: per-example suffix tokens and output tokens at the engine's
             measured prompt-eval and generation speeds (what an ideal prefix cache would cost);

On a classification task (default: BBH navigate), a zero-shot and a 3-shot prompt, each
answered by greedy generation (reuse) and by label scoring (``--decode labels``), with
accuracy and how often the scored label equals the label read from the generated answer.

Usage::

    python bench/evaluator.py [--model qwen2.5-coder-0.5b] [--n 50] \
        [--task ../shared/data/ape/negation.test.jsonl] \
        [--label-task ../shared/data/bbh/navigate.test.jsonl]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from promptlathe import Decoding, Evaluator, Exemplar, Prompt, get_metric
from promptlathe.lms import resolve_embedded
from promptlathe.lms._batching import common_prefix
from promptlathe.lms._llama import LlamaCppLM
from promptlathe.metrics import LabelMetric
from promptlathe.metrics._labels import label_set_of
from promptlathe.tasks import load_examples

REPO = Path(__file__).resolve().parents[1]


def _speeds(lm: LlamaCppLM, chunk: int) -> tuple[float, float]:
    """Prompt-eval tokens/s on ``chunk``-token pieces and generation tokens/s."""
    llm = lm._llm
    filler = llm.tokenize(b" The quick brown fox jumps over the lazy dog." * 40, add_bos=False)
    pieces = [filler[i : i + chunk] for i in range(0, chunk * 8, chunk)]
    llm.reset()
    t0 = time.perf_counter()
    for p in pieces:  # appended one after another, as suffixes are
        llm.eval(p)
    prompt_tps = chunk * len(pieces) / (time.perf_counter() - t0)
    llm.reset()
    t0 = time.perf_counter()
    out = llm.create_completion(
        "Count from one to one hundred in words:", max_tokens=48, temperature=0.0
    )
    gen_secs = time.perf_counter() - t0
    n_prompt = len(llm.tokenize(b"Count from one to one hundred in words:"))
    gen_tokens = out["usage"]["completion_tokens"]
    gen_tps = gen_tokens / max(1e-9, gen_secs - n_prompt / prompt_tps)
    return prompt_tps, gen_tps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--task", default=str(REPO.parent / "shared/data/ape/negation.test.jsonl"))
    ap.add_argument(
        "--label-task",
        nargs="+",
        default=[
            str(REPO.parent / f"shared/data/{t}.test.jsonl")
            for t in ("bbh/navigate", "bbh/snarks", "ape/word_in_context")
        ],
    )
    ap.add_argument("--skip-generation", action="store_true", help="only the label section")
    ap.add_argument("--max-tokens", type=int, default=32)
    args = ap.parse_args()
    if not args.skip_generation:
        generation(args)
    total = [0.0, 0.0]
    for task in args.label_task:
        tg, tl = labels(args, task)
        total[0] += tg
        total[1] += tl
    print(
        f"\nall label tasks: generate {total[0]:.1f} s, labels {total[1]:.1f} s, "
        f"{total[0] / total[1]:.2f}x (target >= 3x at equal accuracy, +-1 example in 100)"
    )


def generation(args: argparse.Namespace) -> None:

    examples = load_examples(args.task)
    shots, examples = examples[:3], examples[3 : 3 + args.n]
    prompt = Prompt(
        instruction="Negate the sentence.",
        exemplars=tuple(Exemplar(e.input, e.target) for e in shots),
    )
    metric, dec = get_metric("normalized"), Decoding(max_tokens=args.max_tokens)
    path = resolve_embedded(args.model)
    times: dict[str, float] = {}
    outputs: dict[str, list[str]] = {}
    accuracy: dict[str, float] = {}
    for name, reuse in (("naive", False), ("reuse", True)):
        lm = LlamaCppLM(path, name=args.model, n_ctx=2048, prefix_reuse=reuse)
        ev = Evaluator(lm, metric, dec)
        ev.evaluate(prompt, examples[:1])  # warm-up (page the weights in)
        lm._llm.reset()
        t0 = time.perf_counter()
        res = ev.evaluate(prompt, examples)
        times[name] = time.perf_counter() - t0
        outputs[name] = [r.output for r in res.records]
        accuracy[name] = res.mean
        if name == "reuse":
            toks = [lm._tokens(lm.render(ev.request(prompt, e.input))) for e in examples]
            prev = toks[-1]
            suffix = []
            for t in toks:
                suffix.append(len(t) - common_prefix(prev, t))
                prev = t
            out_tokens = sum(lm.count_tokens(o) for o in outputs[name])
            prompt_tps, gen_tps = _speeds(lm, max(1, round(sum(suffix) / len(suffix))))
            times["floor"] = sum(suffix) / prompt_tps + out_tokens / gen_tps
            prefix_len = common_prefix(toks[0], toks[1])
        lm.close()

    differ = sum(a != b for a, b in zip(outputs["naive"], outputs["reuse"], strict=True))
    print(
        f"model {args.model}, {len(examples)} examples, 3-shot, greedy, max_tokens "
        f"{args.max_tokens}; shared prefix {prefix_len} tokens, mean suffix "
        f"{sum(suffix) / len(suffix):.1f} tokens, {out_tokens} output tokens"
    )
    print(f"engine speeds: prompt eval {prompt_tps:.1f} tok/s, generation {gen_tps:.1f} tok/s")
    print(f"{'way':<8}{'seconds':>10}{'s/example':>12}{'vs naive':>10}{'vs floor':>10}")
    for name in ("naive", "reuse", "floor"):
        t = times[name]
        print(
            f"{name:<8}{t:>10.1f}{t / len(examples):>12.2f}{times['naive'] / t:>9.2f}x"
            f"{t / times['floor']:>9.2f}x"
        )
    print(
        f"greedy outputs that differ naive vs reuse: {differ} of {len(examples)} (llama.cpp "
        f"numerics depend on batch split); accuracy naive {accuracy['naive']:.3f}, "
        f"reuse {accuracy['reuse']:.3f}"
    )
    print(
        f"speed-up reuse vs naive: {times['naive'] / times['reuse']:.2f}x (target >= 4x); "
        f"reuse / floor: {times['reuse'] / times['floor']:.2f}x (target <= 1.25x)"
    )


def labels(args: argparse.Namespace, task: str) -> tuple[float, float]:
    """Greedy generation vs label scoring on a classification task, zero- and 3-shot."""
    examples = load_examples(task)
    labs = label_set_of([e.target for e in examples])
    if labs is None:
        raise SystemExit(f"{task}: not a classification task")
    shots, examples = examples[:3], examples[3 : 3 + args.n]
    metric = LabelMetric(labs)
    prompts = {
        "0-shot": Prompt(instruction="Answer with one of: " + ", ".join(labs) + "."),
        "3-shot": Prompt(
            instruction="Answer with one of: " + ", ".join(labs) + ".",
            exemplars=tuple(Exemplar(e.input, e.target) for e in shots),
        ),
    }
    lm = LlamaCppLM(resolve_embedded(args.model), name=args.model, n_ctx=4096)
    rows = []
    for pname, prompt in prompts.items():
        res = {}
        for way, chosen in (("generate", None), ("labels", labs)):
            ev = Evaluator(lm, metric, Decoding(max_tokens=args.max_tokens), labels=chosen)
            ev.evaluate(prompt, examples[:1])  # warm-up
            lm._llm.reset()
            t0 = time.perf_counter()
            r = ev.evaluate(prompt, examples)
            res[way] = (time.perf_counter() - t0, r)
        (tg, rg), (tl, rl) = res["generate"], res["labels"]
        agree = sum(a.answer == b.output for a, b in zip(rg.records, rl.records, strict=True))
        rows.append((pname, tg, tl, rg, rl, agree))
    lm.close()
    total_g = sum(r[1] for r in rows)
    total_l = sum(r[2] for r in rows)
    print(
        f"\nlabel scoring on {Path(task).name} ({len(labs)} labels), {len(examples)} "
        f"examples per prompt, generation max_tokens {args.max_tokens}"
    )
    print(
        f"{'prompt':<8}{'generate s':>11}{'labels s':>10}{'speed-up':>10}{'acc gen':>9}"
        f"{'acc lab':>9}{'agree':>8}{'gen tok/ex':>12}"
    )
    for pname, tg, tl, rg, rl, agree in rows:
        print(
            f"{pname:<8}{tg:>11.1f}{tl:>10.1f}{tg / tl:>9.2f}x{rg.mean:>9.3f}{rl.mean:>9.3f}"
            f"{agree:>5}/{len(examples)}{rg.completion_tokens / len(examples):>12.1f}"
        )
    print(
        f"both prompts: generate {total_g:.1f} s, labels {total_l:.1f} s, {total_g / total_l:.2f}x"
    )
    return total_g, total_l


if __name__ == "__main__":
    main()
