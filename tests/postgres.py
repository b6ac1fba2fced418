"""A throwaway PostgreSQL server for tests: started on 127.0.0.1, stopped afterwards."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bindir() -> Path | None:
    """The directory of the PostgreSQL server programs (Debian puts them off PATH)."""
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the SQLAlchemy URL of a fresh database on a new server.

    Raises:
        RuntimeError: PostgreSQL is not installed, or the server would not start.
    """
    bindir = _bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (Debian package: postgresql)")
    base = Path(tempfile.mkdtemp(prefix="promptlathe-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: run it as 'postgres'
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, log, port = base / "data", base / "server.log", _free_port()

    def run(*cmd: str | Path) -> None:
        r = subprocess.run([*prefix, *map(str, cmd)], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            tail = log.read_text()[-2000:] if log.is_file() else ""
            raise RuntimeError(f"{cmd[0]} failed: {r.stderr.strip()}\n{tail}")

    try:
        run(bindir / "initdb", "-D", data, "-A", "trust", "-U", "promptlathe", "--no-sync")
        opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(bindir / "pg_ctl", "-D", data, "-o", opts, "-l", log, "-w", "-t", "60", "start")
        try:
            run(bindir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "promptlathe",
                "promptlathe")  # fmt: skip
            yield f"postgresql://promptlathe@127.0.0.1:{port}/promptlathe"
        finally:
            run(bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)
