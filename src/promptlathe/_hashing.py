"""Content hashes of files (model weights, task data), computed once per process."""

from __future__ import annotations

import hashlib
from pathlib import Path

_MEMO: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes.

    Remembered per process for the file's (path, size, mtime), so the registry's check and
    the model's cache identity hash a GGUF once; a new process always hashes again (an mtime
    can be kept while the bytes change).
    """
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _MEMO:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
        _MEMO[key] = h.hexdigest()
    return _MEMO[key]
