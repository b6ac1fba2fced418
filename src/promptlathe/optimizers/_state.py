"""What the stages save as they go (``candidates.json``, or the shared store's ``candidates``
document): one typed section per owner, validated on every read and write, in a versioned
file with an upgrade path.

A stage declares its section as a :class:`StageState` subclass (``section = "propose"``)
and reads and writes it through :meth:`RunContext.state` and :meth:`RunContext.update_state`;
a plug-in's stage does the same, with no edit here. Version 1 (before 2026-12) was one flat
dict of about twenty keys shared by every stage; it is upgraded on first read.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from promptlathe.errors import PromptlatheError
from promptlathe.prompts import Exemplar, StrategySpec

STATE_VERSION = 2
"""The version of ``candidates.json`` (2: one section per owner; 1: one flat dict)."""


class StageState(BaseModel):
    """One section of the run's saved state. Subclasses set ``section`` (the key it is saved
    under) and declare their fields with defaults, so a section not written yet reads as
    its defaults; unknown fields are refused, as are values of the wrong type."""

    model_config = ConfigDict(extra="forbid")
    section: ClassVar[str] = ""


def first_error(exc: ValidationError) -> str:
    """A pydantic error as one line: where (dotted) and what."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "(top)"
    return f"{loc}: {err['msg']}"


def read_section(kind: type[StageState], data: dict[str, Any], where: str) -> StageState:
    """Section ``kind`` of the state ``data`` (already at :data:`STATE_VERSION`)."""
    try:
        return kind.model_validate(data.get(kind.section) or {})
    except ValidationError as exc:
        raise PromptlatheError(
            f"{where}: section {kind.section!r} is malformed ({first_error(exc)}); start a new "
            "run with another --out"
        ) from None


def dump_fields(
    kind: type[StageState], current: dict[str, Any], fields: dict[str, Any], where: str
) -> dict[str, Any]:
    """``fields`` checked against ``kind`` (merged over ``current``) and dumped as JSON
    values, ready to merge into the section."""
    unknown = set(fields) - set(kind.model_fields)
    if unknown:
        raise TypeError(f"{kind.__name__} has no field(s) {sorted(unknown)}")
    try:
        model = kind.model_validate({**current, **fields})
    except ValidationError as exc:
        raise PromptlatheError(f"{where}: section {kind.section!r}: {first_error(exc)}") from None
    return model.model_dump(mode="json", include=set(fields))


# ---- the sections the framework's shared steps own --------------------------------------------
class RunState(StageState):
    """The run's own bookkeeping: the Optuna studies it opened (a resumed run requeues their
    stale trials) and the call counts a stage followed by another may reach, by name."""

    section: ClassVar[str] = "run"
    studies: list[str] = []
    caps: dict[str, int | None] = {}


class DemoSet(BaseModel):
    """A bootstrapped or labeled exemplar set (``kind``: bootstrapped, labeled, seed, start)."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    exemplars: list[Exemplar]


class ExemplarState(StageState):
    """The demo sets bootstrapped once per run (``None``: not yet) and the exemplar orders
    searched over them."""

    section: ClassVar[str] = "exemplars"
    demo_sets: list[DemoSet] | None = None
    orders: list[list[int]] = []
    n_bootstrapped: int = 0


class ScreenRow(BaseModel):
    """One strategy's score on the first rung of validation, before any race."""

    model_config = ConfigDict(extra="forbid")
    strategy: str
    index: int
    score: float
    n: int
    tokens_per_example: float


class StrategyState(StageState):
    """The strategy choices that apply to the task (``None``: not chosen yet), why the
    others do not, the rationale sets of ``cot_demos``, the pool of ``knn_demos`` and the
    strategy screen (``None``: not run yet)."""

    section: ClassVar[str] = "strategies"
    strategies: list[StrategySpec] | None = None
    strategies_skipped: dict[str, str] = {}
    rationale_sets: list[list[Exemplar]] = []
    rationale_tries: int = 0
    knn_pool: list[Exemplar] = []
    strategy_screen: list[ScreenRow] | None = None


class JointState(StageState):
    """The instructions the joint search chooses among (``None``: its space is not set)."""

    section: ClassVar[str] = "joint"
    instructions: list[str] | None = None


class Rejected(BaseModel):
    """A proposed instruction that never reached a race, who wrote it and why it was
    dropped (a sanity filter's reason, or the likelihood screen)."""

    model_config = ConfigDict(extra="forbid")
    instruction: str
    source: str
    reason: str


class VetState(StageState):
    """Every proposal the vetting dropped, in the order it was proposed."""

    section: ClassVar[str] = "vet"
    rejected: list[Rejected] = []


# ---- versions ---------------------------------------------------------------------------------
_V1_SECTIONS = {
    "studies": "run",
    "demo_sets": "exemplars",
    "orders": "exemplars",
    "n_bootstrapped": "exemplars",
    "strategies": "strategies",
    "strategies_skipped": "strategies",
    "rationale_sets": "strategies",
    "rationale_tries": "strategies",
    "knn_pool": "strategies",
    "strategy_screen": "strategies",
    "instructions": "propose",
    "propose_top": "propose",
    "calls_before_race": "propose",
    "calls_after_race": "propose",
    "prescreen": "propose",
    "joint_instructions": "joint",
    "reflect_top": "reflect",
    "rounds": "reflect",
}
_V1_CAPS = ("race_cap", "joint_cap", "random_cap", "reflect_cap")
_V1_RENAMED = {"joint_instructions": "instructions"}


def upgrade(data: Any, where: str) -> tuple[dict[str, Any], bool]:
    """The state ``data`` at :data:`STATE_VERSION`, and whether it had to be upgraded.

    Raises:
        PromptlatheError: not an object, a version this promptlathe does not know, or a
            version 1 key it never wrote (one line naming ``where``).
    """
    if not isinstance(data, dict):
        raise PromptlatheError(f"{where}: the run's state is not a JSON object")
    version = data.get("v", 1)
    if version == STATE_VERSION:
        return data, False
    if version != 1:
        raise PromptlatheError(
            f"{where}: state version {version!r} is not one this promptlathe reads (1 to "
            f"{STATE_VERSION}); upgrade promptlathe, or start a new run with another --out"
        )
    out: dict[str, Any] = {"v": STATE_VERSION}
    for key, value in data.items():
        if key == "v":
            continue
        if key in _V1_CAPS:
            out.setdefault("run", {}).setdefault("caps", {})[key] = value
        elif key in _V1_SECTIONS:
            out.setdefault(_V1_SECTIONS[key], {})[_V1_RENAMED.get(key, key)] = value
        else:
            raise PromptlatheError(
                f"{where}: unknown key {key!r} in a version 1 state; start a new run with "
                "another --out"
            )
    return out, True
