"""The run's models: the task model behind the budget (search) and outside it (test, report),
and the proposer, loaded on first use."""

from __future__ import annotations

import os
from typing import Any

from promptlathe.lms import LM, CachedLM, get_lm
from promptlathe.optimizers._budget import Budget
from promptlathe.optimizers._config import OptimizeConfig
from promptlathe.store import Store


class RunModels:
    """The models of one run.

    Args:
        cfg: the settings (model specs, threads, context size).
        embedded: the task model runs in this process (its declared capability).
        budget: every search call is paid from it.
        store: the call cache.
        lm / proposer_lm: models to use instead of building them from ``cfg`` (tests pass
            doubles).
        prices: each model's price by name, for the budget's cost cap (none: no cap).
    """

    def __init__(
        self,
        cfg: OptimizeConfig,
        embedded: bool,
        budget: Budget,
        store: Store,
        lm: LM | None = None,
        proposer_lm: LM | None = None,
        prices: dict[str, tuple[float, float]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.embedded = embedded
        self.budget = budget
        self.prices = prices or {}
        inner = lm or get_lm(cfg.model, base_url=cfg.base_url, **self._local_options())
        self.task_lm = budget.wrap(inner, self.prices.get(cfg.model))
        self.free_lm = CachedLM(inner, store)  # test evaluation: outside the budget
        self.proposer_name = cfg.proposer
        self._proposer_inner = proposer_lm
        self._proposer_lm: CachedLM | None = None
        same_model = self.proposer_name == cfg.model and cfg.proposer_base_url in (
            None,
            cfg.base_url,
        )
        if proposer_lm is None and (lm is not None or same_model):
            self._proposer_lm = self.task_lm

    def _local_options(self, embedded: bool = False) -> dict[str, Any]:
        """Backend options for a model that runs in this process (none for a server)."""
        if not (embedded or self.embedded):
            return {}
        return {
            "n_ctx": self.cfg.n_ctx,
            "n_threads": self.cfg.threads,
            "parallel": self.cfg.parallel,
        }

    @property
    def proposer_lm(self) -> CachedLM:
        """The model that writes instructions, loaded on first use (``report`` and workers
        never load it)."""
        if self._proposer_lm is None:
            inner = self._proposer_inner
            if inner is None and self.cfg.proposer_base_url:
                inner = get_lm(
                    self.proposer_name,
                    base_url=self.cfg.proposer_base_url,
                    api_key=os.environ.get("PROMPTLATHE_PROPOSER_API_KEY") or None,
                )
            elif inner is None:
                inner = get_lm(self.proposer_name, **self._local_options(embedded=True))
            self._proposer_lm = self.budget.wrap(inner, self.prices.get(self.proposer_name))
        return self._proposer_lm

    def use_threads(self, n: int | None) -> None:
        """Run the embedded models on ``n`` threads (``None``: the configured number), e.g.
        while worker processes share the cores."""
        n = n or self.cfg.threads or os.cpu_count() or 1
        for lm in {id(x): x for x in (self.task_lm, self._proposer_lm) if x is not None}.values():
            set_threads = getattr(lm.inner, "set_threads", None)
            if set_threads is not None:
                set_threads(n)

    def close(self) -> None:
        self.task_lm.close()
        if self._proposer_lm is not None and self._proposer_lm is not self.task_lm:
            self._proposer_lm.close()
