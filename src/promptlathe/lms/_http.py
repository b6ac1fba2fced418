"""OpenAI-compatible HTTP backend (vLLM, llama.cpp server, Ollama, OpenAI).

Bounded concurrency (``max_batch`` requests in flight), per-call timeout, and retries with
exponential backoff on 429, 5xx, timeouts and dropped connections.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from promptlathe.errors import ModelError
from promptlathe.lms._base import LM, Generation, GenerationRequest, ScoreRequest, ScoreResult

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


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
    """

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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_id = f"http:{self.base_url}|{model}"
        self.max_batch = max(1, concurrency)
        self.context_window = context_window
        self.max_retries = max_retries
        self.backoff = backoff
        key = api_key or os.environ.get("PROMPTLATHE_API_KEY") or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            limits=httpx.Limits(max_connections=self.max_batch),
        )
        self._pool = ThreadPoolExecutor(max_workers=self.max_batch)

    # ---- transport -------------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                resp = self._client.post(path, json=body)
            except httpx.ConnectError as exc:
                last = f"cannot connect ({exc})"
            except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    return resp.json()
                if resp.status_code not in _RETRY_STATUS:
                    raise ModelError(
                        f"server {self.base_url} answered {resp.status_code} to {path}: "
                        f"{resp.text[:200]}"
                    )
                last = f"HTTP {resp.status_code}"
                retry_after = resp.headers.get("retry-after")
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    time.sleep(min(float(retry_after), 60.0))
                    continue
            if attempt < self.max_retries:
                time.sleep(self.backoff * (2**attempt) * (0.5 + random.random()))
        raise ModelError(
            f"server {self.base_url} unreachable or failing after {self.max_retries + 1} "
            f"attempts ({last}); check that it is running and --base-url is right"
        )

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
        if len(requests) == 1:
            return [self._one(requests[0])]
        return list(self._pool.map(self._one, requests))

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Scores text contexts via ``/completions`` with ``echo`` and ``logprobs``.

        Chat contexts need the server's chat template, which the API does not expose, so they
        are not supported here; use the embedded backend for log-probability analyses.
        """
        out = []
        for r in requests:
            if r.messages is not None:
                raise ModelError(
                    "the HTTP backend cannot score chat contexts; use an embedded model"
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
