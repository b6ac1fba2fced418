"""OpenAI-compatible HTTP backend (vLLM, llama.cpp server, Ollama, OpenAI).

Bounded concurrency (``max_batch`` requests in flight), per-call timeout, and retries (tenacity)
with exponential backoff, or the server's ``Retry-After``, on 429, 5xx, timeouts and dropped
connections.
"""

from __future__ import annotations

import email.utils
import html
import os
import random
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import tenacity

from promptlathe.errors import ModelError
from promptlathe.lms._base import (
    LM,
    Generation,
    GenerationRequest,
    PartialBatchError,
    ScoreRequest,
    ScoreResult,
)

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_MAX_RETRY_AFTER = 60.0
_TAGS = re.compile(r"<[^>]*>")


class _Retryable(Exception):
    """A failed attempt worth repeating (429/5xx, timeout, dropped connection)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def split_credentials(url: str, option: str = "--base-url") -> tuple[str, tuple[str, str] | None]:
    """``(url without user:password, (user, password) or None)``; errors name ``option``.

    Raises:
        ModelError: not an ``http://`` or ``https://`` URL with a host.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        raise ModelError(f"{option} {redact_url(url)!r}: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ModelError(
            f"{option} {redact_url(url)!r}: must be an http:// or https:// URL with a host, "
            "e.g. http://127.0.0.1:8000/v1"
        )
    auth = (parts.username or "", parts.password or "") if parts.username is not None else None
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), auth


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` removed (for storing and printing)."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@", r"\1", url.strip())


def _check_key(key: str, source: str) -> str:
    if any(ch.isspace() or not ch.isprintable() for ch in key):
        raise ModelError(
            f"{source} contains whitespace or a control character (a newline?); set it to the "
            "bare key"
        )
    return key


def _body_line(resp: httpx.Response) -> str:
    """A one-line, tag-free excerpt of an error body."""
    text = html.unescape(_TAGS.sub(" ", resp.text))
    return " ".join(text.split())[:160]


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAICompatLM(LM):
    """Talks to ``{base_url}/chat/completions`` and ``{base_url}/completions``.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000/v1``.
        model: the server's model name.
        api_key: defaults to ``$PROMPTLATHE_API_KEY`` or ``$OPENAI_API_KEY`` (may be empty).
        concurrency: requests in flight at once.
        timeout: seconds per call.
        max_retries: attempts after the first on retryable failures.
        context_window: the server model's context size (for length checks).
        backoff: base of the exponential backoff, in seconds.
        transport: an ``httpx`` transport (tests pass ``httpx.MockTransport``).

    Raises:
        ModelError: the URL is not http(s), or the API key holds whitespace.
    """

    can_score = True  # through /completions with echo and logprobs, where the server has it

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        concurrency: int = 4,
        timeout: float = 120.0,
        max_retries: int = 5,
        context_window: int = 32768,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url, auth = split_credentials(base_url)
        # Credentials never reach the cache key, stored configs or messages.
        self.base_url = url.rstrip("/")
        self.model = model
        self.model_id = f"http:{self.base_url}|{model}"
        self.max_batch = max(1, concurrency)
        self.context_window = context_window
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        key: str | None
        if api_key:
            key = _check_key(api_key, "the API key")
        else:
            env = next(
                (v for v in ("PROMPTLATHE_API_KEY", "OPENAI_API_KEY") if os.environ.get(v)), None
            )
            key = _check_key(os.environ[env], f"${env}") if env else None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            auth=auth,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            limits=httpx.Limits(max_connections=self.max_batch),
        )
        self._pool = ThreadPoolExecutor(max_workers=self.max_batch)

    # ---- transport -------------------------------------------------------------------------
    def _attempt(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One request; a failure worth another attempt raises :class:`_Retryable`."""
        try:
            resp = self._client.post(path, json=body)
        except httpx.ConnectError as exc:
            raise _Retryable(f"cannot connect ({exc})") from None
        except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        if resp.status_code == 200:
            return self._json(resp, path)
        if resp.status_code not in _RETRY_STATUS:
            raise ModelError(
                f"server {self.base_url} answered HTTP {resp.status_code} to {path}: "
                f"{_body_line(resp) or '(empty body)'}"
            )
        raise _Retryable(f"HTTP {resp.status_code}", _retry_after(resp.headers.get("retry-after")))

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """The server's Retry-After if it sent one, else exponential backoff with jitter."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, _MAX_RETRY_AFTER)
        jitter = 0.5 + random.random()
        return min(self.backoff * 2 ** (state.attempt_number - 1) * jitter, _MAX_RETRY_AFTER)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            stop=tenacity.stop_after_attempt(self.max_retries + 1),  # no sleep after the last
            wait=self._wait,
            sleep=lambda seconds: time.sleep(seconds),
            reraise=True,
        )
        try:
            return retrying(self._attempt, path, body)
        except _Retryable as exc:
            raise ModelError(
                f"server {self.base_url} unreachable or failing after {self.max_retries + 1} "
                f"attempts ({exc}); check that it is running and --base-url is right"
            ) from None

    def _json(self, resp: httpx.Response, path: str) -> dict[str, Any]:
        try:
            data = resp.json()
        except ValueError:
            kind = resp.headers.get("content-type", "unknown type")
            raise ModelError(
                f"server {self.base_url} answered {path} with non-JSON ({kind}: "
                f"{_body_line(resp)[:80]!r}); is --base-url the API root (usually ending in /v1)?"
            ) from None
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ModelError(
                f"server {self.base_url} answered {path} without 'choices'; it does not look "
                "like an OpenAI-compatible API"
            )
        return data

    # ---- LM protocol -----------------------------------------------------------------------
    def _one(self, r: GenerationRequest) -> Generation:
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": r.max_tokens,
            "temperature": r.temperature,
            "top_p": r.top_p,
            "seed": r.seed,
        }
        if r.stop:
            params["stop"] = list(r.stop)
        if r.messages is not None:
            data = self._post("/chat/completions", {**params, "messages": r.chat_messages})
            choice = data["choices"][0]
            text = (choice.get("message") or {}).get("content") or ""
        else:
            data = self._post("/completions", {**params, "prompt": r.prompt})
            choice = data["choices"][0]
            text = choice.get("text") or ""
        usage = data.get("usage") or {}
        return Generation(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=choice.get("finish_reason") or "stop",
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Runs the batch concurrently. If a call fails for good, the calls that finished are
        handed back in :class:`PartialBatchError` so the cache can keep them."""
        if len(requests) == 1:
            return [self._one(requests[0])]
        futures = [self._pool.submit(self._one, r) for r in requests]
        done: dict[int, Generation] = {}
        error: BaseException | None = None
        for i, fut in enumerate(futures):
            try:
                done[i] = fut.result()
            except Exception as exc:  # re-raised below, once the others have finished
                error = error or exc
        if error is not None:
            raise PartialBatchError(done, error)
        return [done[i] for i in range(len(requests))]

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Scores text contexts via ``/completions`` with ``echo`` and ``logprobs``.

        Chat contexts need the server's chat template, which the API does not expose, so they
        are not supported here; use the embedded backend for log-probability analyses.
        """
        out = []
        for r in requests:
            if r.messages is not None or r.end_of_text:
                raise ModelError(
                    "the HTTP backend cannot score chat contexts or the end-of-text token; use "
                    "an embedded model"
                )
            prefix = r.prompt or ""
            data = self._post(
                "/completions",
                {
                    "model": self.model,
                    "prompt": prefix + r.continuation,
                    "max_tokens": 1,
                    "temperature": 0.0,
                    "echo": True,
                    "logprobs": 1,
                },
            )
            lp = data["choices"][0].get("logprobs") or {}
            offsets = lp.get("text_offset") or []
            token_lps = lp.get("token_logprobs") or []
            total, n = 0.0, 0
            for off, val in zip(offsets, token_lps, strict=False):
                if (
                    off >= len(prefix)
                    and off < len(prefix) + len(r.continuation)
                    and val is not None
                ):
                    total += float(val)
                    n += 1
            if n == 0:
                raise ModelError(f"server {self.base_url} returned no prompt log-probabilities")
            out.append(ScoreResult(logprob=total, n_tokens=n))
        return out

    def count_tokens(self, text: str) -> int:
        # The OpenAI API has no tokenizer endpoint; ~4 characters per token is the usual estimate.
        return max(1, len(text) // 4)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()
