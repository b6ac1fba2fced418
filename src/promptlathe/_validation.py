"""Files a user hands in are declared as pydantic models; this turns a validation failure into
the project's one-line error naming the file and the field."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ValidationError

from promptlathe.errors import PromptlatheError

M = TypeVar("M", bound=BaseModel)


def _scalar_text(value: Any) -> Any:
    """Numbers and booleans are read as their text (``"3"``), as a CSV cell would be."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_scalar_text)]
"""A string field that also takes a number, read as its text."""


_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")
_PLAIN = {
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dataclass_type": "must be an object",
    "list_type": "must be a list",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
}


def describe(exc: ValidationError) -> str:
    """The first failure of ``exc`` in words: which field (dotted path), and what is wrong."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    kind = err["type"]
    if kind in _UNKNOWN:
        names = sorted(
            ".".join(str(x) for x in e["loc"]) for e in exc.errors() if e["type"] in _UNKNOWN
        )
        return "unknown field " + ", ".join(repr(n) for n in names)
    if kind in ("missing", "missing_argument"):
        return f"field {loc!r} is missing"
    msg = _PLAIN.get(kind) or str(err["msg"]).removeprefix("Value error, ")
    got = err.get("input")
    shown = f" (got {got!r:.60})" if isinstance(got, str | int | float) else ""
    return f"field {loc!r}: {msg[0].lower() + msg[1:]}{shown}" if loc else msg


def validate(model: type[M], data: Any, where: str) -> M:
    """``data`` as a ``model``, or one line naming ``where`` and the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PromptlatheError(f"{where}: {describe(exc)}") from None
    except PromptlatheError as exc:  # raised by a dataclass's own check (__post_init__)
        raise PromptlatheError(f"{where}: {exc}") from None
