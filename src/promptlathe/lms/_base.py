"""The LM protocol: typed requests and responses, and the abstract backend."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from promptlathe.errors import CannotScoreError

Message = dict[str, str]
FrozenMessages = tuple[tuple[tuple[str, str], ...], ...]


def _freeze(messages: Sequence[Message]) -> FrozenMessages:
    """Chat messages as nested tuples, so requests are hashable and compare by content."""
    return tuple(tuple(sorted(m.items())) for m in messages)


def _thaw(messages: FrozenMessages | None) -> list[Message]:
    return [dict(m) for m in messages or ()]


class _Context:
    """What a request is conditioned on: chat ``messages`` or a text ``prompt``."""

    messages: FrozenMessages | None
    prompt: str | None

    @property
    def chat_messages(self) -> list[Message]:
        return _thaw(self.messages)

    def _payload(self) -> dict[str, Any]:
        d = asdict(self)  # type: ignore[call-overload]
        d["messages"] = self.chat_messages if self.messages is not None else None
        return d


@dataclass(frozen=True)
class GenerationRequest(_Context):
    """One generation call. Exactly one of ``messages`` (chat) or ``prompt`` (text) is set.

    Attributes:
        messages: chat messages as ``({"role":..., "content":...}, ...)``.
        prompt: raw text for completion endpoints.
        max_tokens: generation length cap.
        temperature: 0 means greedy decoding (the default).
        top_p: nucleus sampling (ignored when greedy).
        seed: sampling seed, recorded even when greedy.
        stop: strings that end the output (not included in it).
    """

    messages: FrozenMessages | None = None
    prompt: str | None = None
    max_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()

    @classmethod
    def chat(cls, messages: Sequence[Message], **params: Any) -> GenerationRequest:
        return cls(messages=_freeze(messages), **params)

    @classmethod
    def text(cls, prompt: str, **params: Any) -> GenerationRequest:
        return cls(prompt=prompt, **params)

    def payload(self) -> dict[str, Any]:
        """JSON-able content of the request (what the cache key covers)."""
        d = self._payload()
        d["stop"] = list(self.stop)
        return d


@dataclass(frozen=True)
class ScoreRequest(_Context):
    """Log-probability of ``continuation`` following a context (chat messages or text).

    With chat ``messages`` the continuation is scored as the assistant's reply.
    """

    continuation: str
    messages: FrozenMessages | None = None
    prompt: str | None = None
    end_of_text: bool = False
    """Also score the model's end-of-text token after the continuation, so that the
    probabilities of all finished texts sum to at most 1 (a distribution over texts)."""

    @classmethod
    def chat(cls, messages: Sequence[Message], continuation: str) -> ScoreRequest:
        return cls(continuation=continuation, messages=_freeze(messages))

    def payload(self) -> dict[str, Any]:
        d = self._payload()
        if not self.end_of_text:
            del d["end_of_text"]  # keeps the cache keys of existing requests
        return d


@dataclass(frozen=True)
class LabelRequest(_Context):
    """Which of ``labels`` the model most likely writes after a context (chat or text).

    The answer is the label with the highest summed log-probability (an exact argmax, not a
    sample). When one label's tokens begin another's ("no" / "no way"), the end of the answer
    is scored too, so the shorter label is not favoured just for being shorter.
    """

    labels: tuple[str, ...]
    messages: FrozenMessages | None = None
    prompt: str | None = None

    @classmethod
    def chat(cls, messages: Sequence[Message], labels: Sequence[str]) -> LabelRequest:
        return cls(labels=tuple(labels), messages=_freeze(messages))

    @classmethod
    def text(cls, prompt: str, labels: Sequence[str]) -> LabelRequest:
        return cls(labels=tuple(labels), prompt=prompt)

    def payload(self) -> dict[str, Any]:
        d = self._payload()
        d["labels"] = list(self.labels)
        return d


@dataclass
class LabelChoice:
    """The chosen label of a :class:`LabelRequest`.

    Attributes:
        index: position of the chosen label in the request's ``labels``.
        logprobs: per label, its summed log-probability, or ``None`` where the search proved
            without computing it that the label cannot win.
        prompt_tokens: context tokens; ``completion_tokens``: label tokens evaluated.
        upper_bounds: per label, an upper bound of its log-probability where the search
            knows one without computing it (its first token's); ``None``: not given.
    """

    index: int
    logprobs: list[float | None]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    upper_bounds: list[float] | None = None


@dataclass
class Generation:
    """A model output with its token counts. ``cached`` is set when served from the cache.
    ``logprob``: the summed log-probability of the generated tokens under the model's own
    distribution, when the backend computed it (the embedded batched path does)."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    cached: bool = False
    logprob: float | None = None


@dataclass
class ScoreResult:
    """Summed log-probability (natural log) of the continuation and its token count."""

    logprob: float
    n_tokens: int
    cached: bool = False


@dataclass
class LMStats:
    """Counters kept by a backend or the cache wrapper."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class PartialBatchError(Exception):
    """A batch in which some calls finished and at least one failed for good.

    Attributes:
        done: the finished outputs by position in the batch (the cache keeps them).
        cause: the first failure (re-raised by the cache after storing ``done``).
    """

    def __init__(self, done: dict[int, Generation], cause: BaseException) -> None:
        super().__init__(str(cause))
        self.done = done
        self.cause = cause


def label_continuations(labels: Sequence[str]) -> list[tuple[str, bool]]:
    """Each label with whether its end must be scored: yes when it begins another label
    (by characters, a cheap stand-in for tokens in the generic path)."""
    return [(lab, any(o != lab and o.startswith(lab) for o in labels)) for lab in labels]


def request_key(model_id: str, kind: str, payload: dict[str, Any]) -> str:
    """Cache key: sha256 over model id, call kind and the canonical request JSON."""
    blob = json.dumps([model_id, kind, payload], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, declared by the backend (callers never guess it from a URL).

    Attributes:
        can_score: log-probabilities are available (:meth:`LM.score`, :meth:`LM.choose`).
        labels_in_one_pass: choosing a label costs about one pass over the prompt.
        chat: it renders chat messages itself (a chat template, or a chat endpoint).
        context_window: prompt plus output tokens it takes.
        embedded: it runs in this process (threads and context size are ours to set, and
            log-probabilities are cheap enough to screen proposals with).
    """

    can_score: bool
    labels_in_one_pass: bool
    chat: bool
    context_window: int
    embedded: bool = False


class LM(ABC):
    """A language model backend.

    Implementations generate batches, score continuations and count tokens. ``model_id``
    must identify the weights (and server) precisely: it is part of every cache key.
    ``max_batch`` is how many requests the backend usefully takes at once (its concurrency).
    """

    model_id: str = "lm"
    context_window: int = 4096
    max_batch: int = 1
    can_score: bool = False
    """Whether :meth:`score` and :meth:`choose` work (log-probabilities are available)."""
    labels_in_one_pass: bool = False
    embedded: bool = False
    """Whether it runs in this process (see :class:`Capabilities`)."""
    """Whether :meth:`choose` costs about one pass over the prompt (so scoring labels is
    cheaper than generating an answer); otherwise it costs a scoring call per label."""
    chat: bool = True
    """Whether the backend renders chat messages its own way (the model's chat template, or
    a chat endpoint); an embedded model without a template falls back to ChatML."""

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            can_score=self.can_score,
            labels_in_one_pass=self.labels_in_one_pass,
            chat=self.chat,
            context_window=self.context_window,
            embedded=self.embedded,
        )

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Generate one output per request, in order."""

    def generate_each(
        self,
        requests: Sequence[GenerationRequest],
        on_done: Callable[[int, Generation], None],
    ) -> list[Generation]:
        """:meth:`generate`, calling ``on_done(position, output)`` as each output is ready
        (so the cache keeps it even if the batch never finishes). This default reports them
        when the whole batch is done; a backend that finishes requests one by one (batched
        decoding) overrides it."""
        outs = self.generate(requests)
        for i, out in enumerate(outs):
            on_done(i, out)
        return outs

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Log-probabilities of continuations. Backends that cannot score raise."""
        raise CannotScoreError(f"{type(self).__name__} cannot score log-probabilities")

    def choose(self, requests: Sequence[LabelRequest]) -> list[LabelChoice]:
        """The most likely label of each request. This default scores every label with
        :meth:`score`; backends with direct access to the logits do it in one pass. Scores
        come without the prompt's length, so the prompt tokens are counted here (by
        :meth:`count_tokens`: a server's estimate), for what a call costs and the run log's
        tokens per example."""
        out = []
        for r in requests:
            context = (
                r.prompt
                if r.prompt is not None
                else "\n".join(m["content"] for m in r.chat_messages)
            )
            conts = label_continuations(r.labels)
            scored = self.score(
                [
                    ScoreRequest(
                        continuation=c, messages=r.messages, prompt=r.prompt, end_of_text=eot
                    )
                    for c, eot in conts
                ]
            )
            lps: list[float | None] = [s.logprob for s in scored]
            best = max(range(len(lps)), key=lambda i: (lps[i], -i))
            out.append(
                LabelChoice(
                    index=best,
                    logprobs=lps,
                    prompt_tokens=self.count_tokens(context),
                    completion_tokens=sum(s.n_tokens for s in scored),
                )
            )
        return out

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` under the model's tokenizer (or a close estimate)."""

    def prompt_tokens(self, request: GenerationRequest) -> int | None:
        """Exact prompt length of a request if the backend knows it cheaply, else ``None``."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    def __enter__(self) -> LM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
