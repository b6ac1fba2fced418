"""What the user asked for (:class:`OptimizeConfig`) and how the budget is spent (:class:`Plan`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from promptlathe._limits import (
    BUDGET_CALLS,
    BUDGET_TOKENS,
    CONFIRM_SIZE,
    MAX_COST,
    MAX_SHOTS,
    MAX_TOKENS,
    N_CTX,
    REASONING_TOKENS,
    SEED,
    THREADS,
    VAL_SIZE,
)
from promptlathe.errors import PromptlatheError
from promptlathe.evaluator import DECODE_MODES
from promptlathe.lms import DEFAULT_MODEL


@dataclass
class OptimizeConfig:
    """Settings of one optimization run (all JSON-able; saved as ``config.json``).

    Attributes:
        task: training data (split into train / validation / confirmation).
        test: held-out test file; if ``None``, a test split is carved from ``task``.
        model: task model (embedded name, .gguf path, or server model with ``base_url``).
        base_url: OpenAI-compatible server for the task model.
        proposer_model: model that writes instructions; ``None`` picks the strongest
            installed embedded model (qwen2.5-coder-1.5b if installed) or the task model.
        proposer_base_url: an OpenAI-compatible server that runs ``proposer_model`` (key
            from ``$PROMPTLATHE_PROPOSER_API_KEY``, else the task's key); ``None``: the
            proposer is embedded (or the task model's server when it is the task model).
        instruction: the seed instruction (always a candidate).
        seed_prompt: path of a seed prompt JSON (overrides ``instruction``).
        metric: metric name; ``None`` uses the task's sidecar metric or ``auto``.
        budget_calls: hard cap on LM calls for the search (proposals, bootstrapping, racing,
            confirmation). The final test evaluation is reported separately.
        budget_tokens: optional cap on tokens.
        max_shots: the largest number of exemplars searched.
        max_tokens: generation cap per call.
        seed: seeds splits, sampling and decoding.
        out: run directory.
        storage: Optuna storage URL (default: SQLite file in the run directory).
        study: Optuna study name prefix.
        sampler: ``tpe`` or ``random``.
        n_ctx: context window of embedded models.
        threads: CPU threads of each process's embedded model (``None``: all cores). With
            several workers on one machine, give each its share: llama.cpp threads spin, so
            oversubscribed cores make every process slower.
        alpha: level of the racing sign test.
        prescreen: ``"mi"`` drops the half of each batch of proposed instructions with the
            lowest label-free mutual information before any labeled evaluation
            (classification tasks only).
        val_size / confirm_size: override the planned split sizes.
        optimizer: the search, a chain of registered optimizer stages run in order
            (``propose,joint``, the default; ``reflect,joint``; ``random``; see
            ``promptlathe.optimizers``).
        decode: ``"auto"`` (score the labels of a classification task on an embedded model,
            else generate), ``"generate"`` or ``"labels"`` (see :func:`choose_decode`).
        strategies: the run-time strategies searched (names of
            :mod:`promptlathe.strategies`, or ``["all"]``); ``["direct"]`` searches none.
        max_cost_per_example: the winner may cost at most this many tokens (prompt + output,
            every call) per example; candidates over it are stopped at their first rung.
        reasoning_tokens: output cap of reasoned calls (chain of thought and kin).
    """

    task: str
    test: str | None = None
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    proposer_model: str | None = None
    proposer_base_url: str | None = None
    instruction: str = ""
    seed_prompt: str | None = None
    metric: str | None = None
    budget_calls: int = 600
    budget_tokens: int | None = None
    max_shots: int = 4
    max_tokens: int = 64
    seed: int = 0
    out: str = "runs/latest"
    storage: str | None = None
    study: str = "promptlathe"
    sampler: str = "tpe"
    n_ctx: int = 4096
    threads: int | None = None
    alpha: float = 0.1
    val_size: int | None = None
    confirm_size: int | None = None
    prescreen: str | None = None
    decode: str = "auto"
    optimizer: str = "propose,joint"
    strategies: list[str] = field(default_factory=lambda: ["direct"])
    max_cost_per_example: int | None = None
    reasoning_tokens: int = 256

    def __post_init__(self) -> None:
        from promptlathe.optimizers._protocol import parse_chain
        from promptlathe.strategies import parse_strategies

        self.strategies = parse_strategies(self.strategies)
        self.optimizer = ",".join(parse_chain(self.optimizer))
        for option, url in (
            ("--base-url", self.base_url),
            ("--proposer-base-url", self.proposer_base_url),
        ):
            if url:
                from promptlathe.lms._http import split_credentials

                split_credentials(url, option)  # a malformed URL fails here, before any work
        if self.proposer_base_url and not self.proposer_model:
            raise PromptlatheError(
                "--proposer-base-url needs --proposer-model (the server's name for the model)"
            )
        if self.prescreen not in (None, "mi"):
            raise PromptlatheError(f"--prescreen {self.prescreen!r} is not one of: mi")
        if self.decode not in DECODE_MODES:
            raise PromptlatheError(
                f"--decode {self.decode!r} is not one of {', '.join(DECODE_MODES)}"
            )
        if self.sampler not in ("tpe", "random"):
            raise PromptlatheError(f"--sampler {self.sampler!r} is not one of tpe, random")
        if not MAX_SHOTS[0] <= self.max_shots <= MAX_SHOTS[1]:
            raise PromptlatheError(
                f"--max-shots {self.max_shots} must be between {MAX_SHOTS[0]} and {MAX_SHOTS[1]}"
            )
        for name, value, lo, hi in (
            ("--budget-calls", self.budget_calls, *BUDGET_CALLS),
            ("--budget-tokens", self.budget_tokens, *BUDGET_TOKENS),
            ("--max-tokens", self.max_tokens, *MAX_TOKENS),
            ("--seed", self.seed, *SEED),
            ("--n-ctx", self.n_ctx, *N_CTX),
            ("--val-size", self.val_size, *VAL_SIZE),
            ("--confirm-size", self.confirm_size, *CONFIRM_SIZE),
            ("--threads", self.threads, *THREADS),
            ("--max-cost-per-example", self.max_cost_per_example, *MAX_COST),
            ("--reasoning-tokens", self.reasoning_tokens, *REASONING_TOKENS),
        ):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise PromptlatheError(f"{name} {value!r} must be an integer in [{lo}, {hi}]")
        if not 0.0 < self.alpha < 1.0:
            raise PromptlatheError(f"alpha {self.alpha!r} must be in (0, 1)")

    # Fields that may change on --resume without invalidating the run.
    RESUMABLE_CHANGES = frozenset({"budget_calls", "budget_tokens", "storage", "out", "threads"})
    """(``out`` is where the run lives, not how it runs: a moved run directory still resumes.)"""

    def to_dict(self) -> dict[str, Any]:
        """The settings as saved: ``base_url`` without any ``user:password@`` and ``storage``
        without its password (the URLs as typed, credentials included, are only held in
        memory to connect)."""
        from promptlathe.lms._http import redact_url

        d = {"v": CONFIG_VERSION, **asdict(self)}
        for key in ("base_url", "proposer_base_url"):
            if d[key]:
                d[key] = redact_url(d[key])
        if d["storage"]:
            d["storage"] = redact_storage(d["storage"])
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def load(cls, path: Path) -> OptimizeConfig:
        """Read a run's ``config.json``; a damaged file is a one-line error naming it."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise PromptlatheError(
                f"{path}: cannot read the run's config ({_reason(exc)}); the run directory is "
                "damaged: start a new run with another --out"
            ) from None
        known = {f.name for f in fields(cls)} | {"v"}
        if not isinstance(data, dict) or "task" not in data or set(data) - known:
            extra = sorted(set(data) - known) if isinstance(data, dict) else []
            raise PromptlatheError(
                f"{path}: not a promptlathe run config"
                + (f" (unknown fields {extra})" if extra else "")
                + "; start a new run with another --out"
            )
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> OptimizeConfig:
        """Settings saved by this or an earlier version (upgraded); a newer or unknown
        version is a one-line error naming ``where``."""
        known = {f.name for f in fields(cls)} | {"v"}
        if not isinstance(data, dict) or "task" not in data or set(data) - known:
            raise PromptlatheError(f"{where}: not a promptlathe run config")
        data = dict(data)
        version = data.pop("v", 1)
        if version not in (1, CONFIG_VERSION):
            raise PromptlatheError(
                f"{where}: run config version {version!r} is not one this promptlathe reads "
                f"(1 to {CONFIG_VERSION}); upgrade promptlathe, or start a new run"
            )
        if version == 1:
            data = _upgrade_v1(data)
        try:
            return cls(**data)
        except TypeError as exc:
            raise PromptlatheError(f"{where}: malformed run config ({exc})") from None

    def differences(self, other: OptimizeConfig) -> list[str]:
        a, b = self.to_dict(), other.to_dict()
        return [k for k in a if a[k] != b[k] and k not in self.RESUMABLE_CHANGES]


CONFIG_VERSION = 2
"""The version of ``config.json``. 2: ``optimizer`` is a chain of stages; 1 (no ``v``) named
one optimizer that bundled its joint search (``joint`` is now ``propose,joint``, ``reflect``
is ``reflect,joint``)."""


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 config as version 2. Runs saved before --decode existed generated their
    answers; runs saved before --optimizer existed ran the joint optimizer."""
    data = {"decode": "generate", "optimizer": "joint", **data}
    chains = {"joint": "propose,joint", "reflect": "reflect,joint"}
    data["optimizer"] = chains.get(data["optimizer"], data["optimizer"])
    return data


def redact_storage(url: str) -> str:
    """A database URL without its password (``postgresql://user:***@host/db``)."""
    if "://" not in url:
        return url
    try:
        import sqlalchemy as sa

        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is reported when it is used
        return url.split("://", 1)[0] + "://***"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


@dataclass
class Plan:
    """How the budget is divided, computed from the config and the data sizes."""

    n_train: int
    n_val: int
    n_confirm: int
    n_test: int
    n_boot: int
    n_boot_rationale: int
    n_ape: int
    n_opro: int
    n_screen_demos: int
    confirm_top: int
    rungs: list[int]
    budget: int
    stages: dict[str, int] = field(default_factory=dict)

    @property
    def reserve_confirm(self) -> int:
        return (self.confirm_top + 1) * self.n_confirm

    @property
    def search_limit(self) -> int:
        """Calls available before confirmation."""
        return self.budget - self.reserve_confirm

    def test_calls(self, winner_k: int = 1, seed_k: int = 1) -> int:
        """Calls of the test evaluation: winner and seed, ``k`` calls per input each (a
        strategy that samples k times per input makes k)."""
        return (winner_k + seed_k) * self.n_test

    def describe(self, search_lines: list[str], winner_k: int = 1, seed_k: int = 1) -> list[str]:
        """The plan as printed before a run; ``search_lines`` are the optimizer's stages,
        ``winner_k`` the most calls per input a winner may make."""
        s = self.stages
        test = self.test_calls(winner_k, seed_k)
        sampled = f"; up to {winner_k} calls per input for the winner" if winner_k > 1 else ""
        more = "; a leader that samples takes more from the search" if sampled else ""
        return [
            f"data: {self.n_train} train · {self.n_val} validation · {self.n_confirm} "
            f"confirmation · {self.n_test} test",
            f"budget: {self.budget} LM calls",
            *search_lines,
            f"  confirmation         ≤ {s['confirm']:>5} calls (top {self.confirm_top} + seed "
            f"on {self.n_confirm} examples{more})",
            f"  test (outside budget) {'≤' if sampled else ' '}{test:>5} calls (winner and seed"
            f"{sampled})",
        ]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["search_limit"] = self.search_limit
        return d


def make_plan(
    cfg: OptimizeConfig, n_examples: int, n_test: int | None, scoring: bool = True
) -> Plan:
    """Split sizes and per-stage call allowances for a budget of ``cfg.budget_calls``.

    Validation is sized so that one full evaluation costs about a tenth of the budget (at
    least 16, at most 100 examples); confirmation about a fifteenth, for the top 2 plus the
    seed. Small tasks shrink every part, keeping at least ``max_shots + 4`` for training.
    """
    b = cfg.budget_calls
    n_test_carved = 0 if n_test is not None else max(1, round(0.25 * n_examples))
    avail = n_examples - n_test_carved
    n_val = cfg.val_size or min(100, max(16, b // 10))
    n_confirm = cfg.confirm_size if cfg.confirm_size is not None else min(60, max(10, b // 15))
    min_train = cfg.max_shots + 4
    if n_val + n_confirm + min_train > avail:  # small task: shrink proportionally
        spare = max(0, avail - min_train)
        n_val = max(1, min(n_val, round(spare * 0.6)))
        n_confirm = max(0, min(n_confirm, spare - n_val))
    if n_val < 4 or avail - n_val - n_confirm < 2:
        raise PromptlatheError(
            f"{cfg.task}: {n_examples} examples are too few to split into train, validation "
            "and confirmation; give more data or a separate --test file"
        )
    n_train = avail - n_val - n_confirm
    confirm_top = (2 if b >= 150 else 1) if n_confirm else 0
    n_boot = min(max(0, n_train - cfg.max_shots), max(4, b // 25), 32) if cfg.max_shots else 0
    # cot_demos walks train inputs until k rationales validate; a tenth of the budget at most
    n_boot_rationale = (
        min(max(0, n_train - cfg.max_shots), max(3 * cfg.max_shots, b // 10), 64)
        if cfg.max_shots
        else 0
    )
    n_ape = min(8, max(2, b // 60))
    n_opro = min(4, max(1, b // 120))
    n_screen = 3 if scoring and b >= 300 else 0
    plan = Plan(
        n_train=n_train,
        n_val=n_val,
        n_confirm=n_confirm,
        n_test=n_test if n_test is not None else n_test_carved,
        n_boot=n_boot,
        n_boot_rationale=n_boot_rationale,
        n_ape=n_ape,
        n_opro=n_opro,
        n_screen_demos=n_screen,
        confirm_top=confirm_top,
        rungs=rungs_for_plan(n_val),
        budget=b,
    )
    propose = n_ape + n_opro + n_screen * (n_ape + n_opro + 1)
    plan.stages = {
        "bootstrap": n_boot,
        "propose": propose,
        "confirm": plan.reserve_confirm,
        "search": max(0, b - n_boot - propose - plan.reserve_confirm),
    }
    if plan.stages["search"] < n_val:
        raise PromptlatheError(
            f"--budget-calls {b} leaves {plan.stages['search']} calls for the search, less than "
            f"one validation pass ({n_val}); raise the budget or lower --val-size"
        )
    return plan


def rungs_for_plan(n_val: int) -> list[int]:
    from promptlathe.optimizers._racing import rungs_for

    return rungs_for(n_val, first=min(8, n_val))
