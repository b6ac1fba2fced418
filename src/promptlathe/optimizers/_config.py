"""What the user asked for (:class:`OptimizeConfig`), and the proposer it implies."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from promptlathe._limits import (
    BUDGET_CALLS,
    BUDGET_TOKENS,
    CONFIRM_SIZE,
    MAX_COST,
    MAX_SHOTS,
    MAX_TOKENS,
    N_CTX,
    PARALLEL,
    REASONING_TOKENS,
    SEED,
    THREADS,
    VAL_SIZE,
)
from promptlathe._validation import describe
from promptlathe.errors import PromptlatheError
from promptlathe.evaluator import DECODE_MODES
from promptlathe.lms import DEFAULT_MODEL, MODELS, default_proposer
from promptlathe.optimizers._setting import option_of, setting


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
        budget_cost: optional cap on the search's cost: every call's input and output tokens
            at its model's price (``prices``, else an embedded model's default; see
            :mod:`promptlathe.lms._price`).
        prices: price per million input and per million output tokens, ``[in, out]`` by model
            name (``--cost NAME=IN:OUT``), for ``budget_cost``.
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
            (``reflect,joint``, the default; ``propose,joint``; ``random``; see
            ``promptlathe.optimizers``).
        decode: ``"auto"`` (score the labels of a classification task on an embedded model,
            else generate), ``"generate"`` or ``"labels"`` (see :func:`choose_decode`).
        strategies: the run-time strategies searched (names of
            :mod:`promptlathe.strategies`, or ``["all"]``, the default); ``["direct"]``
            searches none.
        max_cost_per_example: the winner may cost at most this many tokens (prompt + output,
            every call) per example; candidates over it are stopped at their first rung.
        reasoning_tokens: output cap of reasoned calls (chain of thought and kin).
    """

    task: str = setting(
        help="Training data (.jsonl/.csv): split into train, validation and confirmation "
        "(required unless --worker).",
        cli_type=Path | None,
        cli_default=None,
    )
    test: str | None = setting(
        None, help="Held-out test file (default: carve 25% of --task).", cli_type=Path | None
    )
    model: str = setting(
        DEFAULT_MODEL,
        help=f"Embedded model name ({', '.join(MODELS)}), a .gguf path, or the server's model "
        "name with --base-url.",
        flags=("--model", "-m"),
    )
    base_url: str | None = setting(
        None, help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1."
    )
    proposer_model: str | None = setting(
        None,
        help="Model that writes instructions (default: qwen2.5-coder-1.5b if installed, else "
        "--model).",
    )
    proposer_base_url: str | None = setting(
        None,
        help="OpenAI-compatible server that runs --proposer-model (key: "
        "$PROMPTLATHE_PROPOSER_API_KEY, else the task's); default: embedded.",
    )
    instruction: str = setting("", help="Seed instruction (always a candidate).")
    seed_prompt: str | None = setting(
        None,
        help="Seed prompt JSON (instead of --instruction).",
        flags=("--prompt",),
        cli_type=Path | None,
    )
    metric: str | None = setting(
        None, help="Metric (default: the task's .meta.json metric, else auto)."
    )
    budget_calls: int = setting(
        600, help="Hard cap on LM calls for the search.", range=BUDGET_CALLS
    )
    budget_tokens: int | None = setting(
        None,
        help="Optional cap on the search's tokens (prompt + output, every call).",
        range=BUDGET_TOKENS,
    )
    budget_cost: float | None = setting(
        None,
        help="Optional cap on the search's cost, in --cost's unit (embedded models: their "
        "parameters in billions per million input tokens, output 3x).",
        metavar="COST",
    )
    prices: dict[str, list[float]] = field(default_factory=dict)
    max_shots: int = setting(4, help="Largest number of exemplars searched.", range=MAX_SHOTS)
    max_tokens: int = setting(64, help="Maximum tokens generated per call.", range=MAX_TOKENS)
    seed: int = setting(0, help="Seed for splits, sampling and decoding.", range=SEED)
    out: str = setting(
        "runs/latest",
        help="Run directory (default: runs/<task>).",
        cli_type=Path | None,
        cli_default=None,
    )
    storage: str | None = setting(
        None,
        help="Database for the study; a PostgreSQL URL also holds the budget and call cache, "
        "so workers on several machines share them (default: SQLite in the run directory).",
    )
    study: str = setting("promptlathe", help="Optuna study name prefix.")
    sampler: str = setting("tpe", help="tpe or random.")
    n_ctx: int = setting(4096, help="Context window for embedded models.", range=N_CTX)
    threads: int | None = setting(
        None,
        help="CPU threads per process for embedded models (default: all cores, divided among "
        "--workers).",
        range=THREADS,
    )
    parallel: int = setting(
        16,
        help="Sequences an embedded model decodes together (continuous batching, the shared "
        "prefix decoded once); 1 decodes one request at a time.",
        range=PARALLEL,
    )
    alpha: float = 0.1
    val_size: int | None = setting(
        None, help="Validation examples (default: planned from the budget).", range=VAL_SIZE
    )
    confirm_size: int | None = setting(
        None,
        help="Confirmation examples (default: planned from the budget).",
        range=CONFIRM_SIZE,
    )
    prescreen: str | None = setting(
        None,
        help="'mi': drop half the proposed instructions by label-free mutual information "
        "before racing (classification tasks).",
    )
    decode: str = setting(
        "auto",
        help="auto: on a classification task with an embedded model, score each label and "
        "answer with the most likely (one pass, no generation); generate; or labels (force it).",
    )
    optimizer: str = setting(
        "reflect,joint",
        help="The optimizer stages, run in order, each from what the previous one found "
        "(e.g. reflect,joint, the default; propose,joint; random,joint). "
        "`promptlathe optimizers` lists them.",
    )
    strategies: list[str] = setting(
        help="Run-time strategies searched, comma-separated, or 'all': direct, cot, "
        "plan_and_solve, cot_demos, self_consistency, choice_shuffle, knn_demos.",
        factory=lambda: ["all"],
        cli_type=str,
        cli_default="all",
    )
    max_cost_per_example: int | None = setting(
        None,
        help="The winner may cost at most this many tokens per example (prompt + output, "
        "every call of its strategy).",
        range=MAX_COST,
        metavar="TOKENS",
    )
    reasoning_tokens: int = setting(
        256,
        help="Output cap of reasoned answers (cot, plan_and_solve, cot_demos, self_consistency).",
        range=REASONING_TOKENS,
    )

    def __post_init__(self) -> None:
        from promptlathe.strategies import parse_strategies

        self.strategies = parse_strategies(self.strategies)
        # spacing folded; the stages' names are checked against the registry by the run
        self.optimizer = ",".join(n.strip() for n in self.optimizer.split(","))
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
        for f in fields(self):  # the ranges declared with each setting
            opt = option_of(f)
            value = getattr(self, f.name)
            if opt is None or opt.range is None or value is None:
                continue
            lo, hi = opt.range
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise PromptlatheError(
                    f"{opt.flag(f.name)} {value!r} must be an integer in [{lo}, {hi}]"
                )
        if self.budget_cost is not None:
            self.model_prices()  # every model of the run priced, before any work
        if not 0.0 < self.alpha < 1.0:
            raise PromptlatheError(f"alpha {self.alpha!r} must be in (0, 1)")

    @property
    def proposer(self) -> str:
        """The model that writes instructions: ``proposer_model``, else the strongest
        installed embedded model for an embedded task model, else the task model."""
        return default_proposer(self.model, self.base_url, self.proposer_model)

    def model_prices(self) -> dict[str, tuple[float, float]]:
        """The price of the task model and of the proposer, by name (for ``budget_cost``).

        Raises:
            PromptlatheError: ``budget_cost`` is not a finite number >= 0, a price is
                malformed, or a served model has no price.
        """
        from promptlathe.lms import Price, price_for

        cost = self.budget_cost
        if cost is not None and not (0 <= cost < float("inf")):
            raise PromptlatheError(f"--budget-cost {cost!r} must be a finite number >= 0")
        declared: dict[str, Price] = {}
        for name, pair in self.prices.items():
            if len(pair) != 2 or not all(0 <= x < float("inf") for x in pair):
                raise PromptlatheError(f"--cost {name}={pair!r}: expected two finite prices >= 0")
            declared[name] = Price(float(pair[0]), float(pair[1]))
        prices: dict[str, tuple[float, float]] = {}
        for name in (self.model, self.proposer):
            price = price_for(name, declared)
            prices[name] = (price.input, price.output)
        return prices

    # Fields that may change on --resume without invalidating the run.
    RESUMABLE_CHANGES = frozenset(
        {"budget_calls", "budget_tokens", "budget_cost", "storage", "out", "threads"}
    )
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
        if version not in range(1, CONFIG_VERSION + 1):
            raise PromptlatheError(
                f"{where}: run config version {version!r} is not one this promptlathe reads "
                f"(1 to {CONFIG_VERSION}); upgrade promptlathe, or start a new run"
            )
        if version == 1:
            data = _upgrade_v1(data)
        if version <= 2:  # decoded one request at a time: resumed, it still does
            data = {"parallel": 1, **data}
        # Written when propose,joint with direct answers was the default (up to 4): a file
        # that leaves them out (never one promptlathe wrote) keeps the defaults of its time.
        data = {"optimizer": "propose,joint", "strategies": ["direct"], **data}
        try:  # the field types as declared, then the config's own checks (ranges, ...)
            return TypeAdapter(cls).validate_python(data)
        except ValidationError as exc:
            raise PromptlatheError(f"{where}: malformed run config ({describe(exc)})") from None
        except PromptlatheError as exc:
            raise PromptlatheError(f"{where}: {exc}") from None

    def differences(self, other: OptimizeConfig) -> list[str]:
        a, b = self.to_dict(), other.to_dict()
        return [k for k in a if a[k] != b[k] and k not in self.RESUMABLE_CHANGES]


CONFIG_VERSION = 4
"""The version of ``config.json``. 4: ``budget_cost`` and ``prices`` (optional; earlier runs
had no cost cap). 3: ``parallel`` (embedded models decode several requests
together; earlier runs decoded one at a time, ``parallel`` = 1). 2: ``optimizer`` is a chain of
stages; 1 (no ``v``) named
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


__all__ = [
    "CONFIG_VERSION",
    "OptimizeConfig",
    "redact_storage",
]
