"""A user's Python function as a metric: ``module:function`` or ``path/to/file.py:function``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from promptlathe.errors import PromptlatheError
from promptlathe.metrics._base import Metric


class CallableMetric(Metric):
    """Wraps ``fn(output: str, targets: list[str]) -> float | bool``.

    The function receives the raw model output (it does its own extraction) and the list of
    acceptable targets, and returns a score in [0, 1] or a bool.
    """

    def __init__(self, fn: Callable[[str, list[str]], float | bool], name: str) -> None:
        self.fn = fn
        self.name = name

    def extract(self, output: str) -> str:
        return output.strip()

    def score(self, answer: str, targets: Sequence[str]) -> float:
        try:
            value = self.fn(answer, list(targets))
        except Exception as exc:
            raise PromptlatheError(
                f"metric {self.name}: raised {type(exc).__name__}: {exc} (on output "
                f"{answer[:40]!r}); fix the function"
            ) from None
        if isinstance(value, bool):
            return float(value)
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not (0.0 <= number <= 1.0):  # NaN fails this too
            raise PromptlatheError(
                f"metric {self.name}: returned {value!r}; it must return a bool or a number in "
                "[0, 1]"
            )
        return number


def load_callable_metric(spec: str) -> CallableMetric:
    """Import ``module:function`` (or ``file.py:function``) as a metric.

    Raises:
        PromptlatheError: the module cannot be imported (missing, syntax error, error at
            import), has no such function, or the function cannot take ``(output, targets)``.
    """
    target, _, fn_name = spec.rpartition(":")
    if not target or not fn_name:
        raise PromptlatheError(f"metric {spec!r}: expected 'module:function'")
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise PromptlatheError(f"metric {spec!r}: file {path} not found")
            mod_spec = importlib.util.spec_from_file_location(path.stem, path)
            assert mod_spec and mod_spec.loader
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except PromptlatheError:
        raise
    except SyntaxError as exc:
        raise PromptlatheError(
            f"metric {spec!r}: syntax error in {exc.filename}:{exc.lineno} ({exc.msg})"
        ) from None
    except Exception as exc:
        raise PromptlatheError(
            f"metric {spec!r}: cannot import {target!r} ({type(exc).__name__}: {exc})"
        ) from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise PromptlatheError(f"metric {spec!r}: {target!r} has no function {fn_name!r}")
    try:
        inspect.signature(fn).bind("output", ["target"])
    except TypeError:
        raise PromptlatheError(
            f"metric {spec!r}: {fn_name} must take two arguments (output, targets)"
        ) from None
    except ValueError:  # builtins without a signature: let the call decide
        pass
    return CallableMetric(fn, name=spec)
