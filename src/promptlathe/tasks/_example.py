from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Example:
    """One task example.

    Attributes:
        input: the text given to the model.
        targets: acceptable answers; ``targets[0]`` is the canonical one.
        id: a stable identifier (``<file name>:<line>`` unless the data gives one).
        extra: any other fields of the record (e.g. a worked ``rationale``).
    """

    input: str
    targets: tuple[str, ...]
    id: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def target(self) -> str:
        return self.targets[0]
