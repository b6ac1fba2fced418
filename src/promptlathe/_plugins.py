"""Loading a registry of classes: the built-in ones (every public module of a package, each
registering itself on import) and those installed packages declare under an entry-point
group. Optimizers, strategies and exporters load this way."""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
from typing import Any

from promptlathe.errors import PromptlatheError


def load_registry(
    package: str, group: str, registry: dict[str, Any], base: type, kind: str
) -> None:
    """Import every public module of ``package``, then add each class declared under the
    entry-point ``group`` to ``registry`` (a built-in of the same name wins).

    Raises:
        PromptlatheError: a plug-in fails to load or is not a ``base`` subclass (one line
            naming it; ``kind`` says what it is, e.g. "an optimizer").
    """
    pkg = importlib.import_module(package)
    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{package}.{mod.name}")
    for ep in importlib.metadata.entry_points(group=group):
        if ep.name in registry:
            continue
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plug-in names itself, once
            raise PromptlatheError(
                f"{kind} plug-in {ep.name!r} ({ep.value}) failed to load: {exc}"
            ) from None
        if not (isinstance(cls, type) and issubclass(cls, base)):
            article = "an" if base.__name__[0] in "AEIOU" else "a"
            raise PromptlatheError(
                f"{kind} plug-in {ep.name!r} ({ep.value}) is not {article} {base.__name__} subclass"
            )
        registry[ep.name] = cls
