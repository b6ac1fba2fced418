"""The Optuna side: studies, the joint search space, and trial bookkeeping."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

from promptlathe.errors import BudgetExhausted
from promptlathe.evaluator import Evaluator
from promptlathe.optimizers._racing import RaceOutcome, RacingPruner, race
from promptlathe.optimizers._runlog import LogEntry
from promptlathe.prompts import Exemplar, Format, Prompt, StrategySpec
from promptlathe.strategies import get_strategy
from promptlathe.tasks import Example

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class Space:
    """The searched dimensions, each a list indexed by a trial parameter."""

    instructions: tuple[str, ...]
    demo_sets: tuple[tuple[Exemplar, ...], ...]
    orders: tuple[tuple[int, ...], ...]
    formats: tuple[Format, ...]
    max_shots: int
    strategies: tuple[StrategySpec, ...] = (StrategySpec(),)
    rationale_sets: tuple[tuple[Exemplar, ...], ...] = ()
    """Demo sets whose outputs carry validated reasoning (``cot_demos``)."""
    pool: tuple[Exemplar, ...] = ()
    """The labeled train pool ``knn_demos`` chooses from per input."""

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        d: dict[str, optuna.distributions.BaseDistribution] = {
            "instruction": CategoricalDistribution(list(range(len(self.instructions)))),
            "format": CategoricalDistribution(list(range(len(self.formats)))),
        }
        if self.max_shots and self.demo_sets:
            d["shots"] = IntDistribution(0, self.max_shots)
            d["demo_set"] = CategoricalDistribution(list(range(len(self.demo_sets))))
            d["order"] = CategoricalDistribution(list(range(len(self.orders))))
        if len(self.strategies) > 1:
            d["strategy"] = CategoricalDistribution(list(range(len(self.strategies))))
        return d

    def prompt(self, params: dict[str, int]) -> Prompt:
        shots = int(params.get("shots", 0))
        spec = self.strategies[int(params.get("strategy", 0))]
        demos = get_strategy(spec).demos
        exemplars: list[Exemplar] = []
        if demos == "pool":  # the whole pool; k of them are chosen per input
            exemplars = list(self.pool)
            spec = StrategySpec(spec.name, max(1, shots))
        elif demos == "rationale":
            exemplars = self._ordered(self.rationale_sets, params, max(1, shots))
        elif shots:
            exemplars = self._ordered(self.demo_sets, params, shots)
        return Prompt(
            instruction=self.instructions[params["instruction"]],
            exemplars=tuple(exemplars),
            format=self.formats[params["format"]],
            strategy=spec,
        )

    def _ordered(
        self, sets: Sequence[tuple[Exemplar, ...]], params: dict[str, int], shots: int
    ) -> list[Exemplar]:
        if not sets:
            return []
        demos = sets[int(params.get("demo_set", 0)) % len(sets)]
        ranked = self.orders[int(params.get("order", 0))] if self.orders else ()
        order = [i for i in ranked if i < len(demos)]
        order += [i for i in range(len(demos)) if i not in order]
        return [demos[i] for i in order][:shots]


class ReplayableTPESampler(optuna.samplers.TPESampler):
    """TPE whose random state is reset before each trial from the seed and the number of
    finished trials.

    A resumed run rebuilds its sampler from scratch; with a plain seeded TPE it would then
    draw a different sequence than the run that was killed, and could end with another
    winner. Reseeding per trial from the (persisted) history makes the resumed run ask for
    the same trials as an uninterrupted one. (Uses TPE's random states, ``_rng``; tested
    against Optuna 5.0.)
    """

    def __init__(self, seed: int, **kwargs: object) -> None:
        super().__init__(seed=seed, **kwargs)  # type: ignore[arg-type]
        self._base_seed = seed

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = len(
            study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        )
        s = (self._base_seed * 1_000_003 + done) % 2**32
        self._rng.rng.seed(s)
        self._random_sampler._rng.rng.seed(s)
        super().before_trial(study, trial)


def open_study(
    storage: str, name: str, sampler: str, seed: int, pruner: RacingPruner
) -> optuna.Study:
    samp = (
        optuna.samplers.RandomSampler(seed=seed)
        if sampler == "random"
        else ReplayableTPESampler(seed=seed, multivariate=True, n_startup_trials=8)
    )
    store: str | optuna.storages.BaseStorage = storage
    if storage.startswith("sqlite"):
        # Several worker processes share the file: wait for locks instead of failing.
        rdb = optuna.storages.RDBStorage(storage, engine_kwargs={"connect_args": {"timeout": 60}})
        serialize_sqlite(rdb.engine)
        store = rdb
    return optuna.create_study(
        study_name=name,
        storage=store,
        direction="maximize",
        sampler=samp,
        pruner=pruner,
        load_if_exists=True,
    )


def serialize_sqlite(engine: sqlalchemy.Engine) -> None:
    """Make every transaction on ``engine`` take SQLite's write lock when it begins.

    SQLite has no ``SELECT ... FOR UPDATE`` and Python's driver starts a transaction only at
    the first write, so two processes could both read an enqueued trial as waiting and both
    run it (Optuna's ``ask`` reads, then updates). With ``BEGIN IMMEDIATE`` the read and the
    update are one locked step: the second process waits, then sees the trial taken. (The
    SQLAlchemy documentation's recipe for pysqlite transactions.)"""

    @sqlalchemy.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners are closed


def fail_stale(study: optuna.Study) -> None:
    """Mark trials left RUNNING by a killed process as FAIL (their records are kept) and
    queue their parameters again, so the resumed search evaluates what the killed one was
    evaluating (from the cache) and goes on as an uninterrupted run would."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)
        if t.params:
            study.enqueue_trial(t.params, skip_if_exists=False)


def finished_by_hash(studies: Sequence[optuna.Study]) -> dict[str, optuna.trial.FrozenTrial]:
    out: dict[str, optuna.trial.FrozenTrial] = {}
    for st in studies:
        for t in st.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            h = t.user_attrs.get("prompt_hash")
            if h and h not in out:
                out[h] = t
    return out


def running_hashes(study: optuna.Study, exclude: int) -> set[str]:
    return {
        t.user_attrs.get("prompt_hash", "")
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.number != exclude
    }


def run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    prompt: Prompt,
    val: Sequence[Example],
    evaluator: Evaluator,
    rungs: Sequence[int],
    known: Mapping[str, LogEntry],
    calls: Callable[[], int] | None = None,
    max_cost: float | None = None,
    out: RaceOutcome | None = None,
) -> RaceOutcome:
    """Race one asked trial and tell the study. Returns the outcome (``out``, filled in).

    A prompt already raced (in the run log ``known``, or finished in this study) is told its
    known result without any evaluation; one being evaluated by another worker is skipped.

    Raises:
        BudgetExhausted: after telling the study the trial failed.
    """
    out = out if out is not None else RaceOutcome()
    h = prompt.hash
    trial.set_user_attr("pid", os.getpid())  # which process ran it (workers share a study)
    if calls is not None:
        trial.set_user_attr("calls_at_start", calls())
    trial.set_user_attr("prompt_hash", h)
    # Claim, then look for other claims: first among RUNNING trials, then among finished
    # ones. A worker that claimed the same prompt earlier is in one of the two (it can only
    # move from the first to the second), so two workers never both evaluate a prompt.
    if h not in known and h in running_hashes(study, trial.number):
        trial.set_user_attr("duplicate_of", "running")
        study.tell(trial, state=TrialState.FAIL)
        out.state = "skipped"
        return out
    entry = known.get(h)
    if entry is not None:
        trial.set_user_attr("duplicate_of", entry.id)
        trial.set_user_attr("scores", list(entry.scores))
        if entry.state == "complete":
            study.tell(trial, entry.mean)
        else:
            study.tell(trial, state=TrialState.PRUNED)
        out.state, out.scores = "duplicate", tuple(entry.scores)
        return out
    prev = finished_by_hash([study]).get(h)
    if prev is not None and prev.number != trial.number:
        trial.set_user_attr("duplicate_of", prev.number)
        trial.set_user_attr("scores", prev.user_attrs.get("scores", []))
        if prev.state == TrialState.COMPLETE:
            study.tell(trial, prev.value)
        else:
            study.tell(trial, state=TrialState.PRUNED)
        out.state, out.scores = "duplicate", tuple(prev.user_attrs.get("scores", []))
        return out

    def stamp() -> None:
        if calls is not None:
            trial.set_user_attr("calls_at_end", calls())

    try:
        value = race(trial, prompt, val, evaluator, rungs, max_cost, out)
    except optuna.TrialPruned:
        stamp()
        study.tell(trial, state=TrialState.PRUNED)
        out.state = "pruned"
        return out
    except BudgetExhausted:
        stamp()
        study.tell(trial, state=TrialState.FAIL)
        out.state = "failed"
        raise
    stamp()
    study.tell(trial, value)
    out.state = "complete"
    return out
