"""``python -m promptlathe.cli`` (worker processes are started this way)."""

from promptlathe.cli import main

main()
