"""Load task files (JSONL or CSV) into :class:`Example` lists, with line-precise errors."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptlathe.errors import TaskFormatError
from promptlathe.tasks._example import Example


@dataclass(frozen=True)
class Fields:
    """Column names of a task file."""

    input: str = "input"
    target: str = "target"
    targets: str = "targets"
    id: str = "id"


def load_examples(path: str | Path, fields: Fields | None = None) -> list[Example]:
    """Read a ``.jsonl`` or ``.csv`` task file.

    Args:
        path: the file. ``.csv``/``.tsv`` are read as delimited text, anything else as JSONL.
        fields: column names; defaults to ``input``, ``target``, optional ``targets``.

    Raises:
        TaskFormatError: the file is missing, empty, or a record is malformed; the message
            names the file, the line and the field.
    """
    fields = fields or Fields()
    p = Path(path)
    if p.is_dir():
        raise TaskFormatError(f"{p}: is a directory; give a .jsonl or .csv task file")
    if not p.is_file():
        raise TaskFormatError(f"{p}: task file not found (check the path)")
    rows = _read_csv(p) if p.suffix.lower() in {".csv", ".tsv"} else _read_jsonl(p)
    examples: list[Example] = []
    first_line: dict[str, int] = {}
    for line, rec in rows:
        ex = _to_example(p, line, rec, fields)
        if ex.id in first_line:
            raise TaskFormatError(
                f"{p}:{line}: field '{fields.id}' repeats id {ex.id!r} of line "
                f"{first_line[ex.id]}; ids must be unique"
            )
        first_line[ex.id] = line
        examples.append(ex)
    if not examples:
        raise TaskFormatError(f"{p}: file has no examples (it is empty)")
    return examples


def _decode(p: Path, lineno: int, raw: bytes) -> str:
    if b"\x00" in raw:
        raise TaskFormatError(f"{p}:{lineno}: contains NUL bytes; this looks like a binary file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TaskFormatError(
            f"{p}:{lineno}: not valid UTF-8 (byte {exc.start + 1} of the line); save the file "
            "as UTF-8"
        ) from None
    return text.removeprefix("\ufeff") if lineno == 1 else text


def _read_jsonl(p: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with p.open("rb") as fh:
        for lineno, raw_bytes in enumerate(fh, start=1):
            raw = _decode(p, lineno, raw_bytes)
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise TaskFormatError(
                    f"{p}:{lineno}: invalid JSON ({exc.msg} at column {exc.colno}); "
                    "each line must be one JSON object"
                ) from None
            except RecursionError:
                raise TaskFormatError(f"{p}:{lineno}: JSON nested too deeply") from None
            if not isinstance(rec, dict):
                raise TaskFormatError(
                    f"{p}:{lineno}: expected a JSON object, got {type(rec).__name__}"
                )
            yield lineno, rec


def _read_csv(p: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
    with p.open("rb") as fh:
        lines = (_decode(p, n, raw) for n, raw in enumerate(fh, start=1))
        reader = csv.DictReader(lines, delimiter=delimiter)
        while True:
            try:
                rec = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise TaskFormatError(f"{p}:{reader.line_num + 1}: malformed CSV ({exc})") from None
            # line_num is the physical line of the record's end; header is line 1.
            if None in rec:
                n_cells = len(reader.fieldnames or []) + len(rec[None])
                raise TaskFormatError(
                    f"{p}:{reader.line_num}: row has {n_cells} cells but the header has "
                    f"{len(reader.fieldnames or [])}; quote cells that contain '{delimiter}'"
                )
            yield reader.line_num, dict(rec)


def _to_example(p: Path, line: int, rec: dict[str, Any], f: Fields) -> Example:
    where = f"{p}:{line}"
    if f.input not in rec:
        raise TaskFormatError(
            f"{where}: missing field '{f.input}' (fields present: {sorted(rec)}; "
            "use --input-field to name another column)"
        )
    inp = rec[f.input]
    if inp is None:  # a CSV row with too few cells
        raise TaskFormatError(
            f"{where}: field '{f.input}' must be a string, got null (empty or missing cell)"
        )
    if not isinstance(inp, str):
        raise TaskFormatError(
            f"{where}: field '{f.input}' must be a string, got {type(inp).__name__}"
        )
    _check_text(where, f.input, inp)
    targets: list[str] = []
    if f.target in rec:
        tgt = rec[f.target]
        if tgt is None:
            raise TaskFormatError(
                f"{where}: field '{f.target}' must be a string, got null (empty or missing cell)"
            )
        if not isinstance(tgt, str):
            raise TaskFormatError(
                f"{where}: field '{f.target}' must be a string, got {type(tgt).__name__} "
                f"({json.dumps(tgt)[:40]}); quote it in the file"
            )
        _check_text(where, f.target, tgt)
        targets.append(tgt)
    if f.targets in rec and rec[f.targets] not in (None, ""):
        extra_t = rec[f.targets]
        if isinstance(extra_t, str):  # CSV: a JSON list in a cell
            try:
                extra_t = json.loads(extra_t)
            except json.JSONDecodeError:
                extra_t = [extra_t]
        if not isinstance(extra_t, list) or not all(isinstance(t, str) for t in extra_t):
            raise TaskFormatError(f"{where}: field '{f.targets}' must be a list of strings")
        for t in extra_t:
            _check_text(where, f.targets, t)
        targets.extend(t for t in extra_t if t not in targets)
    if not targets:
        raise TaskFormatError(
            f"{where}: missing field '{f.target}' (fields present: {sorted(rec)}; "
            "use --target-field to name another column)"
        )
    ex_id = rec.get(f.id)
    skip = {f.input, f.target, f.targets, f.id}
    return Example(
        input=inp,
        targets=tuple(targets),
        id=str(ex_id) if ex_id not in (None, "") else f"{p.name}:{line}",
        extra={k: v for k, v in rec.items() if k not in skip},
    )


def _check_text(where: str, field: str, text: str) -> None:
    """Text a model will see must be encodable (JSON allows lone surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        raise TaskFormatError(
            f"{where}: field '{field}' holds an unpaired surrogate (\\u{code:04x}); it is not "
            "valid Unicode text"
        ) from None
