"""Instruction proposers (APE, OPRO) and the filters applied to what they write."""

from promptlathe.proposers._ape import APEProposer
from promptlathe.proposers._base import InstructionProposer, ScoredInstruction
from promptlathe.proposers._filter import (
    clean_instruction,
    filter_instructions,
    likelihood_screen,
)
from promptlathe.proposers._opro import OPROProposer

__all__ = [
    "APEProposer",
    "InstructionProposer",
    "OPROProposer",
    "ScoredInstruction",
    "clean_instruction",
    "filter_instructions",
    "likelihood_screen",
]
