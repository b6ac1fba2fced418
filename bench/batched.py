"""Benchmark: batched decoding (``--parallel``) against one request at a time, in one run.

Four workloads through the real evaluator on the default model, each answered by:

* reuse   -- one request at a time, the shared prefix kept in the KV cache (``parallel=1``);
* batched -- continuous batching, ``--parallel P`` sequences in one context;

and, on the generation task, also ``naive`` (every prompt recomputed) and the suffix-only
``floor`` of bench/evaluator.py. The workloads: (a) a generation task (APE negation, 3
shots), (b) chain of thought on GSM8K (256 reasoning tokens), (c) self-consistency k=5 on a
BBH task, (d) a label task answered by generation (and, for reference, by label scoring,
which batching does not touch). For each: seconds, the speed-up over reuse, accuracy, how
many answers equal reuse's, and throughput against the machine's compute roofline -- the
tokens per second of one large prefill batch (512 prompt tokens in one call, the most work
per second llama.cpp does on these cores). "computed" counts the tokens a way must run
through the model: each prompt's tokens after the prefix it shares with the others, plus
every generated token.

Usage::

    python bench/batched.py [--model qwen2.5-coder-0.5b] [--parallel 16] [--n 40] \
        [--cot-n 16] [--sc-n 8] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from promptlathe import Decoding, Evaluator, Exemplar, Prompt, get_metric
from promptlathe.lms import resolve_embedded
from promptlathe.lms._batching import common_prefix
from promptlathe.lms._llama import LlamaCppLM
from promptlathe.metrics import LabelMetric, Metric
from promptlathe.metrics._labels import label_set_of
from promptlathe.prompts import StrategySpec
from promptlathe.tasks import Example, load_examples

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Way:
    name: str
    seconds: float
    accuracy: float
    answers: list[str]
    generated: int
    computed: int


def roofline(lm: LlamaCppLM) -> float:
    """Tokens per second of one 512-token prefill call (no logits but the last)."""
    llm = lm._llm
    filler = llm.tokenize(b" The quick brown fox jumps over the lazy dog." * 60, add_bos=False)
    llm.reset()
    llm.eval(filler[:64])  # warm-up
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(filler[:512])
    secs = time.perf_counter() - t0
    llm.reset()
    return 512 / secs


def run_way(
    name: str,
    lm: LlamaCppLM,
    prompt: Prompt,
    examples: list[Example],
    metric: Metric,
    decoding: Decoding,
    labels: list[str] | None = None,
) -> Way:
    ev = Evaluator(lm, metric, decoding, labels=labels)
    ev.evaluate(prompt, examples[:1])  # warm-up: page the weights in
    t0 = time.perf_counter()
    res = ev.evaluate(prompt, examples[1:])
    secs = time.perf_counter() - t0
    rest = examples[1:]
    toks = [lm._tokens(lm.render(ev.request(prompt, e.input))) for e in rest[:2]]
    shared = common_prefix(toks[0], toks[1]) if len(toks) == 2 else 0
    calls = max(1, res.calls) // max(1, len(rest))  # requests per example (k for samples)
    computed = res.prompt_tokens - shared * calls * len(rest) + res.completion_tokens
    return Way(
        name,
        secs,
        res.mean,
        [r.output for r in res.records],
        res.completion_tokens,
        computed,
    )


def table(title: str, ways: list[Way], roof: float, floor: float | None = None) -> None:
    base = next(w for w in ways if w.name == "reuse")
    n = len(base.answers)
    print(f"\n{title}")
    print(
        f"{'way':<9}{'seconds':>9}{'vs reuse':>10}{'accuracy':>10}{'same outputs':>14}"
        f"{'generated':>11}{'gen tok/s':>11}{'computed tok/s':>16}{'of roofline':>13}"
    )
    for w in ways:
        same = sum(a == b for a, b in zip(w.answers, base.answers, strict=True))
        print(
            f"{w.name:<9}{w.seconds:>9.1f}{base.seconds / w.seconds:>9.2f}x{w.accuracy:>10.3f}"
            f"{same:>9}/{n:<4}{w.generated:>11}{w.generated / w.seconds:>11.1f}"
            f"{w.computed / w.seconds:>16.1f}{w.computed / w.seconds / roof:>12.0%}"
        )
    if floor is not None:
        print(f"{'floor':<9}{floor:>9.1f}{base.seconds / floor:>9.2f}x   (suffix-only floor)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--n", type=int, default=40, help="examples of (a) and (d)")
    ap.add_argument("--cot-n", type=int, default=16, help="examples of (b)")
    ap.add_argument("--sc-n", type=int, default=8, help="examples of (c), 5 samples each")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--sc-task", default="bbh/logical_deduction_three_objects")
    ap.add_argument("--label-task", default="bbh/navigate")
    ap.add_argument("--only", default="abcd", help="workloads to run (default: all four)")
    args = ap.parse_args()
    data = Path(args.data)
    path = resolve_embedded(args.model)
    lms = {
        "naive": LlamaCppLM(path, name=args.model, n_ctx=2048, prefix_reuse=False),
        "reuse": LlamaCppLM(path, name=args.model, n_ctx=2048),
        "batched": LlamaCppLM(path, name=args.model, n_ctx=2048, parallel=args.parallel),
    }
    roof = roofline(lms["reuse"])
    print(
        f"model {args.model}, parallel {args.parallel}; compute roofline (one 512-token "
        f"prefill call): {roof:.1f} tok/s"
    )

    if "a" in args.only:
        workload_a(args, data, lms, roof)
    if "b" in args.only:
        workload_b(args, data, lms, roof)
    if "c" in args.only:
        workload_c(args, data, lms, roof)
    if "d" in args.only:
        workload_d(args, data, lms, roof)
    for lm in lms.values():
        lm.close()
    print(
        "\ntargets: batched >= 2x reuse on (a), >= 2.5x on (b) and (c), accuracy within 1 "
        "example in 100, >= 98 % same greedy answers; batched >= 60 % of the roofline on (b)"
    )


LMs = dict[str, LlamaCppLM]


def workload_a(args: argparse.Namespace, data: Path, lms: LMs, roof: float) -> None:
    """(a) generation: negation, 3 shots."""
    ex = load_examples(data / "ape" / "negation.test.jsonl")
    shots, ex = ex[:3], ex[3 : 4 + args.n]
    prompt = Prompt("Negate the sentence.", tuple(Exemplar(e.input, e.target) for e in shots))
    metric = get_metric("normalized")

    dec = Decoding(max_tokens=32)
    ways = [run_way(w, lms[w], prompt, ex, metric, dec) for w in ("naive", "reuse", "batched")]
    reuse = ways[1]
    # the suffix-only floor: computed tokens at the roofline's speed for prompt tokens and at
    # one-sequence decoding speed for generated ones (what an ideal prefix cache costs)
    single = _decode_speed(lms["reuse"])
    floor = (reuse.computed - reuse.generated) / roof + reuse.generated / single
    table(f"(a) APE negation, 3 shots, {len(ex) - 1} examples, max_tokens 32", ways, roof, floor)


def workload_b(args: argparse.Namespace, data: Path, lms: LMs, roof: float) -> None:
    """(b) chain of thought on GSM8K, 256 reasoning tokens."""
    gsm = load_examples(data / "gsm8k" / "gsm8k.test.jsonl")[: args.cot_n + 1]
    cot = Prompt("Solve the math word problem.", strategy=StrategySpec("cot"))
    num = get_metric("numeric_exact_match")

    dec = Decoding(reasoning_tokens=256)
    ways = [run_way(w, lms[w], cot, gsm, num, dec) for w in ("reuse", "batched")]
    table(f"(b) GSM8K, chain of thought (256 tokens), {len(gsm) - 1} examples", ways, roof)


def workload_c(args: argparse.Namespace, data: Path, lms: LMs, roof: float) -> None:
    """(c) self-consistency k=5 on a BBH task."""
    suite, task = args.sc_task.split("/")
    bbh = load_examples(data / suite / f"{task}.test.jsonl")[: args.sc_n + 1]
    sc = Prompt(
        "Answer the question. End with 'So the answer is X.'",
        strategy=StrategySpec("self_consistency", 5),
    )
    sc_metric = get_metric(None, [e.target for e in bbh])

    dec = Decoding(reasoning_tokens=256)
    ways = [run_way(w, lms[w], sc, bbh, sc_metric, dec) for w in ("reuse", "batched")]
    table(f"(c) {args.sc_task}, self-consistency k=5, {len(bbh) - 1} examples", ways, roof)


def workload_d(args: argparse.Namespace, data: Path, lms: LMs, roof: float) -> None:
    """(d) a label task, answered by generation; label scoring for reference."""
    suite, task = args.label_task.split("/")
    lab = load_examples(data / suite / f"{task}.test.jsonl")
    labels = label_set_of([e.target for e in lab])
    assert labels is not None, f"{args.label_task}: not a classification task"
    shots, lab = lab[:3], lab[3 : 4 + args.n]
    lp = Prompt(
        "Answer with one of: " + ", ".join(labels) + ".",
        tuple(Exemplar(e.input, e.target) for e in shots),
    )
    lmetric = LabelMetric(labels)

    dec = Decoding(max_tokens=32)
    ways = [run_way(w, lms[w], lp, lab, lmetric, dec) for w in ("reuse", "batched")]

    ways.append(run_way("labels", lms["reuse"], lp, lab, lmetric, dec, labels))
    table(f"(d) {args.label_task}, 3 shots, {len(lab) - 1} examples", ways, roof)


def _decode_speed(lm: LlamaCppLM) -> float:
    """One sequence's generation speed (tokens/s) after a short prompt."""
    llm = lm._llm
    llm.reset()
    t0 = time.perf_counter()
    out = llm.create_completion("Count from one to fifty in words:", max_tokens=48)
    secs = time.perf_counter() - t0
    llm.reset()
    return int(out["usage"]["completion_tokens"]) / secs


if __name__ == "__main__":
    main()
