"""Embedded llama.cpp backend (llama-cpp-python).

Prompts are rendered with the model's own chat template (read from the GGUF), tokenized once,
and generated greedily by default. Consecutive requests that share a prefix (instruction and
exemplars) reuse its KV state: llama.cpp keeps the previous sequence and only evaluates the
tokens after the longest common prefix, so evaluating one prompt over many inputs pays for the
shared part once.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from promptlathe._hashing import sha256_file
from promptlathe.errors import ModelError, PromptTooLongError
from promptlathe.lms._base import (
    LM,
    Generation,
    GenerationRequest,
    LabelChoice,
    LabelRequest,
    LMStats,
    Message,
    ScoreRequest,
    ScoreResult,
)
from promptlathe.lms._llama_batch import BatchedGenerator, check_parallel


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError:  # pragma: no cover - depends on the environment
        raise ModelError(
            "the embedded backend (llama-cpp-python) is not installed; install it with: "
            "pip install 'promptlathe[local]' (or use --base-url for a server)"
        ) from None
    return llama_cpp


CACHE_SALT = "v2"
"""Bumped when the way outputs are produced changes, so old cache entries are not reused."""
BATCHED_SALT = ":batched1"
"""Added to the cache identity of outputs decoded in batches (``parallel`` > 1)."""

_LIVE: weakref.WeakSet[LlamaCppLM] = weakref.WeakSet()


@atexit.register
def _close_live_models() -> None:
    """Close models still open at interpreter exit, while llama.cpp can still free them
    (otherwise ``Llama.__del__`` runs during shutdown and prints a traceback)."""
    for lm in list(_LIVE):
        lm.close()


class LlamaCppLM(LM):
    """A GGUF model run in-process by llama.cpp.

    Args:
        model_path: the GGUF file.
        name: a display name (the registry name when resolved from one).
        n_ctx: context window in tokens.
        n_threads: CPU threads (default: all cores).
        prefix_reuse: keep the KV state between requests and reuse the longest common prefix.
            ``False`` recomputes every prompt from scratch (for benchmarking the difference).
        score_ctx: context size of the separate log-probability scorer (created on first use;
            it keeps logits for every position, which costs ``score_ctx * vocab * 4`` bytes).
        parallel: sequences generated together in one context (continuous batching with the
            shared prefix decoded once, ``lms._batching``); 1 generates one request at a time.
            Batched kernels can break a near-tie differently, so a batched backend's cache
            identity says so.
    """

    can_score = True
    labels_in_one_pass = True
    embedded = True

    def __init__(
        self,
        model_path: str | Path,
        name: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        prefix_reuse: bool = True,
        score_ctx: int = 2048,
        verbose: bool = False,
        parallel: int = 1,
    ) -> None:
        llama_cpp = _import_llama()
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"{path}: GGUF file not found")
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise ModelError(f"{path}: not a GGUF file (bad magic bytes); the file is corrupt")
        self.path = path
        self.name = name or path.stem
        self.n_threads = n_threads or os.cpu_count() or 2
        self.prefix_reuse = prefix_reuse
        self.score_ctx = score_ctx
        self.verbose = verbose
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,  # its default is every core, even when sharing
                n_batch=512,
                verbose=verbose,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{path}: llama.cpp could not load the model ({exc})") from None
        self._scorer: Any = None
        self.context_window = n_ctx
        self.parallel = parallel
        if parallel > 1:  # the cache it needs, checked now, before any model work
            check_parallel(parallel, n_ctx, self._llm.metadata, self.name)
        self._batched: BatchedGenerator | None = None  # made on the first batched call
        # Requests handed over at once: twice the slots, so finished slots are refilled.
        self.max_batch = 1 if parallel == 1 else 2 * parallel
        self.stats = LMStats()
        self._formatter = self._make_formatter(llama_cpp)
        self.chat = self._formatter is not None
        # Identity for cache keys: the weights' bytes, the chat template that renders
        # messages, and a salt for changes in how outputs are produced.
        template = self._llm.metadata.get("tokenizer.chat_template") or ""
        tpl = hashlib.sha256(template.encode()).hexdigest()[:12]
        self.model_id = f"gguf:{self.name}:{sha256_file(path)[:32]}:tpl{tpl}:{CACHE_SALT}"
        if parallel > 1:
            self.model_id += BATCHED_SALT
        _LIVE.add(self)

    # ---- chat template ---------------------------------------------------------------------
    def _make_formatter(self, llama_cpp: Any) -> Any:
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def tok_text(tid: int) -> str:
            return (
                self._llm.detokenize([tid], special=True).decode("utf-8", "ignore")
                if tid >= 0
                else ""
            )

        return Jinja2ChatFormatter(
            template=template,
            eos_token=tok_text(self._llm.token_eos()),
            bos_token=tok_text(self._llm.token_bos()),
        )

    def render_chat(self, messages: Sequence[Message]) -> str:
        """The exact text the model sees for chat ``messages`` (with the generation prompt)."""
        if self._formatter is None:
            # No template in the GGUF: fall back to ChatML, the most common one.
            text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
            return text + "<|im_start|>assistant\n"
        return self._formatter(messages=list(messages)).prompt

    def render(self, request: GenerationRequest) -> str:
        if request.messages is not None:
            return self.render_chat(request.chat_messages)
        return request.prompt or ""

    def _tokens(self, text: str, add_bos: bool = True) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    # ---- LM protocol -----------------------------------------------------------------------
    def prompt_tokens(self, request: GenerationRequest) -> int | None:
        return len(self._tokens(self.render(request)))

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        if self.parallel > 1:
            return self.generate_each(requests, lambda i, gen: None)
        tokenized = [self._checked_tokens(r) for r in requests]  # all, before any decoding
        return [self._generate_one(r, t) for r, t in zip(requests, tokenized, strict=True)]

    def _checked_tokens(self, r: GenerationRequest) -> list[int]:
        tokens = self._tokens(self.render(r))
        if len(tokens) + r.max_tokens > self.context_window:
            raise PromptTooLongError(
                f"prompt is {len(tokens)} tokens + {r.max_tokens} to generate > context window "
                f"{self.context_window} of {self.name}; use fewer or shorter exemplars, or a "
                "larger --n-ctx"
            )
        return tokens

    def generate_each(
        self,
        requests: Sequence[GenerationRequest],
        on_done: Callable[[int, Generation], None],
    ) -> list[Generation]:
        if self.parallel == 1:
            return super().generate_each(requests, on_done)
        tokenized = [self._checked_tokens(r) for r in requests]  # all, before any decoding
        if self._batched is None:
            self._batched = BatchedGenerator(
                self._llm, self.parallel, self.context_window, self.n_threads
            )

        def finished(i: int, gen: Generation) -> None:
            self._count(gen)
            on_done(i, gen)

        return self._batched.generate(requests, tokenized, finished, self.name)

    def _count(self, gen: Generation) -> None:
        self.stats.calls += 1
        self.stats.prompt_tokens += gen.prompt_tokens
        self.stats.completion_tokens += gen.completion_tokens

    def _generate_one(self, r: GenerationRequest, tokens: list[int]) -> Generation:
        if not self.prefix_reuse:
            self._llm.reset()
        out = self._llm.create_completion(
            prompt=tokens,
            max_tokens=r.max_tokens,
            temperature=r.temperature,
            top_p=r.top_p,
            seed=r.seed,
            stop=list(r.stop) or None,
        )
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        gen = Generation(
            text=choice["text"],
            prompt_tokens=int(usage.get("prompt_tokens", len(tokens))),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason") or "stop",
        )
        self._count(gen)
        return gen

    # ---- evaluation at the KV-cache level -------------------------------------------------
    def _feed(self, tokens: list[int]) -> None:
        """Bring the KV state to ``tokens``, evaluating only what follows the longest common
        prefix with the current state; the logits after the last token are then row -1."""
        llm = self._llm
        if not self.prefix_reuse:
            llm.reset()
        n = llm.longest_token_prefix(llm.input_ids[: llm.n_tokens].tolist(), tokens)
        llm.n_tokens = min(n, len(tokens) - 1)  # re-evaluate at least one token for logits
        llm.eval(tokens[llm.n_tokens :])

    def _row(self, i: int) -> np.ndarray:
        ptr = self._llm._ctx.get_logits_ith(i)
        return np.ctypeslib.as_array(ptr, shape=(self._llm.n_vocab(),))

    def _decode_rows(self, tokens: list[int]) -> np.ndarray:
        """Evaluate ``tokens`` after the current state in one batch; the logits after each."""
        llm = self._llm
        n_past = llm.n_tokens
        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        b = llm._batch.batch
        b.n_tokens = len(tokens)
        for i, t in enumerate(tokens):
            b.token[i] = t
            b.pos[i] = n_past + i
            b.seq_id[i][0] = 0
            b.n_seq_id[i] = 1
            b.logits[i] = True
        llm._ctx.decode(llm._batch)
        llm.input_ids[n_past : n_past + len(tokens)] = tokens
        llm.n_tokens = n_past + len(tokens)
        return np.stack([self._row(i) for i in range(len(tokens))])

    # ---- label choice ----------------------------------------------------------------------
    def choose(self, requests: Sequence[LabelRequest]) -> list[LabelChoice]:
        return [self._choose_one(r) for r in requests]

    def _choose_one(self, r: LabelRequest) -> LabelChoice:
        """The exact argmax over labels of their summed log-probability, in one pass over the
        prompt: the first token's log-probability (read off the prompt's last position) bounds
        each label's total from above, so labels are scored best bound first, each in one
        batch, until the best total beats every remaining bound."""
        text = self.render_chat(r.chat_messages) if r.messages is not None else (r.prompt or "")
        tokens = self._tokens(text)
        seqs = self._label_tokens(r)
        if len(tokens) + max(len(s) for s in seqs) > self.context_window:
            raise PromptTooLongError(
                f"prompt is {len(tokens)} tokens + its longest label > context window "
                f"{self.context_window} of {self.name}; use fewer or shorter exemplars, or a "
                "larger --n-ctx"
            )
        self._feed(tokens)
        base = self._llm.n_tokens
        first = _log_softmax(self._row(-1))
        bound = [float(first[s[0]]) for s in seqs]
        exact: list[float | None] = [None] * len(seqs)
        evaluated = 0
        while True:
            i = max(
                range(len(seqs)),
                key=lambda k: (exact[k] if exact[k] is not None else bound[k], -k),
            )
            if exact[i] is not None:
                break
            if len(seqs[i]) == 1:
                exact[i] = bound[i]
                break
            self._llm.n_tokens = base
            rows = self._decode_rows(list(seqs[i][:-1]))
            evaluated += len(seqs[i]) - 1
            lps = [float(_log_softmax(row)[t]) for row, t in zip(rows, seqs[i][1:], strict=True)]
            exact[i] = bound[i] + sum(lps)
        self._llm.n_tokens = base
        self.stats.calls += 1
        self.stats.prompt_tokens += len(tokens)
        self.stats.completion_tokens += evaluated
        return LabelChoice(
            index=i,
            logprobs=exact,
            prompt_tokens=len(tokens),
            completion_tokens=evaluated,
            upper_bounds=bound,
        )

    def _label_tokens(self, r: LabelRequest) -> list[tuple[int, ...]]:
        """Each label's tokens; with the end of the answer (end of turn in chat, a newline in
        text) when its tokens begin another label's."""
        end = (
            [self._llm.token_eos()]
            if r.messages is not None
            else self._llm.tokenize(b"\n", add_bos=False, special=False)
        )
        seqs = [
            tuple(self._llm.tokenize(lab.encode("utf-8"), add_bos=False, special=False))
            for lab in r.labels
        ]
        return [
            s + tuple(end) if not s or any(o != s and o[: len(s)] == s for o in seqs) else s
            for s in seqs
        ]

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        return [self._score_one(r) for r in requests]

    def _score_one(self, r: ScoreRequest) -> ScoreResult:
        scorer = self._get_scorer()
        context = self.render_chat(r.chat_messages) if r.messages is not None else (r.prompt or "")
        ctx_tokens = self._tokens(context) if context else []
        if not ctx_tokens:
            bos = self._llm.token_bos()
            ctx_tokens = [bos] if bos >= 0 else []
        cont_tokens = self._llm.tokenize(
            r.continuation.encode("utf-8"), add_bos=False, special=False
        )
        if r.end_of_text:
            cont_tokens.append(self._llm.token_eos())
        tokens = ctx_tokens + cont_tokens
        if len(tokens) > self.score_ctx:
            raise PromptTooLongError(
                f"scoring needs {len(tokens)} tokens > scorer context {self.score_ctx}"
            )
        # Without any context token the first continuation token has no prediction: skip it.
        first = max(1, len(ctx_tokens))
        scorer.reset()
        scorer.eval(tokens)
        # Only the rows that predict continuation tokens, converted to float64 (not the whole
        # prompt x vocabulary matrix: ~1.8 GB for a 1,500-token prompt).
        rows = np.asarray(scorer.scores[first - 1 : len(tokens) - 1], dtype=np.float64)
        lse = np.log(np.exp(rows - rows.max(axis=1, keepdims=True)).sum(axis=1)) + rows.max(axis=1)
        picked = rows[np.arange(len(rows)), tokens[first:]]
        return ScoreResult(logprob=float((picked - lse).sum()), n_tokens=len(tokens) - first)

    def set_threads(self, n: int) -> None:
        """Use ``n`` CPU threads from now on (e.g. while other processes share the cores)."""
        self.n_threads = n
        for llm in (self._llm, self._scorer):
            if llm is not None:
                llm._ctx.set_n_threads(n, n)  # llama-cpp-python has no public setter
        if self._batched is not None:
            self._batched.decoder.set_threads(n)

    def _get_scorer(self) -> Any:
        if self._scorer is None:
            llama_cpp = _import_llama()
            self._scorer = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=self.score_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_batch=512,
                logits_all=True,
                verbose=self.verbose,
            )
        return self._scorer

    def close(self) -> None:
        if self._batched is not None:
            self._batched.decoder.close()
            self._batched = None
        for llm in (self._llm, self._scorer):
            if llm is not None:
                with contextlib.suppress(Exception):
                    llm.close()
        self._scorer = None
        _LIVE.discard(self)


def _log_softmax(row: np.ndarray) -> np.ndarray:
    x = np.asarray(row, dtype=np.float64)
    m = x.max()
    return x - (m + np.log(np.exp(x - m).sum()))
