"""Where the stages' state is kept: ``candidates.json`` in the run directory, or the shared
store's ``candidates`` document when the run's processes may be on several machines. Every
change is one locked read-merge-write of the fields it sets, so processes of one run saving
at once never lose each other's fields."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

from promptlathe.errors import PromptlatheError
from promptlathe.optimizers._lock import state_lock
from promptlathe.optimizers._state import STATE_VERSION, StageState, dump_fields, read_section
from promptlathe.optimizers._state import upgrade as upgrade_state
from promptlathe.store import Store

S = TypeVar("S", bound=StageState)
DOCUMENT = "candidates"


class StateFile:
    """The run's saved state (see :mod:`promptlathe.optimizers._state`)."""

    def __init__(self, path: Path, store: Store) -> None:
        self.path = path
        self.store = store
        self.where = f"{store.where} (document {DOCUMENT})" if store.shared else str(path)

    def _raw(self) -> Any:
        if self.store.shared:
            return self.store.get_document(DOCUMENT) or {"v": STATE_VERSION}
        if not self.path.exists():
            return {"v": STATE_VERSION}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise PromptlatheError(
                f"{self.path}: cannot read the run's state ({type(exc).__name__}); start a new "
                "run with another --out"
            ) from None
        return data

    def read(self) -> dict[str, Any]:
        """The whole state at the current version (a version 1 state is upgraded and saved
        back on first read)."""
        data, upgraded = upgrade_state(self._raw(), self.where)
        if upgraded:
            with state_lock(self.path):
                data, again = upgrade_state(self._raw(), self.where)
                if again:
                    self._write_all(data)
        return data

    def get(self, kind: type[S]) -> S:
        """Section ``kind``, validated (its defaults when it was never written)."""
        section = read_section(kind, self.read(), self.where)
        assert isinstance(section, kind)
        return section

    def update(self, kind: type[S], **fields: Any) -> S:
        """Set ``fields`` of section ``kind`` (its other fields, and other sections, are
        kept) and return the section as saved."""
        with state_lock(self.path):
            # Upgraded here, under the lock already held (read() would take it again).
            data, _ = upgrade_state(self._raw(), self.where)
            current = data.get(kind.section) or {}
            dumped = dump_fields(kind, current, fields, self.where)
            if self.store.shared:
                self.store.merge_document(DOCUMENT, {"v": STATE_VERSION})
                data = self.store.merge_document(DOCUMENT, dumped, under=kind.section)
            else:
                data[kind.section] = {**current, **dumped}
                self._write_all(data)
        section = read_section(kind, data, self.where)
        assert isinstance(section, kind)
        return section

    def _write_all(self, data: dict[str, Any]) -> None:
        if self.store.shared:
            self.store.put_document(DOCUMENT, data)
            return
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False))
        tmp.replace(self.path)
