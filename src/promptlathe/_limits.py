"""Bounds of numeric settings, shared by the CLI's options and OptimizeConfig's checks."""

from __future__ import annotations

SEED = (0, 2**32 - 1)  # numpy and llama.cpp take 32-bit unsigned seeds
MAX_TOKENS = (1, 32768)
N_CTX = (128, 1_048_576)
BUDGET_CALLS = (20, 10_000_000)
BUDGET_TOKENS = (1, 10**12)
MAX_SHOTS = (0, 16)
VAL_SIZE = (4, 100_000)
CONFIRM_SIZE = (0, 100_000)
THREADS = (1, 1024)
PARALLEL = (1, 255)  # llama.cpp holds at most 256 sequences; one holds the shared prefix
MAX_COST = (1, 10**9)  # tokens per example
REASONING_TOKENS = (16, 32768)
