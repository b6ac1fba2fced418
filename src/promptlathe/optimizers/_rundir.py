"""The run directory and the run's store: which store a run uses, and the checks made before
any work (a run already there, settings changed on ``--resume``, data files that changed
since the run started, another run's study on a shared database)."""

from __future__ import annotations

import json
from pathlib import Path

from promptlathe._hashing import sha256_file
from promptlathe.errors import PromptlatheError
from promptlathe.optimizers._config import OptimizeConfig
from promptlathe.store import Store, is_server_url

DATA_VERSION = 1


def run_store(cfg: OptimizeConfig, run_dir: Path) -> Store:
    """The run's store: the ``--storage`` database when it is a server (shared by every
    machine of the run, under the study's name), else ``calls.sqlite`` in the run directory."""
    if is_server_url(cfg.storage):
        assert cfg.storage is not None
        return Store(cfg.storage, namespace=f"{cfg.study}/")
    return Store(run_dir / "calls.sqlite")


def check_run_dir(cfg: OptimizeConfig, run_dir: Path, resume: bool) -> None:
    """A new run needs a directory without one; ``--resume`` needs the same settings."""
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        return
    if not resume:
        raise PromptlatheError(
            f"{run_dir} already holds a run; add --resume to continue it, or choose another --out"
        )
    saved = OptimizeConfig.load(cfg_path)
    if diff := saved.differences(cfg):
        # Name the saved values: a default that changed since the run started (the optimizer,
        # the strategies) differs with the very same command line.
        was, now = saved.to_dict(), cfg.to_dict()
        what = ", ".join(f"{k}: saved {was[k]!r}, now {now[k]!r}" for k in diff)
        raise PromptlatheError(
            f"{cfg_path}: --resume with different settings ({what}); give the saved values, "
            "or another --out"
        )


def check_data(cfg: OptimizeConfig, run_dir: Path, resume: bool) -> dict[str, str]:
    """Record the data files' sha256 on the first start; on --resume, refuse files whose
    content changed (the same path with other examples would silently mix two tasks).
    Returns the digests."""
    path = run_dir / "data.json"
    files = {"task": cfg.task, **({"test": cfg.test} if cfg.test else {})}
    now = {k: sha256_file(Path(v)) for k, v in files.items()}
    if resume and path.is_file():
        try:
            before = json.loads(path.read_text())
        except (OSError, ValueError):
            before = {}
        changed = [k for k in now if before.get(k) not in (None, now[k])]
        if changed:
            which = ", ".join(f"--{k} {files[k]}" for k in changed)
            raise PromptlatheError(
                f"{which}: the file's content changed since the run started (sha256 differs "
                f"from {path}); restore it, or start a new run with another --out"
            )
    if not path.is_file() or not resume:
        path.write_text(json.dumps({"v": DATA_VERSION, **now}, indent=2) + "\n")
    return now


def check_shared_run(
    cfg: OptimizeConfig, store: Store, digests: dict[str, str], resume: bool, worker: bool
) -> None:
    """On a shared database: a new main process must not take over another run's study,
    and a worker's data files must be the main's (same content, wherever they live)."""
    where = f"--study {cfg.study}"
    doc = store.get_document("config")
    if not worker and doc is not None:
        if not resume:
            raise PromptlatheError(
                f"{where}: the --storage database already holds a run of that name; add "
                "--resume to continue it, or choose another --study"
            )
        diff = OptimizeConfig.from_dict(doc, where).differences(cfg)
        if diff:
            raise PromptlatheError(
                f"{where}: --resume with different settings ({', '.join(diff)}) than the "
                "run in --storage"
            )
    data = store.get_document("data")
    if worker and data is not None:
        changed = [k for k, v in digests.items() if data.get(k) not in (None, v)]
        if changed:
            files = {"task": cfg.task, "test": cfg.test}
            which = ", ".join(f"--{k} {files[k]}" for k in changed)
            raise PromptlatheError(
                f"{which}: this machine's file differs from the one the run started with "
                "(sha256); give every machine the same data"
            )
    elif not worker:
        store.put_document("data", {"v": DATA_VERSION, **digests})
