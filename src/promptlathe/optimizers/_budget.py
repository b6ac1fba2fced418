"""A hard cap on LM calls (and optionally tokens), shared by every process of a run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from promptlathe.errors import BudgetExhausted
from promptlathe.lms import LM, CachedLM
from promptlathe.store import Store


class Budget:
    """Counts real (uncached) LM calls in the run's store and refuses calls past the cap.

    :meth:`wrap` puts a backend behind the budget (a :class:`~promptlathe.lms.CachedLM` with
    :meth:`charge` as its guard): calls are reserved before every chunk, so the cap is never
    exceeded by even one call; failed calls are given back; each stored call is recorded as
    paid in the same transaction, so :meth:`reconcile` can drop what a killed process
    reserved but never called. Cached answers cost nothing. The count
    lives in the store, so it survives a restart and is shared by worker processes (and by
    machines, when the store is a database server).

    Args:
        store: the run's store.
        max_calls: the hard cap on calls (``None``: unlimited).
        max_tokens: optional cap on prompt + output tokens, checked before each call.
        max_cost: optional cap on the calls' cost, checked before each call: each model's
            stored input and output tokens at its price (per million input and per million
            output tokens, given to :meth:`wrap`). While the framework's ceiling holds back
            the confirmation reserve, the search may spend the same share of the cost as of
            the calls.
        fallback_price: the price of calls by a model not wrapped yet (a resumed run's
            proposer before it loads): the dearest of the run's models, so the cost is
            never under-counted.
    """

    NAME = "lm_calls"
    TRACKED = "lm_calls@charges-v1"
    """Marks a store whose every paid call is in ``charges`` (all but pre-1.x run dirs)."""

    def __init__(
        self,
        store: Store,
        max_calls: int | None,
        max_tokens: int | None = None,
        max_cost: float | None = None,
        fallback_price: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self.store = store
        self.max_calls = max_calls
        self.max_tokens = max_tokens
        self.max_cost = max_cost
        self.fallback_price = fallback_price
        self.prices: dict[str, tuple[float, float]] = {}
        """Each wrapped model's price, by model id."""
        self.stage_limit: int | None = None
        self.ceiling: int | None = None
        """Set by the framework alone: the calls the search may reach (the confirmation
        reserve lies above it). No stage limit can lift the cap over it."""
        if not store.has_counter(self.NAME):  # a new run: track each paid call from now on
            store.set_counter(self.TRACKED, 1)
            store.set_counter(self.NAME, 0)

    @property
    def limit(self) -> int | None:
        """The cap in force now: the lowest of the total, the framework's ceiling and the
        stage limit."""
        caps = [c for c in (self.max_calls, self.ceiling, self.stage_limit) if c is not None]
        return min(caps) if caps else None

    @property
    def used(self) -> int:
        return self.store.reserved(self.NAME)

    @property
    def remaining(self) -> int | None:
        lim = self.limit
        return None if lim is None else max(0, lim - self.used)

    def charge(self, n: int) -> None:
        """Reserve ``n`` calls or raise :class:`BudgetExhausted` (nothing is reserved then)."""
        if self.max_tokens is not None and self._tokens() >= self.max_tokens:
            raise BudgetExhausted(f"token budget of {self.max_tokens} is spent")
        cost_limit = self.cost_limit
        if cost_limit is not None and self.cost() >= cost_limit:
            raise BudgetExhausted(f"cost budget of {cost_limit:.6g} is spent")
        if not self.store.reserve(self.NAME, n, self.limit):
            raise BudgetExhausted(
                f"LM-call budget reached ({self.used} of {self.limit} used; {n} more requested)"
            )

    @property
    def cost_limit(self) -> float | None:
        """The cost cap in force now: ``max_cost``, scaled down to the search's share of
        the calls while the framework's ceiling holds back the confirmation reserve."""
        if self.max_cost is None:
            return None
        if self.ceiling is not None and self.max_calls:
            return self.max_cost * min(1.0, self.ceiling / self.max_calls)
        return self.max_cost

    def cost(self) -> float:
        """What the stored calls cost, each model's at its price."""
        total = 0.0
        for model_id, (inp, out) in self.store.io_tokens(self._charged()).items():
            p_in, p_out = self.prices.get(model_id, self.fallback_price)
            total += (inp * p_in + out * p_out) / 1e6
        return total

    def _charged(self) -> str | None:
        # A run's own file holds only its calls; a shared server holds every run's.
        return self.NAME if self.store.shared else None

    def _tokens(self) -> int:
        return self.store.tokens_used(self._charged())

    def wrap(self, inner: LM, price: tuple[float, float] | None = None) -> CachedLM:
        """``inner`` with its calls cached in the store and paid from this budget (``price``:
        its price per million input and output tokens, for the cost cap)."""
        if price is not None:
            self.prices[inner.model_id] = price
        return CachedLM(
            inner, self.store, guard=self.charge, refund=self.refund, charge_to=self.NAME
        )

    def reconcile(self) -> int:
        """Set the count to the calls actually made and stored, dropping reservations that a
        killed process made but never used; returns how many were dropped. Call it only
        while no other process of the run is working (the run directory's lock is held)."""
        if not self.store.has_counter(self.TRACKED):
            return 0  # a run directory from before charges were recorded
        paid = self.store.count_charges(self.NAME)
        leaked = self.used - paid
        if leaked > 0:
            self.store.set_counter(self.NAME, paid)
        return max(0, leaked)

    def refund(self, n: int) -> None:
        """Give back ``n`` reserved calls that failed or were interrupted (never below 0)."""
        self.store.release(self.NAME, n)


class StageBudget:
    """The budget as an optimizer sees it: what is spent and what is left, and a limit it
    may lower for one of its stages, never above the framework's ceiling (so no optimizer
    can spend the confirmation reserve, whatever limit it sets)."""

    def __init__(self, budget: Budget) -> None:
        self._budget = budget

    @property
    def used(self) -> int:
        """Calls the run has made (every stage, every process)."""
        return self._budget.used

    @property
    def remaining(self) -> int | None:
        """Calls left under the limit in force now (``None``: unlimited)."""
        return self._budget.remaining

    @property
    def stage_limit(self) -> int | None:
        return self._budget.stage_limit

    @stage_limit.setter
    def stage_limit(self, limit: int | None) -> None:
        """A cap on the run's call count for the stage that sets it (the framework's
        ceiling still holds above it)."""
        self._budget.stage_limit = limit

    @contextlib.contextmanager
    def capped(self, limit: int | None) -> Iterator[None]:
        """Lower the limit to ``limit`` calls (the run's count) for a block, restoring it
        after; a limit above the one in force changes nothing."""
        before = self._budget.stage_limit
        self._budget.stage_limit = limit if before is None or limit is None else min(before, limit)
        try:
            yield
        finally:
            self._budget.stage_limit = before
